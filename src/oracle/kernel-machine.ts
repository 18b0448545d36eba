// The live kernel behind the Machine facade, so the scenario runner (src/scenario/run.ts) runs a
// scenario on the kernel exactly as it runs it on the model: its checks, collapse contexts and
// settings stack all apply unchanged. Memory operations go to the native helper (one real process
// per scenario process); sysfs goes through the SysfsGuard; counters are read from sysfs and
// /proc and reported as differences from when the machine was made. The model kernel inside
// (super) only mirrors the settings and supplies the geometry; it maps nothing.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KernelConfig } from '../mm/kernel.ts';
import { VMSTAT_NAMES } from '../mm/stats.ts';
import type { Mm } from '../mm/vma.ts';
import {
  type AccessOutcome,
  type Advice,
  Errno,
  Machine,
  type Meminfo,
  type MmapArgs,
  type Prot,
  type SmapsEntry,
  type ThpDisable,
} from '../sim/machine.ts';
import { type HelperProc, type HelperSession, type Reply, sleepSync } from './helper.ts';
import { type OracleSide, type Region, orderOf, P_PRESENT, P_ZERO, sideCounters } from './pages.ts';
import type { SysfsGuard } from './sysfs-guard.ts';

/** The shortest real-time wait for khugepaged on the live kernel (see waitKhugepaged). */
const MIN_KERNEL_WAIT_MS = 45_000;

/** How often MADV_COLLAPSE is tried again after EAGAIN on the live kernel. */
const COLLAPSE_EAGAIN_RETRIES = 3;

/** Something the live kernel (or the helper) cannot do: the scenario is not comparable. */
export class NotComparableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotComparableError';
  }
}

/** The MADV_* numbers (include/uapi/asm-generic/mman-common.h). */
export const MADV: Record<Advice, number> = {
  dontneed: 4,
  free: 8,
  hugepage: 14,
  nohugepage: 15,
  pageout: 21,
  collapse: 25,
};

const ERRNOS = ['EINVAL', 'ENOMEM', 'EBUSY', 'EAGAIN', 'EEXIST', 'EFAULT', 'ENOENT', 'EPERM'];
type ErrnoName = Errno['errno'];

function errnoOf(r: Reply, what: string): Errno {
  const name = String(r.errno ?? 'EINVAL');
  return new Errno(
    (ERRNOS.includes(name) ? name : 'EINVAL') as ErrnoName,
    `${what}: ${name} (${String(r.msg ?? '')})`,
  );
}

const SCAN_SLEEP = 'khugepaged/scan_sleep_millisecs';
/**
 * khugepaged's scan_sleep_millisecs between waits. On the model time stands still between
 * events and khugepaged runs only in `sleep` and the waits; on the kernel it would run whenever
 * its timer fires, racing the scenario's next step. So the machine keeps it asleep (this long a
 * sleep) and writes the scenario's value only for a wait (a write wakes the thread at once).
 */
export const PAUSED_SCAN_SLEEP = '3600000';

/** Longest `sleep` event run on the kernel, in ms: the oracle is for short scenarios. */
export const MAX_SLEEP_MS = 10_000;

export interface KernelMachineOptions {
  session: HelperSession;
  guard: SysfsGuard;
  /** The transparent_hugepage directory and /proc. */
  thpRoot: string;
  proc?: string;
  /** The kernel has the mTHP collapse stats: compare them. */
  collapseStats: boolean;
  /** Values to copy into the model mirror first (the kernel's current settings). */
  mirror: Array<[string, string]>;
}

interface Proc {
  name: string;
  mm: Mm;
  helper: HelperProc;
  live: boolean;
  /** Named ranges this process mapped (a name may have several after a partial munmap). */
  regions: Region[];
}

const PAGE_ROUND = (n: number, ps: number) => Math.ceil(n / ps) * ps;

export class KernelMachine extends Machine implements OracleSide {
  private readonly opts: KernelMachineOptions;
  private readonly procs: Proc[] = [];
  private readonly byMm = new Map<Mm, Proc>();
  /** The scenario's scan_sleep_millisecs (the kernel holds PAUSED_SCAN_SLEEP between waits). */
  private scanSleep: string;
  private readonly base: {
    pagesCollapsed: number;
    fullScans: number;
    vmstat: Record<string, number>;
    mthp: Record<string, Record<string, number>>;
  };

