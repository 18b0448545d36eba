import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BuddyAllocator } from '../src/mm/buddy.ts';

const NR = 4096;
const MAX = 10;

interface Block {
  pfn: number;
  order: number;
}

/** Free blocks as the allocator's lists describe them (freeOrder heads). */
function freeBlocks(b: BuddyAllocator): Block[] {
  const out: Block[] = [];
  for (let pfn = 0; pfn < b.nrPages; pfn++)
    if (b.freeOrder[pfn] >= 0) out.push({ pfn, order: b.freeOrder[pfn] });
  return out;
}

function fail(msg: string): never {
  throw new Error(msg);
}

/** Check the allocator against the reference set of allocated blocks (plain checks: fast). */
function checkAgainst(b: BuddyAllocator, allocated: Block[], reserved: Set<number>): void {
  const owner = new Int32Array(b.nrPages).fill(-1); // -1 free, -2 reserved, else block index
  for (const p of reserved) owner[p] = -2;
  let allocatedPages = 0;
  allocated.forEach(({ pfn, order }, i) => {
    const n = 2 ** order;
    if (pfn % n !== 0) fail(`block ${pfn} of order ${order} is not naturally aligned`);
    if (pfn < 0 || pfn + n > b.nrPages) fail(`block ${pfn}/${order} outside memory`);
    for (let p = pfn; p < pfn + n; p++) {
      if (owner[p] !== -1) fail(`page ${p} handed out twice (or reserved)`);
      owner[p] = i;
    }
    allocatedPages += n;
  });
  // Free blocks cover exactly the pages neither allocated nor reserved.
  const covered = new Uint8Array(b.nrPages);
  const perOrder = new Array<number>(b.maxOrder + 1).fill(0);
  for (const { pfn, order } of freeBlocks(b)) {
    const n = 2 ** order;
    if (pfn % n !== 0) fail(`free block ${pfn}/${order} misaligned`);
    perOrder[order]++;
    for (let p = pfn; p < pfn + n; p++) {
      if (owner[p] !== -1) fail(`free block ${pfn}/${order} overlaps allocated page ${p}`);
      if (covered[p]) fail(`free blocks overlap at ${p}`);
      covered[p] = 1;
    }
    // Fully merged: a free block's buddy of the same order is never free as well.
    if (order < b.maxOrder) {
      const buddy = pfn ^ n;
      if (buddy < b.nrPages && b.freeOrder[buddy] === order) fail(`unmerged buddies at ${pfn}`);
    }
  }
  for (let p = 0; p < b.nrPages; p++)
    if (owner[p] === -1 && !covered[p]) fail(`page ${p} is neither allocated nor free`);
  expect(Array.from(b.nrFree)).toEqual(perOrder);
  expect(b.freePages + allocatedPages + reserved.size).toBe(b.nrPages);
  expect(b.countFree()).toBe(b.freePages);
}

/** Whether some naturally aligned run of 2^order pages is entirely free in the reference. */
function alignedFreeRunExists(
  nr: number,
  allocated: Block[],
  reserved: Set<number>,
  order: number,
): boolean {
  const busy = new Uint8Array(nr);
  for (const p of reserved) busy[p] = 1;
  for (const { pfn, order: o } of allocated) busy.fill(1, pfn, pfn + 2 ** o);
  const n = 2 ** order;
  for (let s = 0; s + n <= nr; s += n)
    if (busy.subarray(s, s + n).every((x) => x === 0)) return true;
  return false;
}

type Op = { kind: 'alloc'; order: number } | { kind: 'free'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .integer({ min: 0, max: MAX })
      .chain((hi) => fc.integer({ min: 0, max: hi }))
      .map((order) => ({ kind: 'alloc' as const, order })),
  },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ kind: 'free' as const, pick })) },
);

