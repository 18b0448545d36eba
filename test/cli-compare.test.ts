// `thpsim compare`: the creep and reach examples under several designs, JSON and its
// determinism, knob sweeps with expressions, and the error contract.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CompareResult } from '../src/report/compare.ts';
import { oneLineError, thpsim } from './support/cli.ts';

function compare(args: string[]): CompareResult {
  const r = thpsim(['compare', ...args, '--json']);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as CompareResult;
}

describe('thpsim compare', () => {
  it('mthp-creep: v10-scaled creeps to PMD order, v19 and v11-cap are steady after one scan', () => {
    const r = compare(['mthp-creep', '--policies', 'v19,v10-scaled,v11-cap']);
    const by = Object.fromEntries(r.runs.map((x) => [x.policy, x]));
    expect(Object.keys(by)).toEqual(['v19', 'v10-scaled', 'v11-cap']);
    // The heap ends fully PMD-mapped under v10-scaled, coverage changing over five scans.
    expect(by['v10-scaled'].anonKb).toBe(8192);
    expect(by['v10-scaled'].orders.map((o) => [o.size, o.kb])).toContainEqual(['2M', 8192]);
    const v10 = by['v10-scaled'].timeline.map((t) => JSON.stringify(t.byOrder));
    expect(new Set(v10.slice(1, 6)).size).toBe(5);
    expect(by['v10-scaled'].steadyMs).toBe(4000);
    // Bloat per order adds up to what the collapses added to the heap.
    const written = by['v10-scaled'].timeline[0].byOrder[0];
    expect(by['v10-scaled'].anonKb - written).toBeLessThanOrEqual(by['v10-scaled'].bloatKb);
    for (const p of ['v19', 'v11-cap']) {
      const tl = by[p].timeline.map((t) => JSON.stringify(t.byOrder));
      expect(new Set(tl.slice(1)).size, p).toBe(1);
      expect(by[p].steadyMs, p).toBe(0);
      expect(by[p].anonKb, p).toBe(2340);
    }
    // The merged design re-tries already collapsed windows: alloc, then SCAN_PTE_MAPPED_HUGEPAGE.
    expect(by.v19.failures).toEqual({ SCAN_PTE_MAPPED_HUGEPAGE: 14 });
  });

  it('a knob sweep runs every combination and evaluates expressions per geometry', () => {
    const r = compare([
      'mthp-creep',
      '--policies',
      'v10-scaled',
      '--knob',
      'khugepaged/max_ptes_none=0,NR/2-1,NR-1',
      '--geometry',
      'arm64-16k',
    ]);
    expect(r.runs.map((x) => x.name)).toEqual([
      'v10-scaled, khugepaged/max_ptes_none=0',
      'v10-scaled, khugepaged/max_ptes_none=1023',
      'v10-scaled, khugepaged/max_ptes_none=2047',
    ]);
    // Below NR/2 nothing creeps; NR-1 collapses every range with a page to PMD at once.
    expect(r.runs[0].stillChanging || r.runs[1].stillChanging).toBe(false);
    expect(r.runs[2].hugePct).toBe(100);
  });

  it('arm64-64k-reach: pte-level reaches the memory v19 cannot', () => {
    const r = compare(['arm64-64k-reach', '--policies', 'v19,pte-level']);
    const [v19, pte] = r.runs;
    expect(v19.reach).toEqual(pte.reach);
    const outside = v19.reach.anonKb - v19.reach.inPmdSpansKb;
    expect(outside).toBeGreaterThan(v19.reach.anonKb / 2);
    expect(v19.hugeKb).toBe(v19.reach.inPmdSpansKb);
    expect(pte.hugeKb).toBeGreaterThan(v19.hugeKb + outside - 2048);
    expect(pte.orders.find((o) => o.size === '2M')?.collapses).toBeGreaterThan(100);
    expect(v19.stillChanging || pte.stillChanging).toBe(false);
  });

  it('text output names every run, and -o writes the same JSON atomically', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thpsim-compare-'));
    const out = join(dir, 'c.json');
    const r = thpsim(['compare', 'mthp-creep', '--policies', 'v19,v10-scaled', '-o', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('== v10-scaled ==');
    expect(r.stdout).toContain('coverage at each report');
    expect(r.stdout).toMatch(/v10-scaled .* 4000 ms/);
    const again = thpsim(['compare', 'mthp-creep', '--policies', 'v19,v10-scaled', '--json']);
    expect(readFileSync(out, 'utf8')).toBe(again.stdout);
    expect(readdirSync(dir)).toEqual(['c.json']);
  });

  it('bad input: one line, non-zero exit, nothing written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thpsim-compare-'));
    const out = join(dir, 'c.json');
    expect(
      oneLineError(thpsim(['compare', 'mthp-creep', '--policies', 'v19,v99', '-o', out])),
    ).toMatch(/"v99" is not a policy/);
    expect(
      oneLineError(thpsim(['compare', 'mthp-creep', '--knob', 'max_ptes_none', '-o', out])),
    ).toMatch(/path=value/);
    expect(
      oneLineError(
        thpsim(['compare', 'mthp-creep', '--knob', 'khugepaged/max_ptes_none=NR', '-o', out]),
      ),
    ).toMatch(/max_ptes_none/);
    expect(oneLineError(thpsim(['compare', 'no-such-example']))).toMatch(/no such file/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
