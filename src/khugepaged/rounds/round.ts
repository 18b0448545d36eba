// One round of the rounds design (collapse_round in mm/collapse.c): a batch of candidate windows
// of one PTE table carried through the passes together, under the mmap read lock only. No
// page-table lock is held across passes; the source folio locks are held from freeze to putback.

import { allocFolioGfp } from '../../mm/compaction.ts';
import {
  doSwapPage,
  doWpPage,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGSEGV,
} from '../../mm/fault.ts';
import { __GFP_DIRECT_RECLAIM, collapseGfpMask } from '../../mm/gfp.ts';
import { type Kernel, NO_PFN } from '../../mm/kernel.ts';
import { memcgCharge } from '../../mm/memcg.ts';
import { entryLoc } from '../../mm/pagewalk.ts';
import { PG_ANON, PG_ANON_EXCLUSIVE } from '../../mm/folio.ts';
import { E_PRESENT, E_SWAP, E_TABLE, E_TYPE_MASK } from '../../mm/pgtable.ts';
import {
  L_MMAP_READ,
  L_RCU,
  S_PMD_ENTRY,
  S_PTE_ENTRY,
  type Step,
  lock,
  readShared,
  unlock,
} from '../../mm/step.ts';
import type { Mm, Vma } from '../../mm/vma.ts';
import type { CollapseControl } from '../control.ts';
import { findPmdOrThpOrNone } from '../find-pmd.ts';
import { hugepageVmaRevalidate } from '../revalidate.ts';
import { pteNoneOrZero } from '../scan-pmd.ts';
import type { ScanResult } from '../scan-result.ts';
import {
  CAND_FROZEN,
  CAND_INSTALLED,
  CAND_SELECTED,
  CAND_SKIPPED,
  COLLAPSE_FAULTIN_PASSES,
  type Candidate,
  type RoundPool,
} from './candidate.ts';
import { collapseFreeze } from './freeze.ts';
import { collapseInstall, collapsePutback } from './install.ts';
import { traceCandidate } from './trace.ts';

/** collapse_alloc: a folio of the candidate's order, charged. A miss counts nothing. */
function* collapseAlloc(k: Kernel, mm: Mm, c: Candidate, gfp: number): Step<ScanResult> {
  const folio = (yield allocFolioGfp(k, c.order, gfp)) as number;
  if (folio === NO_PFN) return 'SCAN_ALLOC_HUGE_PAGE_FAIL';
  if (k.uncharge && !((yield memcgCharge(k, mm, folio, gfp)) as boolean)) {
    k.folioPut(folio);
    return 'SCAN_CGROUP_CHARGE_FAIL';
  }
  if (c.order === k.geo.pmdOrder) k.stats.event('thp_collapse_alloc');
  if (k.profile.mthpCollapseStats) k.stats.mthpStat(c.order, 'collapse_alloc');
  c.folio = folio;
  return 'SCAN_SUCCEED';
}

function countAllocFailed(k: Kernel, order: number): void {
  if (order === k.geo.pmdOrder) k.stats.event('thp_collapse_alloc_failed');
  if (k.profile.mthpCollapseStats) k.stats.mthpStat(order, 'collapse_alloc_failed');
}

/** collapse_reserve: allocate with reclaim, before anything freezes, for last round's misses. */
function* collapseReserve(k: Kernel, mm: Mm, cc: CollapseControl, pool: RoundPool): Step<void> {
  const gfp = collapseGfpMask(k, cc.isKhugepaged);
  for (const c of pool.candidates) {
    if (!c.reclaim) continue;
    c.reclaim = false;
    const r: ScanResult = yield* collapseAlloc(k, mm, c, gfp);
    if (r === 'SCAN_SUCCEED') continue;
    if (r === 'SCAN_ALLOC_HUGE_PAGE_FAIL') countAllocFailed(k, c.order);
    c.state = CAND_SKIPPED;
    c.result = r;
    traceCandidate(k, mm.id, c, 'alloc');
  }
}

/** collapse_deposit: a fresh PTE table for a PMD-order candidate (pte_alloc_one may sleep). */
function collapseDeposit(k: Kernel, mm: Mm, pool: RoundPool): void {
  const c = pool.candidates[0];
  if (c.order !== k.geo.pmdOrder || c.state !== CAND_SELECTED) return;
  c.deposit = k.pt.pte.alloc(mm.id);
}

/**
 * collapse_revalidate: the VMA found again must still fit and allow each candidate (a VMA that
 * shrank refuses only the candidates it no longer covers), and the table must still be there.
 */
