// collapse_huge_page for PMD order: allocate with no lock held, revalidate, swap in, take the
// write locks, detach the PTE table with pmdp_collapse_flush, isolate, copy, install the huge PMD
// with the old table deposited. Entered and left with the mmap lock dropped.

import { allocFolioGfp } from '../mm/compaction.ts';
import { doSwapPage, mapAnonFolioPmd, mapAnonFolioPtes } from '../mm/fault.ts';
import { PG_LOCKED, PG_LRU } from '../mm/folio.ts';
import { collapseGfpMask } from '../mm/gfp.ts';
import { type Kernel, NO_PFN } from '../mm/kernel.ts';
import { memcgCharge } from '../mm/memcg.ts';
import { mmapWriteUnlock } from '../mm/mmap.ts';
import {
  B_UFFD_WP,
  E_PRESENT,
  E_SWAP,
  E_TABLE,
  E_TYPE_MASK,
  T_DETACHED,
  T_LINKED,
} from '../mm/pgtable.ts';
import { folioPteBatch } from '../mm/pte-batch.ts';
import { rmapRemovePtes } from '../mm/rmap.ts';
import {
  L_ANON_VMA_WRITE,
  L_MMAP_READ,
  L_MMAP_WRITE,
  L_PMD_LOCK,
  L_PTE_LOCK,
  L_RCU,
  S_PMD_ENTRY,
  S_PTE_ENTRY,
  type Step,
  lock,
  tlbFlushRange,
  tlbRemoveTableSyncOne,
  unlock,
  writeShared,
} from '../mm/step.ts';
import { vmaStartWrite } from '../mm/vma-ops.ts';
import type { Mm, Vma } from '../mm/vma.ts';
import { type CollapseControl, maxPtesNone, maxPtesShared, mthpMaxPtesNone } from './control.ts';
import { findPmdOrThpOrNone } from './find-pmd.ts';
import { hugepageVmaRevalidate } from './revalidate.ts';
import { cleanLazyfree, pteNoneOrZero, pteReferenced, refcountSuitable } from './scan-pmd.ts';
import type { ScanResult } from './scan-result.ts';

/** allocChargeFolio's result when mem_cgroup_charge failed. */
const CHARGE_FAILED = -2;

/**
 * alloc_charge_folio: the huge folio, allocated before any lock is taken; khugepaged compacts
 * only with khugepaged/defrag set, MADV_COLLAPSE always.
 */
function* allocChargeFolio(k: Kernel, mm: Mm, order: number, cc: CollapseControl): Step<number> {
  const gfp = collapseGfpMask(k, cc.isKhugepaged);
  const folio = (yield allocFolioGfp(k, order, gfp)) as number;
  const stats = k.profile.mthpCollapseStats;
  if (folio === NO_PFN) {
    if (order === k.geo.pmdOrder) k.stats.event('thp_collapse_alloc_failed');
    if (stats) k.stats.mthpStat(order, 'collapse_alloc_failed');
    return NO_PFN;
  }
  if (order === k.geo.pmdOrder) k.stats.event('thp_collapse_alloc');
  if (stats) k.stats.mthpStat(order, 'collapse_alloc');
  if (k.uncharge && !((yield memcgCharge(k, mm, folio, gfp)) as boolean)) {
    k.folioPut(folio);
    return CHARGE_FAILED;
  }
  return folio;
}

/**
 * __collapse_huge_page_swapin: fault the swap PTEs of [vpn, vpn + 2^order) back in, under mmap
 * read. Below PMD order the first swap entry ends it (mTHP refuses swap).
 */
