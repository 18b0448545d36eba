// Which (offset, order) regions of one PMD range mTHP collapse tries, and in what order. A walk
// is a cursor: it names a candidate region, the caller attempts the collapse and reports the
// SCAN_* result. Two shapes: the merged linear forward walk (v19) and the explicit-stack
// depth-first search of v4..v18. They must choose the same regions (a property test says so).
// Density is judged per PTE (v11 onwards) or per 4-PTE chunk (v4..v10).

import type { ScanResult } from '../scan-result.ts';
import { PteBitmap } from './bitmap.ts';

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
  /** v4..v10: judge density on a bitmap of 4-PTE chunks with the scaled threshold. */
  chunked?: boolean;
  /**
   * The PTEs [lo, hi) of the range a region must lie in: the part of the PMD range inside the
   * VMA (pte-level collapse reaches VMAs smaller than a PMD). Default: the whole range.
   */
  lo?: number;
  hi?: number;
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

/** Whether a region holds enough occupied PTEs for its order. */
export interface Density {
  dense(offset: number, order: number): boolean;
}

/** Enough orders for every geometry (PMD order 13 on 64K pages). */
const MAX_ORDERS = 32;

/** v11 onwards: at least 2^order - max_ptes_none(order) occupied PTEs (swap PTEs count at PMD). */
export class PteDensity implements Density {
  private readonly need = new Int32Array(MAX_ORDERS);
  private bits: PteBitmap;
  private pmdOrder = 0;
  private unmapped = 0;

  constructor(w: WalkInput) {
    this.bits = w.bits;
    this.reset(w);
  }

  /** Take a new PMD range's input (walks are reused: no allocation per range). */
  reset(w: WalkInput): this {
    this.bits = w.bits;
    this.pmdOrder = w.pmdOrder;
    this.unmapped = w.unmapped;
    for (let o = 0; o <= w.pmdOrder; o++) this.need[o] = (1 << o) - w.maxPtesNone(o);
    return this;
  }

  dense(offset: number, order: number): boolean {
    const occupied =
      this.bits.count(offset, 1 << order) + (order === this.pmdOrder ? this.unmapped : 0);
    return occupied >= this.need[order];
  }
}

/** The smallest mTHP order, and the PTEs per chunk of the v4..v10 bitmap. */
const MIN_MTHP_ORDER = 2;

/**
 * v4..v10: one bit per 4-PTE chunk, set when the chunk has at most max_ptes_none scaled to the
 * chunk none PTEs; a region of order o is dense when more than (HPAGE_PMD_NR - max_ptes_none - 1)
 * scaled to the region's chunks are set. With max_ptes_none >= HPAGE_PMD_NR/2 a collapsed region
 * makes a larger region around it dense on the next scan: the creep.
 */
export class ChunkDensity implements Density {
  chunks: PteBitmap;
  private readonly threshold = new Int32Array(MAX_ORDERS);

  constructor(w: WalkInput) {
    this.chunks = new PteBitmap(w.nr >>> MIN_MTHP_ORDER);
    this.reset(w);
  }

  reset(w: WalkInput): this {
    const sysfs = w.maxPtesNone(w.pmdOrder);
    const per = 1 << MIN_MTHP_ORDER;
    const chunkNone = sysfs >> (w.pmdOrder - MIN_MTHP_ORDER);
    if (this.chunks.nbits !== w.nr >>> MIN_MTHP_ORDER)
      this.chunks = new PteBitmap(w.nr >>> MIN_MTHP_ORDER);
    else this.chunks.clear();
    for (let c = 0; c < this.chunks.nbits; c++)
      if (per - w.bits.count(c * per, per) <= chunkNone) this.chunks.set(c);
    for (let o = MIN_MTHP_ORDER; o <= w.pmdOrder; o++)
      this.threshold[o] = (w.nr - sysfs - 1) >> (w.pmdOrder - o + MIN_MTHP_ORDER);
    return this;
  }

  dense(offset: number, order: number): boolean {
    const n = 1 << (order - MIN_MTHP_ORDER);
    return this.chunks.count(offset >>> MIN_MTHP_ORDER, n) > this.threshold[order];
  }
}

/** Enabled, inside [lo, hi) and dense enough: worth an attempt. */
class Eligibility {
  enabled = 0;
  private lo = 0;
  private hi = 0;
  private readonly pte: PteDensity;
  private chunk: ChunkDensity | null = null;
  private density: Density;

