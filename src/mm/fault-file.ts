// Faults on file and shmem mappings (mm/memory.c: do_fault, do_read_fault, do_cow_fault,
// do_shared_fault, finish_fault, do_set_pmd, wp_huge_pmd, wp_page_shared; mm/filemap.c:
// filemap_fault; mm/shmem.c: shmem_fault). No fault-around and no readahead (read_ahead_kb = 0):
// each fault brings in and maps one page, or a whole PMD when the page cache holds a PMD-sized
// folio that lines up with the VMA.

import {
  VM_FAULT_FALLBACK,
  VM_FAULT_MAJOR,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGSEGV,
  doSwapPage,
  doWpPage,
  vmfAnonPrepare,
} from './fault.ts';
import { type AddressSpace, filemapReadFolio, folioFilePage } from './filemap.ts';
import { PG_ANON_EXCLUSIVE, PG_DIRTY, PG_FILE, PG_LOCKED } from './folio.ts';
import type { Kernel } from './kernel.ts';
import { pteAlloc, pteRelock, pteUnmapUnlock } from './pagewalk.ts';
import {
  B_DIRTY,
  B_WRITE,
  B_YOUNG,
  E_MARKER,
  E_NONE,
  E_PRESENT,
  E_SWAP,
  E_TABLE,
  E_TYPE_MASK,
  MARKER_GUARD,
} from './pgtable.ts';
import { folioAddNewAnon, rmapAddPmd, rmapAddPtes } from './rmap.ts';
import { shmemAllocFolio } from './shmem.ts';
import { splitHugePmd } from './split.ts';
import {
  L_FOLIO_LOCK,
  L_PMD_LOCK,
  L_RCU,
  S_PMD_ENTRY,
  S_PTE_ENTRY,
  type Step,
  lock,
  readShared,
  unlock,
} from './step.ts';
import { thpVmaSuitableOrders, vmaThpDisabled } from './thp-orders.ts';
import { VM_SHARED, VM_WRITE, type Vma } from './vma.ts';

const NONE = -1;

/**
 * The write permission vm_page_prot gives a new entry: shared writable mappings of tmpfs carry it
 * from the start; regular files want write notification (the first write faults and dirties the
 * folio), and private mappings are copy-on-write.
 */
function mapWritable(vma: Vma, file: AddressSpace): boolean {
  return (vma.flags & (VM_SHARED | VM_WRITE)) === (VM_SHARED | VM_WRITE) && file.tmpfs;
}

/** The bits of a new entry mapping a page-cache page (mk_pte + maybe_mkwrite on write faults). */
function entryBits(vma: Vma, file: AddressSpace, write: boolean): number {
  if (write) return E_PRESENT | B_YOUNG | B_DIRTY | B_WRITE;
  return E_PRESENT | B_YOUNG | (mapWritable(vma, file) ? B_WRITE : 0);
}

