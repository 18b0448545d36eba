import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PG_LAZYFREE } from '../src/mm/folio.ts';
import { B_EXCLUSIVE, E_SWAP, E_TYPE_MASK } from '../src/mm/pgtable.ts';
import { walkRange } from '../src/mm/walk.ts';
import type { Machine, Mm } from '../src/sim/machine.ts';
import { KiB, MiB, PAGE, PMD, machine, op, readAll, readBack, smapsAt } from './reclaim-helpers.ts';

/** A process with one VMA written in full; returns [mm, addr, contents]. */
function written(m: Machine, len: number, align?: number): [Mm, number, number[]] {
  const mm = m.spawn('app');
  const addr = op(m, () => m.mmap(mm, { lengthBytes: len, alignBytes: align }));
  op(m, () => m.touch(mm, addr, len, true));
  return [mm, addr, readAll(m, mm, addr, len)];
}

/** Read every page back through the fault path (swap-in), checking invariants after each. */
function readThrough(m: Machine, mm: Mm, addr: number, len: number): void {
  for (let a = addr; a < addr + len; a += PAGE) op(m, () => m.access(mm, a, false));
}

/** Only PMD-sized THPs (the default), or only 64kB mTHPs. */
function only64k(m: Machine): void {
  m.sysfsWrite('enabled', 'never');
  m.sysfsWrite('hugepages-64kB/enabled', 'always');
}

