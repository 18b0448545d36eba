// fork: dup_mmap (kernel/fork.c, mm/mmap.c), anon_vma_fork (mm/rmap.c), copy_page_range with
// copy_pte_range / copy_present_ptes / copy_nonpresent_pte (mm/memory.c) and copy_huge_pmd
// (mm/huge_memory.c). Private writable pages end up shared read-only by parent and child, with
// PageAnonExclusive cleared, so the first write on either side goes through COW; pages that may
// be pinned are copied for the child right away instead.

import { khugepagedEnter } from '../khugepaged/enter.ts';
import { anonVmaLink, anonVmaLockWrite, anonVmaUnlockWrite } from './anon-vma.ts';
import { depositTable } from './fault.ts';
import { PG_ANON, PG_ANON_EXCLUSIVE, PG_ZERO } from './folio.ts';
import { type Kernel, NO_PFN } from './kernel.ts';
import { MmError, exitMmap, mmapWriteUnlock } from './mmap.ts';
import { vmaPteProt } from './mprotect.ts';
import { levelIndex, pmdAlloc, pmdTableOf, pteAlloc } from './pagewalk.ts';
import {
  B_DIRTY,
  B_EXCLUSIVE,
  B_SPECIAL,
  B_UFFD_WP,
  B_WRITE,
  B_YOUNG,
  E_MARKER,
  E_MIGRATION,
  E_NONE,
  E_PRESENT,
  E_SWAP,
  E_TABLE,
  E_TYPE_MASK,
  MARKER_UFFD_WP,
  PMD,
} from './pgtable.ts';
import { FPB_RESPECT_DIRTY, folioPteBatch } from './pte-batch.ts';
import { folioAddNewAnon, rmapAddPmd, rmapAddPtes } from './rmap.ts';
import { splitHugePmd } from './split.ts';
import {
  L_MMAP_WRITE,
  L_PMD_LOCK,
  L_PTE_LOCK,
  L_WRITE_PROTECT_SEQ,
  type Step,
  lock,
  unlock,
} from './step.ts';
import { vmaStartWrite } from './vma-ops.ts';
import {
  type Mm,
  VM_LOCKED,
  VM_MAYWRITE,
  VM_SHARED,
  VM_UFFD_MISSING,
  VM_UFFD_WP,
  type Vma,
} from './vma.ts';

