// The freeze pass of a round (collapse_freeze in mm/collapse.c): under the table's PTE lock,
// check each candidate, then raise migration's two barriers over its sources span by span --
// migration entries in their PTEs, then a frozen reference count -- and flush the TLB range
// once before the lock is dropped. A refusal part way unwinds what it displaced.

import { folioTrylock, folioUnlock } from '../../mm/folio-lock.ts';
import { PG_ANON } from '../../mm/folio.ts';
import {
  folioExpectedRefCount,
  folioRefFreeze,
  folioRefUnfreeze,
  folioTryGet,
} from '../../mm/folio-ref-freeze.ts';
import type { Kernel } from '../../mm/kernel.ts';
import { makeReadableMigrationEntry } from '../../mm/migration-entry.ts';
import { pteOffsetMapLock, pteUnmapUnlock } from '../../mm/pagewalk.ts';
import { B_SOFT_DIRTY, B_UFFD_WP, E_NONE, E_PRESENT, E_TYPE_MASK } from '../../mm/pgtable.ts';
import { S_PTE_ENTRY, type Step, tlbFlushRange, writeShared } from '../../mm/step.ts';
import type { Vma } from '../../mm/vma.ts';
import type { CollapseControl } from '../control.ts';
import { cleanLazyfree, pteNoneOrZero } from '../scan-pmd.ts';
import type { ScanResult } from '../scan-result.ts';
import {
  CAND_FROZEN,
  CAND_SELECTED,
  CAND_SKIPPED,
  type Candidate,
  type RoundPool,
} from './candidate.ts';
import { traceCandidate } from './trace.ts';

/** collapse_span_max: slots a span starting at pfn may cover, capped at the folio's end. */
function spanMax(k: Kernel, pfn: number, max: number): number {
  const head = k.folios.headOf(pfn);
  return Math.min(max, head + (1 << k.folios.order[head]) - pfn);
}

/** The length of the live span at slot i of the table (consecutive pages of one folio). */
function liveSpan(k: Kernel, base: number, i: number, n: number): number {
  const pte = k.pt.pte;
  const first = pte.val[base + i];
  const max = spanMax(k, first, n - i);
  let nr = 1;
  while (
    nr < max &&
    (pte.bits[base + i + nr] & E_TYPE_MASK) === E_PRESENT &&
    pte.val[base + i + nr] === first + nr
  )
    nr++;
  return nr;
}

/** collapse_saved_span_len: the same span read from the saved PTEs (the table holds entries). */
export function savedSpan(
  k: Kernel,
  pool: RoundPool,
  c: Candidate,
  i: number,
  bound: number,
): number {
  const s = c.slot;
  const first = pool.val[s + i];
  const max = spanMax(k, first, bound - i);
  let nr = 1;
  while (
    nr < max &&
    !pteNoneOrZero(k.folios, pool.bits[s + i + nr], pool.val[s + i + nr]) &&
    pool.val[s + i + nr] === first + nr
  )
    nr++;
  return nr;
}

/**
 * collapse_check_candidate: can every slot be frozen? Nothing is touched. Holes and the zero
 * page are fine; a source must be an exclusive anon page whose folio is mapped only by its span.
 */
function checkCandidate(
  k: Kernel,
  vma: Vma,
  cc: CollapseControl,
  c: Candidate,
  base: number,
): ScanResult {
  const f = k.folios;
  const pte = k.pt.pte;
  const n = 1 << c.order;
  const pmdOrder = c.order === k.geo.pmdOrder;
  for (let i = 0; i < n;) {
    const bits = pte.bits[base + i];
    const val = pte.val[base + i];
    const type = bits & E_TYPE_MASK;
    if (type === E_NONE) {
      i++;
      continue;
    }
    if (type !== E_PRESENT) return 'SCAN_PTE_NON_PRESENT';
    if (bits & B_UFFD_WP) return 'SCAN_PTE_UFFD_WP';
    if (pteNoneOrZero(f, bits, val)) {
      i++;
      continue;
    }
    const head = f.headOf(val);
    if (!(f.flags[head] & PG_ANON)) return 'SCAN_PAGE_ANON';
    if (cc.isKhugepaged && k.profile.scanPageLazyfree && cleanLazyfree(f, vma, bits, head))
      return 'SCAN_PAGE_LAZYFREE';
    // Below PMD order a folio of the window's order or larger gains nothing; at PMD order even
    // a PTE-mapped THP is collapsed again.
    if (!pmdOrder && f.order[head] >= c.order) return 'SCAN_PTE_MAPPED_HUGEPAGE';
    if (f.maybeMappedShared(head)) return 'SCAN_PAGE_NOT_EXCLUSIVE';
    const nr = liveSpan(k, base, i, n);
    for (let j = 1; j < nr; j++) if (pte.bits[base + i + j] & B_UFFD_WP) return 'SCAN_PTE_UFFD_WP';
    // The freeze is whole-folio: every mapping of the folio must be this span, or a zap of a
    // mapping elsewhere would put a reference of the frozen count.
    if (f.mapcount[head] !== nr) return 'SCAN_PAGE_COUNT';
    i += nr;
  }
  return 'SCAN_SUCCEED';
}

/**
 * collapse_unfreeze_candidate: put back the saved values of the first `saved` slots (a plain
 * store over non-present entries, no flush: the translation is the one any stale TLB entry
 * holds), unfreeze the first `frozen` slots' folios, unlock and release them all.
 */
