// Walking and populating the four levels for one address: pgd_offset .. pte_offset, __pud_alloc,
// __pmd_alloc and pmd_install. Lookups that race with installers are yielded as unlocked reads.

import type { Kernel } from './kernel.ts';
import {
  E_NONE,
  E_TABLE,
  E_TYPE_MASK,
  PGD,
  PMD,
  PTE,
  PUD,
  T_LINKED,
  type TableLevel,
} from './pgtable.ts';
import {
  L_PTE_LOCK,
  L_RCU,
  L_PAGE_TABLE_LOCK,
  L_PMD_LOCK,
  S_PGD_ENTRY,
  S_PMD_ENTRY,
  S_PUD_ENTRY,
  type Step,
  lock,
  readShared,
  writeShared,
  unlock,
} from './step.ts';
import type { Mm } from './vma.ts';

/**
 * Index of vpn in its table at a level. The PMD number (vpn / PTRS_PER_PTE) fits in 31 bits for
 * every geometry, so the upper levels come from shifts of it.
 */
export function levelIndex(k: Kernel, vpn: number, level: number): number {
  const g = k.geo;
  const ptrs = g.ptrsPerPte;
  const pmdNo = Math.floor(vpn / ptrs);
  if (level === PTE) return vpn - pmdNo * ptrs;
  const b = g.levelBits;
  if (level === PMD) return pmdNo & (g.entries[PMD] - 1);
  if (level === PUD) return (pmdNo >>> b[PMD]) & (g.entries[PUD] - 1);
  return (pmdNo >>> (b[PMD] + b[PUD])) & (g.entries[PGD] - 1);
}

/** Location id of an entry, for shared-access events. */
export function entryLoc(t: TableLevel, id: number, idx: number): number {
  return id * t.entriesPerTable + idx;
}

/** PUD table for vpn, or 0 (no allocation). Plain read: for reports and invariant checks. */
export function pudTableOf(k: Kernel, mm: Mm, vpn: number): number {
  const pgd = k.pt.pgd;
  const i = levelIndex(k, vpn, PGD);
  return (pgd.getBits(mm.pgd, i) & E_TYPE_MASK) === E_TABLE ? pgd.getVal(mm.pgd, i) : 0;
}

/** PMD table for vpn, or 0. */
export function pmdTableOf(k: Kernel, mm: Mm, vpn: number): number {
  const pud = pudTableOf(k, mm, vpn);
  if (!pud) return 0;
  const t = k.pt.pud;
  const i = levelIndex(k, vpn, PUD);
  return (t.getBits(pud, i) & E_TYPE_MASK) === E_TABLE ? t.getVal(pud, i) : 0;
}

/** __pud_alloc / __pmd_alloc: install a missing lower table under mm->page_table_lock. */
function* allocLower(
  k: Kernel,
  mm: Mm,
  upper: TableLevel,
  lower: TableLevel,
  table: number,
  idx: number,
  cls: number,
): Step<number> {
  yield readShared(cls, entryLoc(upper, table, idx));
  if ((upper.getBits(table, idx) & E_TYPE_MASK) === E_TABLE) return upper.getVal(table, idx);
  const fresh = lower.alloc(mm.id);
  if (lower.level === PMD) k.pt.syncDeposit();
  yield lock(L_PAGE_TABLE_LOCK, mm.id);
  let result: number;
  if ((upper.getBits(table, idx) & E_TYPE_MASK) === E_NONE) {
    upper.set(table, idx, fresh, E_TABLE);
    lower.state[fresh] = T_LINKED;
    result = fresh;
  } else {
    // Someone else installed one while we allocated: ours goes back.
    lower.free(fresh);
    result = upper.getVal(table, idx);
  }
  yield unlock(L_PAGE_TABLE_LOCK, mm.id);
  return result;
}

