// Which folio orders a VMA may use: thp_vma_allowable_orders() and thp_vma_suitable_orders().

import type { Kernel } from './kernel.ts';
import { VM_GROWSDOWN, VM_HUGEPAGE, VM_IO, VM_NOHUGEPAGE, type Vma } from './vma.ts';

export type TvaType = 'smaps' | 'pagefault' | 'khugepaged' | 'forced_collapse';

/** vma_thp_disabled(): MADV_NOHUGEPAGE, or the prctl, in its two strengths. */
export function vmaThpDisabled(vma: Vma, forcedCollapse: boolean): boolean {
  if (vma.flags & VM_NOHUGEPAGE) return true;
  const d = vma.mm.thpDisable;
  if (d === 'all') return true;
  if (d === 'except-advised') return !(vma.flags & VM_HUGEPAGE) && !forcedCollapse;
  return false;
}

/** thp_vma_allowable_orders(vma, type, orders) for anonymous VMAs. */
export function thpVmaAllowableOrders(k: Kernel, vma: Vma, type: TvaType, orders: number): number {
  const s = k.settings;
  // The sysfs mask: everything but a forced collapse obeys the per-size and global modes.
  if (type !== 'forced_collapse') {
    let mask = s.ordersAlways;
    if (vma.flags & VM_HUGEPAGE) mask |= s.ordersMadvise;
    if (s.enabled === 'always' || (vma.flags & VM_HUGEPAGE && s.enabled === 'madvise'))
      mask |= s.ordersInherit;
    orders &= mask;
    if (!orders) return 0;
  }
  // __thp_vma_allowable_orders
  orders &= k.geo.anonOrders;
  if (!orders) return 0;
  if (vmaThpDisabled(vma, type === 'forced_collapse')) return 0;
  if (vma.flags & VM_IO && type !== 'pagefault') return 0;
  if (!vma.isAnonymous) return 0; // file and shmem THP come with the file-collapse issue
  if (type !== 'pagefault') orders = highestFittingOrders(vma, orders);
  if (vma.flags & VM_GROWSDOWN && type !== 'smaps') return 0;
  // Without an anon_vma only smaps and the fault path may go on (the fault creates one).
  if (!vma.anonVma && type !== 'smaps' && type !== 'pagefault') return 0;
  return orders;
}

/** Non-fault filter: keep orders from the highest one whose aligned block below vm_end fits. */
function highestFittingOrders(vma: Vma, orders: number): number {
  for (let o = 31; o >= 0; o--) {
    const bit = 1 << o;
    if (!(orders & bit)) continue;
    const n = 2 ** o;
    const start = Math.floor((vma.end - n) / n) * n;
    if (start >= vma.start && start + n <= vma.end) return orders & ((bit << 1) - 1);
    orders &= ~bit;
  }
  return 0;
}

/** thp_vma_suitable_orders(): drop orders whose naturally aligned block around vpn leaves the VMA. */
export function thpVmaSuitableOrders(vma: Vma, vpn: number, orders: number): number {
  let out = orders;
  for (let o = 31; o >= 0; o--) {
    const bit = 1 << o;
    if (!(orders & bit)) continue;
    const n = 2 ** o;
    const start = Math.floor(vpn / n) * n;
    if (start < vma.start || start + n > vma.end) out &= ~bit;
  }
  return out;
}

/** thp_vma_allowable_order for one order. */
export function thpVmaAllowableOrder(k: Kernel, vma: Vma, type: TvaType, order: number): boolean {
  return thpVmaAllowableOrders(k, vma, type, 1 << order) !== 0;
}
