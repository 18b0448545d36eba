// struct collapse_control: who is collapsing (khugepaged or MADV_COLLAPSE) and the per-PTE limits
// that follow from it (collapse_max_ptes_none / _swap / _shared for PMD order).

import type { Kernel } from '../mm/kernel.ts';
import { thpVmaAllowableOrders } from '../mm/thp-orders.ts';
import { VM_UFFD_MISSING, VM_UFFD_WP, type Vma } from '../mm/vma.ts';
import type { PteBitmap } from './mthp/bitmap.ts';
import type { MthpWalkInput } from './mthp/collapse.ts';
import type { ForwardWalk, StackWalk } from './mthp/order-walk.ts';
import { maxPtesNoneFor } from './mthp/thresholds.ts';

export interface CollapseControl {
  readonly isKhugepaged: boolean;
  /** mthp_present_ptes, allocated the first time an mTHP order is in play. */
  bits?: PteBitmap;
  /** The order walks, allocated once and reset for each PMD range. */
  forwardWalk?: ForwardWalk;
  stackWalk?: StackWalk;
  walkInput?: MthpWalkInput;
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

/**
 * collapse_max_ptes_none below PMD order (inside isolate, with the revalidated VMA), under the
 * collapse policy: in the merged design only 0 and HPAGE_PMD_NR-1 mean what they say.
 */
export function mthpMaxPtesNone(k: Kernel, vma: Vma, order: number): number {
  const g = k.geo;
  return maxPtesNoneFor(k.collapsePolicy)(
    {
      sysfs: k.settings.khugepaged.maxPtesNone,
      nr: g.ptrsPerPte,
      pmdOrder: g.pmdOrder,
      uffd: uffdArmed(vma),
      madvise: false,
    },
    order,
  );
}

/**
 * collapse_possible_orders: for khugepaged on an anonymous VMA (with the mTHP series) every
 * anon order the VMA allows; otherwise (MADV_COLLAPSE, files, older kernels) PMD order only.
 */
export function collapsePossibleOrders(k: Kernel, vma: Vma, cc: CollapseControl): number {
  const type = cc.isKhugepaged ? 'khugepaged' : 'forced_collapse';
  const mthp = cc.isKhugepaged && k.profile.mthpCollapse && vma.isAnonymous;
  return thpVmaAllowableOrders(k, vma, type, mthp ? k.geo.anonOrders : 1 << k.geo.pmdOrder);
}
