// File and shmem collapse (mm/khugepaged.c): collapse_scan_file walks the page cache of one
// PMD-aligned index range; collapse_file replaces the small folios there by one PMD-sized folio
// and retract_page_tables drops the emptied PTE tables of every VMA mapping the range, so the
// next fault maps the new folio with a PMD; try_collapse_pte_mapped_thp (with set_huge_pmd) does
// the same for one mm when the page cache already holds the PMD-sized folio. Page-cache
// collapse is PMD-only in both profiles.

import {
  type AddressSpace,
  filemapReadFolio,
  filemapWriteAndWaitRange,
  fileVmas,
  removeFromPageCache,
  storeLargeFolio,
  tryToUnmapFile,
} from '../mm/filemap.ts';
import { allocFolioGfp } from '../mm/compaction.ts';
import { doSetPmd } from '../mm/fault-file.ts';
import { PG_DIRTY, PG_FILE, PG_LOCKED, PG_LRU } from '../mm/folio.ts';
import { collapseGfpMask } from '../mm/gfp.ts';
import { type Kernel, NO_PFN } from '../mm/kernel.ts';
import {
  type PmdVal,
  levelIndex,
  pmdAlloc,
  pmdSameLockless,
  pteOffsetMapLock,
  pteOffsetMapRwNolock,
  pteFreeDefer,
  pteUnmapUnlock,
} from '../mm/pagewalk.ts';
import { E_NONE, E_PRESENT, E_TABLE, E_TYPE_MASK, PMD, T_DETACHED } from '../mm/pgtable.ts';
import { folioPteBatch } from '../mm/pte-batch.ts';
import { rmapRemovePtes } from '../mm/rmap.ts';
import {
  L_FOLIO_LOCK,
  L_I_MMAP_READ,
  L_PMD_LOCK,
  L_PTE_LOCK,
  L_RCU,
  S_PMD_ENTRY,
  type Step,
  lock,
  trylock,
  unlock,
  writeShared,
} from '../mm/step.ts';
import { thpVmaAllowableOrder } from '../mm/thp-orders.ts';
import {
  type Mm,
  VM_MAYBE_GUARD,
  VM_SHARED,
  VM_UFFD_MISSING,
  VM_UFFD_WP,
  type Vma,
} from '../mm/vma.ts';
import { type CollapseControl, uffdArmed } from './control.ts';
import { findPmdOrThpOrNone } from './find-pmd.ts';
import type { ScanResult } from './scan-result.ts';

const NONE = -1;

/**
 * collapse_scan_file for the PMD-aligned index range starting at `start` of a file (mapped at
 * haddr, for the tracepoints). Called without the mmap lock, so the caller reads the file and
 * index from the VMA before dropping it.
 */
export function* collapseScanFile(
  k: Kernel,
  mm: Mm,
  fileId: number,
  start: number,
  haddr: number,
  cc: CollapseControl,
): Step<ScanResult> {
  const f = k.folios;
  const nr = k.geo.ptrsPerPte;
  const file = k.files.get(fileId);
  // The caller checked the VMA (thp_vma_allowable_order lines offset and address up).
  if (!file || start % nr !== 0) return 'SCAN_VMA_CHECK';
  // collapse_max_ptes_none(cc, NULL, PMD order): no VMA, so no userfaultfd exception here.
  const maxNone = cc.isKhugepaged ? k.settings.khugepaged.maxPtesNone : nr;
  let present = 0;
  // Swap entries in the page cache (shmem swap) are not modelled: always 0.
  const swap = 0;
  let result: ScanResult = 'SCAN_SUCCEED';
  let lastFolio = NONE;
  yield lock(L_RCU, 0);
  for (let index = start; index < start + nr && index < file.size;) {
    const head = file.cache[index];
    if (head === NONE) {
      index++;
      continue;
    }
    lastFolio = head;
    if (f.order[head] === k.geo.pmdOrder) {
      // Already a PMD-sized folio: only the page tables may need retracting.
      result = 'SCAN_PTE_MAPPED_HUGEPAGE';
      break;
    }
    if (!(f.flags[head] & PG_LRU)) {
      result = 'SCAN_PAGE_LRU';
      break;
    }
    // folio_expected_ref_count + our speculative reference.
    if (f.refcount[head] !== f.expectedRefcount(head)) {
      result = 'SCAN_PAGE_COUNT';
      break;
    }
    present += f.nrPagesOf(head);
    index = f.index[head] + f.nrPagesOf(head);
  }
  yield unlock(L_RCU, 0);
  if (result === 'SCAN_SUCCEED') {
    if (present < nr - maxNone) {
      result = 'SCAN_EXCEED_NONE_PTE';
      k.stats.event('thp_scan_exceed_none_pte');
    } else {
      result = yield* collapseFile(k, mm, haddr, file, start, cc);
    }
  }
  k.trace('mm_khugepaged_scan_file', {
    mm: mm.id,
    pfn: lastFolio,
    filename: file.name,
    present,
    swap,
    result,
  });
  return result;
}

