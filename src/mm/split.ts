// Splitting: a huge PMD into a PTE table (__split_huge_pmd; the PMD of a page-cache THP is only
// unmapped), a large folio into small ones (split_folio, with zero-filled pages remapped to the
// shared zero page), and the deferred split shrinker (deferred_split_scan) with the underused
// rule (thp_underused).

import {
  PG_ANON,
  PG_ANON_EXCLUSIVE,
  PG_DEFERRED,
  PG_DIRTY,
  PG_HEAD,
  PG_PARTIALLY_MAPPED,
  PG_REFERENCED,
  PG_SWAPCACHE,
  PG_TAIL,
  PG_ZERO,
  NO_MM,
} from './folio.ts';
import type { Kernel } from './kernel.ts';
import { levelIndex, pmdTableOf } from './pagewalk.ts';
import {
  B_DIRTY,
  B_SPECIAL,
  B_YOUNG,
  E_PRESENT,
  E_TABLE,
  E_TYPE_MASK,
  PMD,
  T_LINKED,
} from './pgtable.ts';
import { rmapAddPtes, rmapRemovePmd, rmapRemovePtes } from './rmap.ts';
import {
  L_ANON_VMA_WRITE,
  L_FOLIO_LOCK,
  L_PMD_LOCK,
  L_PTE_LOCK,
  type Step,
  lock,
  unlock,
} from './step.ts';
import type { Vma } from './vma.ts';

/** __split_huge_pmd_locked: replace a huge PMD by its deposited table filled with PTEs. */
export function* splitHugePmd(k: Kernel, vma: Vma, pmdT: number, pmdI: number): Step<boolean> {
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  const f = k.folios;
  yield lock(L_PMD_LOCK, pmdT);
  const bits = pmd.getBits(pmdT, pmdI);
  if ((bits & E_TYPE_MASK) !== E_PRESENT) {
    yield unlock(L_PMD_LOCK, pmdT);
    return false;
  }
  const head = pmd.getVal(pmdT, pmdI);
  const slot = pmdT * pmd.entriesPerTable + pmdI;
  if (!(f.flags[head] & (PG_ANON | PG_ZERO))) {
    // A page-cache THP (no deposited table on x86-64 and arm64): the PMD is only unmapped, and
    // later faults map the pages with PTEs, or with a PMD again.
    pmd.clear(pmdT, pmdI);
    if (bits & B_DIRTY) f.set(head, PG_DIRTY);
    if (bits & B_YOUNG) f.set(head, PG_REFERENCED);
    rmapRemovePmd(k, head, vma);
    k.stats.event('thp_split_pmd');
    yield unlock(L_PMD_LOCK, pmdT);
    k.folioPut(head);
    return true;
  }
  const pgtable = k.pt.deposit[slot];
  if (!pgtable) throw new Error(`huge PMD ${pmdT}:${pmdI} has no deposited table`);
  k.pt.deposit[slot] = 0;
  const n = k.geo.ptrsPerPte;
  const zero = (f.flags[head] & PG_ZERO) !== 0;
  // The PTEs inherit the PMD's bits; the huge zero page becomes the small zero page.
  const keep = bits & ~E_TYPE_MASK;
  for (let i = 0; i < n; i++) {
    if (zero) pte.set(pgtable, i, k.zeroPfn, E_PRESENT | B_SPECIAL | (keep & B_YOUNG));
    else pte.set(pgtable, i, head + i, E_PRESENT | keep);
  }
  if (!zero) {
    rmapAddPtes(k, head, head, n, vma);
    rmapRemovePmd(k, head, vma);
    k.folioGet(head, n - 1); // the PMD's one reference becomes one per PTE
  }
  pmd.set(pmdT, pmdI, pgtable, E_TABLE);
  pte.state[pgtable] = T_LINKED;
  k.stats.event('thp_split_pmd');
  yield unlock(L_PMD_LOCK, pmdT);
  return true;
}

/** Every (vma, vpn) mapping a page of an anon folio, found through its anon_vma (rmap_walk_anon). */
export function anonRmapVmas(k: Kernel, head: number): Vma[] {
  const av = k.anonVmas.get(k.folios.mapping[head]);
  return av ? [...av.vmas] : [];
}

