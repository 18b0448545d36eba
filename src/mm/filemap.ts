// Files and the page cache (struct inode + struct address_space; mm/filemap.c, mm/truncate.c,
// mm/page-writeback.c): per-file index → folio arrays, the file rmap (i_mmap) walk that unmaps
// or write-protects a page-cache folio everywhere, writeback to the "disk", and drop_caches.
//
// A regular file keeps one content token per page on its disk; reading a page into the cache
// copies the token, writeback copies it back. tmpfs/shmem files have no disk: their pages exist
// only in the page cache (shmem swap is not modelled). Each page-cache folio holds 2^order
// references for the cache, has PG_FILE set and mapping = the file id, index = its first index.
//
// i_mmap is not kept as a separate structure: the VMAs mapping a file are found from the mms
// (vma.file), so VMA split, merge, mremap and fork need no extra bookkeeping. The i_mmap rwsem is
// still taken (L_I_MMAP_READ / L_I_MMAP_WRITE on the file id) where the kernel takes it.

import { PG_DIRTY, PG_FILE, PG_LOCKED, PG_LRU } from './folio.ts';
import type { Kernel } from './kernel.ts';
import { MmError } from './mmap.ts';
import { levelIndex, pmdTableOf } from './pagewalk.ts';
import { B_DIRTY, B_WRITE, E_PRESENT, E_TABLE, PMD } from './pgtable.ts';
import { rmapRemovePmd, rmapRemovePtes } from './rmap.ts';
import type { ShmemHuge } from './settings.ts';
import {
  L_FOLIO_LOCK,
  L_I_MMAP_READ,
  L_I_MMAP_WRITE,
  L_PMD_LOCK,
  L_PTE_LOCK,
  S_PMD_ENTRY,
  type Step,
  lock,
  readShared,
  unlock,
} from './step.ts';
import { VM_SHARED, type Vma } from './vma.ts';

const NONE = -1;

export interface CreateFileOptions {
  /** tmpfs/memfd (shmem) instead of a regular file on a block device. */
  tmpfs?: boolean;
  /** The shmem object behind MAP_SHARED|MAP_ANONYMOUS (shmem_zero_setup): per-size policy. */
  anon?: boolean;
  /** tmpfs mount option huge=; default: the internal mount's, which follows shmem_enabled. */
  huge?: ShmemHuge;
  /** Someone holds the file open for writing (inode_is_open_for_write). Default: no. */
  openForWrite?: boolean;
}

/** struct inode + struct address_space of one file. */
export class AddressSpace {
  readonly id: number;
  readonly name: string;
  /** i_size in pages. */
  readonly size: number;
  readonly tmpfs: boolean;
  /** vma_is_anon_shmem: backs MAP_SHARED|MAP_ANONYMOUS memory. */
  readonly anonShmem: boolean;
  /** The huge= option of the file's tmpfs mount, null for the internal mount. */
  readonly huge: ShmemHuge | null;
  /** inode_is_open_for_write (i_writecount > 0). */
  openForWrite: boolean;
  /** Regular files: the content token of every page on disk. Empty for tmpfs. */
  readonly disk: Int32Array;
  /** The page cache (i_pages): index → head pfn of the folio holding that index, or -1. */
  readonly cache: Int32Array;
  /** mapping->nrpages. */
  nrPages = 0;
  /** filemap_nr_thps: PMD-sized folios in the cache of a regular file. */
  nrThps = 0;
  /** VMAs munmap has detached but not yet unlinked from i_mmap (free_pgtables comes later). */
  readonly unlinking = new Set<Vma>();

  constructor(id: number, name: string, size: number, opts: CreateFileOptions) {
    this.id = id;
    this.name = name;
    this.size = size;
    this.tmpfs = opts.tmpfs === true || opts.anon === true;
    this.anonShmem = opts.anon === true;
    this.huge = this.tmpfs ? (opts.huge ?? null) : null;
    this.openForWrite = opts.openForWrite === true;
    this.disk = new Int32Array(this.tmpfs ? 0 : size);
    this.cache = new Int32Array(size).fill(NONE);
  }
}

