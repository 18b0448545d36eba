import { describe, expect, it } from 'vitest';
import {
  createFile,
  fileByName,
  fileOf,
  filemapWriteAndWaitRange,
  setFileOpenForWrite,
} from '../src/mm/filemap.ts';
import { PG_ANON, PG_DIRTY, PG_FILE } from '../src/mm/folio.ts';
import type { GeometryName } from '../src/mm/geometry.ts';
import { doMmap, doMunmap } from '../src/mm/mmap.ts';
import { VM_MAYWRITE, VM_READ, VM_SHARED, VM_WRITE } from '../src/mm/vma.ts';
import { Errno, Machine, type Mm } from '../src/sim/machine.ts';
import { KiB, MiB, checked, folioAt, pageValue, resolve } from './support/ref-model.ts';

function setup(opts: { ramBytes?: number; geometry?: GeometryName } = {}) {
  const raw = new Machine({
    strictLocks: true,
    ramBytes: opts.ramBytes ?? 128 * MiB,
    geometry: opts.geometry,
  });
  const m = checked(raw);
  return { m, k: raw.kernel, ps: raw.kernel.geo.pageSize };
}

type Setup = ReturnType<typeof setup>;

/** The disk content of a file page. */
function disk(s: Setup, name: string, index: number): number {
  return fileOf(s.k, fileByName(s.k, name)).disk[index];
}

/** What a user read of addr sees right now (0 for none). */
function value(s: Setup, mm: Mm, addr: number): number {
  return pageValue(s.k, mm, addr / s.ps);
}

/** The page cache entry (head pfn) of a file index. */
function cached(s: Setup, name: string, index: number): number {
  return fileOf(s.k, fileByName(s.k, name)).cache[index];
}

describe('files', () => {
  it('createFile validates and names files', () => {
    const s = setup();
    s.m.createFile('a', 10 * s.ps);
    expect(fileByName(s.k, 'a')).toBeGreaterThan(0);
    expect(fileByName(s.k, 'nope')).toBe(0);
    expect(() => s.m.createFile('a', s.ps)).toThrow(Errno);
    expect(() => s.m.createFile('b', 0)).toThrow(Errno);
    const f = fileOf(s.k, fileByName(s.k, 'a'));
    expect(f.size).toBe(10);
    // Fresh, distinct, nonzero content on disk; nothing cached yet.
    expect(new Set(f.disk).size).toBe(10);
    expect(f.disk.every((t) => t !== 0)).toBe(true);
    expect(f.cache.every((h) => h === -1)).toBe(true);
    const mm = s.m.spawn('p');
    expect(() => s.m.mmap(mm, { lengthBytes: s.ps, file: 'missing' })).toThrow(Errno);
  });
});