describe('MADV_PAGEOUT', () => {
  it('small pages round-trip through swap with their data', () => {
    const m = machine(16 * MiB);
    m.sysfsWrite('enabled', 'never');
    const [mm, addr, data] = written(m, 64 * KiB);
    expect(new Set(data).size).toBe(16);
    op(m, () => m.madvise(mm, addr, 64 * KiB, 'pageout'));
    const s = smapsAt(m, mm, addr);
    expect(s.Rss).toBe(0);
    expect(s.Swap).toBe(64);
    expect(m.vmstat().pswpout).toBe(16);
    expect(m.meminfo().SwapFree).toBe(16 * 1024 - 64);
    // The data sits in the swap slots, and the entries are exclusive (the pages were).
    expect(readAll(m, mm, addr, 64 * KiB)).toEqual(data);
    const vpn = addr / PAGE;
    walkRange(m.kernel, mm, vpn, vpn + 16, {
      pmd: () => expect.unreachable(),
      pte: (_v, _t, _i, bits) => {
        expect(bits & E_TYPE_MASK).toBe(E_SWAP);
        expect(bits & B_EXCLUSIVE).toBeTruthy();
      },
    });
    readThrough(m, mm, addr, 64 * KiB);
    expect(readAll(m, mm, addr, 64 * KiB)).toEqual(data);
    expect(m.vmstat().pswpin).toBe(16);
    expect(m.vmstat().pgmajfault).toBe(16);
    expect(smapsAt(m, mm, addr).Swap).toBe(0);
    expect(smapsAt(m, mm, addr).Rss).toBe(64);
    expect(m.meminfo().SwapFree).toBe(16 * 1024);
    // Exclusive swap entries come back writable: writing needs no further fault.
    const faults = m.vmstat().pgfault;
    op(m, () => m.touch(mm, addr, 64 * KiB, true));
    expect(m.vmstat().pgfault).toBe(faults);
  });

  it('pages out a 2MiB THP whole', () => {
    const m = machine(16 * MiB);
    const [mm, addr, data] = written(m, PMD, PMD);
    expect(m.meminfo().AnonHugePages).toBe(2048);
    const free = m.meminfo().MemFree;
    op(m, () => m.madvise(mm, addr, PMD, 'pageout'));
    const vm = m.vmstat();
    expect(vm.thp_swpout).toBe(1);
    expect(vm.thp_swpout_fallback).toBe(0);
    expect(vm.pswpout).toBe(512);
    // try_to_unmap splits the PMD mapping, not the folio.
    expect(vm.thp_split_pmd).toBe(1);
    expect(vm.thp_split_page).toBe(0);
    expect(m.mthpStats()['2048kB'].swpout).toBe(1);
    expect(m.mthpStats()['2048kB'].swpout_fallback).toBe(0);
    const s = smapsAt(m, mm, addr);
    expect(s.Swap).toBe(2048);
    expect(s.Rss).toBe(0);
    expect(s.AnonHugePages).toBe(0);
    expect(m.meminfo().AnonHugePages).toBe(0);
    expect(m.meminfo().MemFree).toBe(free + 2048);
    expect(m.meminfo().SwapFree).toBe(16 * 1024 - 2048);
    expect(readAll(m, mm, addr, PMD)).toEqual(data);
    readThrough(m, mm, addr, PMD);
    expect(readAll(m, mm, addr, PMD)).toEqual(data);
    expect(m.vmstat().pswpin).toBe(512);
    expect(m.meminfo().SwapFree).toBe(16 * 1024);
  });

  it('splits a THP when swap has no aligned run of 512 slots (swpout_fallback)', () => {
    // 1024 slots: the only aligned 512 run is [512, 1024) (slot 0 is the header).
    const m = machine(4 * MiB);
    const filler = m.spawn('filler');
    const fa = op(m, () => m.mmap(filler, { lengthBytes: 600 * PAGE }));
    op(m, () => m.madvise(filler, fa, 600 * PAGE, 'nohugepage'));
    op(m, () => m.touch(filler, fa, 600 * PAGE, true));
    op(m, () => m.madvise(filler, fa, 600 * PAGE, 'pageout'));
    expect(smapsAt(m, filler, fa).Swap).toBe(600 * 4);

    const mm = m.spawn('app');
    const addr = op(m, () => m.mmap(mm, { lengthBytes: PMD, alignBytes: PMD }));
    // One page in five written: the rest of the THP is zero-filled.
    op(m, () => m.touch(mm, addr, PMD, true, 5 * PAGE));
    const data = readAll(m, mm, addr, PMD);
    const written = data.filter((d) => d !== 0).length;
    expect(written).toBe(103);
    op(m, () => m.madvise(mm, addr, PMD, 'pageout'));
    const vm = m.vmstat();
    expect(vm.thp_swpout).toBe(0);
    expect(vm.thp_swpout_fallback).toBe(1);
    expect(vm.thp_split_page).toBe(1);
    expect(m.mthpStats()['2048kB'].swpout_fallback).toBe(1);
    expect(m.mthpStats()['2048kB'].swpout).toBe(0);
    // The zero-filled pages went to the shared zero page when the folio was split; the written
    // ones were swapped out one by one.
    expect(vm.pswpout).toBe(600 + written);
    const s = smapsAt(m, mm, addr);
    expect(s.Swap).toBe(written * 4);
    expect(s.Rss).toBe(0);
    expect(readAll(m, mm, addr, PMD)).toEqual(data);
    readThrough(m, mm, addr, PMD);
    expect(readAll(m, mm, addr, PMD)).toEqual(data);
  });

  it('swaps out what fits and keeps the rest when swap runs out', () => {
    const m = machine(64 * PAGE);
    m.sysfsWrite('enabled', 'never');
    const [mm, addr, data] = written(m, 100 * PAGE);
    op(m, () => m.madvise(mm, addr, 100 * PAGE, 'pageout'));
    expect(smapsAt(m, mm, addr).Swap).toBe(63 * 4); // slot 0 is the header
    expect(smapsAt(m, mm, addr).Rss).toBe(37 * 4);
    expect(readAll(m, mm, addr, 100 * PAGE)).toEqual(data);
  });

  it('pages out 64kB mTHPs whole (swpout[64kB])', () => {
    const m = machine(16 * MiB);
    only64k(m);
    const [mm, addr, data] = written(m, 256 * KiB, 64 * KiB);
    expect(smapsAt(m, mm, addr).byOrder[4]).toBe(256);
    op(m, () => m.madvise(mm, addr, 256 * KiB, 'pageout'));
    expect(m.mthpStats()['64kB'].swpout).toBe(4);
    expect(m.mthpStats()['64kB'].swpout_fallback).toBe(0);
    expect(m.vmstat().thp_swpout).toBe(0);
    expect(m.vmstat().pswpout).toBe(64);
    expect(smapsAt(m, mm, addr).Swap).toBe(256);
    expect(smapsAt(m, mm, addr).Rss).toBe(0);
    expect(readAll(m, mm, addr, 256 * KiB)).toEqual(data);
    readThrough(m, mm, addr, 256 * KiB);
    expect(readAll(m, mm, addr, 256 * KiB)).toEqual(data);
  });

  it('splits a large folio only partly in range and pages out the covered part', () => {
    const m = machine(16 * MiB);
    const [mm, addr, data] = written(m, PMD, PMD);
    op(m, () => m.madvise(mm, addr + 256 * PAGE, 128 * PAGE, 'pageout'));
    expect(m.vmstat().thp_split_page).toBe(1);
    expect(m.vmstat().thp_swpout_fallback).toBe(0);
    expect(m.vmstat().pswpout).toBe(128);
    const s = smapsAt(m, mm, addr);
    expect(s.Swap).toBe(128 * 4);
    expect(s.Rss).toBe(384 * 4);
    expect(s.AnonHugePages).toBe(0);
    expect(readAll(m, mm, addr, PMD)).toEqual(data);

    // The same for a 64kB mTHP cut in the middle.
    const m2 = machine(16 * MiB);
    only64k(m2);
    const [mm2, a2, d2] = written(m2, 64 * KiB, 64 * KiB);
    op(m2, () => m2.madvise(mm2, a2 + 8 * PAGE, 4 * PAGE, 'pageout'));
    expect(m2.mthpStats()['64kB'].split).toBe(1);
    expect(m2.mthpStats()['64kB'].swpout).toBe(0);
    expect(smapsAt(m2, mm2, a2).Swap).toBe(16);
    expect(readAll(m2, mm2, a2, 64 * KiB)).toEqual(d2);
  });

  it('leaves the zero page and the huge zero page alone', () => {
    const m = machine(16 * MiB);
    const mm = m.spawn('app');
    const addr = op(m, () => m.mmap(mm, { lengthBytes: 2 * PMD, alignBytes: PMD }));
    op(m, () => m.touch(mm, addr, PMD, false)); // huge zero page
    op(m, () => m.madvise(mm, addr + PMD, PMD, 'nohugepage'));
    op(m, () => m.touch(mm, addr + PMD, 16 * PAGE, false)); // small zero page
    op(m, () => m.madvise(mm, addr, 2 * PMD, 'pageout'));
    expect(m.vmstat().pswpout).toBe(0);
    expect(m.meminfo().SwapFree).toBe(16 * 1024);
  });

  it('changes nothing without a swap device', () => {
    const m = machine(0);
    const mm = m.spawn('app');
    const addr = op(m, () => m.mmap(mm, { lengthBytes: 2 * PMD, alignBytes: PMD }));
    op(m, () => m.touch(mm, addr, PMD, true)); // a THP
    op(m, () => m.madvise(mm, addr + PMD, PMD, 'nohugepage'));
    op(m, () => m.touch(mm, addr + PMD, 64 * PAGE, true)); // small pages
    const before = { smaps: m.smaps(mm), mem: m.meminfo(), vm: m.vmstat() };
    const data = readAll(m, mm, addr, 2 * PMD);
    op(m, () => m.madvise(mm, addr, 2 * PMD, 'pageout'));
    expect(m.smaps(mm)).toEqual(before.smaps);
    expect(m.meminfo()).toEqual(before.mem);
    expect(m.vmstat()).toEqual(before.vm);
    expect(readAll(m, mm, addr, 2 * PMD)).toEqual(data);
  });
});