/** Create a named file of the given size in pages, its content on "disk". Returns its id. */
export function createFile(
  k: Kernel,
  name: string,
  pages: number,
  opts: CreateFileOptions = {},
): number {
  if (!Number.isSafeInteger(pages) || pages <= 0)
    throw new MmError('EINVAL', `file size must be a positive number of pages (${pages})`);
  if (fileByName(k, name)) throw new MmError('EEXIST', `a file named '${name}' exists`);
  const file = new AddressSpace(k.nextFileId++, name, pages, opts);
  for (let i = 0; i < file.disk.length; i++) file.disk[i] = k.freshData();
  k.files.set(file.id, file);
  return file.id;
}

/** The id of a named file, or 0. */
export function fileByName(k: Kernel, name: string): number {
  for (const f of k.files.values()) if (f.name === name) return f.id;
  return 0;
}

/** The file with this id; a missing one is a model bug. */
export function fileOf(k: Kernel, id: number): AddressSpace {
  const f = k.files.get(id);
  if (!f) throw new Error(`no file with id ${id}`);
  return f;
}

/** shmem_file() / folio_test_swapbacked() for a page-cache folio. */
export function isShmemFolio(k: Kernel, head: number): boolean {
  return k.files.get(k.folios.mapping[head])?.tmpfs === true;
}

/** filemap_get_entry: the head of the folio caching index, or -1. */
export function filemapGetFolio(file: AddressSpace, index: number): number {
  return index >= 0 && index < file.size ? file.cache[index] : NONE;
}

/** folio_file_page: the page of a cached folio that holds index. */
export function folioFilePage(k: Kernel, head: number, index: number): number {
  return head + (index - k.folios.index[head]);
}

/** Count a folio in or out of the page-cache statistics. */
function accountCacheFolio(k: Kernel, file: AddressSpace, head: number, sign: 1 | -1): void {
  const n = k.folios.nrPagesOf(head);
  const st = k.fileStats;
  file.nrPages += sign * n;
  st.filePages += sign * n;
  if (file.tmpfs) st.shmem += sign * n;
  if (k.folios.order[head] === k.geo.pmdOrder) {
    if (file.tmpfs) st.shmemThps += sign * n;
    else {
      st.fileThps += sign * n;
      file.nrThps += sign;
    }
  }
}

/**
 * filemap_add_folio / shmem_add_to_page_cache: insert a new folio at index (aligned to its size).
 * The cache takes 2^order references; the caller keeps its own. Returns false when an entry is
 * already there (-EEXIST), changing nothing.
 */
export function addToPageCache(
  k: Kernel,
  file: AddressSpace,
  head: number,
  index: number,
): boolean {
  const f = k.folios;
  const n = f.nrPagesOf(head);
  if (index % n !== 0 || index + n > file.size)
    throw new Error(`folio of ${n} pages cannot sit at index ${index} of ${file.name}`);
  for (let i = 0; i < n; i++) if (file.cache[index + i] !== NONE) return false;
  f.set(head, PG_FILE | PG_LRU);
  f.mapping[head] = file.id;
  f.index[head] = index;
  file.cache.fill(head, index, index + n);
  k.folioGet(head, n);
  accountCacheFolio(k, file, head, 1);
  return true;
}

/**
 * __filemap_remove_folio: take a folio out of the cache (folio->mapping = NULL). The cache's
 * references stay with the folio: the caller drops them (folio_put_refs).
 */
export function removeFromPageCache(k: Kernel, file: AddressSpace, head: number): void {
  const f = k.folios;
  const index = f.index[head];
  const n = f.nrPagesOf(head);
  accountCacheFolio(k, file, head, -1);
  for (let i = 0; i < n; i++) if (file.cache[index + i] === head) file.cache[index + i] = NONE;
  f.clear(head, PG_FILE | PG_LRU | PG_DIRTY);
  f.mapping[head] = 0;
}

