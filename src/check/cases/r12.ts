// R12, "Merge fixes for missing TLB shootdowns" (2018): CPUs cache upper-level page-table
// entries (paging-structure caches), not only leaf translations. When page tables are freed,
// the flush must cover those caches too, or a CPU keeps walking from a pointer to a table that
// has been freed and may be reused.

import type { KernelBug } from '../../mm/kernel.ts';
import type { CheckCase } from '../explore.ts';
import { PROPERTIES } from '../properties.ts';
import { L_PTE_LOCK } from '../../mm/step.ts';
import { holding, stepWhile } from '../windows.ts';
import { MUNMAP_A, USER_A, pmdWorld } from './common.ts';

function r12(id: string, title: string, bugs: KernelBug[], expect: CheckCase['expect']): CheckCase {
  return {
    id,
    title: `R12 paging-structure caches vs freed page tables: ${title}`,
    description:
      'A CPU writes twice to A while A is unmapped: the first write caches the translation and the PMD entry it walked through; munmap frees the PTE table.',
    setup: () => pmdWorld({ shared: false, bugs, written: [0, 5] }),
    threads: [USER_A, MUNMAP_A],
    // munmap discards the data by design.
    properties: PROPERTIES.filter((p) => p !== 'lost-write'),
    ...(expect === 'verified'
      ? {
          own: [
            stepWhile(
              'write-while-munmap-zaps',
              "the CPU accessed A[5] while munmap held A's PTE lock to zap the table",
              0,
              holding(1, L_PTE_LOCK),
            ),
          ],
        }
      : {}),
    maxPreemptions: 2,
    expect,
    rules: [13],
  };
}

export const R12_KERNEL = r12('R12-kernel', 'flush with freed_tables', [], 'verified');
export const R12_NO_PSC_FLUSH = r12(
  'R12-no-psc-flush',
  'leaf flush only',
  ['no-psc-flush'],
  ['stale-tlb'],
);
export const R12_CASES = [R12_KERNEL, R12_NO_PSC_FLUSH];
