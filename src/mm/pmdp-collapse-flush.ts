// pmdp_collapse_flush: clear a PMD entry that points to a PTE table and flush the TLB range it
// mapped: the leaf entries and the paging-structure caches holding the PMD-to-table link (x86
// INVLPG and arm64 TLBI VAE1IS both drop the cached walk). Called with the PMD lock held;
// returns the detached table.

import type { Kernel } from './kernel.ts';
import { entryLoc } from './pagewalk.ts';
import { T_DETACHED } from './pgtable.ts';
import { S_PMD_ENTRY, type Step, tlbFlushTables, writeShared } from './step.ts';

export function* pmdpCollapseFlush(
  k: Kernel,
  mm: number,
  pmdT: number,
  pmdI: number,
): Step<number> {
  const pmd = k.pt.pmd;
  const pteT = pmd.getVal(pmdT, pmdI);
  yield writeShared(S_PMD_ENTRY, entryLoc(pmd, pmdT, pmdI));
  pmd.clear(pmdT, pmdI);
  k.pt.pte.state[pteT] = T_DETACHED;
  yield tlbFlushTables(mm);
  return pteT;
}