/** is_cow_mapping: private and possibly writable. */
export function isCowMapping(flags: number): boolean {
  return (flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}

/**
 * folio_needs_cow_for_dma: a folio that may be pinned (FOLL_PIN) must not be shared with the
 * child, or a later COW in the parent would leave the pin on the child's copy.
 */
function maybePinned(k: Kernel, head: number): boolean {
  return k.folios.pincount[head] > 0;
}

/** dup_mm / dup_mmap: the child's mm, a copy of every VMA and of the page tables under it. */
export function* doFork(k: Kernel, parent: Mm, childName: string): Step<Mm> {
  yield lock(L_MMAP_WRITE, parent.id);
  const child = k.newMm(childName);
  child.parent = parent;
  child.thpDisable = parent.thpDisable; // MMF_INIT_MASK carries the prctl over
  yield lock(L_MMAP_WRITE, child.id);
  // khugepaged_fork
  if (parent.khugepagedRegistered) khugepagedEnter(k, child);
  let failure: unknown = null;
  try {
    for (const src of [...parent.vmas]) {
      yield* vmaStartWrite(src);
      // vm_area_dup; mlock is not inherited, nor (without UFFD_FEATURE_EVENT_FORK) userfaultfd.
      const flags = src.flags & ~(VM_LOCKED | VM_UFFD_MISSING | VM_UFFD_WP);
      const dst = k.newVma(child, src.start, src.end, flags, src.pgoff, src.file, src.name);
      yield* anonVmaFork(k, dst, src);
      child.insertVma(dst);
      // vma_needs_copy: without an anon_vma the child refaults whatever it needs.
      if (src.anonVma) yield* copyPageRange(k, dst, src);
    }
  } catch (e) {
    failure = e;
  }
  yield* mmapWriteUnlock(child);
  yield* mmapWriteUnlock(parent);
  if (failure !== null) {
    // dup_mm failed: mmput tears down whatever was copied so far.
    yield* exitMmap(k, child);
    throw failure;
  }
  return child;
}

/** anon_vma_fork: link the child VMA to the parent's anon_vmas, then give it its own. */
function* anonVmaFork(k: Kernel, dst: Vma, src: Vma): Step<void> {
  const pav = src.anonVma;
  if (!pav) return;
  // anon_vma_clone: rmap must find the pages the child still shares with its ancestors.
  yield* anonVmaLockWrite(pav);
  for (const av of src.chain) anonVmaLink(dst, av);
  yield* anonVmaUnlockWrite(pav);
  // The child's COW copies go to a fresh anon_vma under the same root.
  const av = k.newAnonVma(pav);
  yield* anonVmaLockWrite(pav);
  dst.anonVma = av;
  anonVmaLink(dst, av);
  yield* anonVmaUnlockWrite(pav);
}

/** copy_page_range for one VMA: the parent's write_protect_seq is odd while COW copies run. */
function* copyPageRange(k: Kernel, dst: Vma, src: Vma): Step<void> {
  const parent = src.mm;
  const cow = isCowMapping(src.flags);
  if (cow) {
    yield lock(L_WRITE_PROTECT_SEQ, parent.id);
    parent.writeProtectSeq++;
  }
  try {
    const ptrs = k.geo.ptrsPerPte;
    const pudSpan = k.geo.pagesPerPud;
    for (let s = src.start; s < src.end;) {
      const base = s - (s % ptrs);
      const e = Math.min(src.end, base + ptrs);
      const srcPmdT = pmdTableOf(k, parent, s);
      if (!srcPmdT) {
        // copy_pud_range: nothing mapped under this PUD entry.
        s = Math.min(src.end, s - (s % pudSpan) + pudSpan);
        continue;
      }
      // copy_pmd_range: the child gets a PMD table wherever the parent has one.
      const dstPmdT: number = yield* pmdAlloc(k, dst.mm, s);
      const pmdI = levelIndex(k, s, PMD);
      let copied = false;
      // copy_huge_pmd: a file VMA's huge PMD is not copied, the child refaults it.
      if (k.pt.pmd.type(srcPmdT, pmdI) === E_PRESENT)
        copied = !dst.isAnonymous || (yield* copyHugePmd(k, dst, src, dstPmdT, srcPmdT, pmdI));
      if (!copied && k.pt.pmd.type(srcPmdT, pmdI) === E_TABLE)
        yield* copyPteRange(k, dst, dstPmdT, srcPmdT, pmdI, s, e, cow);
      s = e;
    }
  } finally {
    if (cow) {
      parent.writeProtectSeq++;
      yield unlock(L_WRITE_PROTECT_SEQ, parent.id);
    }
  }
}

/**
 * copy_huge_pmd: share the PMD-mapped folio write-protected on both sides, with a fresh table
 * deposited for the child. A possibly pinned THP is split in the parent instead, and the caller
 * falls back to copying PTEs. Returns whether the PMD was copied.
 */
function* copyHugePmd(
  k: Kernel,
  dst: Vma,
  src: Vma,
  dstPmdT: number,
  srcPmdT: number,
  pmdI: number,
): Step<boolean> {
  const pmd = k.pt.pmd;
  const f = k.folios;
  const pgtable = k.pt.pte.alloc(dst.mm.id);
  yield lock(L_PMD_LOCK, dstPmdT);
  yield lock(L_PMD_LOCK, srcPmdT); // nested inside the child's
  const bits = pmd.getBits(srcPmdT, pmdI);
  if ((bits & E_TYPE_MASK) !== E_PRESENT) {
    yield unlock(L_PMD_LOCK, srcPmdT);
    yield unlock(L_PMD_LOCK, dstPmdT);
    k.pt.pte.free(pgtable);
    return false;
  }
  const head = pmd.getVal(srcPmdT, pmdI);
  if (!(f.flags[head] & PG_ZERO)) {
    // folio_try_dup_anon_rmap_pmd
    if (f.flags[head] & PG_ANON && f.flags[head] & PG_ANON_EXCLUSIVE && maybePinned(k, head)) {
      yield unlock(L_PMD_LOCK, srcPmdT);
      yield unlock(L_PMD_LOCK, dstPmdT);
      k.pt.pte.free(pgtable);
      yield* splitHugePmd(k, src, srcPmdT, pmdI);
      return false;
    }
    k.folioGet(head);
    const n = 1 << f.order[head];
    for (let i = 0; i < n; i++) f.flags[head + i] &= ~PG_ANON_EXCLUSIVE;
    rmapAddPmd(k, head, dst);
  }
  // The huge zero page is shared as it is; either way both sides end up read-only.
  depositTable(k, dstPmdT, pmdI, pgtable);
  pmd.set(srcPmdT, pmdI, head, bits & ~B_WRITE);
  let childBits = bits & ~(B_WRITE | B_YOUNG);
  if (!(dst.flags & VM_UFFD_WP)) childBits &= ~B_UFFD_WP;
  pmd.set(dstPmdT, pmdI, head, childBits);
  yield unlock(L_PMD_LOCK, srcPmdT);
  yield unlock(L_PMD_LOCK, dstPmdT);
  return true;
}

/** Outcome of copying present PTEs: how many were copied, or 0 when a page must be allocated. */
const NEED_PREALLOC = 0;

/**
 * copy_pte_range over [start, end) of one PMD: the child's PTE lock is taken first and the
 * parent's nested inside it. When a possibly pinned page needs a private copy, both locks are
 * dropped, a page is allocated, and the copy resumes where it stopped.
 */
function* copyPteRange(
  k: Kernel,
  dst: Vma,
  dstPmdT: number,
  srcPmdT: number,
  pmdI: number,
  start: number,
  end: number,
  cow: boolean,
): Step<void> {
  const pte = k.pt.pte;
  const pmd = k.pt.pmd;
  const ptrs = k.geo.ptrsPerPte;
  const prealloc = { pfn: NO_PFN };
  let addr = start;
  try {
    while (addr < end) {
      // pte_alloc_map_lock for the child
      const dstPteT: number = yield* pteAlloc(k, dst.mm, dstPmdT, pmdI);
      if (!dstPteT) throw new Error(`fork: child PMD at vpn ${addr} is not a table`);
      yield lock(L_PTE_LOCK, dstPteT);
      if (pmd.type(srcPmdT, pmdI) !== E_TABLE) {
        yield unlock(L_PTE_LOCK, dstPteT);
        return;
      }
      const srcPteT = pmd.getVal(srcPmdT, pmdI);
      yield lock(L_PTE_LOCK, srcPteT);
      let needPage = false;
      while (addr < end) {
        const i = addr % ptrs;
        const type = pte.type(srcPteT, i);
        if (type === E_NONE) {
          addr++;
          continue;
        }
        if (type !== E_PRESENT) {
          copyNonPresentPte(k, dst, dstPteT, srcPteT, i, cow);
          addr++;
          continue;
        }
        const nr = copyPresentPtes(k, dst, dstPteT, srcPteT, i, addr, end - addr, cow, prealloc);
        if (nr === NEED_PREALLOC) {
          needPage = true;
          break;
        }
        if (prealloc.pfn !== NO_PFN) {
          // Not needed after all: a preallocated page is only good for the PTE it was made for.
          k.folioPut(prealloc.pfn);
          prealloc.pfn = NO_PFN;
        }
        addr += nr;
      }
      yield unlock(L_PTE_LOCK, srcPteT);
      yield unlock(L_PTE_LOCK, dstPteT);
      if (needPage) {
        // folio_prealloc
        prealloc.pfn = k.allocFolio(0);
        if (prealloc.pfn === NO_PFN)
          throw new MmError('ENOMEM', `fork: no page to copy a pinned page at vpn ${addr}`);
      }
    }
  } finally {
    if (prealloc.pfn !== NO_PFN) k.folioPut(prealloc.pfn);
  }
}

/**
 * copy_present_ptes: duplicate the mapping of one PTE, or of a batch of PTEs mapping consecutive
 * pages of one large folio. Returns the number of PTEs handled, or NEED_PREALLOC.
 */
function copyPresentPtes(
  k: Kernel,
  dst: Vma,
  dstPteT: number,
  srcPteT: number,
  i: number,
  vpn: number,
  maxNr: number,
  cow: boolean,
  prealloc: { pfn: number },
): number {
  const pte = k.pt.pte;
  const f = k.folios;
  const bits = pte.getBits(srcPteT, i);
  const pfn = pte.getVal(srcPteT, i);
  const head = f.headOf(pfn);
  // vm_normal_page is NULL for the zero page: the entry is copied and nothing else.
  if (bits & B_SPECIAL || f.flags[head] & PG_ZERO) {
    copyPtes(k, dst, dstPteT, srcPteT, i, 1, cow);
    return 1;
  }
  const anon = (f.flags[head] & PG_ANON) !== 0;
  const pinned = anon && maybePinned(k, head);
  let nr = 1;
  if (prealloc.pfn === NO_PFN && f.order[head] > 0 && maxNr > 1) {
    // A private mapping keeps its dirty bits apart (the child's copies keep them); soft-dirty
    // tracking (VM_SOFTDIRTY) is not modelled, so those bits are never respected.
    const respect = dst.flags & VM_SHARED ? 0 : FPB_RESPECT_DIRTY;
    const at = srcPteT * pte.entriesPerTable + i;
    const max = Math.min(maxNr, pte.entriesPerTable - i);
    nr = folioPteBatch(f, head, pte.bits, pte.val, at, max, respect);
    if (pinned && anyExclusive(k, pfn, nr)) return NEED_PREALLOC;
  } else if (pinned && f.flags[pfn] & PG_ANON_EXCLUSIVE) {
    if (prealloc.pfn === NO_PFN) return NEED_PREALLOC;
    copyPresentPage(k, dst, dstPteT, srcPteT, i, vpn, prealloc);
    return 1;
  }
  // folio_try_dup_anon_rmap_ptes: the pages are no longer exclusive to the parent.
  if (anon) for (let j = 0; j < nr; j++) f.flags[pfn + j] &= ~PG_ANON_EXCLUSIVE;
  k.folioGet(head, nr);
  rmapAddPtes(k, head, pfn, nr, dst);
  copyPtes(k, dst, dstPteT, srcPteT, i, nr, cow);
  return nr;
}

function anyExclusive(k: Kernel, pfn: number, nr: number): boolean {
  for (let j = 0; j < nr; j++) if (k.folios.flags[pfn + j] & PG_ANON_EXCLUSIVE) return true;
  return false;
}

/** __copy_present_ptes: write-protect COW entries on both sides; the child's copies start old. */
function copyPtes(
  k: Kernel,
  dst: Vma,
  dstPteT: number,
  srcPteT: number,
  i: number,
  nr: number,
  cow: boolean,
): void {
  const pte = k.pt.pte;
  for (let j = 0; j < nr; j++) {
    let bits = pte.getBits(srcPteT, i + j);
    const val = pte.getVal(srcPteT, i + j);
    if (cow && bits & B_WRITE) {
      bits &= ~B_WRITE;
      pte.set(srcPteT, i + j, val, bits);
    }
    let childBits = bits & ~B_YOUNG;
    if (!(dst.flags & VM_UFFD_WP)) childBits &= ~B_UFFD_WP;
    pte.set(dstPteT, i + j, val, childBits);
  }
}

/** copy_present_page: the child gets its own copy of a possibly pinned page. */
function copyPresentPage(
  k: Kernel,
  dst: Vma,
  dstPteT: number,
  srcPteT: number,
  i: number,
  vpn: number,
  prealloc: { pfn: number },
): void {
  const f = k.folios;
  const pte = k.pt.pte;
  const copy = prealloc.pfn;
  prealloc.pfn = NO_PFN;
  f.data[copy] = f.data[pte.getVal(srcPteT, i)];
  folioAddNewAnon(k, copy, dst, vpn);
  f.flags[copy] |= PG_ANON_EXCLUSIVE;
  rmapAddPtes(k, copy, copy, 1, dst);
  let bits = E_PRESENT | B_YOUNG | B_DIRTY | vmaPteProt(dst.flags);
  if (dst.flags & VM_UFFD_WP && pte.getBits(srcPteT, i) & B_UFFD_WP) bits |= B_UFFD_WP;
  pte.set(dstPteT, i, copy, bits);
}

/** copy_nonpresent_pte: swap entries gain a reference, markers are copied as far as they apply. */
function copyNonPresentPte(
  k: Kernel,
  dst: Vma,
  dstPteT: number,
  srcPteT: number,
  i: number,
  cow: boolean,
): void {
  const pte = k.pt.pte;
  let bits = pte.getBits(srcPteT, i);
  const val = pte.getVal(srcPteT, i);
  const type = bits & E_TYPE_MASK;
  if (type === E_SWAP) {
    // swap_duplicate; the entry is shared from now on, so neither side may reuse it blindly.
    k.swap.count[val]++;
    if (bits & B_EXCLUSIVE) {
      bits &= ~B_EXCLUSIVE;
      pte.set(srcPteT, i, val, bits);
    }
    dst.mm.swapEnts++;
  } else if (type === E_MIGRATION) {
    // A writable migration entry of a COW mapping becomes readable on both sides.
    if (cow && bits & (B_WRITE | B_EXCLUSIVE)) {
      bits &= ~(B_WRITE | B_EXCLUSIVE);
      pte.set(srcPteT, i, val, bits);
    }
  } else if (type === E_MARKER) {
    // copy_pte_marker: uffd-wp markers only matter where uffd-wp is armed.
    if (val === MARKER_UFFD_WP && !(dst.flags & VM_UFFD_WP)) return;
  }
  if (!(dst.flags & VM_UFFD_WP)) bits &= ~B_UFFD_WP;
  pte.set(dstPteT, i, val, bits);
}