function* unfreezeCandidate(
  k: Kernel,
  pool: RoundPool,
  c: Candidate,
  pteT: number,
  base: number,
  saved: number,
  frozen: number,
): Step<void> {
  const pte = k.pt.pte;
  const idx = base - pteT * pte.entriesPerTable;
  const s = c.slot;
  for (let i = 0; i < saved;) {
    const bits = pool.bits[s + i];
    if ((bits & E_TYPE_MASK) === E_NONE) {
      i++;
      continue;
    }
    if (pteNoneOrZero(k.folios, bits, pool.val[s + i])) {
      yield writeShared(S_PTE_ENTRY, base + i);
      pte.set(pteT, idx + i, pool.val[s + i], bits);
      i++;
      continue;
    }
    const nr = savedSpan(k, pool, c, i, saved);
    const head = k.folios.headOf(pool.val[s + i]);
    yield writeShared(S_PTE_ENTRY, base + i);
    for (let j = 0; j < nr; j++)
      pte.set(pteT, idx + i + j, pool.val[s + i + j], pool.bits[s + i + j]);
    if (i < frozen) folioRefUnfreeze(k, head, folioExpectedRefCount(k.folios, head) + 1);
    yield* folioUnlock(k, head);
    k.folioPut(head);
    i += nr;
  }
}

/**
 * collapse_freeze_candidate: span by span, take a reference and the folio lock, save the PTEs,
 * replace them by migration entries (clear and store in one step under the PTE lock: the clear
 * is GUP-fast's linearization point), then freeze the folio to the count its mappings explain.
 */
function* freezeCandidate(
  k: Kernel,
  pool: RoundPool,
  c: Candidate,
  pteT: number,
  base: number,
): Step<ScanResult> {
  const f = k.folios;
  const pte = k.pt.pte;
  const n = 1 << c.order;
  const idx = base - pteT * pte.entriesPerTable;
  const s = c.slot;
  let saved = 0;
  let frozen = 0;
  let result: ScanResult = 'SCAN_SUCCEED';
  for (let i = 0; i < n;) {
    const bits = pte.bits[base + i];
    const val = pte.val[base + i];
    if ((bits & E_TYPE_MASK) === E_NONE) {
      pool.bits[s + i] = bits;
      pool.val[s + i] = 0;
      saved = ++i;
      continue;
    }
    if (pteNoneOrZero(f, bits, val)) {
      // The zero page is cleared now, under the round's flush: writing over a live entry at
      // install would be a valid-to-valid change (arm64's break-before-make).
      pool.bits[s + i] = bits;
      pool.val[s + i] = val;
      yield writeShared(S_PTE_ENTRY, base + i);
      pte.clear(pteT, idx + i);
      saved = ++i;
      continue;
    }
    const head = f.headOf(val);
    // A folio already frozen by an earlier span of this round fails here (SCAN_PAGE_COUNT).
    if (!folioTryGet(k, head)) {
      result = 'SCAN_PAGE_COUNT';
      break;
    }
    if (!(yield* folioTrylock(k, head))) {
      k.folioPut(head);
      result = 'SCAN_PAGE_LOCK';
      break;
    }
    const nr = liveSpan(k, base, i, n);
    yield writeShared(S_PTE_ENTRY, base + i);
    for (let j = 0; j < nr; j++) {
      const b = pte.bits[base + i + j];
      pool.bits[s + i + j] = b;
      pool.val[s + i + j] = pte.val[base + i + j];
      // get_and_clear_full_ptes then set_pte_at of the entry, adjacent under the PTE lock.
      pte.set(
        pteT,
        idx + i + j,
        pte.val[base + i + j],
        makeReadableMigrationEntry(b, B_SOFT_DIRTY),
      );
    }
    saved = i + nr;
    if (!folioRefFreeze(k, head, folioExpectedRefCount(f, head) + 1)) {
      result = 'SCAN_PAGE_COUNT';
      break;
    }
    frozen = saved;
    i += nr;
  }
  if (result !== 'SCAN_SUCCEED') {
    yield* unfreezeCandidate(k, pool, c, pteT, base, saved, frozen);
    return result;
  }
  c.state = CAND_FROZEN;
  return result;
}

/**
 * collapse_freeze: one PTE-lock hold for the whole batch; a candidate whose sources moved is
 * dropped; one TLB flush over everything that froze, before the lock is dropped (no copy may
 * start before it). Returns the pages frozen.
 */
export function* collapseFreeze(
  k: Kernel,
  vma: Vma,
  cc: CollapseControl,
  pool: RoundPool,
  pmdT: number,
  pmdI: number,
): Step<number> {
  const pteT = (yield pteOffsetMapLock(k, pmdT, pmdI)) as number;
  const cands = pool.candidates;
  if (!pteT) {
    for (const c of cands)
      if (c.state === CAND_SELECTED) {
        c.state = CAND_SKIPPED;
        c.result = 'SCAN_NO_PTE_TABLE';
        traceCandidate(k, vma.mm.id, c, 'freeze');
      }
    return 0;
  }
  const nr = k.geo.ptrsPerPte;
  const tableBase = pteT * k.pt.pte.entriesPerTable;
  let frozenPages = 0;
  for (const c of cands) {
    if (c.state !== CAND_SELECTED) continue;
    const base = tableBase + (c.vpn % nr);
    let r = checkCandidate(k, vma, cc, c, base);
    if (r === 'SCAN_SUCCEED') r = yield* freezeCandidate(k, pool, c, pteT, base);
    c.result = r;
    if (r !== 'SCAN_SUCCEED') {
      c.state = CAND_SKIPPED;
      traceCandidate(k, vma.mm.id, c, 'freeze');
      continue;
    }
    frozenPages += 1 << c.order;
    k.khugepaged.rounds.frozenCandidates++;
  }
  if (frozenPages && !k.bugs.has('rounds-no-freeze-flush')) yield tlbFlushRange(vma.mm.id);
  yield* pteUnmapUnlock(pteT);
  return frozenPages;
}
