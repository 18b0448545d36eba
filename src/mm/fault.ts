// The anonymous page-fault path (mm/memory.c, mm/huge_memory.c): lock_vma_under_rcu or the mmap
// lock, __handle_mm_fault, the huge PMD fault, mTHP order choice (alloc_anon_folio), the zero
// page, COW (do_wp_page) and swap-in (do_swap_page).

import { khugepagedEnterVma } from '../khugepaged/enter.ts';
import { anonVmaPrepare } from './anon-vma.ts';
import { allocFolioGfp, allocPagesDirectCompact } from './compaction.ts';
import { doFileFault } from './fault-file.ts';
import { PG_ANON, PG_ANON_EXCLUSIVE, PG_SWAPCACHE, PG_ZERO } from './folio.ts';
import { highestOrder } from './geometry.ts';
import { GFP_TRANSHUGE, __GFP_MOVABLE, gfpDirectReclaim, vmaThpGfpMask } from './gfp.ts';
import { type Kernel, NO_PFN } from './kernel.ts';
import { folioPrealloc, memcgCharge } from './memcg.ts';
import { migrationEntryWait } from './migration-entry.ts';
import {
  entryLoc,
  levelIndex,
  pmdAlloc,
  pteAlloc,
  pteOffsetMapLock,
  pteRelock,
  pteUnmapUnlock,
} from './pagewalk.ts';
import {
  B_DIRTY,
  B_EXCLUSIVE,
  B_PROTNONE,
  B_SOFT_DIRTY,
  B_SPECIAL,
  B_UFFD_WP,
  B_WRITE,
  B_YOUNG,
  E_NONE,
  E_PRESENT,
  E_MIGRATION,
  E_SWAP,
  E_TABLE,
  E_TYPE_MASK,
  PMD,
  T_DEPOSITED,
} from './pgtable.ts';
import { vmaPteProt } from './mprotect.ts';
import { folioAddNewAnon, rmapAddPmd, rmapAddPtes, rmapRemovePtes } from './rmap.ts';
import { splitHugePmd } from './split.ts';
import {
  IRQ_HW_WALK,
  L_IRQ_OFF,
  L_MMAP_READ,
  L_PMD_LOCK,
  L_RCU,
  L_VMA_READ,
  S_PMD_ENTRY,
  S_PTE_ENTRY,
  S_VMA_TREE,
  type Step,
  lock,
  readShared,
  trylock,
  unlock,
  writeShared,
} from './step.ts';
import { thpVmaAllowableOrder, thpVmaAllowableOrders, thpVmaSuitableOrders } from './thp-orders.ts';
import { VM_UFFD_MISSING, VM_WRITE, type Vma, type Mm } from './vma.ts';

export const VM_FAULT_OOM = 1;
export const VM_FAULT_SIGSEGV = 2;
export const VM_FAULT_RETRY = 4;
export const VM_FAULT_FALLBACK = 8;
export const VM_FAULT_MAJOR = 16;

/**
 * vmf_anon_prepare: make sure the VMA has an anon_vma. Under the VMA lock alone that is not
 * allowed (rule 18: it may reuse a neighbour's, which only the mmap lock keeps still): false
 * means retry under the mmap lock. The checker's 'anon-vma-under-vma-lock' goes ahead anyway.
 */
export function* vmfAnonPrepare(k: Kernel, vma: Vma, vmaLock: boolean): Step<boolean> {
  if (vma.anonVma) return true;
  if (vmaLock && !k.bugs.has('anon-vma-under-vma-lock')) return false;
  yield* anonVmaPrepare(k, vma);
  return true;
}

/** Outcome of one user access. */
export const ACCESS_HIT = 0;
export const ACCESS_FAULT = 1;
export const ACCESS_OOM = 2;
export const ACCESS_SIGSEGV = 3;

/**
 * The hardware walker for one access: translate vpn, check permission, set the accessed (and
 * dirty) bit atomically, and store a fresh value on a write. Returns the pfn or NO_PFN on a miss.
 */
export function* hwAccess(k: Kernel, mm: Mm, vpn: number, write: boolean): Step<number> {
  // One access is one instruction: an IPI (a TLB shootdown) is taken before or after the walk,
  // never in the middle of it, as if interrupts were off for its length.
  yield lock(L_IRQ_OFF, IRQ_HW_WALK);
  const pfn: number = yield* hwWalk(k, mm, vpn, write);
  yield unlock(L_IRQ_OFF, IRQ_HW_WALK);
  return pfn;
}

