// The facade the scenario runner, the CLI and tests use: byte addresses in, kernel step functions
// run to completion underneath. It holds no kernel logic of its own.

import { Kernel, type KernelConfig } from '../mm/kernel.ts';
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
  /** MAP_SHARED anonymous memory (shmem): not supported before the file-collapse issue. */
  shared?: boolean;
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
    readonly errno: 'EINVAL' | 'ENOMEM' | 'EBUSY' | 'EAGAIN' | 'EEXIST' | 'EFAULT' | 'ENOENT' | 'EPERM',
    message: string,
  ) {
    super(`${errno}: ${message}`);
  }
}

export class Machine {
  readonly kernel: Kernel;
  constructor(cfg: KernelConfig = {}) {
    this.kernel = new Kernel(cfg);
  }

  /** A new process (its own mm). */
  spawn(name: string): Mm {
    return this.kernel.newMm(name);
  }
  /** Returns the start address in bytes. Throws Errno. */
  mmap(_mm: Mm, _a: MmapArgs): number {
    throw new Error('TODO');
  }
  munmap(_mm: Mm, _addr: number, _len: number): void {
    throw new Error('TODO');
  }
  mprotect(_mm: Mm, _addr: number, _len: number, _prot: Prot): void {
    throw new Error('TODO');
  }
  /** Returns the new address in bytes (MREMAP_MAYMOVE, or MREMAP_FIXED when newAddr is given). */
  mremap(_mm: Mm, _addr: number, _oldLen: number, _newLen: number, _newAddr?: number): number {
    throw new Error('TODO');
  }
  /** Throws Errno on failure, like madvise(2) returning -1. */
  madvise(_mm: Mm, _addr: number, _len: number, _advice: Advice): void {
    throw new Error('TODO');
  }
  /** One user access to one byte address (read, or write of a fresh value). */
  access(_mm: Mm, _addr: number, _write: boolean): AccessOutcome {
    throw new Error('TODO');
  }
  /** Access every page of [addr, addr+len) stepping by strideBytes (default: the page size). */
  touch(_mm: Mm, _addr: number, _len: number, _write: boolean, _strideBytes?: number): AccessOutcome {
    throw new Error('TODO');
  }
  fork(_parent: Mm, _childName: string): Mm {
    throw new Error('TODO');
  }
  exit(_mm: Mm): void {
    throw new Error('TODO');
  }
  prctlThpDisable(_mm: Mm, _mode: ThpDisable): void {
    throw new Error('TODO');
  }
  /** Advance simulated time (later issues run khugepaged in it). */
  advance(_ms: number): void {
    throw new Error('TODO');
  }
  /** Run the deferred-split shrinker (deferred_split_scan) over the whole queue. */
  shrink(): number {
    throw new Error('TODO');
  }
  /** Path relative to /sys/kernel/mm/transparent_hugepage/. Throws Errno('EINVAL') on bad writes. */
  sysfsWrite(_path: string, _value: string): void {
    throw new Error('TODO');
  }
  sysfsRead(_path: string): string {
    throw new Error('TODO');
  }
  smaps(_mm: Mm): SmapsEntry[] {
    throw new Error('TODO');
  }
  meminfo(): Meminfo {
    throw new Error('TODO');
  }
  vmstat(): Record<string, number> {
    return this.kernel.stats.vmstatRecord();
  }
  /** Per-size stats: { '2048kB': { anon_fault_alloc: n, ... }, ... }. */
  mthpStats(): Record<string, Record<string, number>> {
    throw new Error('TODO');
  }
  /** Check the invariants of the sequential model; throws with a description on a violation. */
  checkInvariants(): void {
    throw new Error('TODO');
  }
}

export type { Mm, ThpDisable };
