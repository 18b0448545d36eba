// Fields the walkers share in case files: a page of the PMD range, a VMA by name, and the
// lookups that tie them to the world (which VMA maps a page, where the range starts).

import { z } from 'zod';
import type { Vma } from '../../mm/vma.ts';
import type { CheckWorld } from '../world.ts';
import { WalkerArgError, type WorldInfo, type WorldVma } from './types.ts';

/** Pages per PMD range (4 KiB pages on x86-64 and arm64: 512). */
export const RANGE_PAGES = 512;

/** A page index from the start of the PMD range. */
export const page = z
  .number()
  .int()
  .min(0)
  .max(RANGE_PAGES - 1);
/** A VMA of the world, by its name. */
export const vmaName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, {
  error: 'expected a VMA name like "A"',
});

/** The first page of the world's PMD range (every world VMA lies in it). */
export function rangeBase(w: CheckWorld): number {
  const first = Object.values(w.vmas)[0];
  const nr = w.k.geo.ptrsPerPte;
  return Math.floor(first.start / nr) * nr;
}

/** The world VMA named `name` (field says where the name was given). */
export function namedVma(info: WorldInfo, name: string, field = 'vma'): WorldVma {
  const v = info.vmas.find((x) => x.name === name);
  if (!v)
    throw new WalkerArgError(
      field,
      `no VMA "${name}" in the world (it has ${info.vmas.map((x) => x.name).join(', ')})`,
    );
  return v;
}

/** The world VMA mapping `p`, or the named one, which must then map it. */
export function vmaOfPage(info: WorldInfo, p: number, name?: string): WorldVma {
  if (name !== undefined) {
    const v = namedVma(info, name);
    if (p < v.from || p >= v.to)
      throw new WalkerArgError(
        'page',
        `page ${p} is not in VMA ${name} (pages ${v.from}..${v.to - 1})`,
      );
    return v;
  }
  const v = info.vmas.find((x) => p >= x.from && p < x.to);
  if (!v) throw new WalkerArgError('page', `no VMA of the world maps page ${p}`);
  return v;
}

/** A page that must hold a folio when the threads start (what an rmap walk starts from). */
export function populatedPage(info: WorldInfo, p: number): void {
  if (!info.populated.has(p))
    throw new WalkerArgError('page', `page ${p} holds no folio when the threads start`);
}

/** The world's Vma for a WorldVma. */
export function worldVma(w: CheckWorld, v: WorldVma): Vma {
  return w.vmas[v.name];
}
