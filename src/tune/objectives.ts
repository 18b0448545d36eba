// The objectives `thpsim tune` weighs, each computed from the model's own run of a setting:
//
//   coverage       % of anonymous memory mapped by folios of order > 0 (and per folio size)
//   bloat          kB of empty or zero-filled PTEs collapses filled (memory THP added)
//   khugepaged CPU µs of collapse work by the cost model of src/report/metrics.ts (COST_MODEL)
//   TLB reach      kB the second-level TLB maps at the end (src/report/tlb.ts's model for
//                  scenarios; for snapshots and traces, whose access stream is unknown, the
//                  mapping mix: TLB_L2 entries spread evenly over the final mappings)
//   memcg OOM      a constraint, not an objective: a setting under which any access ended in an
//                  OOM kill (memcg or global) is infeasible, whatever else it reaches.

import type { RunWithMetrics } from '../report/collect.ts';
import {
  COPY_BYTES_PER_US,
  COST_ALLOC_US,
  COST_FIXED_US,
  ZERO_BYTES_PER_US,
  latencyTotal,
} from '../report/metrics.ts';
import { TLB_L2 } from '../report/tlb.ts';
import { formatKb } from '../scenario/size.ts';
import type { WhatifResult } from '../snapshot/whatif.ts';
import { workloadOutcome } from '../workload/outcome.ts';
import type { ReplayResult } from '../workload/replay.ts';

/** What one setting reached: the result of a tune cell. */
export interface TuneObjectives {
  oom: boolean;
  /** Where the first OOM happened, or null. */
  oomEvent: string | null;
  rssKb: number;
  anonKb: number;
  /** Mapped by folios of order > 0 at the end. */
  hugeKb: number;
  hugePct: number;
  /** % of anonymous memory per folio size of order > 0 ("2M", "64K"), largest first. */
  coverage: Array<{ size: string; pct: number }>;
  bloatKb: number;
  collapses: number;
  khugepagedUs: number;
  tlbReachKb: number;
  tlbSource: 'model' | 'mapping mix';
}

/** An objective: how to read it off a point, and which way is better. */
export interface Objective {
  name: 'coverage' | 'bloat' | 'cpu' | 'tlb';
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  value(o: TuneObjectives): number;
}

export const OBJECTIVES: readonly Objective[] = [
  {
    name: 'coverage',
    label: 'huge coverage',
    unit: '%',
    better: 'higher',
    value: (o) => o.hugePct,
  },
  { name: 'bloat', label: 'bloat', unit: 'kB', better: 'lower', value: (o) => o.bloatKb },
  {
    name: 'cpu',
    label: 'khugepaged CPU',
    unit: 'µs',
    better: 'lower',
    value: (o) => o.khugepagedUs,
  },
  { name: 'tlb', label: 'TLB reach', unit: 'kB', better: 'higher', value: (o) => o.tlbReachKb },
];

const round2 = (x: number): number => Math.round(x * 100) / 100;
const pctOf = (kb: number, anonKb: number): number =>
  anonKb > 0 ? round2((100 * kb) / anonKb) : 0;

/** Coverage per folio size from kB per order (order 0 left out), largest first. */
function coverageOf(byOrderKb: Record<number, number>, pageKb: number, anonKb: number) {
  return Object.entries(byOrderKb)
    .map(([o, kb]) => [Number(o), kb] as const)
    .filter(([o, kb]) => o > 0 && kb > 0)
    .sort((a, b) => b[0] - a[0])
    .map(([o, kb]) => ({ size: formatKb((1 << o) * pageKb), pct: pctOf(kb, anonKb) }));
}

/** The TLB reach if TLB_L2 entries were spread evenly over the mappings (kB). */
export function mappingMixReachKb(byOrderKb: Record<number, number>, pageKb: number): number {
  let kb = 0;
  let entries = 0;
  for (const [o, x] of Object.entries(byOrderKb)) {
    kb += x;
    entries += x / ((1 << Number(o)) * pageKb);
  }
  return entries > 0 ? Math.round(Math.min(kb, (TLB_L2 * kb) / entries)) : 0;
}

/** The cost model's µs for `n` collapses of `pages` pages that zero-filled `zeroed` in all. */
function costUs(n: number, pages: number, zeroed: number, pageSize: number): number {
  return (
    n * (COST_FIXED_US + COST_ALLOC_US) +
    ((n * pages - zeroed) * pageSize) / COPY_BYTES_PER_US +
    (zeroed * pageSize) / ZERO_BYTES_PER_US
  );
}

