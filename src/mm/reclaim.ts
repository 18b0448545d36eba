// MADV_FREE and MADV_PAGEOUT on private anonymous memory (mm/madvise.c), with the part of page
// reclaim MADV_PAGEOUT drives: the anon path of shrink_folio_list (mm/vmscan.c), try_to_unmap
// (mm/rmap.c) and the swap cache (mm/swap_state.c). The swap device behaves like a synchronous
// one (zram): a folio's pages are written at once and it leaves the swap cache in the same pass.
//
// Lazy-free pages and later writes. MADV_FREE clears the dirty (and young) bit of the PTEs or of
// the huge PMD and marks the folio PG_LAZYFREE (swap-backed cleared). A later write does not
// fault: the hardware walker (hwAccess) sets the dirty bit of the entry again, exactly as the
// MMU does. So the fault path needs no change; instead reclaim decides when it is about to
// discard: a lazy-free folio whose PG_DIRTY is set or any of whose mappings is dirty was written
// after MADV_FREE, and is made swap-backed again (PG_LAZYFREE cleared, PG_DIRTY set) and kept.
//
// Isolation: the model takes no isolation reference. A folio on the private reclaim list has
// PG_LRU cleared (folio_isolate_lru) and is re-validated under its folio lock before reclaim.

import { anonVmaLockRead, anonVmaUnlockRead, folioAnonVma } from './anon-vma.ts';
import { swapCacheMaybeDrop } from './fault.ts';
import {
  PG_ANON,
  PG_ANON_EXCLUSIVE,
  PG_DIRTY,
  PG_HEAD,
  PG_LAZYFREE,
  PG_LRU,
  PG_REFERENCED,
  PG_SWAPCACHE,
  PG_YOUNG,
  PG_ZERO,
} from './folio.ts';
import type { Kernel } from './kernel.ts';
import {
  levelIndex,
  pmdReadLockless,
  pmdTableOf,
  pteOffsetMapLock,
  pteUnmapUnlock,
} from './pagewalk.ts';
import {
  B_DIRTY,
  B_EXCLUSIVE,
  B_SOFT_DIRTY,
  B_SPECIAL,
  B_UFFD_WP,
  B_YOUNG,
  E_MARKER,
  E_PRESENT,
  E_SWAP,
  E_TABLE,
  E_TYPE_MASK,
  MARKER_POISON,
  PMD,
} from './pgtable.ts';
import { folioPteBatch } from './pte-batch.ts';
import { rmapRemovePmd, rmapRemovePtes } from './rmap.ts';
import { anonRmapVmas, splitFolio, splitHugePmd } from './split.ts';
import {
  L_FOLIO_LOCK,
  L_PMD_LOCK,
  L_SWAP_LOCK,
  type Step,
  call,
  lock,
  trylock,
  unlock,
} from './step.ts';
import { VM_DROPPABLE, VM_LOCKED, type Vma } from './vma.ts';
import { freeSwapEntry } from './zap.ts';

const YOUNG_DIRTY = B_YOUNG | B_DIRTY;
/** The single swap device's lock id (si->lock and the swap cache's lock together). */
const SWAP_DEV = 0;

/** The head of a live anonymous folio (not the zero page, not freed). */
function liveAnon(k: Kernel, head: number): boolean {
  const fl = k.folios.flags[head];
  return (
    (fl & PG_HEAD) !== 0 &&
    (fl & PG_ANON) !== 0 &&
    (fl & PG_ZERO) === 0 &&
    k.folios.refcount[head] > 0
  );
}

/** GUP pins or references beyond the mappings and the swap cache: reclaim keeps the folio. */
function pinned(k: Kernel, head: number): boolean {
  const f = k.folios;
  return f.pincount[head] > 0 || f.refcount[head] !== f.expectedRefcount(head);
}

/** Whether MADV_FREE/MADV_PAGEOUT apply to the VMA (can_madv_lru_vma, private anon only). */
function madvLruVma(vma: Vma): boolean {
  return vma.isAnonymous && (vma.flags & VM_LOCKED) === 0;
}

