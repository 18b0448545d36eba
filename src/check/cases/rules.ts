// Cases for the rules of docs/page-table-walkers.md that no historical race in the catalogue
// covers on its own: each drops one step of the rule (a bug switch) in a small race, and the
// kernel's form is verified.

import { doMadvise } from '../../mm/madvise.ts';
import { doMunmap } from '../../mm/mmap.ts';
import { doMremap } from '../../mm/mremap.ts';
import { mincoreWalk } from '../../walkers/mincore.ts';
import { oomReap } from '../../walkers/oom-reaper.ts';
import { migrateFolio } from '../../walkers/rmap-walk.ts';
import type { KernelBug } from '../../mm/kernel.ts';
import type { CheckCase, ThreadSpec } from '../explore.ts';
import { PROPERTIES, type PropertyName } from '../properties.ts';
import type { Property } from '../property.ts';
import { L_MMAP_WRITE, L_VMA_WRITE } from '../../mm/step.ts';
import {
  all,
  clearedBy,
  entryAccess,
  holding,
  inside,
  migrationEntry,
  stepWhile,
  waitingFor,
} from '../windows.ts';
import { gupWrite } from '../gup-user.ts';
import { tlbUserWrite } from '../world.ts';
import { PAGE, type WorldOptions, khugepagedCollapse, pmdWorld, vpnBase } from './common.ts';

function write(name: string, page: number): ThreadSpec {
  return { name, vma: 'A', run: (w, cpu) => tlbUserWrite(w, cpu, w.mms.p, vpnBase(w) + page) };
}

interface Pair {
  id: string;
  title: string;
  description: string;
  world: Omit<WorldOptions, 'bugs'>;
  threads: ThreadSpec[];
  bug: KernelBug;
  broken: readonly PropertyName[];
  rules: number[];
  properties?: readonly PropertyName[];
  /** The race windows the kernel's form must reach. */
  windows: Property[];
}

/** The kernel's form (verified) and the form without the step (a counterexample). */
function pair(p: Pair): [CheckCase, CheckCase] {
  const make = (bugs: KernelBug[], id: string, expect: CheckCase['expect']): CheckCase => ({
    id,
    title: `${p.title}${bugs.length ? ` (${bugs[0]})` : ''}`,
    description: p.description,
    setup: () => pmdWorld({ ...p.world, bugs }),
    threads: p.threads,
    ...(p.properties ? { properties: p.properties } : {}),
    ...(expect === 'verified' ? { own: p.windows } : {}),
    maxPreemptions: 2,
    expect,
    rules: p.rules,
  });
  return [make([], `${p.id}-kernel`, 'verified'), make([p.bug], `${p.id}-${p.bug}`, p.broken)];
}

/** Rule 3: a missing table is created by check, lock, recheck, publish. */
export const [RULE3_KERNEL, RULE3_BROKEN] = pair({
  id: 'rule3',
  title: 'Rule 3 two faults create the same missing PTE table',
  description:
    'An empty PMD range of A; two write faults on different pages, each under the VMA read lock, both find no PTE table and both allocate one.',
  world: { shared: false, written: [] },
  threads: [write('fault A[10]', 10), write('fault A[20]', 20)],
  bug: 'pmd-install-no-recheck',
  broken: ['lost-write', 'table-lifetime', 'quiescence'],
  rules: [3],
  windows: [
    stepWhile(
      'both-install-a-table',
      'both faults were installing a PTE table (pmd_install) at once',
      1,
      all(inside(0, 'pmd_install'), inside(1, 'pmd_install')),
    ),
  ],
});

/** Rule 4: an entry changes only under its table's lock. */
export const [RULE4_KERNEL, RULE4_BROKEN] = pair({
  id: 'rule4',
  title: 'Rule 4 two faults on the same page',
  description:
    'Two write faults on the same unpopulated page of A, each under the VMA read lock: only one may map its new page.',
  world: { shared: false, written: [0] },
  threads: [write('fault A[10] on CPU 0', 10), write('fault A[10] on CPU 1', 10)],
  bug: 'set-pte-without-ptl',
  broken: ['lost-write', 'quiescence', 'table-lifetime'],
  rules: [4],
  windows: [
    stepWhile(
      'both-fault-the-page',
      'the second fault read the page tables while the first was in handle_mm_fault on the same page',
      1,
      all(inside(0, 'handle_mm_fault'), inside(1, 'handle_mm_fault')),
      entryAccess(),
    ),
  ],
});

