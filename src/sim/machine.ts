// The facade the scenario runner, the CLI and tests use: byte addresses in, kernel step functions
// run to completion underneath. It holds no kernel logic of its own.

import {
  khugepagedRunUntil,
  khugepagedSettingsChanged,
  khugepagedSleepChanged,
} from '../khugepaged/daemon.ts';
import { doMadviseCollapse } from '../khugepaged/madvise-collapse.ts';
import { smapsCounts } from '../mm/accounting.ts';
import { userAccess } from '../mm/fault.ts';
import { createFile, type CreateFileOptions, dropCaches, fileByName } from '../mm/filemap.ts';
import { doFork } from '../mm/fork.ts';
import { orderSizeKb, ordersDescending } from '../mm/geometry.ts';
import { checkInvariants } from '../mm/invariants.ts';
import { Kernel, type KernelConfig } from '../mm/kernel.ts';
import { doMadvise } from '../mm/madvise.ts';
import { type MemcgEvents, memcgAttach, memcgCreate, memcgFork, memcgGroups } from '../mm/memcg.ts';
import { doMmap, doMunmap, exitMmap, MmError } from '../mm/mmap.ts';
import { doMprotect } from '../mm/mprotect.ts';
import { doMremap } from '../mm/mremap.ts';
import { deferredSplitScan } from '../mm/split.ts';
import { MTHP_SERIES_STATS, MTHP_STAT_NAMES } from '../mm/stats.ts';
import type { Step } from '../mm/step.ts';
import type { TraceSink } from '../mm/trace.ts';
import { sysfsRead, sysfsWrite, SysfsError } from '../mm/sysfs.ts';
import { E_PRESENT, E_SWAP, E_TYPE_MASK } from '../mm/pgtable.ts';
import { walkRange } from '../mm/walk.ts';
import { VM_EXEC, VM_FLAG_NAMES, VM_MAYWRITE, VM_READ, VM_SHARED, VM_WRITE } from '../mm/vma.ts';
import type { Mm, ThpDisable } from '../mm/vma.ts';

export type Prot = 'none' | 'r' | 'rw' | 'rx' | 'rwx';
export type Advice = 'hugepage' | 'nohugepage' | 'dontneed' | 'free' | 'pageout' | 'collapse';

export interface MmapArgs {
  lengthBytes: number;
  /** Fixed address (MAP_FIXED_NOREPLACE); otherwise the model picks one (top-down, like mmap). */
  addrBytes?: number;
  /** Align the chosen address to this many bytes (a power of two, e.g. the PMD size). */
  alignBytes?: number;
  prot?: Prot;
  /** MAP_SHARED: with `file` a shared file mapping; without, shared anonymous memory (shmem). */
  shared?: boolean;
  /** Map this file (created with Machine.createFile) instead of anonymous memory. */
  file?: string;
  /** Offset into the file in bytes (page aligned). */
  offsetBytes?: number;
  name?: string;
}

/** How one user access ended, as the fault handler reports it. */
export type AccessOutcome = 'hit' | 'fault' | 'oom' | 'sigsegv';

/** smaps fields of one VMA, in kB as /proc/PID/smaps prints them. */
export interface SmapsEntry {
  start: number;
  end: number;
  name: string;
  flags: string;
  Size: number;
  Rss: number;
  Anonymous: number;
  AnonHugePages: number;
  /** PMD-mapped shmem THPs. */
  ShmemPmdMapped: number;
  /** PMD-mapped THPs of regular files (CONFIG_READ_ONLY_THP_FOR_FS). */
  FilePmdMapped: number;
  Swap: number;
  /** Pages mapped by folios of each order, in kB, keyed by order (a thpmaps-like breakdown). */
  byOrder: Record<number, number>;
}

export interface Meminfo {
  MemTotal: number;
  MemFree: number;
  AnonPages: number;
  AnonHugePages: number;
  SwapTotal: number;
  SwapFree: number;
}

