// NOT YET REGISTERED in cases/index.ts: rounds-fault-frozen finds "unfreeze of a folio that is not
// frozen" (a model bug or a finding, not yet triaged); verdicts for the rest are not yet run.
// The rounds design (mm/collapse.c, not merged): collapse under the mmap read lock with the
// sources quiesced by migration entries and a frozen refcount. Each claim its comments make is a
// case: the walkers of a neighbouring VMA in the same table, GUP-fast and the hardware walker on
// the collapsing VMA (x86-64 and arm64), a fault on a frozen source, an rmap walk (migration) of
// a source, MADV_DONTNEED + refault between freeze and install, empty-table reclaim, and the PMD
// order with its fresh deposit and pte_free_defer. Broken forms show each step is needed.

import type { CollapseControl } from '../../khugepaged/control.ts';
import { newCollapseControl } from '../../khugepaged/control.ts';
import { PteBitmap } from '../../khugepaged/mthp/bitmap.ts';
import { collapseAnonPmdRounds } from '../../khugepaged/rounds/anon-pmd.ts';
import type { PmdScan } from '../../khugepaged/scan-pmd.ts';
import type { KernelBug } from '../../mm/kernel.ts';
import { doMadvise } from '../../mm/madvise.ts';
import type { Step } from '../../mm/step.ts';
import { migrateFolio } from '../../walkers/rmap-walk.ts';
import type { CheckCase, ThreadSpec } from '../explore.ts';
import { type CheckWorld, tlbUserWrite } from '../world.ts';
import { DONTNEED_B, FAULT_B, GUP_A, MIGRATE_B, USER_A, pmdWorld, vpnBase } from './common.ts';

const SIXTEEN = Array.from({ length: 16 }, (_, i) => i);

/** The rounds collapse of the window [at, at + 2^order) after a scan found it usable. */
export function* roundsCollapse(w: CheckWorld, at: number, order: number): Step<unknown> {
  const k = w.k;
  const nr = k.geo.ptrsPerPte;
  const cc: CollapseControl = newCollapseControl(true);
  cc.bits = new PteBitmap(nr);
  for (let i = 0; i < 1 << order; i++) cc.bits.set(at + i);
  const scan: PmdScan = {
    result: 'SCAN_SUCCEED',
    referenced: 1 << order,
    unmapped: 0,
    noneOrZero: 0,
    shared: 0,
    inspected: nr,
    lastFolio: -1,
    lo: at,
    hi: at + (1 << order),
  };
  return yield* collapseAnonPmdRounds(k, w.mms.p, vpnBase(w), scan, 1 << order, cc);
}

const collapseA: ThreadSpec = {
  name: 'rounds collapse A[0..16) order 4',
  vma: 'A',
  run: (w) => roundsCollapse(w, 0, 4),
};
const collapsePmd: ThreadSpec = {
  name: 'rounds collapse of the PMD range (order 9)',
  vma: 'A',
  run: (w) => roundsCollapse(w, 0, 9),
};
const migrateA: ThreadSpec = {
  name: "migrate A's page 3 (rmap walks)",
  run: (w) => migrateFolio(w.k, w.pfns.page3),
};
/** MADV_DONTNEED of A[0..16) under the VMA lock, then a write that refaults A[2]. */
const dontneedRefaultA: ThreadSpec = {
  name: 'MADV_DONTNEED A[0..16), then a write to A[2]',
  vma: 'A',
  run: function* (w, cpu) {
    yield* doMadvise(w.k, w.mms.p, vpnBase(w), vpnBase(w) + 16, 'dontneed');
    // The zapped pages' old contents are gone by design; A[2] gets a fresh write.
    for (let i = 0; i < 16; i++) w.expected.delete(`${w.mms.p.id}:${vpnBase(w) + i}`);
    yield* tlbUserWrite(w, cpu, w.mms.p, vpnBase(w) + 2);
  },
};
/** MADV_DONTNEED of the whole PMD range: the table empties and is reclaimed. */
const dontneedAll: ThreadSpec = {
  name: 'MADV_DONTNEED of the PMD range (empty-table reclaim)',
  vma: 'A',
  run: function* (w) {
    yield* doMadvise(w.k, w.mms.p, vpnBase(w), vpnBase(w) + 512, 'dontneed');
    w.expected.clear();
  },
};

function rounds(
  id: string,
  title: string,
  threads: ThreadSpec[],
  opts: {
    shared: boolean;
    bugs?: KernelBug[];
    expect: CheckCase['expect'];
    geometry?: 'x86-64-4k' | 'arm64-4k';
    pmd?: boolean;
  },
): CheckCase {
  const geometry = opts.geometry ?? 'x86-64-4k';
  const bugs = opts.bugs ?? [];
  return {
    id,
    title: `rounds collapse: ${title}`,
    description: `The rounds collapse (${threads[0].name}) racing ${threads
      .slice(1)
      .map((t) => t.name)
      .join(', ')}${opts.shared ? ' (A and B share the PTE table)' : ''}${
      bugs.length ? `, with ${bugs.join(', ')}` : ''
    }, on ${geometry}.`,
    setup: () =>
      pmdWorld({
        shared: opts.shared,
        policy: 'rounds',
        bugs,
        written: opts.shared ? [...SIXTEEN, 256, 257] : SIXTEEN,
        geometry,
        pmd: opts.pmd,
      }),
    threads,
    maxPreemptions: 2,
    expect: opts.expect,
    rules: [4, 5, 9, 10, 11],
  };
}

