// File and shmem collapse against the kernel selftests' file and shmem cases
// (tools/testing/selftests/mm/khugepaged.c) plus the retract rules of retract_page_tables and
// try_collapse_pte_mapped_thp.

import { describe, expect, it } from 'vitest';
import { collapseScanFile, tryCollapsePteMappedThp } from '../src/khugepaged/collapse-file.ts';
import { newCollapseControl } from '../src/khugepaged/control.ts';
import type { ScanResult } from '../src/khugepaged/scan-result.ts';
import { fileByName, fileOf, setFileOpenForWrite } from '../src/mm/filemap.ts';
import { PG_ANON } from '../src/mm/folio.ts';
import type { GeometryName } from '../src/mm/geometry.ts';
import type { ProfileName } from '../src/mm/profile.ts';
import { L_MMAP_READ, type Step, lock, unlock } from '../src/mm/step.ts';
import type { TraceEvent } from '../src/mm/trace.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';
import { MiB, checked, pageValue, resolve } from './support/ref-model.ts';

type Mem = 'file' | 'shmem';

function setup(opts: { geometry?: GeometryName; profile?: ProfileName; ramBytes?: number } = {}) {
  const raw = new Machine({
    strictLocks: true,
    ramBytes: opts.ramBytes ?? 256 * MiB,
    geometry: opts.geometry,
    profile: opts.profile,
  });
  const m = checked(raw);
  const k = raw.kernel;
  // The selftests' settings (§1.1).
  m.sysfsWrite('enabled', 'madvise');
  m.sysfsWrite('defrag', 'always');
  m.sysfsWrite('shmem_enabled', 'advise');
  m.sysfsWrite('use_zero_page', '0');
  m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
  m.sysfsWrite('khugepaged/alloc_sleep_millisecs', '10');
  return { m, k, ps: k.geo.pageSize, nr: k.geo.ptrsPerPte, pmd: k.geo.pmdSize };
}

type Setup = ReturnType<typeof setup>;

interface Area {
  mm: Mm;
  addr: number;
  name: string;
  len: number;
}

/**
 * The selftests' areas: "file" is a regular file reopened read-only and mapped
 * PROT_READ|PROT_EXEC MAP_PRIVATE; "shmem" a memfd mapped shared read-write.
 */
function area(s: Setup, mem: Mem, pmds = 1, name = mem === 'file' ? 'f' : 'memfd'): Area {
  const len = pmds * s.pmd;
  if (!fileByName(s.k, name)) s.m.createFile(name, len, { tmpfs: mem === 'shmem' });
  const mm = s.m.spawn(`${mem}-user`);
  const addr =
    mem === 'file'
      ? s.m.mmap(mm, { lengthBytes: len, alignBytes: s.pmd, file: name, prot: 'rx' })
      : s.m.mmap(mm, { lengthBytes: len, alignBytes: s.pmd, file: name, prot: 'rw', shared: true });
  return { mm, addr, name, len };
}

/** The selftests' fault: MADV_POPULATE_READ for file, a write to every page for shmem. */
function fault(s: Setup, a: Area, mem: Mem, from = 0, pages = a.len / s.ps): void {
  s.m.touch(a.mm, a.addr + from * s.ps, pages * s.ps, mem === 'shmem');
}

/** FilePmdMapped / ShmemPmdMapped of the area's VMAs, in kB (what check_huge reads). */
function pmdMappedKb(s: Setup, a: Area, mem: Mem): number {
  return s.m
    .smaps(a.mm)
    .filter((e) => e.start >= a.addr && e.end <= a.addr + a.len)
    .reduce((n, e) => n + (mem === 'file' ? e.FilePmdMapped : e.ShmemPmdMapped), 0);
}

/** Every page of the area reads what the file holds (disk or page cache). */
function expectData(s: Setup, a: Area, expected: (i: number) => number): void {
  const pages = a.len / s.ps;
  for (let i = 0; i < pages; i++)
    if (pageValue(s.k, a.mm, a.addr / s.ps + i) !== expected(i))
      throw new Error(`page ${i}: ${pageValue(s.k, a.mm, a.addr / s.ps + i)}, want ${expected(i)}`);
}

