// Direct compaction on the THP allocation paths: the defrag modes (vma_thp_gfp_mask) for faults,
// khugepaged/defrag for khugepaged, GFP_TRANSHUGE for MADV_COLLAPSE and the huge zero page; the
// migration of small anon pages out of a block keeps every page's data, mapping and PTE bits.

import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { PG_ANON_EXCLUSIVE } from '../src/mm/folio.ts';
import {
  GFP_TRANSHUGE,
  GFP_TRANSHUGE_LIGHT,
  __GFP_DIRECT_RECLAIM,
  __GFP_KSWAPD_RECLAIM,
  __GFP_NORETRY,
  collapseGfpMask,
  vmaThpGfpMask,
} from '../src/mm/gfp.ts';
import type { Defrag } from '../src/mm/settings.ts';
import { B_DIRTY, B_SOFT_DIRTY, B_WRITE, E_PRESENT, E_TYPE_MASK } from '../src/mm/pgtable.ts';
import { walkRange } from '../src/mm/walk.ts';
import { VM_HUGEPAGE } from '../src/mm/vma.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4 * KiB;
const PMD = 2 * MiB;
const PMD_ORDER = 9;

/** Calls that only look: no invariant check after them. */
const QUERIES = new Set<string | symbol>([
  'checkInvariants',
  'readPage',
  'smaps',
  'meminfo',
  'vmstat',
  'mthpStats',
  'sysfsRead',
  'khugepaged',
]);

/** The Machine, with the invariants checked after every operation made through it. */
function checked(m: Machine): Machine {
  return new Proxy(m, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || QUERIES.has(prop)) return v;
      return (...args: unknown[]) => {
        const out: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
        target.checkInvariants();
        return out;
      };
    },
  });
}

interface Mapping {
  pfn: number;
  bits: number;
}

/** The small page mapping addr in mm, read from the tables (null if none or huge). */
function pte(m: Machine, mm: Mm, addr: number): Mapping | null {
  const vpn = addr / PAGE;
  let out: Mapping | null = null;
  walkRange(m.kernel, mm, vpn, vpn + 1, {
    pmd() {},
    pte(_v, _t, _i, bits, val) {
      if ((bits & E_TYPE_MASK) === E_PRESENT) out = { pfn: val, bits };
    },
  });
  return out;
}

function hugeKb(m: Machine, mm: Mm): number {
  return m.smaps(mm).reduce((s, v) => s + v.AnonHugePages, 0);
}

interface Fragmented {
  m: Machine;
  hog: Mm;
  h: number;
  ram: number;
}

/**
 * All of RAM written by a process with 4K pages (MADV_NOHUGEPAGE), then two pages of every three
 * freed: two thirds of memory are free, no PMD-sized block is. enabled and defrag as given.
 */
function fragmented(defrag: Defrag = 'madvise', ramMiB = 8, enabled = 'always'): Fragmented {
  const ram = ramMiB * MiB;
  const m = checked(new Machine({ geometry: 'x86-64-4k', ramBytes: ram, strictLocks: true }));
  m.sysfsWrite('enabled', enabled);
  m.sysfsWrite('defrag', defrag);
  const hog = m.spawn('hog');
  const h = m.mmap(hog, { lengthBytes: ram, alignBytes: PMD, name: 'hog' });
  m.madvise(hog, h, ram, 'nohugepage');
  expect(m.touch(hog, h, ram, true)).toBe('oom');
  for (let a = h; a < h + ram; a += 3 * PAGE)
    m.madvise(hog, a + PAGE, Math.min(2 * PAGE, h + ram - a - PAGE), 'dontneed');
  expect(m.kernel.buddy.canAlloc(PMD_ORDER)).toBe(false);
  expect(m.kernel.buddy.freePages).toBeGreaterThan(2 << PMD_ORDER);
  return { m, hog, h, ram };
}

/** Every page of [addr, addr + len) of mm: its pfn (or -1) and the data a read would see. */
function snapshot(m: Machine, mm: Mm, addr: number, len: number): Array<[number, number | null]> {
  const out: Array<[number, number | null]> = [];
  for (let a = addr; a < addr + len; a += PAGE)
    out.push([pte(m, mm, a)?.pfn ?? -1, m.readPage(mm, a)]);
  return out;
}