export const ROUNDS_B = rounds(
  'rounds-B',
  'the walkers of the neighbouring VMA B',
  [collapseA, FAULT_B, MIGRATE_B],
  {
    shared: true,
    expect: 'verified',
  },
);
export const ROUNDS_DONTNEED_B = rounds(
  'rounds-dontneed-B',
  'MADV_DONTNEED on B',
  [collapseA, DONTNEED_B],
  {
    shared: true,
    expect: 'verified',
  },
);
export const ROUNDS_A = rounds(
  'rounds-A',
  'GUP-fast and the hardware walker on A itself',
  [collapseA, GUP_A, USER_A],
  {
    shared: true,
    expect: 'verified',
  },
);
export const ROUNDS_A_ARM64 = rounds(
  'rounds-A-arm64',
  'GUP-fast and the hardware walker on A, TLB flushes without IPIs',
  [collapseA, GUP_A, USER_A],
  { shared: true, expect: 'verified', geometry: 'arm64-4k' },
);
export const ROUNDS_FAULT_FROZEN = rounds(
  'rounds-fault-frozen',
  'a fault on a frozen source waits',
  [collapseA, USER_A],
  {
    shared: false,
    expect: 'verified',
  },
);
export const ROUNDS_RMAP = rounds(
  'rounds-rmap',
  'an rmap walk (migration) of a source',
  [collapseA, migrateA],
  {
    shared: false,
    expect: 'verified',
  },
);
export const ROUNDS_DONTNEED_REFAULT = rounds(
  'rounds-dontneed-refault',
  'MADV_DONTNEED of the window and a refault between freeze and install',
  [collapseA, dontneedRefaultA],
  { shared: false, expect: 'verified' },
);
export const ROUNDS_PT_RECLAIM = rounds(
  'rounds-pt-reclaim',
  'empty-table reclaim between freeze and install',
  [collapseA, dontneedAll],
  { shared: false, expect: 'verified' },
);
export const ROUNDS_PMD = rounds(
  'rounds-pmd',
  'PMD order: GUP-fast and the hardware walker on A',
  [collapsePmd, GUP_A, USER_A],
  { shared: false, expect: 'verified', pmd: true },
);
export const ROUNDS_PMD_ARM64 = rounds(
  'rounds-pmd-arm64',
  'PMD order on arm64: GUP-fast and the hardware walker on A',
  [collapsePmd, GUP_A, USER_A],
  { shared: false, expect: 'verified', pmd: true, geometry: 'arm64-4k' },
);
// Broken forms.
export const ROUNDS_NO_VERIFY = rounds(
  'rounds-no-verify',
  'the install does not verify the slots (refault between freeze and install)',
  [collapseA, dontneedRefaultA],
  { shared: false, bugs: ['rounds-no-verify'], expect: ['lost-write', 'quiescence', 'crash'] },
);
export const ROUNDS_RESTORE_FOREIGN = rounds(
  'rounds-abort-restores-foreign',
  'an abort restores zapped or refilled slots too',
  [collapseA, dontneedRefaultA],
  {
    shared: false,
    bugs: ['rounds-abort-restores-foreign'],
    expect: ['lost-write', 'quiescence', 'crash'],
  },
);
export const ROUNDS_NO_FREEZE_FLUSH = rounds(
  'rounds-no-freeze-flush',
  'the freeze drops the PTE lock without a TLB flush',
  [collapseA, USER_A],
  { shared: false, bugs: ['rounds-no-freeze-flush'], expect: ['lost-write'] },
);
export const ROUNDS_FREE_OLD_TABLE = rounds(
  'rounds-free-old-table-now',
  'PMD order: the detached table freed at once, not by pte_free_defer',
  [collapsePmd, GUP_A],
  { shared: false, bugs: ['rounds-free-old-table-now'], expect: ['table-lifetime'], pmd: true },
);

export const ROUNDS_CASES = [
  ROUNDS_B,
  ROUNDS_DONTNEED_B,
  ROUNDS_A,
  ROUNDS_A_ARM64,
  ROUNDS_FAULT_FROZEN,
  ROUNDS_RMAP,
  ROUNDS_DONTNEED_REFAULT,
  ROUNDS_PT_RECLAIM,
  ROUNDS_PMD,
  ROUNDS_PMD_ARM64,
  ROUNDS_NO_VERIFY,
  ROUNDS_RESTORE_FOREIGN,
  ROUNDS_NO_FREEZE_FLUSH,
  ROUNDS_FREE_OLD_TABLE,
];
