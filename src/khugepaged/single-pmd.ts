// collapse_single_pmd: scan one PMD range of a VMA and collapse it if the scan says so. Entered
// with the mmap read lock held; says whether the lock was dropped on the way.

import type { Kernel } from '../mm/kernel.ts';
import { filemapWriteAndWaitRange } from '../mm/filemap.ts';
import { L_MMAP_READ, type Step, lock, unlock } from '../mm/step.ts';
import type { Mm, Vma } from '../mm/vma.ts';
import { collapseHugePage, withOrder } from './collapse-anon.ts';
import { collapseScanFile, tryCollapsePteMappedThp } from './collapse-file.ts';
import { type CollapseControl, collapsePossibleOrders } from './control.ts';
import { PteBitmap } from './mthp/bitmap.ts';
import { mthpCollapse } from './mthp/collapse.ts';
import { collapseAnonPmdRounds } from './rounds/anon-pmd.ts';
import { collapseScanPmd } from './scan-pmd.ts';
import type { ScanResult } from './scan-result.ts';

export interface SinglePmd {
  result: ScanResult;
  /** The mmap read lock was released (an allocation or a file collapse happened). */
  lockDropped: boolean;
  /** Scan progress to charge to the pages_to_scan budget. */
  progress: number;
}

/**
 * [lo, hi) is the part of the PMD range at vpn to scan: all of it, except for the pte-level
 * design's ranges that a VMA covers only in part (then only orders below PMD are in play).
 */
export function* collapseSinglePmd(
  k: Kernel,
  mm: Mm,
  vma: Vma,
  vpn: number,
  cc: CollapseControl,
  lo = 0,
  hi = k.geo.ptrsPerPte,
): Step<SinglePmd> {
  const nr = k.geo.ptrsPerPte;
  const partial = lo > 0 || hi < nr;
  if (vma.file !== 0) {
    // Read what the scan needs while the VMA is still stable, then let go of the mmap lock.
    const fileId = vma.file;
    const start = vma.linearIndex(vpn);
    yield unlock(L_MMAP_READ, mm.id);
    let result: ScanResult = yield* collapseScanFile(k, mm, fileId, start, vpn, cc);
    if (!cc.isKhugepaged && result === 'SCAN_PAGE_DIRTY_OR_WRITEBACK') {
      // MADV_COLLAPSE writes the range back once and tries again.
      const file = k.files.get(fileId);
      if (file) {
        yield* filemapWriteAndWaitRange(k, file, start, start + nr);
        result = yield* collapseScanFile(k, mm, fileId, start, vpn, cc);
      }
    }
    if (result === 'SCAN_PTE_MAPPED_HUGEPAGE') {
      // A PMD-sized folio is in the page cache: retract the table (and map it, for MADV_COLLAPSE).
      yield lock(L_MMAP_READ, mm.id);
      if (!mm.exiting && mm.thpDisable !== 'all')
        result = yield* tryCollapsePteMappedThp(k, mm, vpn, !cc.isKhugepaged);
      yield unlock(L_MMAP_READ, mm.id);
    }
    record(k, mm, vpn, result, cc);
    return { result, lockDropped: true, progress: result === 'SCAN_PTE_MAPPED_HUGEPAGE' ? 1 : nr };
  }
  let enabled = collapsePossibleOrders(k, vma, cc);
  if (partial) enabled &= (1 << k.geo.pmdOrder) - 1;
  // Orders below PMD in play: fill the occupancy bitmap and let the order walk choose.
  const mthp = (enabled & ((1 << k.geo.pmdOrder) - 1)) !== 0;
  // The rounds design cuts every collapse, PMD order included, from the usable-PTE bitmap.
  const rounds = k.collapsePolicy === 'rounds';
  if (partial && !mthp) {
    record(k, mm, vpn, 'SCAN_ADDRESS_RANGE', cc);
    return { result: 'SCAN_ADDRESS_RANGE', lockDropped: false, progress: 1 };
  }
  if (mthp || rounds) cc.bits ??= new PteBitmap(nr);
  const scan = yield* collapseScanPmd(
    k,
    mm,
    vma,
    vpn,
    cc,
    mthp || rounds ? cc.bits! : null,
    lo,
    hi,
  );
  const progress = k.profile.perPteScanProgress ? Math.max(1, scan.inspected) : nr;
  k.trace(
    'mm_khugepaged_scan_pmd',
    withOrder(k, {
      mm: mm.id,
      pfn: scan.lastFolio,
      referenced: scan.referenced,
      none_or_zero: scan.noneOrZero,
      status: scan.result,
      unmapped: scan.unmapped,
    }),
  );
  if (scan.result !== 'SCAN_SUCCEED') {
    record(
      k,
      mm,
      vpn,
      scan.result,
      cc,
      scan.noneOrZero,
      scan.unmapped,
      scan.shared,
      cc.isKhugepaged ? scan.referenced : -1,
    );
    return { result: scan.result, lockDropped: false, progress };
  }
  yield unlock(L_MMAP_READ, mm.id);
  const result: ScanResult = rounds
    ? yield* collapseAnonPmdRounds(k, mm, vpn, scan, enabled, cc)
    : mthp
      ? yield* mthpCollapse(k, mm, vpn, scan, enabled, cc)
      : yield* collapseHugePage(k, mm, vpn, k.geo.pmdOrder, scan.referenced, scan.unmapped, cc);
  record(
    k,
    mm,
    vpn,
    result,
    cc,
    scan.noneOrZero,
    scan.unmapped,
    scan.shared,
    cc.isKhugepaged ? scan.referenced : -1,
  );
  return { result, lockDropped: true, progress };
}

/** Remember the outcome per PMD range, for MADV_COLLAPSE's report and the timeline. */
function record(
  k: Kernel,
  mm: Mm,
  vpn: number,
  result: ScanResult,
  cc: CollapseControl,
  none = -1,
  swap = -1,
  shared = -1,
  referenced = -1,
): void {
  cc.results.push({ mm: mm.id, addr: vpn, result });
  k.trace('thpsim_pmd_result', {
    mm: mm.id,
    vpn,
    result,
    none_or_zero: none,
    swap,
    shared,
    referenced,
    khugepaged: cc.isKhugepaged,
  });
}