/** The fault handler for a VMA backed by a file or shmem; returns VM_FAULT_* bits. */
export function* doFileFault(
  k: Kernel,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  write: boolean,
  vmaLock: boolean,
): Step<number> {
  const file = k.files.get(vma.file);
  if (!file) return VM_FAULT_SIGSEGV;
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  const pmdLoc = pmdT * pmd.entriesPerTable + pmdI;
  yield readShared(S_PMD_ENTRY, pmdLoc);
  let pmdBits = pmd.bits[pmdLoc];
  if ((pmdBits & E_TYPE_MASK) === E_PRESENT) {
    // huge_pmd_set_accessed: the retried access hits.
    if (!write || pmdBits & B_WRITE) return 0;
    // wp_huge_pmd: page-cache files have no ->huge_fault, so the PMD goes and the PTE path
    // (or do_set_pmd, now for a write) takes over.
    yield* splitHugePmd(k, vma, pmdT, pmdI);
    yield readShared(S_PMD_ENTRY, pmdLoc);
    pmdBits = pmd.bits[pmdLoc];
  }
  const pmdType = pmdBits & E_TYPE_MASK;
  if (pmdType === E_NONE) return yield* doFault(k, file, vma, vpn, pmdT, pmdI, write, vmaLock, 0);
  if (pmdType !== E_TABLE) return 0; // changing under us: refault
  // handle_pte_fault: the entry is read once, under RCU.
  const pteT = pmd.val[pmdLoc];
  const pteI = vpn % k.geo.ptrsPerPte;
  yield lock(L_RCU, 0);
  yield readShared(S_PTE_ENTRY, pteT * pte.entriesPerTable + pteI);
  const bits = pte.getBits(pteT, pteI);
  const val = pte.getVal(pteT, pteI);
  yield unlock(L_RCU, 0);
  const type = bits & E_TYPE_MASK;
  if (type === E_NONE) return yield* doFault(k, file, vma, vpn, pmdT, pmdI, write, vmaLock, 0);
  if (type === E_SWAP)
    return yield* doSwapPage(k, vma, vpn, pmdT, pmdI, pteT, pteI, bits, write, vmaLock);
  if (type === E_MARKER) {
    if (val === MARKER_GUARD) return VM_FAULT_SIGSEGV;
    return yield* doFault(k, file, vma, vpn, pmdT, pmdI, write, vmaLock, bits);
  }
  if (type !== E_PRESENT) return 0;
  if (write && !(bits & B_WRITE)) {
    if (!(vma.flags & VM_SHARED))
      return yield* doWpPage(k, vma, vpn, pmdT, pmdI, pteT, pteI, bits, vmaLock);
    return yield* wpPageShared(k, pmdT, pmdI, pteT, pteI, bits);
  }
  // Spurious fault: mark it young under the PTE lock.
  if (!(yield* pteRelock(k, pmdT, pmdI, pteT))) return 0;
  if (pte.getBits(pteT, pteI) === bits)
    pte.set(pteT, pteI, val, bits | B_YOUNG | (write ? B_DIRTY : 0));
  yield* pteUnmapUnlock(pteT);
  return 0;
}

/** do_fault: a missing entry (none, or a marker with bits `orig`) of a file VMA. */
function* doFault(
  k: Kernel,
  file: AddressSpace,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  write: boolean,
  vmaLock: boolean,
  orig: number,
): Step<number> {
  const index = vma.linearIndex(vpn);
  // Beyond i_size the kernel raises SIGBUS; the model has one signal for a failed access.
  if (index >= file.size) return VM_FAULT_SIGSEGV;
  if (!write) return yield* doMapFault(k, file, vma, vpn, pmdT, pmdI, orig, false);
  if (!(vma.flags & VM_SHARED))
    return yield* doCowFault(k, file, vma, vpn, pmdT, pmdI, vmaLock, orig);
  return yield* doMapFault(k, file, vma, vpn, pmdT, pmdI, orig, true);
}

interface LockedFolio {
  /** Head pfn, locked and referenced by the caller; -1 when out of memory. */
  head: number;
  ret: number;
}

/**
 * filemap_fault / shmem_fault: find the folio caching index, or read it in (regular file) or
 * allocate it (shmem), then lock it and make sure it is still the cached one (a truncation or a
 * collapse_file may have replaced it meanwhile: retry then).
 */
function* faultGetFolio(
  k: Kernel,
  file: AddressSpace,
  index: number,
  vma: Vma,
  vpn: number,
): Step<LockedFolio> {
  const f = k.folios;
  let ret = 0;
  for (;;) {
    // filemap_get_entry + folio_try_get under RCU.
    yield lock(L_RCU, 0);
    let head = file.cache[index];
    if (head !== NONE) k.folioGet(head);
    yield unlock(L_RCU, 0);
    if (head === NONE) {
      head = file.tmpfs
        ? shmemAllocFolio(k, file, index, vma, vpn)
        : filemapReadFolio(k, file, index);
      if (head === NONE) return { head, ret: VM_FAULT_OOM };
      if (!file.tmpfs) {
        ret |= VM_FAULT_MAJOR;
        k.stats.event('pgmajfault');
      }
    }
    yield lock(L_FOLIO_LOCK, head);
    f.set(head, PG_LOCKED);
    if (f.flags[head] & PG_FILE && f.mapping[head] === file.id && file.cache[index] === head)
      return { head, ret };
    f.clear(head, PG_LOCKED);
    yield unlock(L_FOLIO_LOCK, head);
    k.folioPut(head);
  }
}

