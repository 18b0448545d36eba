// The simulated machine: one kernel instance with its geometry, profile, tunables, physical
// memory, page tables, swap, processes and counters. Operations (faults, madvise, mmap, fork, ...)
// are step functions in their own files that take this object.

import type { KernelBug } from './bugs.ts';
import type { CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import { BuddyAllocator } from './buddy.ts';
import { FolioTable, PG_DEFERRED, PG_PARTIALLY_MAPPED, PG_ZERO, PG_ANON } from './folio.ts';
import { type Geometry, type GeometryName, geometry } from './geometry.ts';
import { BalanceSink, LockTable } from './locks.ts';
import { PageTables } from './pgtable.ts';
import { checkRamSize } from './ram.ts';
import { type KernelProfile, type ProfileName, DEFAULT_PROFILE, profile } from './profile.ts';
import { Rng } from './rng.ts';
import { type ThpSettings, defaultSettings } from './settings.ts';
import { Stats } from './stats.ts';
import { type EventSink, type Step, runStep } from './step.ts';
import type { AddressSpace } from './filemap.ts';
import { SwapDevice } from './swap.ts';
import type { TraceSink } from './trace.ts';
import { AnonVma, Mm, Vma } from './vma.ts';

export interface KernelConfig {
  geometry?: GeometryName;
  profile?: ProfileName;
  /** Physical memory in bytes. */
  ramBytes?: number;
  /** Swap device size in bytes (0: no swap). */
  swapBytes?: number;
  seed?: number;
  /** Track real lock state (tests) instead of only counting (fast runs). */
  strictLocks?: boolean;
  /** The mTHP collapse design (default: the merged v19). */
  collapsePolicy?: CollapsePolicy;
}

export const NO_PFN = -1;

/** The bug switches (src/mm/bugs.ts lists them). */
export type { KernelBug };

export class Kernel {
  readonly geo: Geometry;
  readonly profile: KernelProfile;
  readonly settings: ThpSettings;
  readonly stats: Stats;
  readonly buddy: BuddyAllocator;
  readonly folios: FolioTable;
  readonly pt: PageTables;
  readonly swap: SwapDevice;
  readonly rng: Rng;
  readonly sink: EventSink;
  readonly nrPages: number;
  /** The shared zero page (ZERO_PAGE(0)); reserved, never in the buddy allocator. */
  readonly zeroPfn = 0;
  /** The huge zero folio, allocated on first use (get_huge_zero_folio). */
  hugeZeroPfn = NO_PFN;
  readonly mms = new Map<number, Mm>();
  readonly anonVmas = new Map<number, AnonVma>();
  /** Files by id (inode + struct address_space): the page caches, see filemap.ts. */
  readonly files = new Map<number, AddressSpace>();
  nextFileId = 1;
  /** Page-cache counters of /proc/meminfo and vmstat, in pages (maintained by filemap and rmap). */
  readonly fileStats = {
    /** NR_FILE_PAGES (shmem included). */
    filePages: 0,
    /** NR_SHMEM. */
    shmem: 0,
    /** NR_FILE_MAPPED: page-cache pages mapped at least once. */
    fileMapped: 0,
    /** NR_FILE_PMDMAPPED / NR_SHMEM_PMDMAPPED: pages of PMD-mapped page-cache THPs. */
    filePmdMapped: 0,
    shmemPmdMapped: 0,
    /** NR_FILE_THPS / NR_SHMEM_THPS: pages of PMD-sized folios in the page cache. */
    fileThps: 0,
    shmemThps: 0,
  };
  /** Simulated time in milliseconds. */
  clockMs = 0;
  /** Deferred split queue (deferred_split_folio), in insertion order. */
  readonly deferredSplit = new Set<number>();
  /** khugepaged's counters, its scan cursor and its thread's next wake-up (simulated ms). */
  readonly khugepaged = {
    pagesCollapsed: 0,
    fullScans: 0,
    /** khugepaged_scan.mm_slot (an mm id, -1 for none) and .address (vpn). */
    cursorMm: -1,
    cursorAddress: 0,
    /** When the thread runs next; Infinity while it waits for work. */
    wakeAt: 0,
    /** A pass interrupted by alloc_sleep_millisecs resumes with this state. */
    pass: null as null | { progress: number; passThroughHead: number; waitAllowed: boolean },
    /** The once-only warning about max_ptes_none values mTHP collapse does not support. */
    warnedMaxPtesNone: false,
    /**
     * The rounds design's cost counters (docs/designs.md's cost model): rounds run, candidates
     * frozen, pages frozen, and per round the pages copied while its sources were frozen.
     */
    rounds: {
      rounds: 0,
      frozenCandidates: 0,
      frozenPages: 0,
      installed: 0,
      lightMisses: 0,
      lockDrops: 0,
      /** Sum over rounds of the pages the round copied while frozen (sum of c_r). */
      copiedPages: 0,
      /** Sum over rounds of frozen pages times pages copied (page-weighted frozen window). */
      frozenTimesCopied: 0,
      /** The largest number of pages one round copied while frozen. */
      maxCopied: 0,
    },
  };
  /** Which mTHP collapse design runs (the merged one by default). */
  collapsePolicy: CollapsePolicy = 'v19';
  /**
   * Deliberate bugs for the interleaving checker: each names a step a design once lacked (e.g.
   * 'no-full-pmd-check'), switched off inside the one implementation. Empty outside the checker.
   */
  readonly bugs = new Set<KernelBug>();
  /** Where tracepoints go; null when nobody listens. */
  traceSink: TraceSink | null = null;
  /** Gives a freed folio's memcg charges back; set by memcg.ts once a memory cgroup exists. */
  uncharge: ((head: number, order: number) => void) | null = null;
  /** khugepaged's mm_slot list, in registration order (mm ids). */
  readonly khugepagedSlots: number[] = [];
  private nextMmId = 1;
  private nextVmaId = 1;
  private nextAnonVmaId = 1;
  private nextDataToken = 1;

  constructor(cfg: KernelConfig = {}) {
    this.geo = geometry(cfg.geometry ?? 'x86-64-4k');
    this.profile = profile(cfg.profile ?? DEFAULT_PROFILE);
    this.settings = defaultSettings(this.geo);
    this.stats = new Stats(this.geo.maxPageOrder);
    this.nrPages = checkRamSize(cfg.ramBytes ?? 1024 * 1024 * 1024, this.geo.pageSize);
    this.folios = new FolioTable(this.nrPages);
    this.buddy = new BuddyAllocator(
      this.nrPages,
      this.geo.maxPageOrder,
      (pfn) => pfn === this.zeroPfn,
    );
    this.folios.prep(this.zeroPfn, 0);
    this.folios.set(this.zeroPfn, PG_ZERO);
    this.pt = new PageTables(this.geo.entries);
    this.swap = new SwapDevice(Math.floor((cfg.swapBytes ?? 0) / this.geo.pageSize));
    this.rng = new Rng(cfg.seed ?? 1);
    this.sink = cfg.strictLocks ? new LockTable() : new BalanceSink();
    this.collapsePolicy = cfg.collapsePolicy ?? 'v19';
  }

  /** Run a step to completion on this kernel's event sink: the simulator engine. */
  run<T>(step: Step<T>): T {
    return runStep(step, this.sink, 0);
  }

  /** Emit a tracepoint if anyone listens. */
  trace(name: string, fields: Record<string, number | string | boolean>): void {
    if (this.traceSink) this.traceSink({ t: this.clockMs, name, fields });
  }

  /** A fresh, never-reused content token for a user write. */
  freshData(): number {
    return this.nextDataToken++;
  }

  newMm(name: string): Mm {
    const id = this.nextMmId++;
    const pgd = this.pt.pgd.alloc(id);
    this.pt.pgd.state[pgd] = 2; // T_LINKED: the PGD is linked to its mm for the mm's lifetime
    const mm = new Mm(id, name, pgd);
    this.mms.set(id, mm);
    return mm;
  }

  newVma(
    mm: Mm,
    start: number,
    end: number,
    flags: number,
    pgoff: number,
    file: number,
    name: string,
  ): Vma {
    return new Vma(this.nextVmaId++, mm, start, end, flags, pgoff, file, name);
  }

  newAnonVma(parent?: AnonVma): AnonVma {
    const av = new AnonVma(this.nextAnonVmaId++, parent?.root);
    this.anonVmas.set(av.id, av);
    return av;
  }

  mmByName(name: string): Mm | undefined {
    for (const mm of this.mms.values()) if (mm.name === name) return mm;
    return undefined;
  }

  /**
   * The free lists only: a folio of this order with one reference, or NO_PFN. Allocations made
   * with a gfp mask that may compact directly (the THP ones) go through allocFolioGfp in
   * compaction.ts, which falls back to direct compaction.
   */
  allocFolio(order: number): number {
    const pfn = this.buddy.alloc(order);
    if (pfn === NO_PFN) return NO_PFN;
    this.folios.prep(pfn, order);
    return pfn;
  }

  /** folio_get. */
  folioGet(head: number, n = 1): void {
    this.folios.refcount[head] += n;
  }

  /** folio_put: free the folio when the last reference goes. */
  folioPut(head: number, n = 1): void {
    const f = this.folios;
    if (f.flags[head] & PG_ZERO) return;
    f.refcount[head] -= n;
    if (f.refcount[head] > 0) return;
    if (f.refcount[head] < 0) throw new Error(`folio ${head}: refcount underflow`);
    if (f.flags[head] & PG_DEFERRED) this.deferredSplitRemove(head);
    const order = f.order[head];
    if (order > 0 && f.flags[head] & PG_ANON) this.stats.mthpStat(order, 'nr_anon', -1);
    if (this.uncharge) this.uncharge(head, order);
    f.reset(head);
    this.buddy.free(head, order);
  }

  /** deferred_split_folio: queue a large anon folio; partially mapped ones are counted. */
  deferredSplitAdd(head: number, partiallyMapped: boolean): void {
    const f = this.folios;
    const order = f.order[head];
    if (order <= 1 || !(f.flags[head] & PG_ANON)) return;
    if (partiallyMapped && !(f.flags[head] & PG_PARTIALLY_MAPPED)) {
      f.set(head, PG_PARTIALLY_MAPPED);
      // THP_DEFERRED_SPLIT_PAGE counts PMD-mappable folios only (folio_test_pmd_mappable).
      if (order >= this.geo.pmdOrder) this.stats.event('thp_deferred_split_page');
      this.stats.mthpStat(order, 'split_deferred');
      this.stats.mthpStat(order, 'nr_anon_partially_mapped');
    } else if (
      !partiallyMapped &&
      // Whole THPs are queued only for the underused shrinker, and not at all while it is off.
      (order !== this.geo.pmdOrder || !this.settings.shrinkUnderused)
    )
      return;
    if (!(f.flags[head] & PG_DEFERRED)) {
      f.set(head, PG_DEFERRED);
      this.deferredSplit.add(head);
    }
  }

  deferredSplitRemove(head: number): void {
    const f = this.folios;
    if (f.flags[head] & PG_PARTIALLY_MAPPED) {
      f.clear(head, PG_PARTIALLY_MAPPED);
      this.stats.mthpStat(f.order[head], 'nr_anon_partially_mapped', -1);
    }
    f.clear(head, PG_DEFERRED);
    this.deferredSplit.delete(head);
  }
}