/** Visit each present PTE that maps a page of the folio: (vma, pteTable, index, pfn). */
function forEachPteMapping(
  k: Kernel,
  head: number,
  fn: (vma: Vma, pteT: number, pteI: number, pfn: number) => void,
): void {
  const f = k.folios;
  const n = 1 << f.order[head];
  const ptrs = k.geo.ptrsPerPte;
  for (const vma of anonRmapVmas(k, head)) {
    for (let i = 0; i < n; i++) {
      if (f.pteMapcount[head + i] === 0) continue;
      const vpn = vma.addressOf(f.index[head] + i);
      if (vpn < 0) continue;
      const pmdT = pmdTableOf(k, vma.mm, vpn);
      if (!pmdT) continue;
      const pmdI = levelIndex(k, vpn, PMD);
      if ((k.pt.pmd.getBits(pmdT, pmdI) & E_TYPE_MASK) !== E_TABLE) continue;
      const pteT = k.pt.pmd.getVal(pmdT, pmdI);
      const pteI = vpn % ptrs;
      if (k.pt.pte.type(pteT, pteI) === E_PRESENT && k.pt.pte.getVal(pteT, pteI) === head + i)
        fn(vma, pteT, pteI, head + i);
    }
  }
}

/** Split every PMD mapping of a folio (split_huge_pmd_address through the rmap). */
function* unmapFolioPmds(k: Kernel, head: number): Step<void> {
  const f = k.folios;
  if (f.entireMapcount[head] === 0) return;
  const ptrs = k.geo.ptrsPerPte;
  for (const vma of anonRmapVmas(k, head)) {
    const vpn = vma.addressOf(f.index[head]);
    if (vpn < 0) continue;
    const pmdT = pmdTableOf(k, vma.mm, vpn);
    if (!pmdT) continue;
    const pmdI = levelIndex(k, vpn, PMD);
    if (
      k.pt.pmd.type(pmdT, pmdI) === E_PRESENT &&
      k.pt.pmd.getVal(pmdT, pmdI) === head &&
      vpn % ptrs === 0
    )
      yield* splitHugePmd(k, vma, pmdT, pmdI);
  }
}

/**
 * split_folio for anon folios: fails on extra references (pins). Zero-filled pages that are
 * mapped are replaced by the shared zero page (RMP_USE_SHARED_ZEROPAGE); unmapped pages are freed.
 */