/** Errors of the facade carry the errno name the kernel would return. */
export class Errno extends Error {
  constructor(
    readonly errno:
      'EINVAL' | 'ENOMEM' | 'EBUSY' | 'EAGAIN' | 'EEXIST' | 'EFAULT' | 'ENOENT' | 'EPERM',
    message: string,
  ) {
    super(`${errno}: ${message}`);
  }
}

function vmFlags(prot: Prot): number {
  let f = VM_MAYWRITE;
  if (prot.includes('r')) f |= VM_READ;
  if (prot.includes('w')) f |= VM_WRITE;
  if (prot.includes('x')) f |= VM_EXEC;
  return f;
}

function flagString(flags: number): string {
  return VM_FLAG_NAMES.filter(([bit]) => flags & bit)
    .map(([, n]) => n)
    .join(' ');
}

export class Machine {
  readonly kernel: Kernel;
  constructor(cfg: KernelConfig = {}) {
    this.kernel = new Kernel(cfg);
  }

  private get pageSize(): number {
    return this.kernel.geo.pageSize;
  }

  /** Byte range to page range; start must be page aligned, the length is rounded up. */
  private pages(addr: number, len: number): [number, number] {
    const ps = this.pageSize;
    if (!Number.isSafeInteger(addr) || addr < 0 || addr % ps !== 0)
      throw new Errno('EINVAL', `address ${addr} is not page aligned`);
    if (!Number.isSafeInteger(len) || len < 0) throw new Errno('EINVAL', `bad length ${len}`);
    return [addr / ps, (addr + len + ps - 1 - ((addr + len + ps - 1) % ps)) / ps];
  }

  private run<T>(step: Step<T>): T {
    try {
      return this.kernel.run(step);
    } catch (e) {
      if (e instanceof MmError) throw new Errno(e.errno, e.message);
      throw e;
    }
  }

  private anonShmem = 0;

  /** Create a file (regular, or tmpfs with `tmpfs: true`) of sizeBytes, its pages on "disk". */
  createFile(name: string, sizeBytes: number, opts: CreateFileOptions = {}): void {
    const pages = Math.ceil(sizeBytes / this.pageSize);
    this.run(wrap(() => createFile(this.kernel, name, pages, opts)));
  }

  /** echo 3 > /proc/sys/vm/drop_caches. */
  dropCaches(): void {
    dropCaches(this.kernel);
  }

  /** A new process (its own mm). */
  spawn(name: string): Mm {
    return this.kernel.newMm(name);
  }

  /** Returns the start address in bytes. Throws Errno. */
  mmap(mm: Mm, a: MmapArgs): number {
    const ps = this.pageSize;
    if (!(a.lengthBytes > 0)) throw new Errno('EINVAL', 'length must be positive');
    const pages = Math.ceil(a.lengthBytes / ps);
    let alignPages: number | undefined;
    if (a.alignBytes !== undefined) {
      if (a.alignBytes % ps !== 0 || !Number.isInteger(Math.log2(a.alignBytes)))
        throw new Errno(
          'EINVAL',
          `alignment ${a.alignBytes} is not a power-of-two multiple of the page size`,
        );
      alignPages = a.alignBytes / ps;
    }
    let fixed: number | undefined;
    if (a.addrBytes !== undefined) fixed = this.pages(a.addrBytes, 0)[0];
    let file = 0;
    if (a.file !== undefined) {
      file = fileByName(this.kernel, a.file);
      if (!file) throw new Errno('ENOENT', `no file named '${a.file}'`);
    } else if (a.shared) {
      // MAP_SHARED|MAP_ANONYMOUS is backed by an unnamed shmem file.
      file = this.run(
        wrap(() =>
          createFile(this.kernel, `anon-shmem-${++this.anonShmem}`, pages, {
            tmpfs: true,
            anon: true,
          }),
        ),
      );
    }
    const pgoff = a.offsetBytes === undefined ? undefined : this.pages(a.offsetBytes, 0)[0];
    const start = this.run(
      doMmap(this.kernel, mm, {
        pages,
        fixed,
        alignPages,
        flags: vmFlags(a.prot ?? 'rw') | (a.shared ? VM_SHARED : 0),
        name: a.name ?? a.file ?? 'anon',
        file,
        pgoff,
      }),
    );
    return start * ps;
  }