/** folio_unlock + folio_put of the fault's folio. */
function* releaseFolio(k: Kernel, head: number): Step<void> {
  k.folios.clear(head, PG_LOCKED);
  yield unlock(L_FOLIO_LOCK, head);
  k.folioPut(head);
}

/**
 * do_read_fault, and do_shared_fault when `shared`: map the page-cache page (or the whole
 * PMD-sized folio); a shared write maps it writable and dirties the folio (page_mkwrite +
 * fault_dirty_shared_page).
 */
function* doMapFault(
  k: Kernel,
  file: AddressSpace,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  orig: number,
  shared: boolean,
): Step<number> {
  const index = vma.linearIndex(vpn);
  const got: LockedFolio = yield* faultGetFolio(k, file, index, vma, vpn);
  if (got.head === NONE) return got.ret;
  const page = folioFilePage(k, got.head, index);
  const ret: number = yield* finishFault(
    k,
    file,
    vma,
    vpn,
    pmdT,
    pmdI,
    got.head,
    page,
    shared,
    orig,
  );
  if (shared) k.folios.set(got.head, PG_DIRTY);
  yield* releaseFolio(k, got.head);
  return got.ret | ret;
}

/** do_cow_fault: a private copy of the page-cache page, mapped writable in an anon folio. */
function* doCowFault(
  k: Kernel,
  file: AddressSpace,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  vmaLock: boolean,
  orig: number,
): Step<number> {
  if (!(yield* vmfAnonPrepare(k, vma, vmaLock))) return VM_FAULT_RETRY;
  const copy = k.allocFolio(0);
  if (copy === NONE) return VM_FAULT_OOM;
  const index = vma.linearIndex(vpn);
  const got: LockedFolio = yield* faultGetFolio(k, file, index, vma, vpn);
  if (got.head === NONE) {
    k.folioPut(copy);
    return got.ret;
  }
  k.folios.data[copy] = k.folios.data[folioFilePage(k, got.head, index)];
  const ret: number = yield* finishAnonFault(k, vma, vpn, pmdT, pmdI, copy, orig);
  yield* releaseFolio(k, got.head);
  return got.ret | ret;
}

/** The PTE table under the PMD entry, allocated if the entry is none; 0 when it turned huge. */
function* pteTableFor(k: Kernel, vma: Vma, pmdT: number, pmdI: number): Step<number> {
  const pmd = k.pt.pmd;
  yield readShared(S_PMD_ENTRY, pmdT * pmd.entriesPerTable + pmdI);
  const type = pmd.type(pmdT, pmdI);
  if (type === E_TABLE) return pmd.getVal(pmdT, pmdI);
  if (type !== E_NONE) return 0;
  return yield* pteAlloc(k, vma.mm, pmdT, pmdI);
}

/**
 * finish_fault for a page-cache page: a PMD-sized folio goes in with do_set_pmd when the PMD
 * entry is none, otherwise (or when that falls back) one PTE maps the page.
 */
function* finishFault(
  k: Kernel,
  file: AddressSpace,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  head: number,
  page: number,
  write: boolean,
  orig: number,
): Step<number> {
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  yield readShared(S_PMD_ENTRY, pmdT * pmd.entriesPerTable + pmdI);
  if (pmd.type(pmdT, pmdI) === E_NONE && k.folios.order[head] === k.geo.pmdOrder) {
    const r: number = yield* doSetPmd(k, file, vma, vpn, pmdT, pmdI, head, write);
    if (r !== VM_FAULT_FALLBACK) return r;
  }
  const pteT: number = yield* pteTableFor(k, vma, pmdT, pmdI);
  if (!pteT) return 0;
  const pteI = vpn % k.geo.ptrsPerPte;
  if (!(yield* pteRelock(k, pmdT, pmdI, pteT))) return 0;
  if (pte.getBits(pteT, pteI) === orig) {
    rmapAddPtes(k, head, page, 1, vma);
    k.folioGet(head);
    pte.set(pteT, pteI, page, entryBits(vma, file, write));
  }
  yield* pteUnmapUnlock(pteT);
  return 0;
}

