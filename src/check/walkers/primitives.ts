// Kernel names of the shared primitives that many walkers' steps run through, so that a trace
// line says which one a thread was in (pte_offset_map_lock, vma_start_write, ...). A primitive
// is named here once; the walkers name their own entry points in their family files.

import { anonVmaPrepare } from '../../mm/anon-vma.ts';
import { doMmap, exitMmap, mmapWriteUnlock } from '../../mm/mmap.ts';
import {
  pmdAlloc,
  pmdReadLockless,
  pteAlloc,
  pteOffsetMap,
  pteOffsetMapRwNolock,
  pmdSameLockless,
  pteFreeDefer,
  pteOffsetMapLock,
  pteRelock,
  pteUnmapUnlock,
} from '../../mm/pagewalk.ts';
import { mergeAround, splitRange, splitVma, vmaStartWrite } from '../../mm/vma-ops.ts';
import { zapRange } from '../../mm/zap.ts';
import type { StepFunction } from './types.ts';

export const PRIMITIVE_STEPS: Readonly<Record<string, StepFunction>> = {
  pte_offset_map_lock: pteOffsetMapLock,
  pte_offset_map: pteOffsetMap,
  pte_offset_map_rw_nolock: pteOffsetMapRwNolock,
  pmd_same_lockless: pmdSameLockless,
  pte_free_defer: pteFreeDefer,
  pte_unmap_unlock: pteUnmapUnlock,
  pte_relock: pteRelock,
  pmdp_get_lockless: pmdReadLockless,
  pmd_alloc: pmdAlloc,
  pmd_install: pteAlloc,
  __anon_vma_prepare: anonVmaPrepare,
  vma_start_write: vmaStartWrite,
  __split_vma: splitVma,
  split_vma_range: splitRange,
  vma_merge: mergeAround,
  mmap_write_unlock: mmapWriteUnlock,
  do_mmap: doMmap,
  exit_mmap: exitMmap,
  unmap_page_range: zapRange,
};
