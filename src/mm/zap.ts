// Tearing mappings down: zap_pte_range / zap_huge_pmd for a range of one VMA, empty PTE-table
// reclaim after MADV_DONTNEED (mm/pt_reclaim.c), and free_pgtables within [floor, ceiling).

import { swapCacheMaybeDrop } from './fault.ts';
import { PG_DIRTY, PG_FILE, PG_ZERO } from './folio.ts';
import type { Kernel } from './kernel.ts';
import { entryLoc, levelIndex, pmdTableOf, pteOffsetMapLock, pteUnmapUnlock } from './pagewalk.ts';
import {
  B_DIRTY,
  E_INVALID,
  E_MARKER,
  E_NONE,
  E_PRESENT,
  E_SWAP,
  E_TABLE,
  E_TYPE_MASK,
  MARKER_GUARD,
  PMD,
  PUD,
  PGD,
  T_DETACHED,
  type TableLevel,
} from './pgtable.ts';
import { folioPteBatch } from './pte-batch.ts';
import { rmapRemovePmd, rmapRemovePtes } from './rmap.ts';
import { splitHugePmd } from './split.ts';
import {
  L_PMD_LOCK,
  L_PTE_LOCK,
  S_PMD_ENTRY,
  type Step,
  lock,
  readShared,
  tlbFlushRange,
  rcuGracePeriod,
  tlbFlushTables,
  unlock,
  writeShared,
} from './step.ts';
import type { Mm, Vma } from './vma.ts';

export interface ZapOptions {
  /** Keep guard markers (MADV_DONTNEED keeps them; munmap does not). */
  keepGuards: boolean;
  /** Reclaim PTE tables left empty when the range covers them whole (MADV_DONTNEED). */
  reclaimTables: boolean;
}

/** Drop one swap PTE's reference to its slot (free_swap_and_cache). */
export function freeSwapEntry(k: Kernel, slot: number): void {
  const sw = k.swap;
  sw.count[slot]--;
  const cached = sw.cache[slot];
  if (cached >= 0) swapCacheMaybeDrop(k, cached);
  else sw.maybeFree(slot);
}

/** zap_huge_pmd: remove a whole huge PMD and free its deposited table (a file THP has none). */
function* zapHugePmd(k: Kernel, vma: Vma, pmdT: number, pmdI: number): Step<void> {
  const pmd = k.pt.pmd;
  yield lock(L_PMD_LOCK, pmdT);
  if (pmd.type(pmdT, pmdI) === E_PRESENT) {
    const head = pmd.getVal(pmdT, pmdI);
    const bits = pmd.getBits(pmdT, pmdI);
    const slot = pmdT * pmd.entriesPerTable + pmdI;
    const pgtable = k.pt.deposit[slot];
    k.pt.deposit[slot] = 0;
    pmd.clear(pmdT, pmdI);
    if (pgtable) k.pt.pte.free(pgtable);
    if (!(k.folios.flags[head] & PG_ZERO)) {
      if (bits & B_DIRTY && k.folios.flags[head] & PG_FILE) k.folios.set(head, PG_DIRTY);
      rmapRemovePmd(k, head, vma);
      k.folioPut(head);
    }
  }
  yield unlock(L_PMD_LOCK, pmdT);
}

