// Page-table geometry: the constants of include/asm/pgtable*.h and huge_mm.h for each supported
// architecture and base page size. Everything that scales with the geometry derives from here.

export type GeometryName = 'x86-64-4k' | 'arm64-4k' | 'arm64-16k' | 'arm64-64k';

export const GEOMETRY_NAMES: readonly GeometryName[] = [
  'x86-64-4k',
  'arm64-4k',
  'arm64-16k',
  'arm64-64k',
];

export interface Geometry {
  readonly name: GeometryName;
  readonly arch: 'x86-64' | 'arm64';
  readonly pageShift: number;
  readonly pageSize: number;
  /** Index bits per level, top (PGD) first: PGD, PUD, PMD, PTE. A level of 0 bits is folded. */
  readonly levelBits: readonly [number, number, number, number];
  /** Entries per table at each level (PGD, PUD, PMD, PTE). */
  readonly entries: readonly [number, number, number, number];
  readonly vaBits: number;
  /** PTEs per PTE table; also pages per PMD-sized folio (HPAGE_PMD_NR). */
  readonly ptrsPerPte: number;
  /** HPAGE_PMD_ORDER = PMD_SHIFT - PAGE_SHIFT. */
  readonly pmdOrder: number;
  readonly pmdSize: number;
  /** Pages mapped by one PUD entry. */
  readonly pagesPerPud: number;
  /** THP_ORDERS_ALL_ANON as a bitmask: orders 2..PMD order. */
  readonly anonOrders: number;
  /** arm64 CONT_PTES (contiguous-PTE block, in pages); 1 where the arch has none. */
  readonly contPtes: number;
  /** MAX_PAGE_ORDER of the buddy allocator. */
  readonly maxPageOrder: number;
}

function make(
  name: GeometryName,
  arch: Geometry['arch'],
  pageShift: number,
  levelBits: [number, number, number, number],
  contShift: number,
): Geometry {
  const ptrsPerPte = 1 << levelBits[3];
  const pmdOrder = levelBits[3];
  let anonOrders = 0;
  for (let o = 2; o <= pmdOrder; o++) anonOrders |= 1 << o;
  return {
    name,
    arch,
    pageShift,
    pageSize: 2 ** pageShift,
    levelBits,
    entries: levelBits.map((b) => 2 ** b) as unknown as [number, number, number, number],
    vaBits: pageShift + levelBits[0] + levelBits[1] + levelBits[2] + levelBits[3],
    ptrsPerPte,
    pmdOrder,
    pmdSize: 2 ** (pageShift + pmdOrder),
    pagesPerPud: 2 ** (levelBits[2] + levelBits[3]),
    anonOrders,
    contPtes: 2 ** contShift,
    maxPageOrder: Math.max(10, pmdOrder),
  };
}

const TABLE: Record<GeometryName, Geometry> = {
  // 48-bit VA, 4 levels of 9 bits.
  'x86-64-4k': make('x86-64-4k', 'x86-64', 12, [9, 9, 9, 9], 0),
  'arm64-4k': make('arm64-4k', 'arm64', 12, [9, 9, 9, 9], 4),
  // 48-bit VA with 16K pages: the top level holds 2 entries.
  'arm64-16k': make('arm64-16k', 'arm64', 14, [1, 11, 11, 11], 7),
  // 48-bit VA: PTE and PMD levels of 13 bits, PUD of 6 bits, PGD folded.
  'arm64-64k': make('arm64-64k', 'arm64', 16, [0, 6, 13, 13], 5),
};

export function geometry(name: GeometryName): Geometry {
  const g = TABLE[name];
  if (!g)
    throw new Error(`unknown geometry '${name}' (expected one of ${GEOMETRY_NAMES.join(', ')})`);
  return g;
}

/** Size in kB of a folio of the given order: the name of its hugepages-<size>kB directory. */
export function orderSizeKb(g: Geometry, order: number): number {
  return (g.pageSize / 1024) * 2 ** order;
}

/** Orders present in a bitmask, highest first. */
export function ordersDescending(mask: number): number[] {
  const out: number[] = [];
  for (let o = 31; o >= 0; o--) if (mask & (1 << o)) out.push(o);
  return out;
}

/** highest_order(): the highest order set in a non-empty mask. */
export function highestOrder(mask: number): number {
  return 31 - Math.clz32(mask);
}
