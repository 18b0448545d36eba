// The collapse designs from the review history side by side (khugepaged.md §2.6, §2.7): the v10
// chunk bitmap and its creep, the v11 cap, the merged rule's freedom from creep, and the
// pte-level design that collapses inside the attached table and reaches VMAs smaller than a PMD.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PteBitmap } from '../src/khugepaged/mthp/bitmap.ts';
import { ChunkDensity, PteDensity, type WalkInput } from '../src/khugepaged/mthp/order-walk.ts';
import {
  type CollapsePolicy,
  maxPtesNoneV10Scaled,
  maxPtesNoneV19,
} from '../src/khugepaged/mthp/thresholds.ts';
import type { LockTable } from '../src/mm/locks.ts';
import { levelIndex, pmdTableOf } from '../src/mm/pagewalk.ts';
import { E_TABLE, E_TYPE_MASK, PMD as PMD_LEVEL } from '../src/mm/pgtable.ts';
import {
  type EventSink,
  S_IPI_SYNC,
  S_TLB,
  L_PMD_LOCK,
  L_PTE_LOCK,
  evClass,
} from '../src/mm/step.ts';
import type { TraceEvent } from '../src/mm/trace.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PMD = 2 * MiB;
const PAGE = 4 * KiB;
const ALL_MTHP = ['16kB', '32kB', '64kB', '128kB', '256kB', '512kB', '1024kB'];

function bitmapOf(n: number, f: (i: number) => boolean): PteBitmap {
  const b = new PteBitmap(n);
  for (let i = 0; i < n; i++) if (f(i)) b.set(i);
  return b;
}

function walkInput(bits: PteBitmap, sysfs: number, policy: 'v19' | 'v10'): WalkInput {
  const t = { sysfs, nr: 512, pmdOrder: 9, uffd: false, madvise: false };
  const fn = policy === 'v19' ? maxPtesNoneV19 : maxPtesNoneV10Scaled;
  return {
    bits,
    nr: 512,
    pmdOrder: 9,
    enabled: 0x3fc,
    maxPtesNone: (o) => fn(t, o),
    unmapped: 0,
  };
}

interface Box {
  m: Machine;
  mm: Mm;
  addr: number;
  trace: TraceEvent[];
}

/** One PMD-aligned VMA of `pmds` PMDs; `pages` (indices) written as base pages; sizes enabled. */
function machine(opts: {
  policy: CollapsePolicy;
  maxPtesNone: number;
  pages: number[];
  pmds?: number;
  sizes?: string[];
}): Box {
  const m = new Machine({ ramBytes: 256 * MiB, strictLocks: true, collapsePolicy: opts.policy });
  m.sysfsWrite('enabled', 'madvise');
  m.sysfsWrite('khugepaged/scan_sleep_millisecs', '100');
  m.sysfsWrite('khugepaged/max_ptes_none', String(opts.maxPtesNone));
  const mm = m.spawn('p');
  const addr = m.mmap(mm, { lengthBytes: (opts.pmds ?? 1) * PMD, alignBytes: PMD });
  for (const p of opts.pages) m.touch(mm, addr + p * PAGE, PAGE, true);
  for (const size of opts.sizes ?? ALL_MTHP) m.sysfsWrite(`hugepages-${size}/enabled`, 'always');
  m.madvise(mm, addr, (opts.pmds ?? 1) * PMD, 'hugepage');
  const trace: TraceEvent[] = [];
  m.setTrace((e) => trace.push(e));
  return { m, mm, addr, trace };
}

/** Run khugepaged for n more full scans; the kB per order afterwards. */
function scans(b: Box, n: number): Record<number, number> {
  b.m.waitKhugepaged(n, 1_000_000);
  b.m.checkInvariants();
  return b.m.smaps(b.mm)[0].byOrder;
}

/** The PMD table and index, and the PTE table (0 if none), mapping a byte address. */
function tablesAt(m: Machine, mm: Mm, addr: number): { pmdT: number; pmdI: number; pteT: number } {
  const k = m.kernel;
  const vpn = addr / k.geo.pageSize;
  const pmdT = pmdTableOf(k, mm, vpn);
  const pmdI = levelIndex(k, vpn, PMD_LEVEL);
  const table = (k.pt.pmd.getBits(pmdT, pmdI) & E_TYPE_MASK) === E_TABLE;
  return { pmdT, pmdI, pteT: table ? k.pt.pmd.getVal(pmdT, pmdI) : 0 };
}

/** The order of the folio mapping the page at index i (PTE-mapped or PMD-mapped). */
function orderAt(b: Box, i: number): number {
  const k = b.m.kernel;
  const { pmdT, pmdI, pteT } = tablesAt(b.m, b.mm, b.addr + i * PAGE);
  if (!pteT) return k.folios.order[k.pt.pmd.getVal(pmdT, pmdI)];
  const pfn = k.pt.pte.getVal(pteT, (b.addr / PAGE + i) % k.geo.ptrsPerPte);
  return k.folios.order[k.folios.headOf(pfn)];
}