/** The page-cache folio (head) holding index, and its order. */
function cacheAt(s: Setup, name: string, index: number): { head: number; order: number } {
  const head = fileOf(s.k, fileByName(s.k, name)).cache[index];
  return { head, order: head < 0 ? -1 : s.k.folios.order[head] };
}

/**
 * The selftests' khugepaged context: MADV_HUGEPAGE, wait for two full scans, refault (with
 * reads here, so that the data check afterwards sees what was there before).
 */
function khugepagedCollapse(s: Setup, a: Area): void {
  s.m.madvise(a.mm, a.addr, a.len, 'hugepage');
  s.m.waitKhugepaged(2);
  fault(s, a, 'file');
}

/** Run a kernel step on the machine's kernel, then check the invariants. */
function run<T>(s: Setup, step: Step<T>): T {
  const r = s.k.run(step);
  s.m.checkInvariants();
  return r;
}

function* withMmapRead<T>(mm: Mm, body: Step<T>): Step<T> {
  yield lock(L_MMAP_READ, mm.id);
  const r = yield* body;
  yield unlock(L_MMAP_READ, mm.id);
  return r;
}

function scanFile(s: Setup, a: Area, khugepaged: boolean, offset = 0): ScanResult {
  const vpn = a.addr / s.ps + offset;
  const vma = a.mm.findVma(vpn)!;
  const haddr = vpn - (vpn % s.k.geo.ptrsPerPte);
  return run(
    s,
    collapseScanFile(
      s.k,
      a.mm,
      vma.file,
      vma.linearIndex(haddr),
      haddr,
      newCollapseControl(khugepaged),
    ),
  );
}

const MEMS: Mem[] = ['file', 'shmem'];

