// Run a validated scenario on a Machine and collect a plain, JSON-serialisable result. The run is
// deterministic: the same scenario (and overrides) gives a byte-identical JSON result.
//
// Besides the version-1 events, the runner knows the kernel selftests' vocabulary (selftest.ts):
// a scenario that declares `contexts` gets the selftest's global settings first, and its
// `collapse_ctx` events run as khugepaged.c's khugepaged or madvise context does.

import { type GeometryName, geometry as geometryOf, orderSizeKb } from '../mm/geometry.ts';
import type { KernelConfig } from '../mm/kernel.ts';
import type { CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import { DEFAULT_PROFILE, type ProfileName } from '../mm/profile.ts';
import { Rng } from '../mm/rng.ts';
import { type OrderEnabled, orderMode } from '../mm/settings.ts';
import type { TraceEvent } from '../mm/trace.ts';
import {
  type AccessOutcome,
  type Advice,
  Errno,
  Machine,
  type Meminfo,
  type Mm,
  type SmapsEntry,
} from '../sim/machine.ts';
import { ScenarioError, formatPath } from './errors.ts';
import { DEFAULT_GEOMETRY } from './resolve.ts';
import type {
  CheckField,
  CollapseExpect,
  ContextName,
  EventOf,
  MadviseResult,
  MemType,
  Op,
  Pattern,
  Scenario,
  TimelineEvent,
  Variant,
} from './schema.ts';
import { CHECK_FIELDS } from './schema.ts';
import {
  BASE_ADDR,
  type SysfsStack,
  hugeField,
  khugepagedWaitMs,
  madviseContextSettings,
  selftestGlobalSettings,
  sysfsPop,
  sysfsPush,
} from './selftest.ts';
import { formatSize, hex } from './size.ts';

export { DEFAULT_GEOMETRY };
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

const OUTCOME_RANK: Record<AccessOutcome, number> = { hit: 0, fault: 1, oom: 2, sigsegv: 3 };

export type VmaKind = 'anon' | 'file' | 'shmem';

export interface VmaRef {
  start: number;
  length: number;
  /** What backs it: smaps counts its PMD mappings as AnonHugePages, FilePmdMapped, ShmemPmdMapped. */
  kind: VmaKind;
  shared: boolean;
  /** The file (or unnamed shmem object) and the byte offset of `start` in it. */
  object?: string;
  pgoff: number;
}
interface ProcRef {
  name: string;
  mm: Mm;
  vmas: Map<string, VmaRef>;
  exited: boolean;
  /** Page contents as last written (page number -> token; NaN: unknown), for `check intact`. */
  shadow: Map<number, number>;
}

/** A sysfs path relative to /sys/kernel/mm/transparent_hugepage/ (the prefix may be written). */
export function sysfsRelPath(path: string): string {
  return path.startsWith(SYSFS_PREFIX) ? path.slice(SYSFS_PREFIX.length) : path.replace(/^\/+/, '');
}

export function runConfig(s: Scenario): RunConfig {
  const geo = geometryOf(s.geometry ?? DEFAULT_GEOMETRY);
  return {
    profile: s.profile ?? DEFAULT_PROFILE,
    collapsePolicy: s.collapse_policy ?? 'v19',
    geometry: geo.name,
    ramBytes: s.ram ?? DEFAULT_RAM_BYTES,
    swapBytes: s.swap ?? DEFAULT_SWAP_BYTES,
    seed: s.seed ?? DEFAULT_SEED,
    pageSize: geo.pageSize,
    pmdSize: geo.pmdSize,
  };
}

/** An error's message on one line; an Errno's "ERRNO: " prefix goes when the rest names an errno. */
export function errMessage(e: unknown): string {
  let msg = e instanceof Error ? e.message : String(e);
  if (
    e instanceof Errno &&
    msg.startsWith(`${e.errno}: `) &&
    /\bE[A-Z]{2,}\b/.test(msg.slice(e.errno.length + 2))
  )
    msg = msg.slice(e.errno.length + 2);
  return msg.replace(/\s*\n\s*/g, ' ');
}

/** "mmap app/heap" etc., for error messages. */
function eventLabel(e: TimelineEvent): string {
  const parts: string[] = [e.op];
  if ('proc' in e) parts.push('vma' in e ? `${e.proc}/${e.vma}` : e.proc);
  if (e.op === 'madvise') parts.push(e.advice);
  if (e.op === 'sysfs') parts.push(e.path);
  return parts.join(' ');
}

/** The kB value of an smaps field (fields the model does not report read as 0). */
function smapsKb(v: SmapsEntry, field: CheckField): number {
  return (v as unknown as Record<string, number | undefined>)[field] ?? 0;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** A running scenario: the result so far, the machine, and the named VMAs. */
export interface RunSession {
  result: RunResult;
  machine: Machine;
  /** The byte range of a named VMA of a live process (offset/length relative to it). */
  range(
    proc: string,
    vma: string,
    offset?: number,
    length?: number,
  ): { mm: Mm; addr: number; length: number };
  /** Map a thpsim_pmd_result trace event to a PmdAttempt (null for other events). */
  attemptOf(e: TraceEvent): PmdAttempt | null;
}

export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  return runScenarioSession(s, opts).result;
}

export function runScenarioSession(s: Scenario, opts: RunOptions = {}): RunSession {
  const source = opts.source ?? s.name;
  const at = (i: number) => s.sources?.[i] ?? `timeline[${i}]`;
  const config = runConfig(s);
  let machine: Machine;
  try {
    const cfg: KernelConfig = {
      profile: config.profile,
      collapsePolicy: config.collapsePolicy,
      geometry: config.geometry,
      ramBytes: config.ramBytes,
      swapBytes: config.swapBytes,
      seed: config.seed,
    };
    machine = opts.createMachine ? opts.createMachine(cfg) : new Machine(cfg);
  } catch (e) {
    throw new ScenarioError(source, '', `cannot build the machine: ${errMessage(e)}`, { cause: e });
  }
  const geo = machine.kernel.geo;
  const ps = geo.pageSize;
  /** "hugepages-order<N>/..." names the order-N size directory on this geometry. */
  const orderPath = (rel: string): string =>
    rel.replace(
      /^hugepages-order(\d+)\//,
      (_, o: string) => `hugepages-${orderSizeKb(geo, Number(o))}kB/`,
    );

  const procs = new Map<string, ProcRef>();
  const byMmId = new Map<number, ProcRef>();
  const order: ProcRef[] = [];
  const events: EventRecord[] = [];
  const reports: Report[] = [];
  const sysfs: Record<string, string> = {};
  const notes: string[] = [];
  const files = new Map<string, { tmpfs: boolean }>();
  const stack: SysfsStack = [];
  const variant = s.variant ?? {};
  const selftest = s.contexts !== undefined;
  const context = variant.context as ContextName | undefined;
  /** Page contents are tracked only when something checks them. */
  const tracking = selftest || s.timeline.some((e) => e.op === 'check' && e.intact);
  let shmSeq = 0;
  let fileSeq = 0;

  // ---- tracepoints ----
  let current: number | null = null;
  const attempts: PmdAttempt[] = [];
  let attemptsDropped = 0;
  const trace: TraceEvent[] | undefined = opts.trace ? [] : undefined;
  let traceDropped = 0;
  /** The attempts of the event running now. */
  let eventAttempts: PmdAttempt[] = [];
  const attemptOf = (e: TraceEvent): PmdAttempt | null => {
    if (e.name !== 'thpsim_pmd_result') return null;
    const f = e.fields;
    const p = byMmId.get(Number(f.mm));
    const addr = Number(f.vpn) * ps;
    let vma: string | undefined;
    let offset: number | undefined;
    if (p)
      for (const [n, v] of p.vmas)
        if (addr >= v.start && addr < v.start + v.length) {
          vma = n;
          offset = addr - v.start;
          break;
        }
    return {
      t: e.t,
      by: f.khugepaged ? 'khugepaged' : 'madvise',
      event: current,
      proc: p?.name ?? `mm${String(f.mm)}`,
      ...(vma !== undefined ? { vma, offset } : {}),
      addr,
      result: String(f.result),
      none_or_zero: Number(f.none_or_zero),
      swap: Number(f.swap),
      shared: Number(f.shared),
      referenced: Number(f.referenced),
    };
  };
  const collapses: CollapseSummary = { byOrder: {}, pmdResults: {}, lastCollapseMs: null };
  const orderCollapses = (o: number): OrderCollapses =>
    (collapses.byOrder[o] ??= {
      attempts: 0,
      succeeded: 0,
      bloatPages: 0,
      results: {},
      lastSuccessMs: null,
    });
  const countCollapse = (e: TraceEvent): void => {
    const f = e.fields;
    if (e.name === 'mm_collapse_huge_page') {
      // The 6.18 tracepoint has no order field: PMD order.
      const c = orderCollapses(f.order === undefined ? geo.pmdOrder : Number(f.order));
      c.attempts++;
      c.results[String(f.status)] = (c.results[String(f.status)] ?? 0) + 1;
    } else if (e.name === 'thpsim_collapse') {
      const c = orderCollapses(Number(f.order));
      c.succeeded++;
      c.bloatPages += Number(f.none_or_zero);
      c.lastSuccessMs = e.t;
      collapses.lastCollapseMs = e.t;
    } else if (e.name === 'thpsim_pmd_result') {
      const r = String(f.result);
      collapses.pmdResults[r] = (collapses.pmdResults[r] ?? 0) + 1;
    }
  };
  machine.setTrace((e) => {
    countCollapse(e);
    if (trace) {
      if (trace.length < MAX_TRACE) trace.push({ t: e.t, name: e.name, fields: { ...e.fields } });
      else traceDropped++;
    }
    const a = attemptOf(e);
    if (a) {
      eventAttempts.push(a);
      if (attempts.length < MAX_ATTEMPTS) attempts.push(a);
      else attemptsDropped++;
    }
  });

  const invariants = (field: string, what: string) => {
    if (!opts.checkInvariants) return;
    try {
      machine.checkInvariants();
    } catch (e) {
      throw new ScenarioError(source, field, `invariant violated after ${what}: ${errMessage(e)}`, {
        cause: e,
      });
    }
  };

  const addProc = (name: string, mm: Mm): ProcRef => {
    const ref: ProcRef = { name, mm, vmas: new Map(), exited: false, shadow: new Map() };
    procs.set(name, ref);
    byMmId.set(mm.id, ref);
    order.push(ref);
    return ref;
  };
  for (const [i, p] of s.processes.entries()) {
    try {
      const ref = addProc(p.name, machine.spawn(p.name));
      if (p.memory_max !== undefined) machine.memoryMax(ref.mm, p.memory_max);
    } catch (e) {
      throw new ScenarioError(source, `processes[${i}]`, `spawn failed: ${errMessage(e)}`, {
        cause: e,
      });
    }
  }

  const writeSysfs = (rel: string, value: string) => machine.sysfsWrite(rel, value);
  if (selftest) {
    for (const [rel, value] of selftestGlobalSettings(machine, notes)) {
      try {
        writeSysfs(rel, value);
        sysfs[rel] = value;
      } catch (e) {
        throw new ScenarioError(
          source,
          'contexts',
          `the selftest's global setup cannot write ${rel}=${JSON.stringify(value)}: ${errMessage(e)}`,
          { cause: e },
        );
      }
    }
  }
  for (const [path, value] of Object.entries(s.sysfs ?? {})) {
    const rel = orderPath(sysfsRelPath(path));
    try {
      writeSysfs(rel, String(value));
      sysfs[rel] = String(value);
    } catch (e) {
      throw new ScenarioError(
        source,
        formatPath(['sysfs', path]),
        `cannot write ${JSON.stringify(String(value))}: ${errMessage(e)}`,
        { cause: e },
      );
    }
  }
  invariants('sysfs', 'the header');

  const khugepagedCounters = () => {
    const k = machine.khugepaged();
    return { pages_collapsed: k.pages_collapsed, full_scans: k.full_scans };
  };

  const snapshot = (label: string, event: number | null): Report => {
    const processes: ProcessReport[] = [];
    for (const p of order) {
      if (p.exited) continue;
      const vmas = machine.smaps(p.mm).map((v) => ({ ...v, byOrder: { ...v.byOrder } }));
      const totals: ProcessReport['totals'] = {
        Size: 0,
        Rss: 0,
        Anonymous: 0,
        AnonHugePages: 0,
        Swap: 0,
        byOrder: {},
      };
      for (const v of vmas) {
        totals.Size += v.Size;
        totals.Rss += v.Rss;
        totals.Anonymous += v.Anonymous;
        totals.AnonHugePages += v.AnonHugePages;
        totals.Swap += v.Swap;
        for (const f of ['ShmemPmdMapped', 'FilePmdMapped'] as const) {
          const kb = (v as unknown as Record<string, number | undefined>)[f];
          if (kb !== undefined) totals[f] = (totals[f] ?? 0) + kb;
        }
        for (const [o, kb] of Object.entries(v.byOrder)) {
          totals.byOrder[Number(o)] = (totals.byOrder[Number(o)] ?? 0) + kb;
        }
      }
      processes.push({ name: p.name, pid: p.mm.id, vmas, totals });
    }
    const mthp = machine.mthpStats();
    const orders: OrderReport[] = [];
    for (let o = 31; o >= 0; o--) {
      if (!(geo.anonOrders & (1 << o))) continue;
      const kb = orderSizeKb(geo, o);
      const size = `${kb}kB`;
      orders.push({
        order: o,
        size,
        sizeKb: kb,
        enabled: orderMode(machine.kernel.settings, o),
        stats: { ...(mthp[size] ?? {}) },
      });
    }
    const memcg = machine.memcgs();
    return {
      label,
      event,
      clockMs: machine.kernel.clockMs,
      ...(memcg.length > 0 ? { memcg } : {}),
      processes,
      meminfo: { ...machine.meminfo() },
      vmstat: { ...machine.vmstat() },
      orders,
      khugepaged: khugepagedCounters(),
      reach: order
        .filter((p) => !p.exited)
        .map((p) => machine.anonReach(p.mm))
        .reduce(
          (a, b) => ({
            anonKb: a.anonKb + b.anonKb,
            inPmdSpansKb: a.inPmdSpansKb + b.inPmdSpansKb,
          }),
          {
            anonKb: 0,
            inPmdSpansKb: 0,
          },
        ),
    };
  };

  const procOf = (name: string, i: number, field = 'proc'): ProcRef => {
    const p = procs.get(name);
    // checkScenario() rules these out for validated scenarios.
    if (!p || p.exited)
      throw new ScenarioError(source, `${at(i)}.${field}`, `no live process "${name}"`);
    return p;
  };
  const vmaOf = (p: ProcRef, name: string, i: number, field = 'vma'): VmaRef => {
    const v = p.vmas.get(name);
    if (!v)
      throw new ScenarioError(
        source,
        `${at(i)}.${field}`,
        `no vma "${name}" in process "${p.name}"`,
      );
    return v;
  };
  const rangeOf = (v: VmaRef, e: { offset?: number; length?: number }) => {
    const offset = e.offset ?? 0;
    return { addr: v.start + offset, length: e.length ?? Math.max(0, v.length - offset) };
  };

  // ---- page contents (the selftest's validate_memory) ----
  const vmaAt = (p: ProcRef, addr: number): VmaRef | undefined => {
    for (const v of p.vmas.values()) if (addr >= v.start && addr < v.start + v.length) return v;
    return undefined;
  };
  /** Record what the pages at these addresses now hold (after writes; first reads of a file). */
  const observe = (p: ProcRef, addrs: Iterable<number>, write: boolean) => {
    if (!tracking) return;
    let last = -1;
    for (const a of addrs) {
      const page = Math.floor(a / ps);
      if (page === last) continue;
      last = page;
      const v = vmaAt(p, page * ps);
      if (!write && (!v || v.kind !== 'file' || p.shadow.has(page))) continue;
      const val = machine.readPage(p.mm, page * ps);
      if (val === null) continue;
      p.shadow.set(page, val);
      if (write && v?.shared && v.object !== undefined) {
        // The other mappings of a shared object see the write too.
        const off = page * ps - v.start + v.pgoff;
        for (const q of order) {
          if (q.exited) continue;
          for (const w of q.vmas.values()) {
            if (w === v || !w.shared || w.object !== v.object) continue;
            const a2 = w.start + off - w.pgoff;
            if (a2 >= w.start && a2 < w.start + w.length) q.shadow.set(a2 / ps, val);
          }
        }
      }
    }
  };
  /** Forget contents in a range: 0 for anonymous memory, unknown for a private file mapping. */
  const forget = (p: ProcRef, addr: number, length: number, how: 'zero' | 'unknown') => {
    if (!tracking) return;
    const first = Math.floor(addr / ps);
    const last = Math.ceil((addr + length) / ps);
    for (let page = first; page < last; page++) {
      const v = vmaAt(p, page * ps);
      if (v?.shared) continue; // the page cache keeps shared contents
      if (how === 'zero' && v?.kind === 'anon') p.shadow.delete(page);
      else p.shadow.set(page, Number.NaN);
    }
  };
  const intact = (p: ProcRef, addr: number, length: number, i: number): number => {
    let compared = 0;
    let bad = 0;
    let firstBad = '';
    for (let a = addr; a < addr + length; a += ps) {
      const page = a / ps;
      let expected = p.shadow.get(page);
      const v = vmaAt(p, a);
      if (expected === undefined) {
        if (!v || v.kind === 'file') continue;
        expected = 0;
      }
      if (Number.isNaN(expected)) continue;
      const actual = machine.readPage(p.mm, a);
      if (actual === null) continue;
      compared++;
      if (actual !== expected) {
        if (bad++ === 0)
          firstBad = `page ${(a - addr) / ps} (${hex(a)}) reads ${actual}, last written ${expected}`;
      }
    }
    if (bad > 0)
      throw new ScenarioError(
        source,
        `${at(i)}.intact`,
        `check ${p.name}: ${bad} of ${plural(compared, 'page')} differ from what was written; first: ${firstBad}`,
      );
    return compared;
  };

  const madvise = (
    mm: Mm,
    addr: number,
    length: number,
    advice: Advice,
  ): MadviseResult | Errno['errno'] => {
    try {
      machine.madvise(mm, addr, length, advice);
      return 'ok';
    } catch (e) {
      if (e instanceof Errno) return e.errno;
      throw e;
    }
  };

  const access = (
    p: ProcRef,
    e: { stride?: number; pattern?: Pattern },
    write: boolean,
    addr: number,
    length: number,
    i: number,
  ): { outcome: AccessOutcome; accesses: number } => {
    const mm = p.mm;
    const unit = e.stride ?? ps;
    const units = Math.ceil(length / unit);
    const pattern: Pattern = e.pattern ?? 'all';
    const seq = function* (n: number) {
      for (let u = 0; u < n; u++) yield addr + u * unit;
    };
    if (pattern === 'all') {
      const outcome = machine.touch(mm, addr, length, write, e.stride);
      observe(p, seq(units), write);
      return { outcome, accesses: units };
    }
    if ('first' in pattern) {
      const n = Math.min(pattern.first, units);
      const outcome = machine.touch(mm, addr, Math.min(n * unit, length), write, e.stride);
      observe(p, seq(n), write);
      return { outcome, accesses: n };
    }
    let pick: (u: number) => boolean;
    if ('every' in pattern) {
      pick = (u) => u % pattern.every === 0;
    } else {
      const rng = new Rng(pattern.seed ?? (config.seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
      pick = () => rng.next() < pattern.random;
    }
    let outcome: AccessOutcome = 'hit';
    let accesses = 0;
    for (let u = 0; u < units; u++) {
      if (!pick(u)) continue;
      const r = machine.access(mm, addr + u * unit, write);
      observe(p, [addr + u * unit], write);
      accesses++;
      if (OUTCOME_RANK[r] > OUTCOME_RANK[outcome]) outcome = r;
      if (r === 'sigsegv' || r === 'oom') break;
    }
    return { outcome, accesses };
  };

  /** ops->fault of the selftest: MADV_POPULATE_READ for a regular file, writes otherwise. */
  const fault = (p: ProcRef, v: VmaRef, addr: number, length: number, i: number) => {
    const write = v.kind !== 'file';
    return {
      mode: write ? ('write' as const) : ('read' as const),
      ...access(p, {}, write, addr, length, i),
    };
  };

  const mapVma = (
    p: ProcRef,
    name: string,
    a: {
      size: number;
      addr?: number;
      align?: number;
      prot?: EventOf<'mmap'>['prot'];
      shared?: boolean;
      file?: string;
      offset?: number;
    },
  ): VmaRef => {
    const start = machine.mmap(p.mm, {
      lengthBytes: a.size,
      addrBytes: a.addr,
      alignBytes: a.align,
      prot: a.prot,
      shared: a.shared,
      ...(a.file !== undefined ? { file: a.file } : {}),
      ...(a.offset !== undefined ? { offsetBytes: a.offset } : {}),
      name,
    });
    let kind: VmaKind = 'anon';
    let object: string | undefined;
    if (a.file !== undefined) {
      kind = files.get(a.file)?.tmpfs ? 'shmem' : 'file';
      object = `file:${a.file}`;
    } else if (a.shared) {
      kind = 'shmem';
      object = `shm#${++shmSeq}`;
    }
    const ref: VmaRef = {
      start,
      length: a.size,
      kind,
      shared: a.shared ?? false,
      ...(object !== undefined ? { object } : {}),
      pgoff: a.offset ?? 0,
    };
    p.vmas.set(name, ref);
    return ref;
  };

  /** The selftest's check_huge: the PMD-mapped kB of the VMA that starts at addr, in bytes. */
  const hugeAt = (p: ProcRef, v: VmaRef, addr: number): number => {
    const e = machine.smaps(p.mm).find((x) => x.start === addr);
    return e ? smapsKb(e, hugeField(v.kind)) * 1024 : 0;
  };

  const attemptSummary = (list: PmdAttempt[]): string => {
    if (list.length === 0) return 'no PMD range was tried';
    const last = new Map<number, PmdAttempt>();
    for (const a of list) last.set(a.addr, a);
    return [...last.values()]
      .slice(0, 4)
      .map(
        (a) =>
          `${a.by} ${hex(a.addr)} ${a.result}${a.none_or_zero >= 0 ? ` (none_or_zero ${a.none_or_zero}, swap ${a.swap}, shared ${a.shared}, referenced ${a.referenced})` : ''}`,
      )
      .join('; ');
  };

  const collapseCall = (mm: Mm, addr: number, length: number, retry: boolean) => {
    let r = machine.collapse(mm, addr, length);
    let retried = false;
    if (retry && r.errno === 'EAGAIN') {
      r = machine.collapse(mm, addr, length);
      retried = true;
    }
    const result = r.errno === 0 ? 'ok' : String(r.errno);
    return { result, pmds: r.pmds.map((x) => ({ addr: x.addr, result: x.result })), retried };
  };

  const sleepMs = (ms: number, i: number) => {
    if (!opts.onProgress || ms <= 0) {
      machine.advance(ms);
      return;
    }
    // In slices, so that a progress bar moves during a long sleep (the same run either way).
    const slices = Math.min(100, ms);
    let done = 0;
    for (let k = 1; k <= slices; k++) {
      const to = Math.floor((ms * k) / slices);
      machine.advance(to - done);
      done = to;
      opts.onProgress({
        done: i + k / slices,
        total: s.timeline.length,
        clockMs: machine.kernel.clockMs,
      });
    }
  };

  const step = (e: TimelineEvent, i: number): EventRecord => {
    const rec: EventRecord = { index: i, op: e.op };
    if (s.sources && s.sources[i] !== undefined && s.sources[i] !== `timeline[${i}]`)
      rec.source = s.sources[i];
    switch (e.op) {
      case 'mmap': {
        const p = procOf(e.proc, i);
        const v = mapVma(p, e.vma, e);
        return {
          ...rec,
          proc: e.proc,
          vma: e.vma,
          addr: v.start,
          length: e.size,
          ...(e.file !== undefined ? { file: e.file } : {}),
        };
      }
      case 'munmap': {
        const p = procOf(e.proc, i);
        const v = vmaOf(p, e.vma, i);
        const r = rangeOf(v, e);
        machine.munmap(p.mm, r.addr, r.length);
        forget(p, r.addr, r.length, 'zero');
        const end = Math.min(v.start + v.length, r.addr + r.length);
        if (r.addr <= v.start && end >= v.start + v.length) p.vmas.delete(e.vma);
        else if (r.addr <= v.start) {
          // The named range now starts after the hole.
          v.length -= end - v.start;
          v.pgoff += end - v.start;
          v.start = end;
        } else if (end >= v.start + v.length) v.length = r.addr - v.start;
        return { ...rec, proc: e.proc, vma: e.vma, ...r };
      }
      case 'mprotect': {
        const p = procOf(e.proc, i);
        const r = rangeOf(vmaOf(p, e.vma, i), e);
        machine.mprotect(p.mm, r.addr, r.length, e.prot);
        return { ...rec, proc: e.proc, vma: e.vma, ...r, result: e.prot };
      }
      case 'mremap': {
        const p = procOf(e.proc, i);
        const v = vmaOf(p, e.vma, i);
        const start = machine.mremap(p.mm, v.start, v.length, e.newSize, e.to);
        if (tracking) {
          // The pages move with the mapping; what lies past a shrunk end is gone.
          const moved = new Map<number, number>();
          const first = v.start / ps;
          const keep = Math.min(v.length, e.newSize) / ps;
          for (const [page, val] of p.shadow) {
            if (page >= first && page < first + v.length / ps) {
              if (page - first < keep) moved.set(start / ps + (page - first), val);
              p.shadow.delete(page);
            }
          }
          for (const [page, val] of moved) p.shadow.set(page, val);
        }
        v.start = start;
        v.length = e.newSize;
        return { ...rec, proc: e.proc, vma: e.vma, addr: start, length: e.newSize };
      }
      case 'touch':
      case 'write': {
        const p = procOf(e.proc, i);
        const r = rangeOf(vmaOf(p, e.vma, i), e);
        return {
          ...rec,
          proc: e.proc,
          vma: e.vma,
          ...r,
          ...access(p, e, e.op === 'write', r.addr, r.length, i),
        };
      }
      case 'populate': {
        const p = procOf(e.proc, i);
        const r = rangeOf(vmaOf(p, e.vma, i), e);
        return {
          ...rec,
          proc: e.proc,
          vma: e.vma,
          ...r,
          mode: e.mode,
          ...access(p, {}, e.mode === 'write', r.addr, r.length, i),
        };
      }
      case 'fault': {
        const p = procOf(e.proc, i);
        const v = vmaOf(p, e.vma, i);
        const r = rangeOf(v, e);
        return { ...rec, proc: e.proc, vma: e.vma, ...r, ...fault(p, v, r.addr, r.length, i) };
      }
      case 'madvise':
      case 'swapout': {
        const p = procOf(e.proc, i);
        const r = rangeOf(vmaOf(p, e.vma, i), e);
        const advice: Advice = e.op === 'madvise' ? e.advice : 'pageout';
        const result = madvise(p.mm, r.addr, r.length, advice);
        if (result === 'ok' && advice === 'dontneed') forget(p, r.addr, r.length, 'zero');
        if (result === 'ok' && advice === 'free') forget(p, r.addr, r.length, 'unknown');
        const expect = e.op === 'madvise' ? e.expect : undefined;
        if (expect !== undefined && expect !== result)
          throw new ScenarioError(
            source,
            `${at(i)}.expect`,
            `madvise ${advice} on ${e.proc}/${e.vma} returned ${result}, expected ${expect}`,
          );
        return {
          ...rec,
          proc: e.proc,
          vma: e.vma,
          ...r,
          advice,
          result,
          ...(expect !== undefined ? { expect } : {}),
        };
      }
      case 'collapse': {
        const p = procOf(e.proc, i);
        const r = rangeOf(vmaOf(p, e.vma, i), e);
        const c = collapseCall(p.mm, r.addr, r.length, e.retry_eagain ?? false);
        if (e.expect !== undefined && e.expect !== c.result)
          throw new ScenarioError(
            source,
            `${at(i)}.expect`,
            `MADV_COLLAPSE on ${e.proc}/${e.vma} returned ${c.result}, expected ${e.expect}: ${attemptSummary(eventAttempts)}`,
          );
        return {
          ...rec,
          proc: e.proc,
          vma: e.vma,
          ...r,
          result: c.result,
          pmds: c.pmds,
          ...(c.retried ? { retried: true } : {}),
          ...(e.expect !== undefined ? { expect: e.expect } : {}),
        };
      }
      case 'fork': {
        const p = procOf(e.proc, i);
        const mm = machine.fork(p.mm, e.child);
        const ref = addProc(e.child, mm);
        for (const [k, v] of p.vmas) ref.vmas.set(k, { ...v });
        if (tracking) for (const [k, v] of p.shadow) ref.shadow.set(k, v);
        return { ...rec, proc: e.proc, child: e.child };
      }
      case 'exit': {
        const p = procOf(e.proc, i);
        machine.exit(p.mm);
        p.exited = true;
        p.shadow.clear();
        return { ...rec, proc: e.proc };
      }
      case 'prctl': {
        const p = procOf(e.proc, i);
        machine.prctlThpDisable(p.mm, e.thp_disable);
        return { ...rec, proc: e.proc, result: e.thp_disable };
      }
      case 'sleep':
        sleepMs(e.ms, i);
        return { ...rec, ms: e.ms, ...khugepagedCounters() };
      case 'shrink':
        return { ...rec, split: machine.shrink() };
      case 'sysfs': {
        const value = String(e.value);
        const path = orderPath(sysfsRelPath(e.path));
        writeSysfs(path, value);
        return { ...rec, path, result: value };
      }
      case 'sysfs_push': {
        const values = Object.fromEntries(
          Object.entries(e.values).map(([k, v]) => [orderPath(sysfsRelPath(k)), String(v)]),
        );
        sysfsPush(machine, stack, Object.entries(values));
        return { ...rec, values };
      }
      case 'sysfs_pop': {
        if (stack.length === 0)
          throw new ScenarioError(source, at(i), 'sysfs_pop without a matching sysfs_push');
        sysfsPop(machine, stack);
        return rec;
      }
      case 'report': {
        const label = e.label ?? at(i);
        reports.push(snapshot(label, i));
        return { ...rec, label, report: reports.length - 1 };
      }
      case 'create_file': {
        machine.createFile(e.name, e.size, { tmpfs: e.tmpfs ?? false });
        files.set(e.name, { tmpfs: e.tmpfs ?? false });
        return { ...rec, file: e.name, length: e.size };
      }
      case 'drop_caches':
        machine.dropCaches();
        return rec;
      case 'setup_area': {
        const p = procOf(e.proc, i);
        const mem: MemType = e.mem ?? (variant.mem as MemType | undefined) ?? 'anon';
        const size = e.pmds * geo.pmdSize;
        const addr = e.addr ?? BASE_ADDR;
        let file: string | undefined;
        let v: VmaRef;
        if (mem === 'anon') v = mapVma(p, e.vma, { size, addr });
        else {
          // file_setup_area / shmem_setup_area: a fresh file of the area's size.
          file = `${e.vma}.${mem === 'shmem' ? 'memfd' : 'file'}.${++fileSeq}`;
          machine.createFile(file, size, { tmpfs: mem === 'shmem' });
          files.set(file, { tmpfs: mem === 'shmem' });
          if (mem === 'file') {
            v = mapVma(p, e.vma, { size, addr, prot: 'rx', file });
            machine.dropCaches();
          } else v = mapVma(p, e.vma, { size, addr, prot: 'rw', shared: true, file });
        }
        return {
          ...rec,
          proc: e.proc,
          vma: e.vma,
          addr: v.start,
          length: size,
          mem,
          ...(file !== undefined ? { file } : {}),
        };
      }
      case 'wait_khugepaged': {
        const u = e.until_collapsed;
        let done: (() => boolean) | undefined;
        let awaited = 0;
        if (u) {
          const p = procOf(u.proc, i, 'until_collapsed.proc');
          const v = vmaOf(p, u.vma, i, 'until_collapsed.vma');
          const want = u.pmds === undefined ? Math.floor(v.length / geo.pmdSize) : u.pmds;
          awaited = want * geo.pmdSize;
          done = () => hugeAt(p, v, v.start) === awaited;
        }
        const scans = e.scans ?? 2;
        const maxMs = e.max_ms ?? khugepagedWaitMs(awaited);
        const before = machine.khugepaged().full_scans;
        const ms = machine.waitKhugepaged(scans, maxMs, done);
        const k = khugepagedCounters();
        const timedOut = !(done?.() ?? false) && k.full_scans < before + scans;
        if (timedOut && e.on_timeout === 'fail')
          throw new ScenarioError(
            source,
            `${at(i)}.on_timeout`,
            `khugepaged did not complete ${plural(scans, 'full scan')} in ${ms} ms (full_scans ${before} -> ${k.full_scans})${u ? ' and the range did not collapse' : ''}`,
          );
        return { ...rec, ms, ...k, timedOut };
      }
      case 'check': {
        const p = procOf(e.proc, i);
        const v = vmaOf(p, e.vma, i);
        const r = rangeOf(v, e);
        const entries = machine
          .smaps(p.mm)
          .filter((x) => x.end > r.addr && x.start < r.addr + r.length);
        const straddle = entries.find((x) => x.start < r.addr || x.end > r.addr + r.length);
        const checked: Record<string, { expected: number; actual: number }> = {};
        const want: Array<[CheckField, number, string]> = [];
        for (const f of CHECK_FIELDS) if (e[f] !== undefined) want.push([f, e[f], f]);
        if (e.huge !== undefined) want.push([hugeField(v.kind), e.huge * geo.pmdSize, 'huge']);
        if (want.length > 0 && straddle)
          throw new ScenarioError(
            source,
            at(i),
            `check ${e.proc}/${e.vma}: smaps counts whole VMAs, and the VMA ${hex(straddle.start)}-${hex(straddle.end)} reaches outside ${hex(r.addr)}-${hex(r.addr + r.length)}; check a range that covers it`,
          );
        for (const [f, bytes, key] of want) {
          const actual = entries.reduce((sum, x) => sum + smapsKb(x, f), 0);
          const expected = bytes / 1024;
          checked[f] = { expected, actual };
          if (actual !== expected) {
            const pmd = geo.pmdSize / 1024;
            const inPmds = (kb: number) =>
              kb % pmd === 0 && kb > 0 ? ` (${plural(kb / pmd, 'PMD')})` : '';
            throw new ScenarioError(
              source,
              `${at(i)}.${key}`,
              `check ${e.proc}/${e.vma}${e.label ? ` "${e.label}"` : ''}: ${f} is ${actual} kB${inPmds(actual)}, expected ${expected} kB${inPmds(expected)}${f === hugeField(v.kind) && actual < expected ? `; ${attemptSummary(attempts.filter((a) => a.proc === p.name && a.addr >= r.addr && a.addr < r.addr + r.length))}` : ''}`,
            );
          }
        }
        for (const [o, bytes] of Object.entries(e.orders ?? {})) {
          const actual = entries.reduce((sum, x) => sum + (x.byOrder[Number(o)] ?? 0), 0);
          const expected = bytes / 1024;
          checked[`order ${o}`] = { expected, actual };
          if (want.length === 0 && straddle)
            throw new ScenarioError(
              source,
              at(i),
              `check ${e.proc}/${e.vma}: smaps counts whole VMAs, and the VMA ${hex(straddle.start)}-${hex(straddle.end)} reaches outside ${hex(r.addr)}-${hex(r.addr + r.length)}; check a range that covers it`,
            );
          if (actual !== expected)
            throw new ScenarioError(
              source,
              `${at(i)}.orders.${o}`,
              `check ${e.proc}/${e.vma}${e.label ? ` "${e.label}"` : ''}: order-${o} folios map ${actual} kB, expected ${expected} kB (byOrder ${JSON.stringify(Object.fromEntries(entries.flatMap((x) => Object.entries(x.byOrder))))}); ${attemptSummary(attempts.filter((a) => a.proc === p.name && a.addr >= r.addr && a.addr < r.addr + r.length))}`,
            );
        }
        if (e.stats) {
          const mthp = machine.mthpStats();
          for (const [o, names] of Object.entries(e.stats)) {
            const size = `${orderSizeKb(geo, Number(o))}kB`;
            for (const [n, expected] of Object.entries(names)) {
              const actual = mthp[size]?.[n];
              if (actual === undefined)
                throw new ScenarioError(
                  source,
                  `${at(i)}.stats.${o}.${n}`,
                  `check: hugepages-${size}/stats/${n} does not exist on this profile and geometry`,
                );
              checked[`hugepages-${size}/stats/${n}`] = { expected, actual };
              if (actual !== expected)
                throw new ScenarioError(
                  source,
                  `${at(i)}.stats.${o}.${n}`,
                  `check ${e.proc}/${e.vma}${e.label ? ` "${e.label}"` : ''}: hugepages-${size}/stats/${n} is ${actual}, expected ${expected}`,
                );
            }
          }
        }
        const out: EventRecord = { ...rec, proc: e.proc, vma: e.vma, ...r, checked };
        if (e.intact) out.intactPages = intact(p, r.addr, r.length, i);
        return out;
      }
      case 'collapse_ctx':
        return collapseCtx(e, i, rec);
    }
  };

  /** khugepaged.c's c->collapse(): the khugepaged or the madvise context. */
  const collapseCtx = (e: EventOf<'collapse_ctx'>, i: number, rec: EventRecord): EventRecord => {
    if (!context)
      throw new ScenarioError(
        source,
        at(i),
        'collapse_ctx needs a selftest context: declare contexts: [khugepaged, madvise] in the header',
      );
    const p = procOf(e.proc, i);
    const v = vmaOf(p, e.vma, i);
    const offset = e.offset ?? 0;
    const addr = v.start + offset;
    const nr = e.pmds ?? Math.floor((v.length - offset) / geo.pmdSize);
    const length = nr * geo.pmdSize;
    const expected: CollapseExpect =
      typeof e.expect === 'string'
        ? e.expect
        : context === 'mthp_khugepaged'
          ? (e.expect.mthp_khugepaged ?? e.expect.khugepaged)
          : e.expect[context];
    const want = expected === 'collapsed';
    const field = hugeField(v.kind);
    const what = `collapse_ctx ${e.proc}/${e.vma}${e.label ? ` "${e.label}"` : ''} (${context} context, ${v.kind})`;
    const failed = (detail: string): never => {
      throw new ScenarioError(source, `${at(i)}.expect`, `${what}: ${detail}`);
    };
    const out: EventRecord = {
      ...rec,
      proc: e.proc,
      vma: e.vma,
      addr,
      length,
      context,
      expected,
    };
    if (context === 'mthp_khugepaged') return mthpCollapseCtx(e, i, out, p, v, addr, length, want);
    // Sanity check: the range must not be PMD-mapped already.
    if (e.precheck !== false && hugeAt(p, v, addr) !== 0)
      failed(`unexpected huge page before the collapse (${field} ${hugeAt(p, v, addr) / 1024} kB)`);
    const observed = (bytes: number): CollapseExpect | 'partial' =>
      bytes === length ? 'collapsed' : bytes === 0 ? 'not_collapsed' : 'partial';
    const got = (bytes: number) =>
      `${field} ${bytes / 1024} kB, expected ${want ? length / 1024 : 0} kB`;

    if (context === 'khugepaged') {
      machine.madvise(p.mm, addr, length, 'hugepage');
      const before = machine.khugepaged().full_scans;
      const ms = machine.waitKhugepaged(
        2,
        khugepagedWaitMs(length),
        () => hugeAt(p, v, addr) === length,
      );
      const k = khugepagedCounters();
      Object.assign(out, { ms, ...k });
      const timedOut = hugeAt(p, v, addr) !== length && k.full_scans < before + 2;
      if (timedOut) {
        out.observed = 'timeout';
        out.timedOut = true;
        if (want)
          failed(
            `timed out after ${ms} ms (full_scans ${before} -> ${k.full_scans}) waiting for the collapse; ${attemptSummary(eventAttempts)}`,
          );
        return out;
      }
      // File and shmem: khugepaged leaves the THP in the page cache; the next fault maps it.
      if (v.kind !== 'anon') out.refault = fault(p, v, addr, length, i).mode;
      const bytes = hugeAt(p, v, addr);
      out.observed = observed(bytes);
      if (bytes !== (want ? length : 0))
        failed(
          `expected ${expected}, got ${out.observed}: ${got(bytes)}; ${attemptSummary(eventAttempts)}`,
        );
      return out;
    }

    // madvise context: keep khugepaged out (and show that MADV_COLLAPSE ignores `enabled`).
    sysfsPush(machine, stack, madviseContextSettings(machine));
    try {
      machine.madvise(p.mm, addr, length, 'hugepage');
      const c = collapseCall(p.mm, addr, length, true);
      Object.assign(out, {
        result: c.result,
        pmds: c.pmds,
        ...(c.retried ? { retried: true } : {}),
      });
      const bytes = hugeAt(p, v, addr);
      out.observed = observed(bytes);
      if ((c.result === 'ok') !== want)
        failed(
          `MADV_COLLAPSE returned ${c.result}, expected ${want ? 'success' : 'an error'}; ${attemptSummary(eventAttempts)}`,
        );
      if (bytes !== (want ? length : 0))
        failed(
          `MADV_COLLAPSE returned ${c.result} but ${got(bytes)}; ${attemptSummary(eventAttempts)}`,
        );
    } finally {
      sysfsPop(machine, stack);
    }
    return out;
  };

  /** Mapped kB of order-`o` folios in [addr, addr + length) (smaps byOrder of the VMAs in it). */
  const orderKbAt = (p: ProcRef, addr: number, length: number, o: number): number =>
    machine
      .smaps(p.mm)
      .filter((x) => x.end > addr && x.start < addr + length)
      .reduce((sum, x) => sum + (x.byOrder[o] ?? 0), 0);

  /**
   * The mthp_khugepaged context (kernel-selftests.md section 3.1): enabled = never (so the PMD
   * size, inherit, is off), every size never but order c = always; MADV_HUGEPAGE; wait for two
   * full scans or until the range holds the expected number of order-c folios.
   */
  const mthpCollapseCtx = (
    e: EventOf<'collapse_ctx'>,
    i: number,
    out: EventRecord,
    p: ProcRef,
    v: VmaRef,
    addr: number,
    length: number,
    want: boolean,
  ): EventRecord => {
    const c = e.order ?? 4;
    const what = `collapse_ctx ${e.proc}/${e.vma}${e.label ? ` "${e.label}"` : ''} (mthp_khugepaged context, order ${c})`;
    if (v.kind !== 'anon' || c >= geo.pmdOrder || !(geo.anonOrders & (1 << c)))
      throw new ScenarioError(
        source,
        at(i),
        `${what}: needs anon memory and a supported mTHP order below the PMD order ${geo.pmdOrder}`,
      );
    const folioKb = orderSizeKb(geo, c);
    const wantKb = (e.folios ?? (want ? length / (folioKb * 1024) : 0)) * folioKb;
    const failed = (detail: string): never => {
      throw new ScenarioError(source, `${at(i)}.expect`, `${what}: ${detail}`);
    };
    const settings = madviseContextSettings(machine).filter(([f]) => !f.includes('shmem'));
    settings.push([`hugepages-${folioKb}kB/enabled`, 'always']);
    sysfsPush(machine, stack, settings);
    try {
      machine.madvise(p.mm, addr, length, 'hugepage');
      const before = machine.khugepaged().full_scans;
      const ms = machine.waitKhugepaged(
        2,
        khugepagedWaitMs(length),
        () => wantKb > 0 && orderKbAt(p, addr, length, c) === wantKb,
      );
      const k = khugepagedCounters();
      Object.assign(out, { ms, ...k });
      const kb = orderKbAt(p, addr, length, c);
      out.observed = kb === 0 ? 'not_collapsed' : kb === length / 1024 ? 'collapsed' : 'partial';
      if (kb !== wantKb) {
        const timedOut = k.full_scans < before + 2;
        failed(
          `order-${c} folios map ${kb} kB (${kb / folioKb} folios), expected ${wantKb} kB (${wantKb / folioKb} folios)${timedOut ? `; timed out after ${ms} ms (full_scans ${before} -> ${k.full_scans})` : ''}; ${attemptSummary(eventAttempts)}`,
        );
      }
    } finally {
      sysfsPop(machine, stack);
    }
    return out;
  };

  const progress = (done: number) =>
    opts.onProgress?.({ done, total: s.timeline.length, clockMs: machine.kernel.clockMs });

  for (const [i, e] of s.timeline.entries()) {
    current = i;
    eventAttempts = [];
    try {
      events.push(step(e, i));
    } catch (err) {
      if (err instanceof ScenarioError) throw err;
      const what = eventLabel(e);
      const detail =
        err instanceof Errno
          ? `${what} failed: ${errMessage(err)}`
          : `${what}: model error: ${errMessage(err)}`;
      throw new ScenarioError(source, at(i), detail, { cause: err });
    }
    invariants(at(i), eventLabel(e));
    progress(i + 1);
  }
  current = null;
  if (!s.timeline.some((e) => e.op === 'report')) {
    try {
      reports.push(snapshot('final', null));
    } catch (err) {
      throw new ScenarioError(source, '', `final report: model error: ${errMessage(err)}`, {
        cause: err,
      });
    }
  }

  const result: RunResult = {
    format: 'thpsim-run',
    version: 1,
    scenario: {
      name: s.name,
      ...(s.description !== undefined ? { description: s.description } : {}),
    },
    config,
    ...(Object.keys(variant).length ? { variant: { ...variant } } : {}),
    sysfs,
    ...(notes.length ? { notes } : {}),
    events,
    khugepaged: { ...khugepagedCounters(), attempts, dropped: attemptsDropped },
    collapses,
    ...(trace ? { trace, ...(traceDropped ? { traceDropped } : {}) } : {}),
    reports,
  };

  return {
    result,
    machine,
    range(proc, vma, offset, length) {
      const p = procs.get(proc);
      if (!p || p.exited)
        throw new ScenarioError(
          source,
          '',
          `no live process "${proc}" at the end of the run (live: ${
            order
              .filter((x) => !x.exited)
              .map((x) => x.name)
              .join(', ') || 'none'
          })`,
        );
      const v = p.vmas.get(vma);
      if (!v)
        throw new ScenarioError(
          source,
          '',
          `process "${proc}" has no vma "${vma}" at the end of the run (known: ${[...p.vmas.keys()].join(', ') || 'none'})`,
        );
      const r = rangeOf(v, { offset, length });
      return { mm: p.mm, ...r };
    },
    attemptOf,
  };
}

/** A short description of the machine, e.g. "x86-64-4k, 4KiB pages, 2MiB PMD, 1GiB RAM". */
export function describeConfig(c: RunConfig): string {
  return `${c.profile}${c.collapsePolicy !== 'v19' ? ` (collapse policy ${c.collapsePolicy})` : ''}, ${c.geometry} (${formatSize(c.pageSize)} pages, ${formatSize(c.pmdSize)} PMD), RAM ${formatSize(c.ramBytes)}, ${c.swapBytes ? `swap ${formatSize(c.swapBytes)}` : 'no swap'}, seed ${c.seed}`;
}
