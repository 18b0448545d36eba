// Whole-file inputs are read with a size limit (issue 16): /dev/zero, /dev/urandom or a huge file
// given as a scenario, case file, run result, snapshot or DAMON JSON record ends in one clear line
// instead of growing the heap until the process is killed.

import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSnapshot } from '../src/cli/snapshot-commands.ts';
import { InputTooLargeError, readBounded } from '../src/workload/read-bounded.ts';
import { parseDamonJson } from '../src/workload/damon.ts';
import { oneLineError, thpsim } from './support/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thpsim-limits-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function link(name: string, target: string): string {
  const p = join(tmp, name);
  symlinkSync(target, p);
  return p;
}

describe('readBounded', () => {
  it('reads a file under the limit whole, and refuses a regular file over it by its size', () => {
    const p = join(tmp, 'small.txt');
    writeFileSync(p, 'x'.repeat(1000));
    expect(readBounded(p, 1000).length).toBe(1000);
    expect(() => readBounded(p, 999)).toThrow(InputTooLargeError);
  });

  it.each(['/dev/zero', '/dev/urandom'])('stops reading %s one byte past the limit', (dev) => {
    expect(() => readBounded(dev, 3 << 20)).toThrow(/larger than 3 MiB/);
  });

  it('passes open errors through (ENOENT, EISDIR)', () => {
    expect(() => readBounded(join(tmp, 'nope'), 10)).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
    expect(() => readBounded(tmp, 10)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
  });

  it('a snapshot and a DAMON JSON record from /dev/zero are refused at their limit', () => {
    expect(() => readSnapshot('/dev/zero', 1 << 20)).toThrow(/\/dev\/zero: larger than 1 MiB/);
    expect(() => parseDamonJson('/dev/zero')).toThrow(/larger than 256 MiB/);
  });
});

describe('the CLI on endless inputs', () => {
  const zeroYaml = link('zero.yaml', '/dev/zero');
  const randomJson = link('random.json', '/dev/urandom');
  it.each([
    ['run', [zeroYaml]],
    ['validate', [randomJson]],
    ['check', [zeroYaml]],
    ['report', [randomJson]],
    ['replay', ['--format', 'damon-json', '/dev/zero']],
  ])('%s stops at the limit with one line', (cmd, args) => {
    const line = oneLineError(thpsim([cmd, ...args]));
    expect(line).toMatch(/larger than \d+ MiB, the limit for this kind of input/);
  });
});