/**
 * alloc_charge_folio at PMD order, with the THP_COLLAPSE_ALLOC(_FAILED) events; the gfp mask
 * as for anonymous collapse (khugepaged/defrag for khugepaged, GFP_TRANSHUGE for MADV_COLLAPSE).
 */
function* allocCollapseFolio(k: Kernel, cc: CollapseControl): Step<number> {
  const order = k.geo.pmdOrder;
  const folio = (yield allocFolioGfp(k, order, collapseGfpMask(k, cc.isKhugepaged))) as number;
  const ok = folio !== NO_PFN;
  k.stats.event(ok ? 'thp_collapse_alloc' : 'thp_collapse_alloc_failed');
  if (k.profile.mthpCollapseStats)
    k.stats.mthpStat(order, ok ? 'collapse_alloc' : 'collapse_alloc_failed');
  return folio;
}

/** folio_unlock + folio_put of an old folio collapse_file had locked (and maybe isolated). */
function* dropOld(k: Kernel, head: number, isolated: boolean): Step<void> {
  const f = k.folios;
  if (isolated) {
    // folio_putback_lru
    f.set(head, PG_LRU);
    k.folioPut(head);
  }
  f.clear(head, PG_LOCKED);
  yield unlock(L_FOLIO_LOCK, head);
  k.folioPut(head);
}

/**
 * collapse_file: a new PMD-sized folio replaces the folios of [start, start + HPAGE_PMD_NR) in
 * the page cache. Old folios are locked, isolated and unmapped from every page table; shmem
 * holes become zero-filled pages, regular-file holes are read in; dirty regular-file folios
 * stop it. On success the PTE tables of the range are retracted where possible. MADV_COLLAPSE
 * gets SCAN_PTE_MAPPED_HUGEPAGE back on success so that it maps the folio at once.
 */
