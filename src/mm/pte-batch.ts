// folio_pte_batch (mm/internal.h): how many consecutive PTEs map consecutive pages of one large
// folio, so that a caller unmaps, copies or marks them as one batch and the folio never looks
// partly mapped on the way. Every PTE-level walk that batches uses this one function.

import type { FolioTable } from './folio.ts';
import { B_CONT, B_DIRTY, B_SOFT_DIRTY, B_WRITE, B_YOUNG } from './pgtable.ts';

/**
 * Bits two PTEs of a batch may differ in unless the caller asks to respect them: dirty,
 * soft-dirty and writable (FPB_RESPECT_DIRTY, _SOFT_DIRTY, _WRITE), and young, which is always
 * ignored. The contiguous hint is ignored too: the model sets it per block, while the kernel's
 * arm64 contpte layer keeps it out of what generic code compares.
 */
const FPB_IGNORABLE = B_DIRTY | B_SOFT_DIRTY | B_WRITE | B_YOUNG | B_CONT;

/** folio_pte_batch_flags: keep batches apart where the dirty bits differ. */
export const FPB_RESPECT_DIRTY = B_DIRTY;
/** folio_pte_batch_flags: keep batches apart where the soft-dirty bits differ. */
export const FPB_RESPECT_SOFT_DIRTY = B_SOFT_DIRTY;
/** folio_pte_batch_flags: keep batches apart where the writable bits differ. */
export const FPB_RESPECT_WRITE = B_WRITE;

/**
 * folio_pte_batch / folio_pte_batch_flags: the number of entries from `at` on (at least 1, at
 * most maxNr and never past the folio's last page) that map the pages following the one the
 * entry at `at` maps, with the same type and bits but for the ignorable ones not in `respect`.
 * `bits` and `vals` are a PTE table's arrays (or a snapshot of one) and `at` an index into
 * them; the entry at `at` must map a page of the folio `head`. A plain function: the caller
 * holds the PTE lock (or the table is detached), so the entries cannot change meanwhile.
 */
export function folioPteBatch(
  folios: FolioTable,
  head: number,
  bits: Uint16Array,
  vals: Int32Array,
  at: number,
  maxNr: number,
  respect = 0,
): number {
  const pfn = vals[at];
  const limit = Math.min(maxNr, head + folios.nrPagesOf(head) - pfn);
  const first = bits[at];
  const compared = ~(FPB_IGNORABLE & ~respect);
  let nr = 1;
  while (nr < limit && vals[at + nr] === pfn + nr && ((bits[at + nr] ^ first) & compared) === 0)
    nr++;
  return nr;
}