function* hwWalk(k: Kernel, mm: Mm, vpn: number, write: boolean): Step<number> {
  const pt = k.pt;
  const pgdI = levelIndex(k, vpn, 0);
  yield readShared(20, entryLoc(pt.pgd, mm.pgd, pgdI));
  if ((pt.pgd.getBits(mm.pgd, pgdI) & E_TYPE_MASK) !== E_TABLE) return NO_PFN;
  const pud = pt.pgd.getVal(mm.pgd, pgdI);
  const pudI = levelIndex(k, vpn, 1);
  yield readShared(21, entryLoc(pt.pud, pud, pudI));
  if ((pt.pud.getBits(pud, pudI) & E_TYPE_MASK) !== E_TABLE) return NO_PFN;
  const pmdT = pt.pud.getVal(pud, pudI);
  const pmdI = levelIndex(k, vpn, PMD);
  yield readShared(S_PMD_ENTRY, pmdT * k.pt.pmd.entriesPerTable + pmdI);
  const pmdBits = k.pt.pmd.getBits(pmdT, pmdI);
  const pmdType = pmdBits & E_TYPE_MASK;
  if (pmdType === E_PRESENT) {
    if (pmdBits & B_PROTNONE || (write && !(pmdBits & B_WRITE))) return NO_PFN;
    const i = pmdT * pt.pmd.entriesPerTable + pmdI;
    pt.pmd.bits[i] |= write ? B_YOUNG | B_DIRTY : B_YOUNG;
    const pfn = pt.pmd.val[i] + (vpn % k.geo.ptrsPerPte);
    if (write) k.folios.data[pfn] = k.freshData();
    return pfn;
  }
  if (pmdType !== E_TABLE) return NO_PFN;
  const pteT = pt.pmd.getVal(pmdT, pmdI);
  const pteI = vpn % k.geo.ptrsPerPte;
  const i = pteT * pt.pte.entriesPerTable + pteI;
  yield readShared(S_PTE_ENTRY, i);
  const bits = pt.pte.bits[i];
  if ((bits & E_TYPE_MASK) !== E_PRESENT || bits & B_PROTNONE) return NO_PFN;
  if (write && !(bits & B_WRITE)) return NO_PFN;
  pt.pte.bits[i] = bits | (write ? B_YOUNG | B_DIRTY : B_YOUNG);
  const pfn = pt.pte.val[i];
  if (write) k.folios.data[pfn] = k.freshData();
  return pfn;
}

/** A user access: the hardware walk, and on a miss the fault handler, then the access again. */
export function* userAccess(k: Kernel, mm: Mm, vpn: number, write: boolean): Step<number> {
  if (((yield hwAccess(k, mm, vpn, write)) as number) !== NO_PFN) return ACCESS_HIT;
  for (let attempt = 0; attempt < 4; attempt++) {
    const r = (yield faultUser(k, mm, vpn, write)) as number;
    if (r & VM_FAULT_SIGSEGV) return ACCESS_SIGSEGV;
    if (r & VM_FAULT_OOM) return ACCESS_OOM;
    if (((yield hwAccess(k, mm, vpn, write)) as number) !== NO_PFN) return ACCESS_FAULT;
  }
  throw new Error(`access to vpn ${vpn} still misses after repeated faults`);
}

/** do_user_addr_fault: try the per-VMA lock first, fall back to the mmap lock. */
export function* faultUser(k: Kernel, mm: Mm, vpn: number, write: boolean): Step<number> {
  k.stats.vm[0]++; // pgfault
  // lock_vma_under_rcu
  yield lock(L_RCU, 0);
  yield readShared(S_VMA_TREE, mm.id);
  let vma = mm.findVma(vpn);
  let locked = false;
  if (vma && !vma.detached && vma.vmLockSeq !== mm.mmLockSeq)
    locked = (yield trylock(L_VMA_READ, vma.id)) === true;
  yield unlock(L_RCU, 0);
  if (locked && vma) {
    const r = (yield handleMmFault(k, vma, vpn, write, true)) as number;
    yield unlock(L_VMA_READ, vma.id);
    if (!(r & VM_FAULT_RETRY)) return r;
  }
  // lock_mm_and_find_vma
  yield lock(L_MMAP_READ, mm.id);
  vma = mm.findVma(vpn);
  let r: number;
  if (!vma || !vmaAccessOk(vma, write)) r = VM_FAULT_SIGSEGV;
  else r = (yield handleMmFault(k, vma, vpn, write, false)) as number;
  yield unlock(L_MMAP_READ, mm.id);
  return r;
}

