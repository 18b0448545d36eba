// Which (offset, order) regions of one PMD range mTHP collapse tries, and in what order. A walk
// is a generator: it yields a candidate region, the caller attempts the collapse and passes the
// SCAN_* result back. Two shapes: the merged linear forward walk (v19) and the explicit-stack
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
const SOFT: ReadonlySet<ScanResult> = new Set<ScanResult>([
  'SCAN_ALLOC_HUGE_PAGE_FAIL',
  'SCAN_LACK_REFERENCED_PAGE',
  'SCAN_EXCEED_NONE_PTE',
  'SCAN_EXCEED_SWAP_PTE',
  'SCAN_EXCEED_SHARED_PTE',
  'SCAN_PAGE_LOCK',
  'SCAN_PAGE_COUNT',
  'SCAN_PAGE_NULL',
  'SCAN_DEL_PAGE_LRU',
  'SCAN_PTE_NON_PRESENT',
  'SCAN_PTE_UFFD_WP',
  'SCAN_PAGE_LAZYFREE',
]);

export function softCollapseFailure(r: ScanResult): boolean {
  return SOFT.has(r);
}

/** The region is dense enough for its order: occupied >= 2^order - max_ptes_none(order). */
export function regionEligible(w: WalkInput, offset: number, order: number): boolean {
  if (!(w.enabled & (1 << order))) return false;
  const n = 2 ** order;
  const occupied = w.bits.count(offset, n) + (order === w.pmdOrder ? w.unmapped : 0);
  return occupied >= n - w.maxPtesNone(order);
}

/** max_order_from_offset: the largest order whose alignment the offset has. */
export function maxOrderFromOffset(offset: number, pmdOrder: number): number {
  if (offset === 0) return pmdOrder;
  return Math.min(31 - Math.clz32(offset & -offset), pmdOrder);
}

function hasSmallerEnabled(enabled: number, order: number): boolean {
  return (enabled & ((1 << order) - 1) & ~3) !== 0;
}

type Walk = Generator<Region, WalkOutcome, ScanResult>;

/** The merged (v19) linear forward walk over the PMD range. */
export function* forwardWalk(w: WalkInput): Walk {
  let offset = 0;
  let order = w.pmdOrder;
  let collapsed = 0;
  let allocFailed = false;
  let last: ScanResult = 'SCAN_FAIL';
  while (offset < w.nr) {
    const n = 2 ** order;
    let advance = false;
    if (regionEligible(w, offset, order)) {
      const r: ScanResult = yield { offset, order };
      if (r === 'SCAN_SUCCEED') {
        collapsed += n;
        advance = true;
      } else if (r === 'SCAN_PTE_MAPPED_HUGEPAGE') advance = true;
      else if (SOFT.has(r)) {
        last = r;
        if (r === 'SCAN_ALLOC_HUGE_PAGE_FAIL') allocFailed = true;
      } else return { result: r, collapsed };
    }
    if (!advance && order > 2 && hasSmallerEnabled(w.enabled, order)) {
      order--;
      continue;
    }
    offset += 2 ** order;
    order = maxOrderFromOffset(offset, w.pmdOrder);
  }
  return {
    result: collapsed ? 'SCAN_SUCCEED' : allocFailed ? 'SCAN_ALLOC_HUGE_PAGE_FAIL' : last,
    collapsed,
  };
}

/** The v11..v18 explicit-stack depth-first search over (order, offset) pairs. */
export function* stackWalk(w: WalkInput): Walk {
  const stack: Region[] = [{ offset: 0, order: w.pmdOrder }];
  let collapsed = 0;
  let allocFailed = false;
  let last: ScanResult = 'SCAN_FAIL';
  while (stack.length) {
    const { offset, order } = stack.pop()!;
    const n = 2 ** order;
    if (regionEligible(w, offset, order)) {
      const r: ScanResult = yield { offset, order };
      if (r === 'SCAN_SUCCEED') {
        collapsed += n;
        continue;
      }
      if (r === 'SCAN_PTE_MAPPED_HUGEPAGE') continue;
      if (!SOFT.has(r)) return { result: r, collapsed };
      last = r;
      if (r === 'SCAN_ALLOC_HUGE_PAGE_FAIL') allocFailed = true;
    }
    if (order > 2) {
      stack.push({ offset: offset + n / 2, order: order - 1 });
      stack.push({ offset, order: order - 1 });
    }
  }
  return {
    result: collapsed ? 'SCAN_SUCCEED' : allocFailed ? 'SCAN_ALLOC_HUGE_PAGE_FAIL' : last,
    collapsed,
  };
}