/** madvise_folio_pte_batch: PTEs from index i up to endI mapping consecutive pages of one folio. */
function pteBatch(k: Kernel, pteT: number, i: number, endI: number, head: number): number {
  const pte = k.pt.pte;
  return folioPteBatch(k.folios, head, pte.bits, pte.val, pteT * pte.entriesPerTable + i, endI - i);
}

interface Resplit {
  /** The PTE table, locked again (0: it went away meanwhile). */
  pteT: number;
  /** PTEs to step over: the folio's when it stays whole. */
  skip: number;
}

/**
 * A large folio only partly inside the range (madvise_cold_or_pageout_pte_range and
 * madvise_free_pte_range alike): split it with the PTE lock dropped, so the covered pages can be
 * handled alone. A shared folio is left as it is, and so is one that fails to split.
 */
function* splitPartlyCovered(
  k: Kernel,
  head: number,
  nr: number,
  pmdT: number,
  pmdI: number,
  pteT: number,
): Step<Resplit> {
  if (k.folios.maybeMappedShared(head)) return { pteT, skip: nr };
  yield* pteUnmapUnlock(pteT);
  const split: boolean = yield* splitFolio(k, head);
  const relocked: number = yield* call(pteOffsetMapLock(k, pmdT, pmdI));
  return { pteT: relocked, skip: split ? 0 : nr };
}

/** The PMD-sized spans [s, e) of [start, end), with the PMD table and index covering each. */
function* pmdSpans(
  k: Kernel,
  vma: Vma,
  start: number,
  end: number,
): Generator<[number, number, number, number, boolean]> {
  const ptrs = k.geo.ptrsPerPte;
  for (let s = start; s < end;) {
    const base = Math.floor(s / ptrs) * ptrs;
    const e = Math.min(end, base + ptrs);
    const pmdT = pmdTableOf(k, vma.mm, s);
    if (pmdT) yield [s, e, pmdT, levelIndex(k, s, PMD), s === base && e === base + ptrs];
    s = e;
  }
}

// ---------------------------------------------------------------------------------------------
// MADV_PAGEOUT

/** folio_isolate_lru onto the private list; MADV_PAGEOUT ignores references instead of clearing
 * the young bits of the entries (only the folio's own referenced/young flags are dropped). */
function isolate(k: Kernel, head: number, list: number[]): void {
  const f = k.folios;
  if (!(f.flags[head] & PG_LRU)) return;
  f.clear(head, PG_LRU | PG_REFERENCED | PG_YOUNG);
  list.push(head);
}

/** madvise_pageout_page_range → madvise_cold_or_pageout_pte_range, then reclaim_pages per PMD. */
export function* madvisePageout(k: Kernel, vma: Vma, start: number, end: number): Step<void> {
  if (!madvLruVma(vma)) return;
  const isolated: number[] = [];
  for (const [s, e, pmdT, pmdI, whole] of pmdSpans(k, vma, start, end)) {
    let type = (yield* pmdReadLockless(k, pmdT, pmdI)) & E_TYPE_MASK;
    if (type === E_PRESENT) {
      yield* pageoutHugePmd(k, pmdT, pmdI, whole, isolated);
      type = (yield* pmdReadLockless(k, pmdT, pmdI)) & E_TYPE_MASK;
    }
    if (type === E_TABLE) yield* pageoutPtes(k, pmdT, pmdI, s, e, isolated);
    for (const head of isolated) yield* reclaimIsolated(k, head);
    isolated.length = 0;
  }
}

/** The huge-PMD part of madvise_cold_or_pageout_pte_range. */
function* pageoutHugePmd(
  k: Kernel,
  pmdT: number,
  pmdI: number,
  whole: boolean,
  isolated: number[],
): Step<void> {
  const f = k.folios;
  yield lock(L_PMD_LOCK, pmdT);
  const head = k.pt.pmd.getVal(pmdT, pmdI);
  if (k.pt.pmd.type(pmdT, pmdI) !== E_PRESENT || !liveAnon(k, head) || f.maybeMappedShared(head)) {
    yield unlock(L_PMD_LOCK, pmdT);
    return;
  }
  if (!whole) {
    // Only part of the THP is in range: split the folio (and so its PMD) and let the PTE walk
    // take the covered pages. If the split fails the PMD stays and nothing is paged out.
    // (The kernel holds a reference across split_folio; splitFolio here expects none.)
    yield unlock(L_PMD_LOCK, pmdT);
    yield* splitFolio(k, head);
    return;
  }
  isolate(k, head, isolated);
  yield unlock(L_PMD_LOCK, pmdT);
}