function vmaAccessOk(vma: Vma, write: boolean): boolean {
  return write ? (vma.flags & VM_WRITE) !== 0 : (vma.flags & 1) !== 0;
}

/** __handle_mm_fault for anonymous VMAs. */
export function* handleMmFault(
  k: Kernel,
  vma: Vma,
  vpn: number,
  write: boolean,
  vmaLock: boolean,
): Step<number> {
  if (!vmaAccessOk(vma, write)) return VM_FAULT_SIGSEGV;
  const pmdT: number = (yield pmdAlloc(k, vma.mm, vpn)) as number;
  const pmdI = levelIndex(k, vpn, PMD);
  if (vma.file !== 0) return (yield doFileFault(k, vma, vpn, pmdT, pmdI, write, vmaLock)) as number;
  yield readShared(S_PMD_ENTRY, pmdT * k.pt.pmd.entriesPerTable + pmdI);
  const pmdBits = k.pt.pmd.getBits(pmdT, pmdI);
  const type = pmdBits & E_TYPE_MASK;
  const pmdOrder = k.geo.pmdOrder;
  if (
    type === E_NONE &&
    thpVmaAllowableOrder(k, vma, 'pagefault', pmdOrder) &&
    thpVmaSuitableOrders(vma, vpn, 1 << pmdOrder)
  ) {
    const r = (yield doHugePmdAnonymousPage(k, vma, vpn, pmdT, pmdI, write, vmaLock)) as number;
    if (!(r & VM_FAULT_FALLBACK)) return r;
  } else if (type === E_PRESENT) {
    if (write && !(pmdBits & B_WRITE)) {
      const r = (yield doHugePmdWpPage(k, vma, vpn, pmdT, pmdI)) as number;
      if (!(r & VM_FAULT_FALLBACK)) return r;
    } else {
      // huge_pmd_set_accessed: nothing to map, the retried access will hit.
      return 0;
    }
  }
  return (yield handlePteFault(k, vma, vpn, pmdT, pmdI, write, vmaLock)) as number;
}

/** get_huge_zero_folio: allocated once, on first use, not movable, with direct compaction. */
function* getHugeZeroFolio(k: Kernel): Step<number> {
  if (k.hugeZeroPfn !== NO_PFN) return k.hugeZeroPfn;
  const gfp = GFP_TRANSHUGE & ~__GFP_MOVABLE;
  const pfn = (yield allocFolioGfp(k, k.geo.pmdOrder, gfp)) as number;
  if (pfn === NO_PFN) {
    k.stats.event('thp_zero_page_alloc_failed');
    return NO_PFN;
  }
  if (k.hugeZeroPfn !== NO_PFN) {
    // Someone else installed one while this thread compacted: theirs wins (the cmpxchg).
    k.folioPut(pfn);
    return k.hugeZeroPfn;
  }
  k.folios.set(pfn, PG_ZERO);
  k.stats.event('thp_zero_page_alloc');
  k.hugeZeroPfn = pfn;
  return pfn;
}

