// A read-only walk over the mappings of a range (the shape of walk_page_range for reports and
// invariant checks): calls back once per huge PMD and once per non-none PTE.

import type { Kernel } from './kernel.ts';
import { levelIndex, pmdTableOf } from './pagewalk.ts';
import { E_NONE, E_PRESENT, E_TABLE, E_TYPE_MASK, PMD } from './pgtable.ts';
import type { Mm } from './vma.ts';

export interface MappingVisitor {
  /** A huge PMD leaf mapping [vpn, vpn + HPAGE_PMD_NR). */
  pmd(vpn: number, pmdT: number, pmdI: number, bits: number, val: number): void;
  /** A non-none PTE. */
  pte(vpn: number, pteT: number, pteI: number, bits: number, val: number): void;
}

export function walkRange(k: Kernel, mm: Mm, start: number, end: number, v: MappingVisitor): void {
  const ptrs = k.geo.ptrsPerPte;
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  for (let s = start; s < end;) {
    const base = Math.floor(s / ptrs) * ptrs;
    const e = Math.min(end, base + ptrs);
    const pmdT = pmdTableOf(k, mm, s);
    if (pmdT) {
      const pmdI = levelIndex(k, s, PMD);
      const bits = pmd.getBits(pmdT, pmdI);
      const type = bits & E_TYPE_MASK;
      if (type === E_PRESENT) v.pmd(base, pmdT, pmdI, bits, pmd.getVal(pmdT, pmdI));
      else if (type === E_TABLE) {
        const pteT = pmd.getVal(pmdT, pmdI);
        const off = pteT * pte.entriesPerTable;
        for (let vpn = s; vpn < e; vpn++) {
          const i = vpn - base;
          const b = pte.bits[off + i];
          if ((b & E_TYPE_MASK) !== E_NONE) v.pte(vpn, pteT, i, b, pte.val[off + i]);
        }
      }
    }
    s = e;
  }
}
