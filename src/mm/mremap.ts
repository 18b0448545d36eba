// mremap (mm/mremap.c). Filled in by the mremap model.

import type { Kernel } from './kernel.ts';
import type { Step } from './step.ts';
import type { Mm } from './vma.ts';

/** mremap with MREMAP_MAYMOVE (and MREMAP_FIXED when newStart is given). Returns the new start. */
// eslint-disable-next-line require-yield
export function* doMremap(
  _k: Kernel,
  _mm: Mm,
  oldStart: number,
  _oldPages: number,
  _newPages: number,
  _newStart?: number,
): Step<number> {
  return oldStart;
}
