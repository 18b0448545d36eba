// mremap (mm/mremap.c): shrink by unmapping the tail, grow in place when the range after the VMA
// is free, otherwise move (move_vma): a new VMA that keeps vm_pgoff and the anon_vma chain, so
// rmap still finds every folio at folio->index, then move_page_tables relinks whole PMD tables
// (move_normal_pud / move_normal_pmd) and huge PMDs with their deposit (move_huge_pmd) where
// source and destination are aligned alike, and moves single PTEs (move_ptes) elsewhere. The old
// range is unmapped afterwards, which frees the tables it leaves empty.

import { khugepagedEnterVma } from '../khugepaged/enter.ts';
import { anonVmaLink, anonVmaLockWrite, anonVmaUnlockWrite } from './anon-vma.ts';
import type { Kernel } from './kernel.ts';
import { MmError, mmapBase, mmapWriteUnlock, unmapRegion } from './mmap.ts';
import {
  entryLoc,
  levelIndex,
  pmdAlloc,
  pmdTableOf,
  pteAlloc,
  pudTableOf,
  pteOffsetMapLock,
  pteUnmapUnlock,
} from './pagewalk.ts';
import {
  B_CONT,
  B_UFFD_WP,
  E_MARKER,
  E_NONE,
  E_PRESENT,
  E_TABLE,
  E_TYPE_MASK,
  MARKER_UFFD_WP,
  PGD,
  PMD,
  PUD,
  T_LINKED,
} from './pgtable.ts';
import { splitHugePmd } from './split.ts';
import {
  L_MMAP_READ,
  L_MMAP_WRITE,
  L_PAGE_TABLE_LOCK,
  L_PMD_LOCK,
  L_PTE_LOCK,
  OP_DOWNGRADE,
  S_PGD_ENTRY,
  type Step,
  ev,
  lock,
  readShared,
  unlock,
  tlbFlushRange,
} from './step.ts';
import { mergeAround, vmaStartWrite } from './vma-ops.ts';
import { type Mm, VM_UFFD_MISSING, VM_UFFD_WP, type Vma } from './vma.ts';

const VM_UFFD = VM_UFFD_MISSING | VM_UFFD_WP;

/** TASK_SIZE in pages: the user half of the address space. */
function taskSize(k: Kernel): number {
  return 2 ** (k.geo.vaBits - 1 - k.geo.pageShift);
}

/** mremap with MREMAP_MAYMOVE (and MREMAP_FIXED when newStart is given). Returns the new start. */
export function* doMremap(
  k: Kernel,
  mm: Mm,
  oldStart: number,
  oldPages: number,
  newPages: number,
  newStart?: number,
): Step<number> {
  // check_mremap_params
  const top = taskSize(k);
  if (!Number.isSafeInteger(newPages) || newPages <= 0)
    throw new MmError('EINVAL', 'new length must be positive');
  if (!Number.isSafeInteger(oldPages) || oldPages < 0 || oldStart < 0)
    throw new MmError('EINVAL', 'bad old range');
  if (newPages > top) throw new MmError('EINVAL', 'new length exceeds the address space');
  if (newStart !== undefined) {
    if (newStart < 0 || newStart > top - newPages)
      throw new MmError('EINVAL', 'new range exceeds the address space');
    if (newStart < oldStart + oldPages && oldStart < newStart + newPages)
      throw new MmError('EINVAL', 'old and new ranges overlap');
  }
  yield lock(L_MMAP_WRITE, mm.id);
  let downgraded = false;
  try {
    // check_prep_vma: the old range must lie inside one VMA.
    const vma = mm.findVma(oldStart);
    if (!vma) throw new MmError('EFAULT', `no mapping at ${oldStart}`);
    if (oldPages === 0)
      throw new MmError('EINVAL', 'a zero old length only duplicates shared mappings');
    if (oldStart + oldPages > vma.end)
      throw new MmError('EFAULT', 'the old range crosses the end of its mapping');
    if (newStart !== undefined)
      return yield* mremapTo(k, mm, oldStart, oldPages, newPages, newStart);
    if (newPages <= oldPages) {
      // shrink_vma: do_vmi_munmap of the tail, which drops the lock through a downgrade.
      if (newPages < oldPages) {
        yield* unmapRegion(k, mm, oldStart + newPages, oldStart + oldPages);
        mm.mmLockSeq++;
        yield ev(OP_DOWNGRADE, L_MMAP_WRITE, mm.id);
        downgraded = true;
      }
      return oldStart;
    }
    const delta = newPages - oldPages;
    if (oldStart + oldPages === vma.end && vmaExpandable(k, mm, vma, delta)) {
      // vma_merge_extend: grow in place, merging with the next VMA if it fits.
      yield* vmaStartWrite(vma);
      vma.end += delta;
      yield* mergeAround(mm, vma.start, vma.end);
      khugepagedEnterVma(k, mm.findVma(oldStart)!);
      return oldStart;
    }
    const dst = newAddress(k, mm, vma, oldStart, newPages);
    yield* moveVma(k, mm, vma, oldStart, oldPages, dst, newPages);
    return dst;
  } finally {
    if (downgraded) yield unlock(L_MMAP_READ, mm.id);
    else yield* mmapWriteUnlock(mm);
  }
}

