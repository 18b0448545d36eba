// UFFDIO_COPY (mfill_atomic for one anonymous page): under the mmap read lock, find or create the
// PTE table, allocate and fill a page, then map it under the PTE lock if the entry is still none
// (-EEXIST otherwise). Retraction or reclaim may take the table away between the allocation and
// the map: pte_offset_map_lock sees that and the copy is retried.

import { mapAnonFolioPtes } from '../mm/fault.ts';
import { type Kernel, NO_PFN } from '../mm/kernel.ts';
import {
  levelIndex,
  pmdAlloc,
  pteAlloc,
  pteOffsetMapLock,
  pteUnmapUnlock,
} from '../mm/pagewalk.ts';
import { E_NONE, PMD } from '../mm/pgtable.ts';
import { anonVmaPrepare } from '../mm/anon-vma.ts';
import { L_MMAP_READ, type Step, lock, unlock } from '../mm/step.ts';
import type { Mm } from '../mm/vma.ts';

/** 0, 'EEXIST' (something is mapped there) or 'ENOMEM'; the page holds `value`. */
export function* uffdCopy(
  k: Kernel,
  mm: Mm,
  vpn: number,
  value: number,
): Step<0 | 'EEXIST' | 'ENOMEM' | 'ENOENT'> {
  yield lock(L_MMAP_READ, mm.id);
  const vma = mm.findVma(vpn);
  let r: 0 | 'EEXIST' | 'ENOMEM' | 'ENOENT' = 'ENOENT';
  if (vma && vma.isAnonymous) {
    yield* anonVmaPrepare(k, vma);
    const folio = k.allocFolio(0);
    if (folio === NO_PFN) r = 'ENOMEM';
    else {
      k.folios.data[folio] = value;
      const pmdT = (yield pmdAlloc(k, mm, vpn)) as number;
      const pmdI = levelIndex(k, vpn, PMD);
      const i = vpn % k.geo.ptrsPerPte;
      // The table may be reclaimed between pte_alloc and the lock: allocate it again (-EAGAIN).
      let t = 0;
      for (let attempt = 0; attempt < 4 && !t; attempt++) {
        if (k.pt.pmd.type(pmdT, pmdI) === E_NONE) yield pteAlloc(k, mm, pmdT, pmdI);
        t = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
      }
      if (t && k.pt.pte.type(t, i) === E_NONE) {
        mapAnonFolioPtes(k, vma, vpn, folio, t, i);
        r = 0;
      } else {
        k.folioPut(folio);
        r = 'EEXIST';
      }
      if (t) yield* pteUnmapUnlock(t);
    }
  }
  yield unlock(L_MMAP_READ, mm.id);
  return r;
}
