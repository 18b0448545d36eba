// Folio metadata (struct folio / struct page) as struct-of-arrays indexed by pfn. Per-folio fields
// are valid at the head pfn; per-page fields at every pfn. Mapcounts follow the large-folio
// scheme of CONFIG_MM_ID kernels: a total (large) mapcount, an entire (PMD) mapcount, per-page PTE
// mapcounts, and two mm-id slots from which "maybe mapped shared" is derived.

export const PG_HEAD = 1 << 0;
export const PG_TAIL = 1 << 1;
export const PG_ANON = 1 << 2;
export const PG_LRU = 1 << 3;
export const PG_LOCKED = 1 << 4;
export const PG_SWAPCACHE = 1 << 5;
export const PG_DIRTY = 1 << 6;
export const PG_REFERENCED = 1 << 7;
/** page_idle young bit (folio_test_young). */
export const PG_YOUNG = 1 << 8;
/** Anon folio with PG_swapbacked cleared by MADV_FREE. */
export const PG_LAZYFREE = 1 << 9;
/** PG_partially_mapped: on the deferred split queue because some pages are unmapped. */
export const PG_PARTIALLY_MAPPED = 1 << 10;
/** PG_large_maybe_mapped_shared. */
export const PG_MAYBE_SHARED = 1 << 11;
/** On the deferred split queue (folio->_deferred_list non-empty). */
export const PG_DEFERRED = 1 << 12;
/** The shared zero page or the huge zero folio: never freed, never counted as anon. */
export const PG_ZERO = 1 << 13;
/** In the page cache of a file (mapping = file id, index = page index of the head). */
export const PG_FILE = 1 << 14;
/** Per page: PageAnonExclusive, the page is known to be exclusive to one mapping. */
export const PG_ANON_EXCLUSIVE = 1 << 15;

export const NO_MM = -1;

export class FolioTable {
  readonly nrPages: number;
  readonly flags: Uint16Array;
  readonly order: Uint8Array;
  readonly refcount: Int32Array;
  readonly pincount: Int32Array;
  /** Total mappings of the folio: PTE mappings plus PMD mappings (folio_mapcount). */
  readonly mapcount: Int32Array;
  /** PMD mappings of the whole folio (folio_entire_mapcount). */
  readonly entireMapcount: Int32Array;
  /** Pages of a large folio mapped by at least one PTE (_nr_pages_mapped). */
  readonly nrPagesMapped: Int32Array;
  /** Per page: number of PTEs mapping that page. */
  readonly pteMapcount: Int32Array;
  readonly mmId0: Int32Array;
  readonly mmId1: Int32Array;
  readonly mmCount0: Int32Array;
  readonly mmCount1: Int32Array;
  /** anon_vma id for anon folios, file id for page cache. */
  readonly mapping: Int32Array;
  /** folio->index: linear page index in the anon_vma or file. */
  readonly index: Float64Array;
  /** Swap slot of the first page while in the swap cache. */
  readonly swapSlot: Int32Array;
  /** Per page: the content token; 0 means zero-filled. */
  readonly data: Int32Array;

  constructor(nrPages: number) {
    this.nrPages = nrPages;
    this.flags = new Uint16Array(nrPages);
    this.order = new Uint8Array(nrPages);
    this.refcount = new Int32Array(nrPages);
    this.pincount = new Int32Array(nrPages);
    this.mapcount = new Int32Array(nrPages);
    this.entireMapcount = new Int32Array(nrPages);
    this.nrPagesMapped = new Int32Array(nrPages);
    this.pteMapcount = new Int32Array(nrPages);
    this.mmId0 = new Int32Array(nrPages).fill(NO_MM);
    this.mmId1 = new Int32Array(nrPages).fill(NO_MM);
    this.mmCount0 = new Int32Array(nrPages);
    this.mmCount1 = new Int32Array(nrPages);
    this.mapping = new Int32Array(nrPages);
    this.index = new Float64Array(nrPages);
    this.swapSlot = new Int32Array(nrPages).fill(-1);
    this.data = new Int32Array(nrPages);
  }

  nrPagesOf(head: number): number {
    return 1 << this.order[head];
  }

  isLarge(head: number): boolean {
    return this.order[head] > 0;
  }

  test(head: number, flag: number): boolean {
    return (this.flags[head] & flag) !== 0;
  }

  set(head: number, flag: number): void {
    this.flags[head] |= flag;
  }

  clear(head: number, flag: number): void {
    this.flags[head] &= ~flag;
  }

  /** Turn a freshly allocated block into a folio with one reference (folio_alloc). */
  prep(head: number, order: number): void {
    const n = 1 << order;
    this.order[head] = order;
    this.flags[head] = PG_HEAD;
    this.refcount[head] = 1;
    this.pincount[head] = 0;
    this.mapcount[head] = 0;
    this.entireMapcount[head] = 0;
    this.nrPagesMapped[head] = 0;
    this.mmId0[head] = NO_MM;
    this.mmId1[head] = NO_MM;
    this.mmCount0[head] = 0;
    this.mmCount1[head] = 0;
    this.mapping[head] = 0;
    this.index[head] = 0;
    this.swapSlot[head] = -1;
    for (let i = 0; i < n; i++) {
      this.pteMapcount[head + i] = 0;
      this.data[head + i] = 0;
      if (i > 0) {
        this.flags[head + i] = PG_TAIL;
        // PG_ANON_EXCLUSIVE lives on each page; the other flags only on the head.
        this.order[head + i] = 0;
        // Tail pages point back at their head through mapping (compound_head()).
        this.mapping[head + i] = head;
      }
    }
  }

