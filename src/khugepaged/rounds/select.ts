// Selection in the rounds design (collapse_next_candidate / collapse_classify_result): a cursor
// cuts the usable-PTE bitmap into windows at the largest enabled order that is dense enough, and
// a failed window goes on a retry stack to be walked again at the next enabled order below.

import type { PteBitmap } from '../mthp/bitmap.ts';
import type { ScanResult } from '../scan-result.ts';

interface Retry {
  offset: number;
  end: number;
  order: number;
  reclaim: boolean;
}

/** max_order_from_offset: the largest order whose natural alignment the offset has. */
function maxOrderFromOffset(offset: number): number {
  if (offset === 0) return 31;
  return 31 - Math.clz32(offset & -offset);
}

function fls(x: number): number {
  return 31 - Math.clz32(x);
}

export interface SelectInput {
  bits: PteBitmap;
  /** Enabled orders (select_orders), never empty. */
  orders: number;
  pmdOrder: number;
  /** The part of the table in play, in PTE offsets. */
  start: number;
  end: number;
  /** Swap PTEs the scan accepted (become sources at PMD order only). */
  unmapped: number;
  maxPtesNone(order: number): number;
}

export class RoundsSelection {
  private readonly in: SelectInput;
  private offset: number;
  private order: number;
  private readonly retries: Retry[] = [];
  /** What the table yielded, for the range's result. */
  collapsedPages = 0;
  smallestAllocFailed = false;
  lastRefusal: ScanResult = 'SCAN_FAIL';
  /** The emitted window, valid after next() returned true. */
  outOffset = 0;
  outOrder = 0;
  outReclaim = false;

  constructor(input: SelectInput) {
    this.in = input;
    this.offset = input.start;
    this.order = Math.min(maxOrderFromOffset(input.start), fls(input.orders));
  }

  /** collapse_lower_order: the next enabled order below, or 0. */
  lowerOrder(order: number): number {
    if (!order) return 0;
    const lower = this.in.orders & ((1 << order) - 1);
    return lower ? fls(lower) : 0;
  }

  private eligible(offset: number, order: number): boolean {
    const i = this.in;
    if (!(i.orders & (1 << order))) return false;
    const n = 1 << order;
    if (offset < i.start || offset + n > i.end) return false;
    let usable = i.bits.count(offset, n);
    if (order === i.pmdOrder) usable += i.unmapped;
    return usable >= n - i.maxPtesNone(order);
  }

  private advance(n: number): void {
    this.offset += n;
    this.order = Math.min(maxOrderFromOffset(this.offset), fls(this.in.orders));
  }

  /** The next window worth attempting (outOffset, outOrder); false when selection is done. */
  next(): boolean {
    while (this.retries.length) {
      const r = this.retries[this.retries.length - 1];
      if (r.offset >= r.end) {
        this.retries.pop();
        continue;
      }
      let order = Math.min(maxOrderFromOffset(r.offset), r.order);
      let smallest = order;
      while (order && !this.eligible(r.offset, order)) {
        smallest = order;
        order = this.lowerOrder(order);
      }
      if (order) {
        this.emit(r.offset, order, r.reclaim);
        r.offset += 1 << order;
        return true;
      }
      r.offset += 1 << smallest;
    }
    while (this.offset < this.in.end) {
      if (!this.eligible(this.offset, this.order)) {
        const lower = this.lowerOrder(this.order);
        if (lower) this.order = lower;
        else this.advance(1 << this.order);
        continue;
      }
      this.emit(this.offset, this.order, false);
      this.advance(1 << this.order);
      return true;
    }
    return false;
  }

  private emit(offset: number, order: number, reclaim: boolean): void {
    this.outOffset = offset;
    this.outOrder = order;
    this.outReclaim = reclaim;
  }

  /** collapse_classify_result: false when the table is abandoned. */
  classify(offset: number, order: number, result: ScanResult): boolean {
    switch (result) {
      case 'SCAN_SUCCEED':
        this.collapsedPages += 1 << order;
        return true;
      case 'SCAN_PTE_MAPPED_HUGEPAGE':
        if (this.lastRefusal === 'SCAN_FAIL') this.lastRefusal = result;
        return true;
      case 'SCAN_ALLOC_LIGHT_MISS':
        this.retries.push({ offset, end: offset + (1 << order), order, reclaim: true });
        return true;
      case 'SCAN_ALLOC_HUGE_PAGE_FAIL':
      case 'SCAN_CGROUP_CHARGE_FAIL':
      case 'SCAN_LACK_REFERENCED_PAGE':
      case 'SCAN_EXCEED_NONE_PTE':
      case 'SCAN_EXCEED_SWAP_PTE':
      case 'SCAN_EXCEED_SHARED_PTE':
      case 'SCAN_PAGE_LOCK':
      case 'SCAN_PAGE_COUNT':
      case 'SCAN_PAGE_NOT_EXCLUSIVE':
      case 'SCAN_PAGE_NULL':
      case 'SCAN_DEL_PAGE_LRU':
      case 'SCAN_PTE_NON_PRESENT':
      case 'SCAN_PTE_UFFD_WP':
      case 'SCAN_PAGE_LAZYFREE':
      case 'SCAN_PAGE_DIRTY_OR_WRITEBACK': {
        // A failure at a large order says nothing about smaller ones; only one with nothing
        // below it says the allocator cannot serve this table.
        if (result === 'SCAN_ALLOC_HUGE_PAGE_FAIL' && !this.lowerOrder(order))
          this.smallestAllocFailed = true;
        this.lastRefusal = result;
        const lower = this.lowerOrder(order);
        if (lower)
          this.retries.push({ offset, end: offset + (1 << order), order: lower, reclaim: false });
        return true;
      }
      default:
        // A dropped lock or a table that changed says nothing about any window: give it up.
        this.lastRefusal = result;
        this.offset = this.in.end;
        this.retries.length = 0;
        return false;
    }
  }

  /** What the range reports: a collapse, an allocation failure, or the last refusal. */
  result(): ScanResult {
    if (this.collapsedPages) return 'SCAN_SUCCEED';
    if (this.smallestAllocFailed) return 'SCAN_ALLOC_HUGE_PAGE_FAIL';
    return this.lastRefusal;
  }
}
