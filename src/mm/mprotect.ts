// mprotect (mm/mprotect.c). Filled in by the mprotect model.

import type { Kernel } from './kernel.ts';
import type { Step } from './step.ts';
import type { Mm } from './vma.ts';

/** do_mprotect_pkey: set the access flags (VM_READ/VM_WRITE/VM_EXEC) of [start, end). */
// eslint-disable-next-line require-yield
export function* doMprotect(
  _k: Kernel,
  _mm: Mm,
  _start: number,
  _end: number,
  _prot: number,
): Step<void> {}
