// The checker's vocabulary of walkers, each registered once: its name in case files, traces and
// the matrix, its case-file form, and the model step functions it runs (named for traces). The
// words the model cannot run yet are listed with the reason, so that `thpsim check --walkers`
// says so instead of pretending.

import { nameStep } from '../names.ts';
import { ACCESS_WALKERS } from './access.ts';
import { COLLAPSE_WALKERS } from './collapse.ts';
import { PMD_WALKERS } from './pmd.ts';
import { PRIMITIVE_STEPS } from './primitives.ts';
import { RMAP_WALKERS } from './rmap.ts';
import type { UnmodelledWalker, WalkerDef } from './types.ts';
import { UNMAP_WALKERS } from './unmap.ts';
import { VMA_WALKERS } from './vma.ts';

/** Every walker the model can run, in the order `--walkers` lists them. */
export const WALKERS: readonly WalkerDef[] = [
  ...ACCESS_WALKERS,
  ...RMAP_WALKERS,
  ...PMD_WALKERS,
  ...COLLAPSE_WALKERS,
  ...UNMAP_WALKERS,
  ...VMA_WALKERS,
];

/** Vocabulary the model cannot express yet (parts of a word are noted in its summary). */
export const UNMODELLED: readonly UnmodelledWalker[] = [
  {
    name: 'migrate (order > 0)',
    kernel: 'migrate_pages',
    reason:
      'mTHP and PMD migration (set_pmd_migration_entry, remove_migration_pmd) are not yet modelled; migrate takes small anon folios',
  },
  {
    name: 'uffd-copy (shmem)',
    kernel: 'mfill_atomic_copy',
    reason: 'mfill_atomic on shmem (shmem_mfill_atomic_pte) is not yet modelled; anon only',
  },
  {
    name: 'rmap-walk (file)',
    kernel: 'folio_referenced',
    reason:
      'the file rmap walk exists only inside try_to_unmap; folio_referenced takes anon folios',
  },
  {
    name: 'numa-hinting (PTE level)',
    kernel: 'change_pte_range',
    reason: 'change_prot_numa of PTE-mapped pages is not yet modelled; huge PMDs only',
  },
];

export const WALKER_NAMES: readonly string[] = WALKERS.map((w) => w.name);

export function walkerByName(name: string): WalkerDef | undefined {
  return WALKERS.find((w) => w.name === name);
}

for (const [name, fn] of Object.entries(PRIMITIVE_STEPS)) nameStep(fn, name);
for (const w of WALKERS) for (const [name, fn] of Object.entries(w.steps)) nameStep(fn, name);