/** A new process with one PMD-aligned 2 MiB region. */
function target(m: Machine, advise = false): { p: Mm; addr: number } {
  const p = m.spawn('p');
  const addr = m.mmap(p, { lengthBytes: PMD, alignBytes: PMD, name: 'p' });
  if (advise) m.madvise(p, addr, PMD, 'hugepage');
  return { p, addr };
}

describe('gfp masks', () => {
  it('vma_thp_gfp_mask follows the defrag mode and VM_HUGEPAGE', () => {
    const m = new Machine({ ramBytes: 8 * MiB });
    const mm = m.spawn('x');
    const addr = m.mmap(mm, { lengthBytes: PMD });
    const vma = mm.findVma(addr / PAGE)!;
    const want: Record<Defrag, [number, number]> = {
      always: [GFP_TRANSHUGE | __GFP_NORETRY, GFP_TRANSHUGE],
      defer: [
        GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM,
        GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM,
      ],
      'defer+madvise': [
        GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM,
        GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM,
      ],
      madvise: [GFP_TRANSHUGE_LIGHT, GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM],
      never: [GFP_TRANSHUGE_LIGHT, GFP_TRANSHUGE_LIGHT],
    };
    for (const [mode, [plain, madvised]] of Object.entries(want) as Array<
      [Defrag, [number, number]]
    >) {
      m.sysfsWrite('defrag', mode);
      vma.flags &= ~VM_HUGEPAGE;
      expect(vmaThpGfpMask(m.kernel, vma), `${mode}`).toBe(plain);
      vma.flags |= VM_HUGEPAGE;
      expect(vmaThpGfpMask(m.kernel, vma), `${mode} madvised`).toBe(madvised);
    }
    expect(GFP_TRANSHUGE).toBe(GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM);
    expect(GFP_TRANSHUGE_LIGHT & (__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM)).toBe(0);
    m.sysfsWrite('khugepaged/defrag', '0');
    expect(collapseGfpMask(m.kernel, true)).toBe(GFP_TRANSHUGE_LIGHT);
    expect(collapseGfpMask(m.kernel, false)).toBe(GFP_TRANSHUGE);
    m.sysfsWrite('khugepaged/defrag', '1');
    expect(collapseGfpMask(m.kernel, true)).toBe(GFP_TRANSHUGE);
  });
});