  munmap(mm: Mm, addr: number, len: number): void {
    const [s, e] = this.pages(addr, len);
    this.run(doMunmap(this.kernel, mm, s, e));
  }

  mprotect(mm: Mm, addr: number, len: number, prot: Prot): void {
    const [s, e] = this.pages(addr, len);
    this.run(doMprotect(this.kernel, mm, s, e, vmFlags(prot) & (VM_READ | VM_WRITE | VM_EXEC)));
  }

  /** Returns the new address in bytes (MREMAP_MAYMOVE, or MREMAP_FIXED when newAddr is given). */
  mremap(mm: Mm, addr: number, oldLen: number, newLen: number, newAddr?: number): number {
    const [s, e] = this.pages(addr, oldLen);
    const newPages = Math.ceil(newLen / this.pageSize);
    const to = newAddr === undefined ? undefined : this.pages(newAddr, 0)[0];
    return this.run(doMremap(this.kernel, mm, s, e - s, newPages, to)) * this.pageSize;
  }

  /** Throws Errno on failure, like madvise(2) returning -1. */
  madvise(mm: Mm, addr: number, len: number, advice: Advice): void {
    const [s, e] = this.pages(addr, len);
    const r = this.run(doMadvise(this.kernel, mm, s, e, advice));
    if (r !== 0) throw new Errno(r, `madvise(${advice}) failed`);
  }

  /** One user access to one byte address (read, or write of a fresh value). */
  access(mm: Mm, addr: number, write: boolean): AccessOutcome {
    const r = this.run(userAccess(this.kernel, mm, Math.floor(addr / this.pageSize), write));
    return OUTCOMES[r];
  }

  /** Access every page of [addr, addr+len) stepping by strideBytes (default: the page size). */
  touch(mm: Mm, addr: number, len: number, write: boolean, strideBytes?: number): AccessOutcome {
    const stride = strideBytes ?? this.pageSize;
    if (!(stride > 0)) throw new Errno('EINVAL', `bad stride ${stride}`);
    let worst: AccessOutcome = 'hit';
    for (let a = addr; a < addr + len; a += stride) {
      const r = this.access(mm, a, write);
      if (r === 'oom' || r === 'sigsegv') return r;
      if (r === 'fault') worst = 'fault';
    }
    return worst;
  }

  /**
   * The content token a user read of this address would see, read from the page tables without
   * a fault: the mapped page's data, a swap slot's (or its swap-cache folio's), or 0 for a none
   * entry of anonymous memory. null where that needs a fault: an unmapped address, a none entry
   * of a file or shmem mapping (the page cache decides), a migration or marker entry.
   */
  readPage(mm: Mm, addr: number): number | null {
    const k = this.kernel;
    const vpn = Math.floor(addr / this.pageSize);
    const vma = mm.findVma(vpn);
    if (!vma) return null;
    let out: number | null = vma.file !== 0 ? null : 0;
    walkRange(k, mm, vpn, vpn + 1, {
      pmd: (base, _t, _i, _bits, head) => {
        out = k.folios.data[head + (vpn - base)];
      },
      pte: (_vpn, _t, _i, bits, val) => {
        const type = bits & E_TYPE_MASK;
        if (type === E_PRESENT) out = k.folios.data[val];
        else if (type === E_SWAP) {
          const cached = k.swap.cache[val];
          out =
            cached === -1
              ? k.swap.data[val]
              : k.folios.data[cached + (val - k.folios.swapSlot[cached])];
        } else out = null;
      },
    });
    return out;
  }

  fork(parent: Mm, childName: string): Mm {
    const child = this.run(doFork(this.kernel, parent, childName));
    memcgFork(this.kernel, parent, child);
    return child;
  }

