// fork of swapped-out pages: copy_nonpresent_pte takes one more reference on each swap slot,
// counts the entry in the child's MM_SWAPENTS and clears SWP_EXCLUSIVE in the parent's entry.
// The first test swaps out through MADV_PAGEOUT (the reclaim model); the second builds the swap
// entries by hand so fork is covered even where pageout is not available.

import { describe, expect, it } from 'vitest';
import { PG_ANON_EXCLUSIVE } from '../src/mm/folio.ts';
import type { Kernel } from '../src/mm/kernel.ts';
import { B_EXCLUSIVE, E_PRESENT, E_SWAP, E_TYPE_MASK } from '../src/mm/pgtable.ts';
import { rmapRemovePtes } from '../src/mm/rmap.ts';
import { walkRange } from '../src/mm/walk.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4 * KiB;

function machine(): Machine {
  return new Machine({
    geometry: 'x86-64-4k',
    ramBytes: 64 * MiB,
    swapBytes: 16 * MiB,
    strictLocks: true,
  });
}

interface Pte {
  type: number;
  val: number;
  bits: number;
}

function pteAt(m: Machine, mm: Mm, addr: number): Pte | null {
  const vpn = addr / PAGE;
  let out: Pte | null = null;
  walkRange(m.kernel, mm, vpn, vpn + 1, {
    pmd() {},
    pte(_v, _t, _i, bits, val) {
      out = { type: bits & E_TYPE_MASK, val, bits };
    },
  });
  return out;
}

/** The content of the page at addr, from its frame or its swap slot. */
function content(m: Machine, mm: Mm, addr: number): number {
  const e = pteAt(m, mm, addr);
  if (!e) return 0;
  if (e.type === E_SWAP) return m.kernel.swap.data[e.val];
  if (e.type === E_PRESENT) return m.kernel.folios.data[e.val];
  return 0;
}

/**
 * What swap-out leaves for an exclusive small page: a slot holding its data, an exclusive swap
 * PTE in its place, and the folio gone (try_to_unmap + the swap cache dropped at once).
 */
function swapOutByHand(k: Kernel, m: Machine, mm: Mm, addr: number): number {
  const vpn = addr / PAGE;
  const vma = mm.findVma(vpn)!;
  let loc: [number, number] = [0, 0];
  walkRange(k, mm, vpn, vpn + 1, {
    pmd() {
      throw new Error('expected a PTE mapping');
    },
    pte(_v, t, i) {
      loc = [t, i];
    },
  });
  const [t, i] = loc;
  const pfn = k.pt.pte.getVal(t, i);
  expect(k.folios.order[pfn]).toBe(0);
  expect(k.folios.flags[pfn] & PG_ANON_EXCLUSIVE).toBe(PG_ANON_EXCLUSIVE);
  const slot = k.swap.alloc(0);
  expect(slot).toBeGreaterThan(0);
  k.swap.data[slot] = k.folios.data[pfn];
  k.swap.count[slot] = 1;
  k.pt.pte.set(t, i, slot, E_SWAP | B_EXCLUSIVE);
  rmapRemovePtes(k, pfn, pfn, 1, vma);
  mm.swapEnts++;
  k.folioPut(pfn);
  m.checkInvariants();
  return slot;
}

function checkShared(m: Machine, parent: Mm, child: Mm, a: number, pages: number): number[] {
  const k = m.kernel;
  const slots: number[] = [];
  for (let i = 0; i < pages; i++) {
    const pe = pteAt(m, parent, a + i * PAGE)!;
    const ce = pteAt(m, child, a + i * PAGE)!;
    expect(pe.type).toBe(E_SWAP);
    expect(ce.type).toBe(E_SWAP);
    expect(ce.val).toBe(pe.val);
    expect(pe.bits & B_EXCLUSIVE).toBe(0);
    expect(ce.bits & B_EXCLUSIVE).toBe(0);
    expect(k.swap.count[pe.val]).toBe(2);
    slots.push(pe.val);
  }
  expect(child.swapEnts).toBe(pages);
  expect(parent.swapEnts).toBe(pages);
  return slots;
}

describe('fork of swap entries', () => {
  it('shares slots swapped out by MADV_PAGEOUT', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const a = m.mmap(parent, { lengthBytes: 8 * PAGE });
    m.touch(parent, a, 8 * PAGE, true);
    const data = Array.from({ length: 8 }, (_, i) => content(m, parent, a + i * PAGE));
    m.madvise(parent, a, 8 * PAGE, 'pageout');
    m.checkInvariants();
    expect(pteAt(m, parent, a)?.type).toBe(E_SWAP);

    const child = m.fork(parent, 'child');
    m.checkInvariants();
    const slots = checkShared(m, parent, child, a, 8);
    for (let i = 0; i < 8; i++) expect(content(m, child, a + i * PAGE)).toBe(data[i]);

    // Swap-in on one side leaves the other side's reference.
    expect(m.access(child, a, false)).toBe('fault');
    m.checkInvariants();
    expect(m.kernel.swap.count[slots[0]]).toBe(1);
    expect(content(m, child, a)).toBe(data[0]);
    expect(m.access(child, a, true)).not.toBe('sigsegv');
    m.checkInvariants();
    expect(content(m, parent, a)).toBe(data[0]);
    m.exit(child);
    m.checkInvariants();
    for (const s of slots) expect(m.kernel.swap.count[s]).toBe(1);
    expect(m.access(parent, a + PAGE, false)).toBe('fault');
    expect(content(m, parent, a + PAGE)).toBe(data[1]);
    m.checkInvariants();
  });

  it('shares hand-made swap entries', () => {
    const m = machine();
    const k = m.kernel;
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const a = m.mmap(parent, { lengthBytes: 4 * PAGE });
    m.touch(parent, a, 4 * PAGE, true);
    const data = Array.from({ length: 4 }, (_, i) => content(m, parent, a + i * PAGE));
    for (let i = 0; i < 4; i++) swapOutByHand(k, m, parent, a + i * PAGE);

    const child = m.fork(parent, 'child');
    m.checkInvariants();
    const slots = checkShared(m, parent, child, a, 4);

    // Child swap-in: a page from the slot; the entry is shared, so the page is not exclusive.
    expect(m.access(child, a, false)).toBe('fault');
    m.checkInvariants();
    expect(content(m, child, a)).toBe(data[0]);
    expect(k.swap.count[slots[0]]).toBe(1);
    expect(child.swapEnts).toBe(3);
    // The child's write then copies or reuses it; the parent's data is untouched.
    expect(m.access(child, a, true)).toBe('fault');
    m.checkInvariants();
    expect(content(m, child, a)).not.toBe(data[0]);
    expect(content(m, parent, a)).toBe(data[0]);

    m.exit(parent);
    m.checkInvariants();
    for (const s of slots.slice(1)) expect(k.swap.count[s]).toBe(1);
    expect(m.access(child, a + PAGE, true)).toBe('fault');
    expect(content(m, child, a + 2 * PAGE)).toBe(data[2]);
    m.exit(child);
    m.checkInvariants();
    expect(k.swap.inuse).toBe(0);
  });
});
