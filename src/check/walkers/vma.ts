// Walkers that change VMAs under the mmap write lock: mremap (moving a VMA), mprotect and fork.

import { z } from 'zod';
import { doFork } from '../../mm/fork.ts';
import { changeProtection, doMprotect } from '../../mm/mprotect.ts';
import { doMremap } from '../../mm/mremap.ts';
import { VM_READ, VM_WRITE } from '../../mm/vma.ts';
import { RANGE_PAGES, rangeBase, vmaName, namedVma } from './fields.ts';
import { walker } from './types.ts';

export const MREMAP = walker({
  name: 'mremap',
  kernel: 'do_mremap',
  summary:
    'mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of a VMA to the same offset two PMD ranges lower: move_vma, the rmap locks, move_page_tables (move_ptes or move_normal_pmd)',
  args: z.strictObject({ vma: vmaName.default('A') }),
  steps: { do_mremap: doMremap },
  sample: (_w, v) => ({ vma: v.name }),
  thread: (a, info) => {
    const v = namedVma(info, a.vma);
    return {
      label: `mremap ${v.name}`,
      vma: v.name,
      // The contents go to the new address; the old one is empty afterwards.
      discards: [v.from, v.to],
      run: (w) => {
        const vma = w.vmas[v.name];
        const n = vma.end - vma.start;
        const to = rangeBase(w) - 2 * RANGE_PAGES + v.from;
        return doMremap(w.k, w.mms.p, vma.start, n, n, to);
      },
    };
  },
});

const PROT = { none: 0, r: VM_READ, rw: VM_READ | VM_WRITE } as const;

export const MPROTECT = walker({
  name: 'mprotect',
  kernel: 'do_mprotect_pkey',
  summary:
    'mprotect of a VMA (mmap write lock, vma_start_write): change_protection rewrites its PTEs and huge PMDs under their locks, then flushes',
  args: z.strictObject({
    vma: vmaName.default('A'),
    prot: z.enum(['none', 'r', 'rw']).default('r'),
  }),
  steps: { do_mprotect_pkey: doMprotect, change_protection: changeProtection },
  sample: (_w, v) => ({ vma: v.name, prot: 'r' as const }),
  thread: (a, info) => {
    const v = namedVma(info, a.vma);
    return {
      label: `mprotect ${v.name} ${a.prot}`,
      vma: v.name,
      run: (w) => {
        const vma = w.vmas[v.name];
        return doMprotect(w.k, w.mms.p, vma.start, vma.end, PROT[a.prot]);
      },
    };
  },
});

export const FORK = walker({
  name: 'fork',
  kernel: 'dup_mmap',
  summary:
    "fork of the world's process: dup_mmap under both mmap write locks, vma_start_write per VMA, anon_vma_fork, copy_page_range (write_protect_seq, COW write-protect)",
  args: z.strictObject({}),
  steps: { dup_mmap: doFork },
  sample: () => ({}),
  thread: () => ({ label: 'fork', run: (w) => doFork(w.k, w.mms.p, 'child') }),
});

export const VMA_WALKERS = [MREMAP, MPROTECT, FORK];