  /** Put a process in a cgroup of its own with memory.max = maxBytes (src/mm/memcg.ts). */
  memoryMax(mm: Mm, maxBytes: number): void {
    memcgAttach(this.kernel, mm, memcgCreate(this.kernel, mm.name, maxBytes));
  }

  /** memory.current, memory.max, memory.peak (kB) and memory.events of every memory cgroup. */
  memcgs(): Array<{
    name: string;
    current: number;
    /** null: "max" (no limit). */
    max: number | null;
    peak: number;
    events: MemcgEvents;
  }> {
    const kb = this.pageSize / 1024;
    return memcgGroups(this.kernel).map((g) => ({
      name: g.name,
      current: g.usage * kb,
      max: Number.isFinite(g.maxPages) ? g.maxPages * kb : null,
      peak: g.peak * kb,
      events: { ...g.events },
    }));
  }

  exit(mm: Mm): void {
    this.run(exitMmap(this.kernel, mm));
  }

  prctlThpDisable(mm: Mm, mode: ThpDisable): void {
    mm.thpDisable = mode;
  }

  /** Called after each khugepaged pass (wake) that advance() and waitKhugepaged() run. */
  onKhugepagedPass: (() => void) | undefined = undefined;

  /** Advance simulated time; khugepaged runs whenever it is due. */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new Errno('EINVAL', `bad time ${ms}`);
    khugepagedRunUntil(this.kernel, this.kernel.clockMs + ms, this.onKhugepagedPass);
  }

  /**
   * Let time pass until khugepaged completes `scans` more full scans (the selftests wait for 2),
   * or until maxMs elapse, or until `done()` holds after a pass. Returns the simulated ms waited.
   */
  waitKhugepaged(scans = 2, maxMs = 60_000, done?: () => boolean): number {
    const k = this.kernel;
    const start = k.clockMs;
    const target = k.khugepaged.fullScans + scans;
    const deadline = start + maxMs;
    while (k.clockMs < deadline && k.khugepaged.fullScans < target && !done?.()) {
      const next = Math.min(deadline, Math.max(k.khugepaged.wakeAt, k.clockMs));
      if (next === Infinity) break;
      khugepagedRunUntil(k, next, this.onKhugepagedPass);
      if (k.khugepaged.wakeAt === Infinity) break;
    }
    return k.clockMs - start;
  }

  /** MADV_COLLAPSE on [addr, addr+len) with the result of every PMD range tried. */
  collapse(
    mm: Mm,
    addr: number,
    len: number,
  ): { errno: 0 | string; pmds: Array<{ addr: number; result: string }> } {
    const [s, e] = this.pages(addr, len);
    const r = this.run(doMadviseCollapse(this.kernel, mm, s, e));
    return {
      errno: r.errno,
      pmds: r.pmds.map((p) => ({ addr: p.vpn * this.pageSize, result: p.result })),
    };
  }

  /** Record tracepoints from now on (or stop, with null). */
  setTrace(sink: TraceSink | null): void {
    this.kernel.traceSink = sink;
  }

  /** khugepaged's counters and where its cursor stands. */
  khugepaged(): { pages_collapsed: number; full_scans: number; registered: string[] } {
    const k = this.kernel;
    return {
      pages_collapsed: k.khugepaged.pagesCollapsed,
      full_scans: k.khugepaged.fullScans,
      registered: k.khugepagedSlots.map((id) => k.mms.get(id)?.name ?? `mm${id}`),
    };
  }

  /** Run the deferred-split shrinker (deferred_split_scan) over the whole queue. */
  shrink(): number {
    return this.run(deferredSplitScan(this.kernel));
  }

  /** Path relative to /sys/kernel/mm/transparent_hugepage/. Throws Errno on bad writes. */
  sysfsWrite(path: string, value: string): void {
    try {
      sysfsWrite(this.kernel, path, value);
      if (/sleep_millisecs\s*$/.test(path)) khugepagedSleepChanged(this.kernel);
      else khugepagedSettingsChanged(this.kernel);
    } catch (e) {
      if (e instanceof SysfsError)
        throw new Errno(
          e.errno === 'ENOENT' ? 'ENOENT' : e.errno === 'EACCES' ? 'EPERM' : 'EINVAL',
          e.message,
        );
      throw e;
    }
  }

  sysfsRead(path: string): string {
    try {
      return sysfsRead(this.kernel, path);
    } catch (e) {
      if (e instanceof SysfsError)
        throw new Errno(e.errno === 'ENOENT' ? 'ENOENT' : 'EINVAL', e.message);
      throw e;
    }
  }

  smaps(mm: Mm): SmapsEntry[] {
    const kb = this.pageSize / 1024;
    return mm.vmas.map((vma) => {
      const c = smapsCounts(this.kernel, vma);
      const byOrder: Record<number, number> = {};
      for (const [o, n] of [...c.byOrder].sort((a, b) => b[0] - a[0])) byOrder[o] = n * kb;
      return {
        start: vma.start * this.pageSize,
        end: vma.end * this.pageSize,
        name: vma.name,
        flags: flagString(vma.flags),
        Size: vma.pages * kb,
        Rss: c.rss * kb,
        Anonymous: c.anonymous * kb,
        AnonHugePages: c.anonHugePages * kb,
        ShmemPmdMapped: c.shmemPmdMapped * kb,
        FilePmdMapped: c.filePmdMapped * kb,
        Swap: c.swap * kb,
        byOrder,
      };
    });
  }

  /**
   * Anonymous memory of an mm (kB), and the part of it in PMD ranges that a VMA spans whole:
   * only that part is within reach of collapse designs that detach the whole page table.
   */
  anonReach(mm: Mm): { anonKb: number; inPmdSpansKb: number } {
    const kb = this.pageSize / 1024;
    const nr = this.kernel.geo.ptrsPerPte;
    let anon = 0;
    let inSpans = 0;
    for (const vma of mm.vmas) {
      if (!vma.isAnonymous) continue;
      anon += smapsCounts(this.kernel, vma).anonymous;
      const lo = Math.ceil(vma.start / nr) * nr;
      const hi = Math.floor(vma.end / nr) * nr;
      if (lo < hi) inSpans += smapsCounts(this.kernel, vma, lo, hi).anonymous;
    }
    return { anonKb: anon * kb, inPmdSpansKb: inSpans * kb };
  }

  meminfo(): Meminfo {
    const k = this.kernel;
    const kb = this.pageSize / 1024;
    return {
      MemTotal: k.nrPages * kb,
      MemFree: k.buddy.freePages * kb,
      AnonPages: k.stats.anonMapped * kb,
      AnonHugePages: k.stats.anonThps * kb,
      SwapTotal: k.swap.nrSlots * kb,
      SwapFree: (k.swap.nrSlots - k.swap.inuse) * kb,
    };
  }

  vmstat(): Record<string, number> {
    return this.kernel.stats.vmstatRecord();
  }

  /** Per-size stats: { '2048kB': { anon_fault_alloc: n, ... }, ... }. */
  mthpStats(): Record<string, Record<string, number>> {
    const k = this.kernel;
    const out: Record<string, Record<string, number>> = {};
    for (const o of ordersDescending(k.geo.anonOrders).reverse()) {
      const row: Record<string, number> = {};
      for (const name of MTHP_STAT_NAMES) {
        if (MTHP_SERIES_STATS.has(name) && !k.profile.mthpCollapseStats) continue;
        row[name] = k.stats.mthpValue(o, name);
      }
      out[`${orderSizeKb(k.geo, o)}kB`] = row;
    }
    return out;
  }

  /** Check the invariants of the sequential model; throws with a description on a violation. */
  checkInvariants(): void {
    checkInvariants(this.kernel);
  }
}

/** Run plain code through the same error translation as a step. */
// eslint-disable-next-line require-yield
function* wrap<T>(f: () => T): Step<T> {
  return f();
}

const OUTCOMES: AccessOutcome[] = ['hit', 'fault', 'oom', 'sigsegv'];

export type { Mm, ThpDisable };
