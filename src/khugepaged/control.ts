// struct collapse_control: who is collapsing (khugepaged or MADV_COLLAPSE) and the per-PTE limits
// that follow from it (collapse_max_ptes_none / _swap / _shared for PMD order).

import type { Kernel } from '../mm/kernel.ts';
import { VM_UFFD_MISSING, VM_UFFD_WP, type Vma } from '../mm/vma.ts';

export interface CollapseControl {
  readonly isKhugepaged: boolean;
  /** Results of each PMD range this control visited, in order (for reports and MADV_COLLAPSE). */
  readonly results: Array<{ mm: number; addr: number; result: string }>;
}

export function newCollapseControl(isKhugepaged: boolean): CollapseControl {
  return { isKhugepaged, results: [] };
}

/** userfaultfd_armed(). */
export function uffdArmed(vma: Vma): boolean {
  return (vma.flags & (VM_UFFD_MISSING | VM_UFFD_WP)) !== 0;
}

/** Limits for a PMD-order scan: MADV_COLLAPSE enforces none of them, except none for uffd VMAs. */
export function maxPtesNone(k: Kernel, vma: Vma, cc: CollapseControl): number {
  if (uffdArmed(vma)) return 0;
  return cc.isKhugepaged ? k.settings.khugepaged.maxPtesNone : k.geo.ptrsPerPte;
}

export function maxPtesSwap(k: Kernel, cc: CollapseControl): number {
  return cc.isKhugepaged ? k.settings.khugepaged.maxPtesSwap : k.geo.ptrsPerPte;
}

export function maxPtesShared(k: Kernel, cc: CollapseControl): number {
  return cc.isKhugepaged ? k.settings.khugepaged.maxPtesShared : k.geo.ptrsPerPte;
}
