// R19, empty PTE-table reclaim against the walkers that map tables under RCU (6375e95f381e and
// its fixes): MADV_DONTNEED of a whole PMD range frees the emptied table while a fault in the
// same VMA (both hold only the VMA's read lock) has mapped that table and is about to lock it.
// The kernel frees the table after an RCU grace period, and the fault rechecks the PMD once it
// holds the PTE lock; freeing at once lets the fault lock a freed table.

import type { KernelBug } from '../../mm/kernel.ts';
import { doMadvise } from '../../mm/madvise.ts';
import type { CheckCase, ThreadSpec } from '../explore.ts';
import { clearedBy, entryAccess, stepWhile } from '../windows.ts';
import { tlbUserWrite } from '../world.ts';
import { pmdWorld, vpnBase } from './common.ts';

const dontneed: ThreadSpec = {
  name: 'MADV_DONTNEED of the PMD range (table reclaim)',
  vma: 'A',
  run: (w) => doMadvise(w.k, w.mms.p, vpnBase(w), vpnBase(w) + 512, 'dontneed'),
};
const fault: ThreadSpec = {
  name: 'fault in A',
  vma: 'A',
  run: (w, cpu) => tlbUserWrite(w, cpu, w.mms.p, vpnBase(w) + 100),
};

function r19(id: string, title: string, bugs: KernelBug[], expect: CheckCase['expect']): CheckCase {
  return {
    id,
    title: `R19 empty-table reclaim vs a fault mapping the table: ${title}`,
    description:
      'MADV_DONTNEED empties and frees the PTE table of a PMD range (x86-64 reclaims empty tables) while a write fault in the same VMA maps it; both hold only the VMA read lock.',
    // The zapped pages are gone by design: lost writes are not what this case is about.
    setup: () => pmdWorld({ shared: false, bugs, written: [0, 1, 2] }),
    threads: [dontneed, fault],
    properties: ['table-lifetime', 'crash', 'deadlock', 'lock-order', 'quiescence'],
    ...(expect === 'verified'
      ? {
          own: [
            stepWhile(
              'fault-while-table-reclaimed',
              'the fault read the page tables after MADV_DONTNEED had cleared the PMD to free the empty table',
              1,
              clearedBy(0, 'pmd'),
              entryAccess(),
            ),
          ],
        }
      : {}),
    maxPreemptions: 2,
    expect,
    rules: [8],
  };
}

export const R19_KERNEL = r19('R19-kernel', 'RCU-deferred free', [], 'verified');
export const R19_NO_RCU = r19(
  'R19-no-rcu',
  'table freed at once',
  ['pt-reclaim-no-rcu'],
  ['table-lifetime'],
);
export const R19_CASES = [R19_KERNEL, R19_NO_RCU];