describe('read faults', () => {
  it('map page-cache pages read-only with the disk data; a second reader shares them', () => {
    const s = setup();
    const { m } = s;
    m.createFile('f', 8 * s.ps);
    const p = m.spawn('p');
    const q = m.spawn('q');
    const a = m.mmap(p, { lengthBytes: 8 * s.ps, file: 'f', prot: 'rx' });
    expect(m.touch(p, a, 8 * s.ps, false)).toBe('fault');
    expect(m.vmstat().pgmajfault).toBe(8);
    for (let i = 0; i < 8; i++) {
      const r = resolve(s.k, p, a / s.ps + i);
      expect(r.kind).toBe('page');
      expect(r.writable).toBe(false);
      expect(r.pfn).toBe(cached(s, 'f', i));
      expect(value(s, p, a + i * s.ps)).toBe(disk(s, 'f', i));
      expect(s.k.folios.flags[r.pfn] & PG_FILE).toBeTruthy();
    }
    expect(p.rssFile).toBe(8);
    expect(p.rssAnon).toBe(0);
    expect(m.smaps(p)[0]).toMatchObject({ Rss: 8 * (s.ps / KiB), Anonymous: 0, FilePmdMapped: 0 });
    expect(m.touch(p, a, 8 * s.ps, false)).toBe('hit');
    // The second process finds the pages cached: no more major faults, the same frames.
    const b = m.mmap(q, { lengthBytes: 4 * s.ps, file: 'f', offsetBytes: 4 * s.ps, prot: 'r' });
    m.touch(q, b, 4 * s.ps, false);
    expect(m.vmstat().pgmajfault).toBe(8);
    for (let i = 0; i < 4; i++)
      expect(resolve(s.k, q, b / s.ps + i).pfn).toBe(resolve(s.k, p, a / s.ps + 4 + i).pfn);
    expect(s.k.fileStats).toMatchObject({ filePages: 8, fileMapped: 8, shmem: 0 });
  });

  it('an access beyond the end of the file fails (SIGBUS)', () => {
    const s = setup();
    s.m.createFile('f', 2 * s.ps);
    const p = s.m.spawn('p');
    const a = s.m.mmap(p, { lengthBytes: 4 * s.ps, file: 'f', prot: 'r' });
    expect(s.m.access(p, a + s.ps, false)).toBe('fault');
    expect(s.m.access(p, a + 2 * s.ps, false)).toBe('sigsegv');
  });

  it('munmap and exit keep the page cache; drop_caches evicts clean unmapped folios only', () => {
    const s = setup();
    const { m } = s;
    m.createFile('f', 4 * s.ps);
    const p = m.spawn('p');
    const a = m.mmap(p, { lengthBytes: 4 * s.ps, file: 'f', prot: 'r' });
    m.touch(p, a, 4 * s.ps, false);
    const frames = [0, 1, 2, 3].map((i) => cached(s, 'f', i));
    m.dropCaches();
    // Mapped pages stay.
    expect([0, 1, 2, 3].map((i) => cached(s, 'f', i))).toEqual(frames);
    m.munmap(p, a, 2 * s.ps);
    expect(cached(s, 'f', 0)).toBe(frames[0]);
    expect(s.k.folios.refcount[frames[0]]).toBe(1); // the cache's reference only
    m.dropCaches();
    expect(cached(s, 'f', 0)).toBe(-1);
    expect(cached(s, 'f', 2)).toBe(frames[2]);
    m.exit(p);
    expect(cached(s, 'f', 2)).toBe(frames[2]);
    const free = s.k.buddy.freePages;
    m.dropCaches();
    expect(s.k.buddy.freePages).toBe(free + 2);
    expect(s.k.fileStats.filePages).toBe(0);
  });
});