describe('collapse_full', () => {
  for (const mem of MEMS) {
    it(`${mem}: khugepaged collapses 4 fully populated PMDs`, () => {
      const s = setup();
      const a = area(s, mem, 4);
      fault(s, a, mem);
      const before = (i: number) => pageValue(s.k, a.mm, a.addr / s.ps + i);
      const want = Array.from({ length: 4 * s.nr }, (_, i) => before(i));
      expect(pmdMappedKb(s, a, mem)).toBe(0);
      khugepagedCollapse(s, a);
      expect(pmdMappedKb(s, a, mem)).toBe(4 * 2048);
      expectData(s, a, (i) => want[i]);
      for (let p = 0; p < 4; p++) expect(cacheAt(s, a.name, p * s.nr).order).toBe(s.k.geo.pmdOrder);
      // Later visits to a retracted range whose page-cache THP is not mapped yet also end in
      // SCAN_SUCCEED (try_collapse_pte_mapped_thp without install), and khugepaged counts them.
      expect(s.m.khugepaged().pages_collapsed).toBeGreaterThanOrEqual(4);
      expect(s.m.vmstat().thp_collapse_alloc).toBe(4);
      if (mem === 'file') expect(s.k.fileStats.fileThps).toBe(4 * s.nr);
      else expect(s.k.fileStats.shmemThps).toBe(4 * s.nr);
    });

    it(`${mem}: MADV_COLLAPSE maps the new THPs at once`, () => {
      const s = setup();
      const a = area(s, mem, 4);
      fault(s, a, mem);
      const want = Array.from({ length: 4 * s.nr }, (_, i) =>
        pageValue(s.k, a.mm, a.addr / s.ps + i),
      );
      s.m.madvise(a.mm, a.addr, a.len, 'collapse');
      expect(pmdMappedKb(s, a, mem)).toBe(4 * 2048);
      expectData(s, a, (i) => want[i]);
      expect(resolve(s.k, a.mm, a.addr / s.ps).huge).toBe(true);
      // The shmem mapping is shared and writable: the PMD is too.
      expect(resolve(s.k, a.mm, a.addr / s.ps).writable).toBe(mem === 'shmem');
    });
  }

  it('file: the tables of every process mapping the range are retracted, then refault as PMDs', () => {
    const s = setup();
    const a = area(s, 'file');
    fault(s, a, 'file');
    // A second process maps the same file shared, a third at an offset that does not line up.
    const q = s.m.spawn('q');
    const b = s.m.mmap(q, {
      lengthBytes: s.pmd,
      alignBytes: s.pmd,
      file: 'f',
      prot: 'r',
      shared: true,
    });
    s.m.touch(q, b, s.pmd, false);
    const r = s.m.spawn('r');
    const c = s.m.mmap(r, {
      lengthBytes: s.pmd - s.ps,
      alignBytes: s.pmd,
      file: 'f',
      offsetBytes: s.ps,
      prot: 'r',
    });
    s.m.touch(r, c, s.pmd - s.ps, false);
    const traces: TraceEvent[] = [];
    s.m.setTrace((e) => traces.push(e));
    expect(scanFile(s, a, true)).toBe('SCAN_SUCCEED');
    s.m.setTrace(null);
    expect(traces.map((t) => t.name)).toEqual([
      'mm_khugepaged_collapse_file',
      'mm_khugepaged_scan_file',
    ]);
    expect(traces[1].fields).toMatchObject({ present: s.nr, swap: 0, result: 'SCAN_SUCCEED' });
    expect(traces[0].fields).toMatchObject({ is_shmem: false, nr: s.nr, result: 'SCAN_SUCCEED' });
    // Both aligned mappings lost their PTE table; the misaligned one keeps an empty table.
    expect(s.m.smaps(a.mm)[0].Rss).toBe(0);
    expect(s.m.smaps(q)[0].Rss).toBe(0);
    expect(s.m.smaps(r)[0].Rss).toBe(0);
    expect(a.mm.rssFile + q.rssFile + r.rssFile).toBe(0);
    s.m.access(q, b + 100 * s.ps, false);
    expect(s.m.smaps(q)[0].FilePmdMapped).toBe(2048);
    s.m.access(r, c, false);
    expect(resolve(s.k, r, c / s.ps).huge).toBe(false);
    expect(pageValue(s.k, r, c / s.ps)).toBe(fileOf(s.k, fileByName(s.k, 'f')).disk[1]);
    expect(s.m.smaps(r)[0].FilePmdMapped).toBe(0);
  });
});

describe('collapse_single_pte_entry', () => {
  for (const mem of MEMS) {
    it(`${mem}: one page present is enough with the default max_ptes_none`, () => {
      const s = setup();
      const a = area(s, mem);
      fault(s, a, mem, 0, 1);
      const first = pageValue(s.k, a.mm, a.addr / s.ps);
      expect(scanFile(s, a, true)).toBe('SCAN_SUCCEED');
      fault(s, a, 'file'); // read back
      expect(pmdMappedKb(s, a, mem)).toBe(2048);
      const disk = fileOf(s.k, fileByName(s.k, a.name)).disk;
      // The rest was read in from disk (file) or is zero (shmem holes).
      expectData(s, a, (i) => (i === 0 ? first : mem === 'file' ? disk[i] : 0));
    });
  }
});

