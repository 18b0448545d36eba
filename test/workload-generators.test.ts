// Workload generators and the memory cgroup they need: the stride and Redis binary oracles, memcg
// accounting, charge failures in collapse, determinism and parameter errors.

import { describe, expect, it } from 'vitest';
import { parseScenario } from '../src/scenario/load.ts';
import { runScenario } from '../src/scenario/run.ts';
import { Machine } from '../src/sim/machine.ts';
import {
  GENERATORS,
  WorkloadError,
  generate,
  parseWorkloadRef,
} from '../src/workload/generators.ts';
import { workloadOutcome } from '../src/workload/outcome.ts';
import { buildWorkload } from '../src/workload/scenario.ts';
import { oneLineError, thpsim } from './support/cli.ts';

const MiB = 1024 * 1024;

function outcome(name: string, params: Record<string, string> = {}, check = false) {
  const r = runScenario(buildWorkload(name, params), { checkInvariants: check });
  return { r, o: workloadOutcome(r) };
}

describe('stride: the THP shrinker oracle (40M at a 50K stride in memory.max=20M)', () => {
  it('runs out of memory without the shrinker (max_ptes_none 511, the default)', () => {
    const { o } = outcome('stride');
    expect(o.oom).toBe(true);
    expect(o.memcg[0]).toMatchObject({
      name: 'stress',
      maxKb: 20 * 1024,
      peakKb: 20 * 1024,
      oom_kill: 1,
    });
    expect(o.vmstat.thp_underused_split_page).toBe(0);
    // The fault fell back to a small page once the THP charge failed (anon_fault_fallback_charge).
    expect(o.vmstat.thp_fault_fallback_charge).toBeGreaterThan(0);
  });

  it('survives with the shrinker at max_ptes_none 470, splitting the underused THPs', () => {
    const { r, o } = outcome('stride', { max_ptes_none: '470' }, true);
    expect(o.oom).toBe(false);
    expect(o.vmstat.thp_underused_split_page).toBeGreaterThan(0);
    // memory.current is exactly the anonymous memory the process maps.
    const end = r.reports[0];
    expect(end.memcg?.[0].current).toBe(end.processes[0].totals.Anonymous);
    expect(end.memcg?.[0].current).toBeLessThanOrEqual(20 * 1024);
  });

  it('has its threshold at 470: every THP holds 41 written pages, so 471 keeps them all', () => {
    for (const [mpn, oom] of [
      ['0', false],
      ['409', false],
      ['470', false],
      ['471', true],
      ['NR-1', true],
    ] as const)
      expect(outcome('stride', { max_ptes_none: mpn }).o.oom, `max_ptes_none=${mpn}`).toBe(oom);
  });

  it('runs out of memory at 470 when shrink_underused is off', () => {
    expect(outcome('stride', { max_ptes_none: '470', shrink_underused: '0' }).o.oom).toBe(true);
  });
});

describe('redis-3phase (HawkEye)', () => {
  it('runs out of memory when khugepaged re-collapses the sparse heap; not at max_ptes_none 409', () => {
    const bad = outcome('redis-3phase');
    expect(bad.o.oom).toBe(true);
    expect(bad.o.bloatKb[9]).toBeGreaterThan(8 * 1024);
    const good = outcome('redis-3phase', { max_ptes_none: '409' });
    expect(good.o.oom).toBe(false);
    expect(good.o.bloatKb[9] ?? 0).toBeLessThan(bad.o.bloatKb[9]);
  });
});

