// Registering an mm with khugepaged (khugepaged_enter_vma, __khugepaged_enter). The daemon that
// scans the registered mms comes with the khugepaged issue; registration is part of the mm model
// because faults, MADV_HUGEPAGE and fork trigger it.

import type { Kernel } from '../mm/kernel.ts';
import { anyOrderEnabled } from '../mm/settings.ts';
import { shmemHpagePmdEnabled } from '../mm/shmem.ts';
import { thpVmaAllowableOrders } from '../mm/thp-orders.ts';
import type { Mm, Vma } from '../mm/vma.ts';

/**
 * hugepage_enabled() (any anon order, 7.2) or hugepage_pmd_enabled() (6.18); both also count
 * read-only file THP (with the global control on) and shmem PMD folios.
 */
export function khugepagedHasWork(k: Kernel): boolean {
  const s = k.settings;
  const anon = k.profile.khugepagedAnyOrder
    ? anyOrderEnabled(s)
    : anyOrderEnabled(s, k.geo.pmdOrder);
  const file = k.profile.readOnlyThpForFs && s.enabled !== 'never';
  return anon || file || shmemHpagePmdEnabled(k);
}

/** __khugepaged_enter: add the mm to the scan list once (MMF_VM_HUGEPAGE). */
export function khugepagedEnter(k: Kernel, mm: Mm): void {
  if (mm.khugepagedRegistered || mm.exiting) return;
  mm.khugepagedRegistered = true;
  const wasEmpty = k.khugepagedSlots.length === 0;
  k.khugepagedSlots.push(mm.id);
  // The first mm wakes a thread that waits for work.
  if (wasEmpty || k.khugepaged.wakeAt === Infinity)
    k.khugepaged.wakeAt = Math.min(k.khugepaged.wakeAt, k.clockMs);
}

/** khugepaged_enter_vma: register when khugepaged runs and this VMA could be collapsed. */
export function khugepagedEnterVma(k: Kernel, vma: Vma): void {
  if (vma.mm.khugepagedRegistered || !khugepagedHasWork(k)) return;
  const orders = k.profile.mthpCollapse ? k.geo.anonOrders : 1 << k.geo.pmdOrder;
  if (thpVmaAllowableOrders(k, vma, 'khugepaged', orders)) khugepagedEnter(k, vma.mm);
}