/** do_huge_pmd_anonymous_page. */
function* doHugePmdAnonymousPage(
  k: Kernel,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  write: boolean,
  vmaLock: boolean,
): Step<number> {
  const pmdOrder = k.geo.pmdOrder;
  if (!(yield* vmfAnonPrepare(k, vma, vmaLock))) return VM_FAULT_RETRY;
  khugepagedEnterVma(k, vma);
  if (vma.flags & VM_UFFD_MISSING) return VM_FAULT_FALLBACK;
  const pmd = k.pt.pmd;
  if (!write && k.settings.useZeroPage) {
    const zero = k.hugeZeroPfn !== NO_PFN ? k.hugeZeroPfn : ((yield getHugeZeroFolio(k)) as number);
    if (zero === NO_PFN) {
      k.stats.event('thp_fault_fallback');
      return VM_FAULT_FALLBACK;
    }
    const pgtable = k.pt.pte.alloc(vma.mm.id);
    yield lock(L_PMD_LOCK, pmdT);
    const installed = (pmd.getBits(pmdT, pmdI) & E_TYPE_MASK) === E_NONE;
    if (installed) {
      pmd.set(pmdT, pmdI, zero, E_PRESENT | B_YOUNG | B_SPECIAL);
      depositTable(k, pmdT, pmdI, pgtable);
    }
    yield unlock(L_PMD_LOCK, pmdT);
    if (!installed) k.pt.pte.free(pgtable);
    return 0;
  }
  // vma_alloc_anon_folio_pmd
  const gfp = vmaThpGfpMask(k, vma);
  const folio = (yield allocFolioGfp(k, pmdOrder, gfp)) as number;
  if (folio === NO_PFN) {
    k.stats.event('thp_fault_fallback');
    k.stats.mthpStat(pmdOrder, 'anon_fault_fallback');
    return VM_FAULT_FALLBACK;
  }
  if (k.uncharge && !((yield memcgCharge(k, vma.mm, folio, gfp)) as boolean)) {
    k.folioPut(folio);
    k.stats.event('thp_fault_fallback');
    k.stats.event('thp_fault_fallback_charge');
    k.stats.mthpStat(pmdOrder, 'anon_fault_fallback');
    k.stats.mthpStat(pmdOrder, 'anon_fault_fallback_charge');
    return VM_FAULT_FALLBACK;
  }
  k.stats.event('thp_fault_alloc');
  k.stats.mthpStat(pmdOrder, 'anon_fault_alloc');
  const pgtable = k.pt.pte.alloc(vma.mm.id);
  yield lock(L_PMD_LOCK, pmdT);
  if ((pmd.getBits(pmdT, pmdI) & E_TYPE_MASK) !== E_NONE) {
    yield unlock(L_PMD_LOCK, pmdT);
    k.folioPut(folio);
    k.pt.pte.free(pgtable);
    return 0;
  }
  mapAnonFolioPmd(k, vma, vpn, folio, pmdT, pmdI, pgtable);
  yield unlock(L_PMD_LOCK, pmdT);
  return 0;
}

/** pgtable_trans_huge_deposit. */
export function depositTable(k: Kernel, pmdT: number, pmdI: number, pgtable: number): void {
  k.pt.syncDeposit();
  k.pt.deposit[pmdT * k.pt.pmd.entriesPerTable + pmdI] = pgtable;
  k.pt.pte.state[pgtable] = T_DEPOSITED;
}

/**
 * map_anon_folio_pmd: map a new anon PMD folio (dirty, writable where the VMA is), deposit the
 * pre-allocated PTE table and queue the folio for the underused shrinker. Used by the fault path
 * and by collapse.
 */
export function mapAnonFolioPmd(
  k: Kernel,
  vma: Vma,
  vpn: number,
  folio: number,
  pmdT: number,
  pmdI: number,
  pgtable: number,
): void {
  const f = k.folios;
  const n = k.geo.ptrsPerPte;
  const haddr = Math.floor(vpn / n) * n;
  folioAddNewAnon(k, folio, vma, haddr);
  for (let i = 0; i < n; i++) f.flags[folio + i] |= PG_ANON_EXCLUSIVE;
  rmapAddPmd(k, folio, vma);
  depositTable(k, pmdT, pmdI, pgtable);
  k.pt.pmd.set(pmdT, pmdI, folio, E_PRESENT | B_YOUNG | B_DIRTY | vmaPteProt(vma.flags));
  k.deferredSplitAdd(folio, false);
}

/** do_huge_pmd_wp_page: reuse an exclusive THP, replace the huge zero page, or split and fall back. */
function* doHugePmdWpPage(
  k: Kernel,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
): Step<number> {
  const pmd = k.pt.pmd;
  const f = k.folios;
  yield lock(L_PMD_LOCK, pmdT);
  const bits = pmd.getBits(pmdT, pmdI);
  if ((bits & E_TYPE_MASK) !== E_PRESENT || bits & B_WRITE) {
    yield unlock(L_PMD_LOCK, pmdT);
    return 0;
  }
  const head = pmd.getVal(pmdT, pmdI);
  if (!(f.flags[head] & PG_ZERO) && f.flags[head] & PG_ANON) {
    if (f.flags[head] & PG_ANON_EXCLUSIVE || f.refcount[head] === 1) {
      for (let i = 0; i < 1 << f.order[head]; i++) f.flags[head + i] |= PG_ANON_EXCLUSIVE;
      pmd.set(pmdT, pmdI, head, bits | B_WRITE | B_DIRTY | B_YOUNG);
      yield unlock(L_PMD_LOCK, pmdT);
      return 0;
    }
  }
  yield unlock(L_PMD_LOCK, pmdT);
  if (f.flags[head] & PG_ZERO) {
    // do_huge_zero_wp_pmd: try a fresh THP first (vma_alloc_anon_folio_pmd).
    const gfp = vmaThpGfpMask(k, vma);
    const folio = (yield allocFolioGfp(k, k.geo.pmdOrder, gfp)) as number;
    if (folio !== NO_PFN) {
      k.stats.event('thp_fault_alloc');
      k.stats.mthpStat(k.geo.pmdOrder, 'anon_fault_alloc');
      yield lock(L_PMD_LOCK, pmdT);
      if (pmd.getBits(pmdT, pmdI) === bits && pmd.getVal(pmdT, pmdI) === head) {
        const i = pmdT * pmd.entriesPerTable + pmdI;
        const pgtable = k.pt.deposit[i];
        k.pt.deposit[i] = 0;
        pmd.clear(pmdT, pmdI);
        mapAnonFolioPmd(k, vma, vpn, folio, pmdT, pmdI, pgtable);
        yield unlock(L_PMD_LOCK, pmdT);
        return 0;
      }
      yield unlock(L_PMD_LOCK, pmdT);
      k.folioPut(folio);
      return 0;
    }
    k.stats.event('thp_fault_fallback');
    k.stats.mthpStat(k.geo.pmdOrder, 'anon_fault_fallback');
  }
  yield* splitHugePmd(k, vma, pmdT, pmdI);
  return VM_FAULT_FALLBACK;
}