  constructor(cfg: KernelConfig, opts: KernelMachineOptions) {
    super(cfg);
    this.opts = opts;
    for (const [rel, value] of opts.mirror) {
      try {
        super.sysfsWrite(rel, value);
      } catch {
        // a value the model does not accept: the scenario's settings decide
      }
    }
    for (const [rel, value] of opts.mirror) this.noteAlways(rel, value);
    this.scanSleep = this.opts.guard.read(SCAN_SLEEP);
    this.opts.guard.write(SCAN_SLEEP, PAUSED_SCAN_SLEEP);
    this.base = {
      pagesCollapsed: this.knob('khugepaged/pages_collapsed'),
      fullScans: this.knob('khugepaged/full_scans'),
      vmstat: this.rawVmstat(),
      mthp: this.rawMthp(),
    };
  }

  private get ps(): number {
    return this.kernel.geo.pageSize;
  }

  private knob(rel: string): number {
    return Number(readFileSync(join(this.opts.thpRoot, rel), 'utf8').trim());
  }

  private proc(mm: Mm): Proc {
    const p = this.byMm.get(mm);
    if (!p || !p.live) throw new Errno('EINVAL', `no live process for mm ${mm.id}`);
    return p;
  }

  private ask(mm: Mm, line: string): Reply {
    return this.proc(mm).helper.request(line);
  }

  private ok(mm: Mm, line: string): Reply {
    const r = this.ask(mm, line);
    if (!r.ok) throw errnoOf(r, line.split(' ')[0]);
    return r;
  }

  // ---- processes ----

  override spawn(name: string): Mm {
    const mm = super.spawn(name);
    const p: Proc = { name, mm, helper: this.opts.session.spawn(name), live: true, regions: [] };
    this.procs.push(p);
    this.byMm.set(mm, p);
    return mm;
  }

  override fork(parent: Mm, childName: string): Mm {
    const pp = this.proc(parent);
    const mm = this.kernel.newMm(childName);
    const helper = this.opts.session.fork(pp.helper, childName);
    const p: Proc = {
      name: childName,
      mm,
      helper,
      live: true,
      regions: pp.regions.map((r) => ({ ...r })),
    };
    this.procs.push(p);
    this.byMm.set(mm, p);
    return mm;
  }

  override exit(mm: Mm): void {
    const p = this.proc(mm);
    this.ok(mm, 'exit');
    p.helper.markExited();
    p.live = false;
  }

  override prctlThpDisable(mm: Mm, mode: ThpDisable): void {
    const r = this.ask(mm, `prctl ${mode === 'none' ? 0 : mode === 'all' ? 1 : 2}`);
    if (!r.ok) {
      if (mode === 'except-advised')
        throw new NotComparableError(
          `this kernel has no PR_SET_THP_DISABLE with PR_THP_DISABLE_EXCEPT_ADVISED (${String(r.errno)})`,
        );
      throw errnoOf(r, 'prctl');
    }
  }

  // ---- mappings ----

  override mmap(mm: Mm, a: MmapArgs): number {
    if (a.file !== undefined || a.shared)
      throw new NotComparableError(
        'file and shared mappings: the helper maps private anonymous memory only',
      );
    const len = PAGE_ROUND(a.lengthBytes, this.ps);
    const r = this.ok(mm, `mmap ${a.addrBytes ?? 0} ${len} ${a.alignBytes ?? 0} ${a.prot ?? 'rw'}`);
    const start = Number(r.addr);
    this.proc(mm).regions.push({ name: a.name ?? 'anon', start, end: start + len });
    return start;
  }

  private cut(p: Proc, start: number, end: number): Region[] {
    const removed: Region[] = [];
    const keep: Region[] = [];
    for (const r of p.regions) {
      if (r.end <= start || r.start >= end) {
        keep.push(r);
        continue;
      }
      removed.push({ name: r.name, start: Math.max(r.start, start), end: Math.min(r.end, end) });
      if (r.start < start) keep.push({ name: r.name, start: r.start, end: start });
      if (r.end > end) keep.push({ name: r.name, start: end, end: r.end });
    }
    p.regions = keep;
    return removed;
  }