describe('write faults', () => {
  it('MAP_PRIVATE: a write copies the page into an anon folio; the page cache keeps the disk data', () => {
    const s = setup();
    const { m, k } = s;
    m.createFile('f', 4 * s.ps);
    const p = m.spawn('p');
    const a = m.mmap(p, { lengthBytes: 4 * s.ps, file: 'f', prot: 'rw' });
    // Page 0: write to a missing entry (do_cow_fault). Page 1: read, then write (do_wp_page).
    expect(m.access(p, a, true)).toBe('fault');
    expect(m.access(p, a + s.ps, false)).toBe('fault');
    const before = resolve(k, p, a / s.ps + 1).pfn;
    expect(m.access(p, a + s.ps, true)).toBe('fault');
    for (const i of [0, 1]) {
      const r = resolve(k, p, a / s.ps + i);
      expect(r.writable).toBe(true);
      expect(k.folios.flags[r.pfn] & PG_ANON).toBeTruthy();
      expect(value(s, p, a + i * s.ps)).not.toBe(disk(s, 'f', i));
      // The cached page is untouched.
      expect(k.folios.data[cached(s, 'f', i)]).toBe(disk(s, 'f', i));
    }
    expect(resolve(k, p, a / s.ps + 1).pfn).not.toBe(before);
    expect(p.rssAnon).toBe(2);
    expect(p.rssFile).toBe(0);
    expect(k.folios.flags[cached(s, 'f', 0)] & PG_DIRTY).toBe(0);
    // Another mapping of the file still reads the disk data.
    const q = m.spawn('q');
    const b = m.mmap(q, { lengthBytes: 4 * s.ps, file: 'f', prot: 'r' });
    m.access(q, b, false);
    expect(value(s, q, b)).toBe(disk(s, 'f', 0));
  });

  it('MAP_SHARED: a write dirties the page-cache folio, others see it, writeback cleans it', () => {
    const s = setup();
    const { m, k } = s;
    m.createFile('f', 4 * s.ps, { openForWrite: true });
    const p = m.spawn('p');
    const q = m.spawn('q');
    const a = m.mmap(p, { lengthBytes: 4 * s.ps, file: 'f', prot: 'rw', shared: true });
    const b = m.mmap(q, { lengthBytes: 4 * s.ps, file: 'f', prot: 'r', shared: true });
    // A read maps a regular file's page read-only (write notification)...
    m.access(p, a, false);
    expect(resolve(k, p, a / s.ps).writable).toBe(false);
    // ...so the first write faults (wp_page_shared) and dirties the folio.
    expect(m.access(p, a, true)).toBe('fault');
    expect(m.access(p, a + s.ps, true)).toBe('fault'); // do_shared_fault
    const head = cached(s, 'f', 0);
    expect(k.folios.flags[head] & PG_DIRTY).toBeTruthy();
    expect(resolve(k, p, a / s.ps).writable).toBe(true);
    expect(p.rssFile).toBe(2);
    expect(p.rssAnon).toBe(0);
    m.access(q, b, false);
    expect(value(s, q, b)).toBe(value(s, p, a));
    expect(value(s, q, b)).not.toBe(disk(s, 'f', 0));
    // Dirty folios survive drop_caches even when unmapped.
    m.munmap(q, b, 4 * s.ps);
    m.munmap(p, a + s.ps, s.ps);
    m.dropCaches();
    expect(cached(s, 'f', 1)).not.toBe(-1);
    // Writeback: the disk gets the data, the folio is clean and the mapping write-protected.
    const written = value(s, p, a);
    k.run(filemapWriteAndWaitRange(k, fileOf(k, fileByName(k, 'f')), 0, 4));
    m.checkInvariants();
    expect(disk(s, 'f', 0)).toBe(written);
    expect(k.folios.flags[head] & PG_DIRTY).toBe(0);
    expect(resolve(k, p, a / s.ps).writable).toBe(false);
    expect(m.access(p, a, true)).toBe('fault');
    expect(k.folios.flags[head] & PG_DIRTY).toBeTruthy();
    // Evicted after writeback, re-read from disk with the written data.
    const w1 = disk(s, 'f', 1);
    m.dropCaches();
    expect(cached(s, 'f', 1)).toBe(-1);
    const c = m.mmap(q, { lengthBytes: 4 * s.ps, file: 'f', prot: 'r', shared: true });
    m.access(q, c + s.ps, false);
    expect(value(s, q, c + s.ps)).toBe(w1);
  });

  it('munmap moves a dirty PTE bit to the folio', () => {
    const s = setup();
    const { m, k } = s;
    m.createFile('f', 2 * s.ps, { openForWrite: true });
    const p = m.spawn('p');
    const a = m.mmap(p, { lengthBytes: 2 * s.ps, file: 'f', prot: 'rw', shared: true });
    m.access(p, a, true);
    const head = cached(s, 'f', 0);
    k.run(filemapWriteAndWaitRange(k, fileOf(k, fileByName(k, 'f')), 0, 2));
    // Make the entry writable and dirty again behind writeback's back, as the MMU would after
    // a write through a writable entry.
    m.access(p, a, true);
    k.folios.clear(head, PG_DIRTY);
    m.munmap(p, a, 2 * s.ps);
    expect(k.folios.flags[head] & PG_DIRTY).toBeTruthy();
  });
});