/** Rule 17: operations that conflict with faults write-lock every affected VMA. */
export const [RULE17_KERNEL, RULE17_BROKEN] = pair({
  id: 'rule17',
  title: 'Rule 17 collapse vs a per-VMA-lock fault in the same VMA',
  description:
    'A spans the PMD range; khugepaged collapses A[0..16) at order 4 while a write fault elsewhere in A holds only the VMA read lock.',
  world: { shared: false, written: Array.from({ length: 16 }, (_, i) => i) },
  threads: [
    {
      name: 'khugepaged collapse A[0..16) order 4',
      vma: 'A',
      run: (w) => khugepagedCollapse(w, 0, 4),
    },
    write('fault A[300]', 300),
  ],
  bug: 'collapse-no-vma-write-lock',
  broken: ['transient-none', 'lost-write', 'table-lifetime'],
  rules: [17],
  windows: [
    stepWhile(
      'fault-while-vma-write-locked',
      'the fault in A took a step while the collapse held A write-locked (vma_start_write)',
      1,
      holding(0, L_VMA_WRITE),
    ),
  ],
});

/** Rule 19: the lock order (empty-table reclaim only trylocks the PMD lock under the PTE lock). */
export const [RULE19_KERNEL, RULE19_BROKEN] = pair({
  id: 'rule19',
  title: 'Rule 19 empty-table reclaim vs a fault installing a table',
  description:
    'MADV_DONTNEED empties the whole PMD range of A and reclaims the table, while a fault in A installs PTEs (PMD lock, then PTE lock).',
  world: { shared: false, written: [0, 1] },
  threads: [
    {
      name: 'MADV_DONTNEED of the PMD range',
      vma: 'A',
      run: (w) => doMadvise(w.k, w.mms.p, vpnBase(w), vpnBase(w) + 512, 'dontneed'),
    },
    write('fault A[100]', 100),
  ],
  bug: 'pt-reclaim-pmd-lock-under-ptl',
  broken: ['lock-order', 'deadlock'],
  rules: [19],
  windows: [
    stepWhile(
      'fault-while-table-reclaimed',
      'the fault took a step while MADV_DONTNEED had cleared the PMD to free the empty table',
      1,
      clearedBy(0, 'pmd'),
    ),
  ],
  // The zapped pages are gone by design.
  properties: ['lock-order', 'deadlock', 'table-lifetime', 'crash', 'quiescence'],
});

/** Rule 1: a walker holds a lock that keeps the VMA (and its tables) while it walks. */
export const [RULE1_KERNEL, RULE1_BROKEN] = pair({
  id: 'rule1',
  title: 'Rule 1 a page-table walker vs munmap',
  description:
    'mincore walks the PMD range of A (PTE tables included) while A is unmapped and its tables freed.',
  world: { shared: false, written: [0, 5] },
  threads: [
    {
      name: 'mincore walk of A',
      run: (w) => mincoreWalk(w.k, w.mms.p, vpnBase(w), vpnBase(w) + 512),
    },
    {
      name: 'munmap A',
      vma: 'A',
      run: (w) => doMunmap(w.k, w.mms.p, w.vmas.A.start, w.vmas.A.end),
    },
  ],
  bug: 'walk-without-mmap-lock',
  broken: ['table-lifetime'],
  rules: [1],
  windows: [
    stepWhile(
      'walk-while-munmap-waits',
      "mincore read A's page tables while munmap waited for the mmap write lock",
      0,
      waitingFor(1, L_MMAP_WRITE),
      entryAccess(),
    ),
  ],
  properties: PROPERTIES.filter((p) => p !== 'lost-write'),
});

/** Rule 2: populating empty entries needs the mmap or VMA lock; an rmap lock alone is not enough. */
export const [RULE2_KERNEL, RULE2_BROKEN] = pair({
  id: 'rule2',
  title: 'Rule 2 migration of a folio vs munmap',
  description:
    "A's page 5 is migrated (rmap walks under the anon_vma lock) while A is unmapped: munmap zaps the migration entry and frees the tables after unlinking the anon_vma.",
  world: { shared: false, written: [0, 5] },
  threads: [
    { name: "migrate A's page 5", run: (w) => migrateFolio(w.k, w.pfns.page5) },
    {
      name: 'munmap A',
      vma: 'A',
      run: (w) => doMunmap(w.k, w.mms.p, w.vmas.A.start, w.vmas.A.end),
    },
  ],
  bug: 'migration-restore-populates',
  broken: ['quiescence', 'table-lifetime', 'crash'],
  rules: [2],
  windows: [
    stepWhile(
      'munmap-while-page5-migrating',
      'munmap of A took a step while page 5 was a migration entry',
      1,
      migrationEntry,
    ),
  ],
  properties: PROPERTIES.filter((p) => p !== 'lost-write'),
});

