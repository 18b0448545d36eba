// madvise(2) for the advice THP cares about (mm/madvise.c, hugepage_madvise). Each advice takes
// the lock the kernel takes for it: flag changes need the mmap write lock, zapping the read lock.

import { khugepagedEnterVma } from '../khugepaged/enter.ts';
import { doMadviseCollapse } from '../khugepaged/madvise-collapse.ts';
import type { Kernel } from './kernel.ts';
import { mmapWriteUnlock, MmError } from './mmap.ts';
import { madviseFree, madvisePageout } from './reclaim.ts';
import {
  L_MMAP_READ,
  L_MMAP_WRITE,
  L_RCU,
  L_VMA_READ,
  S_VMA_TREE,
  type Step,
  lock,
  readShared,
  trylock,
  unlock,
} from './step.ts';
import { mergeAround, splitRange } from './vma-ops.ts';
import { VM_HUGEPAGE, VM_NOHUGEPAGE, type Mm, type Vma } from './vma.ts';
import { zapRange } from './zap.ts';

export type MadviseAdvice =
  'hugepage' | 'nohugepage' | 'dontneed' | 'free' | 'pageout' | 'collapse';

export type MadviseErrno = 'EINVAL' | 'ENOMEM' | 'EAGAIN' | 'EBUSY';

/** Whether every page of [start, end) is covered by VMAs (else madvise returns ENOMEM). */
function fullyMapped(mm: Mm, start: number, end: number): boolean {
  let at = start;
  for (const v of mm.vmasIn(start, end)) {
    if (v.start > at) return false;
    at = v.end;
  }
  return at >= end;
}

/** madvise_vma_behavior for VM_HUGEPAGE / VM_NOHUGEPAGE: split, set flags, merge. */
function* hugepageMadvise(
  k: Kernel,
  mm: Mm,
  start: number,
  end: number,
  set: number,
  clear: number,
): Step<void> {
  yield lock(L_MMAP_WRITE, mm.id);
  const vmas: Vma[] = yield* splitRange(k, mm, start, end);
  for (const vma of vmas) {
    vma.flags = (vma.flags | set) & ~clear;
    if (set & VM_HUGEPAGE) khugepagedEnterVma(k, vma);
  }
  yield* mergeAround(mm, start, end);
  yield* mmapWriteUnlock(mm);
}

/** lock_vma_under_rcu for a range: the VMA read-locked if it holds the whole range, else null. */
function* lockVmaForRange(mm: Mm, start: number, end: number): Step<Vma | null> {
  yield lock(L_RCU, 0);
  yield readShared(S_VMA_TREE, mm.id);
  const vma = mm.findVma(start);
  let locked = false;
  if (vma && !vma.detached && end <= vma.end && vma.vmLockSeq !== mm.mmLockSeq)
    locked = (yield trylock(L_VMA_READ, vma.id)) === true;
  yield unlock(L_RCU, 0);
  return locked ? vma! : null;
}

/** do_madvise. Returns 0 or the errno name (the kernel returns -errno). */
export function* doMadvise(
  k: Kernel,
  mm: Mm,
  start: number,
  end: number,
  advice: MadviseAdvice,
): Step<0 | MadviseErrno> {
  if (end < start) return 'EINVAL';
  if (end === start) return 0;
  const mapped = fullyMapped(mm, start, end);
  switch (advice) {
    case 'hugepage':
      yield* hugepageMadvise(k, mm, start, end, VM_HUGEPAGE, VM_NOHUGEPAGE);
      break;
    case 'nohugepage':
      yield* hugepageMadvise(k, mm, start, end, VM_NOHUGEPAGE, VM_HUGEPAGE);
      break;
    case 'dontneed': {
      const opts = { keepGuards: true, reclaimTables: true };
      // madvise_lock: a range inside one VMA needs only that VMA's read lock.
      const one = yield* lockVmaForRange(mm, start, end);
      if (one) {
        yield* zapRange(k, one, start, end, opts);
        yield unlock(L_VMA_READ, one.id);
        break;
      }
      yield lock(L_MMAP_READ, mm.id);
      for (const vma of mm.vmasIn(start, end))
        yield* zapRange(k, vma, Math.max(start, vma.start), Math.min(end, vma.end), opts);
      yield unlock(L_MMAP_READ, mm.id);
      break;
    }
    case 'free':
      yield lock(L_MMAP_READ, mm.id);
      for (const vma of mm.vmasIn(start, end))
        yield* madviseFree(k, vma, Math.max(start, vma.start), Math.min(end, vma.end));
      yield unlock(L_MMAP_READ, mm.id);
      break;
    case 'pageout':
      yield lock(L_MMAP_READ, mm.id);
      for (const vma of mm.vmasIn(start, end))
        yield* madvisePageout(k, vma, Math.max(start, vma.start), Math.min(end, vma.end));
      yield unlock(L_MMAP_READ, mm.id);
      break;
    case 'collapse': {
      const r = yield* doMadviseCollapse(k, mm, start, end);
      return r.errno === 0 ? 0 : r.errno;
    }
    default:
      throw new MmError('EINVAL', `unknown advice ${String(advice)}`);
  }
  return mapped ? 0 : 'ENOMEM';
}