function* collapseFile(
  k: Kernel,
  mm: Mm,
  haddr: number,
  file: AddressSpace,
  start: number,
  cc: CollapseControl,
): Step<ScanResult> {
  const f = k.folios;
  const nr = k.geo.ptrsPerPte;
  const end = start + nr;
  const shmem = file.tmpfs;
  const newFolio = (yield allocCollapseFolio(k, cc)) as number;
  if (newFolio === NO_PFN)
    return traced(k, mm, NONE, start, haddr, file, 'SCAN_ALLOC_HUGE_PAGE_FAIL');
  // __folio_set_locked: nobody can see the new folio yet.
  yield lock(L_FOLIO_LOCK, newFolio);
  f.set(newFolio, PG_LOCKED);
  const old: number[] = [];
  let result: ScanResult = 'SCAN_SUCCEED';
  let nrNone = 0;
  let flush = false;
  let index = start;
  // The model's page cache ends at i_size: a range past it cannot become one folio.
  if (end > file.size) result = 'SCAN_FAIL';
  while (result === 'SCAN_SUCCEED' && index < end) {
    let head = file.cache[index];
    if (shmem) {
      if (head === NONE) {
        if (index === start && file.cache.subarray(start, end).every((h) => h === NONE)) {
          result = 'SCAN_TRUNCATED';
          break;
        }
        nrNone++;
        index++;
        continue;
      }
      if (!(yield trylock(L_FOLIO_LOCK, head))) {
        result = 'SCAN_PAGE_LOCK';
        break;
      }
      k.folioGet(head);
    } else if (head === NONE) {
      // page_cache_sync_readahead (one page with read_ahead_kb = 0), then filemap_lock_folio.
      head = filemapReadFolio(k, file, index);
      if (head === NONE) {
        result = 'SCAN_FAIL';
        break;
      }
      yield lock(L_FOLIO_LOCK, head);
    } else if (f.flags[head] & PG_DIRTY) {
      // khugepaged works on read-only files: start writeback and try again on a later visit.
      flush = true;
      result = 'SCAN_PAGE_DIRTY_OR_WRITEBACK';
      break;
    } else {
      if (!(yield trylock(L_FOLIO_LOCK, head))) {
        result = 'SCAN_PAGE_LOCK';
        break;
      }
      k.folioGet(head);
    }
    f.set(head, PG_LOCKED);
    // Locked: no truncation or other collapse can change it under us now.
    const n = f.nrPagesOf(head);
    if (f.order[head] === k.geo.pmdOrder) result = 'SCAN_PTE_MAPPED_HUGEPAGE';
    else if (!(f.flags[head] & PG_FILE) || f.mapping[head] !== file.id) result = 'SCAN_TRUNCATED';
    else if (!shmem && f.flags[head] & PG_DIRTY) result = 'SCAN_PAGE_DIRTY_OR_WRITEBACK';
    else if (!(f.flags[head] & PG_LRU)) result = 'SCAN_DEL_PAGE_LRU';
    if (result !== 'SCAN_SUCCEED') {
      yield* dropOld(k, head, false);
      break;
    }
    // folio_isolate_lru takes a reference of its own.
    f.clear(head, PG_LRU);
    k.folioGet(head);
    yield* tryToUnmapFile(k, head);
    // Ours, the isolation's and the page cache's: any other reference is a user we cannot stop.
    if (f.refcount[head] !== 2 + n) {
      result = 'SCAN_PAGE_COUNT';
      yield* dropOld(k, head, true);
      break;
    }
    old.push(head);
    index = f.index[head] + n;
  }
  // filemap_nr_thps_inc, then a writer that opened the file meanwhile wins.
  if (result === 'SCAN_SUCCEED' && !shmem && file.openForWrite) result = 'SCAN_FAIL';
  let iMmap = false;
  if (result === 'SCAN_SUCCEED' && nrNone) {
    // The holes must still be holes, and no VMA may expect userfaultfd missing events for them.
    yield lock(L_I_MMAP_READ, file.id);
    iMmap = true;
    let holes = 0;
    for (let i = start; i < end; i++) if (file.cache[i] === NONE) holes++;
    if (holes !== nrNone) result = 'SCAN_PAGE_FILLED';
    else if (fileVmas(k, file.id, start, end - 1).some((v) => v.flags & VM_UFFD_MISSING))
      result = 'SCAN_EXCEED_NONE_PTE';
  }
  if (result !== 'SCAN_SUCCEED') {
    if (iMmap) yield unlock(L_I_MMAP_READ, file.id);
    // rollback
    for (const head of old) yield* dropOld(k, head, true);
    f.clear(newFolio, PG_LOCKED);
    yield unlock(L_FOLIO_LOCK, newFolio);
    k.folioPut(newFolio);
    if (flush) yield* filemapWriteAndWaitRange(k, file, 0, file.size);
    return traced(k, mm, newFolio, index, haddr, file, result);
  }
  // Copy: the old folios are locked and unmapped, so their data is stable.
  for (let i = 0; i < nr; i++) {
    const h = file.cache[start + i];
    f.data[newFolio + i] = h === NONE ? 0 : f.data[h + (start + i - f.index[h])];
  }
  // One multi-index entry replaces the old ones; the cache's references are the new folio's.
  for (const head of old) removeFromPageCache(k, file, head);
  storeLargeFolio(k, file, newFolio, start);
  k.folioGet(newFolio, nr - 1);
  if (shmem) f.set(newFolio, PG_DIRTY);
  if (iMmap) yield unlock(L_I_MMAP_READ, file.id);
  yield* retractPageTables(k, file, start);
  if (!cc.isKhugepaged) result = 'SCAN_PTE_MAPPED_HUGEPAGE';
  f.clear(newFolio, PG_LOCKED);
  yield unlock(L_FOLIO_LOCK, newFolio);
  // The old folios go: the cache's, the isolation's and our references.
  for (const head of old) {
    const n = f.nrPagesOf(head);
    f.clear(head, PG_LOCKED);
    yield unlock(L_FOLIO_LOCK, head);
    k.folioPut(head, n + 2);
  }
  return traced(k, mm, newFolio, end, haddr, file, result);
}

