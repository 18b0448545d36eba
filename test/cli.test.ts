// The thpsim CLI as a user runs it (node bin/thpsim.js ...): help, JSON output, and the error
// contract (one line `thpsim: <message>` on stderr, non-zero exit, no stack trace). These tests do
// not need the model behind Machine; cli-run.test.ts covers the commands that run it.

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oneLineError, thpsim } from './support/cli.ts';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = mkdtempSync(join(tmpdir(), 'thpsim-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

const COMMANDS = ['run', 'collapse', 'validate', 'sysfs', 'geometry', 'examples'];

describe('thpsim CLI', () => {
  it('--help lists every command', () => {
    const r = thpsim(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: thpsim /);
    for (const c of COMMANDS) expect(r.stdout).toContain(c);
  });

  it.each(COMMANDS)('%s --help documents --json', (c) => {
    const r = thpsim([c, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`Usage: thpsim ${c}`);
    expect(r.stdout).toContain('--json');
  });

  it('geometry --json', () => {
    const r = thpsim(['geometry', '--json']);
    expect(r.status).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; pageSize: number; pmdSize: number }[];
    expect(list.map((g) => g.name)).toEqual(['x86-64-4k', 'arm64-4k', 'arm64-16k', 'arm64-64k']);
    expect(list[0]).toMatchObject({ pageSize: 4096, pmdSize: 2 * 1024 * 1024 });
    expect(list[3]).toMatchObject({ pageSize: 65536, pmdSize: 512 * 1024 * 1024 });
  });

  it('geometry <name> --json, and text output', () => {
    const one = JSON.parse(thpsim(['geometry', 'arm64-16k', '--json']).stdout) as {
      pmdSize: number;
      mthpSizes: string[];
    };
    expect(one.pmdSize).toBe(32 * 1024 * 1024);
    expect(one.mthpSizes[0]).toBe('32768kB');
    const text = thpsim(['geometry']);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain('arm64-64k');
    expect(text.stdout).not.toContain('\x1b[');
  });

  it('examples --json lists valid, described examples', () => {
    const r = thpsim(['examples', '--json']);
    expect(r.status).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; valid: boolean; description: string }[];
    const names = list.map((e) => e.name);
    for (const n of ['fault-orders', 'fork-cow', 'pageout-shrinker', 'arm64-64k'])
      expect(names).toContain(n);
    for (const e of list) {
      expect(e.valid, e.name).toBe(true);
      expect(e.description.length).toBeGreaterThan(10);
    }
  });

  it('validate accepts the examples', () => {
    const r = thpsim(['validate', 'examples/fork-cow.yaml', 'pageout-shrinker']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('examples/fork-cow.yaml: ok');
    const j = JSON.parse(thpsim(['validate', '--json', 'examples/fault-orders.yaml']).stdout) as {
      ok: boolean;
    };
    expect(j.ok).toBe(true);
  });

  it('validate of a bad file: one line naming the field, non-zero exit', () => {
    const bad = file(
      'bad.yaml',
      'version: 1\nname: x\nprocesses: [{name: a}]\ntimeline:\n  - { op: mmap, proc: a, vma: v, size: 2 megs }\n',
    );
    const line = oneLineError(thpsim(['validate', bad]));
    expect(line).toBe(
      `thpsim: ${bad}: timeline[0].size: expected a size like "2MiB" or a number of bytes, got "2 megs"`,
    );
    const j = thpsim(['validate', '--json', bad]);
    oneLineError(j);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, file: bad });
  });

  it('validate of a YAML syntax error names the line', () => {
    const bad = file('syntax.yaml', 'version: 1\nname: x\nprocesses: [\ntimeline: []\n');
    expect(oneLineError(thpsim(['validate', bad]))).toMatch(
      /syntax\.yaml:4:\d+: YAML syntax error/,
    );
  });

  it('a missing file and a bad option are one-line errors', () => {
    expect(oneLineError(thpsim(['validate', join(tmp, 'nope.yaml')]))).toContain('no such file');
    expect(oneLineError(thpsim(['run', '--profile', 'linux-2.6']))).toContain('linux-7.2');
    expect(oneLineError(thpsim(['run', '--seed', 'abc']))).toContain('expected an integer');
    expect(oneLineError(thpsim(['geometry', 'sparc']))).toContain('x86-64-4k');
    expect(oneLineError(thpsim(['frobnicate']))).toContain("unknown command 'frobnicate'");
    expect(oneLineError(thpsim(['geometry', '--bogus']))).toContain("unknown option '--bogus'");
    expect(oneLineError(thpsim(['validate']))).toContain('missing required argument');
  });

  it('run -o with a bad scenario leaves no output file', () => {
    const dir = mkdtempSync(join(tmp, 'out-'));
    const bad = file(
      'bad-run.yaml',
      'version: 1\nname: x\nprocesses: []\ntimeline:\n  - { op: exit, proc: ghost }\n',
    );
    const out = join(dir, 'result.json');
    const line = oneLineError(thpsim(['run', bad, '-o', out]));
    expect(line).toContain('timeline[0].proc: unknown process "ghost"');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('--version prints the package version', () => {
    const r = thpsim(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
