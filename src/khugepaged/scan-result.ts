// enum scan_result: why a scan or a collapse of one PMD range succeeded or stopped, named as in
// mm/khugepaged.c, and how MADV_COLLAPSE turns a result into an errno (madvise_collapse_errno).

import type { KernelProfile } from '../mm/profile.ts';

export const SCAN_RESULTS = [
  'SCAN_FAIL',
  'SCAN_SUCCEED',
  'SCAN_NO_PTE_TABLE',
  'SCAN_PMD_NULL',
  'SCAN_PMD_NONE',
  'SCAN_PMD_MAPPED',
  'SCAN_EXCEED_NONE_PTE',
  'SCAN_EXCEED_SWAP_PTE',
  'SCAN_EXCEED_SHARED_PTE',
  'SCAN_PTE_NON_PRESENT',
  'SCAN_PTE_UFFD_WP',
  'SCAN_PTE_MAPPED_HUGEPAGE',
  'SCAN_LACK_REFERENCED_PAGE',
  'SCAN_PAGE_NULL',
  'SCAN_SCAN_ABORT',
  'SCAN_PAGE_COUNT',
  'SCAN_PAGE_LRU',
  'SCAN_PAGE_LOCK',
  'SCAN_PAGE_ANON',
  'SCAN_PAGE_LAZYFREE',
  'SCAN_PAGE_COMPOUND',
  'SCAN_ANY_PROCESS',
  'SCAN_VMA_NULL',
  'SCAN_VMA_CHECK',
  'SCAN_ADDRESS_RANGE',
  'SCAN_DEL_PAGE_LRU',
  'SCAN_ALLOC_HUGE_PAGE_FAIL',
  'SCAN_CGROUP_CHARGE_FAIL',
  'SCAN_TRUNCATED',
  'SCAN_PAGE_HAS_PRIVATE',
  'SCAN_STORE_FAILED',
  'SCAN_COPY_MC',
  'SCAN_PAGE_FILLED',
  'SCAN_PAGE_DIRTY_OR_WRITEBACK',
  // The rounds design (mm/collapse.c, not merged): a source mapped shared or not exclusive, an
  // allocation without reclaim that missed while the sources were frozen (retried with reclaim
  // before the next freeze), and a fault-in that had to drop the mmap lock.
  'SCAN_PAGE_NOT_EXCLUSIVE',
  'SCAN_ALLOC_LIGHT_MISS',
  'SCAN_LOCK_DROPPED',
] as const;

export type ScanResult = (typeof SCAN_RESULTS)[number];

/**
 * The result for a PMD range without a PTE table: one code in the 2026 tree, two before
 * (no PMD table at all, or a PMD entry that is none).
 */
export function noPteTable(p: KernelProfile, pmdEntryNone: boolean): ScanResult {
  if (p.scanNoPteTable) return 'SCAN_NO_PTE_TABLE';
  return pmdEntryNone ? 'SCAN_PMD_NONE' : 'SCAN_PMD_NULL';
}

/** Results after which MADV_COLLAPSE goes on to the next PMD (the whitelist in madvise_collapse). */
const SOFT: ReadonlySet<ScanResult> = new Set<ScanResult>([
  'SCAN_NO_PTE_TABLE',
  'SCAN_PMD_NULL',
  'SCAN_PTE_NON_PRESENT',
  'SCAN_PTE_UFFD_WP',
  'SCAN_LACK_REFERENCED_PAGE',
  'SCAN_PAGE_NULL',
  'SCAN_PAGE_COUNT',
  'SCAN_PAGE_LOCK',
  'SCAN_PAGE_COMPOUND',
  'SCAN_PAGE_LRU',
  'SCAN_DEL_PAGE_LRU',
  'SCAN_PAGE_NOT_EXCLUSIVE',
  'SCAN_LOCK_DROPPED',
]);

export function madviseCollapseContinues(p: KernelProfile, r: ScanResult): boolean {
  // Measured on 6.18: an empty PMD entry ends MADV_COLLAPSE (EINVAL).
  if (r === 'SCAN_PMD_NONE') return !p.madvCollapseStopsAtEmptyPmd;
  return SOFT.has(r);
}

export type CollapseErrno = 'ENOMEM' | 'EBUSY' | 'EAGAIN' | 'EINVAL';

/** madvise_collapse_errno. */
export function madviseCollapseErrno(r: ScanResult): CollapseErrno {
  switch (r) {
    case 'SCAN_ALLOC_HUGE_PAGE_FAIL':
      return 'ENOMEM';
    case 'SCAN_CGROUP_CHARGE_FAIL':
    case 'SCAN_EXCEED_NONE_PTE':
      return 'EBUSY';
    case 'SCAN_PAGE_COUNT':
    case 'SCAN_PAGE_LOCK':
    case 'SCAN_PAGE_LRU':
    case 'SCAN_DEL_PAGE_LRU':
    case 'SCAN_PAGE_FILLED':
    case 'SCAN_PAGE_HAS_PRIVATE':
    case 'SCAN_PAGE_DIRTY_OR_WRITEBACK':
    case 'SCAN_PAGE_NOT_EXCLUSIVE':
    case 'SCAN_LOCK_DROPPED':
      return 'EAGAIN';
    default:
      return 'EINVAL';
  }
}
