// collapse_scan_pmd (hpage_collapse_scan_pmd): inspect the PTEs of one PMD range under the mmap
// read lock and decide whether collapse_huge_page should try it.

import { PG_ANON, PG_DIRTY, PG_LAZYFREE, PG_LOCKED, PG_LRU, PG_REFERENCED, PG_YOUNG, PG_ZERO } from '../mm/folio.ts';
import type { Kernel } from '../mm/kernel.ts';
import { B_DIRTY, B_SPECIAL, B_UFFD_WP, B_YOUNG, E_NONE, E_PRESENT, E_SWAP, E_TYPE_MASK, MARKER_UFFD_WP, E_MARKER } from '../mm/pgtable.ts';
import { L_PTE_LOCK, L_RCU, type Step, lock, unlock } from '../mm/step.ts';
import { VM_DROPPABLE, type Mm, type Vma } from '../mm/vma.ts';
import { type CollapseControl, maxPtesNone, maxPtesShared, maxPtesSwap } from './control.ts';
import { findPmdOrThpOrNone } from './find-pmd.ts';
import type { ScanResult } from './scan-result.ts';

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
}

/** The PTE is none or maps the shared zero page (pte_none_or_zero). */
export function pteNoneOrZero(k: Kernel, bits: number, val: number): boolean {
  const type = bits & E_TYPE_MASK;
  if (type === E_NONE) return true;
  return type === E_PRESENT && ((bits & B_SPECIAL) !== 0 || (k.folios.flags[k.folios.headOf(val)] & PG_ZERO) !== 0);
}

/** is_refcount_suitable: the folio holds no reference beyond its mappings and the swap cache. */
export function refcountSuitable(k: Kernel, head: number): boolean {
  return k.folios.refcount[head] === k.folios.expectedRefcount(head) && k.folios.pincount[head] === 0;
}

/** The "referenced" rule for one present PTE: young PTE, idle-young folio or PG_referenced. */
export function pteReferenced(k: Kernel, bits: number, head: number): boolean {
  return (bits & B_YOUNG) !== 0 || (k.folios.flags[head] & (PG_YOUNG | PG_REFERENCED)) !== 0;
}

/** A clean lazy-free folio that khugepaged leaves for reclaim (SCAN_PAGE_LAZYFREE). */
export function cleanLazyfree(k: Kernel, vma: Vma, bits: number, head: number): boolean {
  const f = k.folios.flags[head];
  return (f & PG_LAZYFREE) !== 0 && (f & PG_DIRTY) === 0 && (bits & B_DIRTY) === 0 && (vma.flags & VM_DROPPABLE) === 0;
}

/** Scan the PMD range at vpn (PMD aligned). The caller holds the mmap read lock. */
export function* collapseScanPmd(k: Kernel, mm: Mm, vma: Vma, vpn: number, cc: CollapseControl): Step<PmdScan> {
  const scan: PmdScan = { result: 'SCAN_SUCCEED', referenced: 0, unmapped: 0, noneOrZero: 0, shared: 0, inspected: 0, lastFolio: -1 };
  const look = yield* findPmdOrThpOrNone(k, mm, vpn);
  if (look.result !== 'SCAN_SUCCEED') {
    scan.result = look.result;
    return scan;
  }
  const f = k.folios;
  const pte = k.pt.pte;
  const nr = k.geo.ptrsPerPte;
  const limNone = maxPtesNone(k, vma, cc);
  const limSwap = maxPtesSwap(k, cc);
  const limShared = maxPtesShared(k, cc);
  const khugepaged = cc.isKhugepaged;
  // pte_offset_map_lock
  yield lock(L_RCU, 0);
  const pteT = k.pt.pmd.getVal(look.pmdT, look.pmdI);
  yield lock(L_PTE_LOCK, pteT);
  const base = pteT * pte.entriesPerTable;
  let result: ScanResult = 'SCAN_SUCCEED';
  for (let i = 0; i < nr; i++) {
    scan.inspected++;
    const bits = pte.bits[base + i];
    const val = pte.val[base + i];
    const type = bits & E_TYPE_MASK;
    if (pteNoneOrZero(k, bits, val)) {
      if (++scan.noneOrZero <= limNone) continue;
      result = 'SCAN_EXCEED_NONE_PTE';
      k.stats.event('thp_scan_exceed_none_pte');
      if (k.profile.mthpCollapseStats) k.stats.mthpStat(k.geo.pmdOrder, 'collapse_exceed_none_pte');
      break;
    }
    if (type !== E_PRESENT) {
      // Swap, migration and marker entries all count as unmapped.
      if (++scan.unmapped <= limSwap) {
        if ((type === E_SWAP && bits & B_UFFD_WP) || (type === E_MARKER && val === MARKER_UFFD_WP)) {
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
    if (bits & B_UFFD_WP) {
      result = 'SCAN_PTE_UFFD_WP';
      break;
    }
    const head = f.headOf(val);
    scan.lastFolio = head;
    if (khugepaged && k.profile.scanPageLazyfree && cleanLazyfree(k, vma, bits, head)) {
      result = 'SCAN_PAGE_LAZYFREE';
      break;
    }
    if (!(f.flags[head] & PG_ANON)) {
      result = 'SCAN_PAGE_ANON';
      break;
    }
    if (f.maybeMappedShared(head)) {
      if (++scan.shared > limShared) {
        result = 'SCAN_EXCEED_SHARED_PTE';
        k.stats.event('thp_scan_exceed_share_pte');
        if (k.profile.mthpCollapseStats) k.stats.mthpStat(k.geo.pmdOrder, 'collapse_exceed_shared_pte');
        break;
      }
    }
    if (!(f.flags[head] & PG_LRU)) {
      result = 'SCAN_PAGE_LRU';
      break;
    }
    if (f.flags[head] & PG_LOCKED) {
      result = 'SCAN_PAGE_LOCK';
      break;
    }
    if (!refcountSuitable(k, head)) {
      result = 'SCAN_PAGE_COUNT';
      break;
    }
    if (khugepaged && pteReferenced(k, bits, head)) scan.referenced++;
  }
  if (result === 'SCAN_SUCCEED' && khugepaged) {
    if (scan.referenced === 0 || (scan.unmapped > 0 && scan.referenced < nr / 2)) result = 'SCAN_LACK_REFERENCED_PAGE';
  }
  yield unlock(L_PTE_LOCK, pteT);
  yield unlock(L_RCU, 0);
  scan.result = result;
  return scan;
}
