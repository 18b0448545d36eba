// fork: dup_mmap + copy_page_range (mm/mmap.c, mm/memory.c). Filled in by the fork model.

import type { Kernel } from './kernel.ts';
import type { Step } from './step.ts';
import type { Mm } from './vma.ts';

/** dup_mm for a child process: returns the child's mm. */
// eslint-disable-next-line require-yield
export function* doFork(k: Kernel, _parent: Mm, childName: string): Step<Mm> {
  return k.newMm(childName);
}
