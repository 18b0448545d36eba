// Which (offset, order) regions of one PMD range mTHP collapse tries, and in what order. A walk
// is a cursor: it names a candidate region, the caller attempts the collapse and reports the
// SCAN_* result. Two shapes: the merged linear forward walk (v19) and the explicit-stack
// depth-first search of v11..v18. They must choose the same regions (a property test says so).

import type { ScanResult } from '../scan-result.ts';
import type { PteBitmap } from './bitmap.ts';

export interface Region {
  /** In PTEs from the start of the PMD range. */
  offset: number;
  order: number;
}

export interface WalkInput {
  bits: PteBitmap;
  /** HPAGE_PMD_NR and HPAGE_PMD_ORDER. */
  nr: number;
  pmdOrder: number;
  /** Orders khugepaged may use here (collapse_possible_orders), as a bitmask. */
  enabled: number;
  /** Allowed none/zero PTEs of a region of this order (collapse_max_ptes_none). */
  maxPtesNone: (order: number) => number;
  /** Swap PTEs the scan saw: they count as occupied for the PMD order (the swap accounting fix). */
  unmapped: number;
}

export interface WalkOutcome {
  result: ScanResult;
  /** PTEs covered by successful collapses. */
  collapsed: number;
}

/** Failures after which a smaller order at the same offset is worth a try. */
export function softCollapseFailure(r: ScanResult): boolean {
  switch (r) {
    case 'SCAN_ALLOC_HUGE_PAGE_FAIL':
    case 'SCAN_LACK_REFERENCED_PAGE':
    case 'SCAN_EXCEED_NONE_PTE':
    case 'SCAN_EXCEED_SWAP_PTE':
    case 'SCAN_EXCEED_SHARED_PTE':
    case 'SCAN_PAGE_LOCK':
    case 'SCAN_PAGE_COUNT':
    case 'SCAN_PAGE_NULL':
    case 'SCAN_DEL_PAGE_LRU':
    case 'SCAN_PTE_NON_PRESENT':
    case 'SCAN_PTE_UFFD_WP':
    case 'SCAN_PAGE_LAZYFREE':
      return true;
    default:
      return false;
  }
}

/** max_order_from_offset: the largest order whose alignment the offset has. */
export function maxOrderFromOffset(offset: number, pmdOrder: number): number {
  if (offset === 0) return pmdOrder;
  return Math.min(31 - Math.clz32(offset & -offset), pmdOrder);
}

function hasSmallerEnabled(enabled: number, order: number): boolean {
  return (enabled & ((1 << order) - 1) & ~3) !== 0;
}

/**
 * An order walk as a cursor: next() moves to the next region worth an attempt (false when the
 * PMD is done), report() takes the attempt's result, outcome() sums up. Plain objects, not
 * generators, so the search between attempts runs at full speed; mthp_collapse drives it.
 */
export interface OrderWalk {
  offset: number;
  order: number;
  next(): boolean;
  report(r: ScanResult): void;
  outcome(): WalkOutcome;
}

/** Occupied PTEs a region of each order needs (2^order - max_ptes_none(order)). */
function neededPerOrder(w: WalkInput): number[] {
  const need: number[] = [];
  for (let o = 0; o <= w.pmdOrder; o++) need.push((1 << o) - w.maxPtesNone(o));
  return need;
}

function eligible(w: WalkInput, need: number[], offset: number, order: number): boolean {
  if (!(w.enabled & (1 << order))) return false;
  const occupied = w.bits.count(offset, 1 << order) + (order === w.pmdOrder ? w.unmapped : 0);
  return occupied >= need[order];
}

/** What every walk tracks of the results it was given. */
abstract class Tally {
  collapsed = 0;
  allocFailed = false;
  last: ScanResult = 'SCAN_FAIL';
  hard: ScanResult | null = null;

  /** Record a result; true if the region is done with (collapsed or already huge enough). */
  protected record(r: ScanResult, n: number): boolean {
    if (r === 'SCAN_SUCCEED') {
      this.collapsed += n;
      return true;
    }
    if (r === 'SCAN_PTE_MAPPED_HUGEPAGE') return true;
    if (!softCollapseFailure(r)) this.hard = r;
    else {
      this.last = r;
      if (r === 'SCAN_ALLOC_HUGE_PAGE_FAIL') this.allocFailed = true;
    }
    return false;
  }

  outcome(): WalkOutcome {
    const result =
      this.hard ??
      (this.collapsed
        ? 'SCAN_SUCCEED'
        : this.allocFailed
          ? 'SCAN_ALLOC_HUGE_PAGE_FAIL'
          : this.last);
    return { result, collapsed: this.collapsed };
  }
}

/** The merged (v19) linear forward walk over the PMD range. */
export class ForwardWalk extends Tally implements OrderWalk {
  offset = 0;
  order: number;
  private readonly need: number[];
  private started = false;
  private readonly w: WalkInput;

  constructor(w: WalkInput) {
    super();
    this.w = w;
    this.order = w.pmdOrder;
    this.need = neededPerOrder(w);
  }

  /** A smaller order at the same offset, or the next offset at the largest order it allows. */
  private step(advance: boolean): void {
    if (!advance && this.order > 2 && hasSmallerEnabled(this.w.enabled, this.order)) {
      this.order--;
      return;
    }
    this.offset += 1 << this.order;
    this.order = maxOrderFromOffset(this.offset, this.w.pmdOrder);
  }

  next(): boolean {
    if (this.hard) return false;
    if (this.started) this.step(this.pendingAdvance);
    this.started = true;
    while (this.offset < this.w.nr) {
      if (eligible(this.w, this.need, this.offset, this.order)) return true;
      this.step(false);
    }
    return false;
  }

  private pendingAdvance = false;

  report(r: ScanResult): void {
    this.pendingAdvance = this.record(r, 1 << this.order);
  }
}

/** The v11..v18 explicit-stack depth-first search over (order, offset) pairs. */
export class StackWalk extends Tally implements OrderWalk {
  offset = 0;
  order = 0;
  private readonly stack: Region[];
  private readonly need: number[];
  private readonly w: WalkInput;
  private descend = false;

  constructor(w: WalkInput) {
    super();
    this.w = w;
    this.need = neededPerOrder(w);
    this.stack = [{ offset: 0, order: w.pmdOrder }];
  }

  private push(offset: number, order: number): void {
    if (order > 2) {
      this.stack.push({ offset: offset + (1 << order) / 2, order: order - 1 });
      this.stack.push({ offset, order: order - 1 });
    }
  }

  next(): boolean {
    if (this.hard) return false;
    if (this.descend) this.push(this.offset, this.order);
    this.descend = false;
    while (this.stack.length) {
      const { offset, order } = this.stack.pop()!;
      if (eligible(this.w, this.need, offset, order)) {
        this.offset = offset;
        this.order = order;
        return true;
      }
      this.push(offset, order);
    }
    return false;
  }

  report(r: ScanResult): void {
    this.descend = !this.record(r, 1 << this.order) && this.hard === null;
  }
}