/** The objectives of a scenario run collected with metrics. */
export function objectivesOfRun(r: RunWithMetrics): TuneObjectives {
  const o = workloadOutcome(r);
  const pageKb = r.config.pageSize / 1024;
  const anonKb = r.reports.at(-1)!.processes.reduce((a, p) => a + p.totals.Anonymous, 0);
  const hugeKb = Object.entries(o.byOrderKb)
    .filter(([k]) => Number(k) > 0)
    .reduce((a, [, kb]) => a + kb, 0);
  return {
    oom: o.oom,
    oomEvent: o.oomEvent,
    rssKb: o.rssKb,
    anonKb,
    hugeKb,
    hugePct: pctOf(hugeKb, anonKb),
    coverage: coverageOf(o.byOrderKb, pageKb, anonKb),
    bloatKb: Object.values(o.bloatKb).reduce((a, x) => a + x, 0),
    collapses: o.collapses,
    khugepagedUs: latencyTotal(r.metrics.collapseCosts).us,
    tlbReachKb: Math.round(r.metrics.tlb.reachBytes / 1024),
    tlbSource: 'model',
  };
}

/** The objectives of a what-if on a snapshot (coverage after khugepaged ran). */
export function objectivesOfWhatif(w: WhatifResult, pageSize: number): TuneObjectives {
  const pageKb = pageSize / 1024;
  const byOrderKb: Record<number, number> = {};
  for (const [size, kb] of Object.entries(w.after.bySizeKb))
    byOrderKb[Math.log2(parseInt(size, 10) / pageKb)] = kb;
  let us = 0;
  let bloatKb = 0;
  for (const [size, c] of Object.entries(w.collapses.bySize)) {
    us += costUs(c.succeeded, parseInt(size, 10) / pageKb, c.bloatKb / pageKb, pageSize);
    bloatKb += c.bloatKb;
  }
  const hugeKb = Object.entries(byOrderKb)
    .filter(([k]) => Number(k) > 0)
    .reduce((a, [, kb]) => a + kb, 0);
  return {
    oom: false,
    oomEvent: null,
    rssKb: w.after.rssKb,
    anonKb: w.after.anonKb,
    hugeKb,
    hugePct: pctOf(hugeKb, w.after.anonKb),
    coverage: coverageOf(byOrderKb, pageKb, w.after.anonKb),
    bloatKb,
    collapses: w.collapses.succeeded,
    khugepagedUs: round2(us),
    tlbReachKb: mappingMixReachKb(byOrderKb, pageKb),
    tlbSource: 'mapping mix',
  };
}

/** The objectives of a trace replay. */
export function objectivesOfReplay(r: ReplayResult): TuneObjectives {
  const pageKb = r.config.pageSize / 1024;
  const byOrderKb: Record<number, number> = {};
  let rssKb = 0;
  let anonKb = 0;
  for (const p of r.processes) {
    rssKb += p.rssKb;
    anonKb += p.anonKb;
    for (const [o, kb] of Object.entries(p.byOrderKb))
      byOrderKb[Number(o)] = (byOrderKb[Number(o)] ?? 0) + kb;
  }
  // The replay counts collapses in all and bloat per order: cost the bloat per order, and the
  // rest of the collapses as copies of PMD-sized folios at most (an upper bound).
  let bloatKb = 0;
  for (const kb of Object.values(r.collapses.bloatKb)) bloatKb += kb;
  const pmdPages = Math.max(1, ...Object.keys(byOrderKb).map((o) => 1 << Number(o)));
  const us = costUs(r.collapses.succeeded, pmdPages, bloatKb / pageKb, r.config.pageSize);
  const hugeKb = Object.entries(byOrderKb)
    .filter(([k]) => Number(k) > 0)
    .reduce((a, [, kb]) => a + kb, 0);
  return {
    oom: r.accesses.oom > 0,
    oomEvent: r.accesses.firstOomLine === null ? null : `line ${r.accesses.firstOomLine}`,
    rssKb,
    anonKb,
    hugeKb,
    hugePct: pctOf(hugeKb, anonKb),
    coverage: coverageOf(byOrderKb, pageKb, anonKb),
    bloatKb,
    collapses: r.collapses.succeeded,
    khugepagedUs: round2(Math.max(0, us)),
    tlbReachKb: mappingMixReachKb(byOrderKb, pageKb),
    tlbSource: 'mapping mix',
  };
}
