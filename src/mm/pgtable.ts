// Page tables in typed arrays. Each level has a pool of tables; a table is an id, its entries sit
// at id * entriesPerTable in two parallel arrays: val (child table id, pfn, swap slot or marker)
// and bits (entry type and hardware/software bits). Tables have a lifecycle (free → allocated →
// linked → detached/deposited → freed) so leaks and use-after-free are detectable.

/** Entry types, in the low 3 bits of `bits`. */
export const E_NONE = 0;
/** Upper levels: points to a lower table. */
export const E_TABLE = 1;
/** PTE: present page. PMD: huge leaf (pmd_trans_huge). */
export const E_PRESENT = 2;
export const E_SWAP = 3;
export const E_MIGRATION = 4;
/** PTE marker (uffd-wp, guard, poison): val holds the marker kind. */
export const E_MARKER = 5;
/** PMD made invalid but not none by pmdp_invalidate while splitting. */
export const E_INVALID = 6;
export const E_TYPE_MASK = 7;

export const B_YOUNG = 1 << 3;
export const B_DIRTY = 1 << 4;
export const B_WRITE = 1 << 5;
export const B_UFFD_WP = 1 << 6;
export const B_SOFT_DIRTY = 1 << 7;
/** Swap entries: SWP_EXCLUSIVE (the page was exclusive to this mapping). */
export const B_EXCLUSIVE = 1 << 8;
/** Present entries mapping the shared zero page (pte_special). */
export const B_SPECIAL = 1 << 9;
/** arm64 contiguous hint (PTE_CONT), set when a naturally aligned block maps one folio. */
export const B_CONT = 1 << 10;
/** PROT_NONE entry (pte_protnone): present for the kernel, inaccessible to the hardware. */
export const B_PROTNONE = 1 << 11;

export const MARKER_UFFD_WP = 1;
export const MARKER_GUARD = 2;
export const MARKER_POISON = 3;

/** Table lifecycle states. */
export const T_FREE = 0;
export const T_ALLOCATED = 1;
export const T_LINKED = 2;
export const T_DETACHED = 3;
export const T_DEPOSITED = 4;

export const LEVEL_NAMES = ['pgd', 'pud', 'pmd', 'pte'] as const;
export const PGD = 0;
export const PUD = 1;
export const PMD = 2;
export const PTE = 3;

export class TableLevel {
  readonly level: number;
  readonly entriesPerTable: number;
  val: Int32Array;
  bits: Uint16Array;
  state: Uint8Array;
  /** mm that owns the table (for PTE tables also usable for cross-VMA checks). */
  owner: Int32Array;
  /** Number of non-none entries, maintained by set() (lets reclaim and free_pgtables be cheap). */
  used: Int32Array;
  private freeIds: Int32Array;
  private nrFreeIds = 0;
  /** Highest id handed out so far; id 0 is never used (null). */
  private top = 0;
  live = 0;

  constructor(level: number, entriesPerTable: number, initialTables = 16) {
    this.level = level;
    this.entriesPerTable = entriesPerTable;
    this.val = new Int32Array(initialTables * entriesPerTable);
    this.bits = new Uint16Array(initialTables * entriesPerTable);
    this.state = new Uint8Array(initialTables);
    this.owner = new Int32Array(initialTables);
    this.used = new Int32Array(initialTables);
    this.freeIds = new Int32Array(initialTables);
  }

  get capacity(): number {
    return this.state.length;
  }

  private grow(): void {
    const cap = this.capacity * 2;
    const n = this.entriesPerTable;
    const val = new Int32Array(cap * n);
    val.set(this.val);
    const bits = new Uint16Array(cap * n);
    bits.set(this.bits);
    const state = new Uint8Array(cap);
    state.set(this.state);
    const owner = new Int32Array(cap);
    owner.set(this.owner);
    const used = new Int32Array(cap);
    used.set(this.used);
    const freeIds = new Int32Array(cap);
    freeIds.set(this.freeIds);
    this.val = val;
    this.bits = bits;
    this.state = state;
    this.owner = owner;
    this.used = used;
    this.freeIds = freeIds;
  }

  /** pte_alloc_one / pmd_alloc_one: a zeroed table, not yet linked anywhere. */
  alloc(owner: number): number {
    let id: number;
    if (this.nrFreeIds > 0) id = this.freeIds[--this.nrFreeIds];
    else {
      if (this.top + 1 >= this.capacity) this.grow();
      id = ++this.top;
    }
    const base = id * this.entriesPerTable;
    this.val.fill(0, base, base + this.entriesPerTable);
    this.bits.fill(0, base, base + this.entriesPerTable);
    this.state[id] = T_ALLOCATED;
    this.owner[id] = owner;
    this.used[id] = 0;
    this.live++;
    return id;
  }

  /** pte_free / pmd_free. Freeing a table twice, or one still linked, is a model bug. */
  free(id: number): void {
    if (this.state[id] === T_FREE || this.state[id] === T_LINKED)
      throw new Error(
        `${LEVEL_NAMES[this.level]} table ${id} freed while ${this.state[id] === T_FREE ? 'free' : 'linked'}`,
      );
    this.state[id] = T_FREE;
    this.freeIds[this.nrFreeIds++] = id;
    this.live--;
  }

  /** Write an entry, keeping the per-table count of non-none entries. */
  set(id: number, idx: number, val: number, bits: number): void {
    const i = id * this.entriesPerTable + idx;
    const wasNone = (this.bits[i] & E_TYPE_MASK) === E_NONE;
    const isNone = (bits & E_TYPE_MASK) === E_NONE;
    if (wasNone !== isNone) this.used[id] += isNone ? -1 : 1;
    this.val[i] = val;
    this.bits[i] = bits;
  }

  clear(id: number, idx: number): void {
    this.set(id, idx, 0, E_NONE);
  }

  type(id: number, idx: number): number {
    return this.bits[id * this.entriesPerTable + idx] & E_TYPE_MASK;
  }

  getVal(id: number, idx: number): number {
    return this.val[id * this.entriesPerTable + idx];
  }

  getBits(id: number, idx: number): number {
    return this.bits[id * this.entriesPerTable + idx];
  }
}

/** All four levels; PMD entries additionally carry the deposited PTE table of a huge leaf. */
export class PageTables {
  readonly levels: readonly [TableLevel, TableLevel, TableLevel, TableLevel];
  /** pgtable_trans_huge_deposit: PTE table id deposited under a huge PMD entry (0 = none). */
  deposit: Int32Array;

  constructor(entries: readonly [number, number, number, number]) {
    this.levels = [
      new TableLevel(PGD, entries[0], 8),
      new TableLevel(PUD, entries[1], 8),
      new TableLevel(PMD, entries[2], 16),
      new TableLevel(PTE, entries[3], 64),
    ];
    this.deposit = new Int32Array(this.levels[PMD].val.length);
  }

  get pgd(): TableLevel {
    return this.levels[PGD];
  }
  get pud(): TableLevel {
    return this.levels[PUD];
  }
  get pmd(): TableLevel {
    return this.levels[PMD];
  }
  get pte(): TableLevel {
    return this.levels[PTE];
  }

  /** Keep the deposit array as large as the PMD entry array after the pool grows. */
  syncDeposit(): void {
    const n = this.levels[PMD].val.length;
    if (this.deposit.length < n) {
      const d = new Int32Array(n);
      d.set(this.deposit);
      this.deposit = d;
    }
  }
}
