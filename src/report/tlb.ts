// An estimate of TLB reach and misses for a run's access stream. It is a model, not a measurement:
//
// - Two levels. The first level has 64 entries for base-page translations (a contpte block's
//   entry counts as one) and 32 for PMD translations, each fully associative with LRU
//   replacement. The second level is one unified, fully associative LRU of 1536 entries that
//   holds every size (as the STLB of recent x86 cores and the arm64 L2 TLB do).
// - An entry maps what the page table says at the moment of the access: a huge PMD maps the PMD
//   size; on arm64 a PTE in a naturally aligned block of CONT_PTES present PTEs that map
//   consecutive pages of one folio (what the contpte code marks PTE_CONT) maps the whole block;
//   any other PTE maps one page. On x86-64
//   no coalescing of adjacent PTEs is assumed (AMD's PTE coalescing is not modelled).
// - A second-level miss is a page walk: that is the "miss" counted. Page-walk caches, prefetch,
//   instruction fetches, speculative accesses and huge-page splintering are not modelled.
// - TLB flushes (collapse, munmap, COW, reclaim) are not modelled: entries are keyed by their
//   size and address, so an entry for a mapping that changed size simply ages out.
// - Each process's entries are tagged with its mm (ASID-like); no flush at context switch.
// - The accesses are the workload's touch/write/populate accesses, one per page (or stride), in
//   timeline order; khugepaged's and the kernel's own accesses are not counted.
//
// The baseline is the same access stream with every translation a base page.

import { B_CONT, B_SPECIAL, E_PRESENT, E_TABLE, E_TYPE_MASK, PMD } from '../mm/pgtable.ts';
import { levelIndex, pmdTableOf } from '../mm/pagewalk.ts';
import type { Kernel } from '../mm/kernel.ts';
import type { Mm } from '../mm/vma.ts';
import { type TlbClass, type TlbEstimate, orderLabel } from './model.ts';

export const TLB_L1_BASE = 64;
export const TLB_L1_HUGE = 32;
export const TLB_L2 = 1536;

export const TLB_MODEL =
  'two-level LRU: L1 64 base-page + 32 PMD entries, unified L2 1536 entries; miss = L2 miss';
export const TLB_ASSUMPTIONS = [
  'fully associative LRU at both levels (real TLBs are set associative: conflict misses are not counted)',
  'a huge PMD maps the PMD size; on arm64 an aligned block of CONT_PTES present PTEs mapping consecutive pages of one folio (what contpte marks PTE_CONT) is one entry; on x86-64 no PTE coalescing',
  'TLB flushes and shootdowns are not modelled; entries are tagged with the mm (no flush on context switch)',
  'only the workload accesses (touch, write, populate: one per page or stride) are counted, in timeline order',
  'page-walk caches, prefetch, instruction fetches and speculation are not modelled',
];

/** A fully associative LRU set of tags (a Map keeps insertion order: the first key is LRU). */
class Lru {
  private readonly m = new Map<number, number>();
  constructor(private readonly cap: number) {}

  /** Look up and refresh; true on a hit. */
  hit(tag: number): boolean {
    const v = this.m.get(tag);
    if (v === undefined) return false;
    this.m.delete(tag);
    this.m.set(tag, v);
    return true;
  }

  insert(tag: number, cls: number): void {
    this.m.delete(tag);
    this.m.set(tag, cls);
    if (this.m.size > this.cap) this.m.delete(this.m.keys().next().value as number);
  }

  classes(): number[] {
    return [...this.m.values()];
  }
}

/** Classes: 0 base page, 1 contpte block, 2 PMD. */
const C_BASE = 0;
const C_CONT = 1;
const C_PMD = 2;

class TwoLevelTlb {
  readonly l1 = [new Lru(TLB_L1_BASE), new Lru(TLB_L1_BASE), new Lru(TLB_L1_HUGE)];
  readonly l2 = new Lru(TLB_L2);
  l1Misses = 0;
  misses = 0;

  access(tag: number, cls: number): void {
    // The base-page and contpte entries share the base-page L1.
    const l1 = this.l1[cls === C_PMD ? C_PMD : C_BASE];
    if (l1.hit(tag)) return;
    this.l1Misses++;
    if (!this.l2.hit(tag)) {
      this.misses++;
      this.l2.insert(tag, cls);
    }
    l1.insert(tag, cls);
  }
}