/** handle_pte_fault. */
function* handlePteFault(
  k: Kernel,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  write: boolean,
  vmaLock: boolean,
): Step<number> {
  yield readShared(S_PMD_ENTRY, pmdT * k.pt.pmd.entriesPerTable + pmdI);
  const pmdBits = k.pt.pmd.getBits(pmdT, pmdI);
  const pmdType = pmdBits & E_TYPE_MASK;
  if (pmdType === E_NONE)
    return (yield doAnonymousPage(k, vma, vpn, pmdT, pmdI, write, vmaLock)) as number;
  if (pmdType !== E_TABLE) return 0; // changed under us (huge or being split): refault
  // pte_offset_map_rw_nolock: the table stays valid for the RCU section; if the PMD changed
  // before the section began, there is no table to map and the fault is retried.
  yield lock(L_RCU, 0);
  if (k.pt.pmd.type(pmdT, pmdI) !== E_TABLE) {
    yield unlock(L_RCU, 0);
    return 0;
  }
  const pteT = k.pt.pmd.getVal(pmdT, pmdI);
  const pteI = vpn % k.geo.ptrsPerPte;
  const loc = pteT * k.pt.pte.entriesPerTable + pteI;
  yield readShared(S_PTE_ENTRY, loc);
  const bits = k.pt.pte.bits[loc];
  const type = bits & E_TYPE_MASK;
  yield unlock(L_RCU, 0);
  if (type === E_NONE)
    return (yield doAnonymousPage(k, vma, vpn, pmdT, pmdI, write, vmaLock)) as number;
  if (type === E_SWAP)
    return (yield doSwapPage(k, vma, vpn, pmdT, pmdI, pteT, pteI, bits, write, vmaLock)) as number;
  if (type === E_MIGRATION) {
    // do_swap_page's migration case: sleep until the barrier is lowered, then refault.
    yield* migrationEntryWait(k, pmdT, pmdI, pteT, pteI);
    return 0;
  }
  if (type !== E_PRESENT) return 0;
  if (write && !(bits & B_WRITE))
    return (yield doWpPage(k, vma, vpn, pmdT, pmdI, pteT, pteI, bits, vmaLock)) as number;
  // Spurious fault: mark it young under the PTE lock.
  if (!((yield pteRelock(k, pmdT, pmdI, pteT)) as boolean)) return 0;
  if (k.pt.pte.bits[loc] === bits) k.pt.pte.bits[loc] = bits | B_YOUNG | (write ? B_DIRTY : 0);
  yield* pteUnmapUnlock(pteT);
  return 0;
}

/** Whether the PTEs [idx, idx+n) of a table are all none (pte_range_none). */
function pteRangeNone(k: Kernel, pteT: number, idx: number, n: number): boolean {
  const bits = k.pt.pte.bits;
  const base = pteT * k.pt.pte.entriesPerTable + idx;
  for (let i = 0; i < n; i++) if ((bits[base + i] & E_TYPE_MASK) !== E_NONE) return false;
  return true;
}

