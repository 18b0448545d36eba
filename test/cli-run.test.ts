// The CLI commands that run the model behind Machine: `run` (built-in default and every example)
// and `sysfs`. They pass once the Machine facade is implemented.

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, thpsim } from './support/cli.ts';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../src/scenario/run.ts';

function ok(args: string[]): string {
  const r = thpsim(args);
  expect(r.stderr, `thpsim ${args.join(' ')}`).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

const tmp = mkdtempSync(join(tmpdir(), 'thpsim-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const EXAMPLES = readdirSync(join(ROOT, 'examples'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();

function checkResult(r: RunResult): void {
  expect(r.format).toBe('thpsim-run');
  expect(r.version).toBe(1);
  expect(r.reports.length).toBeGreaterThan(0);
  for (const rep of r.reports) {
    expect(rep.processes.length).toBeGreaterThan(0);
    for (const p of rep.processes) {
      expect(p.vmas.length).toBeGreaterThan(0);
      for (const v of p.vmas) {
        expect(v.end).toBeGreaterThan(v.start);
        expect(v.Rss).toBeLessThanOrEqual(v.Size);
        expect(v.AnonHugePages).toBeLessThanOrEqual(v.Anonymous);
      }
    }
    expect(rep.orders.length).toBeGreaterThan(0);
    expect(rep.meminfo.MemTotal).toBe(r.config.ramBytes / 1024);
  }
}

describe('thpsim run', () => {
  it('runs the built-in default scenario (text, no colours on a pipe)', () => {
    const out = ok(['run']);
    expect(out).toContain('scenario default');
    expect(out).toContain('AnonHugePages');
    expect(out).toContain('anon_fault_alloc');
    expect(out).toContain('MemTotal:');
    expect(out).not.toContain('\x1b[');
  });

  it('run --json of the default: PMD THPs in the heap', () => {
    const r = JSON.parse(ok(['run', '--json'])) as RunResult;
    checkResult(r);
    const last = r.reports[r.reports.length - 1];
    const app = last.processes.find((p) => p.name === 'app')!;
    const heap = app.vmas.find((v) => v.name === 'heap')!;
    expect(heap.AnonHugePages).toBeGreaterThan(0);
    expect(last.processes.map((p) => p.name)).toEqual(['app', 'worker']);
  });

  it.each(EXAMPLES)('run --json examples/%s', (f) => {
    const r = JSON.parse(
      ok(['run', '--json', '--check-invariants', join('examples', f)]),
    ) as RunResult;
    checkResult(r);
  });

  it('is deterministic, and -o writes the same JSON', () => {
    const out = join(tmp, 'fork.json');
    const a = ok(['run', '--json', 'examples/fork-cow.yaml', '-o', out]);
    const b = ok(['run', '--json', 'examples/fork-cow.yaml']);
    expect(a).toBe(b);
    expect(readFileSync(out, 'utf8')).toBe(a);
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('--profile, --geometry and --seed override the header', () => {
    const r = JSON.parse(
      ok([
        'run',
        '--json',
        'fork-cow',
        '--profile',
        'linux-6.18',
        '--geometry',
        'arm64-4k',
        '--seed',
        '42',
      ]),
    ) as RunResult;
    expect(r.config).toMatchObject({ profile: 'linux-6.18', geometry: 'arm64-4k', seed: 42 });
  });

  it('fault-orders: no PMD THP, mTHP orders as configured', () => {
    const r = JSON.parse(ok(['run', '--json', 'fault-orders'])) as RunResult;
    const first = r.reports[0];
    const vmas = Object.fromEntries(first.processes[0].vmas.map((v) => [v.name, v]));
    expect(first.meminfo.AnonHugePages).toBe(0);
    expect(vmas.small.byOrder).toEqual({ 4: 1024 });
    expect(vmas.advised.byOrder).toEqual({ 7: 1024 });
    expect(vmas.odd.byOrder).toEqual({ 2: 32, 0: 8 });
  });

  it('pageout-shrinker: the shrinker splits underused THPs', () => {
    const r = JSON.parse(ok(['run', '--json', 'pageout-shrinker'])) as RunResult;
    const last = r.reports[r.reports.length - 1];
    expect(last.vmstat.thp_underused_split_page).toBeGreaterThan(0);
    expect(last.vmstat.thp_deferred_split_page).toBeGreaterThan(0);
  });
});

describe('thpsim sysfs', () => {
  it('prints the tree', () => {
    const out = ok(['sysfs']);
    expect(out).toMatch(/^enabled: .*\[always\]/m);
    expect(out).toMatch(/^hugepages-2048kB\/enabled: /m);
    expect(out).toMatch(/^khugepaged\/max_ptes_none: 511$/m);
  });

  it('--json, per geometry', () => {
    const tree = JSON.parse(ok(['sysfs', '--json', '--geometry', 'arm64-64k'])) as Record<
      string,
      string
    >;
    expect(tree['hpage_pmd_size']).toBe(String(512 * 1024 * 1024));
    expect(tree['khugepaged/max_ptes_none']).toBe('8191');
    expect(JSON.parse(ok(['sysfs', 'enabled', '--json']))).toEqual({
      path: 'enabled',
      value: 'always madvise never'.replace('always', '[always]'),
    });
  });

  it('one file, and a one-line error for a missing one', () => {
    expect(ok(['sysfs', 'hpage_pmd_size'])).toBe('2097152\n');
    const r = thpsim(['sysfs', 'no/such/file']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^thpsim: .*ENOENT/);
  });
});
