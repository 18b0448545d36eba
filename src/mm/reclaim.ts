// MADV_FREE and MADV_PAGEOUT (mm/madvise.c, mm/vmscan.c). Placeholder bodies until the swap-out
// model lands: both are no-ops that leave the range untouched.

import type { Kernel } from './kernel.ts';
import type { Step } from './step.ts';
import type { Vma } from './vma.ts';

// eslint-disable-next-line require-yield
export function* madviseFree(_k: Kernel, _vma: Vma, _start: number, _end: number): Step<void> {}

// eslint-disable-next-line require-yield
export function* madvisePageout(_k: Kernel, _vma: Vma, _start: number, _end: number): Step<void> {}
