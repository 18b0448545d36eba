// Run a validated scenario on a Machine and collect a plain, JSON-serialisable result. The run is
// deterministic: the same scenario (and overrides) gives a byte-identical JSON result.

import { type GeometryName, geometry as geometryOf, orderSizeKb } from '../mm/geometry.ts';
import type { KernelConfig } from '../mm/kernel.ts';
import { DEFAULT_PROFILE, type ProfileName } from '../mm/profile.ts';
import { Rng } from '../mm/rng.ts';
import { type OrderEnabled, orderMode } from '../mm/settings.ts';
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
import type { EventOf, MadviseResult, Op, Pattern, Scenario, TimelineEvent } from './schema.ts';
import { formatSize } from './size.ts';

export const DEFAULT_GEOMETRY: GeometryName = 'x86-64-4k';
export const DEFAULT_RAM_BYTES = 2 ** 30;
export const DEFAULT_SWAP_BYTES = 0;
export const DEFAULT_SEED = 1;
export const SYSFS_PREFIX = '/sys/kernel/mm/transparent_hugepage/';

export interface RunConfig {
  profile: ProfileName;
  geometry: GeometryName;
  ramBytes: number;
  swapBytes: number;
  seed: number;
  pageSize: number;
  pmdSize: number;
}

/** What one timeline event did. Only the fields that apply to the op are present. */
export interface EventRecord {
  index: number;
  op: Op;
  proc?: string;
  vma?: string;
  /** The byte range acted on (mmap/mremap: the resulting mapping). */
  addr?: number;
  length?: number;
  /** madvise/swapout: 'ok' or the errno; sysfs: the value written. */
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
  /** sleep: milliseconds advanced. */
  ms?: number;
  /** report: the label and the index into RunResult.reports. */
  label?: string;
  report?: number;
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
}

export interface RunResult {
  format: 'thpsim-run';
  version: 1;
  scenario: { name: string; description?: string };
  config: RunConfig;
  /** The header's sysfs writes, in the order applied. */
  sysfs: Record<string, string>;
  events: EventRecord[];
  reports: Report[];
}

export interface RunOptions {
  /** The file name used in error messages. */
  source?: string;
  /** Build the machine (tests substitute a fake). */
  createMachine?: (cfg: KernelConfig) => Machine;
  /** Run Machine.checkInvariants() after the header and after every event. */
  checkInvariants?: boolean;
}

const OUTCOME_RANK: Record<AccessOutcome, number> = { hit: 0, fault: 1, oom: 2, sigsegv: 3 };

interface VmaRef {
  start: number;
  length: number;
}
interface ProcRef {
  name: string;
  mm: Mm;
  vmas: Map<string, VmaRef>;
  exited: boolean;
}

/** A sysfs path relative to /sys/kernel/mm/transparent_hugepage/ (the prefix may be written). */
export function sysfsRelPath(path: string): string {
  return path.startsWith(SYSFS_PREFIX) ? path.slice(SYSFS_PREFIX.length) : path.replace(/^\/+/, '');
}