/** The PTE part of madvise_cold_or_pageout_pte_range over [start, end) of one PTE table. */
function* pageoutPtes(
  k: Kernel,
  pmdT: number,
  pmdI: number,
  start: number,
  end: number,
  isolated: number[],
): Step<void> {
  const f = k.folios;
  const pte = k.pt.pte;
  const ptrs = k.geo.ptrsPerPte;
  let pteT: number = yield* call(pteOffsetMapLock(k, pmdT, pmdI));
  if (!pteT) return;
  const endI = ((end - 1) % ptrs) + 1;
  for (let i = start % ptrs; i < endI;) {
    const bits = pte.getBits(pteT, i);
    if ((bits & E_TYPE_MASK) !== E_PRESENT || bits & B_SPECIAL) {
      i++;
      continue;
    }
    const pfn = pte.getVal(pteT, i);
    const head = f.headOf(pfn);
    if (!liveAnon(k, head)) {
      i++;
      continue;
    }
    const n = f.nrPagesOf(head);
    let nr = 1;
    if (n > 1) {
      nr = pteBatch(k, pteT, i, endI, head);
      if (nr < n) {
        // A large folio not wholly mapped in range: the covered pages go alone.
        const r: Resplit = yield* splitPartlyCovered(k, head, nr, pmdT, pmdI, pteT);
        if (!r.pteT) return;
        pteT = r.pteT;
        i += r.skip;
        continue;
      }
    }
    // All its pages are mapped here, so mapcount == nr pages means nobody else maps it.
    if (f.mapcount[head] === n) isolate(k, head, isolated);
    i += nr;
  }
  yield* pteUnmapUnlock(pteT);
}

/** reclaim_pages for one isolated folio, then folio_putback_lru for whatever is left of it. */
function* reclaimIsolated(k: Kernel, head: number): Step<void> {
  const n = k.folios.nrPagesOf(head);
  yield* shrinkFolio(k, head);
  for (let p = head; p < head + n; p++) if (liveAnon(k, p)) k.folios.set(p, PG_LRU);
}

/** The anonymous-folio path of shrink_folio_list (ignoring references, as MADV_PAGEOUT does). */
function* shrinkFolio(k: Kernel, head: number): Step<void> {
  const f = k.folios;
  if (!liveAnon(k, head)) return;
  if (!(yield trylock(L_FOLIO_LOCK, head))) return;
  if (!liveAnon(k, head) || !f.mapped(head) || f.flags[head] & PG_SWAPCACHE || pinned(k, head)) {
    yield unlock(L_FOLIO_LOCK, head);
    return;
  }
  if (f.flags[head] & PG_LAZYFREE) {
    // Not swap-backed: no swap slot is needed, the folio is dropped if nobody wrote it.
    yield* discardLazyfree(k, head);
    yield unlock(L_FOLIO_LOCK, head);
    return;
  }
  if (k.swap.nrSlots === 0) {
    // No swap device: anonymous memory cannot be paged out and is kept as it is.
    yield unlock(L_FOLIO_LOCK, head);
    return;
  }
  const order = f.order[head];
  yield lock(L_SWAP_LOCK, SWAP_DEV);
  const slot = k.swap.alloc(order);
  yield unlock(L_SWAP_LOCK, SWAP_DEV);
  if (slot >= 0) {
    yield* swapOutFolio(k, head, slot);
    return;
  }
  yield unlock(L_FOLIO_LOCK, head);
  if (order === 0) return;
  // No naturally aligned run of 2^order free slots: split and swap out the small folios.
  if (!(yield* splitFolio(k, head))) return;
  if (order >= k.geo.pmdOrder) k.stats.event('thp_swpout_fallback');
  k.stats.mthpStat(order, 'swpout_fallback');
  for (let p = head; p < head + (1 << order); p++) if (liveAnon(k, p)) yield* shrinkFolio(k, p);
}