describe('shmem', () => {
  it('MAP_SHARED anonymous memory: write faults allocate zeroed page-cache pages', () => {
    const s = setup();
    const { m, k } = s;
    const p = m.spawn('p');
    const a = m.mmap(p, { lengthBytes: 8 * s.ps, shared: true });
    expect(m.access(p, a, false)).toBe('fault');
    expect(value(s, p, a)).toBe(0);
    // A read fault on shmem allocates a page too, mapped writable in a shared writable VMA.
    expect(resolve(k, p, a / s.ps).writable).toBe(true);
    expect(m.touch(p, a, 8 * s.ps, true)).toBe('fault');
    expect(p.rssShmem).toBe(8);
    expect(p.rssAnon).toBe(0);
    expect(k.fileStats.shmem).toBe(8);
    expect(m.smaps(p)[0]).toMatchObject({ Rss: 8 * (s.ps / KiB), Anonymous: 0, ShmemPmdMapped: 0 });
    // drop_caches leaves shmem alone.
    m.dropCaches();
    expect(k.fileStats.shmem).toBe(8);
    // fork shares the pages: the child's write is seen by the parent.
    const c = m.fork(p, 'c');
    expect(c.rssShmem).toBe(0); // no anon_vma: the child refaults
    m.access(c, a + s.ps, true);
    expect(value(s, p, a + s.ps)).toBe(value(s, c, a + s.ps));
    expect(resolve(k, c, a / s.ps + 1).pfn).toBe(resolve(k, p, a / s.ps + 1).pfn);
  });

  it('the shmem object of MAP_SHARED|MAP_ANONYMOUS goes with its last mapping', () => {
    const s = setup();
    const { m, k } = s;
    const p = m.spawn('p');
    const id = createFile(k, 'anon-shmem', 4, { anon: true });
    const flags = VM_READ | VM_WRITE | VM_MAYWRITE | VM_SHARED;
    const start = k.run(doMmap(k, p, { pages: 4, flags, name: 'shm', file: id }));
    m.touch(p, start * s.ps, 4 * s.ps, true);
    const c = m.fork(p, 'c');
    m.access(c, start * s.ps, false);
    const free = k.buddy.freePages;
    k.run(doMunmap(k, p, start, start + 4));
    m.checkInvariants();
    expect(k.files.has(id)).toBe(true);
    m.exit(c);
    expect(k.files.has(id)).toBe(false);
    expect(k.buddy.freePages).toBe(free + 4);
  });

  it('shmem_enabled=always: a fault in an aligned memfd mapping allocates a PMD THP', () => {
    const s = setup();
    const { m, k } = s;
    m.sysfsWrite('shmem_enabled', 'always');
    m.createFile('memfd', 4 * MiB, { tmpfs: true });
    const p = m.spawn('p');
    const a = m.mmap(p, { lengthBytes: 4 * MiB, alignBytes: 2 * MiB, file: 'memfd', shared: true });
    expect(m.access(p, a + 5 * s.ps, true)).toBe('fault');
    expect(m.smaps(p)[0].ShmemPmdMapped).toBe(2048);
    expect(m.mthpStats()['2048kB'].shmem_alloc).toBe(1);
    expect(k.fileStats.shmemThps).toBe(512);
    expect(m.touch(p, a, 2 * MiB, true)).toBe('hit');
    // advise: only with MADV_HUGEPAGE.
    m.sysfsWrite('shmem_enabled', 'advise');
    m.access(p, a + 2 * MiB, false);
    expect(m.smaps(p)[0].ShmemPmdMapped).toBe(2048);
    m.madvise(p, a + 2 * MiB, 2 * MiB, 'hugepage');
    m.access(p, a + 3 * MiB, false);
    // Page 0 of the second PMD is cached small: no PMD-sized folio there any more.
    expect(folioAt(k, p, (a + 3 * MiB) / s.ps)).not.toBe(-1);
    expect(m.smaps(p).reduce((n, e) => n + e.ShmemPmdMapped, 0)).toBe(2048);
  });
});

describe('fork of file mappings', () => {
  it('a shared mapping copies no page tables; a private one with an anon_vma copies PTEs', () => {
    const s = setup();
    const { m, k } = s;
    m.createFile('f', 4 * s.ps, { openForWrite: true });
    const p = m.spawn('p');
    const sh = m.mmap(p, { lengthBytes: 4 * s.ps, file: 'f', prot: 'rw', shared: true });
    const pr = m.mmap(p, { lengthBytes: 4 * s.ps, file: 'f', prot: 'rw' });
    m.touch(p, sh, 4 * s.ps, false);
    m.touch(p, pr, 4 * s.ps, false);
    m.access(p, pr + 2 * s.ps, true); // gives the private VMA an anon_vma and one anon page
    const c = m.fork(p, 'c');
    expect(resolve(k, c, sh / s.ps).kind).toBe('none');
    expect(resolve(k, c, pr / s.ps).pfn).toBe(resolve(k, p, pr / s.ps).pfn);
    expect(c.rssFile).toBe(3);
    expect(c.rssAnon).toBe(1);
    // The anon page is shared read-only; writes on either side copy it.
    const copy = value(s, p, pr + 2 * s.ps);
    expect(value(s, c, pr + 2 * s.ps)).toBe(copy);
    m.access(c, pr + 2 * s.ps, true);
    expect(value(s, p, pr + 2 * s.ps)).toBe(copy);
    expect(value(s, c, pr + 2 * s.ps)).not.toBe(copy);
    // The child writes a file page of its private mapping: its own copy, the file unchanged.
    m.access(c, pr, true);
    expect(value(s, p, pr)).toBe(disk(s, 'f', 0));
    m.exit(c);
    m.exit(p);
  });
});

