// What /proc reports, computed by walking the page tables as the kernel's smaps walk does:
// per-VMA smaps fields and a per-order breakdown of the pages mapped.

import { PG_ANON, PG_ZERO } from './folio.ts';
import type { Kernel } from './kernel.ts';
import { B_SPECIAL, E_PRESENT, E_SWAP, E_TYPE_MASK } from './pgtable.ts';
import type { Vma } from './vma.ts';
import { walkRange } from './walk.ts';

export interface SmapsCounts {
  /** In pages. */
  rss: number;
  anonymous: number;
  anonHugePages: number;
  swap: number;
  /** Mapped pages per folio order. */
  byOrder: Map<number, number>;
}

/** smaps_pte_range / smaps_pmd_entry for one VMA. */
export function smapsCounts(k: Kernel, vma: Vma): SmapsCounts {
  const f = k.folios;
  const n = k.geo.ptrsPerPte;
  const c: SmapsCounts = { rss: 0, anonymous: 0, anonHugePages: 0, swap: 0, byOrder: new Map() };
  const add = (order: number, pages: number) =>
    c.byOrder.set(order, (c.byOrder.get(order) ?? 0) + pages);
  walkRange(k, vma.mm, vma.start, vma.end, {
    pmd(_vpn, _t, _i, _bits, head) {
      if (f.flags[head] & PG_ZERO) return;
      c.rss += n;
      add(f.order[head], n);
      if (f.flags[head] & PG_ANON) {
        c.anonymous += n;
        c.anonHugePages += n;
      }
    },
    pte(_vpn, _t, _i, bits, val) {
      const type = bits & E_TYPE_MASK;
      if (type === E_SWAP) c.swap++;
      if (type !== E_PRESENT || bits & B_SPECIAL) return;
      const head = f.headOf(val);
      c.rss++;
      add(f.order[head], 1);
      if (f.flags[head] & PG_ANON) c.anonymous++;
    },
  });
  return c;
}
