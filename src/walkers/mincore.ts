// A page-table walk under the mmap read lock that only looks (mincore, /proc/PID/pagemap, the
// memcg move-charge precharge walk): per PMD it reads the entry without a lock and skips none.
// The 2012 helper pmd_none_or_clear_bad also called a huge PMD "bad" and cleared it; a THP fault
// could turn the PMD huge between the walker's checks (CVE-2012-1179). The fix,
// pmd_trans_unstable, treats a huge or changing PMD as such and leaves it alone.

import type { Kernel } from '../mm/kernel.ts';
import { entryLoc, levelIndex, pmdTableOf } from '../mm/pagewalk.ts';
import { E_NONE, E_TABLE, PMD } from '../mm/pgtable.ts';
import {
  L_MMAP_READ,
  L_PMD_LOCK,
  S_PMD_ENTRY,
  S_PTE_ENTRY,
  type Step,
  lock,
  readShared,
  unlock,
  writeShared,
} from '../mm/step.ts';
import type { Mm } from '../mm/vma.ts';

/** Count the PMD ranges of [start, end) that map something (huge or a table). */
export function* mincoreWalk(k: Kernel, mm: Mm, start: number, end: number): Step<number> {
  const nr = k.geo.ptrsPerPte;
  const pmd = k.pt.pmd;
  let mapped = 0;
  // The mmap read lock keeps the VMAs, and so their page tables, in place (rule 1);
  // 'walk-without-mmap-lock' walks without it.
  const locked = !k.bugs.has('walk-without-mmap-lock');
  if (locked) yield lock(L_MMAP_READ, mm.id);
  for (let vpn = start; vpn < end; vpn += nr) {
    const pmdT = pmdTableOf(k, mm, vpn);
    if (!pmdT) continue;
    const pmdI = levelIndex(k, vpn, PMD);
    const loc = entryLoc(pmd, pmdT, pmdI);
    yield readShared(S_PMD_ENTRY, loc);
    let type = pmd.type(pmdT, pmdI);
    if (type !== E_NONE && type !== E_TABLE) {
      // pmd_trans_huge: a THP, counted whole.
      mapped++;
      continue;
    }
    if (k.bugs.has('pmd-clear-bad')) {
      // pmd_none_or_clear_bad reads the entry a second time: if a THP fault made it huge in
      // between, "not none and not a table" is taken for corruption and thrown away.
      yield readShared(S_PMD_ENTRY, loc);
      type = pmd.type(pmdT, pmdI);
      if (type !== E_NONE && type !== E_TABLE) {
        yield lock(L_PMD_LOCK, pmdT);
        yield writeShared(S_PMD_ENTRY, loc);
        pmd.clear(pmdT, pmdI);
        yield unlock(L_PMD_LOCK, pmdT);
        continue;
      }
    }
    if (type === E_NONE) continue;
    // A table: look at the PTEs (pte_offset_map), one read for the range.
    const pteT = pmd.getVal(pmdT, pmdI);
    yield readShared(S_PTE_ENTRY, pteT * k.pt.pte.entriesPerTable);
    mapped++;
  }
  if (locked) yield unlock(L_MMAP_READ, mm.id);
  return mapped;
}