/**
 * add_to_swap, try_to_unmap, pageout and __remove_mapping for a locked folio that got the slots
 * [slot, slot + 2^order). Releases the folio lock.
 */
function* swapOutFolio(k: Kernel, head: number, slot: number): Step<void> {
  const f = k.folios;
  const sw = k.swap;
  const order = f.order[head];
  const n = 1 << order;
  // add_to_swap: into the swap cache, which holds one reference per page; marked dirty.
  yield lock(L_SWAP_LOCK, SWAP_DEV);
  f.set(head, PG_SWAPCACHE | PG_DIRTY);
  f.swapSlot[head] = slot;
  for (let i = 0; i < n; i++) sw.cache[slot + i] = head;
  k.folioGet(head, n);
  yield unlock(L_SWAP_LOCK, SWAP_DEV);
  yield* unmapToSwap(k, head, slot);
  if (f.mapped(head)) {
    // try_to_unmap did not get every mapping: the folio stays mapped and in the swap cache.
    yield unlock(L_FOLIO_LOCK, head);
    return;
  }
  // pageout → swap_writeout: a synchronous write of every page to its slot.
  for (let i = 0; i < n; i++) sw.data[slot + i] = f.data[head + i];
  f.clear(head, PG_DIRTY);
  k.stats.event('pswpout', n);
  if (order >= k.geo.pmdOrder) k.stats.event('thp_swpout');
  if (order > 0) k.stats.mthpStat(order, 'swpout');
  // __remove_mapping: freeable only if the swap cache holds the last references.
  if (f.refcount[head] !== n) {
    yield unlock(L_FOLIO_LOCK, head);
    return;
  }
  yield lock(L_SWAP_LOCK, SWAP_DEV);
  for (let i = 0; i < n; i++) {
    sw.cache[slot + i] = -1;
    sw.maybeFree(slot + i); // pages no PTE referred to give their slot back at once
  }
  f.clear(head, PG_SWAPCACHE);
  f.swapSlot[head] = -1;
  yield unlock(L_SWAP_LOCK, SWAP_DEV);
  yield unlock(L_FOLIO_LOCK, head);
  k.folioPut(head, n);
}

/** The vpn of the folio's first page in the VMA (vma_address; may lie outside the VMA). */
function folioVpn(k: Kernel, vma: Vma, head: number): number {
  return vma.start + (k.folios.index[head] - vma.pgoff);
}

/** Split every huge PMD that maps the folio (try_to_unmap with TTU_SPLIT_HUGE_PMD). */
function* splitPmdMappings(k: Kernel, vmas: Vma[], head: number): Step<void> {
  for (const vma of vmas) {
    const vpn = folioVpn(k, vma, head);
    if (vpn < vma.start || vpn >= vma.end) continue;
    const pmdT = pmdTableOf(k, vma.mm, vpn);
    if (!pmdT) continue;
    const pmdI = levelIndex(k, vpn, PMD);
    if (k.pt.pmd.type(pmdT, pmdI) === E_PRESENT && k.pt.pmd.getVal(pmdT, pmdI) === head)
      yield* splitHugePmd(k, vma, pmdT, pmdI);
  }
}

/**
 * try_to_unmap_one for a folio in the swap cache, through the anon rmap: each PTE mapping page i
 * becomes a swap entry for slot + i, exclusive if the page was PageAnonExclusive, keeping the
 * soft-dirty and uffd-wp bits. A PMD mapping is split first.
 */
