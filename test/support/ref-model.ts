// Test support: an independent page-table lookup (vpn → pfn) written from the table layout, a
// Machine wrapper that checks the invariants after every operation, and the reference model the
// model-based test compares the simulator against.

import { expect } from 'vitest';
import { PG_ZERO } from '../../src/mm/folio.ts';
import type { Kernel } from '../../src/mm/kernel.ts';
import { levelIndex, pmdTableOf } from '../../src/mm/pagewalk.ts';
import {
  B_SPECIAL,
  B_WRITE,
  E_PRESENT,
  E_TABLE,
  E_TYPE_MASK,
  PMD,
  PTE,
} from '../../src/mm/pgtable.ts';
import type { Mm } from '../../src/mm/vma.ts';
import type { Machine } from '../../src/sim/machine.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** What maps one virtual page. */
export interface Resolved {
  kind: 'none' | 'zero' | 'page';
  /** Physical page (NO_PFN, -1, for none). */
  pfn: number;
  /** Mapped by a huge PMD leaf rather than a PTE. */
  huge: boolean;
  writable: boolean;
}

const NONE: Resolved = { kind: 'none', pfn: -1, huge: false, writable: false };

/** Resolve vpn through PGD → PUD → PMD (maybe a huge leaf) → PTE, from the raw table arrays. */
export function resolve(k: Kernel, mm: Mm, vpn: number): Resolved {
  const pmdT = pmdTableOf(k, mm, vpn);
  if (!pmdT) return NONE;
  const pmd = k.pt.pmd;
  const pmdSlot = pmdT * pmd.entriesPerTable + levelIndex(k, vpn, PMD);
  const pmdBits = pmd.bits[pmdSlot];
  const pmdType = pmdBits & E_TYPE_MASK;
  if (pmdType === E_PRESENT) {
    const pfn = pmd.val[pmdSlot] + (vpn % k.geo.ptrsPerPte);
    const zero = (k.folios.flags[pmd.val[pmdSlot]] & PG_ZERO) !== 0;
    return {
      kind: zero ? 'zero' : 'page',
      pfn,
      huge: true,
      writable: (pmdBits & B_WRITE) !== 0,
    };
  }
  if (pmdType !== E_TABLE) return NONE;
  const pte = k.pt.pte;
  const pteSlot = pmd.val[pmdSlot] * pte.entriesPerTable + levelIndex(k, vpn, PTE);
  const bits = pte.bits[pteSlot];
  if ((bits & E_TYPE_MASK) !== E_PRESENT) return NONE;
  const pfn = pte.val[pteSlot];
  const zero = (bits & B_SPECIAL) !== 0 || pfn === k.zeroPfn;
  return { kind: zero ? 'zero' : 'page', pfn, huge: false, writable: (bits & B_WRITE) !== 0 };
}

/** The value a user read of vpn would see without faulting: 0 for none or the zero page. */
export function pageValue(k: Kernel, mm: Mm, vpn: number): number {
  const r = resolve(k, mm, vpn);
  return r.kind === 'page' ? k.folios.data[r.pfn] : 0;
}

/** Head pfn of the folio mapping vpn, or -1. */
export function folioAt(k: Kernel, mm: Mm, vpn: number): number {
  const r = resolve(k, mm, vpn);
  return r.kind === 'page' ? k.folios.headOf(r.pfn) : -1;
}

/** Order of the folio mapping vpn, or -1 when nothing (or the zero page) maps it. */
export function orderAt(k: Kernel, mm: Mm, vpn: number): number {
  const head = folioAt(k, mm, vpn);
  return head < 0 ? -1 : k.folios.order[head];
}

/**
 * A Machine whose every method call is followed by checkInvariants (which, under strictLocks,
 * also fails when any lock is still held). Errors of the call itself propagate unchanged.
 */
export function checked(m: Machine): Machine {
  return new Proxy(m, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function' || prop === 'checkInvariants' || prop === 'constructor') return v;
      return (...args: unknown[]) => {
        let result: unknown;
        try {
          result = (v as (...a: unknown[]) => unknown).apply(target, args);
        } catch (callError) {
          // After a failing call the invariants must hold as well; report the original error.
          try {
            target.checkInvariants();
          } catch (e) {
            throw new Error(
              `invariants broken after ${String(prop)} threw ${String(callError)}: ${String(e)}`,
              { cause: e },
            );
          }
          throw callError;
        }
        target.checkInvariants();
        return result;
      };
    },
  });
}

/** smaps summed over every VMA of mm, in kB. */
export function smapsTotal(m: Machine, mm: Mm) {
  const t = {
    Rss: 0,
    Anonymous: 0,
    AnonHugePages: 0,
    Size: 0,
    byOrder: {} as Record<number, number>,
  };
  for (const e of m.smaps(mm)) {
    t.Rss += e.Rss;
    t.Anonymous += e.Anonymous;
    t.AnonHugePages += e.AnonHugePages;
    t.Size += e.Size;
    for (const [o, kb] of Object.entries(e.byOrder))
      t.byOrder[Number(o)] = (t.byOrder[Number(o)] ?? 0) + kb;
  }
  return t;
}

// ---- the reference model --------------------------------------------------------------------

/** A half-open range of virtual page numbers. */
export interface Range {
  start: number;
  end: number;
}