/** Rule 21: installers check for a reaped mm under the PTE lock. */
export const [RULE21_KERNEL, RULE21_BROKEN] = pair({
  id: 'rule21',
  title: 'Rule 21 the OOM reaper vs a fault',
  description:
    "The OOM reaper frees A's anonymous memory under the mmap read lock while a write fault in A (VMA read lock) maps a new page.",
  world: { shared: false, written: [0, 1] },
  threads: [{ name: 'OOM reaper', run: (w) => oomReap(w.k, w.mms.p) }, write('fault A[100]', 100)],
  bug: 'no-stable-check',
  broken: ['quiescence'],
  rules: [21],
  windows: [
    stepWhile(
      'fault-while-reaping',
      "the fault read A's page tables after the OOM reaper marked the mm unstable, while it reaped",
      1,
      (v) => v.w.mms.p.unstable && !v.done(0),
      entryAccess(),
    ),
  ],
  properties: PROPERTIES.filter((p) => p !== 'lost-write'),
});

export const RULE_CASES_BASE = [
  RULE21_KERNEL,
  RULE21_BROKEN,
  RULE1_KERNEL,
  RULE1_BROKEN,
  RULE2_KERNEL,
  RULE2_BROKEN,
  RULE3_KERNEL,
  RULE3_BROKEN,
  RULE4_KERNEL,
  RULE4_BROKEN,
  RULE17_KERNEL,
  RULE17_BROKEN,
  RULE19_KERNEL,
  RULE19_BROKEN,
];

/**
 * Rule 14: moving mappings keeps them visible to rmap walks. V's lower half was moved to Y
 * before; moving the upper half to just after it extends that VMA (copy_vma merges), which rmap
 * walks visit first (its page offsets start lower), so move_ptes needs the rmap locks.
 */
export const [RULE14_KERNEL, RULE14_BROKEN] = (() => {
  const N = 32;
  const make = (bugs: KernelBug[], id: string, expect: CheckCase['expect']): CheckCase => ({
    id,
    title: `Rule 14 mremap vs a migration of a moved page${bugs.length ? ` (${bugs[0]})` : ''}`,
    description:
      "V's lower half already moved to Y; mremap moves the upper half to Y + its size (merging into the moved VMA) while the page at V+40 is migrated (two rmap walks, anon_vma lock only).",
    setup: () => {
      const w = pmdWorld({ shared: false, bugs, written: [40, 41] });
      const m = w.m;
      const mm = w.mms.p;
      const base = w.vmas.A.start * PAGE;
      m.munmap(mm, base + 2 * N * PAGE, 2 * 1024 * 1024 - 2 * N * PAGE);
      const y = base + 4 * 1024 * 1024;
      m.mremap(mm, base, N * PAGE, N * PAGE, y);
      w.vmas.Y = mm.findVma(y / PAGE)!;
      w.vmas.V = mm.findVma(base / PAGE + N)!;
      return w;
    },
    threads: [
      {
        name: 'mremap V to just after Y',
        vma: 'V',
        run: (w) => doMremap(w.k, w.mms.p, w.vmas.V.start, N, N, w.vmas.Y.end),
      },
      { name: 'migrate V[40]', run: (w) => migrateFolio(w.k, w.pfns.page40) },
    ],
    // The moved pages are read back at their new address by the model's own invariants; the
    // lost-write check knows only the addresses written.
    properties: PROPERTIES.filter((p) => p !== 'lost-write'),
    ...(bugs.length
      ? {}
      : {
          own: [
            stepWhile(
              'move-while-page40-migrating',
              'mremap took a step while page 40 was a migration entry',
              0,
              migrationEntry,
            ),
          ],
        }),
    maxPreemptions: 3,
    expect,
    rules: [14],
  });
  return [
    make([], 'rule14-kernel', 'verified'),
    make(['move-ptes-no-rmap-lock'], 'rule14-move-ptes-no-rmap-lock', ['quiescence']),
  ];
})();

