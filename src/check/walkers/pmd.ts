// Walkers of one PMD entry: splitting a huge PMD, NUMA hinting on it, and a lockless-PMD
// page walk that only looks (mincore).

import { z } from 'zod';
import type { Kernel } from '../../mm/kernel.ts';
import { levelIndex, pmdTableOf } from '../../mm/pagewalk.ts';
import { PMD } from '../../mm/pgtable.ts';
import { splitHugePmd } from '../../mm/split.ts';
import { L_MMAP_READ, type Step, lock, unlock } from '../../mm/step.ts';
import type { Mm } from '../../mm/vma.ts';
import { mincoreWalk } from '../../walkers/mincore.ts';
import { changeHugePmdNuma } from '../../walkers/numa-hinting.ts';
import { RANGE_PAGES, page, rangeBase, vmaOfPage } from './fields.ts';
import { walker } from './types.ts';

/** split_huge_pmd at vpn under the mmap read lock (as MADV_DONTNEED of part of a THP does). */
function* splitHugePmdAt(k: Kernel, mm: Mm, vpn: number): Step<boolean> {
  yield lock(L_MMAP_READ, mm.id);
  const vma = mm.findVma(vpn);
  const pmdT = pmdTableOf(k, mm, vpn);
  const done = vma && pmdT ? yield* splitHugePmd(k, vma, pmdT, levelIndex(k, vpn, PMD)) : false;
  yield unlock(L_MMAP_READ, mm.id);
  return done;
}

export const SPLIT_PMD = walker({
  name: 'split-pmd',
  kernel: 'split_huge_pmd',
  summary:
    'split_huge_pmd of the PMD mapping a page (mmap read lock): __split_huge_pmd_locked under the PMD lock fills the deposited table with PTEs',
  args: z.strictObject({ page }),
  steps: { split_huge_pmd: splitHugePmdAt, __split_huge_pmd_locked: splitHugePmd },
  sample: (w, v) =>
    w.pmdMapped.has(v.from) ? { page: v.from + 3 } : { skip: 'no huge PMD in this world' },
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    return {
      label: `split-pmd ${v.name}[${a.page}]`,
      vma: v.name,
      run: (w) => splitHugePmdAt(w.k, w.mms.p, rangeBase(w) + a.page),
    };
  },
});

export const NUMA_HINTING = walker({
  name: 'numa-hinting',
  kernel: 'change_huge_pmd',
  summary:
    'NUMA hinting on the huge PMD mapping a page (change_prot_numa, mmap read lock): invalidate, flush, PROT_NONE; the PTE level is not yet modelled',
  args: z.strictObject({ page }),
  steps: { change_huge_pmd: changeHugePmdNuma },
  sample: (w, v) =>
    w.pmdMapped.has(v.from) ? { page: v.from + 3 } : { skip: 'no huge PMD in this world' },
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    return {
      label: `numa-hinting ${v.name}[${a.page}]`,
      run: (w) => changeHugePmdNuma(w.k, w.mms.p, rangeBase(w) + a.page),
    };
  },
});

export const MINCORE = walker({
  name: 'mincore',
  kernel: 'mincore_walk',
  summary:
    'a page walk that only looks (mincore, pagemap): per PMD of the range a lockless read, skipping none, under the mmap read lock',
  args: z.strictObject({}),
  steps: { mincore_walk: mincoreWalk },
  sample: () => ({}),
  thread: () => ({
    label: 'mincore',
    run: (w) => mincoreWalk(w.k, w.mms.p, rangeBase(w), rangeBase(w) + RANGE_PAGES),
  }),
});

export const PMD_WALKERS = [SPLIT_PMD, NUMA_HINTING, MINCORE];