export function runConfig(s: Scenario): RunConfig {
  const geo = geometryOf(s.geometry ?? DEFAULT_GEOMETRY);
  return {
    profile: s.profile ?? DEFAULT_PROFILE,
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

export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  const source = opts.source ?? s.name;
  const config = runConfig(s);
  let machine: Machine;
  try {
    const cfg: KernelConfig = {
      profile: config.profile,
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
  const procs = new Map<string, ProcRef>();
  const order: ProcRef[] = [];
  const events: EventRecord[] = [];
  const reports: Report[] = [];
  const sysfs: Record<string, string> = {};

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

  for (const [i, p] of s.processes.entries()) {
    try {
      const ref = { name: p.name, mm: machine.spawn(p.name), vmas: new Map(), exited: false };
      procs.set(p.name, ref);
      order.push(ref);
    } catch (e) {
      throw new ScenarioError(source, `processes[${i}]`, `spawn failed: ${errMessage(e)}`, {
        cause: e,
      });
    }
  }
  for (const [path, value] of Object.entries(s.sysfs ?? {})) {
    const rel = sysfsRelPath(path);
    try {
      machine.sysfsWrite(rel, String(value));
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

  const snapshot = (label: string, event: number | null): Report => {
    const processes: ProcessReport[] = [];
    for (const p of order) {
      if (p.exited) continue;
      const vmas = machine.smaps(p.mm).map((v) => ({ ...v, byOrder: { ...v.byOrder } }));
      const totals = {
        Size: 0,
        Rss: 0,
        Anonymous: 0,
        AnonHugePages: 0,
        Swap: 0,
        byOrder: {} as Record<number, number>,
      };
      for (const v of vmas) {
        totals.Size += v.Size;
        totals.Rss += v.Rss;
        totals.Anonymous += v.Anonymous;
        totals.AnonHugePages += v.AnonHugePages;
        totals.Swap += v.Swap;
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
    return {
      label,
      event,
      clockMs: machine.kernel.clockMs,
      processes,
      meminfo: { ...machine.meminfo() },
      vmstat: { ...machine.vmstat() },
      orders,
    };
  };

  const procOf = (name: string, i: number): ProcRef => {
    const p = procs.get(name);
    // checkScenario() rules these out for validated scenarios.
    if (!p || p.exited)
      throw new ScenarioError(source, `timeline[${i}].proc`, `no live process "${name}"`);
    return p;
  };
  const vmaOf = (p: ProcRef, name: string, i: number): VmaRef => {
    const v = p.vmas.get(name);
    if (!v)
      throw new ScenarioError(
        source,
        `timeline[${i}].vma`,
        `no vma "${name}" in process "${p.name}"`,
      );
    return v;
  };
  const rangeOf = (v: VmaRef, e: { offset?: number; length?: number }) => {
    const offset = e.offset ?? 0;
    return { addr: v.start + offset, length: e.length ?? Math.max(0, v.length - offset) };
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
    mm: Mm,
    e: EventOf<'touch'> | EventOf<'write'>,
    addr: number,
    length: number,
    i: number,
  ): { outcome: AccessOutcome; accesses: number } => {
    const write = e.op === 'write';
    const unit = e.stride ?? geo.pageSize;
    const units = Math.ceil(length / unit);
    const pattern: Pattern = e.pattern ?? 'all';
    if (pattern === 'all') {
      return { outcome: machine.touch(mm, addr, length, write, e.stride), accesses: units };
    }
    if ('first' in pattern) {
      const n = Math.min(pattern.first, units);
      return {
        outcome: machine.touch(mm, addr, Math.min(n * unit, length), write, e.stride),
        accesses: n,
      };
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
      accesses++;
      if (OUTCOME_RANK[r] > OUTCOME_RANK[outcome]) outcome = r;
      if (r === 'sigsegv' || r === 'oom') break;
    }
    return { outcome, accesses };
  };

  const step = (e: TimelineEvent, i: number): EventRecord => {
    const rec: EventRecord = { index: i, op: e.op };
    switch (e.op) {
      case 'mmap': {
        const p = procOf(e.proc, i);
        const start = machine.mmap(p.mm, {
          lengthBytes: e.size,
          addrBytes: e.addr,
          alignBytes: e.align,
          prot: e.prot,
          shared: e.shared,
          name: e.vma,
        });
        p.vmas.set(e.vma, { start, length: e.size });
        return { ...rec, proc: e.proc, vma: e.vma, addr: start, length: e.size };
      }
      case 'munmap': {
        const p = procOf(e.proc, i);
        const v = vmaOf(p, e.vma, i);
        const r = rangeOf(v, e);
        machine.munmap(p.mm, r.addr, r.length);
        if (r.addr === v.start && r.length >= v.length) p.vmas.delete(e.vma);
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
        p.vmas.set(e.vma, { start, length: e.newSize });
        return { ...rec, proc: e.proc, vma: e.vma, addr: start, length: e.newSize };
      }
      case 'touch':
      case 'write': {
        const p = procOf(e.proc, i);
        const r = rangeOf(vmaOf(p, e.vma, i), e);
        return { ...rec, proc: e.proc, vma: e.vma, ...r, ...access(p.mm, e, r.addr, r.length, i) };
      }
      case 'madvise':
      case 'swapout': {
        const p = procOf(e.proc, i);
        const r = rangeOf(vmaOf(p, e.vma, i), e);
        const advice: Advice = e.op === 'madvise' ? e.advice : 'pageout';
        const result = madvise(p.mm, r.addr, r.length, advice);
        const expect = e.op === 'madvise' ? e.expect : undefined;
        if (expect !== undefined && expect !== result)
          throw new ScenarioError(
            source,
            `timeline[${i}].expect`,
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
      case 'fork': {
        const p = procOf(e.proc, i);
        const mm = machine.fork(p.mm, e.child);
        const ref: ProcRef = { name: e.child, mm, vmas: new Map(), exited: false };
        for (const [k, v] of p.vmas) ref.vmas.set(k, { ...v });
        procs.set(e.child, ref);
        order.push(ref);
        return { ...rec, proc: e.proc, child: e.child };
      }
      case 'exit': {
        const p = procOf(e.proc, i);
        machine.exit(p.mm);
        p.exited = true;
        return { ...rec, proc: e.proc };
      }
      case 'prctl': {
        const p = procOf(e.proc, i);
        machine.prctlThpDisable(p.mm, e.thp_disable);
        return { ...rec, proc: e.proc, result: e.thp_disable };
      }
      case 'sleep':
        machine.advance(e.ms);
        return { ...rec, ms: e.ms };
      case 'shrink':
        return { ...rec, split: machine.shrink() };
      case 'sysfs': {
        const value = String(e.value);
        const path = sysfsRelPath(e.path);
        machine.sysfsWrite(path, value);
        return { ...rec, path, result: value };
      }
      case 'report': {
        const label = e.label ?? `timeline[${i}]`;
        reports.push(snapshot(label, i));
        return { ...rec, label, report: reports.length - 1 };
      }
    }
  };

  for (const [i, e] of s.timeline.entries()) {
    try {
      events.push(step(e, i));
    } catch (err) {
      if (err instanceof ScenarioError) throw err;
      const what = eventLabel(e);
      const detail =
        err instanceof Errno
          ? `${what} failed: ${errMessage(err)}`
          : `${what}: model error: ${errMessage(err)}`;
      throw new ScenarioError(source, `timeline[${i}]`, detail, { cause: err });
    }
    invariants(`timeline[${i}]`, eventLabel(e));
  }
  if (!s.timeline.some((e) => e.op === 'report')) {
    try {
      reports.push(snapshot('final', null));
    } catch (err) {
      throw new ScenarioError(source, '', `final report: model error: ${errMessage(err)}`, {
        cause: err,
      });
    }
  }

  return {
    format: 'thpsim-run',
    version: 1,
    scenario: {
      name: s.name,
      ...(s.description !== undefined ? { description: s.description } : {}),
    },
    config,
    sysfs,
    events,
    reports,
  };
}

/** A short description of the machine, e.g. "x86-64-4k, 4KiB pages, 2MiB PMD, 1GiB RAM". */
export function describeConfig(c: RunConfig): string {
  return `${c.profile}, ${c.geometry} (${formatSize(c.pageSize)} pages, ${formatSize(c.pmdSize)} PMD), RAM ${formatSize(c.ramBytes)}, ${c.swapBytes ? `swap ${formatSize(c.swapBytes)}` : 'no swap'}, seed ${c.seed}`;
}