describe('collapse_max_ptes_none (file)', () => {
  it('khugepaged needs present >= HPAGE_PMD_NR - max_ptes_none; MADV_COLLAPSE does not', () => {
    const s = setup();
    const half = s.nr / 2;
    s.m.sysfsWrite('khugepaged/max_ptes_none', String(half));
    const a = area(s, 'file');
    fault(s, a, 'file', 0, s.nr - half - 1);
    const exceeded = s.m.vmstat().thp_scan_exceed_none_pte;
    expect(scanFile(s, a, true)).toBe('SCAN_EXCEED_NONE_PTE');
    expect(s.m.vmstat().thp_scan_exceed_none_pte).toBe(exceeded + 1);
    expect(cacheAt(s, 'f', 0).order).toBe(0);
    // The same through the daemon: no collapse.
    s.m.madvise(a.mm, a.addr, a.len, 'hugepage');
    s.m.waitKhugepaged(2);
    fault(s, a, 'file');
    expect(pmdMappedKb(s, a, 'file')).toBe(0);
    // Step B: exactly max_ptes_none holes.
    s.m.munmap(a.mm, a.addr, a.len);
    s.m.dropCaches();
    const b = area(s, 'file');
    fault(s, b, 'file', 0, s.nr - half);
    expect(scanFile(s, b, true)).toBe('SCAN_SUCCEED');
    // MADV_COLLAPSE ignores the limit.
    const s2 = setup();
    s2.m.sysfsWrite('khugepaged/max_ptes_none', String(half));
    const c = area(s2, 'file');
    fault(s2, c, 'file', 0, s2.nr - half - 1);
    s2.m.madvise(c.mm, c.addr, c.len, 'collapse');
    expect(pmdMappedKb(s2, c, 'file')).toBe(2048);
  });
});

/** alloc_hpage for a file area: fault it all, MADV_COLLAPSE it, require one PMD THP. */
function allocHpage(s: Setup, mem: Mem): Area {
  const a = area(s, mem);
  fault(s, a, mem);
  s.m.madvise(a.mm, a.addr, a.len, 'collapse');
  expect(pmdMappedKb(s, a, mem)).toBe(2048);
  s.m.madvise(a.mm, a.addr, a.len, 'hugepage');
  return a;
}

describe('collapse_single_pte_entry_compound (file)', () => {
  for (const ctx of ['khugepaged', 'madvise'] as const) {
    it(ctx, () => {
      const s = setup();
      const a = allocHpage(s, 'file');
      s.m.madvise(a.mm, a.addr, a.len, 'nohugepage');
      s.m.madvise(a.mm, a.addr + s.ps, a.len - s.ps, 'dontneed');
      expect(pmdMappedKb(s, a, 'file')).toBe(0);
      // The page cache still holds the PMD-sized folio.
      expect(cacheAt(s, 'f', 0).order).toBe(s.k.geo.pmdOrder);
      if (ctx === 'khugepaged') khugepagedCollapse(s, a);
      else {
        s.m.madvise(a.mm, a.addr, a.len, 'hugepage');
        s.m.madvise(a.mm, a.addr, a.len, 'collapse');
      }
      expect(pmdMappedKb(s, a, 'file')).toBe(2048);
    });
  }
});

describe('collapse_full_of_compound', () => {
  for (const mem of MEMS)
    for (const ctx of ['khugepaged', 'madvise'] as const) {
      it(`${mem}, ${ctx}`, () => {
        const s = setup();
        const a = allocHpage(s, mem);
        // Splitting the VMA at page 1 unmaps the page-cache THP's PMD; the VMAs merge again.
        s.m.madvise(a.mm, a.addr, s.ps, 'nohugepage');
        s.m.madvise(a.mm, a.addr, a.len, 'nohugepage');
        expect(s.m.smaps(a.mm)).toHaveLength(1);
        expect(pmdMappedKb(s, a, mem)).toBe(0);
        expect(cacheAt(s, a.name, 0).order).toBe(s.k.geo.pmdOrder);
        if (ctx === 'khugepaged') khugepagedCollapse(s, a);
        else {
          s.m.madvise(a.mm, a.addr, a.len, 'hugepage');
          s.m.madvise(a.mm, a.addr, a.len, 'collapse');
        }
        expect(pmdMappedKb(s, a, mem)).toBe(2048);
      });
    }
});

