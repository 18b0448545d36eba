// shmem/tmpfs huge page policy (mm/shmem.c): shmem_huge_global_enabled,
// shmem_allowable_huge_orders, shmem_hpage_pmd_enabled, and the allocation of a new shmem folio
// at fault time (shmem_get_folio_gfp → shmem_alloc_and_add_folio). Only order 0 and the PMD
// order are allocated at fault; shmem swap is not modelled.

import { type AddressSpace, addToPageCache } from './filemap.ts';
import type { Kernel } from './kernel.ts';
import { fileOrders, type ShmemHuge } from './settings.ts';
import { thpVmaSuitableOrders, vmaThpDisabled } from './thp-orders.ts';
import { VM_HUGEPAGE, type Vma } from './vma.ts';

const NONE = -1;

/** The huge= option that governs a tmpfs file: its mount's, or the internal mount's. */
function sbHuge(k: Kernel, file: AddressSpace): ShmemHuge {
  return file.huge ?? k.settings.shmemMntHuge;
}

/**
 * shmem_get_orders_within_size: of `orders`, those whose naturally aligned block holding index
 * ends within i_size.
 */
function ordersWithinSize(file: AddressSpace, orders: number, index: number): number {
  let out = 0;
  for (let o = 31; o >= 1; o--) {
    const bit = 1 << o;
    if (!(orders & bit)) continue;
    const n = 1 << o;
    const alignedEnd = Math.ceil((index + 1) / n) * n;
    if (file.size >= alignedEnd) out |= bit;
  }
  return out;
}

/** shmem_huge_global_enabled: the orders the file's mount policy (or a force) allows. */
function shmemHugeGlobalEnabled(
  k: Kernel,
  file: AddressSpace,
  index: number,
  force: boolean,
  vma: Vma | null,
): number {
  const s = k.settings;
  const all = fileOrders(k.geo);
  const pmdBit = all & (1 << k.geo.pmdOrder);
  if (s.shmemEnabled === 'deny') return 0;
  if (force || s.shmemEnabled === 'force') return pmdBit;
  switch (sbHuge(k, file)) {
    case 'always':
      return all;
    case 'within_size': {
      const within = ordersWithinSize(file, all, index);
      if (within) return within;
      return vma && vma.flags & VM_HUGEPAGE ? all : 0;
    }
    case 'advise':
      return vma && vma.flags & VM_HUGEPAGE ? all : 0;
    default:
      return 0;
  }
}

/**
 * shmem_allowable_huge_orders: the large orders a shmem file may use at index, for a VMA (or
 * none). `force` is MADV_COLLAPSE's shmem_huge_force. Anonymous shmem adds the per-size
 * hugepages-<size>kB/shmem_enabled policy; other tmpfs files follow their mount alone.
 */
export function shmemAllowableHugeOrders(
  k: Kernel,
  file: AddressSpace,
  vma: Vma | null,
  index: number,
  force: boolean,
): number {
  const s = k.settings;
  if (vma && vmaThpDisabled(vma, force)) return 0;
  const global = shmemHugeGlobalEnabled(k, file, index, force, vma);
  if (!vma || !file.anonShmem) return global;
  if (s.shmemEnabled === 'deny') return 0;
  if (s.shmemEnabled === 'force') return s.shmemOrdersInherit;
  let mask = s.shmemOrdersAlways | ordersWithinSize(file, s.shmemOrdersWithinSize, index);
  if (vma.flags & VM_HUGEPAGE) mask |= s.shmemOrdersMadvise;
  if (global) mask |= s.shmemOrdersInherit;
  return fileOrders(k.geo) & mask;
}

/** shmem_hpage_pmd_enabled: whether shmem could use PMD-sized folios at all (khugepaged's test). */
export function shmemHpagePmdEnabled(k: Kernel): boolean {
  const s = k.settings;
  const bit = 1 << k.geo.pmdOrder;
  if (s.shmemEnabled === 'deny') return false;
  if ((s.shmemOrdersAlways | s.shmemOrdersMadvise | s.shmemOrdersWithinSize) & bit) return true;
  return (s.shmemOrdersInherit & bit) !== 0 && s.shmemEnabled !== 'never';
}

/**
 * shmem_get_folio_gfp (SGP_CACHE) on a miss at a fault: allocate a zero-filled folio, PMD-sized
 * when the policy allows it, the PMD block fits the VMA and the file and no page of the block
 * is cached yet, else order 0; add it to the page cache. Returns the folio with a reference for
 * the caller, the folio that is already there (referenced), or -1 when out of memory.
 */
export function shmemAllocFolio(
  k: Kernel,
  file: AddressSpace,
  index: number,
  vma: Vma,
  vpn: number,
): number {
  const pmdOrder = k.geo.pmdOrder;
  const nr = k.geo.ptrsPerPte;
  let orders = shmemAllowableHugeOrders(k, file, vma, index, false) & (1 << pmdOrder);
  orders = thpVmaSuitableOrders(vma, vpn, orders);
  if (orders) {
    // shmem_suitable_orders: the aligned block must be inside the file and empty in the cache.
    const first = index - (index % nr);
    let empty = first + nr <= file.size;
    for (let i = first; empty && i < first + nr; i++) if (file.cache[i] !== NONE) empty = false;
    if (empty) {
      const folio = k.allocFolio(pmdOrder);
      if (folio !== NONE) {
        k.stats.mthpStat(pmdOrder, 'shmem_alloc');
        addToPageCache(k, file, folio, first);
        return folio;
      }
      k.stats.mthpStat(pmdOrder, 'shmem_fallback');
    }
  }
  const folio = k.allocFolio(0);
  if (folio === NONE) return NONE;
  if (!addToPageCache(k, file, folio, index)) {
    k.folioPut(folio);
    const head = file.cache[index];
    k.folioGet(head);
    return head;
  }
  return folio;
}