/**
 * Replace the cache entries of [index, index + 2^order) by a new folio (the multi-index store of
 * collapse_file); the folios that were there must already be out (removeFromPageCache).
 */
export function storeLargeFolio(k: Kernel, file: AddressSpace, head: number, index: number): void {
  const f = k.folios;
  const n = f.nrPagesOf(head);
  for (let i = 0; i < n; i++)
    if (file.cache[index + i] !== NONE)
      throw new Error(`collapse_file: index ${index + i} of ${file.name} still cached`);
  f.set(head, PG_FILE | PG_LRU);
  f.mapping[head] = file.id;
  f.index[head] = index;
  file.cache.fill(head, index, index + n);
  accountCacheFolio(k, file, head, 1);
}

/**
 * Read one page of a regular file into the cache (filemap_read_folio after a miss with
 * read_ahead_kb = 0: order 0, no readahead). Returns the folio with a reference for the caller,
 * NONE when out of memory, or an existing folio (also referenced) if one appeared meanwhile.
 */
export function filemapReadFolio(k: Kernel, file: AddressSpace, index: number): number {
  const folio = k.allocFolio(0);
  if (folio === NONE) return NONE;
  k.folios.data[folio] = file.disk[index];
  if (!addToPageCache(k, file, folio, index)) {
    k.folioPut(folio);
    const head = file.cache[index];
    k.folioGet(head);
    return head;
  }
  return folio;
}

// ---- the file rmap --------------------------------------------------------------------------

/**
 * unlink_file_vma: a munmapped VMA leaves i_mmap. The shmem object behind MAP_SHARED|MAP_ANONYMOUS
 * memory goes with its last mapping (fput → shmem_evict_inode): its pages are freed.
 */
export function* unlinkFileVma(k: Kernel, vma: Vma): Step<void> {
  const file = k.files.get(vma.file);
  if (!file) return;
  yield lock(L_I_MMAP_WRITE, file.id);
  file.unlinking.delete(vma);
  yield unlock(L_I_MMAP_WRITE, file.id);
  if (!file.anonShmem || fileVmas(k, file.id, 0, file.size - 1).length > 0) return;
  const f = k.folios;
  for (let index = 0; index < file.size;) {
    const head = file.cache[index];
    if (head === NONE) {
      index++;
      continue;
    }
    const n = f.nrPagesOf(head);
    index = f.index[head] + n;
    removeFromPageCache(k, file, head);
    k.folioPut(head, n);
  }
  k.files.delete(file.id);
}

/** vma_interval_tree_foreach over the file's i_mmap: VMAs mapping some index of [first, last]. */
export function fileVmas(k: Kernel, fileId: number, first: number, last: number): Vma[] {
  const out: Vma[] = [];
  const hit = (vma: Vma) => vma.pgoff <= last && vma.pgoff + vma.pages - 1 >= first;
  for (const mm of k.mms.values())
    for (const vma of mm.vmas) if (vma.file === fileId && !vma.detached && hit(vma)) out.push(vma);
  const file = k.files.get(fileId);
  if (file) for (const vma of file.unlinking) if (hit(vma)) out.push(vma);
  return out;
}

/** What rmap_walk_file visits: a huge PMD or one PTE mapping a page of the folio. */
interface FileMappingVisitor {
  pmd(vma: Vma, pmdT: number, pmdI: number): void;
  pte(vma: Vma, pteT: number, pteI: number, pfn: number): void;
}

/**
 * rmap_walk_file with page_vma_mapped_walk: for every VMA of the file covering the folio, each
 * PMD or PTE that maps it, visited under the PMD or PTE lock. The caller holds the folio lock.
 */
