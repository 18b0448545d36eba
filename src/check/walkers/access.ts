// Walkers that access one page of a VMA: a user write (TLB, hardware walk, page fault), one
// hardware walk, GUP-fast and GUP slow, UFFDIO_COPY and MADV_GUARD_INSTALL.

import { z } from 'zod';
import { doFileFault, doSetPmd } from '../../mm/fault-file.ts';
import {
  doSwapPage,
  doWpPage,
  faultUser,
  handleMmFault,
  hwAccess,
  userAccess,
  vmfAnonPrepare,
} from '../../mm/fault.ts';
import { guardInstall } from '../../walkers/guard.ts';
import { gupFast } from '../../walkers/gup-fast.ts';
import { gupSlow } from '../../walkers/gup-slow.ts';
import { uffdCopy } from '../../walkers/uffd.ts';
import { gupSlowWrite, gupWrite } from '../gup-user.ts';
import { tlbUserWrite } from '../world.ts';
import { page, rangeBase, vmaName, vmaOfPage } from './fields.ts';
import { WalkerArgError, walker } from './types.ts';

export const FAULT = walker({
  name: 'fault',
  kernel: 'handle_mm_fault',
  summary:
    'a user write to a page: through the CPU TLB, else the hardware walk, else a page fault (per-VMA lock, mmap read lock on fallback)',
  args: z.strictObject({ page, vma: vmaName.optional() }),
  steps: {
    user_write: tlbUserWrite,
    do_user_addr_fault: faultUser,
    handle_mm_fault: handleMmFault,
    user_access: userAccess,
    vmf_anon_prepare: vmfAnonPrepare,
    do_wp_page: doWpPage,
    do_swap_page: doSwapPage,
    do_fault: doFileFault,
    do_set_pmd: doSetPmd,
  },
  sample: (_w, v) => ({ page: v.from + 44, vma: v.name }),
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page, a.vma);
    return {
      label: `fault ${v.name}[${a.page}]`,
      vma: v.name,
      run: (w, cpu) => tlbUserWrite(w, cpu, w.mms.p, rangeBase(w) + a.page),
    };
  },
});

export const HW_WALK = walker({
  name: 'hw-walk',
  kernel: 'hw_walk',
  summary:
    'one hardware page-table walk (no lock; an IPI waits for it), setting the accessed and on a write the dirty bit; no fault on a miss',
  args: z.strictObject({ page, write: z.boolean().default(false) }),
  steps: { hw_walk: hwAccess },
  sample: (_w, v) => ({ page: v.from + 3 }),
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    return {
      label: `hw-walk ${v.name}[${a.page}]${a.write ? ' write' : ''}`,
      run: (w) => hwAccess(w.k, w.mms.p, rangeBase(w) + a.page, a.write),
    };
  },
});

export const GUP_FAST = walker({
  name: 'gup-fast',
  kernel: 'gup_fast',
  summary:
    'get_user_pages_fast: pin a page with interrupts off and no lock, recheck the PMD and PTE, write through the pin (a user write when it falls back)',
  args: z.strictObject({ page }),
  steps: { gup_fast: gupFast },
  sample: (_w, v) => ({ page: v.from + 3 }),
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    return {
      label: `gup-fast ${v.name}[${a.page}]`,
      run: (w, cpu) => gupWrite(w, cpu, w.mms.p, rangeBase(w) + a.page),
    };
  },
});

export const GUP_SLOW = walker({
  name: 'gup-slow',
  kernel: 'get_user_pages',
  summary:
    'get_user_pages for write: under the mmap read lock, pte_offset_map_lock and a reference, faulting the page in when missing; then a write through the pin and the unpin',
  args: z.strictObject({ page }),
  steps: { get_user_pages: gupSlow },
  sample: (_w, v) => ({ page: v.from + 3 }),
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    return {
      label: `gup-slow ${v.name}[${a.page}]`,
      run: (w) => gupSlowWrite(w, w.mms.p, rangeBase(w) + a.page),
    };
  },
});

export const UFFD_COPY = walker({
  name: 'uffd-copy',
  kernel: 'mfill_atomic_copy',
  summary:
    'UFFDIO_COPY of one page into an anonymous VMA under the mmap read lock (-EEXIST if something is mapped); shmem is not yet modelled',
  args: z.strictObject({ page }),
  steps: { mfill_atomic_copy: uffdCopy },
  sample: (_w, v) =>
    v.kind === 'anon'
      ? { page: v.from + 40 }
      : { skip: `uffd-copy into ${v.kind} is not yet modelled` },
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    if (v.kind !== 'anon')
      throw new WalkerArgError(
        'page',
        `uffd-copy into ${v.kind} VMA ${v.name} is not yet modelled (anon only)`,
      );
    return {
      label: `uffd-copy ${v.name}[${a.page}]`,
      vma: v.name,
      run: (w) => uffdCopy(w.k, w.mms.p, rangeBase(w) + a.page, 7),
    };
  },
});

export const GUARD_INSTALL = walker({
  name: 'guard-install',
  kernel: 'madvise_guard_install',
  summary:
    'MADV_GUARD_INSTALL of one page: flag the VMA VM_MAYBE_GUARD, then a guard marker in an empty PTE (mmap read lock)',
  args: z.strictObject({ page }),
  steps: { madvise_guard_install: guardInstall },
  sample: (_w, v) => ({ page: v.from + 50 }),
  thread: (a, info) => {
    const v = vmaOfPage(info, a.page);
    return {
      label: `guard-install ${v.name}[${a.page}]`,
      vma: v.name,
      run: (w) => guardInstall(w.k, w.mms.p, rangeBase(w) + a.page),
    };
  },
});

export const ACCESS_WALKERS = [FAULT, HW_WALK, GUP_FAST, GUP_SLOW, UFFD_COPY, GUARD_INSTALL];