function* collapseRevalidate(
  k: Kernel,
  mm: Mm,
  pmdVpn: number,
  cc: CollapseControl,
  pool: RoundPool,
): Step<{ result: ScanResult; vma: Vma | null; pmdT: number; pmdI: number }> {
  let vma: Vma | null = null;
  let live = 0;
  for (const c of pool.candidates) {
    if (c.state !== CAND_SELECTED) continue;
    const rv = hugepageVmaRevalidate(k, mm, pmdVpn, true, cc, c.order, {
      vpn: c.vpn,
      pages: 1 << c.order,
    });
    if (rv.result === 'SCAN_ANY_PROCESS' || rv.result === 'SCAN_VMA_NULL')
      return { result: rv.result, vma: null, pmdT: 0, pmdI: 0 };
    if (rv.result !== 'SCAN_SUCCEED' || (vma && rv.vma !== vma)) {
      c.state = CAND_SKIPPED;
      c.result = 'SCAN_VMA_CHECK';
      traceCandidate(k, mm.id, c, 'revalidate');
      continue;
    }
    vma = rv.vma;
    live++;
  }
  if (!live || !vma) return { result: 'SCAN_VMA_CHECK', vma: null, pmdT: 0, pmdI: 0 };
  const look = yield* findPmdOrThpOrNone(k, mm, pmdVpn);
  return { result: look.result, vma, pmdT: look.pmdT, pmdI: look.pmdI };
}

/**
 * Whether the slot needs a fault before the freeze can take it: a swap entry (swapped in at PMD
 * order; below it the candidate is refused), or an anon page not exclusive to this mapping
 * (FAULT_FLAG_UNSHARE: reused in place when nothing else maps it, copied otherwise).
 */
function needsFault(k: Kernel, bits: number, val: number): boolean {
  const type = bits & E_TYPE_MASK;
  if (type === E_SWAP) return true;
  if (type !== E_PRESENT || pteNoneOrZero(k.folios, bits, val)) return false;
  const f = k.folios;
  const head = f.headOf(val);
  if (!(f.flags[head] & PG_ANON)) return false;
  return f.maybeMappedShared(head) || !(f.flags[val] & PG_ANON_EXCLUSIVE);
}

/** How often one address is faulted before the freeze is left to judge it. */
const COLLAPSE_FAULTIN_TRIES = 3;

/**
 * collapse_faultin: make the sources present and exclusive by faulting them as an access would.
 * Returns with the mmap lock dropped on failure (SCAN_EXCEED_SWAP_PTE below PMD order refuses
 * only its candidate and keeps the lock).
 */
function* collapseFaultin(
  k: Kernel,
  vma: Vma,
  pool: RoundPool,
  pmdT: number,
  pmdI: number,
): Step<ScanResult> {
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  const nr = k.geo.ptrsPerPte;
  for (const c of pool.candidates) {
    if (c.state !== CAND_SELECTED) continue;
    const n = 1 << c.order;
    const idx = c.vpn % nr;
    let tries = 0;
    for (let i = 0; i < n;) {
      // pte_offset_map + ptep_get_lockless; slots that need nothing are passed in one look.
      yield lock(L_RCU, 0);
      yield readShared(S_PMD_ENTRY, entryLoc(pmd, pmdT, pmdI));
      if ((pmd.getBits(pmdT, pmdI) & E_TYPE_MASK) !== E_TABLE) {
        yield unlock(L_RCU, 0);
        yield unlock(L_MMAP_READ, vma.mm.id);
        return 'SCAN_NO_PTE_TABLE';
      }
      const pteT = pmd.getVal(pmdT, pmdI);
      yield readShared(S_PTE_ENTRY, entryLoc(pte, pteT, idx + i));
      const from = i;
      while (i < n && !needsFault(k, pte.getBits(pteT, idx + i), pte.getVal(pteT, idx + i))) i++;
      yield unlock(L_RCU, 0);
      if (i >= n) break;
      if (i !== from) tries = 0;
      const bits = pte.getBits(pteT, idx + i);
      const swap = (bits & E_TYPE_MASK) === E_SWAP;
      if (swap && c.order !== k.geo.pmdOrder) {
        if (k.profile.mthpCollapseStats) k.stats.mthpStat(c.order, 'collapse_exceed_swap_pte');
        c.state = CAND_SKIPPED;
        c.result = 'SCAN_EXCEED_SWAP_PTE';
        traceCandidate(k, vma.mm.id, c, 'faultin');
        break;
      }
      if (tries++ === COLLAPSE_FAULTIN_TRIES) {
        // The freeze refuses it if it is still unfit.
        i++;
        tries = 0;
        continue;
      }
      const r = swap
        ? ((yield doSwapPage(
            k,
            vma,
            c.vpn + i,
            pmdT,
            pmdI,
            pteT,
            idx + i,
            bits,
            false,
            false,
          )) as number)
        : ((yield doWpPage(k, vma, c.vpn + i, pmdT, pmdI, pteT, idx + i, bits, false)) as number);
      if (r & VM_FAULT_RETRY) {
        yield unlock(L_MMAP_READ, vma.mm.id);
        return 'SCAN_LOCK_DROPPED';
      }
      if (r & (VM_FAULT_OOM | VM_FAULT_SIGSEGV)) {
        yield unlock(L_MMAP_READ, vma.mm.id);
        return 'SCAN_FAIL';
      }
    }
  }
  return 'SCAN_SUCCEED';
}