/** mremap_to: MREMAP_FIXED unmaps the target first and shrinks the source to the new length. */
function* mremapTo(
  k: Kernel,
  mm: Mm,
  oldStart: number,
  oldPages: number,
  newPages: number,
  newStart: number,
): Step<number> {
  yield* unmapRegion(k, mm, newStart, newStart + newPages);
  if (oldPages > newPages) {
    yield* unmapRegion(k, mm, oldStart + newPages, oldStart + oldPages);
    oldPages = newPages;
  }
  // Unmapping may have split the VMA: look it up again.
  const vma = mm.findVma(oldStart);
  if (!vma) throw new MmError('EFAULT', `no mapping at ${oldStart}`);
  yield* moveVma(k, mm, vma, oldStart, oldPages, newStart, newPages);
  return newStart;
}

/** vma_expandable: the pages after the VMA are free and inside the address space. */
function vmaExpandable(k: Kernel, mm: Mm, vma: Vma, delta: number): boolean {
  return vma.end + delta <= taskSize(k) && mm.rangeFree(vma.end, vma.end + delta);
}

/** mmap_min_addr in pages. */
function lowLimit(k: Kernel): number {
  return 2 ** Math.max(0, 16 - k.geo.pageShift);
}

/** unmapped_area_topdown for a start congruent to phase modulo align, or -1. */
function topdownGap(k: Kernel, mm: Mm, pages: number, align: number, phase: number): number {
  let top = mmapBase(k);
  for (let i = mm.vmas.length - 1; i >= -1; i--) {
    const v = i >= 0 ? mm.vmas[i] : null;
    if (v && v.start >= top) continue;
    const gapLow = v ? v.end : lowLimit(k);
    const start = Math.floor((top - pages - phase) / align) * align + phase;
    if (start >= gapLow && start + pages <= top) return start;
    if (!v) break;
    top = v.start;
  }
  return -1;
}

/**
 * vrm_set_new_addr → get_unmapped_area for an anonymous mapping. thp_get_unmapped_area applies
 * to PMD-multiple lengths whose page offsets cover an aligned PMD block: it picks an address
 * congruent to the offset modulo the PMD size, so the range stays PMD-aligned where it was and
 * move_page_tables can move whole PMDs.
 */
function newAddress(k: Kernel, mm: Mm, vma: Vma, oldStart: number, pages: number): number {
  const ptrs = k.geo.ptrsPerPte;
  const pgoff = vma.linearIndex(oldStart);
  const alignedFrom = Math.ceil(pgoff / ptrs) * ptrs;
  const alignedTo = Math.floor((pgoff + pages) / ptrs) * ptrs;
  if (pages % ptrs === 0 && alignedTo - alignedFrom >= ptrs) {
    const at = topdownGap(k, mm, pages, ptrs, pgoff % ptrs);
    if (at >= 0) return at;
  }
  const at = topdownGap(k, mm, pages, 1, 0);
  if (at < 0) throw new MmError('ENOMEM', `no free range of ${pages} pages`);
  return at;
}

/**
 * move_vma: a new VMA at the destination with the old one's flags, vm_pgoff and anon_vma chain
 * (copy_vma), the page tables moved over, the old range unmapped, neighbours merged.
 */
