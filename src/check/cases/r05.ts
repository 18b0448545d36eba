// R5, "thp: fix MADV_DONTNEED vs. numa balancing race" (2017): NUMA hinting changes a huge PMD
// to PROT_NONE under the mmap read lock while MADV_DONTNEED, under a read lock too, reads that
// PMD without a lock to decide whether to zap it. Clearing the PMD and setting it again (the old
// code) lets the zap see none and skip the THP; pmdp_invalidate keeps it visibly huge.

import type { KernelBug } from '../../mm/kernel.ts';
import { doMadvise } from '../../mm/madvise.ts';
import { changeHugePmdNuma } from '../../walkers/numa-hinting.ts';
import type { CheckCase, ThreadSpec } from '../explore.ts';
import { E_INVALID } from '../../mm/pgtable.ts';
import { pmdIs, stepWhile } from '../windows.ts';
import { pmdWorld, vpnBase } from './common.ts';

const numa: ThreadSpec = {
  name: 'NUMA hinting: change_huge_pmd(prot_numa)',
  vma: 'A',
  run: (w) => changeHugePmdNuma(w.k, w.mms.p, vpnBase(w)),
};
const dontneed: ThreadSpec = {
  name: 'MADV_DONTNEED of the THP',
  vma: 'A',
  run: (w) => doMadvise(w.k, w.mms.p, vpnBase(w), vpnBase(w) + 512, 'dontneed'),
};

function r5(id: string, title: string, bugs: KernelBug[], expect: CheckCase['expect']): CheckCase {
  return {
    id,
    title: `R5 MADV_DONTNEED vs NUMA hinting on a THP: ${title}`,
    description:
      'A PMD-mapped THP; NUMA hinting makes it PROT_NONE under the mmap read lock while MADV_DONTNEED (VMA read lock) zaps the range.',
    setup: () => pmdWorld({ shared: false, thp: true, bugs, written: [0] }),
    threads: [numa, dontneed],
    ...(expect === 'verified'
      ? {
          own: [
            stepWhile(
              'zap-while-pmd-invalidated',
              "MADV_DONTNEED took a step while NUMA hinting had the THP's PMD invalidated (pmdp_invalidate)",
              1,
              pmdIs(vpnBase, E_INVALID),
            ),
          ],
        }
      : {}),
    // MADV_DONTNEED discards the page by design.
    properties: [
      'transient-none',
      'table-lifetime',
      'quiescence',
      'crash',
      'deadlock',
      'lock-order',
    ],
    maxPreemptions: 2,
    expect,
    rules: [5, 16],
  };
}

export const R5_KERNEL = r5('R5-kernel', 'pmdp_invalidate', [], 'verified');
export const R5_VIA_NONE = r5(
  'R5-via-none',
  'the PMD passes through none',
  ['numa-pmd-via-none'],
  ['transient-none'],
);
export const R5_CASES = [R5_KERNEL, R5_VIA_NONE];
