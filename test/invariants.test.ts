// Each test builds a valid state through the facade, corrupts exactly one thing by hand, and
// checks that checkInvariants names it; undoing the corruption makes the state valid again, which
// shows that the reported violation came from that one change.

import { describe, expect, it } from 'vitest';
import { PG_DEFERRED } from '../src/mm/folio.ts';
import { InvariantViolation, checkInvariants } from '../src/mm/invariants.ts';
import type { Kernel } from '../src/mm/kernel.ts';
import { levelIndex, pmdTableOf } from '../src/mm/pagewalk.ts';
import { B_SPECIAL, E_PRESENT, E_SWAP, PMD, PTE, T_DETACHED, T_LINKED } from '../src/mm/pgtable.ts';
import { L_PTE_LOCK, lock, unlock } from '../src/mm/step.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';
import { MiB, folioAt, resolve } from './support/ref-model.ts';

const PAGE = 4096;

function violation(k: Kernel): string {
  try {
    checkInvariants(k);
  } catch (e) {
    expect(e).toBeInstanceOf(InvariantViolation);
    return (e as Error).message;
  }
  return '';
}

function expectCaught(k: Kernel, pattern: RegExp): void {
  const msg = violation(k);
  expect(msg, 'the corruption went unnoticed').not.toBe('');
  expect(msg).toMatch(pattern);
}

function expectValid(k: Kernel): void {
  expect(violation(k)).toBe('');
}

interface World {
  m: Machine;
  k: Kernel;
  mm: Mm;
  /** A PMD-mapped THP at thpVpn, written. */
  thpVpn: number;
  /** A 64 kB VMA (THP off) with order-0 pages written at smallVpn and smallVpn + 1. */
  smallVpn: number;
}

/** A valid state with a THP, small pages and a half-used PTE table. */
function world(opts: { swapBytes?: number; strictLocks?: boolean } = {}): World {
  const m = new Machine({ ramBytes: 64 * MiB, ...opts });
  const mm = m.spawn('p');
  const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
  m.access(mm, a, true);
  const b = m.mmap(mm, { lengthBytes: 64 * 1024, alignBytes: 2 * MiB });
  m.madvise(mm, b, 64 * 1024, 'nohugepage');
  m.access(mm, b, true);
  m.access(mm, b + PAGE, true);
  const k = m.kernel;
  const w = { m, k, mm, thpVpn: a / PAGE, smallVpn: b / PAGE };
  expectValid(k);
  return w;
}

/** PTE table and index mapping vpn (which must be PTE-mapped). */
function pteSlot(
  k: Kernel,
  mm: Mm,
  vpn: number,
): { pmdT: number; pmdI: number; pteT: number; pteI: number } {
  const pmdT = pmdTableOf(k, mm, vpn);
  const pmdI = levelIndex(k, vpn, PMD);
  const pteT = k.pt.pmd.getVal(pmdT, pmdI);
  return { pmdT, pmdI, pteT, pteI: levelIndex(k, vpn, PTE) };
}

