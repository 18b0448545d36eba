// Direct compaction (mm/compaction.c) for one order, and the part of the page allocator's slow
// path that runs it (__alloc_pages_direct_compact in mm/page_alloc.c).
//
// The model. The migrate scanner walks the naturally aligned blocks of 2^order pages from pfn 0
// up. A block is a candidate when each allocated page in it belongs to a small anonymous folio
// that can move: on the LRU, mapped, not locked, not pinned (no reference beyond its mappings),
// not the zero page, not in the swap cache and not in a page cache. A block holding any other
// page (a large folio, the zero page or huge zero folio, a pinned, locked, swap-cache or
// page-cache folio) is passed over whole, as asynchronous direct compaction abandons a block at
// the first page it cannot isolate. Each movable folio of the first candidate block is migrated
// to a free page outside the block; once the block is empty it merges in the buddy allocator.
//
// Migration (migrate_pages of one small anon folio): the folio lock (trylock, as in async
// mode), isolation from the LRU with a reference, then the anon rmap walk under the anon_vma
// lock, moving each PTE that maps the folio to the new page under that PTE's lock, keeping its
// bits. The kernel first replaces every PTE by a migration entry, copies, then restores; the
// model switches each PTE in one step instead. That is equivalent here: a page mapped by more
// than one PTE is mapped read-only by all of them (COW), and the isolation reference on the old
// folio and the allocation reference on the new one keep do_wp_page from reusing either while
// the PTEs move, so the content copied at the first switch cannot change afterwards.
//
// Not modelled: the free scanner's direction (destinations come from the buddy allocator,
// anywhere outside the block; the kernel's scanners meet in the middle), migration of large
// folios, swap-cache and page-cache folios, compaction deferral (defer_compaction), pageblock
// skip hints, compaction priorities (sync/async escalation), kcompactd, and direct reclaim (no
// page reclaim or shrinkers run before or after compaction).

import {
  PG_ANON,
  PG_ANON_EXCLUSIVE,
  PG_FILE,
  PG_HEAD,
  PG_LOCKED,
  PG_LRU,
  PG_SWAPCACHE,
  PG_ZERO,
} from './folio.ts';
import { gfpDirectReclaim, gfpString } from './gfp.ts';
import { type Kernel, NO_PFN } from './kernel.ts';
import { memcgMigrate } from './memcg.ts';
import { levelIndex, pmdTableOf, pteOffsetMapLock, pteUnmapUnlock } from './pagewalk.ts';
import { E_PRESENT, PMD } from './pgtable.ts';
import { rmapAddPtes, rmapRemovePtes } from './rmap.ts';
import { anonRmapVmas } from './split.ts';
import {
  L_ANON_VMA_READ,
  L_FOLIO_LOCK,
  L_LRU_LOCK,
  type Step,
  lock,
  trylock,
  unlock,
} from './step.ts';

/** enum compact_result, the values the model produces. */
export type CompactResult = 'COMPACT_SKIPPED' | 'COMPACT_COMPLETE' | 'COMPACT_SUCCESS';

/** enum compact_priority: the model compacts as the first, asynchronous attempt does. */
const COMPACT_PRIO_ASYNC = 2;

/** The single LRU list's lock id (one node, one lruvec). */
const LRUVEC = 0;

/**
 * The allocation of a (large) folio with a gfp mask, as __alloc_pages does it for the THP
 * allocations: the free lists, and on failure with __GFP_DIRECT_RECLAIM one round of direct
 * compaction followed by one more try. Order 0 never compacts.
 */
export function* allocFolioGfp(k: Kernel, order: number, gfp: number): Step<number> {
  const pfn = k.allocFolio(order);
  if (pfn !== NO_PFN || order === 0 || !gfpDirectReclaim(gfp)) return pfn;
  return (yield allocPagesDirectCompact(k, order, gfp)) as number;
}

/** __alloc_pages_direct_compact: compact, count the stall, and take the page if it is there. */
export function* allocPagesDirectCompact(k: Kernel, order: number, gfp: number): Step<number> {
  // Beyond MAX_PAGE_ORDER no block can ever form.
  if (order <= 0 || order > k.buddy.maxOrder) return NO_PFN;
  const result = (yield tryToCompactPages(k, order, gfp)) as CompactResult;
  if (result === 'COMPACT_SKIPPED') return NO_PFN;
  k.stats.event('compact_stall');
  const pfn = k.allocFolio(order);
  k.stats.event(pfn === NO_PFN ? 'compact_fail' : 'compact_success');
  return pfn;
}