describe('THP faults in fragmented memory', () => {
  const cases: Array<[Defrag, boolean, boolean]> = [
    ['always', false, true],
    ['always', true, true],
    ['defer', false, false],
    ['defer', true, false],
    ['defer+madvise', false, false],
    ['defer+madvise', true, true],
    ['madvise', false, false],
    ['madvise', true, true],
    ['never', false, false],
    ['never', true, false],
  ];
  it.each(cases)('defrag=%s, MADV_HUGEPAGE %s: compacts %s', (defrag, advise, compacts) => {
    const { m } = fragmented(defrag);
    const { p, addr } = target(m, advise);
    expect(m.access(p, addr, true)).toBe('fault');
    const v = m.vmstat();
    if (compacts) {
      expect(hugeKb(m, p)).toBe(2048);
      expect(v.compact_stall).toBe(1);
      expect(v.compact_success).toBe(1);
      expect(v.compact_fail).toBe(0);
      expect(v.thp_fault_alloc).toBe(1);
      expect(v.thp_fault_fallback).toBe(0);
      expect(v.pgmigrate_success).toBeGreaterThan(0);
    } else {
      // Falls back to a small page; nothing was moved, memory stays fragmented.
      expect(hugeKb(m, p)).toBe(0);
      expect(v.thp_fault_fallback).toBe(1);
      expect(m.mthpStats()['2048kB'].anon_fault_fallback).toBe(1);
      expect(v.compact_stall).toBe(0);
      expect(v.pgmigrate_success).toBe(0);
      expect(m.kernel.buddy.canAlloc(PMD_ORDER)).toBe(false);
    }
  });

  it('defrag=always: the fault compacts one block; every moved page keeps data, bits and use', () => {
    const { m, hog, h, ram } = fragmented('always');
    const k = m.kernel;
    const before = snapshot(m, hog, h, ram);
    const bitsBefore = before.map((_, i) => pte(m, hog, h + i * PAGE)?.bits ?? 0);
    const { p, addr } = target(m);
    expect(m.access(p, addr, true)).toBe('fault');
    expect(hugeKb(m, p)).toBe(2048);
    let thpPfn = -1;
    walkRange(k, p, addr / PAGE, addr / PAGE + 1, {
      pmd: (_b, _t, _i, _bits, head) => (thpPfn = head),
      pte() {},
    });
    expect(thpPfn % 512).toBe(0);

    const after = snapshot(m, hog, h, ram);
    let moved = 0;
    for (let i = 0; i < before.length; i++) {
      const [oldPfn, oldData] = before[i];
      const [newPfn, newData] = after[i];
      // Same data everywhere, freed pages stay freed.
      expect(newData).toBe(oldData);
      expect(newPfn === -1).toBe(oldPfn === -1);
      if (oldPfn === newPfn) continue;
      moved++;
      // Moved out of the block the THP now uses, into a page outside it.
      expect(oldPfn >= thpPfn && oldPfn < thpPfn + 512).toBe(true);
      expect(newPfn >= thpPfn && newPfn < thpPfn + 512).toBe(false);
      // Same PTE bits (writable, dirty, soft-dirty), still exclusive.
      const bits = pte(m, hog, h + i * PAGE)!.bits;
      expect(bits).toBe(bitsBefore[i]);
      expect(bits & (B_WRITE | B_DIRTY)).toBe(B_WRITE | B_DIRTY);
      expect(bits & B_SOFT_DIRTY).toBe(bitsBefore[i] & B_SOFT_DIRTY);
      expect(k.folios.flags[newPfn] & PG_ANON_EXCLUSIVE).toBe(PG_ANON_EXCLUSIVE);
      expect(k.folios.mapcount[newPfn]).toBe(1);
    }
    expect(moved).toBeGreaterThan(0);
    const v = m.vmstat();
    expect(v.pgmigrate_success).toBe(moved);
    expect(v.pgmigrate_fail).toBe(0);
    expect(v.compact_migrate_scanned).toBeGreaterThanOrEqual(512);
    expect(v.compact_free_scanned).toBeGreaterThanOrEqual(moved);
    expect(v.compact_isolated).toBeGreaterThanOrEqual(2 * moved);
    // The process goes on using the moved pages: reads and writes hit, writes land.
    for (let i = 0; i < before.length; i++) {
      if (before[i][0] === after[i][0]) continue;
      const a = h + i * PAGE;
      expect(m.access(hog, a, false)).toBe('hit');
      expect(m.access(hog, a, true)).toBe('hit');
      const now = m.readPage(hog, a);
      expect(now).not.toBe(before[i][1]);
      expect(now).toBe(k.folios.data[after[i][0]]);
    }
  });

  it('moves a page shared with a forked child: both PTEs follow, COW still works', () => {
    const { m, hog, h, ram } = fragmented('always');
    const k = m.kernel;
    const child = m.fork(hog, 'child');
    const before = snapshot(m, hog, h, ram);
    const { p, addr } = target(m);
    expect(m.access(p, addr, true)).toBe('fault');
    expect(hugeKb(m, p)).toBe(2048);
    const parentAfter = snapshot(m, hog, h, ram);
    const childAfter = snapshot(m, child, h, ram);
    let moved = 0;
    for (let i = 0; i < before.length; i++) {
      expect(parentAfter[i][1]).toBe(before[i][1]);
      expect(childAfter[i][1]).toBe(before[i][1]);
      // Parent and child still share one page, wherever it is now.
      expect(childAfter[i][0]).toBe(parentAfter[i][0]);
      if (before[i][0] === parentAfter[i][0]) continue;
      moved++;
      const pfn = parentAfter[i][0];
      expect(k.folios.mapcount[pfn]).toBe(2);
      expect(k.folios.flags[pfn] & PG_ANON_EXCLUSIVE).toBe(0);
      expect(pte(m, hog, h + i * PAGE)!.bits & B_WRITE).toBe(0);
    }
    expect(moved).toBeGreaterThan(0);
    // A write in the child copies; the parent keeps the old data.
    const i = parentAfter.findIndex((e, j) => e[0] !== before[j][0]);
    const a = h + i * PAGE;
    expect(m.access(child, a, true)).toBe('fault');
    expect(m.readPage(hog, a)).toBe(before[i][1]);
    expect(m.readPage(child, a)).not.toBe(before[i][1]);
  });

  it('the huge zero page is allocated with GFP_TRANSHUGE whatever defrag says', () => {
    const { m } = fragmented('never');
    const { p, addr } = target(m);
    expect(m.access(p, addr, false)).toBe('fault');
    const v = m.vmstat();
    expect(v.thp_zero_page_alloc).toBe(1);
    expect(v.compact_stall).toBe(1);
    expect(v.compact_success).toBe(1);
    expect(m.readPage(p, addr)).toBe(0);
  });

  it('pinned pages in every block: compaction fails and so does the allocation', () => {
    const { m, hog, h, ram } = fragmented('always');
    const k = m.kernel;
    const before = snapshot(m, hog, h, ram);
    // Pin (FOLL_PIN: a reference and a pin) one hog page in each PMD block.
    const pinned = new Map<number, number>();
    for (const [pfn] of before) {
      if (pfn < 0) continue;
      const block = Math.floor(pfn / 512);
      if (!pinned.has(block)) pinned.set(block, pfn);
    }
    expect(pinned.size).toBe(k.nrPages / 512);
    for (const pfn of pinned.values()) {
      k.folios.pincount[pfn]++;
      k.folios.refcount[pfn]++;
    }
    m.checkInvariants();
    const { p, addr } = target(m);
    expect(m.access(p, addr, true)).toBe('fault');
    expect(hugeKb(m, p)).toBe(0);
    let v = m.vmstat();
    expect(v.compact_stall).toBe(1);
    expect(v.compact_fail).toBe(1);
    expect(v.compact_success).toBe(0);
    expect(v.thp_fault_fallback).toBe(1);
    expect(v.pgmigrate_success).toBe(0);
    expect(k.buddy.canAlloc(PMD_ORDER)).toBe(false);
    expect(snapshot(m, hog, h, ram).map((e) => e[1])).toEqual(before.map((e) => e[1]));
    for (const pfn of pinned.values()) {
      k.folios.pincount[pfn]--;
      k.folios.refcount[pfn]--;
    }
    m.checkInvariants();
    // Unpinned, the next THP fault compacts.
    const q = target(m);
    expect(m.access(q.p, q.addr, true)).toBe('fault');
    expect(hugeKb(m, q.p)).toBe(2048);
    v = m.vmstat();
    expect(v.compact_stall).toBe(2);
    expect(v.compact_success).toBe(1);
  });

  it('skips compaction when free memory is below compact_gap', () => {
    const ram = 8 * MiB;
    const m = checked(new Machine({ geometry: 'x86-64-4k', ramBytes: ram, strictLocks: true }));
    m.sysfsWrite('defrag', 'always');
    const hog = m.spawn('hog');
    const h = m.mmap(hog, { lengthBytes: ram, alignBytes: PMD });
    m.madvise(hog, h, ram, 'nohugepage');
    expect(m.touch(hog, h, ram, true)).toBe('oom');
    // Free one page in eight: 256 free pages, fewer than 2 << 9.
    for (let a = h; a < h + ram; a += 8 * PAGE) m.madvise(hog, a, PAGE, 'dontneed');
    const { p, addr } = target(m);
    expect(m.access(p, addr, true)).toBe('fault');
    const v = m.vmstat();
    expect(v.thp_fault_fallback).toBe(1);
    expect(v.compact_stall).toBe(0);
    expect(v.compact_fail).toBe(0);
  });
});

