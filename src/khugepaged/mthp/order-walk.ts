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

/** v11 onwards: at least 2^order - max_ptes_none(order) occupied PTEs (swap PTEs count at PMD). */
export class PteDensity implements Density {
  private readonly need: Int32Array;
  private readonly bits: PteBitmap;
  private readonly pmdOrder: number;
  private readonly unmapped: number;

  constructor(w: WalkInput) {
    this.bits = w.bits;
    this.pmdOrder = w.pmdOrder;
    this.unmapped = w.unmapped;
    this.need = new Int32Array(w.pmdOrder + 1);
    for (let o = 0; o <= w.pmdOrder; o++) this.need[o] = (1 << o) - w.maxPtesNone(o);
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
 * makes its larger buddy region dense on the next scan: the creep.
 */
export class ChunkDensity implements Density {
  readonly chunks: PteBitmap;
  private readonly threshold: Int32Array;

  constructor(w: WalkInput) {
    const sysfs = w.maxPtesNone(w.pmdOrder);
    const per = 1 << MIN_MTHP_ORDER;
    const chunkNone = sysfs >> (w.pmdOrder - MIN_MTHP_ORDER);
    this.chunks = new PteBitmap(w.nr >>> MIN_MTHP_ORDER);
    for (let c = 0; c < this.chunks.nbits; c++)
      if (per - w.bits.count(c * per, per) <= chunkNone) this.chunks.set(c);
    this.threshold = new Int32Array(w.pmdOrder + 1);
    for (let o = MIN_MTHP_ORDER; o <= w.pmdOrder; o++)
      this.threshold[o] = (w.nr - sysfs - 1) >> (w.pmdOrder - o + MIN_MTHP_ORDER);
  }

  dense(offset: number, order: number): boolean {
    const n = 1 << (order - MIN_MTHP_ORDER);
    return this.chunks.count(offset >>> MIN_MTHP_ORDER, n) > this.threshold[order];
  }
}

/** The density rule a walk input asks for. */
export function densityOf(w: WalkInput): Density {
  return w.chunked ? new ChunkDensity(w) : new PteDensity(w);
}

/** Enabled, inside [lo, hi) and dense enough: worth an attempt. */
class Eligibility {
  private readonly enabled: number;
  private readonly lo: number;
  private readonly hi: number;
  private readonly density: Density;

  constructor(w: WalkInput) {
    this.enabled = w.enabled;
    this.lo = w.lo ?? 0;
    this.hi = w.hi ?? w.nr;
    this.density = densityOf(w);
  }

  test(offset: number, order: number): boolean {
    if (!(this.enabled & (1 << order))) return false;
    if (offset < this.lo || offset + (1 << order) > this.hi) return false;
    return this.density.dense(offset, order);
  }
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
  private readonly ok: Eligibility;
  private started = false;
  private readonly w: WalkInput;

  constructor(w: WalkInput) {
    super();
    this.w = w;
    this.order = w.pmdOrder;
    this.ok = new Eligibility(w);
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
      if (this.ok.test(this.offset, this.order)) return true;
      this.step(false);
    }
    return false;
  }

  private pendingAdvance = false;

  report(r: ScanResult): void {
    this.pendingAdvance = this.record(r, 1 << this.order);
  }
}

/** The v4..v18 explicit-stack depth-first search over (order, offset) pairs. */
export class StackWalk extends Tally implements OrderWalk {
  offset = 0;
  order = 0;
  private readonly stack: Region[];
  private readonly ok: Eligibility;
  private descend = false;

  constructor(w: WalkInput) {
    super();
    this.ok = new Eligibility(w);
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
