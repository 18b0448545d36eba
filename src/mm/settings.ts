// The THP tunables behind /sys/kernel/mm/transparent_hugepage (mm/huge_memory.c,
// mm/khugepaged.c). The model reads these fields; sysfs.ts parses and prints them.

import type { Geometry } from './geometry.ts';

export type GlobalEnabled = 'always' | 'madvise' | 'never';
export type OrderEnabled = 'always' | 'inherit' | 'madvise' | 'never';
export type Defrag = 'always' | 'defer' | 'defer+madvise' | 'madvise' | 'never';

export const GLOBAL_ENABLED: readonly GlobalEnabled[] = ['always', 'madvise', 'never'];
export const ORDER_ENABLED: readonly OrderEnabled[] = ['always', 'inherit', 'madvise', 'never'];
export const DEFRAG: readonly Defrag[] = ['always', 'defer', 'defer+madvise', 'madvise', 'never'];

/** shmem_enabled (shmem_huge): the tmpfs huge= values plus the two sysfs-only overrides. */
export type ShmemEnabled = 'always' | 'within_size' | 'advise' | 'never' | 'deny' | 'force';
/** A tmpfs mount's huge= option (SHMEM_SB()->huge). */
export type ShmemHuge = 'always' | 'within_size' | 'advise' | 'never';
/** hugepages-<size>kB/shmem_enabled (anonymous shmem, per size). */
export type ShmemOrderEnabled = 'always' | 'inherit' | 'within_size' | 'advise' | 'never';

/** In the order shmem_enabled_show() prints them. */
export const SHMEM_ENABLED: readonly ShmemEnabled[] = [
  'always',
  'within_size',
  'advise',
  'never',
  'deny',
  'force',
];
export const SHMEM_ORDER_ENABLED: readonly ShmemOrderEnabled[] = [
  'always',
  'inherit',
  'within_size',
  'advise',
  'never',
];

export interface ThpSettings {
  enabled: GlobalEnabled;
  defrag: Defrag;
  /** Huge zero page on PMD read faults (transparent_hugepage_use_zero_page). */
  useZeroPage: boolean;
  shrinkUnderused: boolean;
  /** huge_anon_orders_always / _madvise / _inherit as bitmasks of orders. */
  ordersAlways: number;
  ordersMadvise: number;
  ordersInherit: number;
  /** shmem_huge: /sys/kernel/mm/transparent_hugepage/shmem_enabled. */
  shmemEnabled: ShmemEnabled;
  /**
   * The huge= option of the internal shmem mount (memfd, SysV shm, MAP_SHARED|MAP_ANONYMOUS):
   * follows shmem_enabled except that deny and force leave it as it was.
   */
  shmemMntHuge: ShmemHuge;
  /** huge_shmem_orders_always / _inherit / _madvise / _within_size as bitmasks of orders. */
  shmemOrdersAlways: number;
  shmemOrdersInherit: number;
  shmemOrdersMadvise: number;
  shmemOrdersWithinSize: number;
  khugepaged: {
    pagesToScan: number;
    scanSleepMillisecs: number;
    allocSleepMillisecs: number;
    maxPtesNone: number;
    maxPtesSwap: number;
    maxPtesShared: number;
    /** khugepaged/defrag: GFP_TRANSHUGE (1) or GFP_TRANSHUGE_LIGHT (0). */
    defrag: boolean;
  };
}

/** Boot defaults for a geometry (CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS, PMD order inherits). */
export function defaultSettings(g: Geometry): ThpSettings {
  const nr = g.ptrsPerPte;
  return {
    enabled: 'always',
    defrag: 'madvise',
    useZeroPage: true,
    shrinkUnderused: true,
    ordersAlways: 0,
    ordersMadvise: 0,
    ordersInherit: 1 << g.pmdOrder,
    // CONFIG_TRANSPARENT_HUGEPAGE_SHMEM_HUGE_NEVER; the PMD size inherits shmem_enabled.
    shmemEnabled: 'never',
    shmemMntHuge: 'never',
    shmemOrdersAlways: 0,
    shmemOrdersInherit: 1 << g.pmdOrder,
    shmemOrdersMadvise: 0,
    shmemOrdersWithinSize: 0,
    khugepaged: {
      pagesToScan: nr * 8,
      scanSleepMillisecs: 10000,
      allocSleepMillisecs: 60000,
      maxPtesNone: nr - 1,
      maxPtesSwap: nr / 8,
      maxPtesShared: nr / 2,
      defrag: true,
    },
  };
}

/** The mode of one order, derived from the three masks. */
export function orderMode(s: ThpSettings, order: number): OrderEnabled {
  const bit = 1 << order;
  if (s.ordersAlways & bit) return 'always';
  if (s.ordersInherit & bit) return 'inherit';
  if (s.ordersMadvise & bit) return 'madvise';
  return 'never';
}

export function setOrderMode(s: ThpSettings, order: number, mode: OrderEnabled): void {
  const bit = 1 << order;
  s.ordersAlways &= ~bit;
  s.ordersInherit &= ~bit;
  s.ordersMadvise &= ~bit;
  if (mode === 'always') s.ordersAlways |= bit;
  else if (mode === 'inherit') s.ordersInherit |= bit;
  else if (mode === 'madvise') s.ordersMadvise |= bit;
}

/** hugepage_enabled() (7.2) / hugepage_pmd_enabled() (6.18): whether khugepaged has work. */
export function anyOrderEnabled(s: ThpSettings, onlyOrder?: number): boolean {
  let mask = s.ordersAlways | s.ordersMadvise | (s.enabled !== 'never' ? s.ordersInherit : 0);
  if (onlyOrder !== undefined) mask &= 1 << onlyOrder;
  return mask !== 0;
}

/** The mode of one order of hugepages-<size>kB/shmem_enabled. */
export function shmemOrderMode(s: ThpSettings, order: number): ShmemOrderEnabled {
  const bit = 1 << order;
  if (s.shmemOrdersAlways & bit) return 'always';
  if (s.shmemOrdersInherit & bit) return 'inherit';
  if (s.shmemOrdersWithinSize & bit) return 'within_size';
  if (s.shmemOrdersMadvise & bit) return 'advise';
  return 'never';
}

export function setShmemOrderMode(s: ThpSettings, order: number, mode: ShmemOrderEnabled): void {
  const bit = 1 << order;
  s.shmemOrdersAlways &= ~bit;
  s.shmemOrdersInherit &= ~bit;
  s.shmemOrdersWithinSize &= ~bit;
  s.shmemOrdersMadvise &= ~bit;
  if (mode === 'always') s.shmemOrdersAlways |= bit;
  else if (mode === 'inherit') s.shmemOrdersInherit |= bit;
  else if (mode === 'within_size') s.shmemOrdersWithinSize |= bit;
  else if (mode === 'advise') s.shmemOrdersMadvise |= bit;
}

/**
 * MAX_PAGECACHE_ORDER: the PMD order, capped at what the xarray can split (2 * XA_CHUNK_SHIFT - 1
 * = 11). So arm64 with 64K pages has no PMD-sized (512 MiB) page-cache folios at all.
 */
export function maxPagecacheOrder(g: Geometry): number {
  return Math.min(11, g.pmdOrder);
}

/** THP_ORDERS_ALL_FILE_DEFAULT as a bitmask: orders 1..MAX_PAGECACHE_ORDER. */
export function fileOrders(g: Geometry): number {
  let mask = 0;
  for (let o = 1; o <= maxPagecacheOrder(g); o++) mask |= 1 << o;
  return mask;
}