describe('MADV_FREE', () => {
  it('marks pages lazy-free; pageout then discards them without swap', () => {
    const m = machine(16 * MiB);
    m.sysfsWrite('enabled', 'never');
    const [mm, addr] = written(m, 64 * KiB);
    op(m, () => m.madvise(mm, addr, 64 * KiB, 'free'));
    // Until reclaim runs the data is still there.
    expect(readAll(m, mm, addr, 64 * KiB).every((d) => d !== 0)).toBe(true);
    expect(smapsAt(m, mm, addr).Rss).toBe(64);
    op(m, () => m.madvise(mm, addr, 64 * KiB, 'pageout'));
    expect(smapsAt(m, mm, addr).Rss).toBe(0);
    expect(smapsAt(m, mm, addr).Swap).toBe(0);
    expect(m.vmstat().pswpout).toBe(0);
    expect(m.meminfo().SwapFree).toBe(16 * 1024);
    expect(readAll(m, mm, addr, 64 * KiB).every((d) => d === 0)).toBe(true);
    // Reading them afterwards finds zero-filled memory.
    readThrough(m, mm, addr, 64 * KiB);
    expect(readAll(m, mm, addr, 64 * KiB).every((d) => d === 0)).toBe(true);
  });

  it('discards a lazy-free THP whole, even without a swap device', () => {
    const m = machine(0);
    const [mm, addr] = written(m, PMD, PMD);
    op(m, () => m.madvise(mm, addr, PMD, 'free'));
    expect(m.meminfo().AnonHugePages).toBe(2048);
    op(m, () => m.madvise(mm, addr, PMD, 'pageout'));
    expect(m.meminfo().AnonHugePages).toBe(0);
    expect(smapsAt(m, mm, addr).Rss).toBe(0);
    expect(m.vmstat().thp_split_pmd).toBe(0);
    expect(m.vmstat().thp_split_page).toBe(0);
  });

  it('keeps a page written after MADV_FREE', () => {
    const m = machine(16 * MiB);
    m.sysfsWrite('enabled', 'never');
    const [mm, addr] = written(m, 4 * PAGE);
    op(m, () => m.madvise(mm, addr, 4 * PAGE, 'free'));
    op(m, () => m.access(mm, addr + PAGE, true));
    const kept = readBack(m, mm, addr + PAGE);
    op(m, () => m.madvise(mm, addr, 4 * PAGE, 'pageout'));
    // The redirtied page survives (and is swap-backed again); the others are gone.
    expect(readAll(m, mm, addr, 4 * PAGE)).toEqual([0, kept, 0, 0]);
    expect(smapsAt(m, mm, addr).Rss).toBe(4);
    expect(m.vmstat().pswpout).toBe(0);
    const pfn = (() => {
      let p = -1;
      walkRange(m.kernel, mm, addr / PAGE + 1, addr / PAGE + 2, {
        pmd: () => undefined,
        pte: (_v, _t, _i, _b, val) => (p = val),
      });
      return p;
    })();
    expect(m.kernel.folios.flags[pfn] & PG_LAZYFREE).toBe(0);
    // A second pageout swaps it out like any anonymous page.
    op(m, () => m.madvise(mm, addr, 4 * PAGE, 'pageout'));
    expect(smapsAt(m, mm, addr).Swap).toBe(4);
    expect(m.vmstat().pswpout).toBe(1);
    readThrough(m, mm, addr, 4 * PAGE);
    expect(readAll(m, mm, addr, 4 * PAGE)).toEqual([0, kept, 0, 0]);
  });

  it('keeps a THP written after MADV_FREE, then swaps it out whole', () => {
    const m = machine(16 * MiB);
    const [mm, addr] = written(m, PMD, PMD);
    op(m, () => m.madvise(mm, addr, PMD, 'free'));
    op(m, () => m.access(mm, addr + 7 * PAGE, true));
    const data = readAll(m, mm, addr, PMD);
    op(m, () => m.madvise(mm, addr, PMD, 'pageout'));
    expect(m.meminfo().AnonHugePages).toBe(2048);
    expect(readAll(m, mm, addr, PMD)).toEqual(data);
    op(m, () => m.madvise(mm, addr, PMD, 'pageout'));
    expect(m.vmstat().thp_swpout).toBe(1);
    expect(readAll(m, mm, addr, PMD)).toEqual(data);
  });

  it('splits a THP only partly covered, and frees swap entries in range', () => {
    const m = machine(16 * MiB);
    const [mm, addr, data] = written(m, PMD, PMD);
    op(m, () => m.madvise(mm, addr, 64 * PAGE, 'free'));
    expect(m.vmstat().thp_split_page).toBe(1);
    op(m, () => m.madvise(mm, addr, PMD, 'pageout'));
    // The 64 lazy-free pages are dropped, the other 448 swapped out.
    expect(m.vmstat().pswpout).toBe(448);
    expect(smapsAt(m, mm, addr).Swap).toBe(448 * 4);
    const after = readAll(m, mm, addr, PMD);
    expect(after.slice(0, 64).every((d) => d === 0)).toBe(true);
    expect(after.slice(64)).toEqual(data.slice(64));
    // MADV_FREE over swap entries simply forgets them.
    op(m, () => m.madvise(mm, addr, PMD, 'free'));
    expect(smapsAt(m, mm, addr).Swap).toBe(0);
    expect(m.meminfo().SwapFree).toBe(16 * 1024);
    expect(readAll(m, mm, addr, PMD).every((d) => d === 0)).toBe(true);
  });

  it('marks a whole mTHP lazy-free without splitting it', () => {
    const m = machine(16 * MiB);
    only64k(m);
    const [mm, addr] = written(m, 64 * KiB, 64 * KiB);
    op(m, () => m.madvise(mm, addr, 64 * KiB, 'free'));
    expect(m.mthpStats()['64kB'].split).toBe(0);
    op(m, () => m.madvise(mm, addr, 64 * KiB, 'pageout'));
    expect(smapsAt(m, mm, addr).Rss).toBe(0);
    expect(m.mthpStats()['64kB'].nr_anon).toBe(0);
  });
});