  /** Clear the metadata of a folio that goes back to the buddy allocator. */
  reset(head: number): void {
    const n = 1 << this.order[head];
    for (let i = 0; i < n; i++) {
      this.flags[head + i] = 0;
      this.order[head + i] = 0;
      this.pteMapcount[head + i] = 0;
      this.mapping[head + i] = 0;
    }
    this.refcount[head] = 0;
    this.mapcount[head] = 0;
  }

  /** compound_head(): the head pfn of the folio containing pfn. */
  headOf(pfn: number): number {
    return (this.flags[pfn] & PG_TAIL) !== 0 ? this.mapping[pfn] : pfn;
  }

  /** Account one more mapping by mm in the mm-id slots (folio_add_return_large_mapcount). */
  private mmMap(head: number, mm: number, nr: number): void {
    if (this.mmId0[head] === mm) this.mmCount0[head] += nr;
    else if (this.mmId1[head] === mm) this.mmCount1[head] += nr;
    else if (this.mmId0[head] === NO_MM) {
      this.mmId0[head] = mm;
      this.mmCount0[head] = nr;
    } else if (this.mmId1[head] === NO_MM) {
      this.mmId1[head] = mm;
      this.mmCount1[head] = nr;
    } else {
      // A third mm: no slot to track it, so the folio may be shared from now on.
      this.flags[head] |= PG_MAYBE_SHARED;
      return;
    }
    if (this.mmId0[head] !== NO_MM && this.mmId1[head] !== NO_MM)
      this.flags[head] |= PG_MAYBE_SHARED;
  }

  /** folio_sub_return_large_mapcount: drop mm's mappings; clear the shared hint when one mm owns all. */
  private mmUnmap(head: number, mm: number, nr: number): void {
    if (this.mmId0[head] === mm) {
      this.mmCount0[head] -= nr;
      if (this.mmCount0[head] <= 0) {
        this.mmCount0[head] = 0;
        this.mmId0[head] = NO_MM;
      }
    } else if (this.mmId1[head] === mm) {
      this.mmCount1[head] -= nr;
      if (this.mmCount1[head] <= 0) {
        this.mmCount1[head] = 0;
        this.mmId1[head] = NO_MM;
      }
    }
    const total = this.mapcount[head];
    if (
      (this.mmId0[head] !== NO_MM && this.mmCount0[head] === total && this.mmId1[head] === NO_MM) ||
      (this.mmId1[head] !== NO_MM && this.mmCount1[head] === total && this.mmId0[head] === NO_MM) ||
      total === 0
    )
      this.flags[head] &= ~PG_MAYBE_SHARED;
  }

  /** folio_add_{new_anon,anon,file}_rmap_ptes: nr pages from pfn mapped by PTEs of mm. */
  addRmapPtes(head: number, pfn: number, nr: number, mm: number): void {
    for (let i = 0; i < nr; i++) {
      if (this.pteMapcount[pfn + i]++ === 0) this.nrPagesMapped[head]++;
    }
    this.mapcount[head] += nr;
    if (this.order[head] > 0) this.mmMap(head, mm, nr);
  }

  /** folio_remove_rmap_ptes. Returns true if the folio became partially mapped. */
  removeRmapPtes(head: number, pfn: number, nr: number, mm: number): boolean {
    for (let i = 0; i < nr; i++) {
      if (--this.pteMapcount[pfn + i] === 0) this.nrPagesMapped[head]--;
    }
    this.mapcount[head] -= nr;
    if (this.order[head] === 0) return false;
    this.mmUnmap(head, mm, nr);
    return (
      this.mapcount[head] > 0 &&
      this.entireMapcount[head] === 0 &&
      this.nrPagesMapped[head] < 1 << this.order[head]
    );
  }

  /** folio_add_{anon,file}_rmap_pmd. */
  addRmapPmd(head: number, mm: number): void {
    this.entireMapcount[head]++;
    this.mapcount[head]++;
    this.mmMap(head, mm, 1);
  }

  /** folio_remove_rmap_pmd. Returns true if pages stay mapped by PTEs only, partially. */
  removeRmapPmd(head: number, mm: number): boolean {
    this.entireMapcount[head]--;
    this.mapcount[head]--;
    this.mmUnmap(head, mm, 1);
    return (
      this.entireMapcount[head] === 0 &&
      this.nrPagesMapped[head] > 0 &&
      this.nrPagesMapped[head] < 1 << this.order[head]
    );
  }

  /** folio_mapped(). */
  mapped(head: number): boolean {
    return this.mapcount[head] > 0;
  }

  /** page_mapcount(): PTE mappings of this page plus PMD mappings of its folio. */
  pageMapcount(pfn: number): number {
    return this.pteMapcount[pfn] + this.entireMapcount[this.headOf(pfn)];
  }

  /** folio_maybe_mapped_shared(): small folios by mapcount, large ones by the mm-id hint. */
  maybeMappedShared(head: number): boolean {
    if (this.order[head] === 0) return this.mapcount[head] > 1;
    return (this.flags[head] & PG_MAYBE_SHARED) !== 0;
  }

  /**
   * Expected refcount from mappings, pins, the swap cache and the page cache, which holds one
   * reference per page (used by scans and invariants).
   */
  expectedRefcount(head: number): number {
    let r = this.mapcount[head] + this.pincount[head];
    if (this.flags[head] & (PG_SWAPCACHE | PG_FILE)) r += 1 << this.order[head];
    return r;
  }
}