/** One process as the reference sees it: which pages are mapped and what was last written. */
export class RefProc {
  /** Sorted, disjoint, non-adjacent ranges of mapped pages. */
  ranges: Range[] = [];
  /** vpn → last value written; absent means never written or discarded (reads as 0). */
  readonly values = new Map<number, number>();

  get mappedPages(): number {
    return this.ranges.reduce((n, r) => n + r.end - r.start, 0);
  }

  isMapped(vpn: number): boolean {
    return this.ranges.some((r) => vpn >= r.start && vpn < r.end);
  }

  /** The i-th mapped page (i taken modulo the mapped count), or -1 when nothing is mapped. */
  nthMapped(i: number): number {
    const n = this.mappedPages;
    if (n === 0) return -1;
    let rest = i % n;
    for (const r of this.ranges) {
      if (rest < r.end - r.start) return r.start + rest;
      rest -= r.end - r.start;
    }
    return -1;
  }

  map(start: number, end: number): void {
    this.ranges.push({ start, end });
    this.normalize();
  }

  unmap(start: number, end: number): void {
    const out: Range[] = [];
    for (const r of this.ranges) {
      if (r.end <= start || r.start >= end) out.push(r);
      else {
        if (r.start < start) out.push({ start: r.start, end: start });
        if (r.end > end) out.push({ start: end, end: r.end });
      }
    }
    this.ranges = out;
    this.discard(start, end);
  }

  /** MADV_DONTNEED / unmap: the values are gone; the pages read as zero again. */
  discard(start: number, end: number): void {
    for (const vpn of [...this.values.keys()])
      if (vpn >= start && vpn < end) this.values.delete(vpn);
  }

  write(vpn: number, value: number): void {
    this.values.set(vpn, value);
  }

  read(vpn: number): number {
    return this.values.get(vpn) ?? 0;
  }

  clear(): void {
    this.ranges = [];
    this.values.clear();
  }

  private normalize(): void {
    this.ranges.sort((a, b) => a.start - b.start);
    const out: Range[] = [];
    for (const r of this.ranges) {
      const last = out[out.length - 1];
      if (last && r.start < last.end) throw new Error('reference: overlapping mappings');
      if (last && r.start === last.end) last.end = r.end;
      else out.push({ ...r });
    }
    this.ranges = out;
  }
}

/** Merge the VMAs of an mm into maximal ranges (adjacent VMAs with different flags join). */
export function vmaRanges(mm: Mm): Range[] {
  const out: Range[] = [];
  for (const v of mm.vmas) {
    const last = out[out.length - 1];
    if (last && last.end === v.start) last.end = v.end;
    else out.push({ start: v.start, end: v.end });
  }
  return out;
}

/**
 * Values of every page in [start, end) as a user read would see them without faulting (0 for
 * none and the zero pages), reading each PMD entry once: cheap enough to run after every command.
 */
export function rangeValues(k: Kernel, mm: Mm, start: number, end: number): Int32Array {
  const out = new Int32Array(end - start);
  const ptrs = k.geo.ptrsPerPte;
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  const f = k.folios;
  for (let s = start; s < end;) {
    const blockEnd = Math.min(end, (Math.floor(s / ptrs) + 1) * ptrs);
    const pmdT = pmdTableOf(k, mm, s);
    if (pmdT) {
      const slot = pmdT * pmd.entriesPerTable + levelIndex(k, s, PMD);
      const type = pmd.bits[slot] & E_TYPE_MASK;
      if (type === E_PRESENT) {
        const head = pmd.val[slot];
        if (!(f.flags[head] & PG_ZERO))
          for (let v = s; v < blockEnd; v++) out[v - start] = f.data[head + (v % ptrs)];
      } else if (type === E_TABLE) {
        const base = pmd.val[slot] * pte.entriesPerTable;
        for (let v = s; v < blockEnd; v++) {
          const i = base + (v % ptrs);
          const bits = pte.bits[i];
          if ((bits & E_TYPE_MASK) === E_PRESENT && !(bits & B_SPECIAL))
            out[v - start] = f.data[pte.val[i]];
        }
      }
    }
    s = blockEnd;
  }
  return out;
}

/**
 * Compare one process of the simulator with the reference: the same mapped ranges, every page the
 * reference knows a value for reads that value from a real (non-zero-page) mapping, and no other
 * page holds a non-zero value.
 */
export function compareProc(k: Kernel, mm: Mm, ref: RefProc): void {
  expect(vmaRanges(mm)).toEqual(ref.ranges);
  for (const [vpn, value] of ref.values) {
    const r = resolve(k, mm, vpn);
    if (r.kind !== 'page' || k.folios.data[r.pfn] !== value)
      throw new Error(
        `vpn ${vpn}: reference value ${value}, model ${r.kind} pfn ${r.pfn} value ${
          r.kind === 'page' ? k.folios.data[r.pfn] : 0
        }`,
      );
  }
  for (const range of ref.ranges) {
    const vals = rangeValues(k, mm, range.start, range.end);
    for (let i = 0; i < vals.length; i++) {
      const vpn = range.start + i;
      if (vals[i] !== ref.read(vpn))
        throw new Error(`vpn ${vpn}: reference value ${ref.read(vpn)}, model reads ${vals[i]}`);
    }
  }
}