/** finish_fault for do_cow_fault's private copy. */
function* finishAnonFault(
  k: Kernel,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  copy: number,
  orig: number,
): Step<number> {
  const pte = k.pt.pte;
  const pteT: number = yield* pteTableFor(k, vma, pmdT, pmdI);
  if (!pteT) {
    k.folioPut(copy);
    return 0;
  }
  const pteI = vpn % k.geo.ptrsPerPte;
  const locked = yield* pteRelock(k, pmdT, pmdI, pteT);
  const ok = locked && pte.getBits(pteT, pteI) === orig;
  if (ok) {
    folioAddNewAnon(k, copy, vma, vpn);
    k.folios.flags[copy] |= PG_ANON_EXCLUSIVE;
    rmapAddPtes(k, copy, copy, 1, vma);
    pte.set(pteT, pteI, copy, E_PRESENT | B_YOUNG | B_DIRTY | (vma.flags & VM_WRITE ? B_WRITE : 0));
  }
  if (locked) yield* pteUnmapUnlock(pteT);
  if (!ok) k.folioPut(copy);
  return 0;
}

/**
 * do_set_pmd: map a PMD-sized page-cache folio with one huge PMD. Refused (VM_FAULT_FALLBACK)
 * when THP is disabled for the VMA (as for a forced collapse), when the PMD block does not line
 * up with the VMA and the file offset, or when the entry is no longer none. File PMDs need no
 * deposited table on x86-64 and arm64 (arch_needs_pgtable_deposit is false there).
 */
export function* doSetPmd(
  k: Kernel,
  file: AddressSpace,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  head: number,
  write: boolean,
): Step<number> {
  const pmdOrder = k.geo.pmdOrder;
  if (vmaThpDisabled(vma, true)) return VM_FAULT_FALLBACK;
  if (!thpVmaSuitableOrders(vma, vpn, 1 << pmdOrder)) return VM_FAULT_FALLBACK;
  if (k.folios.order[head] !== pmdOrder) return VM_FAULT_FALLBACK;
  const pmd = k.pt.pmd;
  yield lock(L_PMD_LOCK, pmdT);
  if (pmd.type(pmdT, pmdI) !== E_NONE) {
    yield unlock(L_PMD_LOCK, pmdT);
    return VM_FAULT_FALLBACK;
  }
  rmapAddPmd(k, head, vma);
  k.folioGet(head);
  pmd.set(pmdT, pmdI, head, entryBits(vma, file, write));
  yield unlock(L_PMD_LOCK, pmdT);
  return 0;
}

/**
 * wp_page_shared: a write to a present read-only page of a shared mapping (write notification
 * of a regular file, or a shmem page made read-only): dirty the folio, make the entry writable.
 */
function* wpPageShared(
  k: Kernel,
  pmdT: number,
  pmdI: number,
  pteT: number,
  pteI: number,
  orig: number,
): Step<number> {
  const pte = k.pt.pte;
  const f = k.folios;
  const pfn = pte.getVal(pteT, pteI);
  const head = f.headOf(pfn);
  k.folioGet(head);
  // do_page_mkwrite hands the folio back locked.
  yield lock(L_FOLIO_LOCK, head);
  f.set(head, PG_LOCKED);
  if (yield* pteRelock(k, pmdT, pmdI, pteT)) {
    if (pte.getBits(pteT, pteI) === orig && pte.getVal(pteT, pteI) === pfn) {
      pte.set(pteT, pteI, pfn, orig | B_WRITE | B_DIRTY | B_YOUNG);
      f.set(head, PG_DIRTY);
    }
    yield* pteUnmapUnlock(pteT);
  }
  yield* releaseFolio(k, head);
  return 0;
}
