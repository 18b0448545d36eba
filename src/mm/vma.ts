// mm_struct, vm_area_struct and anon_vma: the per-process state. VMAs are few, so they are plain
// objects in an address-sorted array per mm; per-page state lives in the typed arrays.

export const VM_READ = 1 << 0;
export const VM_WRITE = 1 << 1;
export const VM_EXEC = 1 << 2;
export const VM_SHARED = 1 << 3;
export const VM_MAYWRITE = 1 << 4;
export const VM_HUGEPAGE = 1 << 5;
export const VM_NOHUGEPAGE = 1 << 6;
export const VM_UFFD_MISSING = 1 << 7;
export const VM_UFFD_WP = 1 << 8;
/** VM_GROWSDOWN: a stack VMA. */
export const VM_GROWSDOWN = 1 << 9;
/** VM_DROPPABLE: MADV_FREE'd pages may be dropped even when dirty. */
export const VM_DROPPABLE = 1 << 10;
/** VM_SPECIAL-like mappings khugepaged never touches (VM_NO_KHUGEPAGED). */
export const VM_IO = 1 << 11;
export const VM_LOCKED = 1 << 12;
/** VM_MAYBE_GUARD: guard markers may have been installed (set before the first one). */
export const VM_MAYBE_GUARD = 1 << 13;

export const VM_FLAG_NAMES: ReadonlyArray<[number, string]> = [
  [VM_READ, 'rd'],
  [VM_WRITE, 'wr'],
  [VM_EXEC, 'ex'],
  [VM_SHARED, 'sh'],
  [VM_MAYWRITE, 'mw'],
  [VM_HUGEPAGE, 'hg'],
  [VM_NOHUGEPAGE, 'nh'],
  [VM_UFFD_MISSING, 'um'],
  [VM_UFFD_WP, 'uw'],
  [VM_GROWSDOWN, 'gd'],
  [VM_DROPPABLE, 'dp'],
  [VM_IO, 'io'],
  [VM_LOCKED, 'lo'],
  [VM_MAYBE_GUARD, 'gu'],
];

/** Flags that must match for two neighbouring VMAs to merge (is_mergeable_vma). */
const MERGE_IGNORE = 0;

/** struct anon_vma: rmap root for anonymous folios. */
export class AnonVma {
  readonly id: number;
  readonly root: AnonVma;
  /** VMAs linked to this anon_vma through anon_vma_chain. */
  readonly vmas = new Set<Vma>();
  /** Freed when its last VMA was unlinked (unlink_anon_vmas, put_anon_vma). */
  freed = false;
  constructor(id: number, root?: AnonVma) {
    this.id = id;
    this.root = root ?? this;
  }
}

export class Vma {
  readonly id: number;
  readonly mm: Mm;
  /** [start, end) in virtual page numbers. */
  start: number;
  end: number;
  flags: number;
  /** vm_pgoff: for anon VMAs the linear page index of start. */
  pgoff: number;
  /** 0 for anonymous memory, else a file id. */
  file: number;
  anonVma: AnonVma | null = null;
  /** Every anon_vma this VMA is linked to (own and inherited through fork). */
  chain: AnonVma[] = [];
  /** Per-VMA lock: vm_lock_seq == mm.mmLockSeq means write-locked. */
  vmLockSeq = -1;
  detached = false;
  name: string;

  constructor(
    id: number,
    mm: Mm,
    start: number,
    end: number,
    flags: number,
    pgoff: number,
    file: number,
    name: string,
  ) {
    this.id = id;
    this.mm = mm;
    this.start = start;
    this.end = end;
    this.flags = flags;
    this.pgoff = pgoff;
    this.file = file;
    this.name = name;
  }

  get isAnonymous(): boolean {
    return this.file === 0 && (this.flags & VM_SHARED) === 0;
  }

  get pages(): number {
    return this.end - this.start;
  }

  /** linear_page_index(). */
  linearIndex(vpn: number): number {
    return this.pgoff + (vpn - this.start);
  }

  /** Address of a folio index in this VMA (vma_address), or -1 if outside. */
  addressOf(index: number): number {
    const vpn = this.start + (index - this.pgoff);
    return vpn >= this.start && vpn < this.end ? vpn : -1;
  }
}

export type ThpDisable = 'none' | 'all' | 'except-advised';

export class Mm {
  readonly id: number;
  readonly name: string;
  /** PGD table id. */
  readonly pgd: number;
  readonly vmas: Vma[] = [];
  /** mm->mm_lock_seq, advanced on each mmap write unlock / downgrade. */
  mmLockSeq = 0;
  /** PR_SET_THP_DISABLE state (MMF_DISABLE_THP_*). */
  thpDisable: ThpDisable = 'none';
  /** MMF_VM_HUGEPAGE: registered with khugepaged. */
  khugepagedRegistered = false;
  exiting = false;
  /** MMF_UNSTABLE: the OOM reaper has torn down its anonymous memory; no new anon pages. */
  unstable = false;
  /** MM_ANONPAGES and MM_SWAPENTS rss counters. */
  rssAnon = 0;
  swapEnts = 0;
  /** MM_FILEPAGES and MM_SHMEMPAGES: page-cache pages mapped by this mm's PTEs and PMDs. */
  rssFile = 0;
  rssShmem = 0;
  /** mm->write_protect_seq (fork). */
  writeProtectSeq = 0;
  parent: Mm | null = null;

  constructor(id: number, name: string, pgd: number) {
    this.id = id;
    this.name = name;
    this.pgd = pgd;
  }

  /** find_vma_intersection for one page: the VMA containing vpn. */
  findVma(vpn: number): Vma | null {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = v[mid];
      if (vpn < m.start) hi = mid - 1;
      else if (vpn >= m.end) lo = mid + 1;
      else return m;
    }
    return null;
  }

  /** VMAs intersecting [start, end). */
  vmasIn(start: number, end: number): Vma[] {
    return this.vmas.filter((x) => x.start < end && x.end > start);
  }

  insertVma(vma: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i].start < vma.start) i++;
    this.vmas.splice(i, 0, vma);
  }

  removeVma(vma: Vma): void {
    const i = this.vmas.indexOf(vma);
    if (i >= 0) this.vmas.splice(i, 1);
  }

  /** Whether [start, end) is free of VMAs. */
  rangeFree(start: number, end: number): boolean {
    return this.vmasIn(start, end).length === 0;
  }
}

/** is_mergeable_vma + anon_vma compatibility: whether b can be merged onto the end of a. */
export function canMerge(a: Vma, b: Vma): boolean {
  if (a.end !== b.start) return false;
  if ((a.flags ^ b.flags) & ~MERGE_IGNORE) return false;
  if (a.file !== b.file) return false;
  if (a.pgoff + (a.end - a.start) !== b.pgoff) return false;
  // is_mergeable_anon_vma: the same anon_vma, or one side without and the other with a
  // singular anon_vma_chain (not inherited through fork).
  if (a.anonVma && b.anonVma) {
    if (a.anonVma !== b.anonVma) return false;
  } else if (a.anonVma || b.anonVma) {
    if ((a.anonVma ? a : b).chain.length > 1) return false;
  }
  return a.name === b.name;
}
