// The buddy allocator (mm/page_alloc.c): free lists per order over the pfn space, splitting on
// allocation and merging with the buddy on free. Free lists are intrusive doubly linked lists in
// typed arrays so that allocation and free do not allocate JS objects.

const NIL = -1;

export class BuddyAllocator {
  readonly nrPages: number;
  readonly maxOrder: number;
  /** Order of the free block headed at pfn, or -1 if pfn heads no free block. */
  readonly freeOrder: Int8Array;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly head: Int32Array;
  /** Free blocks per order (buddyinfo). */
  readonly nrFree: Float64Array;
  freePages = 0;

  constructor(nrPages: number, maxOrder: number, reserved: (pfn: number) => boolean) {
    this.nrPages = nrPages;
    this.maxOrder = maxOrder;
    this.freeOrder = new Int8Array(nrPages).fill(-1);
    this.next = new Int32Array(nrPages).fill(NIL);
    this.prev = new Int32Array(nrPages).fill(NIL);
    this.head = new Int32Array(maxOrder + 1).fill(NIL);
    this.nrFree = new Float64Array(maxOrder + 1);
    // Release every non-reserved page in the largest aligned blocks, as memblock_free_all does.
    let pfn = 0;
    while (pfn < nrPages) {
      if (reserved(pfn)) {
        pfn++;
        continue;
      }
      let order = this.maxOrder;
      while (
        order > 0 &&
        (pfn % (1 << order) !== 0 ||
          pfn + (1 << order) > nrPages ||
          this.anyReserved(pfn, 1 << order, reserved))
      )
        order--;
      this.freeBlock(pfn, order);
      this.freePages += 1 << order;
      pfn += 1 << order;
    }
  }

  private anyReserved(pfn: number, n: number, reserved: (pfn: number) => boolean): boolean {
    for (let i = 0; i < n; i++) if (reserved(pfn + i)) return true;
    return false;
  }

  private push(pfn: number, order: number): void {
    const h = this.head[order];
    this.next[pfn] = h;
    this.prev[pfn] = NIL;
    if (h !== NIL) this.prev[h] = pfn;
    this.head[order] = pfn;
    this.freeOrder[pfn] = order;
    this.nrFree[order]++;
  }

  private remove(pfn: number, order: number): void {
    const n = this.next[pfn];
    const p = this.prev[pfn];
    if (p !== NIL) this.next[p] = n;
    else this.head[order] = n;
    if (n !== NIL) this.prev[n] = p;
    this.freeOrder[pfn] = -1;
    this.nrFree[order]--;
  }

  /** __rmqueue_smallest: take the smallest free block of at least this order and split it down. */
  alloc(order: number): number {
    let o = order;
    while (o <= this.maxOrder && this.head[o] === NIL) o++;
    if (o > this.maxOrder) return NIL;
    const pfn = this.head[o];
    this.remove(pfn, o);
    // expand(): return the upper halves to the free lists.
    while (o > order) {
      o--;
      this.push(pfn + (1 << o), o);
    }
    this.freePages -= 1 << order;
    return pfn;
  }

  /** Whether a block of this order could be allocated now (no side effects). */
  canAlloc(order: number): boolean {
    for (let o = order; o <= this.maxOrder; o++) if (this.head[o] !== NIL) return true;
    return false;
  }

  /** __free_one_page: free a block and merge it with free buddies of the same order. */
  free(pfn: number, order: number): void {
    this.freePages += 1 << order;
    this.freeBlock(pfn, order);
  }

  private freeBlock(pfn: number, order: number): void {
    let p = pfn;
    let o = order;
    while (o < this.maxOrder) {
      const buddy = p ^ (1 << o);
      if (buddy >= this.nrPages || this.freeOrder[buddy] !== o) break;
      this.remove(buddy, o);
      p = Math.min(p, buddy);
      o++;
    }
    this.push(p, o);
  }

  /** Free pages counted from the lists (for invariant checks). */
  countFree(): number {
    let n = 0;
    for (let o = 0; o <= this.maxOrder; o++) n += this.nrFree[o] * (1 << o);
    return n;
  }
}