  override munmap(mm: Mm, addr: number, len: number): void {
    this.ok(mm, `munmap ${addr} ${PAGE_ROUND(len, this.ps)}`);
    this.cut(this.proc(mm), addr, addr + PAGE_ROUND(len, this.ps));
  }

  override mprotect(mm: Mm, addr: number, len: number, prot: Prot): void {
    this.ok(mm, `mprotect ${addr} ${PAGE_ROUND(len, this.ps)} ${prot}`);
  }

  override mremap(mm: Mm, addr: number, oldLen: number, newLen: number, newAddr?: number): number {
    const o = PAGE_ROUND(oldLen, this.ps);
    const n = PAGE_ROUND(newLen, this.ps);
    const r = this.ok(mm, `mremap ${addr} ${o} ${n} ${newAddr ?? 0}`);
    const to = Number(r.addr);
    const p = this.proc(mm);
    const moved = this.cut(p, addr, addr + o);
    if (newAddr !== undefined) this.cut(p, to, to + n);
    p.regions.push({ name: moved[0]?.name ?? 'anon', start: to, end: to + n });
    return to;
  }

  override madvise(mm: Mm, addr: number, len: number, advice: Advice): void {
    this.ok(mm, `madvise ${addr} ${len} ${MADV[advice]}`);
  }

  override collapse(
    mm: Mm,
    addr: number,
    len: number,
  ): { errno: 0 | string; pmds: Array<{ addr: number; result: string }> } {
    // EAGAIN is the kernel's "transient, try again" (a folio locked or off the LRU for a moment,
    // which a busy machine makes likely); the model has no such transients, so try again a
    // few times before comparing.
    let r = this.ask(mm, `madvise ${addr} ${len} ${MADV.collapse}`);
    for (let i = 0; i < COLLAPSE_EAGAIN_RETRIES && !r.ok && String(r.errno) === 'EAGAIN'; i++) {
      sleepSync(50);
      r = this.ask(mm, `madvise ${addr} ${len} ${MADV.collapse}`);
    }
    // The kernel does not say why each PMD range did or did not collapse.
    return { errno: r.ok ? 0 : String(r.errno), pmds: [] };
  }

  // ---- accesses ----

  override access(mm: Mm, addr: number, write: boolean): AccessOutcome {
    return this.touch(mm, addr, 1, write, this.ps);
  }

  override touch(
    mm: Mm,
    addr: number,
    len: number,
    write: boolean,
    strideBytes?: number,
  ): AccessOutcome {
    const r = this.ok(mm, `touch ${addr} ${len} ${strideBytes ?? this.ps} ${write ? 1 : 0}`);
    return r.outcome === 'sigsegv' ? 'sigsegv' : 'hit';
  }

  override readPage(mm: Mm, addr: number): number | null {
    const r = this.ok(mm, `read ${addr}`);
    return r.v === null ? null : Number(r.v);
  }

  // ---- time and khugepaged ----

  /** Let khugepaged run at the scenario's pace during f. */
  private running<T>(f: () => T): T {
    this.opts.guard.write(SCAN_SLEEP, this.scanSleep);
    try {
      return f();
    } finally {
      this.opts.guard.write(SCAN_SLEEP, PAUSED_SCAN_SLEEP);
    }
  }

  override advance(ms: number): void {
    if (ms > MAX_SLEEP_MS)
      throw new NotComparableError(
        `a sleep of ${ms} ms: the oracle runs sleeps in real time, up to ${MAX_SLEEP_MS} ms`,
      );
    this.running(() => sleepSync(ms));
  }

  override waitKhugepaged(scans = 2, maxMs = 60_000, done?: () => boolean): number {
    // The kernel's khugepaged runs at nice 19: on a machine whose CPUs are busy (the test suite
    // runs files in parallel) a scan the model finishes at once can take many seconds of real
    // time. Waiting longer changes nothing for the comparison; giving up early would.
    const wait = Math.max(maxMs, MIN_KERNEL_WAIT_MS);
    return this.running(() => this.waitScans(scans, wait, done));
  }