/** pud_alloc + pmd_alloc: the PMD table covering vpn, creating the levels above it. */
export function* pmdAlloc(k: Kernel, mm: Mm, vpn: number): Step<number> {
  const pt = k.pt;
  const gi = levelIndex(k, vpn, PGD);
  yield readShared(S_PGD_ENTRY, entryLoc(pt.pgd, mm.pgd, gi));
  const pud =
    pt.pgd.type(mm.pgd, gi) === E_TABLE
      ? pt.pgd.getVal(mm.pgd, gi)
      : ((yield allocLower(k, mm, pt.pgd, pt.pud, mm.pgd, gi, S_PGD_ENTRY)) as number);
  const ui = levelIndex(k, vpn, PUD);
  yield readShared(S_PUD_ENTRY, entryLoc(pt.pud, pud, ui));
  return pt.pud.type(pud, ui) === E_TABLE
    ? pt.pud.getVal(pud, ui)
    : ((yield allocLower(k, mm, pt.pud, pt.pmd, pud, ui, S_PUD_ENTRY)) as number);
}

/** pmd_install: link a PTE table under the PMD lock unless one appeared meanwhile. */
export function* pteAlloc(k: Kernel, mm: Mm, pmdTable: number, pmdIdx: number): Step<number> {
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  const fresh = pte.alloc(mm.id);
  yield lock(L_PMD_LOCK, pmdTable);
  let result = 0;
  const type = pmd.getBits(pmdTable, pmdIdx) & E_TYPE_MASK;
  // The recheck under the lock: another thread may have installed a table since the lockless
  // read ('pmd-install-no-recheck' publishes anyway).
  if (type === E_NONE || (type === E_TABLE && k.bugs.has('pmd-install-no-recheck'))) {
    yield writeShared(S_PMD_ENTRY, entryLoc(pmd, pmdTable, pmdIdx));
    pmd.set(pmdTable, pmdIdx, fresh, E_TABLE);
    pte.state[fresh] = T_LINKED;
    result = fresh;
  } else if (type === E_TABLE) result = pmd.getVal(pmdTable, pmdIdx);
  yield unlock(L_PMD_LOCK, pmdTable);
  if (result !== fresh) pte.free(fresh);
  return result;
}

/**
 * pte_offset_map_lock: under RCU, read the PMD again, lock the PTE table it points to and check
 * that it still does (pmd_same). Returns the table, locked and with RCU held, or 0 (no table any
 * more: the caller refaults). Undo with pteUnmapUnlock.
 */
export function* pteOffsetMapLock(k: Kernel, pmdTable: number, pmdIdx: number): Step<number> {
  const pmd = k.pt.pmd;
  yield lock(L_RCU, 0);
  yield readShared(S_PMD_ENTRY, entryLoc(pmd, pmdTable, pmdIdx));
  if ((pmd.getBits(pmdTable, pmdIdx) & E_TYPE_MASK) !== E_TABLE) {
    yield unlock(L_RCU, 0);
    return 0;
  }
  const pteT = pmd.getVal(pmdTable, pmdIdx);
  yield lock(L_PTE_LOCK, pteT);
  if (
    (pmd.getBits(pmdTable, pmdIdx) & E_TYPE_MASK) !== E_TABLE ||
    pmd.getVal(pmdTable, pmdIdx) !== pteT
  ) {
    yield unlock(L_PTE_LOCK, pteT);
    yield unlock(L_RCU, 0);
    return 0;
  }
  return pteT;
}

/**
 * pte_offset_map_lock for a table the caller found earlier: locked (with RCU) only if the PMD
 * still points to it; otherwise nothing is held and the caller treats its entry as changed.
 */
export function* pteRelock(
  k: Kernel,
  pmdTable: number,
  pmdIdx: number,
  pteT: number,
): Step<boolean> {
  const t = (yield pteOffsetMapLock(k, pmdTable, pmdIdx)) as number;
  if (t === pteT) return true;
  if (t) yield* pteUnmapUnlock(t);
  return false;
}

/** pte_unmap_unlock. */
export function* pteUnmapUnlock(pteT: number): Step<void> {
  yield unlock(L_PTE_LOCK, pteT);
  yield unlock(L_RCU, 0);
}

/** Reads the PMD entry locklessly (pmdp_get_lockless) and returns its bits. */
export function* pmdReadLockless(k: Kernel, pmdTable: number, pmdIdx: number): Step<number> {
  yield readShared(S_PMD_ENTRY, entryLoc(k.pt.pmd, pmdTable, pmdIdx));
  return k.pt.pmd.getBits(pmdTable, pmdIdx);
}
