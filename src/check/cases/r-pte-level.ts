// The pte-level design (not in any kernel): mTHP collapse inside the attached table, so that it
// reaches VMAs smaller than a PMD. Checked against the same walkers of the neighbouring VMA B as
// R1, plus GUP-fast and the hardware walker on the collapsing VMA A itself.

import type { KernelBug } from '../../mm/kernel.ts';
import type { CheckCase, ThreadSpec } from '../explore.ts';
import type { Property } from '../property.ts';
import { clearedBy, entryAccess, stepWhile } from '../windows.ts';
import {
  DONTNEED_B,
  FAULT_B,
  GUP_A,
  MIGRATE_B,
  USER_A,
  khugepagedCollapse,
  pmdWorld,
} from './common.ts';

const WRITTEN = [...Array.from({ length: 16 }, (_, i) => i), 256, 257];

const collapseA: ThreadSpec = {
  name: 'khugepaged collapse A[0..16) order 4 (pte-level)',
  vma: 'A',
  run: (w) => khugepagedCollapse(w, 0, 4),
};

function pteLevel(
  id: string,
  title: string,
  threads: ThreadSpec[],
  bugs: KernelBug[],
  expect: CheckCase['expect'],
  geometry: 'x86-64-4k' | 'arm64-4k' = 'x86-64-4k',
  own: Property[] = [],
): CheckCase {
  return {
    id,
    title: `pte-level collapse: ${title}`,
    description: `The pte-level mTHP collapse of A[0..16) (A and B share the PTE table) racing ${threads
      .slice(1)
      .map((t) => t.name)
      .join(', ')}${bugs.length ? `, with ${bugs.join(', ')}` : ''}, on ${geometry}.`,
    setup: () => pmdWorld({ shared: true, policy: 'pte-level', bugs, written: WRITTEN, geometry }),
    threads,
    ...(own.length ? { own } : {}),
    maxPreemptions: 2,
    expect,
    rules: [4, 5, 9, 10, 11],
  };
}

/** Thread t, named `who`, touched the shared table (or, for a CPU, ran) while A's PTEs were cleared. */
function whileCleared(t: number, id: string, who: string, tableAccess = true): Property {
  return stepWhile(
    `${id}-while-a-ptes-cleared`,
    `${who} ${tableAccess ? 'accessed the page table' : 'ran'} while the collapse had A's PTEs cleared`,
    t,
    clearedBy(0, 'pte'),
    tableAccess ? entryAccess() : undefined,
  );
}

export const PTE_LEVEL_B = pteLevel(
  'pte-level-B',
  'the walkers of the neighbouring VMA B',
  [collapseA, FAULT_B, MIGRATE_B],
  [],
  'verified',
  'x86-64-4k',
  [
    whileCleared(1, 'fault-b', "B's fault"),
    whileCleared(2, 'migrate-b', "the migration of B's folio"),
  ],
);
export const PTE_LEVEL_DONTNEED = pteLevel(
  'pte-level-dontneed',
  'MADV_DONTNEED on B (with empty-table reclaim)',
  [collapseA, DONTNEED_B],
  [],
  'verified',
  'x86-64-4k',
  [whileCleared(1, 'dontneed-b', 'MADV_DONTNEED on B')],
);
const A_WINDOWS = [
  whileCleared(1, 'gup-fast-a', 'GUP-fast on A[3]'),
  whileCleared(2, 'user-a', 'the CPU writing A[5]', false),
];
export const PTE_LEVEL_A = pteLevel(
  'pte-level-A',
  'GUP-fast and the hardware walker on A itself',
  [collapseA, GUP_A, USER_A],
  [],
  'verified',
  'x86-64-4k',
  A_WINDOWS,
);
export const PTE_LEVEL_A_ARM64 = pteLevel(
  'pte-level-A-arm64',
  'GUP-fast and the hardware walker on A, TLB flushes without IPIs',
  [collapseA, GUP_A, USER_A],
  [],
  'verified',
  'arm64-4k',
  A_WINDOWS,
);
/** The order as first written: the pins are counted before the PTEs are cleared. */
export const PTE_LEVEL_ISOLATE_FIRST = pteLevel(
  'pte-level-isolate-before-clear',
  'reference counts checked before the PTEs are cleared',
  [collapseA, GUP_A],
  ['pte-level-isolate-before-clear'],
  ['lost-write'],
);
/** Copying before the flush: a CPU still holding the old translation writes after the copy. */
export const PTE_LEVEL_COPY_BEFORE_FLUSH = pteLevel(
  'pte-level-copy-before-flush',
  'the old pages copied before the TLB flush',
  [collapseA, USER_A],
  ['copy-before-flush'],
  ['lost-write'],
);

export const PTE_LEVEL_CASES = [
  PTE_LEVEL_B,
  PTE_LEVEL_DONTNEED,
  PTE_LEVEL_A,
  PTE_LEVEL_A_ARM64,
  PTE_LEVEL_ISOLATE_FIRST,
  PTE_LEVEL_COPY_BEFORE_FLUSH,
];