function* unmapToSwap(k: Kernel, head: number, slot: number): Step<void> {
  const f = k.folios;
  const pte = k.pt.pte;
  const sw = k.swap;
  const ptrs = k.geo.ptrsPerPte;
  const n = f.nrPagesOf(head);
  // folio_lock_anon_vma_read: the root's rwsem (the folio's own anon_vma may be a child's).
  const av = folioAnonVma(k, head);
  if (av) yield* anonVmaLockRead(av);
  const vmas = anonRmapVmas(k, head);
  if (f.entireMapcount[head] > 0) yield* splitPmdMappings(k, vmas, head);
  for (const vma of vmas) {
    const first = folioVpn(k, vma, head);
    const lo = Math.max(first, vma.start);
    const hi = Math.min(first + n, vma.end);
    for (const [s, e, pmdT, pmdI] of pmdSpans(k, vma, lo, hi)) {
      if (k.pt.pmd.type(pmdT, pmdI) !== E_TABLE) continue;
      const pteT: number = yield* call(pteOffsetMapLock(k, pmdT, pmdI));
      if (!pteT) continue;
      let unmapped = 0;
      let runStart = -1;
      let run = 0;
      for (let vpn = s; vpn <= e; vpn++) {
        const i = vpn % ptrs;
        const off = vpn - first;
        const hit =
          vpn < e && pte.type(pteT, i) === E_PRESENT && pte.getVal(pteT, i) === head + off;
        if (hit) {
          const bits = pte.getBits(pteT, i);
          let swp = E_SWAP | (bits & (B_SOFT_DIRTY | B_UFFD_WP));
          if (f.flags[head + off] & PG_ANON_EXCLUSIVE) {
            swp |= B_EXCLUSIVE;
            f.flags[head + off] &= ~PG_ANON_EXCLUSIVE; // folio_try_share_anon_rmap_pte
          }
          if (bits & B_DIRTY) f.set(head, PG_DIRTY);
          pte.set(pteT, i, slot + off, swp);
          sw.count[slot + off]++;
          vma.mm.swapEnts++;
          if (run === 0) runStart = head + off;
          run++;
        } else if (run > 0) {
          rmapRemovePtes(k, head, runStart, run, vma);
          unmapped += run;
          run = 0;
        }
      }
      yield* pteUnmapUnlock(pteT);
      if (unmapped) k.folioPut(head, unmapped);
    }
  }
  if (av) yield* anonVmaUnlockRead(av);
}

/** A lazy-free folio was written after MADV_FREE: make it swap-backed again, and dirty. */
function redirtied(k: Kernel, head: number): void {
  k.folios.set(head, PG_DIRTY);
  k.folios.clear(head, PG_LAZYFREE);
}

/**
 * try_to_unmap_one for a lazy-free (not swap-backed) folio: every clean mapping is dropped and the
 * folio freed; a dirty one (or PG_DIRTY) stops the walk and the folio becomes swap-backed again.
 * VM_DROPPABLE mappings are dropped even when dirty.
 */
function* discardLazyfree(k: Kernel, head: number): Step<void> {
  const f = k.folios;
  const n = f.nrPagesOf(head);
  // folio_lock_anon_vma_read: the root's rwsem (the folio's own anon_vma may be a child's).
  const av = folioAnonVma(k, head);
  if (av) yield* anonVmaLockRead(av);
  const spans = anonRmapVmas(k, head).map((vma) => [vma, folioVpn(k, vma, head)] as const);
  walk: for (const [vma, first] of spans) {
    const droppable = (vma.flags & VM_DROPPABLE) !== 0;
    const lo = Math.max(first, vma.start);
    const hi = Math.min(first + n, vma.end);
    for (const [s, e, pmdT, pmdI] of pmdSpans(k, vma, lo, hi)) {
      const type = k.pt.pmd.type(pmdT, pmdI);
      let ok = true;
      if (type === E_PRESENT) ok = yield* discardPmd(k, vma, pmdT, pmdI, head, droppable);
      else if (type === E_TABLE)
        ok = yield* discardPtes(k, vma, pmdT, pmdI, head, first, s, e, droppable);
      if (!ok) break walk;
    }
  }
  if (av) yield* anonVmaUnlockRead(av);
}