describe('checkInvariants catches each kind of corruption', () => {
  it('a valid state passes', () => {
    const w = world();
    expectValid(w.k);
    expect(() => w.m.checkInvariants()).not.toThrow();
  });

  it('refcount off by one (small folio and THP)', () => {
    const { k, mm, smallVpn, thpVpn } = world();
    const small = folioAt(k, mm, smallVpn);
    k.folios.refcount[small]++;
    expectCaught(
      k,
      new RegExp(`folio ${small} \\(order 0\\): refcount 2, mappings\\+pins\\+swapcache 1`),
    );
    k.folios.refcount[small] -= 2;
    expectCaught(k, new RegExp(`folio ${small}.*refcount 0`));
    k.folios.refcount[small]++;
    expectValid(k);
    const thp = folioAt(k, mm, thpVpn);
    k.folios.refcount[thp]--;
    expectCaught(k, new RegExp(`folio ${thp} \\(order 9\\): refcount 0`));
    k.folios.refcount[thp]++;
    expectValid(k);
  });

  it('a PTE pointing at a freed page', () => {
    const { k, mm, smallVpn } = world();
    const pfn = resolve(k, mm, smallVpn + 1).pfn;
    // Free the page behind the mapping's back (a use-after-free in the making).
    k.folios.reset(pfn);
    k.buddy.free(pfn, 0);
    expectCaught(k, new RegExp(`PTE at ${smallVpn + 1} maps dead page ${pfn}`));
  });

  it('a PTE whose page is allocated but counted as unmapped', () => {
    const { k, mm, smallVpn } = world();
    const pfn = resolve(k, mm, smallVpn).pfn;
    k.folios.pteMapcount[pfn]--;
    expectCaught(k, new RegExp(`page ${pfn}: PTE mapcount 0, recount 1`));
    k.folios.pteMapcount[pfn]++;
    k.folios.mapcount[pfn]++;
    expectCaught(k, new RegExp(`folio ${pfn}: mapcount 2, recount 1`));
    k.folios.mapcount[pfn]--;
    expectValid(k);
  });

  it('entire mapcount and nr_pages_mapped of a THP', () => {
    const { k, mm, thpVpn } = world();
    const thp = folioAt(k, mm, thpVpn);
    k.folios.entireMapcount[thp] = 0;
    expectCaught(k, new RegExp(`folio ${thp}: entire mapcount 0, recount 1`));
    k.folios.entireMapcount[thp] = 1;
    k.folios.nrPagesMapped[thp] = 3;
    expectCaught(k, new RegExp(`folio ${thp}: nr_pages_mapped 3, recount 0`));
    k.folios.nrPagesMapped[thp] = 0;
    expectValid(k);
  });

  it('a linked PTE table removed from its parent (leak)', () => {
    const w = world();
    const { k, smallVpn } = w;
    const { pmdT, pmdI, pteT } = pteSlot(k, w.mm, smallVpn);
    // Empty the table first so that only the table itself is lost, not its mappings.
    zapTwo(w);
    expectValid(k);
    expect(k.pt.pte.state[pteT]).toBe(T_LINKED);
    k.pt.pmd.clear(pmdT, pmdI);
    expectCaught(k, new RegExp(`pte table ${pteT} linked but unreachable`));
    // Marking it detached without freeing it is a leak in a transient state.
    k.pt.pte.state[pteT] = T_DETACHED;
    expectCaught(k, new RegExp(`pte table ${pteT} in transient state ${T_DETACHED}`));
    k.pt.pte.free(pteT);
    expectValid(k);
  });

  it('a table freed while its parent still points at it', () => {
    const w = world();
    const { k, mm, smallVpn } = w;
    zapTwo(w);
    const { pteT } = pteSlot(k, mm, smallVpn);
    k.pt.pte.state[pteT] = T_DETACHED;
    k.pt.pte.free(pteT);
    expectCaught(k, new RegExp(`reachable table ${pteT} at level 3 is in state 0`));
  });

  it("a table's used count out of step with its entries", () => {
    const { k, mm, smallVpn } = world();
    const { pteT } = pteSlot(k, mm, smallVpn);
    k.pt.pte.used[pteT]++;
    expectCaught(k, new RegExp(`table ${pteT} used count 3, recount 2`));
    k.pt.pte.used[pteT]--;
    expectValid(k);
  });

  it('a huge PMD without its deposited table', () => {
    const { k, mm, thpVpn } = world();
    const pmdT = pmdTableOf(k, mm, thpVpn);
    const slot = pmdT * k.pt.pmd.entriesPerTable + levelIndex(k, thpVpn, PMD);
    const dep = k.pt.deposit[slot];
    expect(dep).toBeGreaterThan(0);
    k.pt.deposit[slot] = 0;
    expectCaught(k, /huge PMD .* without a deposited table/);
    k.pt.deposit[slot] = dep;
    expectValid(k);
  });

  it('a mapping outside every VMA', () => {
    const { k, mm, smallVpn } = world();
    // The 64 kB VMA covers 16 PTEs of its table; index 100 lies beyond it.
    const { pteT, pteI } = pteSlot(k, mm, smallVpn);
    k.pt.pte.set(pteT, pteI + 100, k.zeroPfn, E_PRESENT | B_SPECIAL);
    expectCaught(k, /1 page-table entries map addresses outside any VMA/);
    k.pt.pte.clear(pteT, pteI + 100);
    expectValid(k);
  });

  it('overlapping VMAs', () => {
    const { k, mm } = world();
    const [lo, hi] = mm.vmas;
    const end = lo.end;
    lo.end = hi.start + 1;
    expectCaught(k, /VMAs overlap/);
    lo.end = end;
    expectValid(k);
  });

  it('mm.rssAnon off', () => {
    const { k, mm } = world();
    mm.rssAnon += 1;
    expectCaught(k, /mm p: MM_ANONPAGES 515, recount 514/);
    mm.rssAnon -= 1;
    expectValid(k);
  });

  it('stats.anonThps off', () => {
    const { k } = world();
    k.stats.anonThps -= 512;
    expectCaught(k, /AnonHugePages 0, recount 512/);
    k.stats.anonThps += 512;
    k.stats.anonMapped += 1;
    expectCaught(k, /AnonPages 515, recount 514/);
    k.stats.anonMapped -= 1;
    expectValid(k);
  });

  it('per-order nr_anon off', () => {
    const { k } = world();
    k.stats.mthpStat(9, 'nr_anon', 1);
    expectCaught(k, /order 9: nr_anon 2, recount 1/);
    k.stats.mthpStat(9, 'nr_anon', -1);
    expectValid(k);
  });

  it('the deferred split flag and queue disagree', () => {
    const { k, mm, thpVpn } = world();
    const thp = folioAt(k, mm, thpVpn);
    expect(k.deferredSplit.has(thp)).toBe(true);
    k.deferredSplit.delete(thp);
    expectCaught(k, new RegExp(`folio ${thp}: deferred flag and queue disagree`));
    k.deferredSplit.add(thp);
    k.folios.clear(thp, PG_DEFERRED);
    expectCaught(k, new RegExp(`queued folio ${thp} lacks the deferred flag`));
    k.folios.set(thp, PG_DEFERRED);
    expectValid(k);
  });

  it('the buddy allocator free counter off', () => {
    const { k } = world();
    k.buddy.freePages -= 1;
    expectCaught(k, /allocated \+ \d+ free != 16384/);
    expect(violation(k)).toMatch(/buddy free lists hold \d+, counter \d+/);
    k.buddy.freePages += 1;
    expectValid(k);
  });

  it('a swap count off', () => {
    const { k, mm, smallVpn } = world({ swapBytes: 1 * MiB });
    // Build a valid swap entry by hand at the unused page smallVpn + 2.
    const { pteT, pteI } = pteSlot(k, mm, smallVpn + 2);
    const slot = 3;
    k.pt.pte.set(pteT, pteI, slot, E_SWAP);
    k.swap.used[slot] = 1;
    k.swap.count[slot] = 1;
    k.swap.inuse++;
    mm.swapEnts++;
    expectValid(k);
    k.swap.count[slot]++;
    expectCaught(k, /swap slot 3: count 2, recount 1/);
    k.swap.count[slot]--;
    k.swap.inuse++;
    expectCaught(k, /swap in use 2, recount 1/);
    k.swap.inuse--;
    mm.swapEnts--;
    expectCaught(k, /mm p: MM_SWAPENTS 0, recount 1/);
    mm.swapEnts++;
    expectValid(k);
    // A slot in use that nothing refers to is leaked.
    k.swap.used[9] = 1;
    k.swap.inuse++;
    expectCaught(k, /swap slot 9 in use with no reference/);
  });

  it('a lock left held between operations (strict and counting engines)', () => {
    const strict = world({ strictLocks: true });
    strict.k.run(
      (function* () {
        yield lock(L_PTE_LOCK, 5);
      })(),
    );
    expectCaught(strict.k, /locks held between operations: acquire pte_lock#5/);
    strict.k.sink.apply(unlock(L_PTE_LOCK, 5), 0);
    expectValid(strict.k);

    const counting = world();
    counting.k.run(
      (function* () {
        yield lock(L_PTE_LOCK, 5);
      })(),
    );
    expectCaught(counting.k, /lock balance 1 between operations/);
  });
});

/** MADV_DONTNEED of the two written small pages: their PTE table stays linked, empty. */
function zapTwo(w: World): void {
  w.m.madvise(w.mm, w.smallVpn * PAGE, 2 * PAGE, 'dontneed');
  expect(resolve(w.k, w.mm, w.smallVpn).kind).toBe('none');
  expect(resolve(w.k, w.mm, w.smallVpn + 1).kind).toBe('none');
}
