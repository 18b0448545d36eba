// hugepage_vma_revalidate: after the mmap lock was dropped, is the PMD range still collapsible?

import type { Kernel } from '../mm/kernel.ts';
import { thpVmaAllowableOrder } from '../mm/thp-orders.ts';
import type { Mm, Vma } from '../mm/vma.ts';
import type { CollapseControl } from './control.ts';
import type { ScanResult } from './scan-result.ts';

export interface Revalidated {
  result: ScanResult;
  vma: Vma | null;
}

/**
 * The VMA must still exist, span the whole PMD range (for every order: a table shared with
 * another VMA must never be detached) and allow the order. `span` replaces the whole-PMD rule
 * by the region itself: for the pte-level design, which never detaches the table, and for the
 * v5 design the review rejected (the checker's 'no-full-pmd-check' bug).
 */
export function hugepageVmaRevalidate(
  k: Kernel,
  mm: Mm,
  vpn: number,
  expectAnon: boolean,
  cc: CollapseControl,
  order = k.geo.pmdOrder,
  span?: { vpn: number; pages: number },
): Revalidated {
  if (mm.exiting || mm.thpDisable === 'all' || !k.mms.has(mm.id))
    return { result: 'SCAN_ANY_PROCESS', vma: null };
  const vma = mm.findVma(span ? span.vpn : vpn);
  if (!vma) return { result: 'SCAN_VMA_NULL', vma: null };
  const nr = k.geo.ptrsPerPte;
  const start = span ? span.vpn : Math.floor(vpn / nr) * nr;
  const pages = span ? span.pages : nr;
  if (start < vma.start || start + pages > vma.end) return { result: 'SCAN_ADDRESS_RANGE', vma };
  const type = cc.isKhugepaged ? 'khugepaged' : 'forced_collapse';
  if (!thpVmaAllowableOrder(k, vma, type, order)) return { result: 'SCAN_VMA_CHECK', vma };
  if (expectAnon && (!vma.anonVma || !vma.isAnonymous)) return { result: 'SCAN_PAGE_ANON', vma };
  return { result: 'SCAN_SUCCEED', vma };
}
