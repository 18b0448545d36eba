// Which folio orders a VMA may use: thp_vma_allowable_orders() and thp_vma_suitable_orders().

import type { AddressSpace } from './filemap.ts';
import type { Kernel } from './kernel.ts';
import { fileOrders } from './settings.ts';
import { shmemAllowableHugeOrders } from './shmem.ts';
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

/**
 * file_thp_enabled (CONFIG_READ_ONLY_THP_FOR_FS): a regular file that nobody has open for
 * writing may get PMD-sized page-cache folios from khugepaged or MADV_COLLAPSE.
 */
export function fileThpEnabled(k: Kernel, file: AddressSpace | undefined): boolean {
  return k.profile.readOnlyThpForFs && !!file && !file.tmpfs && !file.openForWrite;
}

/** thp_vma_allowable_orders(vma, type, orders) for anonymous, shmem and file VMAs. */
export function thpVmaAllowableOrders(k: Kernel, vma: Vma, type: TvaType, orders: number): number {
  const s = k.settings;
  // The sysfs mask: everything but a forced collapse obeys the per-size and global modes.
  if (type !== 'forced_collapse' && vma.isAnonymous) {
    let mask = s.ordersAlways;
    if (vma.flags & VM_HUGEPAGE) mask |= s.ordersMadvise;
    if (s.enabled === 'always' || (vma.flags & VM_HUGEPAGE && s.enabled === 'madvise'))
      mask |= s.ordersInherit;
    orders &= mask;
    if (!orders) return 0;
  }
  // __thp_vma_allowable_orders
  const forced = type === 'forced_collapse';
  orders &= vma.isAnonymous ? k.geo.anonOrders : fileOrders(k.geo);
  if (!orders) return 0;
  if (vmaThpDisabled(vma, forced)) return 0;
  if (vma.flags & VM_IO && type !== 'pagefault') return 0;
  if (type !== 'pagefault') orders = highestFittingOrders(vma, orders);
  if (!orders) return 0;
  if (!vma.isAnonymous) {
    const file = k.files.get(vma.file);
    // shmem: its own policy (mount option, shmem_enabled, per-size shmem_enabled).
    if (type !== 'pagefault' && file?.tmpfs)
      return orders & shmemAllowableHugeOrders(k, file, vma, vma.pgoff, forced);
    // Regular files: the global mode unless forced, then CONFIG_READ_ONLY_THP_FOR_FS; page
    // faults never allocate THPs for them (no ->huge_fault), they only map what the cache has.
    if (
      !forced &&
      (s.enabled === 'never' || (!(vma.flags & VM_HUGEPAGE) && s.enabled !== 'always'))
    )
      return 0;
    if (type !== 'pagefault' && fileThpEnabled(k, file)) return orders;
    return 0;
  }
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
    const n = 1 << o;
    const start = Math.floor((vma.end - n) / n) * n;
    if (start >= vma.start && start + n <= vma.end && fileOffsetAligned(vma, n))
      return orders & ((bit << 1) - 1);
    orders &= ~bit;
  }
  return 0;
}

/** thp_vma_suitable_order for file VMAs: virtual address and file offset agree modulo the size. */
function fileOffsetAligned(vma: Vma, n: number): boolean {
  return vma.isAnonymous || (vma.start - vma.pgoff) % n === 0;
}

/** thp_vma_suitable_orders(): drop orders whose naturally aligned block around vpn leaves the VMA. */
export function thpVmaSuitableOrders(vma: Vma, vpn: number, orders: number): number {
  let out = orders;
  for (let o = 31; o >= 0; o--) {
    const bit = 1 << o;
    if (!(orders & bit)) continue;
    const n = 1 << o;
    const start = Math.floor(vpn / n) * n;
    if (start < vma.start || start + n > vma.end || !fileOffsetAligned(vma, n)) out &= ~bit;
  }
  return out;
}

/** thp_vma_allowable_order for one order. */
export function thpVmaAllowableOrder(k: Kernel, vma: Vma, type: TvaType, order: number): boolean {
  return thpVmaAllowableOrders(k, vma, type, 1 << order) !== 0;
}