/**
 * Rule 18: a VMA gets its anon_vma only under the mmap lock. anon_vma_prepare may reuse a
 * neighbour's anon_vma, and only the mmap lock keeps that neighbour from being unmapped (and its
 * anon_vma freed) meanwhile; a fault under the VMA lock alone must retry under the mmap lock.
 */
export const [RULE18_KERNEL, RULE18_BROKEN] = (() => {
  const N = 16;
  const make = (bugs: KernelBug[], id: string, expect: CheckCase['expect']): CheckCase => ({
    id,
    title: `Rule 18 the first fault of a VMA vs munmap of its neighbour${bugs.length ? ` (${bugs[0]})` : ''}`,
    description:
      "V1 (read-only, with an anon_vma) and V2 (writable, none yet) are adjacent with contiguous offsets, so V2 may share V1's anon_vma; a write fault in V2 (VMA read lock) races munmap of V1.",
    setup: () => {
      const w = pmdWorld({ shared: false, bugs, written: [] });
      const m = w.m;
      const mm = w.mms.p;
      const base = w.vmas.A.start * PAGE;
      m.munmap(mm, base, 2 * 1024 * 1024);
      m.mmap(mm, { lengthBytes: N * PAGE, addrBytes: base });
      m.touch(mm, base, PAGE, true);
      m.mprotect(mm, base, N * PAGE, 'r');
      m.mmap(mm, { lengthBytes: N * PAGE, addrBytes: base + N * PAGE });
      w.vmas.V1 = mm.findVma(base / PAGE)!;
      w.vmas.V2 = mm.findVma(base / PAGE + N)!;
      w.expected.clear();
      return w;
    },
    threads: [
      {
        name: 'first write fault in V2',
        vma: 'V2',
        run: (w, cpu) => tlbUserWrite(w, cpu, w.mms.p, w.vmas.V2.start + 3),
      },
      {
        name: 'munmap V1',
        vma: 'V1',
        run: (w) => doMunmap(w.k, w.mms.p, w.vmas.V1.start, w.vmas.V1.end),
      },
    ],
    ...(bugs.length
      ? {}
      : {
          own: [
            stepWhile(
              'fault-while-neighbour-unmapped',
              'the first fault of V2 took a step while munmap of V1 held the mmap write lock',
              0,
              holding(1, L_MMAP_WRITE),
            ),
          ],
        }),
    maxPreemptions: 2,
    expect,
    rules: [18],
  });
  return [
    make([], 'rule18-kernel', 'verified'),
    make(['anon-vma-under-vma-lock'], 'rule18-anon-vma-under-vma-lock', ['table-lifetime']),
  ];
})();

/** Rule 6: a lockless reader reads an entry once and works on its copy. */
export const [RULE6_KERNEL, RULE6_BROKEN] = pair({
  id: 'rule6',
  title: 'Rule 6 GUP-fast vs a PMD collapse',
  description:
    'A spans the PMD range; khugepaged collapses it to a PMD THP while GUP-fast pins A[3] (interrupts off, no lock).',
  world: { shared: false, pmd: true, written: Array.from({ length: 16 }, (_, i) => i) },
  threads: [
    {
      name: 'khugepaged collapse A (PMD order)',
      vma: 'A',
      run: (w) => khugepagedCollapse(w, 0, 9),
    },
    { name: 'GUP-fast pin of A[3]', run: (w, cpu) => gupWrite(w, cpu, w.mms.p, vpnBase(w) + 3) },
  ],
  bug: 'gup-fast-reread-pmd',
  broken: ['table-lifetime', 'lost-write', 'crash'],
  rules: [6],
  windows: [
    stepWhile(
      'gup-fast-walks-detached-table',
      "GUP-fast read a PTE of A's table after the collapse had detached it",
      1,
      clearedBy(0, 'pmd'),
      entryAccess('pte', 'read'),
    ),
  ],
});

export const RULE_CASES = [
  ...RULE_CASES_BASE,
  RULE6_KERNEL,
  RULE6_BROKEN,
  RULE14_KERNEL,
  RULE14_BROKEN,
  RULE18_KERNEL,
  RULE18_BROKEN,
];