/** The mTHP orders a write fault at vpn may use before looking at the PTEs (alloc_anon_folio). */
function anonFaultOrders(k: Kernel, vma: Vma, vpn: number): number {
  if (vma.flags & VM_UFFD_MISSING) return 0;
  const below = k.geo.anonOrders & ((1 << k.geo.pmdOrder) - 1);
  // Cheap exit for the common case of no mTHP size enabled at all.
  const s = k.settings;
  if (!((s.ordersAlways | s.ordersMadvise | s.ordersInherit) & below)) return 0;
  return thpVmaSuitableOrders(vma, vpn, thpVmaAllowableOrders(k, vma, 'pagefault', below));
}

/** alloc_anon_folio: the largest allowed order whose aligned range is all none, falling back. */
function* allocAnonFolio(
  k: Kernel,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  allowed: number,
): Step<number> {
  const pmdOrder = k.geo.pmdOrder;
  let orders = allowed;
  if (orders) {
    // pte_offset_map: the PMD is read inside the RCU section that keeps its table alive.
    yield lock(L_RCU, 0);
    yield readShared(S_PMD_ENTRY, pmdT * k.pt.pmd.entriesPerTable + pmdI);
    const pmdBits = k.pt.pmd.getBits(pmdT, pmdI);
    if ((pmdBits & E_TYPE_MASK) === E_TABLE) {
      const pteT = k.pt.pmd.getVal(pmdT, pmdI);
      for (let o = pmdOrder; o >= 2; o--) {
        if (!(orders & (1 << o))) continue;
        const n = 1 << o;
        const start = Math.floor((vpn % k.geo.ptrsPerPte) / n) * n;
        yield readShared(S_PTE_ENTRY, pteT * k.pt.pte.entriesPerTable + start);
        if (pteRangeNone(k, pteT, start, n)) break;
        orders &= ~(1 << o);
      }
    }
    yield unlock(L_RCU, 0);
  }
  const gfp = orders ? vmaThpGfpMask(k, vma) : 0;
  while (orders) {
    const o = highestOrder(orders);
    // vma_alloc_folio(gfp, o): the free lists first, inline; direct compaction only on failure.
    let folio = k.allocFolio(o);
    if (folio === NO_PFN && gfpDirectReclaim(gfp))
      folio = (yield allocPagesDirectCompact(k, o, gfp)) as number;
    if (
      folio !== NO_PFN &&
      k.uncharge &&
      !((yield memcgCharge(k, vma.mm, folio, gfp)) as boolean)
    ) {
      k.folioPut(folio);
      k.stats.mthpStat(o, 'anon_fault_fallback_charge');
      orders &= ~(1 << o);
      continue;
    }
    if (folio !== NO_PFN) {
      k.stats.mthpStat(o, 'anon_fault_alloc');
      return folio;
    }
    k.stats.mthpStat(o, 'anon_fault_fallback');
    orders &= ~(1 << o);
  }
  return k.uncharge ? ((yield folioPrealloc(k, vma.mm)) as number) : k.allocFolio(0);
}

/** do_anonymous_page: the zero page for reads; a new folio (maybe mTHP) for writes. */
function* doAnonymousPage(
  k: Kernel,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  write: boolean,
  vmaLock: boolean,
): Step<number> {
  const mm = vma.mm;
  const pte = k.pt.pte;
  const ptrs = k.geo.ptrsPerPte;
  yield readShared(S_PMD_ENTRY, pmdT * k.pt.pmd.entriesPerTable + pmdI);
  const pmdType = k.pt.pmd.getBits(pmdT, pmdI) & E_TYPE_MASK;
  if (pmdType === E_NONE) {
    // pte_alloc; the table is then mapped again with pte_offset_map_lock.
    if (!((yield pteAlloc(k, mm, pmdT, pmdI)) as number)) return 0; // a huge PMD appeared
  } else if (pmdType !== E_TABLE) return 0;
  const pteI = vpn % ptrs;
  if (!write) {
    // The shared zero page, read-only; no anon_vma needed.
    const t = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
    if (!t) return 0;
    if (pte.type(t, pteI) === E_NONE) pte.set(t, pteI, k.zeroPfn, E_PRESENT | B_SPECIAL | B_YOUNG);
    yield* pteUnmapUnlock(t);
    return 0;
  }
  if (!(yield* vmfAnonPrepare(k, vma, vmaLock))) return VM_FAULT_RETRY;
  const orders = anonFaultOrders(k, vma, vpn);
  const folio = orders
    ? ((yield allocAnonFolio(k, vma, vpn, pmdT, pmdI, orders)) as number)
    : k.uncharge
      ? ((yield folioPrealloc(k, vma.mm)) as number)
      : k.allocFolio(0);
  if (folio === NO_PFN) return VM_FAULT_OOM;
  const order = k.folios.order[folio];
  const n = 1 << order;
  const idx = Math.floor(pteI / n) * n;
  // The table read above may have been reclaimed meanwhile: map it again, under RCU, lock it and
  // check the entries are still none ('set-pte-without-ptl' writes them with no lock or check).
  if (k.bugs.has('set-pte-without-ptl')) {
    const t = k.pt.pmd.getVal(pmdT, pmdI);
    yield writeShared(S_PTE_ENTRY, t * pte.entriesPerTable + idx);
    mapAnonFolioPtes(k, vma, vpn - (pteI - idx), folio, t, idx);
    return 0;
  }
  const t = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
  if (!t || !pteRangeNone(k, t, idx, n)) {
    if (t) yield* pteUnmapUnlock(t);
    k.folioPut(folio);
    return 0;
  }
  // check_stable_address_space, under the PTE lock: the OOM reaper may have reaped this mm.
  if (vma.mm.unstable && !k.bugs.has('no-stable-check')) {
    yield* pteUnmapUnlock(t);
    k.folioPut(folio);
    return VM_FAULT_SIGSEGV;
  }
  mapAnonFolioPtes(k, vma, vpn - (pteI - idx), folio, t, idx);
  yield* pteUnmapUnlock(t);
  return 0;
}

