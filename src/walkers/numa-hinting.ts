// change_prot_numa on a huge PMD (change_huge_pmd with MM_CP_PROT_NUMA): NUMA balancing makes a
// THP's PMD PROT_NONE so that the next access faults and tells where the memory is used. It runs
// under the mmap read lock only, next to faults and MADV_DONTNEED, so the PMD must never pass
// through none on the way (pmdp_invalidate_ad keeps it "huge but invalid").

import type { Kernel } from '../mm/kernel.ts';
import { entryLoc, levelIndex, pmdTableOf } from '../mm/pagewalk.ts';
import { B_PROTNONE, E_INVALID, E_PRESENT, E_TYPE_MASK, PMD } from '../mm/pgtable.ts';
import {
  L_MMAP_READ,
  L_PMD_LOCK,
  S_PMD_ENTRY,
  type Step,
  lock,
  readShared,
  tlbFlushRange,
  unlock,
  writeShared,
} from '../mm/step.ts';
import type { Mm } from '../mm/vma.ts';

/** Make the huge PMD mapping vpn PROT_NONE for NUMA hinting; false if there is none. */
export function* changeHugePmdNuma(k: Kernel, mm: Mm, vpn: number): Step<boolean> {
  const pmd = k.pt.pmd;
  yield lock(L_MMAP_READ, mm.id);
  const pmdT = pmdTableOf(k, mm, vpn);
  const pmdI = levelIndex(k, vpn, PMD);
  let done = false;
  if (pmdT) {
    const loc = entryLoc(pmd, pmdT, pmdI);
    yield readShared(S_PMD_ENTRY, loc);
    if (pmd.type(pmdT, pmdI) === E_PRESENT) {
      yield lock(L_PMD_LOCK, pmdT);
      const bits = pmd.getBits(pmdT, pmdI);
      const val = pmd.getVal(pmdT, pmdI);
      if ((bits & E_TYPE_MASK) === E_PRESENT && !(bits & B_PROTNONE)) {
        // The 2017 code cleared the entry first ('numa-pmd-via-none'), the fix invalidates it.
        yield writeShared(S_PMD_ENTRY, loc);
        if (k.bugs.has('numa-pmd-via-none')) pmd.clear(pmdT, pmdI);
        else pmd.set(pmdT, pmdI, val, (bits & ~E_TYPE_MASK) | E_INVALID);
        yield tlbFlushRange(mm.id);
        yield writeShared(S_PMD_ENTRY, loc);
        pmd.set(pmdT, pmdI, val, bits | B_PROTNONE);
        done = true;
      }
      yield unlock(L_PMD_LOCK, pmdT);
    }
  }
  yield unlock(L_MMAP_READ, mm.id);
  return done;
}
