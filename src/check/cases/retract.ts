// R10 and R20: retract_page_tables, which removes the (empty) PTE table of a file VMA from the
// other side of the file's rmap, holding only the i_mmap read lock and no lock of the VMA's mm.
// R10 (2022): without the rmap lock, munmap of the VMA frees the table as retraction frees it.
// R20 (2025): guard markers can be installed under the mmap read lock; retraction must recheck
// for them under the PTE lock, or it throws away a table that is not empty.

import type { KernelBug } from '../../mm/kernel.ts';
import { doMunmap } from '../../mm/mmap.ts';
import { retractPageTables } from '../../khugepaged/collapse-file.ts';
import { Machine } from '../../sim/machine.ts';
import { guardInstall } from '../../walkers/guard.ts';
import type { CheckCase, ThreadSpec } from '../explore.ts';
import { PROPERTIES } from '../properties.ts';
import type { Property } from '../property.ts';
import { L_MMAP_READ } from '../../mm/step.ts';
import { clearedBy, holding, stepWhile } from '../windows.ts';
import { type CheckWorld, newWorld } from '../world.ts';

const MiB = 1 << 20;
const PAGE = 4096;

/** A 2 MiB file mapped read-only and PMD-aligned; page 0 read in, then dropped: an empty table. */
function fileWorld(bugs: readonly KernelBug[]): CheckWorld {
  const m = new Machine({ ramBytes: 8 * MiB, strictLocks: true });
  m.createFile('f', 2 * MiB);
  const mm = m.spawn('p');
  const base = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB, file: 'f', prot: 'r' });
  m.access(mm, base, false);
  m.madvise(mm, base, PAGE, 'dontneed');
  const w = newWorld(m);
  w.mms.p = mm;
  w.vmas.F = mm.vmas[0];
  for (const b of bugs) w.k.bugs.add(b);
  return w;
}

const retract: ThreadSpec = {
  name: 'retract_page_tables of the file',
  run: (w) => retractPageTables(w.k, w.k.files.get(w.vmas.F.file)!, 0),
};
const munmap: ThreadSpec = {
  name: 'munmap the file VMA',
  vma: 'F',
  run: (w) => doMunmap(w.k, w.mms.p, w.vmas.F.start, w.vmas.F.end),
};
const guard: ThreadSpec = {
  name: 'MADV_GUARD_INSTALL F[3]',
  vma: 'F',
  run: (w) => guardInstall(w.k, w.mms.p, w.vmas.F.start + 3),
};

function retractCase(
  id: string,
  title: string,
  bugs: KernelBug[],
  other: ThreadSpec,
  expect: CheckCase['expect'],
  rules: number[],
  own: Property[] = [],
): CheckCase {
  return {
    id,
    title,
    description: `retract_page_tables of a read-only file mapping's empty PTE table, racing ${other.name}${bugs.length ? `, with ${bugs.join(', ')}` : ''}.`,
    setup: () => fileWorld(bugs),
    threads: [retract, other],
    properties: PROPERTIES.filter((p) => p !== 'lost-write'),
    ...(own.length ? { own } : {}),
    maxPreemptions: 2,
    expect,
    rules,
  };
}

export const R10_KERNEL = retractCase(
  'R10-kernel',
  'R10 retraction vs munmap: under the i_mmap lock',
  [],
  munmap,
  'verified',
  [12, 13],
  [
    stepWhile(
      'munmap-after-retraction',
      "munmap of the file VMA ran after retraction had cleared the VMA's PMD",
      1,
      clearedBy(0, 'pmd'),
    ),
  ],
);
export const R10_NO_RMAP_LOCK = retractCase(
  'R10-no-rmap-lock',
  'R10 retraction vs munmap: without the rmap lock',
  ['retract-no-i-mmap-lock'],
  munmap,
  ['crash', 'table-lifetime'],
  [12, 13],
);
export const R20_KERNEL = retractCase(
  'R20-kernel',
  'R20 retraction vs guard markers: rechecked under the PTE lock',
  [],
  guard,
  'verified',
  [20],
  [
    stepWhile(
      'retract-while-guard-install',
      'retraction took a step while MADV_GUARD_INSTALL held the mmap read lock to install its marker',
      0,
      holding(1, L_MMAP_READ),
    ),
  ],
);
export const R20_NO_RECHECK = retractCase(
  'R20-no-recheck',
  'R20 retraction vs guard markers: checked only before locking',
  ['retract-no-guard-recheck'],
  guard,
  ['crash', 'quiescence', 'table-lifetime'],
  [20],
);
export const RETRACT_CASES = [R10_KERNEL, R10_NO_RMAP_LOCK, R20_KERNEL, R20_NO_RECHECK];