function* rmapWalkFile(k: Kernel, head: number, v: FileMappingVisitor): Step<void> {
  const f = k.folios;
  const fileId = f.mapping[head];
  const first = f.index[head];
  const n = f.nrPagesOf(head);
  const ptrs = k.geo.ptrsPerPte;
  const pmd = k.pt.pmd;
  const pte = k.pt.pte;
  yield lock(L_I_MMAP_READ, fileId);
  for (const vma of fileVmas(k, fileId, first, first + n - 1)) {
    for (let i = 0; i < n;) {
      const vpn = vma.addressOf(first + i);
      if (vpn < 0) {
        i++;
        continue;
      }
      const pmdT = pmdTableOf(k, vma.mm, vpn);
      const pmdI = levelIndex(k, vpn, PMD);
      // Pages of the folio under this PMD entry.
      const span = Math.min(n - i, ptrs - (vpn % ptrs));
      if (pmdT) {
        yield readShared(S_PMD_ENTRY, pmdT * pmd.entriesPerTable + pmdI);
        const type = pmd.type(pmdT, pmdI);
        if (type === E_PRESENT && pmd.getVal(pmdT, pmdI) === head) {
          yield lock(L_PMD_LOCK, pmdT);
          if (pmd.type(pmdT, pmdI) === E_PRESENT && pmd.getVal(pmdT, pmdI) === head)
            v.pmd(vma, pmdT, pmdI);
          yield unlock(L_PMD_LOCK, pmdT);
        } else if (type === E_TABLE) {
          const pteT = pmd.getVal(pmdT, pmdI);
          yield lock(L_PTE_LOCK, pteT);
          if (pmd.type(pmdT, pmdI) === E_TABLE && pmd.getVal(pmdT, pmdI) === pteT) {
            for (let j = 0; j < span; j++) {
              const pteI = (vpn + j) % ptrs;
              if (vma.addressOf(first + i + j) < 0) continue;
              const pfn = head + i + j;
              if (pte.type(pteT, pteI) === E_PRESENT && pte.getVal(pteT, pteI) === pfn)
                v.pte(vma, pteT, pteI, pfn);
            }
          }
          yield unlock(L_PTE_LOCK, pteT);
        }
      }
      i += span;
    }
  }
  yield unlock(L_I_MMAP_READ, fileId);
}

/**
 * try_to_unmap for a page-cache folio: remove every PTE and PMD mapping it, moving the dirty bit
 * of the entries to the folio. Private COW copies are anonymous and stay. Folio locked.
 */
export function* tryToUnmapFile(k: Kernel, head: number): Step<void> {
  const f = k.folios;
  if (f.mapcount[head] === 0) return;
  const pt = k.pt;
  const gathered: number[] = [];
  yield* rmapWalkFile(k, head, {
    pmd(vma, pmdT, pmdI) {
      if (pt.pmd.getBits(pmdT, pmdI) & B_DIRTY) f.set(head, PG_DIRTY);
      pt.pmd.clear(pmdT, pmdI);
      rmapRemovePmd(k, head, vma);
      gathered.push(1);
    },
    pte(vma, pteT, pteI, pfn) {
      if (pt.pte.getBits(pteT, pteI) & B_DIRTY) f.set(head, PG_DIRTY);
      pt.pte.clear(pteT, pteI);
      rmapRemovePtes(k, head, pfn, 1, vma);
      gathered.push(1);
    },
  });
  // The mappings' references go after the TLB flush.
  if (gathered.length) k.folioPut(head, gathered.length);
}

/** folio_mkclean: write-protect and clean every shared mapping of the folio before writeback. */
function* folioMkclean(k: Kernel, head: number): Step<void> {
  const pt = k.pt;
  const f = k.folios;
  yield* rmapWalkFile(k, head, {
    pmd(vma, pmdT, pmdI) {
      const bits = pt.pmd.getBits(pmdT, pmdI);
      if (bits & B_DIRTY) f.set(head, PG_DIRTY);
      if (vma.flags & VM_SHARED) pt.pmd.set(pmdT, pmdI, head, bits & ~(B_WRITE | B_DIRTY));
    },
    pte(vma, pteT, pteI, pfn) {
      const bits = pt.pte.getBits(pteT, pteI);
      if (bits & B_DIRTY) f.set(head, PG_DIRTY);
      if (vma.flags & VM_SHARED) pt.pte.set(pteT, pteI, pfn, bits & ~(B_WRITE | B_DIRTY));
    },
  });
}