describe('madvise_collapse_existing_thps', () => {
  for (const mem of MEMS)
    it(mem, () => {
      const s = setup();
      const a = area(s, mem);
      fault(s, a, mem);
      s.m.madvise(a.mm, a.addr, a.len, 'collapse');
      expect(pmdMappedKb(s, a, mem)).toBe(2048);
      const head = cacheAt(s, a.name, 0).head;
      const r = s.m.collapse(a.mm, a.addr, a.len);
      expect(r.errno).toBe(0);
      expect(pmdMappedKb(s, a, mem)).toBe(2048);
      expect(cacheAt(s, a.name, 0).head).toBe(head);
      expect(s.m.vmstat().thp_collapse_alloc).toBe(1);
    });
});

describe('madvise_retracted_page_tables', () => {
  for (const mem of MEMS)
    for (const profile of ['linux-7.2', 'linux-6.18'] as const)
      it(`${mem} (${profile}): MADV_COLLAPSE installs the PMD from the page cache`, () => {
        const s = setup({ profile });
        const a = area(s, mem);
        fault(s, a, mem);
        s.m.madvise(a.mm, a.addr, a.len, 'hugepage');
        s.m.waitKhugepaged(2);
        // khugepaged put the THP in the page cache and retracted the table; no refault yet.
        expect(cacheAt(s, a.name, 0).order).toBe(s.k.geo.pmdOrder);
        expect(s.m.smaps(a.mm)[0].Rss).toBe(0);
        const r = s.m.collapse(a.mm, a.addr, a.len);
        expect(r.errno).toBe(0);
        expect(pmdMappedKb(s, a, mem)).toBe(2048);
        expect(s.m.vmstat().thp_collapse_alloc).toBe(1);
      });
});

describe('try_collapse_pte_mapped_thp', () => {
  /** A page-cache THP mapped by PTEs: faults under VM_NOHUGEPAGE after its PMD went. */
  function pteMappedThp(s: Setup): Area {
    const a = allocHpage(s, 'file');
    s.m.madvise(a.mm, a.addr, a.len, 'nohugepage');
    s.m.madvise(a.mm, a.addr, a.len, 'dontneed');
    fault(s, a, 'file', 0, s.nr / 2);
    expect(resolve(s.k, a.mm, a.addr / s.ps + 3).huge).toBe(false);
    expect(s.m.smaps(a.mm)[0].byOrder).toEqual({ [s.k.geo.pmdOrder]: (s.nr / 2) * (s.ps / 1024) });
    s.m.madvise(a.mm, a.addr, a.len, 'hugepage');
    return a;
  }

  it('khugepaged: the scan reports SCAN_PTE_MAPPED_HUGEPAGE, the retract lets a fault map the PMD', () => {
    const s = setup();
    const a = pteMappedThp(s);
    const vpn = a.addr / s.ps;
    expect(scanFile(s, a, true)).toBe('SCAN_PTE_MAPPED_HUGEPAGE');
    // collapse_single_pmd then calls try_collapse_pte_mapped_thp without install_pmd.
    expect(run(s, withMmapRead(a.mm, tryCollapsePteMappedThp(s.k, a.mm, vpn, false)))).toBe(
      'SCAN_SUCCEED',
    );
    fault(s, a, 'file');
    expect(pmdMappedKb(s, a, 'file')).toBe(2048);
  });

  it('retracts a table of the folio own pages; installs the PMD when asked', () => {
    const s = setup();
    const a = pteMappedThp(s);
    expect(a.mm.rssFile).toBe(s.nr / 2);
    const vpn = a.addr / s.ps;
    expect(run(s, withMmapRead(a.mm, tryCollapsePteMappedThp(s.k, a.mm, vpn, false)))).toBe(
      'SCAN_SUCCEED',
    );
    expect(a.mm.rssFile).toBe(0);
    expect(resolve(s.k, a.mm, vpn).kind).toBe('none');
    expect(run(s, withMmapRead(a.mm, tryCollapsePteMappedThp(s.k, a.mm, vpn, true)))).toBe(
      'SCAN_SUCCEED',
    );
    expect(pmdMappedKb(s, a, 'file')).toBe(2048);
    expect(run(s, withMmapRead(a.mm, tryCollapsePteMappedThp(s.k, a.mm, vpn, true)))).toBe(
      'SCAN_PMD_MAPPED',
    );
  });

  it('refuses a table that maps another page, small folios, and an empty cache', () => {
    const s = setup();
    const a = pteMappedThp(s);
    const vpn = a.addr / s.ps;
    // A private COW copy in the table: not the folio's page.
    s.m.mprotect(a.mm, a.addr, a.len, 'rw');
    s.m.access(a.mm, a.addr + 5 * s.ps, true);
    expect(s.k.folios.flags[resolve(s.k, a.mm, vpn + 5).pfn] & PG_ANON).toBeTruthy();
    expect(run(s, withMmapRead(a.mm, tryCollapsePteMappedThp(s.k, a.mm, vpn, true)))).toBe(
      'SCAN_FAIL',
    );
    expect(resolve(s.k, a.mm, vpn + 4).kind).toBe('page');
    // A range whose cache holds small folios.
    const b = area(s, 'file', 1, 'g');
    fault(s, b, 'file', 0, 2);
    expect(
      run(s, withMmapRead(b.mm, tryCollapsePteMappedThp(s.k, b.mm, b.addr / s.ps, true))),
    ).toBe('SCAN_PAGE_COMPOUND');
    s.m.munmap(b.mm, b.addr, b.len);
    s.m.dropCaches();
    const c = area(s, 'file', 1, 'g');
    expect(
      run(s, withMmapRead(c.mm, tryCollapsePteMappedThp(s.k, c.mm, c.addr / s.ps, true))),
    ).toBe('SCAN_PAGE_NULL');
  });
});

