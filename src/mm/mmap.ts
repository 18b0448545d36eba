// mmap, munmap and exit (mm/mmap.c, mm/vma.c): VMA creation with address choice and merging,
// and teardown through zap + free_pgtables with the floor/ceiling of the surviving neighbours.

import { khugepagedEnterVma } from '../khugepaged/enter.ts';
import { anonVmaLockWrite, anonVmaUnlinkAll, anonVmaUnlockWrite } from './anon-vma.ts';
import { unlinkFileVma } from './filemap.ts';
import type { Kernel } from './kernel.ts';
import {
  L_I_MMAP_WRITE,
  L_MMAP_READ,
  L_MMAP_WRITE,
  OP_DOWNGRADE,
  type Step,
  ev,
  lock,
  unlock,
  rcuGracePeriod,
  tlbFlushTables,
} from './step.ts';
import { mergeAround, splitRange, vmaStartWrite } from './vma-ops.ts';
import type { Mm, Vma } from './vma.ts';
import { freePgtables, zapRange } from './zap.ts';

export class MmError extends Error {
  constructor(
    readonly errno: 'EINVAL' | 'ENOMEM' | 'EEXIST' | 'EFAULT',
    message: string,
  ) {
    super(message);
  }
}

export interface MmapRequest {
  pages: number;
  /** Fixed start (MAP_FIXED_NOREPLACE), in pages. */
  fixed?: number;
  /** Alignment of the chosen start, in pages. */
  alignPages?: number;
  flags: number;
  name: string;
  /** File id (0: anonymous memory). */
  file?: number;
  /** vm_pgoff for file mappings, in pages (default 0). */
  pgoff?: number;
}

/** mmap_write_unlock: also ends every VMA write lock (vma_end_write_all). */
export function* mmapWriteUnlock(mm: Mm): Step<void> {
  mm.mmLockSeq++;
  yield unlock(L_MMAP_WRITE, mm.id);
}

/** Top of the mmap area (mmap_base), in pages: below the stack, far from everything else. */
export function mmapBase(k: Kernel): number {
  return 2 ** (k.geo.vaBits - 1 - k.geo.pageShift) - 2 ** (30 - k.geo.pageShift);
}

/** unmapped_area_topdown: the highest aligned gap of the requested size below mmap_base. */
function chooseAddress(k: Kernel, mm: Mm, pages: number, align: number): number {
  let top = mmapBase(k);
  for (let i = mm.vmas.length - 1; i >= -1; i--) {
    const v = i >= 0 ? mm.vmas[i] : null;
    if (v && v.start >= top) continue;
    const gapLow = v ? v.end : 2 ** (16 - k.geo.pageShift > 0 ? 16 - k.geo.pageShift : 0);
    const start = Math.floor((top - pages) / align) * align;
    if (start >= gapLow) return start;
    if (!v) break;
    top = v.start;
  }
  throw new MmError('ENOMEM', `no free range of ${pages} pages`);
}

/** do_mmap of anonymous memory or of a file (req.file). Returns the start in pages. */
export function* doMmap(k: Kernel, mm: Mm, req: MmapRequest): Step<number> {
  if (req.pages <= 0) throw new MmError('EINVAL', 'length must be positive');
  yield lock(L_MMAP_WRITE, mm.id);
  try {
    let start: number;
    if (req.fixed !== undefined) {
      if (!mm.rangeFree(req.fixed, req.fixed + req.pages))
        throw new MmError('EEXIST', 'fixed range overlaps a mapping');
      start = req.fixed;
    } else start = chooseAddress(k, mm, req.pages, req.alignPages ?? 1);
    const file = req.file ?? 0;
    if (file && !k.files.has(file)) throw new MmError('EINVAL', `no file with id ${file}`);
    const vma = k.newVma(
      mm,
      start,
      start + req.pages,
      req.flags,
      file ? (req.pgoff ?? 0) : start,
      file,
      req.name,
    );
    // vma_link_file: a file VMA enters the file's i_mmap under its write lock.
    if (file) yield lock(L_I_MMAP_WRITE, file);
    mm.insertVma(vma);
    if (file) yield unlock(L_I_MMAP_WRITE, file);
    yield* mergeAround(mm, start, start + req.pages);
    const merged = mm.findVma(start)!;
    khugepagedEnterVma(k, merged);
    return start;
  } finally {
    yield* mmapWriteUnlock(mm);
  }
}

