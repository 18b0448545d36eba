// R1, the race from the mTHP review (khugepaged.md §2.7, walkers-and-locks.md R1): an mTHP
// collapse in VMA A detaches, with pmdp_collapse_flush, a page table that VMA B shares, while a
// fault in B (under B's VMA lock only), an rmap walk of one of B's folios (under B's anon_vma)
// and MADV_DONTNEED on B run. The v5 design lacked the full-PMD check and dropped the anon_vma
// lock before the table was back; each bug switch alone gives its own counterexample, and the
// merged v19 design is free of both.

import type { CheckCase, ThreadSpec } from '../explore.ts';
import { migrateFolio } from '../../walkers/rmap-walk.ts';
import { DONTNEED_B, FAULT_B, MIGRATE_B, khugepagedCollapse, pmdWorld, vpnBase } from './common.ts';
import type { KernelBug } from '../../mm/kernel.ts';
import type { PropertyName } from '../properties.ts';
import type { Property } from '../property.ts';
import { L_MMAP_READ } from '../../mm/step.ts';
import { E_TABLE } from '../../mm/pgtable.ts';
import { entryAccess, holding, migrationEntry, pmdIs, stepWhile } from '../windows.ts';

/** The pages written beforehand: the 64K region of A, a page of A outside it, B's first pages. */
const WRITTEN_SHARED = [...Array.from({ length: 16 }, (_, i) => i), 20, 256, 257];

const collapseA: ThreadSpec = {
  name: 'khugepaged collapse A[0..16) order 4',
  vma: 'A',
  run: (w) => khugepagedCollapse(w, 0, 4),
};

interface R1Variant {
  id: string;
  bugs: KernelBug[];
  threads: ThreadSpec[];
  /** The properties this variant checks (all by default). */
  properties?: PropertyName[];
  /** The race windows a verified variant must reach. */
  own?: Property[];
  expect: CheckCase['expect'];
}

function r1(v: R1Variant): CheckCase {
  return {
    id: v.id,
    title: `R1 mTHP collapse vs VMA B in the same page table${v.bugs.length ? ` (${v.bugs.join(', ')})` : ' (v19)'}`,
    description:
      'Collapse of a 64K region of VMA A while VMA B shares the PTE table, racing ' +
      v.threads
        .slice(1)
        .map((t) => t.name)
        .join(', ') +
      '.',
    setup: () => pmdWorld({ shared: true, bugs: v.bugs, written: WRITTEN_SHARED }),
    threads: v.threads,
    ...(v.properties ? { properties: v.properties } : {}),
    ...(v.own ? { own: v.own } : {}),
    maxPreemptions: 2,
    expect: v.expect,
    rules: [10, 11],
  };
}

const V5: KernelBug[] = ['no-full-pmd-check', 'early-anon-vma-unlock'];

