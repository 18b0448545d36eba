// A swap device (struct swap_info_struct): slots with a use count (swap_map), the data written to
// each slot, and the swap cache (slot → folio). Large folios take naturally aligned runs of slots,
// as the cluster allocator gives mTHP swap-out; without such a run they must be split.

export class SwapDevice {
  readonly nrSlots: number;
  /** swap_map: references from swap PTEs (and the swap cache does not count here). */
  readonly count: Int32Array;
  /** Whether a slot is allocated at all (count may be 0 while only the swap cache holds it). */
  readonly used: Uint8Array;
  readonly data: Int32Array;
  /** Head pfn of the swap-cache folio for this slot's folio, or -1. */
  readonly cache: Int32Array;
  inuse = 0;
  private cursor = 0;

  constructor(nrSlots: number) {
    this.nrSlots = nrSlots;
    this.count = new Int32Array(nrSlots);
    this.used = new Uint8Array(nrSlots);
    this.data = new Int32Array(nrSlots);
    this.cache = new Int32Array(nrSlots).fill(-1);
  }

  /** get_swap_pages: a naturally aligned free run of 2^order slots, or -1. Slot 0 is the header. */
  alloc(order: number): number {
    const n = 1 << order;
    if (this.nrSlots - this.inuse < n) return -1;
    for (let pass = 0; pass < 2; pass++) {
      let s = pass === 0 ? Math.ceil(this.cursor / n) * n : 0;
      const limit = pass === 0 ? this.nrSlots : Math.ceil(this.cursor / n) * n;
      for (; s + n <= Math.min(limit, this.nrSlots); s += n) {
        if (s === 0) continue;
        let free = true;
        for (let i = 0; i < n; i++)
          if (this.used[s + i]) {
            free = false;
            break;
          }
        if (!free) continue;
        for (let i = 0; i < n; i++) this.used[s + i] = 1;
        this.inuse += n;
        this.cursor = s + n;
        return s;
      }
    }
    return -1;
  }

  /** swap_entry_free: release a slot once no PTE and no swap cache folio refers to it. */
  maybeFree(slot: number): void {
    if (this.used[slot] && this.count[slot] === 0 && this.cache[slot] === -1) {
      this.used[slot] = 0;
      this.data[slot] = 0;
      this.inuse--;
    }
  }
}
