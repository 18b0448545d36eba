// GUP slow (__get_user_pages, follow_page_mask): under the mmap read lock, walk to the PTE with
// the PTE table mapped and locked (pte_offset_map_lock), take a reference on the page; when there
// is no page (or no write permission), fault it in with handle_mm_fault and look again.

import { handleMmFault } from '../mm/fault.ts';
import { type Kernel, NO_PFN } from '../mm/kernel.ts';
import { levelIndex, pmdTableOf, pteOffsetMapLock, pteUnmapUnlock } from '../mm/pagewalk.ts';
import { B_WRITE, E_PRESENT, E_TYPE_MASK, PMD } from '../mm/pgtable.ts';
import { L_MMAP_READ, type Step, lock, unlock } from '../mm/step.ts';
import type { Mm } from '../mm/vma.ts';

/** get_user_pages for one page: the pfn with a reference taken, or NO_PFN. */
export function* gupSlow(k: Kernel, mm: Mm, vpn: number, write: boolean): Step<number> {
  yield lock(L_MMAP_READ, mm.id);
  let pfn = NO_PFN;
  for (let attempt = 0; attempt < 4 && pfn === NO_PFN; attempt++) {
    const vma = mm.findVma(vpn);
    if (!vma) break;
    // follow_page_pte
    const pmdT = pmdTableOf(k, mm, vpn);
    const pteT = pmdT ? ((yield pteOffsetMapLock(k, pmdT, levelIndex(k, vpn, PMD))) as number) : 0;
    if (pteT) {
      const i = vpn % k.geo.ptrsPerPte;
      const bits = k.pt.pte.getBits(pteT, i);
      if ((bits & E_TYPE_MASK) === E_PRESENT && (!write || bits & B_WRITE)) {
        pfn = k.pt.pte.getVal(pteT, i);
        k.folioGet(k.folios.headOf(pfn));
      }
      yield* pteUnmapUnlock(pteT);
    }
    // faultin_page
    if (pfn === NO_PFN) yield handleMmFault(k, vma, vpn, write, false);
  }
  yield unlock(L_MMAP_READ, mm.id);
  return pfn;
}
