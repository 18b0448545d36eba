// folio_ref_freeze / folio_ref_unfreeze: the second quiescence barrier of migration (after the
// migration entries). A frozen folio has a zero reference count while it is still allocated, so
// every speculative folio_try_get (GUP-fast, rmap walkers, the page-cache lookups) fails on it.

import type { FolioTable } from './folio.ts';
import { PG_FILE, PG_HEAD, PG_SWAPCACHE } from './folio.ts';
import type { Kernel } from './kernel.ts';

/**
 * folio_expected_ref_count: the references the folio's mappings, the swap cache and the page
 * cache account for. Pins are not in it: a pinned folio holds more and never freezes.
 */
export function folioExpectedRefCount(f: FolioTable, head: number): number {
  let r = f.mapcount[head];
  if (f.flags[head] & (PG_SWAPCACHE | PG_FILE)) r += 1 << f.order[head];
  return r;
}

/** folio_ref_freeze: set the count to 0 if it is exactly `count`. */
export function folioRefFreeze(k: Kernel, head: number, count: number): boolean {
  const f = k.folios;
  if (f.refcount[head] !== count) return false;
  f.refcount[head] = 0;
  return true;
}

/** folio_ref_unfreeze: give a frozen folio its count back. */
export function folioRefUnfreeze(k: Kernel, head: number, count: number): void {
  const f = k.folios;
  if (f.refcount[head] !== 0 || !(f.flags[head] & PG_HEAD))
    throw new Error(`folio ${head}: unfreeze of a folio that is not frozen`);
  f.refcount[head] = count;
}

/**
 * Whether a zero count means frozen rather than freed: the folio is still allocated. Checks that
 * call a refcount-0 page "free" must ask this, or a write through a TLB entry that the freeze has
 * not flushed yet (the kernel's own order: freeze, then flush) reads as a use after free.
 */
export function folioRefFrozen(f: FolioTable, head: number): boolean {
  return f.refcount[head] === 0 && (f.flags[head] & PG_HEAD) !== 0;
}

/** folio_try_get: a reference unless the folio is frozen or free. */
export function folioTryGet(k: Kernel, head: number): boolean {
  if (k.folios.refcount[head] <= 0) return false;
  k.folioGet(head);
  return true;
}
