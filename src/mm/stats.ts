// Counters named as the kernel names them: /proc/vmstat THP events, per-size mTHP stats
// (hugepages-<size>kB/stats/*) and the meminfo/mm counters the model keeps incrementally.

export const VMSTAT_NAMES = [
  'pgfault',
  'pgmajfault',
  'pswpin',
  'pswpout',
  'pgmigrate_success',
  'pgmigrate_fail',
  'compact_migrate_scanned',
  'compact_free_scanned',
  'compact_isolated',
  'compact_stall',
  'compact_fail',
  'compact_success',
  'thp_fault_alloc',
  'thp_fault_fallback',
  'thp_fault_fallback_charge',
  'thp_collapse_alloc',
  'thp_collapse_alloc_failed',
  'thp_split_page',
  'thp_split_page_failed',
  'thp_deferred_split_page',
  'thp_underused_split_page',
  'thp_split_pmd',
  'thp_scan_exceed_none_pte',
  'thp_scan_exceed_swap_pte',
  'thp_scan_exceed_share_pte',
  'thp_zero_page_alloc',
  'thp_zero_page_alloc_failed',
  'thp_swpout',
  'thp_swpout_fallback',
  'oom_kill',
] as const;
export type VmstatName = (typeof VMSTAT_NAMES)[number];

/** Per-size stats; the collapse_* ones exist only where the profile has the mTHP series. */
export const MTHP_STAT_NAMES = [
  'anon_fault_alloc',
  'anon_fault_fallback',
  'anon_fault_fallback_charge',
  'collapse_alloc',
  'collapse_alloc_failed',
  'zswpout',
  'swpin',
  'swpin_fallback',
  'swpin_fallback_charge',
  'swpout',
  'swpout_fallback',
  'shmem_alloc',
  'shmem_fallback',
  'shmem_fallback_charge',
  'split',
  'split_failed',
  'split_deferred',
  'nr_anon',
  'nr_anon_partially_mapped',
  'collapse_exceed_none_pte',
  'collapse_exceed_swap_pte',
  'collapse_exceed_shared_pte',
] as const;
export type MthpStatName = (typeof MTHP_STAT_NAMES)[number];
export const MTHP_SERIES_STATS: ReadonlySet<MthpStatName> = new Set([
  'collapse_alloc',
  'collapse_alloc_failed',
  'collapse_exceed_none_pte',
  'collapse_exceed_swap_pte',
  'collapse_exceed_shared_pte',
]);

const VMSTAT_INDEX = new Map<string, number>(VMSTAT_NAMES.map((n, i) => [n, i]));
const MTHP_INDEX = new Map<string, number>(MTHP_STAT_NAMES.map((n, i) => [n, i]));
const NR_MTHP = MTHP_STAT_NAMES.length;

export class Stats {
  readonly vm = new Float64Array(VMSTAT_NAMES.length);
  /** order * NR_MTHP + stat. */
  readonly mthp: Float64Array;
  /** NR_ANON_MAPPED in pages (meminfo AnonPages). */
  anonMapped = 0;
  /** NR_ANON_THPS in pages (meminfo AnonHugePages): PMD-mapped PMD-sized anon folios. */
  anonThps = 0;

  constructor(maxOrder: number) {
    this.mthp = new Float64Array((maxOrder + 1) * NR_MTHP);
  }

  /** count_vm_event. */
  event(name: VmstatName, n = 1): void {
    this.vm[VMSTAT_INDEX.get(name)!] += n;
  }

  /** count_mthp_stat / mod_mthp_stat. */
  mthpStat(order: number, name: MthpStatName, n = 1): void {
    this.mthp[order * NR_MTHP + MTHP_INDEX.get(name)!] += n;
  }

  vmstat(name: VmstatName): number {
    return this.vm[VMSTAT_INDEX.get(name)!];
  }

  mthpValue(order: number, name: MthpStatName): number {
    return this.mthp[order * NR_MTHP + MTHP_INDEX.get(name)!];
  }

  vmstatRecord(): Record<VmstatName, number> {
    const out = {} as Record<VmstatName, number>;
    VMSTAT_NAMES.forEach((n, i) => (out[n] = this.vm[i]));
    return out;
  }
}
