// folio_lock, folio_trylock and folio_unlock: the folio lock (PG_locked), held across sleeping
// work on one folio (unmap, migration, collapse). The checker sees the lock as L_FOLIO_LOCK.

import { PG_LOCKED } from './folio.ts';
import type { Kernel } from './kernel.ts';
import { L_FOLIO_LOCK, type Step, lock, trylock, unlock } from './step.ts';

/** folio_lock: sleep until the folio lock is free, then take it. */
export function* folioLock(k: Kernel, head: number): Step<void> {
  yield lock(L_FOLIO_LOCK, head);
  k.folios.set(head, PG_LOCKED);
}

/**
 * folio_trylock: take the folio lock if it is free. A folio whose PG_locked another path set
 * without the lock (isolation for migration) counts as locked.
 */
export function* folioTrylock(k: Kernel, head: number): Step<boolean> {
  const got = (yield trylock(L_FOLIO_LOCK, head)) as boolean;
  if (!got) return false;
  if (k.folios.flags[head] & PG_LOCKED) {
    yield unlock(L_FOLIO_LOCK, head);
    return false;
  }
  k.folios.set(head, PG_LOCKED);
  return true;
}

/** folio_unlock. */
export function* folioUnlock(k: Kernel, head: number): Step<void> {
  k.folios.clear(head, PG_LOCKED);
  yield unlock(L_FOLIO_LOCK, head);
}
