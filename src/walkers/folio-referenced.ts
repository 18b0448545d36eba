// folio_referenced for a small anonymous folio, the rmap walk reclaim runs on every folio it
// looks at: for each mapping found by rmap_walk_anon (anon_vma read lock, no mmap or VMA lock),
// test and clear the young bit under the PTE lock (folio_referenced_one). x86 does not flush
// the TLB for it: a stale young bit only makes reclaim think the folio idle a little sooner.

import type { Kernel } from '../mm/kernel.ts';
import { B_YOUNG } from '../mm/pgtable.ts';
import { S_PTE_ENTRY, type Step, writeShared } from '../mm/step.ts';
import type { Vma } from '../mm/vma.ts';
import { rmapWalkAnon } from './rmap-walk.ts';

/** The number of mappings of `pfn` that were young (their young bit is now clear). */
export function* folioReferenced(k: Kernel, pfn: number): Step<number> {
  let young = 0;
  yield* rmapWalkAnon(k, pfn, 'present', function* (kk: Kernel, _v: Vma, pteT, idx) {
    const pte = kk.pt.pte;
    yield writeShared(S_PTE_ENTRY, pteT * pte.entriesPerTable + idx);
    const bits = pte.getBits(pteT, idx);
    if (bits & B_YOUNG) {
      young++;
      pte.set(pteT, idx, pte.getVal(pteT, idx), bits & ~B_YOUNG);
    }
  });
  return young;
}