describe('retract_page_tables and anon_vma', () => {
  it('a private mapping with COW copies keeps its table and stays correct', () => {
    const s = setup();
    s.m.createFile('f', s.pmd);
    const disk = fileOf(s.k, fileByName(s.k, 'f')).disk;
    // A: private writable mapping with a COW'd page 5; B: shared read-only mapping.
    const A = s.m.spawn('A');
    const a = s.m.mmap(A, { lengthBytes: s.pmd, alignBytes: s.pmd, file: 'f', prot: 'rw' });
    s.m.touch(A, a, s.pmd, false);
    s.m.access(A, a + 5 * s.ps, true);
    const cow = pageValue(s.k, A, a / s.ps + 5);
    const B = s.m.spawn('B');
    const b = s.m.mmap(B, {
      lengthBytes: s.pmd,
      alignBytes: s.pmd,
      file: 'f',
      prot: 'r',
      shared: true,
    });
    s.m.touch(B, b, s.pmd, false);
    const areaB: Area = { mm: B, addr: b, name: 'f', len: s.pmd };
    expect(scanFile(s, areaB, false)).toBe('SCAN_PTE_MAPPED_HUGEPAGE');
    expect(cacheAt(s, 'f', 0).order).toBe(s.k.geo.pmdOrder);
    // B: table gone. A: the page-cache PTEs were unmapped, the anon page stays in its table.
    expect(s.m.smaps(B)[0].Rss).toBe(0);
    expect(A.rssFile).toBe(0);
    expect(A.rssAnon).toBe(1);
    expect(pageValue(s.k, A, a / s.ps + 5)).toBe(cow);
    // A refaults page-cache pages with PTEs of the new folio (its table is still there).
    s.m.touch(A, a, s.pmd, false);
    expect(resolve(s.k, A, a / s.ps + 3).huge).toBe(false);
    expect(s.k.folios.headOf(resolve(s.k, A, a / s.ps + 3).pfn)).toBe(cacheAt(s, 'f', 0).head);
    for (let i = 0; i < s.nr; i++)
      expect(pageValue(s.k, A, a / s.ps + i)).toBe(i === 5 ? cow : disk[i]);
    // MADV_COLLAPSE in A cannot install the PMD over its COW copy.
    const r = s.m.collapse(A, a, s.pmd);
    expect(r.errno).toBe('EINVAL');
    expect(r.pmds[0].result).toBe('SCAN_FAIL');
    s.m.access(B, b, false);
    expect(s.m.smaps(B)[0].FilePmdMapped).toBe(2048);
  });
});