  private waitScans(scans: number, maxMs: number, done?: () => boolean): number {
    const t0 = performance.now();
    const target = this.knob('khugepaged/full_scans') + scans;
    for (;;) {
      if (done?.()) break;
      if (this.knob('khugepaged/full_scans') >= target) break;
      if (performance.now() - t0 >= maxMs) break;
      sleepSync(5);
    }
    return Math.round(performance.now() - t0);
  }

  override khugepaged(): { pages_collapsed: number; full_scans: number; registered: string[] } {
    return {
      pages_collapsed: this.knob('khugepaged/pages_collapsed') - this.base.pagesCollapsed,
      full_scans: this.knob('khugepaged/full_scans') - this.base.fullScans,
      registered: [],
    };
  }

  override shrink(): number {
    throw new NotComparableError('the deferred-split shrinker cannot be run on demand');
  }

  override createFile(): void {
    throw new NotComparableError('files: the helper maps private anonymous memory only');
  }

  override dropCaches(): void {
    throw new NotComparableError('drop_caches: the helper maps private anonymous memory only');
  }

  override setTrace(): void {
    // the kernel's tracepoints are not read
  }

  override checkInvariants(): void {
    // the model's invariants do not apply to the kernel
  }

  // ---- sysfs ----

  /**
   * Set when some anonymous size was `always` during the run: every process on the machine then
   * faults such folios, so the global counters say nothing about this run.
   */
  countersUnreliable: string | undefined;

  private noteAlways(path: string, value: string): void {
    const rel = path.replace(/^\/+/, '');
    if (value.trim() === 'always' && (rel === 'enabled' || /^hugepages-\d+kB\/enabled$/.test(rel)))
      this.countersUnreliable ??= `${rel} was "always" (every process on the machine faults such folios)`;
  }

  override sysfsWrite(path: string, value: string): void {
    this.noteAlways(path, value);
    try {
      if (path.replace(/^\/+/, '') === SCAN_SLEEP) {
        this.opts.guard.write(path, value); // checks the value, wakes khugepaged as a write does
        this.opts.guard.write(path, PAUSED_SCAN_SLEEP);
        this.scanSleep = value.trim();
      } else this.opts.guard.write(path, value);
    } catch (e) {
      throw new Errno('EINVAL', (e as Error).message);
    }
    try {
      super.sysfsWrite(path, value);
    } catch {
      // the mirror only follows what the kernel accepted
    }
  }

