// The install and putback passes of a round (collapse_install, collapse_install_pmd,
// collapse_abort_candidate, collapse_putback in mm/collapse.c). The install verifies every slot
// under the PTE lock: a source slot must still hold this round's migration entry, a slot with no
// source must still be none. Anything else aborts the candidate, restoring only its own entries.

import { mapAnonFolioPmd, mapAnonFolioPtes, swapCacheMaybeDrop } from '../../mm/fault.ts';
import { folioExpectedRefCount, folioRefUnfreeze } from '../../mm/folio-ref-freeze.ts';
import type { Kernel } from '../../mm/kernel.ts';
import { isMigrationEntry } from '../../mm/migration-entry.ts';
import { entryLoc, pteFreeDefer, pteOffsetMapLock, pteUnmapUnlock } from '../../mm/pagewalk.ts';
import { folioUnlock } from '../../mm/folio-lock.ts';
import { pmdpCollapseFlush } from '../../mm/pmdp-collapse-flush.ts';
import { E_NONE, E_TABLE, E_TYPE_MASK } from '../../mm/pgtable.ts';
import { rmapRemovePtes } from '../../mm/rmap.ts';
import {
  L_PMD_LOCK,
  L_PTE_LOCK,
  L_RCU,
  S_PMD_ENTRY,
  S_PTE_ENTRY,
  type Step,
  lock,
  readShared,
  unlock,
  writeShared,
} from '../../mm/step.ts';
import type { Vma } from '../../mm/vma.ts';
import { pteNoneOrZero } from '../scan-pmd.ts';
import {
  CAND_FROZEN,
  CAND_INSTALLED,
  CAND_SKIPPED,
  type Candidate,
  type RoundPool,
} from './candidate.ts';
import { savedSpan } from './freeze.ts';
import { traceCandidate } from './trace.ts';

/**
 * collapse_verify_candidate: nothing shifted under the round. Returns the source-less slots the
 * install makes present, or -1.
 */
function verifyCandidate(
  k: Kernel,
  pool: RoundPool,
  c: Candidate,
  pteT: number,
  idx: number,
): number {
  const pte = k.pt.pte;
  const n = 1 << c.order;
  let populated = 0;
  for (let i = 0; i < n; i++) {
    const sb = pool.bits[c.slot + i];
    const sv = pool.val[c.slot + i];
    if (pteNoneOrZero(k.folios, sb, sv)) {
      if (pte.type(pteT, idx + i) !== E_NONE) return -1;
      populated++;
      continue;
    }
    if (!isMigrationEntry(k, pteT, idx + i, sv)) return -1;
  }
  return populated;
}

/**
 * collapse_abort_candidate: slots still holding this round's entries get their saved values
 * back; foreign slots (zapped by MADV_DONTNEED, maybe refilled by a fault) are left as found,
 * and the rmap the frozen source kept for them is dropped here. pteT 0: the table is gone
 * (empty-table reclaim), every slot is foreign.
 */
function* abortCandidate(
  k: Kernel,
  vma: Vma,
  pool: RoundPool,
  c: Candidate,
  pteT: number,
  idx: number,
): Step<void> {
  const pte = k.pt.pte;
  const n = 1 << c.order;
  const s = c.slot;
  const restoreAll = k.bugs.has('rounds-abort-restores-foreign');
  for (let i = 0; i < n;) {
    const sb = pool.bits[s + i];
    const sv = pool.val[s + i];
    if ((sb & E_TYPE_MASK) === E_NONE) {
      i++;
      continue;
    }
    if (pteNoneOrZero(k.folios, sb, sv)) {
      // A cleared zero page goes back only while its slot is still none.
      if (pteT && (restoreAll || pte.type(pteT, idx + i) === E_NONE)) {
        yield writeShared(S_PTE_ENTRY, pteT * pte.entriesPerTable + idx + i);
        pte.set(pteT, idx + i, sv, sb);
      }
      i++;
      continue;
    }
    const nr = savedSpan(k, pool, c, i, n);
    const head = k.folios.headOf(sv);
    // Unfreeze before any rmap drop (rmap removal may need a reference, munlock does).
    folioRefUnfreeze(k, head, folioExpectedRefCount(k.folios, head) + 1);
    let dropped = 0;
    if (pteT) yield writeShared(S_PTE_ENTRY, pteT * pte.entriesPerTable + idx + i);
    for (let j = 0; j < nr; j++) {
      const pfn = pool.val[s + i + j];
      if (pteT && (restoreAll || isMigrationEntry(k, pteT, idx + i + j, pfn))) {
        pte.set(pteT, idx + i + j, pfn, pool.bits[s + i + j]);
        continue;
      }
      rmapRemovePtes(k, head, pfn, 1, vma);
      dropped++;
    }
    yield* folioUnlock(k, head);
    k.folioPut(head, dropped + 1);
    i += nr;
  }
  c.state = CAND_SKIPPED;
}