/**
 * map_anon_folio_pte_nopf: map a new, exclusive anon folio with 2^order PTEs starting at index
 * idx of the table (vpn is the first page's address). Used by the fault path and by collapse.
 */
export function mapAnonFolioPtes(
  k: Kernel,
  vma: Vma,
  vpn: number,
  folio: number,
  pteT: number,
  idx: number,
): void {
  const n = 1 << k.folios.order[folio];
  folioAddNewAnon(k, folio, vma, vpn);
  for (let i = 0; i < n; i++) k.folios.flags[folio + i] |= PG_ANON_EXCLUSIVE;
  rmapAddPtes(k, folio, folio, n, vma);
  k.folioGet(folio, n - 1); // one reference per PTE mapping
  const w = vma.flags & VM_WRITE ? B_WRITE | B_DIRTY : 0;
  for (let i = 0; i < n; i++) k.pt.pte.set(pteT, idx + i, folio + i, E_PRESENT | B_YOUNG | w);
}

/** do_wp_page: reuse an exclusive anon page or copy it (COW), or replace the zero page. */
export function* doWpPage(
  k: Kernel,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  pteT: number,
  pteI: number,
  orig: number,
  vmaLock: boolean,
): Step<number> {
  const f = k.folios;
  const pte = k.pt.pte;
  const pfn = pte.getVal(pteT, pteI);
  const head = f.headOf(pfn);
  const zero = (orig & B_SPECIAL) !== 0 || (f.flags[head] & PG_ZERO) !== 0;
  if (!zero && f.flags[head] & PG_ANON) {
    if (!((yield pteRelock(k, pmdT, pmdI, pteT)) as boolean)) return 0;
    if (pte.getBits(pteT, pteI) !== orig) {
      yield* pteUnmapUnlock(pteT);
      return 0;
    }
    // wp_can_reuse_anon_folio
    const exclusive = (f.flags[pfn] & PG_ANON_EXCLUSIVE) !== 0;
    const reusable =
      exclusive ||
      (f.order[head] === 0
        ? f.refcount[head] === 1
        : !f.maybeMappedShared(head) &&
          f.mapcount[head] === f.refcount[head] &&
          f.mmId0[head] === vma.mm.id);
    if (reusable) {
      f.flags[pfn] |= PG_ANON_EXCLUSIVE;
      pte.set(pteT, pteI, pfn, orig | B_WRITE | B_DIRTY | B_YOUNG);
      yield* pteUnmapUnlock(pteT);
      return 0;
    }
    yield* pteUnmapUnlock(pteT);
  }
  // wp_page_copy
  if (!(yield* vmfAnonPrepare(k, vma, vmaLock))) return VM_FAULT_RETRY;
  const copy = k.uncharge ? ((yield folioPrealloc(k, vma.mm)) as number) : k.allocFolio(0);
  if (copy === NO_PFN) return VM_FAULT_OOM;
  f.data[copy] = zero ? 0 : f.data[pfn];
  const locked = (yield pteRelock(k, pmdT, pmdI, pteT)) as boolean;
  if (!locked || pte.getBits(pteT, pteI) !== orig || pte.getVal(pteT, pteI) !== pfn) {
    if (locked) yield* pteUnmapUnlock(pteT);
    k.folioPut(copy);
    return 0;
  }
  folioAddNewAnon(k, copy, vma, vpn);
  f.flags[copy] |= PG_ANON_EXCLUSIVE;
  rmapAddPtes(k, copy, copy, 1, vma);
  pte.set(pteT, pteI, copy, E_PRESENT | B_YOUNG | B_DIRTY | B_WRITE);
  if (!zero) {
    rmapRemovePtes(k, head, pfn, 1, vma);
    k.folioPut(head);
  }
  yield* pteUnmapUnlock(pteT);
  return 0;
}