function traced(
  k: Kernel,
  mm: Mm,
  hpfn: number,
  index: number,
  addr: number,
  file: AddressSpace,
  result: ScanResult,
): ScanResult {
  k.trace('mm_khugepaged_collapse_file', {
    mm: mm.id,
    hpfn,
    index,
    addr,
    is_shmem: file.tmpfs,
    filename: file.name,
    nr: k.geo.ptrsPerPte,
    result,
  });
  return result;
}

/**
 * file_backed_vma_is_retractable: no anon_vma (a written MAP_PRIVATE mapping keeps its table,
 * with its anonymous copies) and no uffd-wp (markers). Guard regions are not modelled.
 */
function retractable(vma: Vma): boolean {
  return vma.anonVma === null && !(vma.flags & (VM_UFFD_WP | VM_MAYBE_GUARD));
}

/**
 * retract_page_tables: under the i_mmap read lock, for every VMA that maps the whole PMD-aligned
 * range at pgoff, clear the PMD entry of its (now empty) PTE table and free the table. No mmap
 * or VMA lock of those mms is taken: the locked new folio keeps faults from refilling the
 * tables, and the checks are repeated under the PMD and PTE locks.
 */
export function* retractPageTables(k: Kernel, file: AddressSpace, pgoff: number): Step<void> {
  const nr = k.geo.ptrsPerPte;
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  // Without the i_mmap lock a VMA being unmapped may free its tables under us (R10's bug).
  const rmapLocked = !k.bugs.has('retract-no-i-mmap-lock');
  if (rmapLocked) yield lock(L_I_MMAP_READ, file.id);
  for (const vma of fileVmas(k, file.id, pgoff, pgoff)) {
    const addr = vma.start + (pgoff - vma.pgoff);
    if (addr % nr !== 0 || vma.end < addr + nr) continue;
    const mm = vma.mm;
    const look = yield* findPmdOrThpOrNone(k, mm, addr);
    if (look.result !== 'SCAN_SUCCEED') continue;
    if (mm.exiting || !retractable(vma)) continue;
    const { pmdT, pmdI } = look;
    yield lock(L_PMD_LOCK, pmdT);
    // Only the state of the entry is rechecked: any table here is empty while the folio is locked.
    if (pmd.type(pmdT, pmdI) !== E_TABLE) {
      yield unlock(L_PMD_LOCK, pmdT);
      continue;
    }
    const pteT = pmd.getVal(pmdT, pmdI);
    yield lock(L_PTE_LOCK, pteT);
    let retracted = false;
    // Markers can appear under the mmap read lock: the check is repeated under the PTE lock
    // (R20; 'retract-no-guard-recheck' trusts the first check).
    if (k.bugs.has('retract-no-guard-recheck') || retractable(vma)) {
      if (pte.used[pteT] !== 0)
        throw new Error(
          `retract_page_tables: the PTE table of ${vma.name} at vpn ${addr} (mm ${mm.name}) still has ${pte.used[pteT]} entries`,
        );
      // pmdp_collapse_flush
      yield writeShared(S_PMD_ENTRY, pmdT * pmd.entriesPerTable + pmdI);
      pmd.clear(pmdT, pmdI);
      pte.state[pteT] = T_DETACHED;
      retracted = true;
    }
    yield unlock(L_PTE_LOCK, pteT);
    yield unlock(L_PMD_LOCK, pmdT);
    // pte_free_defer: freed after an RCU grace period; lockless walkers hold RCU meanwhile.
    if (retracted) yield* pteFreeDefer(k, pteT);
  }
  if (rmapLocked) yield unlock(L_I_MMAP_READ, file.id);
}

