// The exit statuses of README "Exit status": one table for every command.

import { describe, expect, it } from 'vitest';
import { EXIT } from '../src/cli/exit-codes.ts';
import { oneLineError, thpsim } from './support/cli.ts';

describe('exit statuses', () => {
  it('0 for --version, 2 for a usage error that commander reports', () => {
    expect(thpsim(['--version']).status).toBe(EXIT.ok);
    expect(thpsim(['run', '--no-such-option']).status).toBe(EXIT.badInput);
    expect(thpsim(['no-such-command']).status).toBe(EXIT.badInput);
  });

  it('2 for a bad file or field, with one line', () => {
    oneLineError(thpsim(['run', 'no/such/scenario.yaml']), EXIT.badInput);
    oneLineError(thpsim(['check', 'no-such-case']), EXIT.badInput);
    oneLineError(thpsim(['snapshot', '--pid', 'x', '-o', '/tmp/x.snap']), EXIT.badInput);
  });

  it('1 for a negative answer: a counterexample', () => {
    const r = thpsim(['check', 'R1-v5-fault']);
    expect(r.status).toBe(EXIT.negative);
    expect(r.stdout).toContain('counterexample');
  });

  it.skipIf(process.getuid?.() !== 0)(
    '3 when the machine refuses: a snapshot of PID 1 as root',
    () => {
      const r = thpsim(['snapshot', '--pid', '1', '-o', '/tmp/thpsim-pid1.snap']);
      // In a container PID 1 may be readable; when it is not, the cause is named, not "run as root".
      if (r.status !== 0) {
        expect(oneLineError(r, EXIT.unavailable)).toMatch(/permission denied \(E(ACCES|PERM)\)/);
        expect(r.stderr).not.toContain('run as root');
      }
    },
  );
});
