// Faults on file and shmem mappings (do_read_fault, do_cow_fault, do_shared_fault, finish_fault,
// do_set_pmd). Filled in by the page-cache model.

import type { Kernel } from './kernel.ts';
import type { Step } from './step.ts';
import type { Vma } from './vma.ts';

/** The fault handler for a VMA backed by a file or shmem; returns VM_FAULT_* bits. */
// eslint-disable-next-line require-yield
export function* doFileFault(
  _k: Kernel,
  _vma: Vma,
  _vpn: number,
  _pmdT: number,
  _pmdI: number,
  _write: boolean,
  _vmaLock: boolean,
): Step<number> {
  return 2; // VM_FAULT_SIGSEGV until file mappings exist
}