describe('collapse allocations in fragmented memory', () => {
  /** A process with two written pages in one PMD range, not madvised yet. */
  function sparse(m: Machine): { p: Mm; addr: number; data: Array<number | null> } {
    const { p, addr } = target(m);
    m.touch(p, addr, 2 * PAGE, true);
    return { p, addr, data: [m.readPage(p, addr), m.readPage(p, addr + PAGE)] };
  }

  it('khugepaged with khugepaged/defrag=0 does not compact: the allocation fails', () => {
    const { m } = fragmented('madvise', 8, 'madvise');
    m.sysfsWrite('khugepaged/defrag', '0');
    const { p, addr } = sparse(m);
    m.madvise(p, addr, PMD, 'hugepage');
    m.advance(0);
    const v = m.vmstat();
    expect(v.thp_collapse_alloc_failed).toBe(1);
    expect(v.thp_collapse_alloc).toBe(0);
    expect(v.compact_stall).toBe(0);
    expect(hugeKb(m, p)).toBe(0);
    expect(m.kernel.buddy.canAlloc(PMD_ORDER)).toBe(false);
  });

  it('khugepaged with khugepaged/defrag=1 compacts and collapses', () => {
    const { m, hog, h, ram } = fragmented('madvise', 8, 'madvise');
    const before = snapshot(m, hog, h, ram).map((e) => e[1]);
    const { p, addr, data } = sparse(m);
    m.madvise(p, addr, PMD, 'hugepage');
    m.advance(0);
    const v = m.vmstat();
    expect(v.thp_collapse_alloc_failed).toBe(0);
    expect(v.thp_collapse_alloc).toBe(1);
    expect(v.compact_stall).toBe(1);
    expect(v.compact_success).toBe(1);
    expect(hugeKb(m, p)).toBe(2048);
    expect([m.readPage(p, addr), m.readPage(p, addr + PAGE)]).toEqual(data);
    expect(m.readPage(p, addr + 2 * PAGE)).toBe(0);
    expect(snapshot(m, hog, h, ram).map((e) => e[1])).toEqual(before);
  });

  it('MADV_COLLAPSE compacts whatever khugepaged/defrag says', () => {
    const { m, hog, h, ram } = fragmented('never', 8, 'madvise');
    m.sysfsWrite('khugepaged/defrag', '0');
    const before = snapshot(m, hog, h, ram).map((e) => e[1]);
    const { p, addr, data } = sparse(m);
    const r = m.collapse(p, addr, PMD);
    expect(r.errno).toBe(0);
    expect(r.pmds.map((x) => x.result)).toEqual(['SCAN_SUCCEED']);
    const v = m.vmstat();
    expect(v.thp_collapse_alloc).toBe(1);
    expect(v.compact_stall).toBe(1);
    expect(v.compact_success).toBe(1);
    expect(hugeKb(m, p)).toBe(2048);
    expect([m.readPage(p, addr), m.readPage(p, addr + PAGE)]).toEqual(data);
    expect(snapshot(m, hog, h, ram).map((e) => e[1])).toEqual(before);
  });

  it('MADV_COLLAPSE fails with pinned pages in every block', () => {
    const { m, hog, h, ram } = fragmented('never', 8, 'madvise');
    const k = m.kernel;
    const pinned = new Map<number, number>();
    for (const [pfn] of snapshot(m, hog, h, ram)) {
      const block = Math.floor(pfn / 512);
      if (pfn >= 0 && !pinned.has(block)) pinned.set(block, pfn);
    }
    for (const pfn of pinned.values()) {
      k.folios.pincount[pfn]++;
      k.folios.refcount[pfn]++;
    }
    const { p, addr } = sparse(m);
    const r = m.collapse(p, addr, PMD);
    expect(r.pmds.map((x) => x.result)).toEqual(['SCAN_ALLOC_HUGE_PAGE_FAIL']);
    expect(r.errno).toBe('ENOMEM');
    const v = m.vmstat();
    expect(v.thp_collapse_alloc_failed).toBe(1);
    expect(v.compact_fail).toBe(1);
    for (const pfn of pinned.values()) {
      k.folios.pincount[pfn]--;
      k.folios.refcount[pfn]--;
    }
    m.checkInvariants();
  });
});