describe('memcg', () => {
  const scenario = (extra: string) =>
    parseScenario(
      `version: 1
name: memcg
ram: 64MiB
sysfs: { enabled: always }
processes: [{ name: app, memory_max: 4MiB }]
timeline:
${extra}`,
      'memcg.yaml',
    );

  it('a collapse that cannot be charged fails with SCAN_CGROUP_CHARGE_FAIL', () => {
    const r = runScenario(
      scenario(`  - { op: sysfs, path: enabled, value: never }
  - { op: mmap, proc: app, vma: a, size: 2MiB, align: 2MiB }
  - { op: write, proc: app, vma: a }
  - { op: mmap, proc: app, vma: b, size: 2MiB, align: 2MiB }
  - { op: write, proc: app, vma: b, length: 1MiB }
  - { op: madvise, proc: app, vma: b, advice: collapse }`),
      { checkInvariants: true },
    );
    // madvise_collapse_errno: a charge failure is EBUSY.
    expect(r.events[5].result).toBe('EBUSY');
    expect(r.collapses.pmdResults).toEqual({ SCAN_CGROUP_CHARGE_FAIL: 1 });
    expect(r.collapses.byOrder[9].results.SCAN_CGROUP_CHARGE_FAIL).toBe(1);
  });

  it('charges follow fork (the child joins the cgroup) and go back on exit', () => {
    const r = runScenario(
      scenario(`  - { op: mmap, proc: app, vma: a, size: 2MiB, align: 2MiB }
  - { op: write, proc: app, vma: a }
  - { op: fork, proc: app, child: kid }
  - { op: write, proc: kid, vma: a, length: 1MiB }
  - { op: report, label: forked }
  - { op: exit, proc: kid }
  - { op: exit, proc: app }
  - { op: report, label: gone }`),
      { checkInvariants: true },
    );
    // The parent's THP (2M) plus the child's 256 COW copies (1M).
    expect(r.reports[0].memcg?.[0].current).toBe(3 * 1024);
    expect(r.reports[1].memcg?.[0]).toMatchObject({ current: 0, peak: 3 * 1024 });
  });

  it('an order-0 charge over the limit with nothing to reclaim is an OOM', () => {
    const m = new Machine({ ramBytes: 64 * MiB, strictLocks: true });
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('app');
    m.memoryMax(mm, 1 * MiB);
    const addr = m.mmap(mm, { lengthBytes: 2 * MiB });
    expect(m.touch(mm, addr, 1 * MiB, true)).toBe('fault');
    expect(m.access(mm, addr + 1 * MiB, true)).toBe('oom');
    expect(m.memcgs()[0].events).toEqual({ max: 1, oom: 1, oom_kill: 1 });
    expect(m.vmstat().oom_kill).toBe(1);
    m.checkInvariants();
  });

  it('rejects a bad memory_max', () => {
    expect(() =>
      parseScenario(
        'version: 1\nname: x\nprocesses: [{ name: a, memory_max: lots }]\ntimeline: []',
        'x.yaml',
      ),
    ).toThrow(
      /processes\[0\]\.memory_max: expected a size like "2MiB" or a number of bytes or "max"/,
    );
  });
});