/** Feeds accesses to the model; reads the mapping size from the page tables after each access. */
export class TlbModel {
  private readonly tlb = new TwoLevelTlb();
  private readonly base = new TwoLevelTlb();
  private readonly counts = [0, 0, 0];
  private accesses = 0;

  constructor(private readonly k: Kernel) {}

  /** The translation size class of vpn in mm now (C_BASE if it is not mapped). */
  private classOf(mm: Mm, vpn: number): number {
    const k = this.k;
    const pmdT = pmdTableOf(k, mm, vpn);
    if (!pmdT) return C_BASE;
    const pmdI = levelIndex(k, vpn, PMD);
    const bits = k.pt.pmd.getBits(pmdT, pmdI);
    const type = bits & E_TYPE_MASK;
    if (type === E_PRESENT) return C_PMD;
    if (k.geo.contPtes <= 1 || type !== E_TABLE) return C_BASE;
    const pteT = k.pt.pmd.getVal(pmdT, pmdI);
    const off = pteT * k.pt.pte.entriesPerTable;
    const i = vpn % k.geo.ptrsPerPte;
    const b = k.pt.pte.bits[off + i];
    if ((b & E_TYPE_MASK) !== E_PRESENT || (b & B_SPECIAL) !== 0) return C_BASE;
    if (b & B_CONT) return C_CONT;
    // What arm64's contpte code marks PTE_CONT: an aligned block of CONT_PTES present PTEs that
    // map consecutive pages of one folio.
    const n = k.geo.contPtes;
    const first = i - (i % n);
    const pfn0 = k.pt.pte.val[off + first];
    const head = k.folios.headOf(pfn0);
    if (k.folios.order[head] < Math.log2(n)) return C_BASE;
    for (let j = 0; j < n; j++) {
      const bj = k.pt.pte.bits[off + first + j];
      if ((bj & E_TYPE_MASK) !== E_PRESENT || (bj & B_SPECIAL) !== 0) return C_BASE;
      const p = k.pt.pte.val[off + first + j];
      if (p !== pfn0 + j || k.folios.headOf(p) !== head) return C_BASE;
    }
    return C_CONT;
  }

  access(mm: Mm, vpn: number): void {
    const cls = this.classOf(mm, vpn);
    const g = this.k.geo;
    const span = cls === C_PMD ? g.ptrsPerPte : cls === C_CONT ? g.contPtes : 1;
    // Tag: mm, class, aligned virtual page (exact in a double up to 2^53).
    const tag = (Math.floor(vpn / span) * 4 + cls) * 4096 + (mm.id % 4096);
    this.tlb.access(tag, cls);
    this.base.access(vpn * 4096 + (mm.id % 4096), C_BASE);
    this.counts[cls]++;
    this.accesses++;
  }

  estimate(): TlbEstimate {
    const g = this.k.geo;
    const pageKb = g.pageSize / 1024;
    const sizes = [g.pageSize, g.pageSize * g.contPtes, g.pmdSize];
    const names = [
      orderLabel(0, pageKb),
      `${orderLabel(Math.log2(g.contPtes), pageKb)} (contpte)`,
      orderLabel(g.pmdOrder, pageKb),
    ];
    const resident = [0, 0, 0];
    for (const c of this.tlb.l2.classes()) resident[c]++;
    const classes: TlbClass[] = [];
    for (const c of [C_BASE, C_CONT, C_PMD]) {
      if (c === C_CONT && g.contPtes <= 1) continue;
      classes.push({
        name: names[c],
        bytes: sizes[c],
        accesses: this.counts[c],
        resident: resident[c],
      });
    }
    return {
      model: TLB_MODEL,
      assumptions: TLB_ASSUMPTIONS,
      accesses: this.accesses,
      l1Misses: this.tlb.l1Misses,
      misses: this.tlb.misses,
      missRate: this.accesses ? this.tlb.misses / this.accesses : 0,
      baselineMisses: this.base.misses,
      classes,
      reachBytes: resident.reduce((a, n, c) => a + n * sizes[c], 0),
      baseReachBytes: TLB_L2 * g.pageSize,
    };
  }
}