describe('collapse_file refusals', () => {
  it('dirty regular-file folios: SCAN_PAGE_DIRTY_OR_WRITEBACK, then written back', () => {
    const s = setup();
    s.m.createFile('f', s.pmd, { openForWrite: true });
    const w = s.m.spawn('writer');
    const wa = s.m.mmap(w, {
      lengthBytes: s.pmd,
      alignBytes: s.pmd,
      file: 'f',
      prot: 'rw',
      shared: true,
    });
    s.m.touch(w, wa, s.pmd, true);
    s.m.munmap(w, wa, s.pmd);
    s.k.run(setFileOpenForWrite(s.k, fileByName(s.k, 'f'), false));
    const a = area(s, 'file');
    fault(s, a, 'file');
    const written = Array.from({ length: s.nr }, (_, i) => pageValue(s.k, a.mm, a.addr / s.ps + i));
    expect(scanFile(s, a, true)).toBe('SCAN_PAGE_DIRTY_OR_WRITEBACK');
    // filemap_flush wrote the file back: the next visit collapses it.
    expect(scanFile(s, a, true)).toBe('SCAN_SUCCEED');
    fault(s, a, 'file');
    expectData(s, a, (i) => written[i]);
    expect(Array.from(fileOf(s.k, fileByName(s.k, 'f')).disk)).toEqual(written);
  });

  it('an extra reference (a pin) stops it with SCAN_PAGE_COUNT', () => {
    const s = setup();
    const a = area(s, 'file');
    fault(s, a, 'file');
    const head = cacheAt(s, 'f', 7).head;
    s.k.folioGet(head);
    s.k.folios.pincount[head]++;
    expect(scanFile(s, a, true)).toBe('SCAN_PAGE_COUNT');
    expect(scanFile(s, a, false)).toBe('SCAN_PAGE_COUNT');
    s.k.folios.pincount[head]--;
    s.k.folioPut(head);
    expect(scanFile(s, a, false)).toBe('SCAN_PTE_MAPPED_HUGEPAGE');
  });

  it('a file open for writing is not eligible for khugepaged or MADV_COLLAPSE', () => {
    const s = setup();
    s.m.createFile('f', s.pmd, { openForWrite: true });
    const a = area(s, 'file');
    fault(s, a, 'file');
    expect(s.m.collapse(a.mm, a.addr, a.len).errno).toBe('EINVAL');
    s.m.madvise(a.mm, a.addr, a.len, 'hugepage');
    s.m.waitKhugepaged(2);
    expect(cacheAt(s, 'f', 0).order).toBe(0);
  });

  it('shmem holes in a VMA armed for userfaultfd missing faults: SCAN_EXCEED_NONE_PTE', () => {
    const s = setup();
    const a = area(s, 'shmem');
    fault(s, a, 'shmem', 0, 3);
    a.mm.findVma(a.addr / s.ps)!.flags |= 1 << 7; // VM_UFFD_MISSING
    expect(scanFile(s, a, false)).toBe('SCAN_EXCEED_NONE_PTE');
    expect(cacheAt(s, 'memfd', 0).order).toBe(0);
  });
});

describe('other geometries', () => {
  it('arm64-16k: a 32 MiB page-cache THP', () => {
    const s = setup({ geometry: 'arm64-16k', ramBytes: 512 * MiB });
    const a = area(s, 'file');
    fault(s, a, 'file', 0, 8);
    s.m.madvise(a.mm, a.addr, a.len, 'collapse');
    expect(pmdMappedKb(s, a, 'file')).toBe(32 * 1024);
    const disk = fileOf(s.k, fileByName(s.k, 'f')).disk;
    expectData(s, a, (i) => disk[i]);
  });
});