function* collapseSwapin(
  k: Kernel,
  vma: Vma,
  vpn: number,
  order: number,
  referenced: number,
): Step<ScanResult> {
  const nr = k.geo.ptrsPerPte;
  const n = 1 << order;
  let swappedIn = 0;
  let result: ScanResult = 'SCAN_SUCCEED';
  for (let i = 0; i < n; i++) {
    const look = yield* findPmdOrThpOrNone(k, vma.mm, vpn + i);
    if (look.result !== 'SCAN_SUCCEED') {
      result = 'SCAN_PMD_NULL';
      break;
    }
    const pteT = k.pt.pmd.getVal(look.pmdT, look.pmdI);
    const idx = (vpn + i) % nr;
    const bits = k.pt.pte.getBits(pteT, idx);
    if ((bits & E_TYPE_MASK) !== E_SWAP) continue;
    if (order < k.geo.pmdOrder) {
      result = 'SCAN_EXCEED_SWAP_PTE';
      if (k.profile.mthpCollapseStats) k.stats.mthpStat(order, 'collapse_exceed_swap_pte');
      break;
    }
    const r: number = yield* doSwapPage(
      k,
      vma,
      vpn + i,
      look.pmdT,
      look.pmdI,
      pteT,
      idx,
      bits,
      false,
      false,
    );
    if (r & 1 /* VM_FAULT_OOM */) {
      result = 'SCAN_FAIL';
      break;
    }
    swappedIn++;
  }
  k.trace(
    'mm_collapse_huge_page_swapin',
    withOrder(
      k,
      { mm: vma.mm.id, swapped_in: swappedIn, referenced, ret: result === 'SCAN_SUCCEED' ? 1 : 0 },
      order,
    ),
  );
  return result;
}

/** The 2^order PTE values a copy reads: a range of a table, or a snapshot taken before clearing. */
interface PteSource {
  bits: Uint16Array;
  val: Int32Array;
  base: number;
}

function tableSource(k: Kernel, pteT: number, idx: number): PteSource {
  const pte = k.pt.pte;
  return { bits: pte.bits, val: pte.val, base: pteT * pte.entriesPerTable + idx };
}

interface Isolated {
  result: ScanResult;
  /** Folio heads isolated from the LRU and locked. */
  folios: number[];
  referenced: number;
  noneOrZero: number;
}

/**
 * __collapse_huge_page_isolate on the detached table: lock and isolate every folio mapped by the
 * 2^order PTEs from index idx. Below PMD order the none limit follows collapse_max_ptes_none,
 * shared pages are refused, and a folio already of the target order or larger ends it
 * (SCAN_PTE_MAPPED_HUGEPAGE).
 */
function isolate(
  k: Kernel,
  vma: Vma,
  src: PteSource,
  order: number,
  cc: CollapseControl,
): Isolated {
  const f = k.folios;
  const pte = { bits: src.bits, val: src.val };
  const nr = 1 << order;
  const pmd = order === k.geo.pmdOrder;
  const base = src.base;
  const out: Isolated = { result: 'SCAN_SUCCEED', folios: [], referenced: 0, noneOrZero: 0 };
  const limNone = pmd ? maxPtesNone(k, vma, cc) : mthpMaxPtesNone(k, vma, order);
  const limShared = pmd ? maxPtesShared(k, cc) : 0;
  const stats = k.profile.mthpCollapseStats;
  let shared = 0;
  const seen = new Set<number>();
  for (let i = 0; i < nr; i++) {
    const bits = pte.bits[base + i];
    const val = pte.val[base + i];
    if (pteNoneOrZero(f, bits, val)) {
      if (++out.noneOrZero <= limNone) continue;
      out.result = 'SCAN_EXCEED_NONE_PTE';
      if (pmd) k.stats.event('thp_scan_exceed_none_pte');
      if (stats) k.stats.mthpStat(order, 'collapse_exceed_none_pte');
      break;
    }
    if ((bits & E_TYPE_MASK) !== E_PRESENT) {
      out.result = 'SCAN_PTE_NON_PRESENT';
      break;
    }
    if (bits & B_UFFD_WP) {
      out.result = 'SCAN_PTE_UFFD_WP';
      break;
    }
    const head = f.headOf(val);
    if (cc.isKhugepaged && k.profile.scanPageLazyfree && cleanLazyfree(f, vma, bits, head)) {
      out.result = 'SCAN_PAGE_LAZYFREE';
      break;
    }
    if (f.maybeMappedShared(head) && ++shared > limShared) {
      out.result = 'SCAN_EXCEED_SHARED_PTE';
      if (pmd) k.stats.event('thp_scan_exceed_share_pte');
      if (stats) k.stats.mthpStat(order, 'collapse_exceed_shared_pte');
      break;
    }
    if (!pmd && f.order[head] >= order) {
      // Do not collapse a folio into one of its own size or smaller.
      out.result = 'SCAN_PTE_MAPPED_HUGEPAGE';
      break;
    }
    if (!seen.has(head)) {
      // folio_trylock, the refcount check and folio_isolate_lru, once per folio.
      if (f.flags[head] & PG_LOCKED) {
        out.result = 'SCAN_PAGE_LOCK';
        break;
      }
      if (!refcountSuitable(f, head)) {
        out.result = 'SCAN_PAGE_COUNT';
        break;
      }
      if (!(f.flags[head] & PG_LRU)) {
        out.result = 'SCAN_DEL_PAGE_LRU';
        break;
      }
      seen.add(head);
      f.set(head, PG_LOCKED);
      f.clear(head, PG_LRU);
      out.folios.push(head);
    }
    if (cc.isKhugepaged && pteReferenced(f, bits, head)) out.referenced++;
  }
  if (out.result === 'SCAN_SUCCEED' && cc.isKhugepaged && out.referenced === 0)
    out.result = 'SCAN_LACK_REFERENCED_PAGE';
  if (out.result !== 'SCAN_SUCCEED') releaseIsolated(k, out.folios);
  return out;
}

