// The remaining walkers of the concurrency model, each racing what could take its page table
// away: GUP slow (mmap read lock, pte_offset_map_lock) against the merged mTHP collapse, and
// UFFDIO_COPY (mmap read lock) against MADV_DONTNEED's empty-table reclaim (VMA read lock).
// Both are verified: the mmap lock orders the first, pte_offset_map_lock and RCU the second.

import { doMadvise } from '../../mm/madvise.ts';
import { NO_PFN } from '../../mm/kernel.ts';
import { S_FOLIO, writeShared } from '../../mm/step.ts';
import { gupSlow } from '../../walkers/gup-slow.ts';
import { uffdCopy } from '../../walkers/uffd.ts';
import type { CheckCase } from '../explore.ts';
import { PROPERTIES } from '../properties.ts';
import { L_MMAP_WRITE } from '../../mm/step.ts';
import { clearedBy, entryAccess, stepWhile, waitingFor } from '../windows.ts';
import { khugepagedCollapse, pmdWorld, vpnBase } from './common.ts';

export const GUP_SLOW_COLLAPSE: CheckCase = {
  id: 'gup-slow-collapse',
  title: 'GUP slow vs the merged mTHP collapse',
  description:
    'A spans the PMD range; khugepaged collapses A[0..16) at order 4 while get_user_pages pins A[3] and a device writes through the pin.',
  setup: () => pmdWorld({ shared: false, written: Array.from({ length: 16 }, (_, i) => i) }),
  threads: [
    {
      name: 'khugepaged collapse A[0..16) order 4',
      vma: 'A',
      run: (w) => khugepagedCollapse(w, 0, 4),
    },
    {
      name: 'get_user_pages A[3], write through the pin',
      run: function* (w) {
        const k = w.k;
        const pfn = (yield gupSlow(k, w.mms.p, vpnBase(w) + 3, true)) as number;
        if (pfn === NO_PFN) return;
        const head = k.folios.headOf(pfn);
        yield writeShared(S_FOLIO, head);
        const t = k.freshData();
        k.folios.data[pfn] = t;
        w.expected.set(`${w.mms.p.id}:${vpnBase(w) + 3}`, t);
        k.folioPut(head);
      },
    },
  ],
  own: [
    stepWhile(
      'gup-while-collapse-waits',
      'GUP slow took a step while the collapse waited for the mmap write lock',
      1,
      waitingFor(0, L_MMAP_WRITE),
    ),
  ],
  maxPreemptions: 2,
  expect: 'verified',
  rules: [9],
};

export const UFFD_COPY_RECLAIM: CheckCase = {
  id: 'uffd-copy-reclaim',
  title: 'UFFDIO_COPY vs empty-table reclaim',
  description:
    'UFFDIO_COPY fills A[100] under the mmap read lock while MADV_DONTNEED of the whole PMD range (VMA read lock) empties and frees its PTE table.',
  setup: () => pmdWorld({ shared: false, written: [0, 1] }),
  threads: [
    {
      name: 'MADV_DONTNEED of the PMD range',
      vma: 'A',
      run: (w) => doMadvise(w.k, w.mms.p, vpnBase(w), vpnBase(w) + 512, 'dontneed'),
    },
    {
      name: 'UFFDIO_COPY A[100]',
      vma: 'A',
      run: (w) => uffdCopy(w.k, w.mms.p, vpnBase(w) + 100, 7),
    },
  ],
  // MADV_DONTNEED discards what it zaps by design.
  properties: PROPERTIES.filter((p) => p !== 'lost-write'),
  own: [
    stepWhile(
      'copy-while-table-reclaimed',
      'UFFDIO_COPY read the page tables after MADV_DONTNEED had cleared the PMD to free the empty table',
      1,
      clearedBy(0, 'pmd'),
      entryAccess(),
    ),
  ],
  maxPreemptions: 2,
  expect: 'verified',
  rules: [7, 8],
};

export const WALKER_CASES = [GUP_SLOW_COLLAPSE, UFFD_COPY_RECLAIM];
