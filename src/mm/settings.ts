// The THP tunables behind /sys/kernel/mm/transparent_hugepage (mm/huge_memory.c,
// mm/khugepaged.c). The model reads these fields; sysfs.ts parses and prints them.

import type { Geometry } from './geometry.ts';

export type GlobalEnabled = 'always' | 'madvise' | 'never';
export type OrderEnabled = 'always' | 'inherit' | 'madvise' | 'never';
export type Defrag = 'always' | 'defer' | 'defer+madvise' | 'madvise' | 'never';

export const GLOBAL_ENABLED: readonly GlobalEnabled[] = ['always', 'madvise', 'never'];
export const ORDER_ENABLED: readonly OrderEnabled[] = ['always', 'inherit', 'madvise', 'never'];
export const DEFRAG: readonly Defrag[] = ['always', 'defer', 'defer+madvise', 'madvise', 'never'];

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
