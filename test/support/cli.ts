// Running the thpsim CLI as a user does (node bin/thpsim.js ...), for the CLI tests.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI; a non-zero exit is a result, not an exception. */
export function thpsim(args: string[]): CliResult {
  const env = { ...process.env };
  delete env.FORCE_COLOR;
  try {
    const stdout = execFileSync('node', [join(ROOT, 'bin/thpsim.js'), ...args], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status?: number | null; stdout?: string; stderr?: string };
    if (typeof err.status !== 'number') throw e;
    return { status: err.status, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/**
 * The error contract: one line `thpsim: ...` on stderr, no stack trace, and a non-zero exit
 * status (exactly `status` when given).
 */
export function oneLineError(r: CliResult, status?: number): string {
  if (status === undefined) expect(r.status).not.toBe(0);
  else expect(r.status).toBe(status);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^thpsim: /);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  return lines[0];
}