function* moveVma(
  k: Kernel,
  mm: Mm,
  vma: Vma,
  oldStart: number,
  oldPages: number,
  newStart: number,
  newPages: number,
): Step<void> {
  yield* vmaStartWrite(vma);
  // Without UFFD_FEATURE_EVENT_REMAP the destination leaves userfaultfd.
  const clearUffd = (vma.flags & VM_UFFD) !== 0;
  const pgoff = vma.linearIndex(oldStart);
  // copy_vma: the destination may extend the VMA that ends where it starts, when that one would
  // merge with it (same flags and anon_vma, contiguous page offsets).
  const prev = mm.vmas.find((v) => v.end === newStart);
  const mergeable =
    !clearUffd &&
    prev !== undefined &&
    prev !== vma &&
    prev.file === 0 &&
    vma.file === 0 &&
    prev.flags === vma.flags &&
    prev.anonVma !== null &&
    prev.anonVma === vma.anonVma &&
    prev.pgoff + prev.pages === pgoff &&
    !mm.vmas.some((v) => v !== prev && v.start < newStart + newPages && v.end > newStart);
  let needRmapLocks = false;
  if (mergeable) {
    yield* vmaStartWrite(prev);
    prev.end = newStart + newPages;
    // rmap walks visit VMAs by their first page offset: the extended one, with the lower offset,
    // now comes before the old VMA, so the move must hold the rmap locks (need_rmap_locks).
    needRmapLocks = prev.pgoff <= vma.pgoff;
  } else {
    const nv = k.newVma(
      mm,
      newStart,
      newStart + newPages,
      vma.flags & ~VM_UFFD,
      pgoff,
      vma.file,
      vma.name,
    );
    if (vma.anonVma) {
      // anon_vma_clone
      yield* anonVmaLockWrite(vma.anonVma);
      nv.anonVma = vma.anonVma;
      for (const av of vma.chain) anonVmaLink(nv, av);
      yield* anonVmaUnlockWrite(vma.anonVma);
    }
    mm.insertVma(nv);
    yield* vmaStartWrite(nv);
  }
  yield* movePageTables(k, vma, oldStart, newStart, oldPages, clearUffd, needRmapLocks);
  yield* unmapRegion(k, mm, oldStart, oldStart + oldPages);
  yield* mergeAround(mm, newStart, newStart + newPages);
}

/** get_extent: the step that stays inside one table of `span` pages on both sides. */
function extentOf(span: number, old: number, oldEnd: number, nw: number): number {
  return Math.min(span - (old % span), oldEnd - old, span - (nw % span));
}

/** take_rmap_locks for a table move: rmap must see the entries at the old or the new place. */
function* takeRmapLocks(vma: Vma): Step<void> {
  if (vma.anonVma) yield* anonVmaLockWrite(vma.anonVma);
}

function* dropRmapLocks(vma: Vma): Step<void> {
  if (vma.anonVma) yield* anonVmaUnlockWrite(vma.anonVma);
}

