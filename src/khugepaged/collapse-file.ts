// File and shmem collapse (collapse_scan_file, collapse_file, retract_page_tables,
// try_collapse_pte_mapped_thp): filled in by the page-cache model.

import type { Kernel } from '../mm/kernel.ts';
import type { Step } from '../mm/step.ts';
import type { Mm, Vma } from '../mm/vma.ts';
import type { CollapseControl } from './control.ts';
import type { ScanResult } from './scan-result.ts';

/** collapse_scan_file for the PMD range at vpn of a file VMA; called without the mmap lock. */
// eslint-disable-next-line require-yield
export function* collapseScanFile(_k: Kernel, _mm: Mm, _vma: Vma, _vpn: number, _cc: CollapseControl): Step<ScanResult> {
  return 'SCAN_FAIL';
}

/** try_collapse_pte_mapped_thp: map a PMD-sized page-cache folio with a PMD (install) or retract. */
// eslint-disable-next-line require-yield
export function* tryCollapsePteMappedThp(_k: Kernel, _mm: Mm, _vpn: number, _installPmd: boolean): Step<ScanResult> {
  return 'SCAN_FAIL';
}