/** do_swap_page: read the slot into a small folio (or find it in the swap cache) and map it. */
export function* doSwapPage(
  k: Kernel,
  vma: Vma,
  vpn: number,
  pmdT: number,
  pmdI: number,
  pteT: number,
  pteI: number,
  orig: number,
  write: boolean,
  vmaLock: boolean,
): Step<number> {
  const f = k.folios;
  const sw = k.swap;
  const pte = k.pt.pte;
  const slot = pte.getVal(pteT, pteI);
  if (!(yield* vmfAnonPrepare(k, vma, vmaLock))) return VM_FAULT_RETRY;
  let ret = 0;
  let folio = sw.cache[slot];
  let pfn: number;
  if (folio === -1) {
    folio = k.uncharge ? ((yield folioPrealloc(k, vma.mm)) as number) : k.allocFolio(0);
    if (folio === NO_PFN) return VM_FAULT_OOM;
    f.data[folio] = sw.data[slot];
    f.set(folio, PG_SWAPCACHE);
    f.swapSlot[folio] = slot;
    sw.cache[slot] = folio;
    k.stats.event('pswpin');
    k.stats.event('pgmajfault');
    ret = VM_FAULT_MAJOR;
    pfn = folio;
    // The swap cache's reference is the one allocFolio gave; the mapping takes another below.
  } else {
    pfn = folio + (slot - f.swapSlot[folio]);
  }
  const locked = (yield pteRelock(k, pmdT, pmdI, pteT)) as boolean;
  if (!locked || pte.getBits(pteT, pteI) !== orig || pte.getVal(pteT, pteI) !== slot) {
    if (locked) yield* pteUnmapUnlock(pteT);
    swapCacheMaybeDrop(k, folio);
    return ret;
  }
  k.folioGet(folio);
  if (!(f.flags[folio] & PG_ANON)) folioAddNewAnon(k, folio, vma, vpn);
  rmapAddPtes(k, folio, pfn, 1, vma);
  sw.count[slot]--;
  vma.mm.swapEnts--;
  // Exclusive by the swap entry's bit, or because nothing else refers to the page any more: no
  // other swap entry and no other mapping (the kernel's folio_ref_count() == 1 test).
  const exclusive =
    (orig & B_EXCLUSIVE) !== 0 ||
    (sw.count[slot] === 0 && f.order[folio] === 0 && f.mapcount[folio] === 1);
  if (exclusive) f.flags[pfn] |= PG_ANON_EXCLUSIVE;
  // An exclusive page is mapped writable even on a read fault (dirty only on a write); the
  // swap entry's soft-dirty and uffd-wp bits carry over, and uffd-wp keeps it read-only.
  const carry = orig & (B_SOFT_DIRTY | B_UFFD_WP);
  const w =
    exclusive && vma.flags & VM_WRITE && !(carry & B_UFFD_WP) ? B_WRITE | (write ? B_DIRTY : 0) : 0;
  pte.set(pteT, pteI, pfn, E_PRESENT | B_YOUNG | w | carry);
  yield* pteUnmapUnlock(pteT);
  swapCacheMaybeDrop(k, folio);
  return ret;
}

/** folio_free_swap: leave the swap cache once no swap PTE refers to the folio's slots. */
export function swapCacheMaybeDrop(k: Kernel, folio: number): void {
  const f = k.folios;
  if (!(f.flags[folio] & PG_SWAPCACHE)) return;
  const first = f.swapSlot[folio];
  const n = 1 << f.order[folio];
  for (let i = 0; i < n; i++) if (k.swap.count[first + i] > 0) return;
  for (let i = 0; i < n; i++) {
    k.swap.cache[first + i] = -1;
    k.swap.maybeFree(first + i);
  }
  f.clear(folio, PG_SWAPCACHE);
  f.swapSlot[folio] = -1;
  k.folioPut(folio, n);
}