/** compaction_suitable: free memory must cover compact_gap(order) = 2 << order pages. */
export function compactionSuitable(k: Kernel, order: number): boolean {
  return k.buddy.freePages >= 2 << order;
}

/** try_to_compact_pages on the single zone. */
export function* tryToCompactPages(k: Kernel, order: number, gfp: number): Step<CompactResult> {
  k.trace('mm_compaction_try_to_compact_pages', {
    order,
    gfp_mask: gfpString(gfp),
    prio: COMPACT_PRIO_ASYNC,
  });
  if (!compactionSuitable(k, order)) return 'COMPACT_SKIPPED';
  const n = 1 << order;
  const heads: number[] = [];
  let result: CompactResult = 'COMPACT_COMPLETE';
  for (let start = 0; start + n <= k.nrPages; start += n) {
    heads.length = 0;
    const free = scanBlock(k, start, n, heads);
    if (free < 0) continue;
    // Migration targets must come from outside the block.
    if (k.buddy.freePages - free < heads.length) continue;
    yield* compactBlock(k, start, n, heads);
    // compact_finished: a free block of the order exists now.
    if (k.buddy.canAlloc(order)) {
      result = 'COMPACT_SUCCESS';
      break;
    }
  }
  k.trace('mm_compaction_end', { order, status: result });
  return result;
}

/** A small anonymous folio that migration can move (isolate_migratepages_block's checks). */
function movableAnon(k: Kernel, head: number): boolean {
  const f = k.folios;
  const fl = f.flags[head];
  return (
    f.order[head] === 0 &&
    (fl & (PG_HEAD | PG_ANON | PG_LRU)) === (PG_HEAD | PG_ANON | PG_LRU) &&
    (fl & (PG_ZERO | PG_FILE | PG_SWAPCACHE | PG_LOCKED)) === 0 &&
    f.pincount[head] === 0 &&
    f.mapcount[head] > 0 &&
    // No reference beyond the mappings: not pinned, not held by anyone else.
    f.refcount[head] === f.mapcount[head]
  );
}

/**
 * The migrate scanner over [start, start + n): collects the folios to move into heads and
 * returns the number of free pages in the block, or -1 if some page cannot move.
 */
function scanBlock(k: Kernel, start: number, n: number, heads: number[]): number {
  const freeOrder = k.buddy.freeOrder;
  const end = start + n;
  let free = 0;
  let pfn = start;
  let ok = true;
  while (pfn < end) {
    const fo = freeOrder[pfn];
    if (fo >= 0) {
      // A free buddy block (never larger than this one, or the allocation had not failed).
      free += 1 << fo;
      pfn += 1 << fo;
    } else if (movableAnon(k, pfn)) {
      heads.push(pfn);
      pfn++;
    } else {
      ok = false;
      pfn++;
      break;
    }
  }
  k.stats.event('compact_migrate_scanned', pfn - start);
  return ok ? free : -1;
}

/**
 * Migrate every folio of heads out of [start, start + n). Free pages the allocator hands out
 * from inside the block are held aside (the free scanner would not take them) and given back
 * at the end, when they merge with the pages the migrations freed.
 */
function* compactBlock(k: Kernel, start: number, n: number, heads: number[]): Step<boolean> {
  const held: number[] = [];
  const end = start + n;
  let ok = true;
  for (const src of heads) {
    // compaction_alloc: a free page outside the block.
    let dst = NO_PFN;
    for (;;) {
      const p = k.buddy.alloc(0);
      if (p === NO_PFN) break;
      k.stats.event('compact_free_scanned');
      if (p >= start && p < end) {
        held.push(p);
        continue;
      }
      dst = p;
      break;
    }
    if (dst === NO_PFN) {
      ok = false;
      break;
    }
    k.stats.event('compact_isolated');
    k.folios.prep(dst, 0);
    if (!((yield migrateFolio(k, src, dst)) as boolean)) {
      // Async compaction gives up on a block at the first folio it cannot move.
      ok = false;
      break;
    }
  }
  // release_free_list
  for (const p of held) k.buddy.free(p, 0);
  return ok;
}

