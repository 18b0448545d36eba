// collapse_scan_pmd (hpage_collapse_scan_pmd): inspect the PTEs of one PMD range under the mmap
// read lock and decide whether collapse_huge_page should try it.

import {
  PG_ANON,
  PG_DIRTY,
  PG_LAZYFREE,
  PG_LOCKED,
  PG_LRU,
  PG_REFERENCED,
  PG_YOUNG,
  PG_ZERO,
} from '../mm/folio.ts';
import type { FolioTable } from '../mm/folio.ts';
import type { PteBitmap } from './mthp/bitmap.ts';
import type { Kernel } from '../mm/kernel.ts';
import {
  B_DIRTY,
  B_SPECIAL,
  B_UFFD_WP,
  B_YOUNG,
  E_NONE,
  E_PRESENT,
  E_SWAP,
  E_TYPE_MASK,
  MARKER_UFFD_WP,
  E_MARKER,
} from '../mm/pgtable.ts';
import { pteOffsetMapLock, pteUnmapUnlock } from '../mm/pagewalk.ts';
import type { Step } from '../mm/step.ts';
import { VM_DROPPABLE, type Mm, type Vma } from '../mm/vma.ts';
import { type CollapseControl, maxPtesNone, maxPtesShared, maxPtesSwap } from './control.ts';
import { findPmdOrThpOrNone } from './find-pmd.ts';
import { noPteTable, type ScanResult } from './scan-result.ts';

// Module-local copies of the constants tested per PTE: V8 folds these into the loop, while each
// use of an imported binding stays a load (as in accounting.ts).
const TYPE_MASK = E_TYPE_MASK;
const NONE = E_NONE;
const PRESENT = E_PRESENT;
const SWAP = E_SWAP;
const MARKER = E_MARKER;
const SPECIAL = B_SPECIAL;
const UFFD_WP = B_UFFD_WP;
const YOUNG = B_YOUNG;
const DIRTY = B_DIRTY;
const ANON = PG_ANON;
const LRU = PG_LRU;
const LOCKED = PG_LOCKED;
const ZERO = PG_ZERO;
const LAZYFREE = PG_LAZYFREE;
const FOLIO_DIRTY = PG_DIRTY;
const FOLIO_YOUNG_OR_REFERENCED = PG_YOUNG | PG_REFERENCED;
const DROPPABLE = VM_DROPPABLE;

export interface PmdScan {
  result: ScanResult;
  referenced: number;
  unmapped: number;
  noneOrZero: number;
  shared: number;
  /** PTEs inspected (the per-PTE progress charge of the 2026 tree). */
  inspected: number;
  /** Head pfn of the last folio seen (the tracepoint's pfn field), or -1. */
  lastFolio: number;
  /** The PTEs [lo, hi) of the range that were scanned (all of it unless pte-level partial). */
  lo: number;
  hi: number;
}

/** The PTE is none or maps the shared zero page (pte_none_or_zero). */
export function pteNoneOrZero(f: FolioTable, bits: number, val: number): boolean {
  const type = bits & TYPE_MASK;
  if (type === NONE) return true;
  return type === PRESENT && ((bits & SPECIAL) !== 0 || (f.flags[f.headOf(val)] & ZERO) !== 0);
}

/** is_refcount_suitable: the folio holds no reference beyond its mappings and the swap cache. */
export function refcountSuitable(f: FolioTable, head: number): boolean {
  return f.refcount[head] === f.expectedRefcount(head) && f.pincount[head] === 0;
}

/** The "referenced" rule for one present PTE: young PTE, idle-young folio or PG_referenced. */
export function pteReferenced(f: FolioTable, bits: number, head: number): boolean {
  return (bits & YOUNG) !== 0 || (f.flags[head] & FOLIO_YOUNG_OR_REFERENCED) !== 0;
}

/** A clean lazy-free folio that khugepaged leaves for reclaim (SCAN_PAGE_LAZYFREE). */
export function cleanLazyfree(folios: FolioTable, vma: Vma, bits: number, head: number): boolean {
  const f = folios.flags[head];
  return (
    (f & LAZYFREE) !== 0 &&
    (f & FOLIO_DIRTY) === 0 &&
    (bits & DIRTY) === 0 &&
    (vma.flags & DROPPABLE) === 0
  );
}

/**
 * Scan the PMD range at vpn (PMD aligned). The caller holds the mmap read lock. [lo, hi) limits
 * the scan to the part of the range inside the VMA (pte-level collapse of sub-PMD VMAs only).
 */