function runProperty(reservedPfns: number[], ops: Op[]): void {
  const reserved = new Set(reservedPfns);
  const b = new BuddyAllocator(NR, MAX, (p) => reserved.has(p));
  const initial = { order: Int8Array.from(b.freeOrder), nrFree: Array.from(b.nrFree) };
  const allocated: Block[] = [];
  checkAgainst(b, allocated, reserved);
  for (const op of ops) {
    if (op.kind === 'alloc') {
      const could = b.canAlloc(op.order);
      const runExists = alignedFreeRunExists(NR, allocated, reserved, op.order);
      const pfn = b.alloc(op.order);
      expect(pfn !== -1).toBe(could);
      // With full merging, any free aligned run is inside a free block: allocation cannot fail.
      expect(pfn !== -1).toBe(runExists);
      if (pfn !== -1) allocated.push({ pfn, order: op.order });
    } else if (allocated.length) {
      const [blk] = allocated.splice(op.pick % allocated.length, 1);
      b.free(blk.pfn, blk.order);
    }
    checkAgainst(b, allocated, reserved);
  }
  for (const blk of allocated.splice(0)) b.free(blk.pfn, blk.order);
  checkAgainst(b, allocated, reserved);
  // Back to exactly the initial blocks.
  expect(Int8Array.from(b.freeOrder)).toEqual(initial.order);
  expect(Array.from(b.nrFree)).toEqual(initial.nrFree);
}

describe('BuddyAllocator', () => {
  it('starts with the largest aligned blocks', () => {
    const b = new BuddyAllocator(NR, MAX, () => false);
    expect(freeBlocks(b)).toEqual([0, 1024, 2048, 3072].map((pfn) => ({ pfn, order: 10 })));
    expect(b.freePages).toBe(NR);
    // A reserved pfn 0 (the zero page) leaves 1 + 2 + ... + 512 in the first max-order block.
    const r = new BuddyAllocator(NR, MAX, (p) => p === 0);
    expect(r.freePages).toBe(NR - 1);
    expect(freeBlocks(r).slice(0, 10)).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((o) => ({ pfn: 2 ** o, order: o })),
    );
    expect(r.freeOrder[0]).toBe(-1);
  });

  it('splits the smallest sufficient block and hands out the lower half (expand)', () => {
    const b = new BuddyAllocator(NR, MAX, () => false);
    const base = b.alloc(0);
    expect(base % 1024).toBe(0);
    expect(b.freePages).toBe(NR - 1);
    expect(b.nrFree[MAX]).toBe(3);
    // base+1, base+2, base+4, ..., base+512 are now free blocks of orders 0..9.
    for (let o = 0; o < MAX; o++) expect(b.freeOrder[base + 2 ** o]).toBe(o);
    // Order 3 comes from the order-3 remainder, not from a fresh max-order block.
    expect(b.alloc(3)).toBe(base + 8);
    expect(b.nrFree[MAX]).toBe(3);
    b.free(base, 0);
    b.free(base + 8, 3);
    expect(b.freeOrder[base]).toBe(MAX);
    expect(b.nrFree[MAX]).toBe(4);
  });

  it('random alloc/free sequences match a reference set (property)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 120 }), (ops) => runProperty([], ops)),
      { numRuns: 120 },
    );
  });

  it('the same with reserved pfns scattered through memory (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: NR - 1 }), { maxLength: 6 }),
        fc.array(opArb, { minLength: 1, maxLength: 80 }),
        (reserved, ops) => runProperty(reserved, ops),
      ),
      { numRuns: 60 },
    );
  });

  it('fragmentation: with every other page free, order 1 fails and order 0 succeeds', () => {
    const b = new BuddyAllocator(NR, MAX, () => false);
    const pfns: number[] = [];
    for (let i = 0; i < NR; i++) pfns.push(b.alloc(0));
    expect(new Set(pfns).size).toBe(NR);
    expect(b.freePages).toBe(0);
    expect(b.alloc(0)).toBe(-1);
    for (let p = 0; p < NR; p += 2) b.free(p, 0);
    expect(b.freePages).toBe(NR / 2);
    expect(b.countFree()).toBe(NR / 2);
    expect(b.nrFree[0]).toBe(NR / 2);
    expect(b.canAlloc(1)).toBe(false);
    expect(b.alloc(1)).toBe(-1);
    expect(b.freePages).toBe(NR / 2);
    expect(b.canAlloc(0)).toBe(true);
    const p = b.alloc(0);
    expect(p % 2).toBe(0);
    expect(b.freePages).toBe(NR / 2 - 1);
    // Freeing a neighbour lets its pair merge: order 1 becomes possible again.
    b.free(p + 1, 0);
    b.free(p, 0);
    expect(b.freeOrder[p]).toBe(1);
    expect(b.alloc(1)).toBe(p);
  });
});
