// What a workload run came to: out of memory or not, memory, coverage per order and bloat.

import type { RunResult } from '../scenario/run.ts';

export interface WorkloadOutcome {
  /** With a parameter sweep: "name=value" of this run. */
  label?: string;
  policy: string;
  /** Whether any access ended in an OOM (memcg or global), and the first such event. */
  oom: boolean;
  oomEvent: string | null;
  /** The final report: Rss and AnonHugePages over every process (kB). */
  rssKb: number;
  anonHugeKb: number;
  /** kB mapped by folios of each order at the end, summed over processes. */
  byOrderKb: Record<number, number>;
  /** Pages the collapses filled (bloat), per order, in kB. */
  bloatKb: Record<number, number>;
  collapses: number;
  /** memory.peak and memory.events of each cgroup at the end. */
  memcg: Array<{ name: string; peakKb: number; maxKb: number | null; oom_kill: number }>;
  vmstat: {
    thp_fault_alloc: number;
    thp_fault_fallback: number;
    thp_fault_fallback_charge: number;
    thp_split_page: number;
    thp_underused_split_page: number;
  };
}

export function workloadOutcome(r: RunResult): WorkloadOutcome {
  const last = r.reports[r.reports.length - 1];
  const byOrderKb: Record<number, number> = {};
  let rssKb = 0;
  let anonHugeKb = 0;
  for (const p of last?.processes ?? []) {
    rssKb += p.totals.Rss;
    anonHugeKb += p.totals.AnonHugePages;
    for (const [o, kb] of Object.entries(p.totals.byOrder))
      byOrderKb[Number(o)] = (byOrderKb[Number(o)] ?? 0) + kb;
  }
  const pageKb = r.config.pageSize / 1024;
  const bloatKb: Record<number, number> = {};
  let collapses = 0;
  for (const [o, c] of Object.entries(r.collapses.byOrder)) {
    bloatKb[Number(o)] = c.bloatPages * pageKb;
    collapses += c.succeeded;
  }
  const first = r.events.find((e) => e.outcome === 'oom');
  const vm = last?.vmstat ?? {};
  return {
    policy: r.config.collapsePolicy,
    oom: first !== undefined,
    oomEvent: first
      ? `${first.source ?? `timeline[${first.index}]`} ${first.op} ${first.proc ?? ''}${first.vma ? `/${first.vma}` : ''}`
      : null,
    rssKb,
    anonHugeKb,
    byOrderKb,
    bloatKb,
    collapses,
    memcg: (last?.memcg ?? []).map((m) => ({
      name: m.name,
      peakKb: m.peak,
      maxKb: m.max,
      oom_kill: m.events.oom_kill,
    })),
    vmstat: {
      thp_fault_alloc: vm.thp_fault_alloc ?? 0,
      thp_fault_fallback: vm.thp_fault_fallback ?? 0,
      thp_fault_fallback_charge: vm.thp_fault_fallback_charge ?? 0,
      thp_split_page: vm.thp_split_page ?? 0,
      thp_underused_split_page: vm.thp_underused_split_page ?? 0,
    },
  };
}