export function* collapseScanPmd(
  k: Kernel,
  mm: Mm,
  vma: Vma,
  vpn: number,
  cc: CollapseControl,
  bits: PteBitmap | null = null,
  lo = 0,
  hi = k.geo.ptrsPerPte,
): Step<PmdScan> {
  const scan: PmdScan = {
    result: 'SCAN_SUCCEED',
    referenced: 0,
    unmapped: 0,
    noneOrZero: 0,
    shared: 0,
    inspected: 0,
    lastFolio: -1,
    lo,
    hi,
  };
  const look = yield* findPmdOrThpOrNone(k, mm, vpn);
  if (look.result !== 'SCAN_SUCCEED') {
    scan.result = look.result;
    return scan;
  }
  const pteT = (yield pteOffsetMapLock(k, look.pmdT, look.pmdI)) as number;
  if (!pteT) {
    // The table went away after find_pmd_or_thp_or_none looked.
    scan.result = noPteTable(k.profile, false);
    return scan;
  }
  let result = scanPteTable(k, vma, cc, pteT, scan, bits);
  if (result === 'SCAN_SUCCEED' && cc.isKhugepaged) {
    if (scan.referenced === 0 || (scan.unmapped > 0 && scan.referenced < k.geo.ptrsPerPte / 2))
      result = 'SCAN_LACK_REFERENCED_PAGE';
  }
  yield* pteUnmapUnlock(pteT);
  scan.result = result;
  return scan;
}

/**
 * The per-PTE checks of collapseScanPmd over one PTE table, with its PTE lock held; fills the
 * counters of `scan` and returns the result before the referenced rule. A plain function rather
 * than part of the step, with loop-invariant loads hoisted and counters in locals, because V8
 * optimizes such a loop much better than one inside a generator (bench/khugepaged.ts measures
 * this loop against C).
 */
function scanPteTable(
  k: Kernel,
  vma: Vma,
  cc: CollapseControl,
  pteT: number,
  scan: PmdScan,
  occupied: PteBitmap | null,
): ScanResult {
  const f = k.folios;
  const pte = k.pt.pte;
  const nr = k.geo.ptrsPerPte;
  const { lo, hi } = scan;
  // With mTHP orders to try, the whole range is scanned to fill the occupancy bitmap; the
  // per-order limits are applied to each region later.
  const limNone = occupied ? nr - 1 : maxPtesNone(k, vma, cc);
  occupied?.clear();
  const limSwap = maxPtesSwap(k, cc);
  const limShared = maxPtesShared(k, cc);
  const khugepaged = cc.isKhugepaged;
  const lazyfreeCheck = khugepaged && k.profile.scanPageLazyfree;
  const pteBits = pte.bits;
  const pteVal = pte.val;
  const base = pteT * pte.entriesPerTable;
  let result: ScanResult = 'SCAN_SUCCEED';
  let inspected = 0;
  let noneOrZero = 0;
  let unmapped = 0;
  let shared = 0;
  let referenced = 0;
  let lastFolio = -1;
  for (let i = lo; i < hi; i++) {
    inspected++;
    const bits = pteBits[base + i];
    const val = pteVal[base + i];
    const type = bits & TYPE_MASK;
    if (pteNoneOrZero(f, bits, val)) {
      if (++noneOrZero <= limNone) continue;
      result = 'SCAN_EXCEED_NONE_PTE';
      k.stats.event('thp_scan_exceed_none_pte');
      if (k.profile.mthpCollapseStats) k.stats.mthpStat(k.geo.pmdOrder, 'collapse_exceed_none_pte');
      break;
    }
    if (type !== PRESENT) {
      // Swap, migration and marker entries all count as unmapped.
      if (++unmapped <= limSwap) {
        if ((type === SWAP && bits & UFFD_WP) || (type === MARKER && val === MARKER_UFFD_WP)) {
          result = 'SCAN_PTE_UFFD_WP';
          break;
        }
        continue;
      }
      result = 'SCAN_EXCEED_SWAP_PTE';
      k.stats.event('thp_scan_exceed_swap_pte');
      if (k.profile.mthpCollapseStats) k.stats.mthpStat(k.geo.pmdOrder, 'collapse_exceed_swap_pte');
      break;
    }
    if (bits & UFFD_WP) {
      result = 'SCAN_PTE_UFFD_WP';
      break;
    }
    const head = f.headOf(val);
    lastFolio = head;
    if (lazyfreeCheck && cleanLazyfree(f, vma, bits, head)) {
      result = 'SCAN_PAGE_LAZYFREE';
      break;
    }
    // Nothing below changes folio flags, so the head's flags are read once.
    const flags = f.flags[head];
    if (!(flags & ANON)) {
      result = 'SCAN_PAGE_ANON';
      break;
    }
    if (f.maybeMappedShared(head)) {
      if (++shared > limShared) {
        result = 'SCAN_EXCEED_SHARED_PTE';
        k.stats.event('thp_scan_exceed_share_pte');
        if (k.profile.mthpCollapseStats)
          k.stats.mthpStat(k.geo.pmdOrder, 'collapse_exceed_shared_pte');
        break;
      }
    }
    if (!(flags & LRU)) {
      result = 'SCAN_PAGE_LRU';
      break;
    }
    if (flags & LOCKED) {
      result = 'SCAN_PAGE_LOCK';
      break;
    }
    if (!refcountSuitable(f, head)) {
      result = 'SCAN_PAGE_COUNT';
      break;
    }
    if (khugepaged && pteReferenced(f, bits, head)) referenced++;
    occupied?.set(i);
  }
  scan.inspected = inspected;
  scan.noneOrZero = noneOrZero;
  scan.unmapped = unmapped;
  scan.shared = shared;
  scan.referenced = referenced;
  scan.lastFolio = lastFolio;
  return result;
}
