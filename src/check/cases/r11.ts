// R11, GUP-fast against collapse (70cbc3cc78a9, 2ba99c5e0881): GUP-fast walks the tables with
// interrupts off and no lock. A PMD collapse detaches the PTE table and deposits it; a later
// munmap withdraws and frees it at once. On arm64 a TLB flush sends no IPI, so only
// tlb_remove_table_sync_one stops a GUP-fast that read the old PMD from walking the table after
// it is freed; and before that IPI existed, GUP-fast's recheck of the PMD and PTE after taking
// its reference was all that kept it from pinning a page the collapse had already copied.

import type { KernelBug } from '../../mm/kernel.ts';
import type { CheckCase, ThreadSpec } from '../explore.ts';
import { PROPERTIES } from '../properties.ts';
import { clearedBy, entryAccess, stepWhile } from '../windows.ts';
import { GUP_A, MUNMAP_A, khugepagedCollapse, pmdWorld } from './common.ts';

const WRITTEN = [...Array.from({ length: 16 }, (_, i) => i), 20];

const collapse: ThreadSpec = {
  name: 'khugepaged collapse A (PMD order)',
  vma: 'A',
  run: (w) => khugepagedCollapse(w, 0, 9),
};

/** munmap discards what was written: with it, lost writes are not a property to check. */
const NOT_LOST = PROPERTIES.filter((p) => p !== 'lost-write');

/** GUP-fast read the PMD before the collapse cleared it and walks the table after. */
const GUP_IN_DETACHED = stepWhile(
  'gup-fast-walks-detached-table',
  "GUP-fast read a PTE of A's table after the collapse had detached it",
  1,
  clearedBy(0, 'pmd'),
  entryAccess('pte', 'read'),
);

function r11(
  id: string,
  title: string,
  bugs: KernelBug[],
  threads: ThreadSpec[],
  expect: CheckCase['expect'],
): CheckCase {
  return {
    id,
    title: `R11 GUP-fast vs collapse: ${title}`,
    description: `arm64 (TLB flushes without IPIs): ${threads.map((t) => t.name).join(', ')}${bugs.length ? `; ${bugs.join(', ')}` : ''}.`,
    setup: () =>
      pmdWorld({ shared: false, pmd: true, bugs, written: WRITTEN, geometry: 'arm64-4k' }),
    threads,
    ...(threads.includes(MUNMAP_A) ? { properties: NOT_LOST } : {}),
    ...(expect === 'verified' ? { own: [GUP_IN_DETACHED] } : {}),
    // The pin, the collapse's copy and the write through the pin: three switches.
    maxPreemptions: 3,
    expect,
    rules: [8, 9],
  };
}

/** The kernel: the IPI after the detach and the recheck after the reference. */
export const R11_KERNEL = r11(
  'R11-kernel',
  'the kernel',
  [],
  [collapse, GUP_A, MUNMAP_A],
  'verified',
);
/** Without the IPI: GUP-fast reads the deposited table after munmap freed it. */
export const R11_NO_IPI_SYNC = r11(
  'R11-no-ipi-sync',
  'no tlb_remove_table_sync_one',
  ['no-ipi-sync'],
  [collapse, GUP_A, MUNMAP_A],
  ['table-lifetime'],
);
/** Before either fix: GUP-fast pins a page the collapse already copied; the write is lost. */
export const R11_NO_RECHECK = r11(
  'R11-no-recheck',
  'no recheck and no IPI (before 2022)',
  ['no-gup-recheck', 'no-ipi-sync'],
  [collapse, GUP_A],
  ['lost-write', 'table-lifetime'],
);
/** With the IPI, the recheck is not what keeps collapse safe: verified without it. */
export const R11_NO_RECHECK_WITH_IPI = r11(
  'R11-no-recheck-with-ipi',
  'no recheck, with the IPI',
  ['no-gup-recheck'],
  [collapse, GUP_A],
  'verified',
);

export const R11_CASES = [R11_KERNEL, R11_NO_IPI_SYNC, R11_NO_RECHECK, R11_NO_RECHECK_WITH_IPI];