/** release_pte_folios / putback: unlock and return to the LRU. */
function releaseIsolated(k: Kernel, folios: number[]): void {
  for (const head of folios) {
    k.folios.clear(head, PG_LOCKED);
    k.folios.set(head, PG_LRU);
  }
}

/**
 * __collapse_huge_page_copy and _succeeded: copy the data (zero for none/zero PTEs), then drop
 * the old pages' mappings and references. With `clear` the PTEs are cleared on the way (the
 * detached table); without, the caller cleared and flushed them before the copy.
 */
function copyAndRelease(
  k: Kernel,
  vma: Vma,
  src: PteSource,
  clear: { pteT: number; idx: number } | null,
  folio: number,
  isolated: number[],
): void {
  copyForCollapse(k, src, folio);
  releaseCopied(k, vma, src, clear, folio, isolated);
}

/** __collapse_huge_page_copy: the new folio gets the old pages' data (zero for none/zero). */
function copyForCollapse(k: Kernel, src: PteSource, folio: number): void {
  const f = k.folios;
  const nr = 1 << f.order[folio];
  const { bits: sb, val: sv, base } = src;
  for (let i = 0; i < nr; i++)
    f.data[folio + i] = pteNoneOrZero(f, sb[base + i], sv[base + i]) ? 0 : f.data[sv[base + i]];
}

/** __collapse_huge_page_copy_succeeded: unlock and put back the old folios, drop their maps. */
function releaseCopied(
  k: Kernel,
  vma: Vma,
  src: PteSource,
  clear: { pteT: number; idx: number } | null,
  folio: number,
  isolated: number[],
): void {
  const f = k.folios;
  const pte = k.pt.pte;
  const nr = 1 << f.order[folio];
  const { bits: sb, val: sv, base } = src;
  releaseIsolated(k, isolated);
  for (let i = 0; i < nr; i++) {
    const bits = sb[base + i];
    const val = sv[base + i];
    if (pteNoneOrZero(f, bits, val)) {
      if (clear && (bits & E_TYPE_MASK) !== 0) pte.clear(clear.pteT, clear.idx + i);
      continue;
    }
    const head = f.headOf(val);
    // Batch consecutive pages of one large folio so it never looks partially mapped.
    const n = folioPteBatch(f, head, sb, sv, base + i, nr - i);
    if (clear) for (let j = 0; j < n; j++) pte.clear(clear.pteT, clear.idx + i + j);
    rmapRemovePtes(k, head, val, n, vma);
    k.folioPut(head, n);
    i += n - 1;
  }
}

