// find_pmd_or_thp_or_none: where the PMD range stands before a scan or a collapse.

import type { Kernel } from '../mm/kernel.ts';
import { entryLoc, levelIndex } from '../mm/pagewalk.ts';
import { E_NONE, E_PRESENT, E_TABLE, E_TYPE_MASK, PGD, PMD, PUD } from '../mm/pgtable.ts';
import { S_PGD_ENTRY, S_PMD_ENTRY, S_PUD_ENTRY, type Step, readShared } from '../mm/step.ts';
import type { Mm } from '../mm/vma.ts';
import { noPteTable, type ScanResult } from './scan-result.ts';

export interface PmdLookup {
  result: ScanResult;
  /** PMD table and index (0 when there is no PMD table). */
  pmdT: number;
  pmdI: number;
}

/** Reads each level locklessly, as the kernel does under the mmap read lock. */
export function* findPmdOrThpOrNone(k: Kernel, mm: Mm, vpn: number): Step<PmdLookup> {
  const pt = k.pt;
  const gi = levelIndex(k, vpn, PGD);
  yield readShared(S_PGD_ENTRY, entryLoc(pt.pgd, mm.pgd, gi));
  const none = { result: noPteTable(k.profile, false), pmdT: 0, pmdI: 0 };
  if (pt.pgd.type(mm.pgd, gi) !== E_TABLE) return none;
  const pud = pt.pgd.getVal(mm.pgd, gi);
  const ui = levelIndex(k, vpn, PUD);
  yield readShared(S_PUD_ENTRY, entryLoc(pt.pud, pud, ui));
  if (pt.pud.type(pud, ui) !== E_TABLE) return none;
  const pmdT = pt.pud.getVal(pud, ui);
  const pmdI = levelIndex(k, vpn, PMD);
  yield readShared(S_PMD_ENTRY, entryLoc(pt.pmd, pmdT, pmdI));
  const type = pt.pmd.getBits(pmdT, pmdI) & E_TYPE_MASK;
  if (type === E_NONE) return { result: noPteTable(k.profile, true), pmdT, pmdI };
  if (type === E_PRESENT) return { result: 'SCAN_PMD_MAPPED', pmdT, pmdI };
  if (type !== E_TABLE) return { result: noPteTable(k.profile, false), pmdT, pmdI };
  return { result: 'SCAN_SUCCEED', pmdT, pmdI };
}
