// The metrics behind `thpsim report` and `thpsim view`: samples, address maps, creep, collapse
// costs, the TLB estimate, buddyinfo, and the collapse explainer's replay of the order walk.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveScenario } from '../src/cli/commands.ts';
import { addressMap, runWithMetrics } from '../src/report/collect.ts';
import { replayExplain } from '../src/report/explain.ts';
import { parseResult } from '../src/report/input.ts';
import {
  COST_ALLOC_US,
  COST_FIXED_US,
  collapseCostUs,
  coverageSeries,
  fragmentation,
  orderRows,
  totalBloatKb,
} from '../src/report/metrics.ts';
import { PTE_NONE, checkTraceOf, orderColor, orderLabel } from '../src/report/model.ts';
import { parseScenario } from '../src/scenario/load.ts';
import { runScenario } from '../src/scenario/run.ts';
import { Machine } from '../src/sim/machine.ts';
import { ROOT } from './support/cli.ts';

const creep = resolveScenario('mthp-creep').scenario;
const v10 = runWithMetrics({ ...creep, collapse_policy: 'v10-scaled' });
const v19 = runWithMetrics({ ...creep, collapse_policy: 'v19' });

describe('metrics collector', () => {
  it('leaves the run result as `thpsim run` makes it', () => {
    const plain = runScenario({ ...creep, collapse_policy: 'v10-scaled' });
    const { metrics, ...rest } = v10;
    expect(metrics.format).toBe('thpsim-metrics');
    expect(JSON.stringify(rest)).toBe(JSON.stringify(plain));
  });

  it('samples coverage in time order, ending at the final report', () => {
    const s = v10.metrics.samples;
    expect(s.length).toBeGreaterThan(v10.events.length / 2);
    for (let i = 1; i < s.length; i++) expect(s[i].t).toBeGreaterThanOrEqual(s[i - 1].t);
    const last = s[s.length - 1];
    const final = v10.reports[v10.reports.length - 1];
    expect(last.t).toBe(final.clockMs);
    expect(last.anonKb).toBe(final.processes[0].totals.Anonymous);
    expect(last.byOrderKb).toEqual(final.processes[0].totals.byOrder);
    expect(last.bloatKb).toBe(totalBloatKb(v10));
    // The series has one point per simulated time.
    const ts = coverageSeries(v10).map((p) => p.t);
    expect(new Set(ts).size).toBe(ts.length);
  });

  it('finds creep under v10-scaled and none under the merged design', () => {
    expect(v19.metrics.creep).toEqual([]);
    const c = v10.metrics.creep;
    expect(c.length).toBeGreaterThan(0);
    for (const e of c) {
      expect(e.toOrder).toBeGreaterThan(e.fromOrder);
      expect(e.t).toBeGreaterThan(e.sinceMs);
      expect(e.vma).toBe('heap');
    }
    // The heap's first PMD creeps order by order up to the PMD order (the example's comment).
    const first = c.filter((e) => e.addr === c[0].addr).map((e) => e.toOrder);
    expect(first[first.length - 1]).toBe(9);
  });

  it('prices every successful collapse with the documented cost model', () => {
    const costs = v10.metrics.collapseCosts;
    const succeeded = Object.values(v10.collapses.byOrder).reduce((a, c) => a + c.succeeded, 0);
    expect(costs).toHaveLength(succeeded);
    for (const x of costs) {
      expect(x.copied + x.zeroed).toBe(x.pages);
      expect(x.us).toBe(collapseCostUs(x.copied, x.zeroed, 4096));
    }
    expect(collapseCostUs(0, 0, 4096)).toBe(COST_FIXED_US + COST_ALLOC_US);
    // Copying costs more per page than zeroing.
    expect(collapseCostUs(512, 0, 4096)).toBeGreaterThan(collapseCostUs(0, 512, 4096));
  });

  it('maps every PMD of the heap with the order smaps reports', () => {
    const end = v10.metrics.maps[v10.metrics.maps.length - 1];
    expect(end.label).toBe('end');
    expect(v10.metrics.maps.map((m) => m.label)).toEqual([
      ...v10.reports.map((r) => r.label),
      'end',
    ]);
    const heap = end.vmas.find((v) => v.name === 'heap')!;
    expect(heap.pmds).toHaveLength(4);
    const final = v10.reports[v10.reports.length - 1].processes[0].vmas.find(
      (v) => v.name === 'heap',
    )!;
    expect(heap.pmds.filter((p) => p.huge).length * 2048).toBe(final.AnonHugePages);
    for (const p of heap.pmds) {
      expect(p.ptes).toHaveLength(512);
      if (p.huge) expect(p.ptes).not.toContain(PTE_NONE);
    }
    // At the first report each PMD range holds what the timeline wrote: 1, NR/8, NR/2, NR/64.
    const faulted = v10.metrics.maps[0].vmas.find((v) => v.name === 'heap')!;
    expect(faulted.pmds.map((p) => 512 - p.ptes!.split(PTE_NONE).length + 1)).toEqual([
      1, 64, 256, 8,
    ]);
    expect(faulted.pmds.map((p) => p.order)).toEqual([0, 0, 0, 0]);
  });

  it('keeps buddyinfo consistent with MemFree', () => {
    const final = v10.reports[v10.reports.length - 1];
    const f = fragmentation(v10.metrics.buddyinfo, 4, 9);
    expect(f.freeKb).toBe(final.meminfo.MemFree);
    expect(f.unusableForPmd).toBeGreaterThanOrEqual(0);
    expect(f.unusableForPmd).toBeLessThan(1);
  });

  it('reports fallback rates and per-order rows for every order', () => {
    const rows = orderRows(v10);
    expect(rows.map((r) => r.order)).toEqual(v10.metrics.orders);
    const pmd = rows.find((r) => r.order === 9)!;
    expect(pmd.collapses).toBe(v10.collapses.byOrder[9].succeeded);
    expect(pmd.bloatKb).toBe(v10.collapses.byOrder[9].bloatPages * 4);
    expect(rows.find((r) => r.order === 0)!.fallbackRate).toBeNull();
  });
});

