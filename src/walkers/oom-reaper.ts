// The OOM reaper (oom_reap_task_mm): frees the anonymous memory of an OOM-killed process under
// the mmap read lock, long before the process gets to exit. It marks the mm MMF_UNSTABLE first;
// faults that race with it check that flag under the PTE lock (check_stable_address_space)
// and fail instead of mapping new memory the reaper will never see.

import type { Kernel } from '../mm/kernel.ts';
import { L_MMAP_READ, type Step, lock, unlock } from '../mm/step.ts';
import { type Mm, VM_SHARED } from '../mm/vma.ts';
import { zapRange } from '../mm/zap.ts';

export function* oomReap(k: Kernel, mm: Mm): Step<void> {
  yield lock(L_MMAP_READ, mm.id);
  mm.unstable = true;
  for (const vma of mm.vmas)
    if (vma.isAnonymous && !(vma.flags & VM_SHARED))
      yield* zapRange(k, vma, vma.start, vma.end, { keepGuards: true, reclaimTables: false });
  yield unlock(L_MMAP_READ, mm.id);
}