/**
 * The pte-level design (not in any kernel): collapse the region inside the attached table, under
 * the PTE lock from isolation to install. Only the region's PTEs are cleared; the TLB range is
 * flushed and GUP-fast synchronised (tlb_remove_table_sync_one) before the old pages are read,
 * so no CPU can still write through a stale translation, and the table, the PMD and every other
 * PTE stay as they were: walkers of other VMAs sharing the table never see a change.
 */
function* collapsePteLevel(
  k: Kernel,
  vma: Vma,
  vpn: number,
  order: number,
  folio: number,
  pteT: number,
  idx: number,
  cc: CollapseControl,
): Step<{ result: ScanResult; isolated: number; noneOrZero: number }> {
  const pte = k.pt.pte;
  const n = 1 << order;
  const base = pteT * pte.entriesPerTable + idx;
  // The region's entries as they were before the clear, for the copy or the restore.
  const snap: PteSource = { bits: new Uint16Array(n), val: new Int32Array(n), base: 0 };
  // The first version counted references before clearing: a GUP-fast pin taken in between
  // survives the collapse (the checker's 'pte-level-isolate-before-clear').
  const countFirst = k.bugs.has('pte-level-isolate-before-clear');
  yield lock(L_RCU, 0);
  yield lock(L_PTE_LOCK, pteT);
  let iso: Isolated | null = null;
  if (countFirst) {
    iso = isolate(k, vma, tableSource(k, pteT, idx), order, cc);
    traceIsolate(k, iso, order);
  }
  if (!iso || iso.result === 'SCAN_SUCCEED') {
    snap.bits.set(pte.bits.subarray(base, base + n));
    snap.val.set(pte.val.subarray(base, base + n));
    // Clear the region, flush it and wait out GUP-fast before counting references: a pin taken
    // after this point must fail its recheck, one taken before shows in the count.
    yield writeShared(S_PTE_ENTRY, base);
    for (let i = 0; i < n; i++) pte.clear(pteT, idx + i);
    const early = k.bugs.has('copy-before-flush');
    if (early) copyForCollapse(k, snap, folio);
    yield tlbFlushRange(vma.mm.id);
    if (!k.bugs.has('no-ipi-sync')) yield tlbRemoveTableSyncOne();
    if (!iso) {
      iso = isolate(k, vma, snap, order, cc);
      traceIsolate(k, iso, order);
    }
    yield writeShared(S_PTE_ENTRY, base);
    if (iso.result !== 'SCAN_SUCCEED') {
      // Put the old entries back (no other walker could fill them: the PTE lock is held).
      for (let i = 0; i < n; i++) pte.set(pteT, idx + i, snap.val[i], snap.bits[i]);
    } else {
      if (!early) copyForCollapse(k, snap, folio);
      releaseCopied(k, vma, snap, null, folio, iso.folios);
      mapAnonFolioPtes(k, vma, vpn, folio, pteT, idx);
    }
  }
  yield unlock(L_PTE_LOCK, pteT);
  yield unlock(L_RCU, 0);
  return { result: iso.result, isolated: iso.folios.length, noneOrZero: iso.noneOrZero };
}

function traceIsolate(k: Kernel, iso: Isolated, order: number): void {
  k.trace(
    'mm_collapse_huge_page_isolate',
    withOrder(
      k,
      {
        pfn: iso.folios[0] ?? -1,
        none_or_zero: iso.noneOrZero,
        referenced: iso.referenced,
        status: iso.result,
      },
      order,
    ),
  );
}

/**
 * collapse_huge_page for the 2^order pages at vpn (PMD order: the whole PMD range). Below PMD
 * order the whole table is still detached with pmdp_collapse_flush, only the region is isolated
 * and copied, the anon_vma stays write-locked until the install, and the PMD is put back before
 * the new PTEs are written under the nested PTE lock; no table is deposited.
 */