export function* splitFolio(k: Kernel, head: number): Step<boolean> {
  const f = k.folios;
  const order = f.order[head];
  if (order === 0) return true;
  const avId = f.mapping[head];
  // anon_vma_lock_write takes the root's rwsem.
  const rootId = k.anonVmas.get(avId)?.root.id ?? avId;
  yield lock(L_FOLIO_LOCK, head);
  yield lock(L_ANON_VMA_WRITE, rootId);
  // can_split_folio: only the mappings and the swap cache may hold references.
  if (f.refcount[head] !== f.expectedRefcount(head) || f.pincount[head] > 0) {
    yield unlock(L_ANON_VMA_WRITE, rootId);
    yield unlock(L_FOLIO_LOCK, head);
    k.stats.mthpStat(order, 'split_failed');
    if (order === k.geo.pmdOrder) k.stats.event('thp_split_page_failed');
    return false;
  }
  yield* unmapFolioPmds(k, head);
  const n = 1 << order;
  const flags = f.flags[head];
  const swapcache = (flags & PG_SWAPCACHE) !== 0;
  if (flags & PG_DEFERRED) k.deferredSplitRemove(head);
  if (flags & PG_ANON) k.stats.mthpStat(order, 'nr_anon', -1);
  k.stats.mthpStat(order, 'split');
  if (order === k.geo.pmdOrder) k.stats.event('thp_split_page');
  const inherit =
    flags & ~(PG_HEAD | PG_TAIL | PG_DEFERRED | PG_PARTIALLY_MAPPED | PG_ANON_EXCLUSIVE);
  const baseIndex = f.index[head];
  const baseSlot = f.swapSlot[head];
  for (let i = n - 1; i >= 0; i--) {
    const p = head + i;
    const excl = f.flags[p] & PG_ANON_EXCLUSIVE;
    const mc = f.pteMapcount[p];
    f.flags[p] = PG_HEAD | inherit | excl;
    f.order[p] = 0;
    f.mapping[p] = avId;
    f.index[p] = baseIndex + i;
    f.mapcount[p] = mc;
    f.entireMapcount[p] = 0;
    f.nrPagesMapped[p] = mc > 0 ? 1 : 0;
    f.mmId0[p] = NO_MM;
    f.mmId1[p] = NO_MM;
    f.mmCount0[p] = 0;
    f.mmCount1[p] = 0;
    f.pincount[p] = 0;
    f.refcount[p] = mc + (swapcache ? 1 : 0);
    if (swapcache) {
      f.swapSlot[p] = baseSlot + i;
      k.swap.cache[baseSlot + i] = p;
    }
  }
  // remap_page with RMP_USE_SHARED_ZEROPAGE: zero-filled mapped pages go to the zero page.
  const toZero: Array<[Vma, number, number, number]> = [];
  forEachPteMappingRange(k, head, n, (vma, pteT, pteI, pfn) => {
    if (f.data[pfn] === 0 && !swapcache) toZero.push([vma, pteT, pteI, pfn]);
  });
  yield unlock(L_ANON_VMA_WRITE, rootId);
  yield unlock(L_FOLIO_LOCK, head);
  for (const [vma, pteT, pteI, pfn] of toZero) {
    yield lock(L_PTE_LOCK, pteT);
    const bits = k.pt.pte.getBits(pteT, pteI);
    k.pt.pte.set(pteT, pteI, k.zeroPfn, E_PRESENT | B_SPECIAL | (bits & B_YOUNG));
    rmapRemovePtes(k, pfn, pfn, 1, vma);
    yield unlock(L_PTE_LOCK, pteT);
    k.folioPut(pfn);
  }
  // Pages nobody maps any more are freed now.
  for (let i = 0; i < n; i++) {
    const p = head + i;
    if (f.refcount[p] === 0 && f.flags[p] & PG_HEAD) {
      f.refcount[p] = 1;
      k.folioPut(p);
    }
  }
  return true;
}

/** forEachPteMapping over n small folios that used to be one folio starting at head. */
function forEachPteMappingRange(
  k: Kernel,
  head: number,
  n: number,
  fn: (vma: Vma, pteT: number, pteI: number, pfn: number) => void,
): void {
  for (let i = 0; i < n; i++) forEachPteMapping(k, head + i, fn);
}

/** thp_underused: more zero-filled pages than max_ptes_none allows. */
export function thpUnderused(k: Kernel, head: number): boolean {
  const maxNone = k.settings.khugepaged.maxPtesNone;
  // shrink_underused is checked when the THP is queued (deferred_split_folio), not here.
  if (maxNone === k.geo.ptrsPerPte - 1) return false;
  const n = 1 << k.folios.order[head];
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    if (k.folios.data[head + i] === 0) {
      if (++zeros > maxNone) return true;
    } else if (i + 1 - zeros >= n - maxNone) return false;
  }
  return false;
}

/**
 * deferred_split_scan over the whole queue, or over one memcg's folios (`only`). Returns the
 * number of folios split.
 */
export function* deferredSplitScan(k: Kernel, only?: (head: number) => boolean): Step<number> {
  let split = 0;
  for (const head of [...k.deferredSplit]) {
    const f = k.folios;
    if (!(f.flags[head] & PG_DEFERRED) || (only && !only(head))) continue;
    let underused = false;
    if (!(f.flags[head] & PG_PARTIALLY_MAPPED)) {
      underused = thpUnderused(k, head);
      if (!underused) {
        // Considered used: off the queue for good; only partially mapped folios are requeued.
        k.deferredSplitRemove(head);
        continue;
      }
    }
    if (yield* splitFolio(k, head)) {
      split++;
      if (underused) k.stats.event('thp_underused_split_page');
    } else if (!(f.flags[head] & PG_PARTIALLY_MAPPED)) k.deferredSplitRemove(head);
  }
  return split;
}