/** move_page_tables: relocate the entries of [oldStart, oldStart + pages) to newStart. */
function* movePageTables(
  k: Kernel,
  vma: Vma,
  oldStart: number,
  newStart: number,
  pages: number,
  clearUffd: boolean,
  needRmapLocks: boolean,
): Step<void> {
  const mm = vma.mm;
  const ptrs = k.geo.ptrsPerPte;
  const pudSpan = k.geo.pagesPerPud;
  const pud = k.pt.pud;
  const pmd = k.pt.pmd;
  const oldEnd = oldStart + pages;
  let extent: number;
  for (let old = oldStart, nw = newStart; old < oldEnd; old += extent, nw += extent) {
    extent = extentOf(pudSpan, old, oldEnd, nw);
    // get_old_pud
    const oldPudT = pudTableOf(k, mm, old);
    const oldPudI = levelIndex(k, old, PUD);
    if (!oldPudT || pud.type(oldPudT, oldPudI) === E_NONE) continue;
    // alloc_new_pud
    const newPudT: number = yield* pudAlloc(k, mm, nw);
    const newPudI = levelIndex(k, nw, PUD);
    if (extent === pudSpan && !clearUffd) {
      if (yield* moveNormalPud(k, vma, oldPudT, oldPudI, newPudT, newPudI)) continue;
    }
    extent = extentOf(ptrs, old, oldEnd, nw);
    // get_old_pmd
    const oldPmdT = pmdTableOf(k, mm, old);
    const oldPmdI = levelIndex(k, old, PMD);
    if (!oldPmdT || pmd.type(oldPmdT, oldPmdI) === E_NONE) continue;
    // alloc_new_pmd
    const newPmdT: number = yield* pmdAlloc(k, mm, nw);
    const newPmdI = levelIndex(k, nw, PMD);
    const type = pmd.type(oldPmdT, oldPmdI);
    if (type === E_PRESENT) {
      if (extent === ptrs) {
        if (yield* moveHugePmd(k, oldPmdT, oldPmdI, newPmdT, newPmdI, clearUffd)) continue;
      }
      yield* splitHugePmd(k, vma, oldPmdT, oldPmdI);
    } else if (type === E_TABLE && extent === ptrs && !clearUffd) {
      if (yield* moveNormalPmd(k, vma, oldPmdT, oldPmdI, newPmdT, newPmdI)) continue;
    }
    if (pmd.type(oldPmdT, oldPmdI) !== E_TABLE) continue;
    const newPteT: number = yield* pteAlloc(k, mm, newPmdT, newPmdI);
    if (!newPteT) throw new Error(`mremap: destination PMD at vpn ${nw} is huge`);
    // Unless the rmap order keeps walkers right, they are kept out (the checker's
    // 'move-ptes-no-rmap-lock' forgets it).
    const rmapLocks = needRmapLocks && !k.bugs.has('move-ptes-no-rmap-lock');
    if (rmapLocks) yield* takeRmapLocks(vma);
    yield* movePtes(k, mm.id, oldPmdT, oldPmdI, old, newPteT, nw, extent, clearUffd);
    if (rmapLocks) yield* dropRmapLocks(vma);
  }
}

/** __pud_alloc: the PUD table for vpn, installed under mm->page_table_lock if missing. */
function* pudAlloc(k: Kernel, mm: Mm, vpn: number): Step<number> {
  const pgd = k.pt.pgd;
  const i = levelIndex(k, vpn, PGD);
  yield readShared(S_PGD_ENTRY, entryLoc(pgd, mm.pgd, i));
  if (pgd.type(mm.pgd, i) === E_TABLE) return pgd.getVal(mm.pgd, i);
  const fresh = k.pt.pud.alloc(mm.id);
  yield lock(L_PAGE_TABLE_LOCK, mm.id);
  let table = fresh;
  if (pgd.type(mm.pgd, i) === E_NONE) {
    pgd.set(mm.pgd, i, fresh, E_TABLE);
    k.pt.pud.state[fresh] = T_LINKED;
  } else table = pgd.getVal(mm.pgd, i);
  yield unlock(L_PAGE_TABLE_LOCK, mm.id);
  if (table !== fresh) k.pt.pud.free(fresh);
  return table;
}

/** move_normal_pud: relink a whole PMD table; PUD entries are under mm->page_table_lock. */
function* moveNormalPud(
  k: Kernel,
  vma: Vma,
  oldPudT: number,
  oldPudI: number,
  newPudT: number,
  newPudI: number,
): Step<boolean> {
  const pud = k.pt.pud;
  if (pud.type(newPudT, newPudI) !== E_NONE) return false;
  yield* takeRmapLocks(vma);
  yield lock(L_PAGE_TABLE_LOCK, vma.mm.id);
  const ok = pud.type(oldPudT, oldPudI) === E_TABLE;
  if (ok) {
    const pmdT = pud.getVal(oldPudT, oldPudI);
    pud.clear(oldPudT, oldPudI);
    pud.set(newPudT, newPudI, pmdT, E_TABLE);
  }
  yield unlock(L_PAGE_TABLE_LOCK, vma.mm.id);
  yield* dropRmapLocks(vma);
  return ok;
}

