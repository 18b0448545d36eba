// The result of a scenario run, as plain JSON-serialisable data (what `thpsim run --json`
// prints), and the options of a run. A leaf: the runner, its handlers and the reports share it.

import type { GeometryName } from '../mm/geometry.ts';
import type { KernelConfig } from '../mm/kernel.ts';
import type { CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { ProfileName } from '../mm/profile.ts';
import type { OrderEnabled } from '../mm/settings.ts';
import type { TraceEvent } from '../mm/trace.ts';
import type { AccessOutcome, Advice, Machine, Meminfo, SmapsEntry } from '../sim/machine.ts';
import type { CollapseExpect, ContextName, MadviseResult, MemType, Op, Variant } from './schema.ts';

export const DEFAULT_RAM_BYTES = 2 ** 30;
export const DEFAULT_SWAP_BYTES = 0;
export const DEFAULT_SEED = 1;
export const SYSFS_PREFIX = '/sys/kernel/mm/transparent_hugepage/';
/** PMD attempts and trace events kept in a RunResult; more are counted, not stored. */
export const MAX_ATTEMPTS = 20_000;
export const MAX_TRACE = 1_000_000;

export interface RunConfig {
  profile: ProfileName;
  collapsePolicy: CollapsePolicy;
  geometry: GeometryName;
  ramBytes: number;
  swapBytes: number;
  seed: number;
  pageSize: number;
  pmdSize: number;
}

/** One PMD range khugepaged or MADV_COLLAPSE tried (the thpsim_pmd_result tracepoint). */
export interface PmdAttempt {
  /** Simulated ms. */
  t: number;
  by: 'khugepaged' | 'madvise';
  /** The timeline event running at the time (its index), or null for the header. */
  event: number | null;
  proc: string;
  /** The scenario's name of the VMA, when the address lies in one, and the offset into it. */
  vma?: string;
  offset?: number;
  addr: number;
  result: string;
  /** Counts from the PTE scan; -1 where the scan did not get that far. */
  none_or_zero: number;
  swap: number;
  shared: number;
  referenced: number;
}

/** What one timeline event did. Only the fields that apply to the op are present. */
export interface EventRecord {
  index: number;
  op: Op;
  /** Where the event came from when that is not timeline[index] (repeat, when). */
  source?: string;
  proc?: string;
  vma?: string;
  /** The byte range acted on (mmap/mremap: the resulting mapping). */
  addr?: number;
  length?: number;
  /** madvise/swapout/collapse: 'ok' or the errno; sysfs: the value written. */
  result?: string;
  advice?: Advice;
  expect?: MadviseResult;
  /** touch/write: the worst outcome over all accesses (sigsegv > oom > fault > hit). */
  outcome?: AccessOutcome;
  accesses?: number;
  /** shrink: what the deferred-split shrinker returned (folios split). */
  split?: number;
  /** fork: the child's name. */
  child?: string;
  /** sysfs: the file written (relative to the transparent_hugepage directory). */
  path?: string;
  /** sleep, wait_khugepaged, collapse_ctx (khugepaged): milliseconds advanced. */
  ms?: number;
  /** report: the label and the index into RunResult.reports. */
  label?: string;
  report?: number;
  /** mmap of a file, setup_area of a file or shmem, create_file: the file. */
  file?: string;
  /** setup_area: the memory type. */
  mem?: MemType;
  /** populate: read or write. */
  mode?: 'read' | 'write';
  /** collapse, collapse_ctx (madvise): MADV_COLLAPSE's result per PMD range. */
  pmds?: Array<{ addr: number; result: string }>;
  /** collapse: whether the call was retried after EAGAIN. */
  retried?: boolean;
  /** wait_khugepaged, collapse_ctx (khugepaged): khugepaged's counters afterwards. */
  full_scans?: number;
  pages_collapsed?: number;
  timedOut?: boolean;
  /** check: each field compared, in kB; intact: how many pages were compared. */
  checked?: Record<string, { expected: number; actual: number }>;
  intactPages?: number;
  /** collapse_ctx: the context, what the case expected and what happened. */
  context?: ContextName;
  expected?: CollapseExpect;
  observed?: CollapseExpect | 'partial' | 'timeout';
  /** collapse_ctx (khugepaged, file/shmem): how the range was faulted again before the check. */
  refault?: 'read' | 'write';
  /** sysfs_push: the values written. */
  values?: Record<string, string>;
}

export interface ProcessReport {
  name: string;
  pid: number;
  vmas: SmapsEntry[];
  /** The smaps fields summed over the VMAs (kB). */
  totals: {
    Size: number;
    Rss: number;
    Anonymous: number;
    AnonHugePages: number;
    Swap: number;
    ShmemPmdMapped?: number;
    FilePmdMapped?: number;
    byOrder: Record<number, number>;
  };
}

export interface OrderReport {
  order: number;
  /** The hugepages-<size>kB directory name, e.g. "2048kB". */
  size: string;
  sizeKb: number;
  enabled: OrderEnabled;
  /** hugepages-<size>kB/stats/*. */
  stats: Record<string, number>;
}

export interface Report {
  label: string;
  /** The index of the `report` event, or null for the automatic final report. */
  event: number | null;
  clockMs: number;
  processes: ProcessReport[];
  meminfo: Meminfo;
  vmstat: Record<string, number>;
  /** Anonymous THP orders, highest first. */
  orders: OrderReport[];
  /** khugepaged/pages_collapsed and khugepaged/full_scans. */
  khugepaged: { pages_collapsed: number; full_scans: number };
  /** Anonymous kB over all processes, and the part in PMD ranges a VMA spans whole. */
  reach: { anonKb: number; inPmdSpansKb: number };
  /** Memory cgroups (processes with memory_max): memory.current/max/peak in kB, memory.events. */
  memcg?: ReturnType<Machine['memcgs']>;
}

/** collapse_huge_page calls at one order. */
export interface OrderCollapses {
  attempts: number;
  succeeded: number;
  /** None and zero PTEs filled with new pages by the successful collapses (memory bloat). */
  bloatPages: number;
  /** Attempts by SCAN_* result. */
  results: Record<string, number>;
  /** Simulated ms of the last successful collapse, or null. */
  lastSuccessMs: number | null;
}

export interface CollapseSummary {
  /** Keyed by folio order. */
  byOrder: Record<number, OrderCollapses>;
  /** PMD ranges khugepaged or MADV_COLLAPSE visited, by the result for the range. */
  pmdResults: Record<string, number>;
  /** Simulated ms of the last successful collapse at any order, or null. */
  lastCollapseMs: number | null;
}

export interface RunResult {
  format: 'thpsim-run';
  version: 1;
  scenario: { name: string; description?: string };
  config: RunConfig;
  /** The variant run (selftest files: context, mem, matrix values). */
  variant?: Variant;
  /** The header's sysfs writes (and the selftest's global settings), in the order applied. */
  sysfs: Record<string, string>;
  /** Things the runner could not do as asked, e.g. a sysfs file the model does not have. */
  notes?: string[];
  events: EventRecord[];
  /** Every PMD range khugepaged or MADV_COLLAPSE tried, and why it did or did not collapse. */
  khugepaged: {
    pages_collapsed: number;
    full_scans: number;
    attempts: PmdAttempt[];
    /** Attempts beyond MAX_ATTEMPTS, counted but not stored. */
    dropped: number;
  };
  /** Every collapse attempt by order and result, with the memory the collapses added. */
  collapses: CollapseSummary;
  /** With RunOptions.trace: every tracepoint. */
  trace?: TraceEvent[];
  traceDropped?: number;
  reports: Report[];
}

export interface Progress {
  /** Events done, with a fraction for a long event in progress. */
  done: number;
  total: number;
  clockMs: number;
}

export interface RunOptions {
  /** The file name used in error messages. */
  source?: string;
  /** Build the machine (tests substitute a fake). */
  createMachine?: (cfg: KernelConfig) => Machine;
  /** Run Machine.checkInvariants() after the header and after every event. */
  checkInvariants?: boolean;
  /** Keep every tracepoint in RunResult.trace. */
  trace?: boolean;
  /** Called after each event and during long sleeps. */
  onProgress?: (p: Progress) => void;
}
