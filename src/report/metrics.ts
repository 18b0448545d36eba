// Metrics derived from a run result (and from its `metrics`, when the run was collected with
// them): coverage per order over time, bloat, allocation fallback rates, collapse latency,
// fragmentation. Pure functions: the report, the plots and the viewer call them.
//
// The collapse cost model (an estimate, in microseconds per successful collapse):
//   COST_FIXED_US                       locks, isolation, anon_vma, pmdp_collapse_flush + TLB IPI
// + COST_ALLOC_US                       allocating the folio (no compaction)
// + copied * pageSize / COPY_BYTES_PER_US  copying each present page into the new folio
// + zeroed * pageSize / ZERO_BYTES_PER_US  zero-filling each none or zero-page PTE
// Copy at 10 GB/s and zeroing at 20 GB/s are typical of one core of a current server.

import type { RunResult } from '../scenario/run.ts';
import type { CollapseCost, RunMetrics } from './model.ts';

export const COST_FIXED_US = 30;
export const COST_ALLOC_US = 2;
export const COPY_BYTES_PER_US = 10_000;
export const ZERO_BYTES_PER_US = 20_000;

export const COST_MODEL = `${COST_FIXED_US} us fixed + ${COST_ALLOC_US} us allocation + copy at ${COPY_BYTES_PER_US / 1000} GB/s per present page + zeroing at ${ZERO_BYTES_PER_US / 1000} GB/s per none/zero PTE`;

/** The estimated cost of one collapse (see the file comment). */
export function collapseCostUs(copied: number, zeroed: number, pageSize: number): number {
  const us =
    COST_FIXED_US +
    COST_ALLOC_US +
    (copied * pageSize) / COPY_BYTES_PER_US +
    (zeroed * pageSize) / ZERO_BYTES_PER_US;
  return Math.round(us * 100) / 100;
}

export type AnyRun = RunResult & { metrics?: RunMetrics };

/** A coverage series point: kB per order at a simulated time. */
export interface CoveragePoint {
  t: number;
  label?: string;
  byOrderKb: Record<number, number>;
  anonKb: number;
}

/** Anonymous folio orders of the run (highest first, then 0). */
export function runOrders(r: AnyRun): number[] {
  if (r.metrics) return r.metrics.orders;
  const orders = r.reports[0]?.orders.map((o) => o.order) ?? [];
  return [...orders, 0];
}

/**
 * Coverage over time: the collector's samples, or else the reports (anonymous memory: the
 * totals of every process, which include file-backed orders only as smaps does).
 */
export function coverageSeries(r: AnyRun): CoveragePoint[] {
  if (r.metrics?.samples.length) {
    // One point per simulated time: the state after the last event at that time.
    const out: CoveragePoint[] = [];
    for (const s of r.metrics.samples) {
      const p = { t: s.t, byOrderKb: s.byOrderKb, anonKb: s.anonKb };
      if (out.length && out[out.length - 1].t === s.t) out[out.length - 1] = p;
      else out.push(p);
    }
    return out;
  }
  return r.reports.map((rep) => {
    const byOrderKb: Record<number, number> = {};
    let anonKb = 0;
    for (const p of rep.processes) {
      anonKb += p.totals.Anonymous;
      for (const [o, kb] of Object.entries(p.totals.byOrder))
        byOrderKb[Number(o)] = (byOrderKb[Number(o)] ?? 0) + kb;
    }
    return { t: rep.clockMs, label: rep.label, byOrderKb, anonKb };
  });
}

export interface OrderRow {
  order: number;
  size: string;
  /** At the end. */
  kb: number;
  pctAnon: number;
  collapses: number;
  bloatKb: number;
  faultAlloc: number;
  faultFallback: number;
  /** anon_fault_fallback / (anon_fault_alloc + anon_fault_fallback), or null with no faults. */
  fallbackRate: number | null;
  collapseAlloc: number;
  collapseAllocFailed: number;
  collapseFallbackRate: number | null;
  /** Collapse latency estimate (µs). */
  latencyMeanUs: number | null;
  latencyMaxUs: number | null;
  latencyTotalUs: number;
}

const rate = (fail: number, ok: number): number | null =>
  fail + ok > 0 ? fail / (fail + ok) : null;

/** Per order at the end of the run: coverage, bloat, fallbacks and collapse latency. */
export function orderRows(r: AnyRun): OrderRow[] {
  const final = r.reports[r.reports.length - 1];
  const pageKb = r.config.pageSize / 1024;
  const series = coverageSeries(r);
  const end = series[series.length - 1];
  const costs = r.metrics?.collapseCosts ?? [];
  const rows: OrderRow[] = [];
  for (const order of runOrders(r)) {
    const rep = final?.orders.find((o) => o.order === order);
    const st = rep?.stats ?? {};
    const c = r.collapses.byOrder[order];
    const mine = costs.filter((x) => x.order === order);
    const total = mine.reduce((a, x) => a + x.us, 0);
    const kb = end?.byOrderKb[order] ?? 0;
    const faultAlloc = st.anon_fault_alloc ?? 0;
    const faultFallback = st.anon_fault_fallback ?? 0;
    rows.push({
      order,
      size: rep?.size ?? `${pageKb * 2 ** order}kB`,
      kb,
      pctAnon: end && end.anonKb > 0 ? (100 * kb) / end.anonKb : 0,
      collapses: c?.succeeded ?? 0,
      bloatKb: (c?.bloatPages ?? 0) * pageKb,
      faultAlloc,
      faultFallback,
      fallbackRate: order === 0 ? null : rate(faultFallback, faultAlloc),
      collapseAlloc: st.collapse_alloc ?? 0,
      collapseAllocFailed: st.collapse_alloc_failed ?? 0,
      collapseFallbackRate:
        order === 0 ? null : rate(st.collapse_alloc_failed ?? 0, st.collapse_alloc ?? 0),
      latencyMeanUs: mine.length ? Math.round((100 * total) / mine.length) / 100 : null,
      latencyMaxUs: mine.length ? Math.max(...mine.map((x) => x.us)) : null,
      latencyTotalUs: Math.round(total * 100) / 100,
    });
  }
  return rows;
}

/** Total bloat in kB (pages the collapses filled from none or zero PTEs). */
export function totalBloatKb(r: AnyRun): number {
  const pageKb = r.config.pageSize / 1024;
  return Object.values(r.collapses.byOrder).reduce((a, c) => a + c.bloatPages * pageKb, 0);
}

export interface FragmentationRow {
  order: number;
  /** Free blocks of this order (buddyinfo). */
  blocks: number;
  freeKb: number;
}

export interface Fragmentation {
  rows: FragmentationRow[];
  freeKb: number;
  /**
   * The share of free memory in blocks smaller than the PMD order: free memory a PMD-sized
   * allocation cannot use without compaction (the unusable free space index at PMD order).
   */
  unusableForPmd: number;
}

export function fragmentation(free: number[], pageKb: number, pmdOrder: number): Fragmentation {
  const rows = free.map((blocks, order) => ({
    order,
    blocks,
    freeKb: blocks * pageKb * 2 ** order,
  }));
  const freeKb = rows.reduce((a, x) => a + x.freeKb, 0);
  const small = rows.filter((x) => x.order < pmdOrder).reduce((a, x) => a + x.freeKb, 0);
  return { rows, freeKb, unusableForPmd: freeKb > 0 ? small / freeKb : 0 };
}

/** Collapse costs summed: count and total µs. */
export function latencyTotal(costs: CollapseCost[]): { count: number; us: number } {
  return { count: costs.length, us: Math.round(costs.reduce((a, x) => a + x.us, 0) * 100) / 100 };
}
