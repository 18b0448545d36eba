// Migration entries at PTE level: make_readable_migration_entry (what try_to_migrate and the
// rounds collapse store over a quiesced source) and migration_entry_wait (what a fault on one
// does: sleep until the folio lock is released, then refault).

import { E_MIGRATION, E_TYPE_MASK } from './pgtable.ts';
import type { Kernel } from './kernel.ts';
import { pteRelock, pteUnmapUnlock } from './pagewalk.ts';
import { L_FOLIO_LOCK, type Step, lock, unlock } from './step.ts';

/** The bits of a readable migration entry replacing a present PTE (soft-dirty kept). */
export function makeReadableMigrationEntry(presentBits: number, softDirtyBit: number): number {
  return E_MIGRATION | (presentBits & softDirtyBit);
}

/** is_migration_entry for the PTE at idx of pteT, naming pfn (or any pfn when pfn < 0). */
export function isMigrationEntry(k: Kernel, pteT: number, idx: number, pfn = -1): boolean {
  const pte = k.pt.pte;
  if ((pte.getBits(pteT, idx) & E_TYPE_MASK) !== E_MIGRATION) return false;
  return pfn < 0 || pte.getVal(pteT, idx) === pfn;
}

/**
 * migration_entry_wait: under the PTE lock, recheck that the entry is still a migration entry,
 * then wait for its folio's lock (migration_entry_wait_on_locked). The folio lock is held by
 * whoever raised the barrier until it lowers it, so the fault sleeps instead of spinning.
 */
export function* migrationEntryWait(
  k: Kernel,
  pmdT: number,
  pmdI: number,
  pteT: number,
  idx: number,
): Step<void> {
  if (!((yield pteRelock(k, pmdT, pmdI, pteT)) as boolean)) return;
  if (!isMigrationEntry(k, pteT, idx)) {
    yield* pteUnmapUnlock(pteT);
    return;
  }
  const head = k.folios.headOf(k.pt.pte.getVal(pteT, idx));
  yield* pteUnmapUnlock(pteT);
  yield lock(L_FOLIO_LOCK, head);
  yield unlock(L_FOLIO_LOCK, head);
}