/** collapse_install below PMD order: one PTE-lock hold for the batch. */
function* installPtes(
  k: Kernel,
  vma: Vma,
  pool: RoundPool,
  pmdT: number,
  pmdI: number,
): Step<void> {
  const nr = k.geo.ptrsPerPte;
  const mm = vma.mm.id;
  const pteT = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
  for (const c of pool.candidates) {
    if (c.state !== CAND_FROZEN) continue;
    const idx = c.vpn % nr;
    if (!pteT) {
      c.result = 'SCAN_NO_PTE_TABLE';
      traceCandidate(k, mm, c, 'install');
      yield* abortCandidate(k, vma, pool, c, 0, idx);
      continue;
    }
    if (c.result !== 'SCAN_SUCCEED' || c.folio < 0) {
      yield* abortCandidate(k, vma, pool, c, pteT, idx);
      continue;
    }
    if (!k.bugs.has('rounds-no-verify') && verifyCandidate(k, pool, c, pteT, idx) < 0) {
      c.result = 'SCAN_PTE_NON_PRESENT';
      traceCandidate(k, mm, c, 'install');
      yield* abortCandidate(k, vma, pool, c, pteT, idx);
      continue;
    }
    yield writeShared(S_PTE_ENTRY, pteT * k.pt.pte.entriesPerTable + idx);
    mapAnonFolioPtes(k, vma, c.vpn, c.folio, pteT, idx);
    c.folio = -1;
    c.state = CAND_INSTALLED;
  }
  if (pteT) yield* pteUnmapUnlock(pteT);
}

/**
 * collapse_install_pmd: verify, detach the table with pmdp_collapse_flush, deposit the fresh
 * table and map the huge PMD, all under the PMD lock with the PTE lock nested. The detached
 * table goes to pte_free_defer: lockless walkers may still be inside it.
 */
function* installPmd(k: Kernel, vma: Vma, pool: RoundPool, pmdT: number, pmdI: number): Step<void> {
  const c = pool.candidates[0];
  const mm = vma.mm.id;
  if (c.state !== CAND_FROZEN) return;
  if (c.folio < 0) {
    const t = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
    yield* abortCandidate(k, vma, pool, c, t, 0);
    if (t) yield* pteUnmapUnlock(t);
    return;
  }
  const pmd = k.pt.pmd;
  yield lock(L_PMD_LOCK, pmdT);
  // pte_offset_map_rw_nolock: the PMD lock held is what keeps the table in place.
  yield lock(L_RCU, 0);
  yield readShared(S_PMD_ENTRY, entryLoc(pmd, pmdT, pmdI));
  if (pmd.type(pmdT, pmdI) !== E_TABLE) {
    yield unlock(L_RCU, 0);
    yield unlock(L_PMD_LOCK, pmdT);
    c.result = 'SCAN_NO_PTE_TABLE';
    traceCandidate(k, mm, c, 'install');
    yield* abortCandidate(k, vma, pool, c, 0, 0);
    return;
  }
  const pteT = pmd.getVal(pmdT, pmdI);
  yield lock(L_PTE_LOCK, pteT);
  let old = 0;
  if (c.result !== 'SCAN_SUCCEED') yield* abortCandidate(k, vma, pool, c, pteT, 0);
  else if (!k.bugs.has('rounds-no-verify') && verifyCandidate(k, pool, c, pteT, 0) < 0) {
    c.result = 'SCAN_PTE_NON_PRESENT';
    traceCandidate(k, mm, c, 'install');
    yield* abortCandidate(k, vma, pool, c, pteT, 0);
  } else {
    old = yield* pmdpCollapseFlush(k, mm, pmdT, pmdI);
    // The fresh table was never reachable, so whoever withdraws it may free it at once.
    yield writeShared(S_PMD_ENTRY, entryLoc(pmd, pmdT, pmdI));
    mapAnonFolioPmd(k, vma, c.vpn, c.folio, pmdT, pmdI, c.deposit);
    c.deposit = 0;
    c.folio = -1;
    c.state = CAND_INSTALLED;
  }
  yield unlock(L_PTE_LOCK, pteT);
  yield unlock(L_RCU, 0);
  yield unlock(L_PMD_LOCK, pmdT);
  if (old) {
    if (k.bugs.has('rounds-free-old-table-now')) k.pt.pte.free(old);
    else yield* pteFreeDefer(k, old);
  }
}

export function* collapseInstall(
  k: Kernel,
  vma: Vma,
  pool: RoundPool,
  pmdT: number,
  pmdI: number,
): Step<void> {
  const c0 = pool.candidates[0];
  if (c0 && c0.order === k.geo.pmdOrder) yield* installPmd(k, vma, pool, pmdT, pmdI);
  else yield* installPtes(k, vma, pool, pmdT, pmdI);
}

/**
 * collapse_putback: lower the barriers on the sources of installed candidates. Unfreeze before
 * the rmap drop; every rmap removal pairs with a put of the same slots' references.
 */
export function* collapsePutback(k: Kernel, vma: Vma, pool: RoundPool): Step<void> {
  for (const c of pool.candidates) {
    if (c.state !== CAND_INSTALLED) continue;
    const n = 1 << c.order;
    for (let i = 0; i < n;) {
      const sb = pool.bits[c.slot + i];
      const sv = pool.val[c.slot + i];
      if (pteNoneOrZero(k.folios, sb, sv)) {
        i++;
        continue;
      }
      const nr = savedSpan(k, pool, c, i, n);
      const head = k.folios.headOf(sv);
      folioRefUnfreeze(k, head, folioExpectedRefCount(k.folios, head) + 1);
      rmapRemovePtes(k, head, sv, nr, vma);
      yield* folioUnlock(k, head);
      // free_swap_cache: the copy replaced it.
      swapCacheMaybeDrop(k, head);
      k.folioPut(head, nr + 1);
      i += nr;
    }
  }
}