/** SCAN_NO_PTE_TABLE, or the two codes it replaced (6.18). */
function noTable(r: ScanResult): boolean {
  return r === 'SCAN_NO_PTE_TABLE' || r === 'SCAN_PMD_NULL' || r === 'SCAN_PMD_NONE';
}

/**
 * try_collapse_pte_mapped_thp: the page cache holds a PMD-sized folio for the range at vpn. If
 * the PTE table there maps nothing but that folio's pages at their own offsets (or nothing),
 * remove the PTEs and the table, and with installPmd (MADV_COLLAPSE) map the folio with a huge
 * PMD right away (set_huge_pmd). The caller holds the mmap read lock.
 */
export function* tryCollapsePteMappedThp(
  k: Kernel,
  mm: Mm,
  vpn: number,
  installPmd: boolean,
): Step<ScanResult> {
  const f = k.folios;
  const nr = k.geo.ptrsPerPte;
  const haddr = vpn - (vpn % nr);
  const vma = mm.findVma(haddr);
  if (!vma || !vma.file || haddr < vma.start || haddr + nr > vma.end) return 'SCAN_VMA_CHECK';
  let look = yield* findPmdOrThpOrNone(k, mm, haddr);
  if (look.result === 'SCAN_PMD_MAPPED') return look.result;
  // The folio exists already, and a fault would map it with a PMD whatever sysfs says: so the
  // sysfs modes do not apply here, as for MADV_COLLAPSE.
  if (!thpVmaAllowableOrder(k, vma, 'forced_collapse', k.geo.pmdOrder)) return 'SCAN_VMA_CHECK';
  if (vma.flags & VM_UFFD_WP) return 'SCAN_PTE_UFFD_WP';
  const file = k.files.get(vma.file);
  if (!file) return 'SCAN_VMA_CHECK';
  // filemap_lock_folio
  const index = vma.linearIndex(haddr);
  const head = index < file.size ? file.cache[index] : NONE;
  if (head === NONE) return 'SCAN_PAGE_NULL';
  k.folioGet(head);
  yield lock(L_FOLIO_LOCK, head);
  f.set(head, PG_LOCKED);
  let result: ScanResult;
  // Truncated (or replaced) between the lookup and the lock: nothing to map.
  if (!(f.flags[head] & PG_FILE) || file.cache[index] !== head) result = 'SCAN_PAGE_NULL';
  else if (f.order[head] !== k.geo.pmdOrder) result = 'SCAN_PAGE_COMPOUND';
  else {
    look = yield* findPmdOrThpOrNone(k, mm, haddr);
    if (look.result === 'SCAN_SUCCEED')
      result = yield* retractOwnTable(k, vma, head, look.pmdT, look.pmdI);
    else if (noTable(look.result)) result = 'SCAN_SUCCEED';
    else result = look.result;
    if (result === 'SCAN_SUCCEED' && installPmd) {
      // set_huge_pmd, allocating the levels above the PMD if they are missing.
      const pmdT: number = look.pmdT || (yield* pmdAlloc(k, mm, haddr));
      const pmdI = levelIndex(k, haddr, PMD);
      const r: number = yield* doSetPmd(k, file, vma, haddr, pmdT, pmdI, head, false);
      result = r === 0 ? 'SCAN_SUCCEED' : 'SCAN_FAIL';
    }
  }
  f.clear(head, PG_LOCKED);
  yield unlock(L_FOLIO_LOCK, head);
  k.folioPut(head);
  return result;
}

/**
 * Steps 1-4 of try_collapse_pte_mapped_thp: check that every present PTE maps the folio's page
 * for its offset, clear those PTEs (dropping their rmap and references), then clear the PMD
 * entry and free the table. Returns SCAN_SUCCEED, SCAN_PTE_NON_PRESENT or SCAN_FAIL.
 */
