// rmap_walk_anon with page_vma_mapped_walk: visit every PTE that maps a small anonymous folio
// (or holds a migration entry for it), under the anon_vma read lock and without any mmap or VMA
// lock. The PMD is read locklessly first: a PMD that is not a table makes the walk skip the
// whole PMD range, which is why nobody may leave a transient pmd_none behind for it to find.

import { PG_LOCKED } from '../mm/folio.ts';
import type { Kernel } from '../mm/kernel.ts';
import {
  entryLoc,
  levelIndex,
  pmdTableOf,
  pteOffsetMapLock,
  pteUnmapUnlock,
} from '../mm/pagewalk.ts';
import {
  B_WRITE,
  B_YOUNG,
  E_MIGRATION,
  E_NONE,
  E_PRESENT,
  E_TABLE,
  E_TYPE_MASK,
  PMD,
} from '../mm/pgtable.ts';
import { rmapAddPtes, rmapRemovePtes } from '../mm/rmap.ts';
import {
  L_ANON_VMA_READ,
  S_FOLIO,
  S_PMD_ENTRY,
  type Step,
  lock,
  readShared,
  tlbFlushRange,
  unlock,
  writeShared,
} from '../mm/step.ts';
import type { Vma } from '../mm/vma.ts';

/** What a walk does with one PTE it found (under the PTE lock). */
type Visit = (k: Kernel, vma: Vma, pteT: number, idx: number, pfn: number) => Step<void>;

/**
 * rmap_walk_anon for the order-0 anonymous folio `pfn`: for each VMA of its anon_vma, find the
 * address, read the PMD locklessly, skip the range unless it points to a table, then take the
 * PTE lock, recheck the PMD (pmd_same) and visit the entry if it matches. Returns the entries
 * visited.
 */
export function* rmapWalkAnon(
  k: Kernel,
  pfn: number,
  match: 'present' | 'migration',
  visit: Visit,
): Step<number> {
  const f = k.folios;
  const av = k.anonVmas.get(f.mapping[pfn]);
  if (!av) return 0;
  const root = av.root.id;
  const nr = k.geo.ptrsPerPte;
  let visited = 0;
  yield lock(L_ANON_VMA_READ, root);
  // anon_vma_interval_tree_foreach: by first page offset; equal offsets in insertion order.
  for (const vma of [...av.vmas].sort((a, b) => a.pgoff - b.pgoff || a.id - b.id)) {
    const vpn = vma.start + (f.index[pfn] - vma.pgoff);
    if (vpn < vma.start || vpn >= vma.end) continue;
    const pmdT = pmdTableOf(k, vma.mm, vpn);
    if (!pmdT) continue;
    const pmdI = levelIndex(k, vpn, PMD);
    yield readShared(S_PMD_ENTRY, entryLoc(k.pt.pmd, pmdT, pmdI));
    if ((k.pt.pmd.getBits(pmdT, pmdI) & E_TYPE_MASK) !== E_TABLE) continue;
    // map_pte: pte_offset_map_lock (RCU, lock, pmd_same).
    const pteT = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
    if (!pteT) continue;
    const idx = vpn % nr;
    const bits = k.pt.pte.getBits(pteT, idx);
    const want = match === 'present' ? E_PRESENT : E_MIGRATION;
    const type = bits & E_TYPE_MASK;
    const found =
      (type === want && k.pt.pte.getVal(pteT, idx) === pfn) ||
      // Restoring into an empty entry populates it under the rmap lock alone (rule 2's bug).
      (match === 'migration' && type === E_NONE && k.bugs.has('migration-restore-populates'));
    if (found) {
      yield* visit(k, vma, pteT, idx, pfn);
      visited++;
    }
    yield* pteUnmapUnlock(pteT);
  }
  yield unlock(L_ANON_VMA_READ, root);
  return visited;
}

/** try_to_migrate_one: replace the PTE by a migration entry and drop the mapping. */
function* tryToMigrateOne(k: Kernel, vma: Vma, pteT: number, idx: number, pfn: number): Step<void> {
  const bits = k.pt.pte.getBits(pteT, idx);
  k.pt.pte.set(pteT, idx, pfn, E_MIGRATION | (bits & B_WRITE));
  yield tlbFlushRange(vma.mm.id);
  rmapRemovePtes(k, pfn, pfn, 1, vma);
  k.folioPut(pfn);
}

/** remove_migration_pte: map the folio again where the migration entry was. */
function* removeMigrationPte(
  k: Kernel,
  vma: Vma,
  pteT: number,
  idx: number,
  pfn: number,
): Step<void> {
  const write = k.pt.pte.getBits(pteT, idx) & B_WRITE;
  k.folioGet(pfn);
  rmapAddPtes(k, pfn, pfn, 1, vma);
  k.pt.pte.set(pteT, idx, pfn, E_PRESENT | B_YOUNG | write);
  yield* [];
}

/**
 * migrate_pages for one order-0 anonymous folio, back onto itself: lock it, replace every mapping
 * by a migration entry (try_to_migrate), then restore them (remove_migration_ptes) and unlock.
 * Any mapping the second walk misses is a migration entry left behind.
 */
export function* migrateFolio(k: Kernel, pfn: number): Step<boolean> {
  const f = k.folios;
  // folio_trylock: khugepaged's isolation may hold it.
  yield writeShared(S_FOLIO, pfn);
  if (f.flags[pfn] & PG_LOCKED || f.refcount[pfn] === 0) return false;
  f.set(pfn, PG_LOCKED);
  k.folioGet(pfn); // the isolation reference
  yield* rmapWalkAnon(k, pfn, 'present', tryToMigrateOne);
  yield* rmapWalkAnon(k, pfn, 'migration', removeMigrationPte);
  yield writeShared(S_FOLIO, pfn);
  f.clear(pfn, PG_LOCKED);
  k.folioPut(pfn);
  return true;
}
