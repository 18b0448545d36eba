// The data behind `thpsim report` and `thpsim view`: what the metrics collector adds to a run
// result (RunResult.metrics), and the race-trace format of the interleaving checker. Plain types
// and small pure helpers only: this file is also bundled into the web viewer.

/** One point of the time series: coverage per order and counters at a simulated time. */
export interface Sample {
  /** Simulated ms. */
  t: number;
  /** The timeline event that ran (its index), or null for a khugepaged pass inside a wait. */
  event: number | null;
  /** kB of anonymous memory mapped by folios of each order (order 0: base pages). */
  byOrderKb: Record<number, number>;
  anonKb: number;
  /** kB the successful collapses so far filled from none or zero PTEs (cumulative). */
  bloatKb: number;
  freeKb: number;
  /** khugepaged/pages_collapsed, full_scans, and a few vmstat counters. */
  counters: Record<string, number>;
}

/** PTE states in PmdMap.ptes, one character per PTE. */
export const PTE_NONE = '.';
export const PTE_PRESENT = 'p';
/** Present and young (accessed). */
export const PTE_YOUNG = 'y';
/** Present and mapped by more than one mm (or more than once). */
export const PTE_SHARED = 's';
/** Present, young and shared. */
export const PTE_SHARED_YOUNG = 'S';
/** The shared zero page. */
export const PTE_ZERO = 'z';
export const PTE_SWAP = 'w';
/** Migration entries and markers. */
export const PTE_OTHER = 'o';

/** One PMD range of a VMA. */
export interface PmdMap {
  /** Start address of the PMD range (bytes). */
  addr: number;
  /** Largest folio order mapping a page of it; -1: nothing mapped. */
  order: number;
  /** PMD-mapped (a huge leaf). */
  huge: boolean;
  /** PTE states (see PTE_*), one per PTE of the range; absent when not recorded. */
  ptes?: string;
  /** Runs of PTEs mapping one folio: [first PTE, count, folio order, head pfn]. */
  folios?: Array<[number, number, number, number]>;
}

export interface VmaMap {
  proc: string;
  /** The scenario's name for the VMA, or the kernel's. */
  name: string;
  start: number;
  end: number;
  kind: 'anon' | 'file' | 'shmem';
  flags: string;
  pmds: PmdMap[];
}

/** The address space at one moment. */
export interface AddressMap {
  label: string;
  t: number;
  vmas: VmaMap[];
}

/** One attempt of mTHP collapse on a region (thpsim_mthp_attempt). */
export interface ExplainAttempt {
  /** Offset in PTEs from the start of the PMD range. */
  offset: number;
  order: number;
  result: string;
}

/** The order walk's input for one PMD range at one scan (thpsim_mthp_bitmap) and its attempts. */
export interface PmdExplain {
  t: number;
  proc: string;
  vma?: string;
  /** Offset of the PMD range into the VMA (bytes). */
  vmaOffset?: number;
  addr: number;
  /** The occupancy bitmap as 32-bit words in hex, 8 digits each, word 0 first. */
  bits: string;
  nr: number;
  pmdOrder: number;
  enabled: number;
  unmapped: number;
  lo: number;
  hi: number;
  maxPtesNone: number;
  madvise: boolean;
  policy: string;
  attempts: ExplainAttempt[];
}

export interface TlbClass {
  /** "4K", "64K (contpte)", "2M". */
  name: string;
  /** Bytes one entry maps. */
  bytes: number;
  /** Accesses translated by an entry of this size. */
  accesses: number;
  /** Entries of this size resident at the end. */
  resident: number;
}

/** The TLB estimate (see src/report/tlb.ts for the model and its assumptions). */
export interface TlbEstimate {
  model: string;
  assumptions: string[];
  accesses: number;
  /** First-level misses, and second-level misses (page walks). */
  l1Misses: number;
  misses: number;
  missRate: number;
  /** The same access stream with base pages only. */
  baselineMisses: number;
  classes: TlbClass[];
  /** Bytes mapped by the entries resident in the second level at the end. */
  reachBytes: number;
  /** Second-level reach if every entry mapped a base page. */
  baseReachBytes: number;
}

/** One successful collapse and its estimated cost. */
export interface CollapseCost {
  t: number;
  order: number;
  pages: number;
  copied: number;
  zeroed: number;
  us: number;
}