/** zap_pte_range over [start, end) of one PTE table. Returns whether the table is now empty. */
function* zapPtes(
  k: Kernel,
  vma: Vma,
  pmdT: number,
  pmdI: number,
  start: number,
  end: number,
  opts: ZapOptions,
): Step<{ empty: boolean; pteT: number }> {
  const pte = k.pt.pte;
  const f = k.folios;
  const ptrs = k.geo.ptrsPerPte;
  const gather: number[] = [];
  // pte_offset_map_lock: the table may have been retracted since the PMD was read; then there
  // is nothing left to zap here.
  const pteT = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
  if (!pteT) return { empty: false, pteT: 0 };
  for (let vpn = start; vpn < end; vpn++) {
    const i = vpn % ptrs;
    const bits = pte.getBits(pteT, i);
    const type = bits & E_TYPE_MASK;
    if (type === E_NONE) continue;
    const val = pte.getVal(pteT, i);
    if (type === E_PRESENT) {
      const head = f.headOf(val);
      if (f.flags[head] & PG_ZERO) {
        pte.clear(pteT, i);
        continue;
      }
      // Consecutive PTEs mapping consecutive pages of one folio go together, so a large folio
      // unmapped whole never looks partially mapped on the way.
      const at = pteT * pte.entriesPerTable + i;
      const nr = folioPteBatch(f, head, pte.bits, pte.val, at, end - vpn);
      for (let j = 0; j < nr; j++) {
        // zap_present_folio_ptes: a page-cache folio inherits the dirty bit of its entries.
        if (pte.getBits(pteT, i + j) & B_DIRTY && f.flags[head] & PG_FILE) f.set(head, PG_DIRTY);
        pte.clear(pteT, i + j);
      }
      rmapRemovePtes(k, head, val, nr, vma);
      gather.push(head, nr);
      vpn += nr - 1;
    } else if (type === E_SWAP) {
      pte.clear(pteT, i);
      vma.mm.swapEnts--;
      freeSwapEntry(k, val);
    } else if (type === E_MARKER) {
      if (val === MARKER_GUARD && opts.keepGuards) continue;
      pte.clear(pteT, i);
    } else pte.clear(pteT, i);
  }
  const empty = pte.used[pteT] === 0;
  // The flush comes before the PTL is dropped when pages were unmapped (tlb_flush_mmu_tlbonly).
  if (gather.length) yield tlbFlushRange(vma.mm.id);
  if (empty && opts.reclaimTables && k.bugs.has('pt-reclaim-pmd-lock-under-ptl')) {
    // The reclaim fast path must only trylock the PMD lock while holding the PTE lock; the
    // checker's bug takes it outright, against the lock order.
    yield lock(L_PMD_LOCK, pmdT);
    yield unlock(L_PMD_LOCK, pmdT);
  }
  yield* pteUnmapUnlock(pteT);
  // tlb_finish_mmu: the folios are freed after the flush.
  for (let j = 0; j < gather.length; j += 2) k.folioPut(gather[j], gather[j + 1]);
  return { empty, pteT };
}

/** try_to_free_pte / reclaim_pt_if_empty: unlink and free an empty PTE table. */
function* reclaimPteTable(
  k: Kernel,
  vma: Vma,
  pmdT: number,
  pmdI: number,
  pteT: number,
): Step<void> {
  yield lock(L_PMD_LOCK, pmdT);
  yield lock(L_PTE_LOCK, pteT);
  const ok =
    k.pt.pmd.type(pmdT, pmdI) === E_TABLE &&
    k.pt.pmd.getVal(pmdT, pmdI) === pteT &&
    k.pt.pte.used[pteT] === 0;
  if (ok) {
    yield writeShared(S_PMD_ENTRY, entryLoc(k.pt.pmd, pmdT, pmdI));
    k.pt.pmd.clear(pmdT, pmdI);
    k.pt.pte.state[pteT] = T_DETACHED;
  }
  yield unlock(L_PTE_LOCK, pteT);
  yield unlock(L_PMD_LOCK, pmdT);
  // pte_free_tlb: freed after an RCU grace period, so that walkers that mapped the table under
  // RCU (pte_offset_map) can still lock it and see that it is gone; freeing it at once is the
  // checker's 'pt-reclaim-no-rcu'.
  if (ok) {
    if (!k.bugs.has('no-psc-flush')) yield tlbFlushTables(vma.mm.id);
    if (!k.bugs.has('pt-reclaim-no-rcu')) yield rcuGracePeriod();
    k.pt.pte.free(pteT);
  }
}

