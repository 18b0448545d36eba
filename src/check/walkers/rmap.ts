// Walkers that start from a folio rather than an address: the rmap walks (folio_referenced,
// migration, try_to_unmap) hold the anon_vma or i_mmap lock and no lock of the mm.

import { z } from 'zod';
import { tryToUnmapFile } from '../../mm/filemap.ts';
import { folioLock, folioUnlock } from '../../mm/folio-lock.ts';
import type { Kernel } from '../../mm/kernel.ts';
import { doMadvise } from '../../mm/madvise.ts';
import type { Step } from '../../mm/step.ts';
import { folioReferenced } from '../../walkers/folio-referenced.ts';
import { migrateFolio, rmapWalkAnon } from '../../walkers/rmap-walk.ts';
import { page, populatedPage, rangeBase, vmaOfPage } from './fields.ts';
import { WalkerArgError, walker } from './types.ts';

export const RMAP_WALK = walker({
  name: 'rmap-walk',
  kernel: 'folio_referenced',
  summary:
    "folio_referenced of a page's small anon folio: rmap_walk_anon (anon_vma read lock only) clearing the young bits under the PTE lock",
  args: z.strictObject({ page }),
  steps: { folio_referenced: folioReferenced, rmap_walk_anon: rmapWalkAnon },
  sample: (w, v) =>
    v.kind !== 'anon'
      ? { skip: `the anon rmap walk has no ${v.kind} folio` }
      : w.pmdMapped.has(v.from + 3)
        ? { skip: 'THP rmap walks and migration are not yet modelled' }
        : { page: v.from + 3 },
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    populatedPage(info, a.page);
    if (v.kind !== 'anon')
      throw new WalkerArgError(
        'page',
        `rmap-walk of a ${v.kind} folio is not yet modelled (anon only)`,
      );
    return {
      label: `rmap-walk ${v.name}[${a.page}]`,
      run: (w) => folioReferenced(w.k, w.pfns[`page${a.page}`]),
    };
  },
});

export const MIGRATE = walker({
  name: 'migrate',
  kernel: 'migrate_pages',
  summary:
    "migrate_pages of a page's small anon folio: folio trylock, try_to_migrate (migration entries) and remove_migration_ptes, by rmap walks only",
  args: z.strictObject({
    page,
    order: z
      .number()
      .int()
      .min(0)
      .max(0, { error: 'migration of mTHPs and PMD THPs is not yet modelled (order 0 only)' })
      .default(0),
  }),
  steps: { migrate_pages: migrateFolio },
  sample: (w, v) =>
    v.kind !== 'anon'
      ? { skip: `the anon rmap walk has no ${v.kind} folio` }
      : w.pmdMapped.has(v.from + 3)
        ? { skip: 'THP rmap walks and migration are not yet modelled' }
        : { page: v.from + 3 },
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    if (!info.populated.has(a.page))
      throw new WalkerArgError(
        'page',
        `page ${a.page} is not written in the world, so there is no folio to migrate`,
      );
    if (v.kind !== 'anon')
      throw new WalkerArgError(
        'page',
        `migration of a ${v.kind} folio is not yet modelled (anon only)`,
      );
    if (info.pmdMapped.has(a.page))
      throw new WalkerArgError(
        'page',
        `page ${a.page} is PMD-mapped: THP migration is not yet modelled`,
      );
    return {
      label: `migrate ${v.name}[${a.page}]`,
      run: (w) => migrateFolio(w.k, w.pfns[`page${a.page}`]),
    };
  },
});

/** shrink_folio_list's part for a page-cache folio: lock it, try_to_unmap, unlock. */
function* unmapFileFolio(k: Kernel, head: number): Step<void> {
  k.folioGet(head);
  yield* folioLock(k, head);
  yield* tryToUnmapFile(k, head);
  yield* folioUnlock(k, head);
  k.folioPut(head);
}

export const TRY_TO_UNMAP = walker({
  name: 'try-to-unmap',
  kernel: 'try_to_unmap',
  summary:
    "try_to_unmap of a page's folio: a file folio under its folio lock and i_mmap read lock; an anon folio through MADV_PAGEOUT's reclaim (swap entries, needs world.swap)",
  args: z.strictObject({ page }),
  steps: { try_to_unmap: tryToUnmapFile, shrink_folio_list: unmapFileFolio },
  sample: (w, v) =>
    w.pmdMapped.has(v.from + 3)
      ? { skip: 'try_to_unmap of a PMD THP is not yet modelled' }
      : { page: v.from + 3 },
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    populatedPage(info, a.page);
    const label = `try-to-unmap ${v.name}[${a.page}]`;
    if (v.kind === 'anon')
      return {
        label,
        discards: [a.page, a.page + 1],
        run: (w) =>
          doMadvise(w.k, w.mms.p, rangeBase(w) + a.page, rangeBase(w) + a.page + 1, 'pageout'),
      };
    return {
      label,
      discards: [v.from, v.to],
      run: (w) => unmapFileFolio(w.k, w.k.folios.headOf(w.pfns[`page${a.page}`])),
    };
  },
});

export const RMAP_WALKERS = [RMAP_WALK, MIGRATE, TRY_TO_UNMAP];
