// Walkers that take mappings (and maybe their page tables) away: munmap, MADV_DONTNEED with
// empty-table reclaim, and the OOM reaper.

import { z } from 'zod';
import { doMadvise } from '../../mm/madvise.ts';
import { doMunmap, unmapRegion } from '../../mm/mmap.ts';
import { zapRange } from '../../mm/zap.ts';
import { oomReap } from '../../walkers/oom-reaper.ts';
import { RANGE_PAGES, page, rangeBase, vmaName, namedVma } from './fields.ts';
import { WalkerArgError, walker } from './types.ts';

export const MUNMAP = walker({
  name: 'munmap',
  kernel: 'do_munmap',
  summary:
    'munmap of a VMA: mmap write lock, detach, unmap_region (zap, free_pgtables of what no other VMA uses, the TLB flush)',
  args: z.strictObject({ vma: vmaName.default('A') }),
  steps: { do_munmap: doMunmap, unmap_region: unmapRegion },
  sample: (_w, v) => ({ vma: v.name }),
  thread: (a, info) => {
    const v = namedVma(info, a.vma);
    return {
      label: `munmap ${v.name}`,
      vma: v.name,
      discards: [v.from, v.to],
      run: (w) => {
        const vma = w.vmas[v.name];
        return doMunmap(w.k, w.mms.p, vma.start, vma.end);
      },
    };
  },
});

export const DONTNEED = walker({
  name: 'dontneed',
  kernel: 'do_madvise',
  summary:
    "MADV_DONTNEED of pages [from, to): zap under the VMA's read lock when inside one VMA (else the mmap read lock), freeing empty PTE tables",
  args: z.strictObject({
    from: page,
    to: z.number().int().min(1).max(RANGE_PAGES),
    vma: vmaName.optional(),
  }),
  steps: { do_madvise: doMadvise, unmap_page_range: zapRange },
  sample: (_w, v) => ({ from: v.from, to: v.from + 32, vma: v.name }),
  thread: (a, info) => {
    if (a.to <= a.from)
      throw new WalkerArgError('to', `expected a page after from (${a.from}), got ${a.to}`);
    let name = a.vma;
    if (name !== undefined) {
      const v = namedVma(info, name);
      if (a.from < v.from || a.to > v.to)
        throw new WalkerArgError('vma', `pages ${a.from}..${a.to - 1} are not all in VMA ${name}`);
    } else name = info.vmas.find((v) => a.from >= v.from && a.to <= v.to)?.name;
    return {
      label: `dontneed [${a.from}..${a.to})`,
      ...(name !== undefined ? { vma: name } : {}),
      discards: [a.from, a.to],
      run: (w) => doMadvise(w.k, w.mms.p, rangeBase(w) + a.from, rangeBase(w) + a.to, 'dontneed'),
    };
  },
});

export const OOM_REAPER = walker({
  name: 'oom-reaper',
  kernel: 'oom_reap_task_mm',
  summary:
    'the OOM reaper: mark the mm MMF_UNSTABLE, then zap every private anonymous VMA under the mmap read lock',
  args: z.strictObject({}),
  steps: { oom_reap_task_mm: oomReap },
  sample: () => ({}),
  thread: () => ({
    label: 'oom-reaper',
    discards: [0, RANGE_PAGES],
    run: (w) => oomReap(w.k, w.mms.p),
  }),
});

export const UNMAP_WALKERS = [MUNMAP, DONTNEED, OOM_REAPER];
