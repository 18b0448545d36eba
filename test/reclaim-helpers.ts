// Helpers shared by the reclaim tests: a machine with strict locks, and a read-back of a page's
// content straight from the page tables (present page, swap slot or nothing), without faulting.

import { E_PRESENT, E_SWAP, E_TYPE_MASK } from '../src/mm/pgtable.ts';
import { walkRange } from '../src/mm/walk.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const PAGE = 4 * KiB;
export const PMD = 2 * MiB;

export function machine(swapBytes: number, ramBytes = 64 * MiB): Machine {
  return new Machine({ geometry: 'x86-64-4k', ramBytes, swapBytes, strictLocks: true });
}

/** The content token of the page at addr: its frame's data, its swap slot's data, or 0. */
export function readBack(m: Machine, mm: Mm, addr: number): number {
  const k = m.kernel;
  const vpn = Math.floor(addr / k.geo.pageSize);
  let v = 0;
  walkRange(k, mm, vpn, vpn + 1, {
    pmd(base, _t, _i, _bits, head) {
      v = k.folios.data[head + (vpn - base)];
    },
    pte(_vpn, _t, _i, bits, val) {
      const type = bits & E_TYPE_MASK;
      if (type === E_SWAP) v = k.swap.data[val];
      else if (type === E_PRESENT) v = k.folios.data[val];
    },
  });
  return v;
}

/** Contents of every page of [addr, addr + len). */
export function readAll(m: Machine, mm: Mm, addr: number, len: number): number[] {
  const out: number[] = [];
  for (let a = addr; a < addr + len; a += PAGE) out.push(readBack(m, mm, a));
  return out;
}

/** smaps of the VMA containing addr. */
export function smapsAt(m: Machine, mm: Mm, addr: number) {
  const e = m.smaps(mm).find((v) => v.start <= addr && addr < v.end);
  if (!e) throw new Error(`no VMA at ${addr}`);
  return e;
}

/** Run an operation and check the invariants right after it. */
export function op<T>(m: Machine, f: () => T): T {
  const r = f();
  m.checkInvariants();
  return r;
}
