import { describe, expect, it } from 'vitest';
import {
  GEOMETRY_NAMES,
  type GeometryName,
  geometry,
  highestOrder,
  orderSizeKb,
  ordersDescending,
} from '../src/mm/geometry.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The §0 table of the spec, one row per geometry. */
const TABLE: Record<
  GeometryName,
  {
    pageSize: number;
    ptrsPerPte: number;
    pmdOrder: number;
    pmdSize: number;
    contPtes: number;
    arch: 'x86-64' | 'arm64';
  }
> = {
  'x86-64-4k': {
    pageSize: 4 * KiB,
    ptrsPerPte: 512,
    pmdOrder: 9,
    pmdSize: 2 * MiB,
    contPtes: 1,
    arch: 'x86-64',
  },
  'arm64-4k': {
    pageSize: 4 * KiB,
    ptrsPerPte: 512,
    pmdOrder: 9,
    pmdSize: 2 * MiB,
    contPtes: 16,
    arch: 'arm64',
  },
  'arm64-16k': {
    pageSize: 16 * KiB,
    ptrsPerPte: 2048,
    pmdOrder: 11,
    pmdSize: 32 * MiB,
    contPtes: 128,
    arch: 'arm64',
  },
  'arm64-64k': {
    pageSize: 64 * KiB,
    ptrsPerPte: 8192,
    pmdOrder: 13,
    pmdSize: 512 * MiB,
    contPtes: 32,
    arch: 'arm64',
  },
};

/** The hugepages-<size>kB directory names of §4, orders 2..PMD order, ascending. */
const SIZES_KB: Record<GeometryName, number[]> = {
  'x86-64-4k': [16, 32, 64, 128, 256, 512, 1024, 2048],
  'arm64-4k': [16, 32, 64, 128, 256, 512, 1024, 2048],
  'arm64-16k': [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768],
  'arm64-64k': [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288],
};

describe('geometry table (§0)', () => {
  it('knows exactly the four geometries', () => {
    expect([...GEOMETRY_NAMES].sort()).toEqual(Object.keys(TABLE).sort());
  });

  it('rejects an unknown geometry by name', () => {
    expect(() => geometry('sparc-8k' as GeometryName)).toThrow(/unknown geometry 'sparc-8k'/);
  });

  describe.each(GEOMETRY_NAMES)('%s', (name) => {
    const g = geometry(name);
    const row = TABLE[name];

    it('page size, PTRS_PER_PTE, PMD order and size, arch', () => {
      expect(g.name).toBe(name);
      expect(g.arch).toBe(row.arch);
      expect(g.pageSize).toBe(row.pageSize);
      expect(2 ** g.pageShift).toBe(row.pageSize);
      expect(g.ptrsPerPte).toBe(row.ptrsPerPte);
      expect(g.pmdOrder).toBe(row.pmdOrder);
      expect(g.pmdSize).toBe(row.pmdSize);
      // HPAGE_PMD_NR pages of PAGE_SIZE make one PMD THP.
      expect(g.ptrsPerPte * g.pageSize).toBe(g.pmdSize);
      expect(2 ** g.pmdOrder).toBe(g.ptrsPerPte);
    });

    it('contiguous-PTE block (CONT_PTES)', () => {
      expect(g.contPtes).toBe(row.contPtes);
      // On arm64 every CONT_PTES block fits inside one PTE table.
      expect(g.ptrsPerPte % g.contPtes).toBe(0);
    });

    it('anon orders are exactly 2..PMD order', () => {
      const orders = ordersDescending(g.anonOrders);
      const expected: number[] = [];
      for (let o = g.pmdOrder; o >= 2; o--) expected.push(o);
      expect(orders).toEqual(expected);
      expect(g.anonOrders & 0b11).toBe(0);
      expect(highestOrder(g.anonOrders)).toBe(g.pmdOrder);
    });

    it('VA bits and per-level entries follow from levelBits (48-bit VA)', () => {
      const [pgd, pud, pmd, pte] = g.levelBits;
      expect(g.vaBits).toBe(g.pageShift + pgd + pud + pmd + pte);
      expect(g.vaBits).toBe(48);
      expect(g.entries).toEqual(g.levelBits.map((b) => 2 ** b));
      expect(g.entries[3]).toBe(g.ptrsPerPte);
      // The PMD level maps PTRS_PER_PTE pages per entry; the PUD level a whole PMD table's worth.
      expect(g.pagesPerPud).toBe(g.entries[2] * g.entries[3]);
      expect(g.maxPageOrder).toBeGreaterThanOrEqual(g.pmdOrder);
    });

    it('hugepages-<size>kB names', () => {
      const names = ordersDescending(g.anonOrders)
        .reverse()
        .map((o) => orderSizeKb(g, o));
      expect(names).toEqual(SIZES_KB[name]);
      expect(orderSizeKb(g, g.pmdOrder) * KiB).toBe(g.pmdSize);
      expect(orderSizeKb(g, 0)).toBe(g.pageSize / KiB);
    });
  });

  it('arm64-16k folds nothing but has a two-entry top level; arm64-64k folds the PGD', () => {
    expect(geometry('arm64-16k').entries[0]).toBe(2);
    expect(geometry('arm64-64k').entries[0]).toBe(1);
    expect(geometry('arm64-64k').entries[1]).toBe(64);
  });
});

describe('order helpers', () => {
  it('ordersDescending lists set bits highest first', () => {
    expect(ordersDescending(0)).toEqual([]);
    expect(ordersDescending((1 << 9) | (1 << 4) | (1 << 2))).toEqual([9, 4, 2]);
  });
  it('highestOrder', () => {
    expect(highestOrder(1)).toBe(0);
    expect(highestOrder((1 << 13) | 1)).toBe(13);
    expect(highestOrder(0b110)).toBe(2);
  });
});