describe('generators', () => {
  it('every generator builds a valid scenario that runs, deterministically', () => {
    for (const g of GENERATORS) {
      const a = runScenario(buildWorkload(g.name, { seed: '7' }));
      const b = runScenario(buildWorkload(g.name, { seed: '7' }));
      expect(JSON.stringify(a), g.name).toBe(JSON.stringify(b));
      expect(a.reports.length, g.name).toBeGreaterThan(0);
      expect(g.doc.length).toBeGreaterThan(40);
    }
  }, 60_000);

  it('the seed changes what a random workload does', () => {
    const a = JSON.stringify(generate('malloc-churn', { seed: '1' }));
    const b = JSON.stringify(generate('malloc-churn', { seed: '2' }));
    expect(a).not.toBe(b);
  });

  it('frag-100 leaves no free PMD-sized block: PMD faults fall back until khugepaged compacts', () => {
    const { r } = outcome('frag-100');
    const faulted = r.reports.find((x) => x.label === 'faulted')!;
    const after = r.reports.find((x) => x.label === 'after-khugepaged')!;
    const app = (rep: typeof faulted) => rep.processes.find((p) => p.name === 'app')!.totals;
    expect(faulted.vmstat.thp_fault_fallback).toBeGreaterThan(0);
    expect(app(faulted).AnonHugePages).toBeLessThan(app(faulted).Rss);
    expect(app(after).AnonHugePages).toBeGreaterThan(app(faulted).AnonHugePages);
    // frag-50 leaves half the blocks whole: fewer fallbacks.
    const half = outcome('frag-50').r.reports.find((x) => x.label === 'faulted')!;
    expect(half.vmstat.thp_fault_fallback).toBeLessThan(faulted.vmstat.thp_fault_fallback);
  });

  it('many-small-vmas on arm64-64k: v19 cannot collapse sub-PMD VMAs, pte-level can', () => {
    const params = {
      geometry: 'arm64-64k',
      size: '8MiB',
      count: '8',
      mthp: '2048kB',
      max_ptes_none: 'NR-1',
      density: '0.5',
    };
    const v19 = runScenario({
      ...buildWorkload('many-small-vmas', params),
      collapse_policy: 'v19',
    });
    const pte = runScenario({
      ...buildWorkload('many-small-vmas', params),
      collapse_policy: 'pte-level',
    });
    // Below PMD order (13 with 64K pages): none under v19, the small VMAs under pte-level.
    const subPmd = (r: typeof v19) =>
      Object.keys(workloadOutcome(r).bloatKb).filter((o) => Number(o) < 13);
    expect(subPmd(v19)).toEqual([]);
    expect(subPmd(pte)).toEqual(['5']);
  });

  it('bad names and parameters are one-line errors', () => {
    expect(() => generate('nope')).toThrow(WorkloadError);
    expect(() => generate('stride', { bogus: '1' })).toThrow(/stride has no parameter "bogus"/);
    expect(() => generate('stride', { bytes: 'lots' })).toThrow(/bytes: expected a size/);
    expect(() => generate('sparse-heap', { density: '2' })).toThrow(
      /density: expected a number from 0 to 1/,
    );
    expect(() => generate('sparse-heap', { mthp: '64k' })).toThrow(
      /mthp: expected sizes like "64kB"/,
    );
    expect(parseWorkloadRef('workload:stride:max_ptes_none=470,bytes=8MiB')).toEqual({
      name: 'stride',
      params: { max_ptes_none: '470', bytes: '8MiB' },
    });
    expect(parseWorkloadRef('examples/x.yaml')).toBeNull();
  });
});

describe('CLI', () => {
  it('thpsim workload stride prints the verdict; run and compare take workload:NAME', () => {
    const w = thpsim(['workload', 'stride', '-p', 'max_ptes_none=470', '--json']);
    expect(w.status).toBe(0);
    expect(JSON.parse(w.stdout).runs[0].oom).toBe(false);
    const t = thpsim(['workload', 'stride']);
    expect(t.stdout).toMatch(/policy v19: OOM \(first at timeline\[1\] write stress\/buf\)/);
    const run = thpsim(['run', 'workload:stride:max_ptes_none=470', '--json']);
    expect(JSON.parse(run.stdout).reports[0].memcg[0].events.oom_kill).toBe(0);
    expect(thpsim(['run', 'workload:stride']).stdout).toContain(
      'memcg stress\n  memory.current 20480 kB, memory.max 20480 kB, memory.peak 20480 kB; memory.events max 2, oom 1, oom_kill 1\n',
    );
    const sweep = JSON.parse(
      thpsim(['workload', 'stride', '--sweep', 'max_ptes_none=470,471', '--json']).stdout,
    ) as { runs: Array<{ label: string; oom: boolean }> };
    expect(sweep.runs.map((r) => [r.label, r.oom])).toEqual([
      ['max_ptes_none=470', false],
      ['max_ptes_none=471', true],
    ]);
    const emit = thpsim(['workload', 'sparse-heap', '--emit']);
    expect(emit.stdout).toMatch(/^version: 1\nname: sparse-heap/);
    const list = thpsim(['workload', '--json']);
    expect(JSON.parse(list.stdout).map((g: { name: string }) => g.name)).toContain('frag-100');
  });

  it('errors are one line', () => {
    expect(oneLineError(thpsim(['workload', 'nope']))).toMatch(/no workload named "nope"/);
    expect(oneLineError(thpsim(['run', 'workload:stride:bytes=x']))).toMatch(
      /workload:stride:bytes=x: bytes: expected a size/,
    );
    expect(oneLineError(thpsim(['workload', 'stride', '--policies', 'v99']))).toMatch(
      /unknown policy "v99"/,
    );
  });
});