describe('open for write', () => {
  it('opening a file with PMD-sized folios for writing drops its page cache', () => {
    const s = setup();
    const { m, k } = s;
    m.createFile('f', 2 * MiB);
    const p = m.spawn('p');
    const a = m.mmap(p, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB, file: 'f', prot: 'r' });
    m.touch(p, a, 2 * MiB, false);
    expect(m.collapse(p, a, 2 * MiB).errno).toBe(0);
    expect(m.smaps(p)[0].FilePmdMapped).toBe(2048);
    const id = fileByName(k, 'f');
    k.run(setFileOpenForWrite(k, id, true));
    m.checkInvariants();
    expect(fileOf(k, id).nrPages).toBe(0);
    expect(m.smaps(p)[0].Rss).toBe(0);
    // The data is still the file's.
    m.access(p, a + 7 * s.ps, false);
    expect(value(s, p, a + 7 * s.ps)).toBe(disk(s, 'f', 7));
    // A file open for writing is not eligible.
    expect(m.collapse(p, a, 2 * MiB).errno).toBe('EINVAL');
  });
});

describe('sysfs shmem_enabled', () => {
  it('defaults, bracket syntax, and the kernel store rules', () => {
    const s = setup();
    const { m, k } = s;
    expect(m.sysfsRead('shmem_enabled')).toBe('always within_size advise [never] deny force\n');
    expect(m.sysfsRead('hugepages-2048kB/shmem_enabled')).toBe(
      'always [inherit] within_size advise never\n',
    );
    expect(m.sysfsRead('hugepages-64kB/shmem_enabled')).toBe(
      'always inherit within_size advise [never]\n',
    );
    m.sysfsWrite('shmem_enabled', 'within_size\n');
    expect(m.sysfsRead('shmem_enabled')).toBe('always [within_size] advise never deny force\n');
    expect(k.settings.shmemMntHuge).toBe('within_size');
    m.sysfsWrite('shmem_enabled', 'deny');
    expect(k.settings.shmemMntHuge).toBe('within_size');
    expect(() => m.sysfsWrite('shmem_enabled', 'madvise')).toThrow(Errno);
    expect(() => m.sysfsWrite('shmem_enabled', 'never\n\n')).toThrow(Errno);
    // force only while no size but the PMD size inherits.
    m.sysfsWrite('hugepages-64kB/shmem_enabled', 'inherit');
    expect(() => m.sysfsWrite('shmem_enabled', 'force')).toThrow(Errno);
    m.sysfsWrite('hugepages-64kB/shmem_enabled', 'never');
    m.sysfsWrite('shmem_enabled', 'force');
    expect(() => m.sysfsWrite('hugepages-64kB/shmem_enabled', 'inherit')).toThrow(Errno);
    m.sysfsWrite('hugepages-2048kB/shmem_enabled', 'inherit');
    m.sysfsWrite('hugepages-64kB/shmem_enabled', 'advise');
    expect(m.sysfsRead('hugepages-64kB/shmem_enabled')).toBe(
      'always inherit within_size [advise] never\n',
    );
  });

  it('arm64-64k: no PMD-sized page-cache folios (MAX_PAGECACHE_ORDER 11)', () => {
    const s = setup({ geometry: 'arm64-64k', ramBytes: 2 * 1024 * MiB });
    const { m, k } = s;
    expect(() => m.sysfsRead('hugepages-524288kB/shmem_enabled')).toThrow(Errno);
    expect(m.sysfsRead('hugepages-2048kB/shmem_enabled')).toBe(
      'always inherit within_size advise [never]\n',
    );
    m.createFile('f', 16 * s.ps);
    const p = m.spawn('p');
    const pmd = k.geo.pmdSize;
    const a = m.mmap(p, { lengthBytes: pmd, alignBytes: pmd, file: 'f', prot: 'r' });
    expect(m.touch(p, a, 16 * s.ps, false)).toBe('fault');
    expect(value(s, p, a + 15 * s.ps)).toBe(disk(s, 'f', 15));
    expect(p.rssFile).toBe(16);
    // Neither MADV_COLLAPSE nor khugepaged may build a 512 MiB page-cache folio.
    expect(m.collapse(p, a, pmd).errno).toBe('EINVAL');
    expect(() => m.madvise(p, a, pmd, 'collapse')).toThrow(Errno);
    m.exit(p);
  });
});