/**
 * filemap_write_and_wait_range over page indices [start, end): write every dirty folio of a
 * regular file back to its disk and wait (writeback completes at once in the model). tmpfs has
 * nothing to write back (mapping_can_writeback is false).
 */
export function* filemapWriteAndWaitRange(
  k: Kernel,
  file: AddressSpace,
  start: number,
  end: number,
): Step<void> {
  if (file.tmpfs) return;
  const f = k.folios;
  for (let index = Math.max(0, start); index < Math.min(end, file.size);) {
    const head = file.cache[index];
    if (head === NONE) {
      index++;
      continue;
    }
    const next = f.index[head] + f.nrPagesOf(head);
    if (f.mapcount[head] > 0 || f.flags[head] & PG_DIRTY) {
      // write_cache_pages: lock the folio, clear its dirty state, write it.
      k.folioGet(head);
      yield lock(L_FOLIO_LOCK, head);
      f.set(head, PG_LOCKED);
      if (f.mapping[head] === file.id) {
        yield* folioMkclean(k, head);
        if (f.flags[head] & PG_DIRTY) {
          const n = f.nrPagesOf(head);
          const first = f.index[head];
          for (let i = 0; i < n; i++) file.disk[first + i] = f.data[head + i];
          f.clear(head, PG_DIRTY);
        }
      }
      f.clear(head, PG_LOCKED);
      yield unlock(L_FOLIO_LOCK, head);
      k.folioPut(head);
    }
    index = next;
  }
}

/**
 * echo 3 > /proc/sys/vm/drop_caches for the page cache (invalidate_mapping_pages on every
 * regular file): evict clean, unmapped, unlocked folios nobody else holds. tmpfs pages have no
 * backing store and stay.
 */
export function dropCaches(k: Kernel): void {
  const f = k.folios;
  for (const file of k.files.values()) {
    if (file.tmpfs) continue;
    for (let index = 0; index < file.size;) {
      const head = file.cache[index];
      if (head === NONE) {
        index++;
        continue;
      }
      const n = f.nrPagesOf(head);
      index = f.index[head] + n;
      const busy =
        f.flags[head] & (PG_DIRTY | PG_LOCKED) ||
        f.mapcount[head] > 0 ||
        f.refcount[head] !== n ||
        f.pincount[head] > 0;
      if (busy) continue;
      removeFromPageCache(k, file, head);
      k.folioPut(head, n);
    }
  }
}

/**
 * Open (or close the last writer of) a file for writing. Opening a regular file that has
 * PMD-sized folios in its cache first drops its page cache (do_dentry_open: the huge page cache
 * of CONFIG_READ_ONLY_THP_FOR_FS does not support writes): the page-cache pages are unmapped
 * everywhere, dirty ones written back, and all of them evicted.
 */
export function* setFileOpenForWrite(k: Kernel, fileId: number, open: boolean): Step<void> {
  const file = fileOf(k, fileId);
  file.openForWrite = open;
  if (!open || file.tmpfs || file.nrThps === 0) return;
  const f = k.folios;
  for (let index = 0; index < file.size;) {
    const head = file.cache[index];
    if (head === NONE) {
      index++;
      continue;
    }
    const n = f.nrPagesOf(head);
    index = f.index[head] + n;
    k.folioGet(head);
    yield lock(L_FOLIO_LOCK, head);
    f.set(head, PG_LOCKED);
    yield* tryToUnmapFile(k, head);
    if (f.flags[head] & PG_DIRTY)
      for (let i = 0; i < n; i++) file.disk[f.index[head] + i] = f.data[head + i];
    removeFromPageCache(k, file, head);
    f.clear(head, PG_LOCKED);
    yield unlock(L_FOLIO_LOCK, head);
    k.folioPut(head, n + 1);
  }
}