/**
 * migrate_pages for one small anon folio src into the fresh folio dst (one reference, the
 * allocation's). Returns whether src was moved (or went away by itself); on failure every
 * mapping that did move stays on dst and the rest on src, both consistent.
 */
export function* migrateFolio(k: Kernel, src: number, dst: number): Step<boolean> {
  const f = k.folios;
  const pte = k.pt.pte;
  if (!(yield trylock(L_FOLIO_LOCK, src))) {
    k.folioPut(dst);
    k.stats.event('pgmigrate_fail');
    return false;
  }
  if (!movableAnon(k, src)) {
    // Changed since the scan: freed (nothing to move) or no longer movable.
    yield unlock(L_FOLIO_LOCK, src);
    k.folioPut(dst);
    const gone = (f.flags[src] & PG_HEAD) === 0 && k.buddy.freeOrder[src] >= 0;
    if (!gone) k.stats.event('pgmigrate_fail');
    return gone;
  }
  // folio_isolate_lru: off the LRU, with a reference that keeps do_wp_page from reusing it.
  yield lock(L_LRU_LOCK, LRUVEC);
  f.clear(src, PG_LRU);
  k.folioGet(src);
  yield unlock(L_LRU_LOCK, LRUVEC);
  k.stats.event('compact_isolated');
  // The new folio is locked until its mappings are in place.
  yield lock(L_FOLIO_LOCK, dst);
  const avId = f.mapping[src];
  const root = k.anonVmas.get(avId)?.root.id ?? avId;
  const ptrs = k.geo.ptrsPerPte;
  let copied = false;
  // try_to_migrate + remove_migration_ptes, one PTE at a time (rmap_walk_anon).
  yield lock(L_ANON_VMA_READ, root);
  for (const vma of anonRmapVmas(k, src)) {
    if (f.mapcount[src] === 0) break;
    const vpn = vma.addressOf(f.index[src]);
    if (vpn < 0) continue;
    const pmdT = pmdTableOf(k, vma.mm, vpn);
    if (!pmdT) continue;
    const pteT = (yield pteOffsetMapLock(k, pmdT, levelIndex(k, vpn, PMD))) as number;
    if (!pteT) continue;
    const pteI = vpn % ptrs;
    if (pte.type(pteT, pteI) === E_PRESENT && pte.getVal(pteT, pteI) === src) {
      if (!copied) {
        // folio_migrate_mapping + folio_migrate_flags + the copy, while no PTE can write.
        f.flags[dst] = f.flags[src] & ~(PG_LRU | PG_LOCKED | PG_ANON_EXCLUSIVE);
        f.mapping[dst] = f.mapping[src];
        f.index[dst] = f.index[src];
        f.data[dst] = f.data[src];
        copied = true;
      }
      // PageAnonExclusive moves with the mapping it describes.
      f.flags[dst] |= f.flags[src] & PG_ANON_EXCLUSIVE;
      pte.set(pteT, pteI, dst, pte.getBits(pteT, pteI));
      rmapAddPtes(k, dst, dst, 1, vma);
      k.folioGet(dst);
      rmapRemovePtes(k, src, src, 1, vma);
      k.folioPut(src);
    }
    yield* pteUnmapUnlock(pteT);
  }
  yield unlock(L_ANON_VMA_READ, root);
  const moved = f.mapcount[src] === 0;
  // folio_putback_lru of whichever folio is still in use.
  if (f.mapcount[dst] > 0) f.set(dst, PG_LRU);
  yield unlock(L_FOLIO_LOCK, dst);
  if (!moved) f.set(src, PG_LRU);
  else f.clear(src, PG_ANON_EXCLUSIVE);
  yield unlock(L_FOLIO_LOCK, src);
  // The isolation reference (the last one if it moved: the old page goes back to the buddy
  // allocator) and the allocation reference of the new folio.
  if (moved) memcgMigrate(k, src, dst);
  k.folioPut(src);
  k.folioPut(dst);
  k.stats.event(moved ? 'pgmigrate_success' : 'pgmigrate_fail');
  return moved;
}