/** Detach, zap and free [start, end) of an mm; the caller holds the mmap write lock. */
export function* unmapRegion(k: Kernel, mm: Mm, start: number, end: number): Step<void> {
  const vmas: Vma[] = yield* splitRange(k, mm, start, end);
  if (vmas.length === 0) return;
  for (const vma of vmas) {
    yield* vmaStartWrite(vma);
    vma.detached = true;
    mm.removeVma(vma);
    // Still in the file's i_mmap (rmap walks reach its page tables) until free_pgtables.
    if (vma.file) k.files.get(vma.file)?.unlinking.add(vma);
  }
  // Neighbours that survive bound which page tables may be freed.
  const prev = mm.vmas.filter((v) => v.end <= start).pop();
  const next = mm.vmas.find((v) => v.start >= end);
  const floor = prev ? prev.end : 0;
  const ceiling = next ? next.start : Number.MAX_SAFE_INTEGER;
  for (const vma of vmas)
    yield* zapRange(k, vma, vma.start, vma.end, { keepGuards: false, reclaimTables: false });
  for (const vma of vmas) {
    // unlink_anon_vmas: under the anon_vma write lock, so rmap walks finish first.
    const av = vma.anonVma;
    if (av) yield* anonVmaLockWrite(av);
    anonVmaUnlinkAll(vma);
    if (av) yield* anonVmaUnlockWrite(av);
    if (vma.file) yield* unlinkFileVma(k, vma);
  }
  // tlb_remove_table: the tables are freed after an RCU grace period, which RCU readers and a
  // CPU with interrupts off (GUP-fast) hold up; the model waits for that point, then frees.
  // The page-table pages are about to go: CPUs must forget the upper-level entries they cached
  // (mmu_gather's freed_tables flush; 'no-psc-flush' is the checker's R12 bug).
  if (!k.bugs.has('no-psc-flush')) yield tlbFlushTables(mm.id);
  yield rcuGracePeriod();
  freePgtables(k, mm, vmas[0].start, vmas[vmas.length - 1].end, floor, ceiling);
}

/** do_vmi_munmap: write lock, detach, then (downgraded) tear down. */
export function* doMunmap(k: Kernel, mm: Mm, start: number, end: number): Step<void> {
  if (end <= start) throw new MmError('EINVAL', 'length must be positive');
  yield lock(L_MMAP_WRITE, mm.id);
  yield* unmapRegion(k, mm, start, end);
  mm.mmLockSeq++;
  yield ev(OP_DOWNGRADE, L_MMAP_WRITE, mm.id);
  yield unlock(L_MMAP_READ, mm.id);
}

/** exit_mmap: tear down every VMA and the tables, then forget the mm. */
export function* exitMmap(k: Kernel, mm: Mm): Step<void> {
  mm.exiting = true;
  yield lock(L_MMAP_WRITE, mm.id);
  if (mm.vmas.length) yield* unmapRegion(k, mm, mm.vmas[0].start, mm.vmas[mm.vmas.length - 1].end);
  yield* mmapWriteUnlock(mm);
  k.pt.pgd.state[mm.pgd] = 3; // T_DETACHED
  k.pt.pgd.free(mm.pgd);
  k.mms.delete(mm.id);
  const slot = k.khugepagedSlots.indexOf(mm.id);
  if (slot >= 0) k.khugepagedSlots.splice(slot, 1);
}
