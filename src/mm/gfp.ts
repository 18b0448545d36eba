// Allocation flags (include/linux/gfp_types.h) as a small bitmask: only the bits whose meaning
// the model has, and the masks the THP allocations are made with (GFP_TRANSHUGE_LIGHT,
// GFP_TRANSHUGE), chosen by the defrag modes as vma_thp_gfp_mask (mm/huge_memory.c) and
// alloc_hugepage_khugepaged_gfpmask (mm/khugepaged.c) choose them.
//
// What the bits do here: __GFP_DIRECT_RECLAIM lets a failed high-order allocation run direct
// compaction (compaction.ts) and retry once. __GFP_KSWAPD_RECLAIM would wake kswapd/kcompactd;
// the model has neither daemon, so it only records the intent. __GFP_NORETRY changes nothing
// because the model's slow path already gives up after one compaction (no direct reclaim, no
// compaction-priority escalation). __GFP_NOWARN and __GFP_MOVABLE are carried for fidelity.

import type { Kernel } from './kernel.ts';
import { VM_HUGEPAGE, type Vma } from './vma.ts';

/** The allocation may enter direct reclaim and direct compaction. */
export const __GFP_DIRECT_RECLAIM = 1 << 0;
/** The allocation may wake kswapd (and so kcompactd) when it dips below the low watermark. */
export const __GFP_KSWAPD_RECLAIM = 1 << 1;
/** Give up after one round of reclaim/compaction. */
export const __GFP_NORETRY = 1 << 2;
/** No allocation-failure warning. */
export const __GFP_NOWARN = 1 << 3;
/** The page can be migrated (GFP_HIGHUSER_MOVABLE). */
export const __GFP_MOVABLE = 1 << 4;

export const __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;

/** GFP_TRANSHUGE_LIGHT: movable, quiet, and neither direct reclaim nor kswapd. */
export const GFP_TRANSHUGE_LIGHT = (__GFP_MOVABLE | __GFP_NOWARN) & ~__GFP_RECLAIM;
/** GFP_TRANSHUGE: GFP_TRANSHUGE_LIGHT that may reclaim and compact directly. */
export const GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM;

const NAMES: ReadonlyArray<[number, string]> = [
  [__GFP_DIRECT_RECLAIM, '__GFP_DIRECT_RECLAIM'],
  [__GFP_KSWAPD_RECLAIM, '__GFP_KSWAPD_RECLAIM'],
  [__GFP_NORETRY, '__GFP_NORETRY'],
  [__GFP_NOWARN, '__GFP_NOWARN'],
  [__GFP_MOVABLE, '__GFP_MOVABLE'],
];

/** The flags of a mask as the tracepoints print them (show_gfp_flags, composites first). */
export function gfpString(gfp: number): string {
  if (gfp === GFP_TRANSHUGE) return 'GFP_TRANSHUGE';
  if (gfp === GFP_TRANSHUGE_LIGHT) return 'GFP_TRANSHUGE_LIGHT';
  const out: string[] = [];
  let rest = gfp;
  if ((rest & GFP_TRANSHUGE) === GFP_TRANSHUGE) {
    out.push('GFP_TRANSHUGE');
    rest &= ~GFP_TRANSHUGE;
  } else if ((rest & GFP_TRANSHUGE_LIGHT) === GFP_TRANSHUGE_LIGHT) {
    out.push('GFP_TRANSHUGE_LIGHT');
    rest &= ~GFP_TRANSHUGE_LIGHT;
  }
  for (const [bit, name] of NAMES) if (rest & bit) out.push(name);
  return out.length ? out.join('|') : '0';
}

/** gfpflags_allow_blocking for the purpose the model has: may it compact directly. */
export function gfpDirectReclaim(gfp: number): boolean {
  return (gfp & __GFP_DIRECT_RECLAIM) !== 0;
}

/**
 * vma_thp_gfp_mask: the mask of an anonymous THP (PMD or mTHP) fault allocation, from the
 * global defrag mode and whether the VMA is madvised (VM_HUGEPAGE).
 */
export function vmaThpGfpMask(k: Kernel, vma: Vma | null): number {
  const madvised = vma !== null && (vma.flags & VM_HUGEPAGE) !== 0;
  switch (k.settings.defrag) {
    case 'always':
      // Synchronous compaction; a VMA nobody asked THPs for gives up sooner.
      return GFP_TRANSHUGE | (madvised ? 0 : __GFP_NORETRY);
    case 'defer':
      // Wake kswapd/kcompactd and fail at once.
      return GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM;
    case 'defer+madvise':
      return GFP_TRANSHUGE_LIGHT | (madvised ? __GFP_DIRECT_RECLAIM : __GFP_KSWAPD_RECLAIM);
    case 'madvise':
      return GFP_TRANSHUGE_LIGHT | (madvised ? __GFP_DIRECT_RECLAIM : 0);
    case 'never':
      return GFP_TRANSHUGE_LIGHT;
  }
}

/** alloc_hugepage_khugepaged_gfpmask: khugepaged/defrag picks direct compaction or not. */
export function khugepagedGfpMask(k: Kernel): number {
  return k.settings.khugepaged.defrag ? GFP_TRANSHUGE : GFP_TRANSHUGE_LIGHT;
}

/** alloc_charge_folio's mask: khugepaged follows khugepaged/defrag, MADV_COLLAPSE always compacts. */
export function collapseGfpMask(k: Kernel, isKhugepaged: boolean): number {
  return isKhugepaged ? khugepagedGfpMask(k) : GFP_TRANSHUGE;
}