/** The v5 design breaks the cross-VMA rule by its first write. */
export const R1_V5 = r1({
  id: 'R1-v5',
  bugs: V5,
  threads: [collapseA, FAULT_B],
  expect: ['cross-vma'],
});
/** ... a fault in B sees the transient pmd_none (and fills it with a table of its own) ... */
export const R1_V5_FAULT = r1({
  id: 'R1-v5-fault',
  bugs: V5,
  threads: [collapseA, FAULT_B],
  properties: ['transient-none'],
  expect: ['transient-none'],
});
/** ... and when it does, the collapse puts the old table back over it: a table and a write lost. */
export const R1_V5_LOST = r1({
  id: 'R1-v5-lost-table',
  bugs: V5,
  threads: [collapseA, FAULT_B],
  properties: ['lost-write', 'table-lifetime', 'quiescence', 'crash'],
  expect: ['lost-write', 'table-lifetime', 'quiescence', 'crash'],
});
/** The missing full-PMD check alone: the rmap walk of B's folio skips the range. */
export const R1_NO_FULL_PMD_CHECK_RMAP = r1({
  id: 'R1-no-full-pmd-check-rmap',
  bugs: ['no-full-pmd-check'],
  threads: [collapseA, MIGRATE_B],
  properties: ['transient-none', 'quiescence', 'lost-write'],
  expect: ['transient-none', 'quiescence', 'lost-write'],
});
/** ... and MADV_DONTNEED on B silently skips it. */
export const R1_NO_FULL_PMD_CHECK_DONTNEED = r1({
  id: 'R1-no-full-pmd-check-dontneed',
  bugs: ['no-full-pmd-check'],
  threads: [collapseA, DONTNEED_B],
  properties: ['transient-none'],
  expect: ['transient-none'],
});
/** The merged design with all three walkers of B: the collapse refuses the shared table. */
export const R1_V19 = r1({
  id: 'R1-v19',
  bugs: [],
  threads: [collapseA, FAULT_B, MIGRATE_B, DONTNEED_B],
  // Each walker of B is in the shared table while khugepaged decides under A's mmap lock.
  own: (
    [
      [1, 'fault', "B's fault"],
      [2, 'migrate', "the migration of B's folio"],
      [3, 'dontneed', 'MADV_DONTNEED on B'],
    ] as const
  ).map(([t, id, who]) =>
    stepWhile(
      `${id}-b-while-collapse-revalidates`,
      `${who} accessed the shared page table while the collapse of A held the mmap lock to revalidate`,
      t,
      holding(0, L_MMAP_READ),
      entryAccess(),
    ),
  ),
  expect: 'verified',
});

/**
 * Hugh Dickins' leftover migration entry: A spans the whole PMD range, the collapse isolates
 * A[0..16) and drops the anon_vma lock early; a migration of A's page 20 (outside the region)
 * restores its PTE while the table is detached, misses it, and leaves the migration entry.
 */
/** Hugh's window: the table leaves the PMD while page 20 is a migration entry in it. */
const DETACH_WHILE_MIGRATING = stepWhile(
  'detach-while-page20-migrating',
  "the collapse detached A's page table while page 20 was a migration entry in it",
  0,
  (v) => pmdIs(vpnBase, E_TABLE)(v) && migrationEntry(v),
  entryAccess('pmd', 'write'),
);

function earlyUnlock(
  id: string,
  bugs: KernelBug[],
  broken: boolean,
  properties?: PropertyName[],
): CheckCase {
  return {
    id,
    title: `R1 mTHP collapse vs migration of another folio of A${broken ? ' (early-anon-vma-unlock)' : ' (v19)'}`,
    description:
      "A spans the PMD range; the collapse of A[0..16) races the migration of A's page 20, whose rmap walks need the anon_vma the collapse holds.",
    setup: () =>
      pmdWorld({ shared: false, bugs, written: [...Array.from({ length: 16 }, (_, i) => i), 20] }),
    threads: [
      collapseA,
      { name: "migrate A's page 20", run: (w) => migrateFolio(w.k, w.pfns.page20) },
    ],
    ...(properties ? { properties } : {}),
    ...(broken ? {} : { own: [DETACH_WHILE_MIGRATING] }),
    maxPreemptions: 2,
    expect: broken ? (properties ?? ['quiescence', 'transient-none']) : 'verified',
    rules: [11],
  };
}

export const R1_EARLY_ANON_VMA_UNLOCK = earlyUnlock(
  'R1-early-anon-vma-unlock',
  ['early-anon-vma-unlock'],
  true,
);
/** What Hugh saw: the migration entry left behind (swapops.h BUG on the next access). */
export const R1_EARLY_ANON_VMA_UNLOCK_MIGRATION = earlyUnlock(
  'R1-early-anon-vma-unlock-migration',
  ['early-anon-vma-unlock'],
  true,
  ['quiescence'],
);
export const R1_V19_MIGRATION = earlyUnlock('R1-v19-migration', [], false);

export const R1_CASES = [
  R1_V5,
  R1_V5_FAULT,
  R1_V5_LOST,
  R1_NO_FULL_PMD_CHECK_RMAP,
  R1_NO_FULL_PMD_CHECK_DONTNEED,
  R1_EARLY_ANON_VMA_UNLOCK,
  R1_EARLY_ANON_VMA_UNLOCK_MIGRATION,
  R1_V19,
  R1_V19_MIGRATION,
];