export interface CreepEvent {
  t: number;
  proc: string;
  addr: number;
  vma?: string;
  fromOrder: number;
  toOrder: number;
  /** Simulated ms of the smaller collapse inside the region. */
  sinceMs: number;
}

export interface RunMetrics {
  format: 'thpsim-metrics';
  version: 1;
  pageKb: number;
  pmdOrder: number;
  /** Anonymous folio orders, highest first, then 0. */
  orders: number[];
  samples: Sample[];
  /** Samples not stored beyond the limit. */
  samplesDropped: number;
  creep: CreepEvent[];
  collapseCosts: CollapseCost[];
  /** Free blocks per buddy order at the end (/proc/buddyinfo), and at each report. */
  buddyinfo: number[];
  buddyinfoByReport: Array<{ label: string; t: number; free: number[] }>;
  tlb: TlbEstimate;
  /** The address space at each report and at the end (the last). */
  maps: AddressMap[];
  /** mTHP order walks (bitmap and attempts), at most MAX_EXPLAIN. */
  explain: PmdExplain[];
  explainDropped: number;
}

// ---- the interleaving checker's counterexample -------------------------------------------------

export type CheckOp =
  'acquire' | 'release' | 'trylock' | 'downgrade' | 'read' | 'write' | 'flush' | 'ipi';

export interface CheckStep {
  index: number;
  thread: number;
  /** Kernel function, e.g. "pmdp_collapse_flush". */
  fn: string;
  op: CheckOp;
  /** e.g. "pte_lock#12", "pmd[0x7f...000]", "mmap_lock#1". */
  object: string;
  /** Locks the thread holds after the step. */
  locksHeld: string[];
  entry?: { kind: 'pgd' | 'pud' | 'pmd' | 'pte'; addr: number; before: string; after: string };
  note?: string;
}

export interface CheckTrace {
  format: 'thpsim-check-trace';
  version: 1;
  case: string;
  property: string;
  message: string;
  threads: Array<{ id: number; name: string }>;
  steps: CheckStep[];
  violation: { step: number; property: string; message: string };
}

// ---- helpers shared by the plots and the viewer ----------------------------------------------

/** "4K", "64K", "2M", "512M" for an order on a geometry with pageKb-sized pages. */
export function orderLabel(order: number, pageKb: number): string {
  const kb = pageKb * 2 ** order;
  if (kb >= 1024 * 1024) return `${kb / (1024 * 1024)}G`;
  if (kb >= 1024) return `${kb / 1024}M`;
  return `${kb}K`;
}

/**
 * Fixed colours per folio order relative to the PMD order, the same in every plot and in the
 * viewer (so a test can read a heat-map pixel): PMD order, PMD-1.., base pages, nothing mapped.
 */
export const COLOR_NONE = '#e8e8e8';
export const COLOR_BASE = '#9ecae1';
export const COLOR_PMD = '#d62728';
const MTHP_COLORS = [
  '#ff7f0e',
  '#ffbb22',
  '#bcbd22',
  '#2ca02c',
  '#17becf',
  '#1f77b4',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#393b79',
  '#637939',
];

export function orderColor(order: number, pmdOrder: number): string {
  if (order < 0) return COLOR_NONE;
  if (order === 0) return COLOR_BASE;
  if (order >= pmdOrder) return COLOR_PMD;
  return MTHP_COLORS[(pmdOrder - 1 - order) % MTHP_COLORS.length];
}

/** "0x7f0000200000". */
export function hexAddr(n: number): string {
  return '0x' + n.toString(16);
}

/** Decode PmdExplain.bits into 32-bit words. */
export function bitmapWords(hex: string): Uint32Array {
  const n = Math.floor(hex.length / 8);
  const w = new Uint32Array(n);
  for (let i = 0; i < n; i++) w[i] = parseInt(hex.slice(i * 8, i * 8 + 8), 16) >>> 0;
  return w;
}

/** Whether a parsed JSON value looks like a CheckTrace (or a check result holding one). */
export function checkTraceOf(v: unknown): CheckTrace | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  if (o.format === 'thpsim-check-trace') return v as CheckTrace;
  if (o.counterexample && typeof o.counterexample === 'object')
    return checkTraceOf(o.counterexample);
  return null;
}
