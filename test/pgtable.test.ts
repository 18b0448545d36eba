import { describe, expect, it } from 'vitest';
import {
  B_DIRTY,
  B_WRITE,
  E_MARKER,
  E_NONE,
  E_PRESENT,
  E_SWAP,
  E_TABLE,
  PMD,
  PTE,
  PageTables,
  T_ALLOCATED,
  T_DEPOSITED,
  T_DETACHED,
  T_FREE,
  T_LINKED,
  TableLevel,
} from '../src/mm/pgtable.ts';

describe('TableLevel lifecycle', () => {
  it('alloc hands out zeroed tables from id 1 with an owner', () => {
    const t = new TableLevel(PTE, 8, 4);
    const a = t.alloc(7);
    const b = t.alloc(9);
    expect(a).toBe(1);
    expect(b).toBe(2);
    expect(t.state[a]).toBe(T_ALLOCATED);
    expect(t.owner[a]).toBe(7);
    expect(t.owner[b]).toBe(9);
    expect(t.live).toBe(2);
    for (let i = 0; i < 8; i++) expect(t.type(a, i)).toBe(E_NONE);
    expect(t.used[a]).toBe(0);
  });

  it('free returns the id for reuse, and a reused table comes back zeroed', () => {
    const t = new TableLevel(PTE, 8, 4);
    const a = t.alloc(1);
    t.set(a, 3, 42, E_PRESENT | B_WRITE);
    t.free(a);
    expect(t.state[a]).toBe(T_FREE);
    expect(t.live).toBe(0);
    const again = t.alloc(2);
    expect(again).toBe(a);
    expect(t.type(again, 3)).toBe(E_NONE);
    expect(t.getVal(again, 3)).toBe(0);
    expect(t.used[again]).toBe(0);
    expect(t.owner[again]).toBe(2);
  });

  it('freeing a table twice throws', () => {
    const t = new TableLevel(PMD, 8, 4);
    const a = t.alloc(1);
    t.free(a);
    expect(() => t.free(a)).toThrow(/pmd table 1 freed while free/);
    expect(t.live).toBe(0);
  });

  it('freeing a linked table throws; detached or deposited tables may be freed', () => {
    const t = new TableLevel(PTE, 8, 4);
    const a = t.alloc(1);
    t.state[a] = T_LINKED;
    expect(() => t.free(a)).toThrow(/pte table 1 freed while linked/);
    expect(t.live).toBe(1);
    t.state[a] = T_DETACHED;
    t.free(a);
    const b = t.alloc(1);
    t.state[b] = T_DEPOSITED;
    t.free(b);
    expect(t.live).toBe(0);
  });

  it('the used counter follows none ↔ non-none transitions only', () => {
    const t = new TableLevel(PTE, 8, 4);
    const a = t.alloc(1);
    t.set(a, 0, 100, E_PRESENT);
    expect(t.used[a]).toBe(1);
    // Overwriting a present entry with another non-none entry changes nothing.
    t.set(a, 0, 101, E_PRESENT | B_DIRTY);
    expect(t.used[a]).toBe(1);
    t.set(a, 0, 5, E_SWAP);
    expect(t.used[a]).toBe(1);
    t.set(a, 1, 2, E_MARKER);
    expect(t.used[a]).toBe(2);
    // Clearing twice counts once.
    t.clear(a, 1);
    t.clear(a, 1);
    expect(t.used[a]).toBe(1);
    // Writing none bits through set() is a clear.
    t.set(a, 0, 999, E_NONE);
    expect(t.used[a]).toBe(0);
    expect(t.getBits(a, 0)).toBe(E_NONE);
    // Entries of other tables are independent.
    const b = t.alloc(1);
    t.set(b, 7, 1, E_TABLE);
    expect(t.used[b]).toBe(1);
    expect(t.used[a]).toBe(0);
    expect(t.getVal(b, 7)).toBe(1);
    expect(t.type(a, 7)).toBe(E_NONE);
  });

  it('pool growth keeps contents, states, owners and used counts', () => {
    const t = new TableLevel(PTE, 16, 2);
    expect(t.capacity).toBe(2);
    const first = t.alloc(3);
    t.set(first, 0, 1234, E_PRESENT | B_WRITE);
    t.set(first, 15, 77, E_SWAP);
    t.state[first] = T_LINKED;
    const ids = [first];
    for (let i = 0; i < 40; i++) ids.push(t.alloc(100 + i));
    expect(t.capacity).toBeGreaterThanOrEqual(41);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.includes(0)).toBe(false);
    expect(t.getVal(first, 0)).toBe(1234);
    expect(t.getBits(first, 0)).toBe(E_PRESENT | B_WRITE);
    expect(t.getVal(first, 15)).toBe(77);
    expect(t.type(first, 15)).toBe(E_SWAP);
    expect(t.used[first]).toBe(2);
    expect(t.state[first]).toBe(T_LINKED);
    expect(t.owner[first]).toBe(3);
    expect(t.owner[ids[40]]).toBe(139);
    expect(t.live).toBe(41);
    // Ids freed before growth are reused after it.
    t.state[first] = T_DETACHED;
    t.free(ids[5]);
    t.free(first);
    expect(t.alloc(0)).toBe(first);
    expect(t.alloc(0)).toBe(ids[5]);
  });
});

describe('PageTables', () => {
  it('four levels with the geometry entry counts, deposit array tracking the PMD pool', () => {
    const pt = new PageTables([512, 512, 512, 512]);
    expect(pt.levels.map((l) => l.entriesPerTable)).toEqual([512, 512, 512, 512]);
    expect(pt.pgd.level).toBe(0);
    expect(pt.pte.level).toBe(PTE);
    expect(pt.deposit.length).toBe(pt.pmd.val.length);
    const ids: number[] = [];
    for (let i = 0; i < 40; i++) ids.push(pt.pmd.alloc(1));
    expect(pt.pmd.val.length).toBeGreaterThan(pt.deposit.length);
    pt.deposit[3] = 9;
    pt.syncDeposit();
    expect(pt.deposit.length).toBe(pt.pmd.val.length);
    expect(pt.deposit[3]).toBe(9);
    // The deposit slot of the last table's last entry is addressable.
    const last = ids[ids.length - 1];
    pt.deposit[last * 512 + 511] = 5;
    expect(pt.deposit[last * 512 + 511]).toBe(5);
  });
});