  constructor(w: WalkInput) {
    this.pte = new PteDensity(w);
    this.density = this.pte;
    this.reset(w);
  }

  reset(w: WalkInput): void {
    this.enabled = w.enabled;
    this.lo = w.lo ?? 0;
    this.hi = w.hi ?? w.nr;
    if (w.chunked)
      this.density = this.chunk ? this.chunk.reset(w) : (this.chunk = new ChunkDensity(w));
    else this.density = this.pte.reset(w);
  }

  test(offset: number, order: number): boolean {
    if (!(this.enabled & (1 << order))) return false;
    if (offset < this.lo || offset + (1 << order) > this.hi) return false;
    return this.density.dense(offset, order);
  }
}

/** What every walk tracks of the results it was given, and its reuse across PMD ranges. */
abstract class Tally {
  protected readonly ok: Eligibility;
  collapsed = 0;
  allocFailed = false;
  last: ScanResult = 'SCAN_FAIL';
  hard: ScanResult | null = null;

  constructor(w: WalkInput) {
    this.ok = new Eligibility(w);
  }

  /** Start over on a new PMD range (walks are reused: no allocation per range). */
  reset(w: WalkInput): this {
    this.ok.reset(w);
    this.start(w);
    return this;
  }

  /** Set up for a PMD range whose eligibility rule is in place. */
  protected abstract start(w: WalkInput): void;

  protected resetTally(): void {
    this.collapsed = 0;
    this.allocFailed = false;
    this.last = 'SCAN_FAIL';
    this.hard = null;
  }

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

  /** The walk's result for the whole PMD range (see outcome()). */
  result(): ScanResult {
    if (this.hard) return this.hard;
    if (this.collapsed) return 'SCAN_SUCCEED';
    return this.allocFailed ? 'SCAN_ALLOC_HUGE_PAGE_FAIL' : this.last;
  }

  outcome(): WalkOutcome {
    return { result: this.result(), collapsed: this.collapsed };
  }
}

/** The merged (v19) linear forward walk over the PMD range. */
export class ForwardWalk extends Tally implements OrderWalk {
  offset = 0;
  order = 0;
  private started = false;
  private pendingAdvance = false;
  private nr = 0;
  private pmdOrder = 0;

  constructor(w: WalkInput) {
    super(w);
    this.start(w);
  }

  protected start(w: WalkInput): void {
    this.resetTally();
    this.nr = w.nr;
    this.pmdOrder = w.pmdOrder;
    this.offset = 0;
    this.order = w.pmdOrder;
    this.started = false;
    this.pendingAdvance = false;
  }

  /** A smaller order at the same offset, or the next offset at the largest order it allows. */
  private step(advance: boolean): void {
    if (!advance && this.order > 2 && hasSmallerEnabled(this.ok.enabled, this.order)) {
      this.order--;
      return;
    }
    this.offset += 1 << this.order;
    this.order = maxOrderFromOffset(this.offset, this.pmdOrder);
  }

  next(): boolean {
    if (this.hard) return false;
    if (this.started) this.step(this.pendingAdvance);
    this.started = true;
    while (this.offset < this.nr) {
      if (this.ok.test(this.offset, this.order)) return true;
      this.step(false);
    }
    return false;
  }

  report(r: ScanResult): void {
    this.pendingAdvance = this.record(r, 1 << this.order);
  }
}

/** The v4..v18 explicit-stack depth-first search over (order, offset) pairs. */
export class StackWalk extends Tally implements OrderWalk {
  offset = 0;
  order = 0;
  /** Pending regions as offset * 32 + order (MTHP_STACK_SIZE entries at most). */
  private readonly stack: number[] = [];
  private descend = false;

  constructor(w: WalkInput) {
    super(w);
    this.start(w);
  }

  protected start(w: WalkInput): void {
    this.resetTally();
    this.stack.length = 0;
    this.stack.push(w.pmdOrder);
    this.descend = false;
  }

  /** Push the right half, then the left half, one order down. */
  private push(offset: number, order: number): void {
    if (order > 2) {
      this.stack.push((offset + (1 << (order - 1))) * 32 + order - 1);
      this.stack.push(offset * 32 + order - 1);
    }
  }

  next(): boolean {
    if (this.hard) return false;
    if (this.descend) this.push(this.offset, this.order);
    this.descend = false;
    while (this.stack.length) {
      const top = this.stack.pop()!;
      const offset = top >>> 5;
      const order = top & 31;
      if (this.ok.test(offset, order)) {
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