describe('TLB estimate', () => {
  const yaml = (enabled: string) => `
version: 1
name: tlb
sysfs: { enabled: ${enabled} }
processes: [{ name: app }]
timeline:
  - { op: mmap, proc: app, vma: heap, size: 8MiB, align: 2MiB }
  - { op: write, proc: app, vma: heap }
  - { op: touch, proc: app, vma: heap }
  - { op: touch, proc: app, vma: heap }
`;
  it('counts PMD-mapped accesses as 2M entries and fewer misses than base pages', () => {
    const r = runWithMetrics(parseScenario(yaml('always'), 'tlb.yaml'));
    const t = r.metrics.tlb;
    expect(t.accesses).toBe(3 * 2048);
    const two = t.classes.find((c) => c.name === '2M')!;
    // The first write faults the PMD in; every access after that hits a 2M mapping.
    expect(two.accesses).toBe(3 * 2048);
    expect(t.misses).toBe(4);
    expect(t.baselineMisses).toBe(3 * 2048);
    expect(t.reachBytes).toBe(4 * 2 * 1024 * 1024);
  });

  it('with base pages every page is its own entry', () => {
    const r = runWithMetrics(parseScenario(yaml('never'), 'tlb.yaml'));
    const t = r.metrics.tlb;
    expect(t.classes.find((c) => c.name === '4K')!.accesses).toBe(3 * 2048);
    // 2048 pages do not fit in 1536 entries: LRU misses on every access of a cyclic sweep.
    expect(t.misses).toBe(t.baselineMisses);
    expect(t.misses).toBe(3 * 2048);
  });

  it('coalesces arm64 contpte blocks into one entry', () => {
    const s = parseScenario(
      `
version: 1
name: contpte
geometry: arm64-4k
sysfs: { enabled: never, hugepages-64kB/enabled: always }
processes: [{ name: app }]
timeline:
  - { op: mmap, proc: app, vma: heap, size: 8MiB, align: 2MiB }
  - { op: write, proc: app, vma: heap }
  - { op: touch, proc: app, vma: heap }
`,
      'contpte.yaml',
    );
    const t = runWithMetrics(s).metrics.tlb;
    const cont = t.classes.find((c) => c.name.includes('contpte'))!;
    expect(cont.name).toBe('64K (contpte)');
    expect(cont.accesses).toBeGreaterThan(2048);
    expect(t.misses).toBeLessThan(t.baselineMisses / 4);
  });
});