export function* collapseHugePage(
  k: Kernel,
  mm: Mm,
  vpn: number,
  order: number,
  referenced: number,
  unmapped: number,
  cc: CollapseControl,
): Step<ScanResult> {
  const nr = k.geo.ptrsPerPte;
  const pmdOrder = order === k.geo.pmdOrder;
  const pmdVpn = vpn - (vpn % nr);
  const idx = vpn - pmdVpn;
  // pte-level collapse needs only the region inside the VMA; table detach needs the whole PMD.
  const pteLevel = !pmdOrder && k.collapsePolicy === 'pte-level';
  const ownRangeOnly = pteLevel || (!pmdOrder && k.bugs.has('no-full-pmd-check'));
  const span = ownRangeOnly ? { vpn, pages: 1 << order } : undefined;
  const folio = (yield allocChargeFolio(k, mm, order, cc)) as number;
  if (folio === NO_PFN) return traced(k, mm, 0, 'SCAN_ALLOC_HUGE_PAGE_FAIL', order);
  if (folio === CHARGE_FAILED) return traced(k, mm, 0, 'SCAN_CGROUP_CHARGE_FAIL', order);
  let result: ScanResult;
  let isolatedCount = 0;
  /** None and zero PTEs the new folio fills with fresh pages (the memory the collapse adds). */
  let filled = 0;

  yield lock(L_MMAP_READ, mm.id);
  let rv = hugepageVmaRevalidate(k, mm, pmdVpn, true, cc, order, span);
  result = rv.result;
  if (result === 'SCAN_SUCCEED') result = (yield* findPmdOrThpOrNone(k, mm, pmdVpn)).result;
  if (result === 'SCAN_SUCCEED' && unmapped > 0)
    result = yield* collapseSwapin(k, rv.vma!, vpn, order, referenced);
  yield unlock(L_MMAP_READ, mm.id);
  if (result !== 'SCAN_SUCCEED') {
    k.folioPut(folio);
    return traced(k, mm, 0, result, order);
  }

  // The write lock keeps faults and other walkers under the mmap lock away.
  yield lock(L_MMAP_WRITE, mm.id);
  rv = hugepageVmaRevalidate(k, mm, pmdVpn, true, cc, order, span);
  result = rv.result;
  const look = result === 'SCAN_SUCCEED' ? yield* findPmdOrThpOrNone(k, mm, pmdVpn) : null;
  if (look) result = look.result;
  if (result === 'SCAN_SUCCEED' && look && pteLevel) {
    const vma = rv.vma!;
    // vma_start_write keeps per-VMA-lock faults out ('collapse-no-vma-write-lock' forgets it).
    if (!k.bugs.has('collapse-no-vma-write-lock')) yield* vmaStartWrite(vma);
    const root = vma.anonVma!.root.id;
    yield lock(L_ANON_VMA_WRITE, root);
    const pteT = k.pt.pmd.getVal(look.pmdT, look.pmdI);
    const r = yield* collapsePteLevel(k, vma, vpn, order, folio, pteT, idx, cc);
    yield unlock(L_ANON_VMA_WRITE, root);
    result = r.result;
    isolatedCount = r.isolated;
    filled = r.noneOrZero;
  } else if (result === 'SCAN_SUCCEED' && look) {
    const vma = rv.vma!;
    // vma_start_write keeps per-VMA-lock faults out ('collapse-no-vma-write-lock' forgets it).
    if (!k.bugs.has('collapse-no-vma-write-lock')) yield* vmaStartWrite(vma);
    const root = vma.anonVma!.root.id;
    yield lock(L_ANON_VMA_WRITE, root);
    // pmdp_collapse_flush: the whole table leaves the tree, the TLB range is flushed.
    const { pmdT, pmdI } = look;
    yield lock(L_PMD_LOCK, pmdT);
    const pteT = k.pt.pmd.getVal(pmdT, pmdI);
    const pmdLoc = pmdT * k.pt.pmd.entriesPerTable + pmdI;
    yield writeShared(S_PMD_ENTRY, pmdLoc);
    k.pt.pmd.clear(pmdT, pmdI);
    k.pt.pte.state[pteT] = T_DETACHED;
    yield tlbFlushRange(mm.id);
    yield unlock(L_PMD_LOCK, pmdT);
    // GUP-fast may still walk the old table: wait it out. The detached table is mapped under RCU.
    if (!k.bugs.has('no-ipi-sync')) yield tlbRemoveTableSyncOne();
    yield lock(L_RCU, 0);
    yield lock(L_PTE_LOCK, pteT);
    const iso = isolate(k, vma, tableSource(k, pteT, idx), order, cc);
    yield unlock(L_PTE_LOCK, pteT);
    yield unlock(L_RCU, 0);
    isolatedCount = iso.folios.length;
    filled = iso.noneOrZero;
    traceIsolate(k, iso, order);
    if (iso.result !== 'SCAN_SUCCEED') {
      // Put the table back where it was.
      yield lock(L_PMD_LOCK, pmdT);
      yield writeShared(S_PMD_ENTRY, pmdLoc);
      k.pt.pmd.set(pmdT, pmdI, pteT, E_TABLE);
      k.pt.pte.state[pteT] = T_LINKED;
      yield unlock(L_PMD_LOCK, pmdT);
      yield unlock(L_ANON_VMA_WRITE, root);
      result = iso.result;
    } else if (pmdOrder) {
      // All pages are isolated and locked: rmap walkers cannot reach them any more.
      yield unlock(L_ANON_VMA_WRITE, root);
      copyAndRelease(k, vma, tableSource(k, pteT, 0), { pteT, idx: 0 }, folio, iso.folios);
      yield lock(L_PMD_LOCK, pmdT);
      yield writeShared(S_PMD_ENTRY, pmdLoc);
      mapAnonFolioPmd(k, vma, vpn, folio, pmdT, pmdI, pteT);
      yield unlock(L_PMD_LOCK, pmdT);
      result = 'SCAN_SUCCEED';
    } else {
      // The rest of the table is not isolated: rmap walkers must not find the PMD empty, so
      // the anon_vma stays locked until the table is back (v5 dropped it here: a checker bug).
      const earlyUnlock = k.bugs.has('early-anon-vma-unlock');
      if (earlyUnlock) yield unlock(L_ANON_VMA_WRITE, root);
      copyAndRelease(k, vma, tableSource(k, pteT, idx), { pteT, idx }, folio, iso.folios);
      yield lock(L_PMD_LOCK, pmdT);
      yield writeShared(S_PMD_ENTRY, pmdLoc);
      k.pt.pmd.set(pmdT, pmdI, pteT, E_TABLE);
      k.pt.pte.state[pteT] = T_LINKED;
      yield lock(L_PTE_LOCK, pteT);
      mapAnonFolioPtes(k, vma, vpn, folio, pteT, idx);
      yield unlock(L_PTE_LOCK, pteT);
      yield unlock(L_PMD_LOCK, pmdT);
      if (!earlyUnlock) yield unlock(L_ANON_VMA_WRITE, root);
      result = 'SCAN_SUCCEED';
    }
  }
  yield* mmapWriteUnlock(mm);
  if (result !== 'SCAN_SUCCEED') k.folioPut(folio);
  else k.trace('thpsim_collapse', { mm: mm.id, vpn, order, none_or_zero: filled });
  return traced(k, mm, isolatedCount, result, order);
}

/** The mTHP series added an order field to the collapse tracepoints. */
export function withOrder(
  k: Kernel,
  fields: Record<string, number | string | boolean>,
  order = k.geo.pmdOrder,
) {
  if (k.profile.mthpCollapse) fields.order = order;
  return fields;
}

function traced(
  k: Kernel,
  mm: Mm,
  isolated: number,
  result: ScanResult,
  order: number,
): ScanResult {
  k.trace('mm_collapse_huge_page', withOrder(k, { mm: mm.id, isolated, status: result }, order));
  return result;
}
