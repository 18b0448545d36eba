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
  rcuGracePeriod,
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

/** The PMD entry as one walker read it (the kernel's pmdval), to test with pmdSameLockless. */
export interface PmdVal {
  bits: number;
  val: number;
}

/**
 * __pte_offset_map: enter an RCU read section (which keeps a PTE table from being freed, see
 * pte_free_defer), read the PMD entry once without a lock (pmdp_get_lockless) and map the table
 * it points to. A PMD that is none, huge, a migration entry or being split maps nothing: RCU is
 * left and 0 returned. With `pmdval` the entry read is stored there (the kernel's pmdvalp).
 */
export function* pteOffsetMap(
  k: Kernel,
  pmdTable: number,
  pmdIdx: number,
  pmdval?: PmdVal,
): Step<number> {
  const pmd = k.pt.pmd;
  yield lock(L_RCU, 0);
  yield readShared(S_PMD_ENTRY, entryLoc(pmd, pmdTable, pmdIdx));
  const bits = pmd.getBits(pmdTable, pmdIdx);
  if ((bits & E_TYPE_MASK) !== E_TABLE) {
    yield unlock(L_RCU, 0);
    return 0;
  }
  const pteT = pmd.getVal(pmdTable, pmdIdx);
  if (pmdval) {
    pmdval.bits = bits;
    pmdval.val = pteT;
  }
  return pteT;
}

/**
 * pte_offset_map_rw_nolock: __pte_offset_map without taking the PTE lock. The caller takes the
 * table's lock itself and, before it changes anything, tests with pmdSameLockless that the PMD
 * still holds `pmdval` (the table may have been retracted or replaced in between).
 */
export function* pteOffsetMapRwNolock(
  k: Kernel,
  pmdTable: number,
  pmdIdx: number,
  pmdval: PmdVal,
): Step<number> {
  return yield* pteOffsetMap(k, pmdTable, pmdIdx, pmdval);
}

/** pmd_same(pmdval, pmdp_get_lockless(pmd)): read the PMD entry again and compare. */
export function* pmdSameLockless(
  k: Kernel,
  pmdTable: number,
  pmdIdx: number,
  pmdval: PmdVal,
): Step<boolean> {
  const pmd = k.pt.pmd;
  yield readShared(S_PMD_ENTRY, entryLoc(pmd, pmdTable, pmdIdx));
  return (
    pmd.getBits(pmdTable, pmdIdx) === pmdval.bits && pmd.getVal(pmdTable, pmdIdx) === pmdval.val
  );
}

/**
 * pte_offset_map_lock (__pte_offset_map_lock): map the table under RCU (pteOffsetMap), take its
 * PTE lock, and read the PMD entry again: if it changed meanwhile (the table was retracted,
 * collapsed or moved), unlock and start over. Returns the table, locked and with RCU held, or
 * 0 with nothing held when the PMD maps no table (the caller refaults or skips the range).
 * Undo with pteUnmapUnlock.
 */
export function* pteOffsetMapLock(k: Kernel, pmdTable: number, pmdIdx: number): Step<number> {
  const pmd = k.pt.pmd;
  const loc = entryLoc(pmd, pmdTable, pmdIdx);
  for (;;) {
    const pteT = yield* pteOffsetMap(k, pmdTable, pmdIdx);
    if (!pteT) return 0;
    // The entry pteOffsetMap has just read (no event in between): the kernel's pmdval.
    const bits = pmd.getBits(pmdTable, pmdIdx);
    yield lock(L_PTE_LOCK, pteT);
    yield readShared(S_PMD_ENTRY, loc);
    if (pmd.getBits(pmdTable, pmdIdx) === bits && pmd.getVal(pmdTable, pmdIdx) === pteT)
      return pteT;
    yield* pteUnmapUnlock(pteT);
  }
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

/**
 * pte_free_defer: free a PTE table already unlinked from its PMD only after an RCU grace period,
 * so that walkers which mapped it under RCU (pte_offset_map) can still lock it and find through
 * their PMD recheck that it is gone.
 */
export function* pteFreeDefer(k: Kernel, pteT: number): Step<void> {
  yield rcuGracePeriod();
  k.pt.pte.free(pteT);
}
