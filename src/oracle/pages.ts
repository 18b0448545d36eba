// Per-page views of a mapping on both sides of the oracle, in the helper's encoding: what
// /proc/PID/pagemap and /proc/kpageflags say about each page (present, swapped, exclusive, zero
// page, THP, compound head/tail, anon) and the order of its folio. The model side reads the
// same facts from the model's page tables and folio table; the kernel side asks the helper.

import { NO_PFN } from '../mm/kernel.ts';
import { PG_ANON } from '../mm/folio.ts';
import { E_PRESENT, E_SWAP, E_TYPE_MASK } from '../mm/pgtable.ts';
import type { Mm } from '../mm/vma.ts';
import { walkRange } from '../mm/walk.ts';
import { Machine } from '../sim/machine.ts';

export const P_PRESENT = 1;
export const P_SWAP = 2;
export const P_EXCLUSIVE = 4;
export const P_ZERO = 8;
export const P_THP = 16;
export const P_HEAD = 32;
export const P_TAIL = 64;
export const P_ANON = 128;
export const orderOf = (code: number): number => code >> 8;

/** One symbol per page: '.' none, 's' swap entry, 'z' the zero page, else the folio order. */
export function pageSymbol(code: number): string {
  if (code & P_PRESENT) return code & P_ZERO ? 'z' : String(orderOf(code));
  return code & P_SWAP ? 's' : '.';
}

/** Exclusivity of a present, non-zero page: 'e' mapped once, 'S' mapped more than once. */
export function shareSymbol(code: number): string {
  if (!(code & P_PRESENT) || code & P_ZERO) return '-';
  return code & P_EXCLUSIVE ? 'e' : 'S';
}

/** Run-length text of a symbol string: "0*3 .*509". */
export function rle(s: string): string {
  const out: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = i;
    while (j < s.length && s[j] === s[i]) j++;
    out.push(j - i > 1 ? `${s[i]}*${j - i}` : s[i]);
    i = j;
  }
  return out.join(' ');
}

/** A named mapping of a process: the range its VMAs span. */
export interface Region {
  name: string;
  start: number;
  end: number;
}

/** What the oracle reads from either side besides the runner's own results. */
export interface OracleSide {
  /** Live processes, in creation order. */
  liveProcs(): Array<{ name: string; mm: Mm }>;
  regions(mm: Mm): Region[];
  /** Page codes of n pages from addr. */
  pageCodes(mm: Mm, addr: number, n: number): number[];
  /** The compared counters (since the run started). */
  counters(): Record<string, number>;
}

/** The per-size stats the oracle compares (collapse_* only where the kernel has them). */
export const COMPARED_STATS = ['anon_fault_alloc', 'nr_anon', 'split'];
export const COMPARED_COLLAPSE_STATS = ['collapse_alloc', 'collapse_alloc_failed'];

/** The model with process tracking and the oracle's views. */
export class ModelMachine extends Machine implements OracleSide {
  private readonly procs: Array<{ name: string; mm: Mm; live: boolean }> = [];
  /** Counters also compared: collapse_* when the kernel has them. */
  collapseStats = false;

  override spawn(name: string): Mm {
    const mm = super.spawn(name);
    this.procs.push({ name, mm, live: true });
    return mm;
  }

  override fork(parent: Mm, childName: string): Mm {
    const mm = super.fork(parent, childName);
    this.procs.push({ name: childName, mm, live: true });
    return mm;
  }

  override exit(mm: Mm): void {
    super.exit(mm);
    for (const p of this.procs) if (p.mm === mm) p.live = false;
  }

  liveProcs(): Array<{ name: string; mm: Mm }> {
    return this.procs.filter((p) => p.live).map(({ name, mm }) => ({ name, mm }));
  }

  regions(mm: Mm): Region[] {
    const by = new Map<string, Region>();
    for (const v of this.smaps(mm)) {
      const r = by.get(v.name);
      if (!r) by.set(v.name, { name: v.name, start: v.start, end: v.end });
      else {
        r.start = Math.min(r.start, v.start);
        r.end = Math.max(r.end, v.end);
      }
    }
    return [...by.values()];
  }

  pageCodes(mm: Mm, addr: number, n: number): number[] {
    return modelPages(this, mm, addr, n);
  }

  counters(): Record<string, number> {
    return sideCounters(
      this.khugepaged().pages_collapsed,
      this.mthpStats(),
      this.vmstat(),
      this.collapseStats,
    );
  }
}

/** The counters compared, from a side's khugepaged count, per-size stats and vmstat. */
export function sideCounters(
  pagesCollapsed: number,
  mthp: Record<string, Record<string, number>>,
  vmstat: Record<string, number>,
  collapseStats: boolean,
): Record<string, number> {
  const out: Record<string, number> = { 'khugepaged/pages_collapsed': pagesCollapsed };
  for (const n of ['thp_fault_alloc', 'thp_collapse_alloc', 'thp_split_pmd'])
    out[n] = vmstat[n] ?? 0;
  const names = collapseStats ? [...COMPARED_STATS, ...COMPARED_COLLAPSE_STATS] : COMPARED_STATS;
  for (const [size, row] of Object.entries(mthp))
    for (const n of names) if (row[n] !== undefined) out[`${size}/${n}`] = row[n];
  return out;
}

/** The model's page codes for n pages from addr (as the helper reports the kernel's). */
export function modelPages(m: Machine, mm: Mm, addr: number, n: number): number[] {
  const k = m.kernel;
  const ps = k.geo.pageSize;
  const first = Math.floor(addr / ps);
  const out = new Array<number>(n).fill(0);
  const f = k.folios;
  const code = (pfn: number, mappedOnce: boolean): number => {
    const head = f.headOf(pfn);
    const order = f.order[head];
    const zero = pfn === k.zeroPfn || (k.hugeZeroPfn !== NO_PFN && head === k.hugeZeroPfn);
    let c = P_PRESENT;
    if (zero) c |= P_ZERO;
    else if (mappedOnce) c |= P_EXCLUSIVE;
    if (order > 0) c |= P_THP | (pfn === head ? P_HEAD : P_TAIL);
    if (f.flags[head] & PG_ANON) c |= P_ANON;
    return c | (order << 8);
  };
  walkRange(k, mm, first, first + n, {
    pmd: (base, _t, _i, _bits, head) => {
      // pagemap decides PM_MMAP_EXCLUSIVE for a PMD mapping from the mapcount of the page the
      // PMD points at (the folio's first page), for every page of it.
      const once = f.pageMapcount(head) === 1;
      for (let v = Math.max(base, first); v < Math.min(base + k.geo.ptrsPerPte, first + n); v++)
        out[v - first] = code(head + (v - base), once);
    },
    pte: (vpn, _t, _i, bits, val) => {
      const type = bits & E_TYPE_MASK;
      if (type === E_PRESENT) out[vpn - first] = code(val, f.pageMapcount(val) === 1);
      else if (type === E_SWAP) out[vpn - first] = P_SWAP;
    },
  });
  return out;
}