/** unmap_huge_pmd_locked → __discard_anon_folio_pmd_locked: drop a clean lazy-free THP whole. */
function* discardPmd(
  k: Kernel,
  vma: Vma,
  pmdT: number,
  pmdI: number,
  head: number,
  droppable: boolean,
): Step<boolean> {
  const pmd = k.pt.pmd;
  yield lock(L_PMD_LOCK, pmdT);
  if (pmd.type(pmdT, pmdI) !== E_PRESENT || pmd.getVal(pmdT, pmdI) !== head) {
    yield unlock(L_PMD_LOCK, pmdT);
    return true;
  }
  const dirty = pmd.getBits(pmdT, pmdI) & B_DIRTY || k.folios.flags[head] & PG_DIRTY;
  if (dirty && !droppable) {
    redirtied(k, head);
    yield unlock(L_PMD_LOCK, pmdT);
    return false;
  }
  const loc = pmdT * pmd.entriesPerTable + pmdI;
  const pgtable = k.pt.deposit[loc];
  k.pt.deposit[loc] = 0;
  pmd.clear(pmdT, pmdI);
  if (pgtable) k.pt.pte.free(pgtable); // zap_deposited_table
  rmapRemovePmd(k, head, vma);
  yield unlock(L_PMD_LOCK, pmdT);
  k.folioPut(head);
  return true;
}

/** The PTEs of one table that map the lazy-free folio: all dropped together, or none if dirty. */
function* discardPtes(
  k: Kernel,
  vma: Vma,
  pmdT: number,
  pmdI: number,
  head: number,
  first: number,
  start: number,
  end: number,
  droppable: boolean,
): Step<boolean> {
  const pte = k.pt.pte;
  const ptrs = k.geo.ptrsPerPte;
  const pteT: number = yield* call(pteOffsetMapLock(k, pmdT, pmdI));
  if (!pteT) return true;
  let dirty = (k.folios.flags[head] & PG_DIRTY) !== 0;
  const hits: number[] = [];
  for (let vpn = start; vpn < end; vpn++) {
    const i = vpn % ptrs;
    if (pte.type(pteT, i) !== E_PRESENT || pte.getVal(pteT, i) !== head + (vpn - first)) continue;
    hits.push(vpn);
    if (pte.getBits(pteT, i) & B_DIRTY) dirty = true;
  }
  if (dirty && !droppable) {
    redirtied(k, head);
    yield* pteUnmapUnlock(pteT);
    return false;
  }
  for (let h = 0; h < hits.length;) {
    let run = 1;
    while (h + run < hits.length && hits[h + run] === hits[h] + run) run++;
    for (let j = 0; j < run; j++) pte.clear(pteT, (hits[h] + j) % ptrs);
    rmapRemovePtes(k, head, head + (hits[h] - first), run, vma);
    h += run;
  }
  yield* pteUnmapUnlock(pteT);
  if (hits.length) k.folioPut(head, hits.length);
  return true;
}

// ---------------------------------------------------------------------------------------------
// MADV_FREE

/** folio_mark_lazyfree: a swap-backed anon folio outside the swap cache becomes lazily freeable. */
function markLazyfree(k: Kernel, head: number): void {
  if (k.folios.flags[head] & (PG_SWAPCACHE | PG_LAZYFREE)) return;
  k.folios.set(head, PG_LAZYFREE);
}

/** madvise_free_single_vma → madvise_free_pte_range over [start, end) of one VMA. */
export function* madviseFree(k: Kernel, vma: Vma, start: number, end: number): Step<void> {
  if (!madvLruVma(vma)) return;
  for (const [s, e, pmdT, pmdI, whole] of pmdSpans(k, vma, start, end)) {
    let type = (yield* pmdReadLockless(k, pmdT, pmdI)) & E_TYPE_MASK;
    if (type === E_PRESENT) {
      yield* freeHugePmd(k, pmdT, pmdI, whole);
      type = (yield* pmdReadLockless(k, pmdT, pmdI)) & E_TYPE_MASK;
    }
    if (type === E_TABLE) yield* freePtes(k, vma, pmdT, pmdI, s, e);
  }
}

