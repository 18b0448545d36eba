// MADV_GUARD_INSTALL for one page: a guard marker in the PTE makes every access fault with
// SIGSEGV. It runs under the mmap read lock, so retract_page_tables can run next to it; the VMA
// is flagged VM_MAYBE_GUARD before the first marker goes in, and retraction rechecks that flag
// under the PTE lock.

import type { Kernel } from '../mm/kernel.ts';
import {
  levelIndex,
  pmdAlloc,
  pteAlloc,
  pteOffsetMapLock,
  pteUnmapUnlock,
} from '../mm/pagewalk.ts';
import { E_MARKER, E_NONE, E_TABLE, MARKER_GUARD, PMD } from '../mm/pgtable.ts';
import { L_MMAP_READ, S_PMD_ENTRY, type Step, lock, readShared, unlock } from '../mm/step.ts';
import { type Mm, VM_MAYBE_GUARD } from '../mm/vma.ts';

/** Install a guard marker at vpn; true if it is there afterwards. */
export function* guardInstall(k: Kernel, mm: Mm, vpn: number): Step<boolean> {
  yield lock(L_MMAP_READ, mm.id);
  const vma = mm.findVma(vpn);
  let done = false;
  if (vma) {
    vma.flags |= VM_MAYBE_GUARD;
    const pmdT = (yield pmdAlloc(k, mm, vpn)) as number;
    const pmdI = levelIndex(k, vpn, PMD);
    yield readShared(S_PMD_ENTRY, pmdT * k.pt.pmd.entriesPerTable + pmdI);
    if (k.pt.pmd.type(pmdT, pmdI) === E_NONE) yield pteAlloc(k, mm, pmdT, pmdI);
    if (k.pt.pmd.type(pmdT, pmdI) === E_TABLE) {
      const t = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
      if (t) {
        const i = vpn % k.geo.ptrsPerPte;
        if (k.pt.pte.type(t, i) === E_NONE) k.pt.pte.set(t, i, MARKER_GUARD, E_MARKER);
        done = k.pt.pte.type(t, i) === E_MARKER;
        yield* pteUnmapUnlock(t);
      }
    }
  }
  yield unlock(L_MMAP_READ, mm.id);
  return done;
}