describe('collapse explainer replay', () => {
  it('replays every recorded order walk exactly, under every policy', () => {
    for (const policy of ['v19', 'v11-stack', 'v10-scaled', 'v11-cap'] as const) {
      const r =
        policy === 'v19'
          ? v19
          : policy === 'v10-scaled'
            ? v10
            : runWithMetrics({ ...creep, collapse_policy: policy });
      expect(r.metrics.explain.length, policy).toBeGreaterThan(0);
      let made = 0;
      for (const x of r.metrics.explain) {
        const rp = replayExplain(x);
        expect(rp.diverged, `${policy} t=${x.t}`).toBeNull();
        expect(rp.steps.filter((s) => s.kind === 'attempt')).toHaveLength(x.attempts.length);
        made += rp.folios.length;
      }
      const succeeded = Object.entries(r.collapses.byOrder)
        .filter(([o]) => Number(o) < 9)
        .reduce((a, [, c]) => a + c.succeeded, 0);
      // Every sub-PMD collapse came out of a recorded walk (PMD-order ones may too).
      expect(made, policy).toBeGreaterThanOrEqual(succeeded);
    }
  });

  it('shows each density test against the threshold (v19, NR/8 pages written)', () => {
    // The second PMD range at the first scan: 64 occupied PTEs at its start.
    const x = v19.metrics.explain.find((e) => e.vmaOffset === 2 * 1024 * 1024)!;
    const rp = replayExplain(x);
    const tests = rp.steps.filter((s) => s.kind === 'test');
    expect(tests[0]).toMatchObject({ offset: 0, order: 9, count: 64, need: 128, dense: false });
    const firstDense = tests.find((s) => s.kind === 'test' && s.dense)!;
    expect(firstDense).toMatchObject({ offset: 0, order: 6, count: 64, need: 64 });
    expect(rp.folios).toEqual([[0, 6]]);
    expect(rp.result).toBe('SCAN_SUCCEED');
  });
});

describe('inputs', () => {
  it('accepts run, compare and check files and rejects others with one line', () => {
    expect(parseResult(JSON.stringify(v10), false).kind).toBe('run');
    const check = readFileSync(join(ROOT, 'test/fixtures/check-trace-r1.json'), 'utf8');
    expect(parseResult(check, true).kind).toBe('check');
    const wrapped = JSON.stringify({ case: 'x', counterexample: JSON.parse(check) });
    expect(parseResult(wrapped, true).kind).toBe('check');
    expect(checkTraceOf(JSON.parse(wrapped))?.violation.step).toBe(10);
    expect(() => parseResult('{', false)).toThrow(/^not JSON/);
    expect(() => parseResult(check, false)).toThrow(/format is "thpsim-check-trace", expected/);
    expect(() => parseResult('{"format":"thpsim-run","version":1}', false)).toThrow(
      /^not a valid run result: scenario/,
    );
    const bad = JSON.parse(check);
    bad.steps[3].thread = 7;
    expect(() => parseResult(JSON.stringify(bad), true)).toThrow(/thread that is not listed/);
  });
});

describe('palette and labels', () => {
  it('gives every order its own fixed colour', () => {
    expect(orderColor(9, 9)).toBe('#d62728');
    expect(orderColor(-1, 9)).toBe('#e8e8e8');
    const mthp = [2, 3, 4, 5, 6, 7, 8].map((o) => orderColor(o, 9));
    expect(new Set(mthp).size).toBe(7);
    expect(orderLabel(4, 4)).toBe('64K');
    expect(orderLabel(13, 64)).toBe('512M');
  });

  it('addressMap limits PTE detail to a budget', () => {
    const m = new Machine();
    const mm = m.spawn('p');
    m.mmap(mm, { lengthBytes: 8 << 20, alignBytes: 2 << 20, name: 'x' });
    const map = addressMap(m, 'now', 1024);
    expect(map.vmas[0].pmds).toHaveLength(4);
    expect(map.vmas[0].pmds.filter((p) => p.ptes !== undefined)).toHaveLength(2);
  });
});
