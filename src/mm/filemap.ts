// Files and the page cache (struct address_space): filled in by the page-cache model.

import type { Kernel } from './kernel.ts';
import { MmError } from './mmap.ts';

export interface CreateFileOptions {
  /** tmpfs/memfd (shmem) instead of a regular file on a block device. */
  tmpfs?: boolean;
}

/** Create a named file of the given size in pages, its content on "disk". Returns its id. */
export function createFile(_k: Kernel, name: string, _pages: number, _opts: CreateFileOptions = {}): number {
  throw new MmError('EINVAL', `files are not modelled yet (${name})`);
}

/** The id of a named file, or 0. */
export function fileByName(_k: Kernel, _name: string): number {
  return 0;
}

/** echo 3 > /proc/sys/vm/drop_caches: evict clean, unmapped page-cache folios. */
export function dropCaches(_k: Kernel): void {}