describe('compaction property', () => {
  /** Per chunk of 32 pages, which hog pages stay: none, 1 in 2, 1 in 4, 1 in 8, 1 in 16, all. */
  const KEEP = [
    () => false,
    (i: number) => i % 2 === 0,
    (i: number) => i % 4 === 1,
    (i: number) => i % 8 === 3,
    (i: number) => i % 16 === 7,
    () => true,
  ];
  const RAM = 8 * MiB;
  const NR = RAM / PAGE;

  fcTest.prop(
    [
      fc.array(fc.integer({ min: 0, max: KEEP.length - 1 }), {
        minLength: NR / 32,
        maxLength: NR / 32,
      }),
      // Blocks (of PMD size) to pin one page in; block 0 holds the zero page anyway.
      fc.subarray([1, 2, 3]),
      fc.boolean(),
      fc.boolean(),
    ],
    { numRuns: 20 },
  )(
    'succeeds with a free aligned block exactly when one block can be emptied',
    (chunks, pinBlocks, withFork, withMthp) => {
      const m = checked(new Machine({ geometry: 'x86-64-4k', ramBytes: RAM, strictLocks: true }));
      const k = m.kernel;
      m.sysfsWrite('defrag', 'always');
      // The hog gets small pages, and 16K mTHPs in its first quarter if asked; no PMD THPs.
      m.sysfsWrite('hugepages-2048kB/enabled', 'never');
      const hog = m.spawn('hog');
      const h = m.mmap(hog, { lengthBytes: RAM, alignBytes: PMD });
      if (withMthp) m.sysfsWrite('hugepages-16kB/enabled', 'always');
      m.touch(hog, h, RAM / 4, true);
      m.sysfsWrite('hugepages-16kB/enabled', 'never');
      m.touch(hog, h + RAM / 4, RAM - RAM / 4, true);
      // MADV_DONTNEED over each run of pages the pattern drops.
      for (let i = 0; i < NR;) {
        let n = 0;
        while (i + n < NR && !KEEP[chunks[Math.floor((i + n) / 32)]]((i + n) % 32)) n++;
        if (n > 0) m.madvise(hog, h + i * PAGE, n * PAGE, 'dontneed');
        i += n + 1;
      }
      m.sysfsWrite('hugepages-2048kB/enabled', 'inherit');
      if (k.buddy.canAlloc(PMD_ORDER)) return; // nothing to compact
      const child = withFork ? m.fork(hog, 'child') : null;
      if (child) for (let i = 0; i < NR; i += 13) m.access(child, h + i * PAGE, true);
      const pinned: number[] = [];
      const pinnedAt: Array<[number, number]> = [];
      for (const block of pinBlocks) {
        // The first page of the hog that lies in this block.
        let i = 0;
        let e: Mapping | null = null;
        for (; i < NR; i++) {
          e = pte(m, hog, h + i * PAGE);
          if (e && Math.floor(e.pfn / 512) === block) break;
        }
        if (i === NR || !e) continue;
        const head = k.folios.headOf(e.pfn);
        pinnedAt.push([i, e.pfn]);
        if (pinned.includes(head)) continue;
        k.folios.pincount[head]++;
        k.folios.refcount[head]++;
        pinned.push(head);
      }
      const mms = child ? [hog, child] : [hog];
      const before = mms.map((mm) => snapshot(m, mm, h, RAM));

      // The oracle: which pages are in use and which of them compaction may move.
      const used = new Set<number>([k.zeroPfn]);
      const movable = new Set<number>();
      for (const snap of before)
        for (const [pfn] of snap) {
          if (pfn < 0) continue;
          const head = k.folios.headOf(pfn);
          for (let q = head; q < head + k.folios.nrPagesOf(head); q++) used.add(q);
          if (k.folios.order[head] === 0 && !pinned.includes(head)) movable.add(pfn);
        }
      const free = k.buddy.freePages;
      // Every page in use is one the processes map (no page cache, no swap cache here).
      expect(used.size).toBe(k.nrPages - free);
      let possible = false;
      if (free >= 2 << PMD_ORDER)
        for (let b = 0; b + 512 <= NR && !possible; b += 512) {
          let n = 0;
          let ok = true;
          for (let q = b; q < b + 512 && ok; q++) {
            if (!used.has(q)) continue;
            if (!movable.has(q)) ok = false;
            n++;
          }
          possible = ok && free - (512 - n) >= n;
        }

      const { p, addr } = target(m);
      expect(m.access(p, addr, true)).toBe('fault');
      const v = m.vmstat();
      expect(hugeKb(m, p) === 2048).toBe(possible);
      expect(v.compact_stall).toBe(free >= 2 << PMD_ORDER ? 1 : 0);
      expect(v.compact_success).toBe(possible ? 1 : 0);
      expect(v.compact_fail).toBe(v.compact_stall - v.compact_success);
      expect(v.pgmigrate_fail).toBe(0);
      // A failed compaction leaves no PMD-sized block behind either.
      if (!possible) expect(k.buddy.canAlloc(PMD_ORDER)).toBe(false);
      // No data lost, moved or not; shared pages still shared.
      const after = mms.map((mm) => snapshot(m, mm, h, RAM));
      for (let j = 0; j < mms.length; j++)
        expect(after[j].map((e) => e[1])).toEqual(before[j].map((e) => e[1]));
      if (child)
        for (let i = 0; i < NR; i++)
          if (before[0][i][0] === before[1][i][0]) expect(after[1][i][0]).toBe(after[0][i][0]);
      // Pinned pages never move.
      for (const [i, pfn] of pinnedAt) expect(after[0][i][0]).toBe(pfn);
      for (const head of pinned) {
        k.folios.pincount[head]--;
        k.folios.refcount[head]--;
      }
      m.checkInvariants();
    },
  );
});