describe('v10-scaled: the 4-PTE chunk bitmap', () => {
  it('sets a chunk when its none PTEs are within max_ptes_none scaled to 4 PTEs', () => {
    // 384 >> 7 = 3: a chunk with one page of four is set; with 255 >> 7 = 1 it needs three.
    const bits = bitmapOf(512, (i) => i === 0 || (i >= 4 && i < 7));
    const loose = new ChunkDensity(walkInput(bits, 384, 'v10'));
    expect([0, 1, 2].map((c) => loose.chunks.test(c))).toEqual([true, true, false]);
    const strict = new ChunkDensity(walkInput(bits, 255, 'v10'));
    expect([0, 1, 2].map((c) => strict.chunks.test(c))).toEqual([false, true, false]);
  });

  it('a region is dense when more chunks than (NR - max_ptes_none - 1) >> (PMD_ORDER - order + 2) are set', () => {
    // 384: thresholds 127 >> (11 - o): order 4 needs > 0 chunks, order 5 > 1, order 9 > 31.
    const one = new ChunkDensity(
      walkInput(
        bitmapOf(512, (i) => i === 0),
        384,
        'v10',
      ),
    );
    expect(one.dense(0, 4)).toBe(true);
    expect(one.dense(0, 5)).toBe(false);
    const half = new ChunkDensity(
      walkInput(
        bitmapOf(512, (i) => i < 256),
        384,
        'v10',
      ),
    );
    expect(half.dense(0, 9)).toBe(true);
    // max_ptes_none 0: every chunk full, and all of a region's chunks.
    const full = new ChunkDensity(
      walkInput(
        bitmapOf(512, (i) => i !== 100),
        0,
        'v10',
      ),
    );
    expect(full.dense(0, 9)).toBe(false);
    expect(full.dense(0, 6)).toBe(true);
    expect(full.dense(64, 6)).toBe(false);
  });

  it('with max_ptes_none 0 or NR-1 chunk density agrees with per-PTE density at every order', () => {
    fc.assert(
      fc.property(
        fc.uint32Array({ minLength: 16, maxLength: 16 }),
        fc.constantFrom(0, 511),
        fc.integer({ min: 2, max: 9 }),
        fc.nat(511),
        (words, sysfs, order, at) => {
          const bits = new PteBitmap(512);
          bits.words.set(words);
          const offset = at & ~((1 << order) - 1);
          const a = new ChunkDensity(walkInput(bits, sysfs, 'v10')).dense(offset, order);
          const b = new PteDensity(walkInput(bits, sysfs, 'v10')).dense(offset, order);
          expect(a).toBe(b);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('creep', () => {
  it('v10-scaled grows one written page to a PMD, one order per scan', () => {
    const b = machine({ policy: 'v10-scaled', maxPtesNone: 384, pages: [0] });
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) {
      scans(b, 1);
      seen.push(orderAt(b, 0));
    }
    // 16K first (64K and 32K fail isolate's scaled limit); then each scan the search from the
    // top finds the region two orders up dense enough (a quarter of it is the last collapse).
    expect(seen).toEqual([2, 4, 6, 8, 9, 9, 9, 9]);
    expect(b.m.smaps(b.mm)[0].Rss).toBe(2048);
    expect(b.m.readPage(b.mm, b.addr)).not.toBeNull();
  });

  it('v19 and v11-cap leave the same page alone under the same knob', () => {
    for (const policy of ['v19', 'v11-cap'] as const) {
      const b = machine({ policy, maxPtesNone: 384, pages: [0] });
      expect(scans(b, 6)).toEqual({ 0: 4 });
    }
  });

  it('v19 never creeps: coverage after two scans is final, whatever the pages and knob', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(1023), { maxLength: 200 }),
        fc.constantFrom(0, 1, 64, 255, 256, 384, 511),
        fc.subarray(ALL_MTHP, { minLength: 1 }),
        (pages, maxPtesNone, sizes) => {
          const b = machine({ policy: 'v19', maxPtesNone, pages, pmds: 2, sizes });
          const settled = scans(b, 2);
          expect(scans(b, 3)).toEqual(settled);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('v10-scaled creeps for some layout once max_ptes_none is NR/2 or more, never below', () => {
    const grows = (maxPtesNone: number): boolean => {
      const b = machine({ policy: 'v10-scaled', maxPtesNone, pages: [0, 1, 2] });
      const first = JSON.stringify(scans(b, 1));
      return JSON.stringify(scans(b, 3)) !== first;
    };
    expect(grows(256)).toBe(true);
    expect(grows(255)).toBe(false);
  });
});

describe('pte-level: collapse inside the attached table', () => {
  /** VMA a = the lower half of one PMD range (NOHUGEPAGE), VMA b = the upper half (HUGEPAGE). */
  function shared(policy: CollapsePolicy) {
    const m = new Machine({ ramBytes: 64 * MiB, strictLocks: true, collapsePolicy: policy });
    m.sysfsWrite('enabled', 'madvise');
    m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
    m.sysfsWrite('khugepaged/max_ptes_none', '0');
    const mm = m.spawn('p');
    const base = m.mmap(mm, { lengthBytes: 2 * PMD, alignBytes: PMD });
    m.munmap(mm, base + PMD, PMD);
    m.touch(mm, base, PMD, true);
    m.sysfsWrite('hugepages-64kB/enabled', 'always');
    m.madvise(mm, base, PMD / 2, 'nohugepage');
    m.madvise(mm, base + PMD / 2, PMD / 2, 'hugepage');
    return { m, mm, base };
  }

  it('collapses the upper-half VMA to 64K folios; v19 cannot (the VMA does not span the PMD)', () => {
    const v19 = shared('v19');
    v19.m.waitKhugepaged(2, 10_000);
    expect(v19.m.smaps(v19.mm).map((v) => v.byOrder)).toEqual([{ 0: 1024 }, { 0: 1024 }]);

    const p = shared('pte-level');
    const before = Array.from({ length: 512 }, (_, i) => p.m.readPage(p.mm, p.base + i * PAGE));
    p.m.waitKhugepaged(2, 10_000);
    expect(p.m.smaps(p.mm).map((v) => v.byOrder)).toEqual([{ 0: 1024 }, { 4: 1024 }]);
    expect(Array.from({ length: 512 }, (_, i) => p.m.readPage(p.mm, p.base + i * PAGE))).toEqual(
      before,
    );
    p.m.checkInvariants();
  });

  it('never changes the PMD entry or the PTEs that map the other VMA', () => {
    const p = shared('pte-level');
    const k = p.m.kernel;
    const look = () => {
      const { pmdT, pmdI, pteT } = tablesAt(p.m, p.mm, p.base);
      const e = k.pt.pte.entriesPerTable;
      return {
        pmd: [k.pt.pmd.getVal(pmdT, pmdI), k.pt.pmd.getBits(pmdT, pmdI)],
        lower: [
          Array.from(k.pt.pte.val.subarray(pteT * e, pteT * e + 256)),
          Array.from(k.pt.pte.bits.subarray(pteT * e, pteT * e + 256)),
        ],
      };
    };
    const before = look();
    // Every event of the collapse, with the PMD entry and the other VMA's PTEs checked at each.
    const strict = k.sink;
    let changed = 0;
    let pmdLocks = 0;
    const order: string[] = [];
    const recorder: EventSink = {
      apply(e, thread) {
        if (JSON.stringify(look()) !== JSON.stringify(before)) changed++;
        const cls = evClass(e);
        if (cls === L_PMD_LOCK) pmdLocks++;
        if (cls === S_TLB) order.push('flush');
        if (cls === S_IPI_SYNC) order.push('ipi');
        if (cls === L_PTE_LOCK && (e & 7) === 1) order.push('pte_lock');
        return strict.apply(e, thread);
      },
    };
    (k as unknown as { sink: EventSink }).sink = recorder;
    p.m.waitKhugepaged(1, 10_000);
    expect(p.m.smaps(p.mm)[1].byOrder).toEqual({ 4: 1024 });
    expect(changed).toBe(0);
    expect(pmdLocks).toBe(0);
    // Per collapse: the PTE lock, then the flush and the GUP-fast IPI before the copy.
    expect(order.join(' ')).toContain('pte_lock flush ipi');
    expect((strict as LockTable).isEmpty).toBe(true);
  });

  it('on arm64-64k reaches VMAs far smaller than the 512MiB PMD', () => {
    const run = (policy: CollapsePolicy) => {
      const m = new Machine({
        geometry: 'arm64-64k',
        ramBytes: 512 * MiB,
        strictLocks: true,
        collapsePolicy: policy,
      });
      m.sysfsWrite('enabled', 'madvise');
      m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
      const mm = m.spawn('p');
      const a = m.mmap(mm, { lengthBytes: 32 * MiB, alignBytes: 2 * MiB });
      m.touch(mm, a, 32 * MiB, true);
      m.sysfsWrite('hugepages-2048kB/enabled', 'always');
      m.madvise(mm, a, 32 * MiB, 'hugepage');
      m.waitKhugepaged(2, 10_000);
      m.checkInvariants();
      return m.smaps(mm)[0].byOrder;
    };
    expect(run('v19')).toEqual({ 0: 32 * 1024 });
    expect(run('pte-level')).toEqual({ 5: 32 * 1024 });
  });
});