function* retractOwnTable(
  k: Kernel,
  vma: Vma,
  head: number,
  pmdT: number,
  pmdI: number,
): Step<ScanResult> {
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  const nr = k.geo.ptrsPerPte;
  // step 1, under pte_offset_map_lock
  let pteT = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
  if (!pteT) return 'SCAN_FAIL';
  let result: ScanResult = checkTable(k, pteT, head);
  yield* pteUnmapUnlock(pteT);
  if (result !== 'SCAN_SUCCEED') return result;
  // A private VMA armed for userfaultfd may get PTEs without the page cache: hold the PMD lock
  // from before the second look until the table is gone.
  const pml = uffdArmed(vma) && !(vma.flags & VM_SHARED);
  if (pml) yield lock(L_PMD_LOCK, pmdT);
  // step 2, under pte_offset_map_rw_nolock + the PTE lock, with the PMD entry unchanged
  const pgtPmd: PmdVal = { bits: 0, val: 0 };
  pteT = (yield pteOffsetMapRwNolock(k, pmdT, pmdI, pgtPmd)) as number;
  if (!pteT) {
    if (pml) yield unlock(L_PMD_LOCK, pmdT);
    return 'SCAN_FAIL';
  }
  yield lock(L_PTE_LOCK, pteT);
  let mapped = 0;
  result = (yield* pmdSameLockless(k, pmdT, pmdI, pgtPmd)) ? 'SCAN_SUCCEED' : 'SCAN_FAIL';
  for (let i = 0; result === 'SCAN_SUCCEED' && i < nr; i++) {
    const bits = pte.getBits(pteT, i);
    const type = bits & E_TYPE_MASK;
    if (type === E_NONE) continue;
    if (type !== E_PRESENT) {
      result = 'SCAN_PTE_NON_PRESENT';
      break;
    }
    if (pte.getVal(pteT, i) !== head + i) {
      result = 'SCAN_FAIL';
      break;
    }
    // Batch the run of consecutive pages so the folio never looks partially mapped on the way.
    const batch = folioPteBatch(
      k.folios,
      head,
      pte.bits,
      pte.val,
      pteT * pte.entriesPerTable + i,
      nr - i,
    );
    for (let j = 0; j < batch; j++) pte.clear(pteT, i + j);
    rmapRemovePtes(k, head, head + i, batch, vma);
    mapped += batch;
    i += batch - 1;
  }
  if (result !== 'SCAN_SUCCEED') {
    // abort: the PTEs cleared so far stay cleared; the table stays.
    yield* pteUnmapUnlock(pteT);
    if (pml) yield unlock(L_PMD_LOCK, pmdT);
    if (mapped) k.folioPut(head, mapped);
    return result;
  }
  if (!pml) yield unlock(L_PTE_LOCK, pteT);
  // step 3: the mappings' references (the page cache keeps the folio).
  if (mapped) k.folioPut(head, mapped);
  // step 4: remove the empty table under the PMD lock and the PTE lock.
  if (!pml) {
    yield lock(L_PMD_LOCK, pmdT);
    yield lock(L_PTE_LOCK, pteT);
    if (!(yield* pmdSameLockless(k, pmdT, pmdI, pgtPmd))) {
      yield* pteUnmapUnlock(pteT);
      yield unlock(L_PMD_LOCK, pmdT);
      return 'SCAN_FAIL';
    }
  }
  pmd.clear(pmdT, pmdI);
  pte.state[pteT] = T_DETACHED;
  yield* pteUnmapUnlock(pteT);
  yield unlock(L_PMD_LOCK, pmdT);
  // Lockless walkers may still have the table mapped under RCU: not freed at once.
  yield* pteFreeDefer(k, pteT);
  return 'SCAN_SUCCEED';
}

/** Step 1's check: every entry is none, or present and mapping the folio's page for its slot. */
function checkTable(k: Kernel, pteT: number, head: number): ScanResult {
  const pte = k.pt.pte;
  for (let i = 0; i < k.geo.ptrsPerPte; i++) {
    const type = pte.type(pteT, i);
    if (type === E_NONE) continue;
    if (type !== E_PRESENT) return 'SCAN_PTE_NON_PRESENT';
    if (pte.getVal(pteT, i) !== head + i) return 'SCAN_FAIL';
  }
  return 'SCAN_SUCCEED';
}