/** move_normal_pmd: relink a whole PTE table under the old PMD lock and the new one nested. */
function* moveNormalPmd(
  k: Kernel,
  vma: Vma,
  oldPmdT: number,
  oldPmdI: number,
  newPmdT: number,
  newPmdI: number,
): Step<boolean> {
  const pmd = k.pt.pmd;
  if (pmd.type(newPmdT, newPmdI) !== E_NONE) return false;
  yield* takeRmapLocks(vma);
  yield lock(L_PMD_LOCK, oldPmdT);
  if (newPmdT !== oldPmdT) yield lock(L_PMD_LOCK, newPmdT);
  // Racing with a collapse would leave a huge PMD here: then it is not a table move.
  const ok = pmd.type(oldPmdT, oldPmdI) === E_TABLE;
  if (ok) {
    const pteT = pmd.getVal(oldPmdT, oldPmdI);
    pmd.clear(oldPmdT, oldPmdI);
    pmd.set(newPmdT, newPmdI, pteT, E_TABLE);
  }
  if (newPmdT !== oldPmdT) yield unlock(L_PMD_LOCK, newPmdT);
  yield unlock(L_PMD_LOCK, oldPmdT);
  yield* dropRmapLocks(vma);
  return ok;
}

/** move_huge_pmd: move a huge PMD and its deposited table (withdraw + deposit). */
function* moveHugePmd(
  k: Kernel,
  oldPmdT: number,
  oldPmdI: number,
  newPmdT: number,
  newPmdI: number,
  clearUffd: boolean,
): Step<boolean> {
  const pmd = k.pt.pmd;
  if (pmd.type(newPmdT, newPmdI) !== E_NONE) return false;
  yield lock(L_PMD_LOCK, oldPmdT);
  const bits = pmd.getBits(oldPmdT, oldPmdI);
  if ((bits & E_TYPE_MASK) !== E_PRESENT) {
    yield unlock(L_PMD_LOCK, oldPmdT);
    return false;
  }
  if (newPmdT !== oldPmdT) yield lock(L_PMD_LOCK, newPmdT);
  const head = pmd.getVal(oldPmdT, oldPmdI);
  const n = pmd.entriesPerTable;
  k.pt.syncDeposit();
  const pgtable = k.pt.deposit[oldPmdT * n + oldPmdI];
  k.pt.deposit[oldPmdT * n + oldPmdI] = 0;
  pmd.clear(oldPmdT, oldPmdI);
  k.pt.deposit[newPmdT * n + newPmdI] = pgtable;
  pmd.set(newPmdT, newPmdI, head, clearUffd ? bits & ~B_UFFD_WP : bits);
  if (newPmdT !== oldPmdT) yield unlock(L_PMD_LOCK, newPmdT);
  yield unlock(L_PMD_LOCK, oldPmdT);
  return true;
}

/** move_ptes: entry by entry under the old PTE lock and the new one nested. */
function* movePtes(
  k: Kernel,
  mmId: number,
  oldPmdT: number,
  oldPmdI: number,
  old: number,
  newPteT: number,
  nw: number,
  extent: number,
  clearUffd: boolean,
): Step<void> {
  const pte = k.pt.pte;
  const ptrs = k.geo.ptrsPerPte;
  // pte_offset_map_lock on the old table (it may have gone: retract).
  const oldPteT = (yield pteOffsetMapLock(k, oldPmdT, oldPmdI)) as number;
  if (!oldPteT) return;
  if (newPteT !== oldPteT) yield lock(L_PTE_LOCK, newPteT);
  let moved = false;
  // Contiguous-PTE hints survive only a move that keeps the block alignment.
  const keepCont = (nw - old) % k.geo.contPtes === 0;
  for (let j = 0; j < extent; j++) {
    const oi = (old + j) % ptrs;
    let bits = pte.getBits(oldPteT, oi);
    const type = bits & E_TYPE_MASK;
    if (type === E_NONE) continue;
    const val = pte.getVal(oldPteT, oi);
    pte.clear(oldPteT, oi);
    if (clearUffd) {
      if (type === E_MARKER && val === MARKER_UFFD_WP) continue;
      bits &= ~B_UFFD_WP;
    }
    if (!keepCont) bits &= ~B_CONT;
    pte.set(newPteT, (nw + j) % ptrs, val, bits);
    moved = true;
  }
  // The old range's TLB entries go before either PTE lock is dropped.
  if (moved) yield tlbFlushRange(mmId);
  if (newPteT !== oldPteT) yield unlock(L_PTE_LOCK, newPteT);
  yield* pteUnmapUnlock(oldPteT);
}