/**
 * collapse_provision: a destination for every frozen candidate that has none, without direct
 * reclaim (a faulter on a frozen source waits for this). A miss that a reclaiming retry could
 * fix is SCAN_ALLOC_LIGHT_MISS: the candidate is aborted and comes back with reclaim next round.
 */
function* collapseProvision(k: Kernel, mm: Mm, cc: CollapseControl, pool: RoundPool): Step<void> {
  const full = collapseGfpMask(k, cc.isKhugepaged);
  const gfp = full & ~__GFP_DIRECT_RECLAIM;
  const mayRetry = gfp !== full;
  for (const c of pool.candidates) {
    if (c.state !== CAND_FROZEN || c.folio >= 0) continue;
    const r: ScanResult = yield* collapseAlloc(k, mm, c, gfp);
    if (r === 'SCAN_SUCCEED') continue;
    if (mayRetry) {
      c.result = 'SCAN_ALLOC_LIGHT_MISS';
      k.khugepaged.rounds.lightMisses++;
    } else {
      if (r === 'SCAN_ALLOC_HUGE_PAGE_FAIL') countAllocFailed(k, c.order);
      c.result = r;
    }
    traceCandidate(k, mm.id, c, 'alloc');
  }
}

/** collapse_copy: nothing can reach either side, so no lock. Returns the pages copied. */
function collapseCopy(k: Kernel, pool: RoundPool): number {
  const f = k.folios;
  let copied = 0;
  for (const c of pool.candidates) {
    if (c.state !== CAND_FROZEN || c.folio < 0 || c.result !== 'SCAN_SUCCEED') continue;
    const n = 1 << c.order;
    for (let i = 0; i < n; i++) {
      const b = pool.bits[c.slot + i];
      const v = pool.val[c.slot + i];
      f.data[c.folio + i] = pteNoneOrZero(f, b, v) ? 0 : f.data[v];
    }
    copied += n;
  }
  return copied;
}

/** collapse_finish: settle what the round reached; returns the candidates installed. */
function collapseFinish(k: Kernel, mm: Mm, pool: RoundPool, result: ScanResult): number {
  let installed = 0;
  for (const c of pool.candidates) {
    if (c.state === CAND_SELECTED) {
      c.state = CAND_SKIPPED;
      c.result = result;
    }
    if (c.folio >= 0) {
      k.folioPut(c.folio);
      c.folio = -1;
    }
    if (c.deposit) {
      k.pt.pte.free(c.deposit);
      c.deposit = 0;
    }
    if (c.state === CAND_INSTALLED) {
      installed++;
      k.khugepaged.rounds.installed++;
      k.trace('thpsim_collapse', { mm: mm.id, vpn: c.vpn, order: c.order, none_or_zero: -1 });
      traceCandidate(k, mm.id, c, 'install');
    }
  }
  return installed;
}

/** collapse_round: the passes, in order; every candidate comes back with a result. */
export function* collapseRound(
  k: Kernel,
  mm: Mm,
  pmdVpn: number,
  cc: CollapseControl,
  pool: RoundPool,
): Step<void> {
  const stats = k.khugepaged.rounds;
  stats.rounds++;
  yield* collapseReserve(k, mm, cc, pool);
  collapseDeposit(k, mm, pool);
  let passes = COLLAPSE_FAULTIN_PASSES;
  let result: ScanResult;
  for (;;) {
    yield lock(L_MMAP_READ, mm.id);
    const rv = yield* collapseRevalidate(k, mm, pmdVpn, cc, pool);
    result = rv.result;
    if (result !== 'SCAN_SUCCEED' || !rv.vma) {
      yield unlock(L_MMAP_READ, mm.id);
      break;
    }
    const vma = rv.vma;
    result = yield* collapseFaultin(k, vma, pool, rv.pmdT, rv.pmdI);
    if (result === 'SCAN_LOCK_DROPPED') {
      stats.lockDrops++;
      if (--passes) continue;
    }
    if (result !== 'SCAN_SUCCEED') break;
    const frozen: number = yield* collapseFreeze(k, vma, cc, pool, rv.pmdT, rv.pmdI);
    yield* collapseProvision(k, mm, cc, pool);
    const copied = collapseCopy(k, pool);
    yield* collapseInstall(k, vma, pool, rv.pmdT, rv.pmdI);
    yield* collapsePutback(k, vma, pool);
    yield unlock(L_MMAP_READ, mm.id);
    if (frozen) {
      stats.frozenPages += frozen;
      stats.copiedPages += copied;
      stats.frozenTimesCopied += frozen * copied;
      stats.maxCopied = Math.max(stats.maxCopied, copied);
    }
    break;
  }
  collapseFinish(k, mm, pool, result);
}