/** unmap_page_range for [start, end) inside one VMA. */
export function* zapRange(
  k: Kernel,
  vma: Vma,
  start: number,
  end: number,
  opts: ZapOptions,
): Step<void> {
  const ptrs = k.geo.ptrsPerPte;
  for (let s = start; s < end;) {
    const pmdStart = Math.floor(s / ptrs) * ptrs;
    const e = Math.min(end, pmdStart + ptrs);
    const pmdT = pmdTableOf(k, vma.mm, s);
    if (pmdT) {
      const pmdI = levelIndex(k, s, PMD);
      // zap_pmd_range reads the entry without a lock and skips the range if it is none.
      yield readShared(S_PMD_ENTRY, entryLoc(k.pt.pmd, pmdT, pmdI));
      const type = k.pt.pmd.type(pmdT, pmdI);
      const whole = s === pmdStart && e === pmdStart + ptrs;
      // An invalidated huge PMD is still huge (pmd_trans_huge): its lock holder is changing it.
      if (type === E_PRESENT || type === E_INVALID) {
        if (whole) yield* zapHugePmd(k, vma, pmdT, pmdI);
        else yield* splitHugePmd(k, vma, pmdT, pmdI);
      }
      if (k.pt.pmd.type(pmdT, pmdI) === E_TABLE) {
        const { empty, pteT } = yield* zapPtes(k, vma, pmdT, pmdI, s, e, opts);
        if (empty && whole && opts.reclaimTables && k.geo.arch === 'x86-64')
          yield* reclaimPteTable(k, vma, pmdT, pmdI, pteT);
      }
    }
    s = e;
  }
}

/** Free the tables of one level whose span lies inside [floor, ceiling), bottom-up. */
function freeLevel(
  k: Kernel,
  upper: TableLevel,
  lower: TableLevel,
  upperT: number,
  idx: number,
): void {
  const child = upper.getVal(upperT, idx);
  upper.clear(upperT, idx);
  lower.state[child] = T_DETACHED;
  lower.free(child);
}

/**
 * free_pgtables for [start, end): unlink and free every PTE, PMD and PUD table whose whole span
 * lies in [floor, ceiling), the gap left between the surviving neighbours.
 */
export function freePgtables(
  k: Kernel,
  mm: Mm,
  start: number,
  end: number,
  floor: number,
  ceiling: number,
): void {
  const g = k.geo;
  const pt = k.pt;
  const ptrs = g.ptrsPerPte;
  const pmdSpan = ptrs;
  const pudSpan = g.pagesPerPud;
  const pgdSpan = g.pagesPerPud * g.entries[PUD];
  for (let s = Math.floor(start / pmdSpan) * pmdSpan; s < end; s += pmdSpan) {
    if (s < floor || s + pmdSpan > ceiling) continue;
    const pmdT = pmdTableOf(k, mm, s);
    if (!pmdT) continue;
    const i = levelIndex(k, s, PMD);
    if ((pt.pmd.getBits(pmdT, i) & E_TYPE_MASK) !== E_TABLE) continue;
    if (pt.pte.used[pt.pmd.getVal(pmdT, i)] !== 0)
      throw new Error(`free_pgtables: PTE table at vpn ${s} still has entries`);
    freeLevel(k, pt.pmd, pt.pte, pmdT, i);
  }
  for (let s = Math.floor(start / pudSpan) * pudSpan; s < end; s += pudSpan) {
    if (s < floor || s + pudSpan > ceiling) continue;
    const pgdI = levelIndex(k, s, PGD);
    if (pt.pgd.type(mm.pgd, pgdI) !== E_TABLE) continue;
    const pudT = pt.pgd.getVal(mm.pgd, pgdI);
    const i = levelIndex(k, s, PUD);
    if (pt.pud.type(pudT, i) !== E_TABLE || pt.pmd.used[pt.pud.getVal(pudT, i)] !== 0) continue;
    freeLevel(k, pt.pud, pt.pmd, pudT, i);
  }
  for (let s = Math.floor(start / pgdSpan) * pgdSpan; s < end; s += pgdSpan) {
    if (s < floor || s + pgdSpan > ceiling) continue;
    const i = levelIndex(k, s, PGD);
    if (pt.pgd.type(mm.pgd, i) !== E_TABLE || pt.pud.used[pt.pgd.getVal(mm.pgd, i)] !== 0) continue;
    freeLevel(k, pt.pgd, pt.pud, mm.pgd, i);
  }
}