  override sysfsRead(path: string): string {
    if (path.replace(/^\/+/, '') === SCAN_SLEEP) return this.scanSleep;
    try {
      return readFileSync(join(this.opts.thpRoot, path), 'utf8').trim();
    } catch (e) {
      throw new Errno('ENOENT', `${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }

  // ---- reports ----

  override smaps(mm: Mm): SmapsEntry[] {
    const p = this.proc(mm);
    const r = this.ok(mm, 'smaps');
    const out: SmapsEntry[] = [];
    for (const raw of r.vmas as Array<Record<string, number | string>>) {
      const start = Number(raw.start);
      const end = Number(raw.end);
      const region = p.regions.find((x) => x.start < end && x.end > start);
      if (!region) continue;
      const kb = (k: string) => Number(raw[k] ?? 0);
      const perms = String(raw.perms);
      const entry = {
        start,
        end,
        name: region.name,
        flags: [
          perms[0] === 'r' ? 'rd' : '',
          perms[1] === 'w' ? 'wr' : '',
          perms[2] === 'x' ? 'ex' : '',
        ]
          .filter(Boolean)
          .join(' '),
        Size: kb('Size'),
        Rss: kb('Rss'),
        Anonymous: kb('Anonymous'),
        AnonHugePages: kb('AnonHugePages'),
        ShmemPmdMapped: kb('ShmemPmdMapped'),
        FilePmdMapped: kb('FilePmdMapped'),
        Swap: kb('Swap'),
      } as SmapsEntry;
      // The per-order breakdown costs a page walk: only when someone reads it.
      let byOrder: Record<number, number> | undefined;
      Object.defineProperty(entry, 'byOrder', {
        enumerable: true,
        get: () => (byOrder ??= this.byOrder(mm, start, end)),
      });
      out.push(entry);
    }
    return out;
  }

  private byOrder(mm: Mm, start: number, end: number): Record<number, number> {
    const kb = this.ps / 1024;
    const counts = new Map<number, number>();
    for (const c of this.pageCodes(mm, start, (end - start) / this.ps)) {
      if (!(c & P_PRESENT) || c & P_ZERO) continue;
      counts.set(orderOf(c), (counts.get(orderOf(c)) ?? 0) + kb);
    }
    const out: Record<number, number> = {};
    for (const [o, n] of [...counts].sort((a, b) => b[0] - a[0])) out[o] = n;
    return out;
  }

  override meminfo(): Meminfo {
    const text = readFileSync(join(this.opts.proc ?? '/proc', 'meminfo'), 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return {
      MemTotal: get('MemTotal'),
      MemFree: get('MemFree'),
      AnonPages: get('AnonPages'),
      AnonHugePages: get('AnonHugePages'),
      SwapTotal: get('SwapTotal'),
      SwapFree: get('SwapFree'),
    };
  }

  private rawVmstat(): Record<string, number> {
    const text = readFileSync(join(this.opts.proc ?? '/proc', 'vmstat'), 'utf8');
    const all = new Map(
      text
        .split('\n')
        .map((l) => l.split(' '))
        .filter((x) => x.length === 2)
        .map(([k, v]) => [k, Number(v)] as const),
    );
    const out: Record<string, number> = {};
    for (const n of VMSTAT_NAMES) if (all.has(n)) out[n] = all.get(n)!;
    return out;
  }

  override vmstat(): Record<string, number> {
    const now = this.rawVmstat();
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(now)) out[k] = v - (this.base.vmstat[k] ?? 0);
    return out;
  }

  private rawMthp(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const d of readdirSync(this.opts.thpRoot)) {
      const m = /^hugepages-(\d+kB)$/.exec(d);
      if (!m) continue;
      let names: string[];
      try {
        readFileSync(join(this.opts.thpRoot, d, 'enabled'));
        names = readdirSync(join(this.opts.thpRoot, d, 'stats'));
      } catch {
        continue; // not an anonymous size
      }
      const row: Record<string, number> = {};
      for (const n of names.sort())
        row[n] = Number(readFileSync(join(this.opts.thpRoot, d, 'stats', n), 'utf8').trim());
      out[m[1]] = row;
    }
    return out;
  }

  override mthpStats(): Record<string, Record<string, number>> {
    const now = this.rawMthp();
    const out: Record<string, Record<string, number>> = {};
    for (const [size, row] of Object.entries(now)) {
      out[size] = {};
      for (const [n, v] of Object.entries(row)) out[size][n] = v - (this.base.mthp[size]?.[n] ?? 0);
    }
    return out;
  }

  // ---- OracleSide ----

  liveProcs(): Array<{ name: string; mm: Mm }> {
    return this.procs.filter((p) => p.live).map(({ name, mm }) => ({ name, mm }));
  }

  regions(mm: Mm): Region[] {
    const by = new Map<string, Region>();
    for (const r of this.proc(mm).regions) {
      const x = by.get(r.name);
      if (!x) by.set(r.name, { ...r });
      else {
        x.start = Math.min(x.start, r.start);
        x.end = Math.max(x.end, r.end);
      }
    }
    return [...by.values()];
  }

  pageCodes(mm: Mm, addr: number, n: number): number[] {
    const r = this.ok(mm, `pages ${addr} ${n}`);
    return r.p as number[];
  }

  counters(): Record<string, number> {
    return sideCounters(
      this.khugepaged().pages_collapsed,
      this.mthpStats(),
      this.vmstat(),
      this.opts.collapseStats,
    );
  }

  /** Close every helper process of the run. */
  close(): void {
    this.opts.session.close();
  }
}
