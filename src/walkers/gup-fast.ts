// GUP-fast (gup_fast): walk the page tables of the current mm with interrupts off and no lock,
// take a speculative reference on the folio, then recheck that the PMD and the PTE still say the
// same. Interrupts off keep the tables alive: a freeing CPU's TLB-flush IPI, or its
// tlb_remove_table_sync_one, waits until this walk is over.

import { type Kernel, NO_PFN } from '../mm/kernel.ts';
import { entryLoc, levelIndex } from '../mm/pagewalk.ts';
import { B_WRITE, E_PRESENT, E_TABLE, E_TYPE_MASK, PGD, PMD, PUD } from '../mm/pgtable.ts';
import {
  L_IRQ_OFF,
  S_FOLIO,
  S_PGD_ENTRY,
  S_PMD_ENTRY,
  S_PTE_ENTRY,
  S_PUD_ENTRY,
  type Step,
  lock,
  readShared,
  unlock,
  writeShared,
} from '../mm/step.ts';
import type { Mm } from '../mm/vma.ts';

/**
 * gup_fast for one page: the pfn with a reference taken, or NO_PFN when the walk must fall back
 * to the slow path (not mapped, not writable, or changed under it).
 */
export function* gupFast(k: Kernel, mm: Mm, vpn: number, write: boolean): Step<number> {
  yield lock(L_IRQ_OFF, 0);
  const pfn = yield* walk(k, mm, vpn, write);
  yield unlock(L_IRQ_OFF, 0);
  return pfn;
}

function* walk(k: Kernel, mm: Mm, vpn: number, write: boolean): Step<number> {
  const pt = k.pt;
  const gi = levelIndex(k, vpn, PGD);
  yield readShared(S_PGD_ENTRY, entryLoc(pt.pgd, mm.pgd, gi));
  if (pt.pgd.type(mm.pgd, gi) !== E_TABLE) return NO_PFN;
  const pud = pt.pgd.getVal(mm.pgd, gi);
  const ui = levelIndex(k, vpn, PUD);
  yield readShared(S_PUD_ENTRY, entryLoc(pt.pud, pud, ui));
  if (pt.pud.type(pud, ui) !== E_TABLE) return NO_PFN;
  const pmdT = pt.pud.getVal(pud, ui);
  const pmdI = levelIndex(k, vpn, PMD);
  // pmdp_get_lockless: one read, the walk goes on from the copy.
  const pmdLoc = entryLoc(pt.pmd, pmdT, pmdI);
  yield readShared(S_PMD_ENTRY, pmdLoc);
  const pmdBits = pt.pmd.bits[pmdLoc];
  let pmdVal = pt.pmd.val[pmdLoc];
  if ((pmdBits & E_TYPE_MASK) !== E_TABLE) return NO_PFN;
  if (k.bugs.has('gup-fast-reread-pmd')) {
    // Rule 6's bug: the table pointer taken from a second read, not from the checked copy.
    yield readShared(S_PMD_ENTRY, pmdLoc);
    pmdVal = pt.pmd.val[pmdLoc];
  }
  const pteLoc = entryLoc(pt.pte, pmdVal, vpn % k.geo.ptrsPerPte);
  yield readShared(S_PTE_ENTRY, pteLoc);
  const bits = pt.pte.bits[pteLoc];
  const pfn = pt.pte.val[pteLoc];
  if ((bits & E_TYPE_MASK) !== E_PRESENT || (write && !(bits & B_WRITE))) return NO_PFN;
  const head = k.folios.headOf(pfn);
  // try_grab_folio: a folio whose last reference is gone cannot be grabbed.
  yield writeShared(S_FOLIO, head);
  if (k.folios.refcount[head] === 0) return NO_PFN;
  k.folioGet(head);
  if (!k.bugs.has('no-gup-recheck')) {
    // The tables may have changed since they were read: drop the reference if so.
    yield readShared(S_PMD_ENTRY, pmdLoc);
    yield readShared(S_PTE_ENTRY, pteLoc);
    if (
      pt.pmd.bits[pmdLoc] !== pmdBits ||
      pt.pmd.val[pmdLoc] !== pmdVal ||
      pt.pte.bits[pteLoc] !== bits ||
      pt.pte.val[pteLoc] !== pfn
    ) {
      k.folioPut(head);
      return NO_PFN;
    }
  }
  return pfn;
}