/** madvise_free_huge_pmd. */
function* freeHugePmd(k: Kernel, pmdT: number, pmdI: number, whole: boolean): Step<void> {
  const f = k.folios;
  const pmd = k.pt.pmd;
  yield lock(L_PMD_LOCK, pmdT);
  const head = pmd.getVal(pmdT, pmdI);
  if (pmd.type(pmdT, pmdI) !== E_PRESENT || !liveAnon(k, head) || f.maybeMappedShared(head)) {
    yield unlock(L_PMD_LOCK, pmdT);
    return;
  }
  if (!(yield trylock(L_FOLIO_LOCK, head))) {
    yield unlock(L_PMD_LOCK, pmdT);
    return;
  }
  if (!whole) {
    // Part of the THP: split the folio so only the covered pages become lazy-free.
    yield unlock(L_FOLIO_LOCK, head);
    yield unlock(L_PMD_LOCK, pmdT);
    yield* splitFolio(k, head);
    return;
  }
  f.clear(head, PG_DIRTY);
  yield unlock(L_FOLIO_LOCK, head);
  const bits = pmd.getBits(pmdT, pmdI);
  if (bits & YOUNG_DIRTY) pmd.set(pmdT, pmdI, head, bits & ~YOUNG_DIRTY);
  markLazyfree(k, head);
  yield unlock(L_PMD_LOCK, pmdT);
}

/**
 * madvise_free_pte_range over [start, end) of one PTE table. Swap entries are dropped (cheaper
 * than a swap-in later). Only a folio whose PG_DIRTY must be cleared (or that sits in the swap
 * cache) has to be exclusive; a shared clean folio is still marked lazy-free, and the dirty bits
 * of its other mappings keep reclaim from discarding it.
 */
function* freePtes(
  k: Kernel,
  vma: Vma,
  pmdT: number,
  pmdI: number,
  start: number,
  end: number,
): Step<void> {
  const f = k.folios;
  const pte = k.pt.pte;
  const ptrs = k.geo.ptrsPerPte;
  let pteT: number = yield* call(pteOffsetMapLock(k, pmdT, pmdI));
  if (!pteT) return;
  const endI = ((end - 1) % ptrs) + 1;
  for (let i = start % ptrs; i < endI;) {
    const bits = pte.getBits(pteT, i);
    const type = bits & E_TYPE_MASK;
    if (type === E_SWAP) {
      const slot = pte.getVal(pteT, i);
      pte.clear(pteT, i);
      vma.mm.swapEnts--;
      freeSwapEntry(k, slot);
      i++;
      continue;
    }
    if (type === E_MARKER && pte.getVal(pteT, i) === MARKER_POISON) pte.clear(pteT, i);
    if (type !== E_PRESENT || bits & B_SPECIAL) {
      i++;
      continue;
    }
    const pfn = pte.getVal(pteT, i);
    const head = f.headOf(pfn);
    if (!liveAnon(k, head)) {
      i++;
      continue;
    }
    const n = f.nrPagesOf(head);
    let nr = 1;
    if (n > 1) {
      nr = pteBatch(k, pteT, i, endI, head);
      if (nr < n) {
        // Partly covered: only the covered pages become lazy-free.
        const r: Resplit = yield* splitPartlyCovered(k, head, nr, pmdT, pmdI, pteT);
        if (!r.pteT) return;
        pteT = r.pteT;
        i += r.skip;
        continue;
      }
    }
    if (f.flags[head] & (PG_SWAPCACHE | PG_DIRTY)) {
      if (!(yield trylock(L_FOLIO_LOCK, head))) {
        i += nr;
        continue;
      }
      let keep = f.mapcount[head] !== n; // shared: PG_DIRTY may be another mapping's
      if (!keep && f.flags[head] & PG_SWAPCACHE) {
        swapCacheMaybeDrop(k, head); // folio_free_swap
        keep = (f.flags[head] & PG_SWAPCACHE) !== 0;
      }
      if (!keep) f.clear(head, PG_DIRTY);
      yield unlock(L_FOLIO_LOCK, head);
      if (keep) {
        i += nr;
        continue;
      }
    }
    for (let j = 0; j < nr; j++) {
      const b = pte.getBits(pteT, i + j);
      if (b & YOUNG_DIRTY) pte.set(pteT, i + j, pte.getVal(pteT, i + j), b & ~YOUNG_DIRTY);
    }
    markLazyfree(k, head);
    i += nr;
  }
  yield* pteUnmapUnlock(pteT);
}