describe('property: reclaim keeps the data', () => {
  type Op =
    | { kind: 'write' | 'read'; page: number }
    | {
        kind: 'writeRange' | 'readRange' | 'pageout' | 'free' | 'dontneed';
        page: number;
        len: number;
      };
  // 512 pages (one PMD) + 256 pages (too small for a PMD: 64kB mTHPs).
  const PAGES = 768;
  // Aligned whole-folio ranges come often, so THPs and mTHPs also go out (or fall back) whole.
  const range = fc.oneof(
    fc
      .record({ page: fc.nat(PAGES - 1), len: fc.integer({ min: 1, max: 40 }) })
      .map((r) => ({ page: r.page, len: Math.min(r.len, PAGES - r.page) })),
    fc.constantFrom(
      { page: 0, len: 512 },
      { page: 0, len: PAGES },
      { page: 512, len: 16 },
      { page: 528, len: 32 },
      { page: 512, len: 256 },
    ),
  );
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      kind: fc.constantFrom('write' as const, 'read' as const),
      // Often a page the aligned ranges cover, so writes land between MADV_FREE and pageout.
      page: fc.oneof(fc.nat(PAGES - 1), fc.constantFrom(0, 7, 300, 511, 512, 520, 530, 700)),
    }),
    fc
      .tuple(
        fc.constantFrom(
          'writeRange' as const,
          'readRange' as const,
          'pageout' as const,
          'free' as const,
          'dontneed' as const,
        ),
        range,
      )
      .map(([kind, r]) => ({ kind, ...r })),
  );

  it('random touch/write/pageout/free/dontneed keep invariants and data', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, 300, 4096),
        fc.array(opArb, { minLength: 1, maxLength: 25 }),
        (swapPages, ops) => {
          const m = machine(swapPages * PAGE);
          m.sysfsWrite('hugepages-64kB/enabled', 'always');
          const mm = m.spawn('p');
          const addr = m.mmap(mm, { lengthBytes: PAGES * PAGE, alignBytes: PMD });
          // Expected content per page; `maybeZero` while a MADV_FREE'd page may be discarded.
          const value = new Array<number>(PAGES).fill(0);
          const maybeZero = new Array<boolean>(PAGES).fill(false);
          for (const o of ops) {
            const a = addr + o.page * PAGE;
            const n = 'len' in o ? o.len : 1;
            if (o.kind === 'write' || o.kind === 'writeRange') m.touch(mm, a, n * PAGE, true);
            else if (o.kind === 'read') m.access(mm, a, false);
            else if (o.kind === 'readRange') m.touch(mm, a, n * PAGE, false);
            else m.madvise(mm, a, n * PAGE, o.kind);
            m.checkInvariants();
            for (let p = o.page; p < o.page + n; p++) {
              if (o.kind === 'write' || o.kind === 'writeRange') {
                value[p] = readBack(m, mm, addr + p * PAGE);
                maybeZero[p] = false;
              } else if (o.kind === 'dontneed') {
                value[p] = 0;
                maybeZero[p] = false;
              } else if (o.kind === 'free') maybeZero[p] = true;
            }
            for (let p = 0; p < PAGES; p++) {
              const got = readBack(m, mm, addr + p * PAGE);
              if (got === value[p]) continue;
              if (maybeZero[p] && got === 0) {
                // Discarded: it stays zero until written again.
                value[p] = 0;
                maybeZero[p] = false;
                continue;
              }
              throw new Error(
                `page ${p} reads ${got}, expected ${value[p]} after ${JSON.stringify(o)}`,
              );
            }
          }
        },
      ),
      {
        numRuns: 100,
        // Always included: a write between MADV_FREE and pageout, on an mTHP and on a THP.
        examples: [
          [
            4096,
            [
              { kind: 'writeRange', page: 512, len: 16 },
              { kind: 'free', page: 512, len: 16 },
              { kind: 'write', page: 520 },
              { kind: 'pageout', page: 512, len: 256 },
              { kind: 'readRange', page: 512, len: 16 },
            ],
          ],
          [
            0,
            [
              { kind: 'write', page: 7 },
              { kind: 'free', page: 0, len: 512 },
              { kind: 'write', page: 300 },
              { kind: 'pageout', page: 0, len: PAGES },
              { kind: 'pageout', page: 0, len: PAGES },
            ],
          ],
        ],
      },
    );
  });
});
