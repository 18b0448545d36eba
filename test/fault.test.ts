import { describe, expect, it } from 'vitest';
import type { GeometryName } from '../src/mm/geometry.ts';
import { PG_ZERO } from '../src/mm/folio.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';
import { MiB, KiB, checked, orderAt, resolve, smapsTotal } from './support/ref-model.ts';

interface Setup {
  m: Machine;
  mm: Mm;
  ps: number;
}

function setup(opts: { ramBytes?: number; geometry?: GeometryName } = {}): Setup {
  const raw = new Machine({
    strictLocks: true,
    ramBytes: opts.ramBytes ?? 256 * MiB,
    geometry: opts.geometry,
  });
  const m = checked(raw);
  const mm = m.spawn('p');
  return { m, mm, ps: raw.kernel.geo.pageSize };
}

/** A fixed, PMD-aligned address well inside the user address space (x86-64 4K). */
const BASE = 0x7f00_0000_0000;

function vpn(s: Setup, addr: number): number {
  return addr / s.ps;
}

describe('write fault: order choice', () => {
  it('enabled=always: a write to an aligned 2 MiB range maps one PMD THP', () => {
    const s = setup();
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    expect(a % (2 * MiB)).toBe(0);
    expect(m.access(mm, a + 5 * 4096, true)).toBe('fault');
    const t = smapsTotal(m, mm);
    expect(t.Rss).toBe(2048);
    expect(t.AnonHugePages).toBe(2048);
    expect(t.byOrder).toEqual({ 9: 2048 });
    const r = resolve(m.kernel, mm, vpn(s, a) + 100);
    expect(r.huge).toBe(true);
    expect(r.writable).toBe(true);
    expect(m.vmstat().thp_fault_alloc).toBe(1);
    expect(m.mthpStats()['2048kB'].anon_fault_alloc).toBe(1);
    expect(m.mthpStats()['2048kB'].nr_anon).toBe(1);
    expect(m.meminfo().AnonHugePages).toBe(2048);
    expect(m.meminfo().AnonPages).toBe(2048);
    // Every other page of the THP is now a hit, with no further fault.
    expect(m.touch(mm, a, 2 * MiB, true)).toBe('hit');
    expect(m.vmstat().pgfault).toBe(1);
  });

  it('enabled=madvise: order 0 without MADV_HUGEPAGE, a THP with it', () => {
    const s = setup();
    const { m, mm } = s;
    m.sysfsWrite('enabled', 'madvise');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, true);
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 4, AnonHugePages: 0, byOrder: { 0: 4 } });
    expect(m.vmstat().thp_fault_alloc).toBe(0);

    const b = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.madvise(mm, b, 2 * MiB, 'hugepage');
    m.access(mm, b, true);
    expect(orderAt(m.kernel, mm, vpn(s, b))).toBe(9);
    expect(smapsTotal(m, mm).AnonHugePages).toBe(2048);
    expect(m.vmstat().thp_fault_alloc).toBe(1);
  });

  it('enabled=never: no THP even with MADV_HUGEPAGE', () => {
    const s = setup();
    const { m, mm } = s;
    m.sysfsWrite('enabled', 'never');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.madvise(mm, a, 2 * MiB, 'hugepage');
    m.access(mm, a, true);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(0);
  });

  it('hugepages-64kB=always with PMD never: 64 kB folios', () => {
    const s = setup();
    const { m, mm } = s;
    m.sysfsWrite('hugepages-64kB/enabled', 'always');
    m.sysfsWrite('hugepages-2048kB/enabled', 'never');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a + 70 * KiB, true); // inside the second 64 kB block
    expect(orderAt(m.kernel, mm, vpn(s, a) + 17)).toBe(4);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(-1); // the first block is untouched
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 64, AnonHugePages: 0, byOrder: { 4: 64 } });
    expect(m.mthpStats()['64kB'].anon_fault_alloc).toBe(1);
    expect(m.mthpStats()['64kB'].nr_anon).toBe(1);
    expect(m.mthpStats()['2048kB'].anon_fault_alloc).toBe(0);
    // mTHP faults are not PMD THP faults.
    expect(m.vmstat().thp_fault_alloc).toBe(0);
    // The 16 PTEs map 16 consecutive pages of one folio.
    const head = resolve(m.kernel, mm, vpn(s, a) + 16).pfn;
    for (let i = 0; i < 16; i++)
      expect(resolve(m.kernel, mm, vpn(s, a) + 16 + i).pfn).toBe(head + i);
  });

  it('per-size modes against the global mode and MADV_HUGEPAGE (sysfs mask, §1.4 step A)', () => {
    const s = setup();
    const { m, mm } = s;
    m.sysfsWrite('hugepages-2048kB/enabled', 'never');
    const fresh = (advise: boolean): number => {
      const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
      if (advise) m.madvise(mm, a, 2 * MiB, 'hugepage');
      m.access(mm, a, true);
      return orderAt(m.kernel, mm, vpn(s, a));
    };
    // Per-size 'madvise' needs MADV_HUGEPAGE but not the global mode.
    m.sysfsWrite('enabled', 'never');
    m.sysfsWrite('hugepages-64kB/enabled', 'madvise');
    expect(fresh(false)).toBe(0);
    expect(fresh(true)).toBe(4);
    // 'inherit' follows the global mode: never, then madvise (needs the advice), then always.
    m.sysfsWrite('hugepages-64kB/enabled', 'inherit');
    expect(fresh(true)).toBe(0);
    m.sysfsWrite('enabled', 'madvise');
    expect(fresh(false)).toBe(0);
    expect(fresh(true)).toBe(4);
    m.sysfsWrite('enabled', 'always');
    expect(fresh(false)).toBe(4);
    // Per-size 'always' ignores the global mode entirely.
    m.sysfsWrite('enabled', 'never');
    m.sysfsWrite('hugepages-32kB/enabled', 'always');
    expect(fresh(false)).toBe(3);
  });

  it('an existing PTE table blocks a PMD THP; MADV_DONTNEED of the whole PMD frees it on x86', () => {
    const s = setup();
    const { m, mm } = s;
    m.sysfsWrite('enabled', 'madvise');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, true); // order 0: a PTE table now sits under the PMD
    const tables = m.kernel.pt.pte.live;
    m.madvise(mm, a, 2 * MiB, 'hugepage');
    m.access(mm, a + 4096, true);
    expect(orderAt(m.kernel, mm, vpn(s, a) + 1)).toBe(0);
    // Emptying the whole PMD range reclaims the table (pt_reclaim), and a THP can follow.
    m.madvise(mm, a, 2 * MiB, 'dontneed');
    expect(m.kernel.pt.pte.live).toBe(tables - 1);
    m.access(mm, a, true);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(9);
  });

  it('arm64 keeps the empty PTE table after MADV_DONTNEED: no THP there afterwards', () => {
    const s = setup({ geometry: 'arm64-4k' });
    const { m, mm } = s;
    m.sysfsWrite('enabled', 'madvise');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, true);
    const tables = m.kernel.pt.pte.live;
    m.madvise(mm, a, 2 * MiB, 'hugepage');
    m.madvise(mm, a, 2 * MiB, 'dontneed');
    expect(m.kernel.pt.pte.live).toBe(tables);
    m.access(mm, a, true);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(0);
  });

  it('a VMA too small or misaligned for a PMD gets the largest fitting mTHP order', () => {
    const s = setup();
    const { m, mm } = s;
    for (const kb of [16, 32, 64, 128, 256, 512, 1024])
      m.sysfsWrite(`hugepages-${kb}kB/enabled`, 'inherit');
    // 1 MiB at a 1 MiB (not 2 MiB) aligned address: order 8 is the largest that fits.
    const small = m.mmap(mm, { lengthBytes: 1 * MiB, addrBytes: BASE + 1 * MiB });
    m.access(mm, small, true);
    expect(orderAt(m.kernel, mm, vpn(s, small))).toBe(8);
    expect(smapsTotal(m, mm).byOrder).toEqual({ 8: 1024 });
    expect(m.mthpStats()['1024kB'].anon_fault_alloc).toBe(1);
    expect(m.mthpStats()['2048kB'].anon_fault_alloc).toBe(0);

    // 2 MiB starting 64 kB past a PMD boundary: no PMD THP; the order depends on the address.
    const mis = m.mmap(mm, { lengthBytes: 2 * MiB, addrBytes: BASE + 8 * MiB + 64 * KiB });
    const p = vpn(s, mis);
    m.access(mm, mis, true); // 64 kB aligned, not 128 kB aligned
    expect(orderAt(m.kernel, mm, p)).toBe(4);
    m.access(mm, mis + 64 * KiB, true); // 128 kB aligned, not 256 kB
    expect(orderAt(m.kernel, mm, p + 16)).toBe(5);
    m.access(mm, BASE + 9 * MiB, true); // 1 MiB aligned and [9, 10) MiB lies inside the VMA
    expect(orderAt(m.kernel, mm, vpn(s, BASE + 9 * MiB))).toBe(8);
    // The last page: its 64 kB block ends exactly at the VMA end; its 128 kB block would not.
    m.access(mm, mis + 2 * MiB - 4096, true);
    expect(orderAt(m.kernel, mm, p + 511)).toBe(4);
    expect(m.mthpStats()['2048kB'].anon_fault_alloc).toBe(0);
    expect(smapsTotal(m, mm).AnonHugePages).toBe(0);
  });

  it('a PTE already present in the 64 kB-aligned range forces a smaller order (pte_range_none)', () => {
    const s = setup();
    const { m, mm } = s;
    for (const kb of [16, 32, 64]) m.sysfsWrite(`hugepages-${kb}kB/enabled`, 'always');
    m.sysfsWrite('hugepages-2048kB/enabled', 'never');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    const p = vpn(s, a);
    m.access(mm, a, false); // the zero page at page 0
    expect(resolve(m.kernel, mm, p).kind).toBe('zero');
    m.access(mm, a + 8 * 4096, true); // [0, 16) is not all none, [8, 16) is
    expect(orderAt(m.kernel, mm, p + 8)).toBe(3);
    m.access(mm, a + 4 * 4096, true); // [0, 8) holds page 0, [4, 8) is none
    expect(orderAt(m.kernel, mm, p + 4)).toBe(2);
    m.access(mm, a + 1 * 4096, true); // [0, 4) holds page 0: order 0
    expect(orderAt(m.kernel, mm, p + 1)).toBe(0);
    // The next 64 kB block is untouched: order 4.
    m.access(mm, a + 16 * 4096, true);
    expect(orderAt(m.kernel, mm, p + 16)).toBe(4);
    const st = m.mthpStats();
    expect([
      st['16kB'].anon_fault_alloc,
      st['32kB'].anon_fault_alloc,
      st['64kB'].anon_fault_alloc,
    ]).toEqual([1, 1, 1]);
    expect(smapsTotal(m, mm).byOrder).toEqual({ 4: 64, 3: 32, 2: 16, 0: 4 });
  });
});

describe('allocation failure and OOM', () => {
  it('order-9 allocation failure falls back to order 0 and counts the fallback', () => {
    // 3 MiB of RAM: the largest free block is order 8, so no PMD THP can be allocated.
    const s = setup({ ramBytes: 3 * MiB });
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    expect(m.access(mm, a, true)).toBe('fault');
    expect(m.vmstat().thp_fault_fallback).toBe(1);
    expect(m.vmstat().thp_fault_alloc).toBe(0);
    expect(m.mthpStats()['2048kB'].anon_fault_fallback).toBe(1);
    expect(m.mthpStats()['2048kB'].anon_fault_alloc).toBe(0);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(0);
    expect(smapsTotal(m, mm).Rss).toBe(4);
  });

  it('order-9 failure with 64 kB enabled falls back to a 64 kB folio', () => {
    const s = setup({ ramBytes: 3 * MiB });
    const { m, mm } = s;
    m.sysfsWrite('hugepages-64kB/enabled', 'always');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, true);
    expect(m.mthpStats()['2048kB'].anon_fault_fallback).toBe(1);
    expect(m.mthpStats()['64kB'].anon_fault_alloc).toBe(1);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(4);
  });

  it('mTHP allocation failure: anon_fault_fallback for the order, then order 0', () => {
    // 1 MiB: 255 free pages in blocks of order 0..7; fifteen 64 kB folios fit, then none.
    const s = setup({ ramBytes: 1 * MiB });
    const { m, mm } = s;
    m.sysfsWrite('hugepages-64kB/enabled', 'always');
    m.sysfsWrite('hugepages-2048kB/enabled', 'never');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    for (let i = 0; i < 15; i++) m.access(mm, a + i * 64 * KiB, true);
    expect(m.mthpStats()['64kB'].anon_fault_alloc).toBe(15);
    expect(m.mthpStats()['64kB'].anon_fault_fallback).toBe(0);
    expect(m.meminfo().MemFree).toBe(15 * 4);
    m.access(mm, a + 15 * 64 * KiB, true);
    expect(m.mthpStats()['64kB'].anon_fault_fallback).toBe(1);
    expect(orderAt(m.kernel, mm, vpn(s, a) + 15 * 16)).toBe(0);
    expect(m.meminfo().MemFree).toBe(14 * 4);
  });

  it('RAM exhausted: the write fault that finds no page is OOM', () => {
    const s = setup({ ramBytes: 1 * MiB });
    const { m, mm } = s;
    m.sysfsWrite('enabled', 'never');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB });
    const free = m.meminfo().MemFree / 4;
    expect(free).toBe(255); // every page but the zero page
    for (let i = 0; i < free; i++) expect(m.access(mm, a + i * 4096, true)).toBe('fault');
    expect(m.meminfo().MemFree).toBe(0);
    expect(m.access(mm, a + free * 4096, true)).toBe('oom');
    // A read still works: the zero page needs no memory.
    expect(m.access(mm, a + (free + 1) * 4096, false)).toBe('fault');
    expect(m.touch(mm, a, 2 * MiB, true)).toBe('oom');
    m.munmap(mm, a, 2 * MiB);
    expect(m.meminfo().MemFree).toBe(255 * 4);
  });
});

describe('read faults and the zero pages', () => {
  it('a read maps the shared zero page: nothing resident', () => {
    const s = setup();
    const { m, mm } = s;
    m.sysfsWrite('enabled', 'madvise');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    const free = m.meminfo().MemFree;
    expect(m.access(mm, a + 4096, false)).toBe('fault');
    const r = resolve(m.kernel, mm, vpn(s, a) + 1);
    expect(r).toMatchObject({ kind: 'zero', pfn: m.kernel.zeroPfn, huge: false, writable: false });
    expect(smapsTotal(m, mm).Rss).toBe(0);
    expect(m.meminfo().MemFree).toBe(free);
    expect(m.access(mm, a + 4096, false)).toBe('hit');
    // Writing it replaces the zero page with a private page.
    expect(m.access(mm, a + 4096, true)).toBe('fault');
    expect(resolve(m.kernel, mm, vpn(s, a) + 1).kind).toBe('page');
    expect(smapsTotal(m, mm).Rss).toBe(4);
  });

  it('use_zero_page: a read of a THP-eligible PMD maps the huge zero page', () => {
    const s = setup();
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 4 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, false);
    const r = resolve(m.kernel, mm, vpn(s, a) + 3);
    expect(r.kind).toBe('zero');
    expect(r.huge).toBe(true);
    expect(m.kernel.folios.flags[m.kernel.hugeZeroPfn] & PG_ZERO).toBe(PG_ZERO);
    expect(r.pfn).toBe(m.kernel.hugeZeroPfn + 3);
    expect(m.vmstat().thp_zero_page_alloc).toBe(1);
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 0, AnonHugePages: 0 });
    expect(m.meminfo().AnonHugePages).toBe(0);
    // The huge zero folio is allocated once and shared by every PMD.
    m.access(mm, a + 2 * MiB, false);
    expect(resolve(m.kernel, mm, vpn(s, a) + 512).pfn).toBe(m.kernel.hugeZeroPfn);
    expect(m.vmstat().thp_zero_page_alloc).toBe(1);
  });

  it('use_zero_page=0: a read fault on a THP-eligible PMD allocates a THP', () => {
    const s = setup();
    const { m, mm } = s;
    m.sysfsWrite('use_zero_page', '0');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, false);
    expect(m.vmstat().thp_zero_page_alloc).toBe(0);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(9);
    expect(smapsTotal(m, mm).AnonHugePages).toBe(2048);
  });

  it('a write after a huge-zero read replaces it with a THP', () => {
    const s = setup();
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, false);
    const free = m.meminfo().MemFree;
    expect(m.access(mm, a + 12 * 4096, true)).toBe('fault');
    const r = resolve(m.kernel, mm, vpn(s, a) + 12);
    expect(r).toMatchObject({ kind: 'page', huge: true, writable: true });
    expect(m.kernel.folios.data[r.pfn]).not.toBe(0);
    expect(m.kernel.folios.data[r.pfn - 12]).toBe(0);
    expect(m.vmstat().thp_fault_alloc).toBe(1);
    expect(m.vmstat().thp_split_pmd).toBe(0);
    expect(smapsTotal(m, mm).AnonHugePages).toBe(2048);
    expect(m.meminfo().MemFree).toBe(free - 2048);
  });

  it('a write after a huge-zero read splits the PMD when no THP can be allocated', () => {
    // 4 MiB: exactly one order-9 block, which the huge zero folio takes.
    const s = setup({ ramBytes: 4 * MiB });
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, false);
    expect(m.vmstat().thp_zero_page_alloc).toBe(1);
    expect(m.access(mm, a + 7 * 4096, true)).toBe('fault');
    expect(m.vmstat().thp_fault_fallback).toBe(1);
    expect(m.mthpStats()['2048kB'].anon_fault_fallback).toBe(1);
    expect(m.vmstat().thp_split_pmd).toBe(1);
    const p = vpn(s, a);
    expect(resolve(m.kernel, mm, p + 7)).toMatchObject({ kind: 'page', huge: false });
    // The rest of the range maps the small zero page through PTEs now.
    for (const i of [0, 6, 8, 511])
      expect(resolve(m.kernel, mm, p + i)).toMatchObject({ kind: 'zero', huge: false, pfn: 0 });
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 4, AnonHugePages: 0 });
  });

  it('the huge zero page cannot be allocated: a read falls back to the small zero page', () => {
    const s = setup({ ramBytes: 3 * MiB });
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, false);
    expect(m.vmstat().thp_zero_page_alloc_failed).toBe(1);
    // do_huge_pmd_anonymous_page counts the fallback too (not per size: no THP was tried).
    expect(m.vmstat().thp_fault_fallback).toBe(1);
    expect(m.mthpStats()['2048kB'].anon_fault_fallback).toBe(0);
    expect(resolve(m.kernel, mm, vpn(s, a))).toMatchObject({ kind: 'zero', huge: false });
  });
});

describe('THP disabled per mm or per VMA', () => {
  it("prctl 'all': no THP and no mTHP", () => {
    const s = setup();
    const { m, mm } = s;
    m.sysfsWrite('hugepages-64kB/enabled', 'always');
    m.prctlThpDisable(mm, 'all');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.madvise(mm, a, 2 * MiB, 'hugepage');
    m.access(mm, a, true);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(0);
    expect(m.vmstat().thp_fault_alloc).toBe(0);
  });

  it('MADV_NOHUGEPAGE: no THP', () => {
    const s = setup();
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 4 * MiB, alignBytes: 2 * MiB });
    m.madvise(mm, a, 2 * MiB, 'nohugepage');
    m.access(mm, a, true);
    m.access(mm, a + 2 * MiB, true);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(0);
    // The other half of the mapping keeps its THP.
    expect(orderAt(m.kernel, mm, vpn(s, a + 2 * MiB))).toBe(9);
    expect(m.smaps(mm).map((e) => e.flags.includes('nh'))).toEqual([true, false]);
  });

  it("prctl 'except-advised': THP only with MADV_HUGEPAGE", () => {
    const s = setup();
    const { m, mm } = s;
    m.prctlThpDisable(mm, 'except-advised');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    const b = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.madvise(mm, b, 2 * MiB, 'hugepage');
    m.access(mm, a, true);
    m.access(mm, b, true);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(0);
    expect(orderAt(m.kernel, mm, vpn(s, b))).toBe(9);
  });
});

describe('bad accesses', () => {
  it('outside any VMA, or a write to a read-only VMA: SIGSEGV', () => {
    const s = setup();
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 64 * KiB, addrBytes: BASE });
    expect(m.access(mm, a - 4096, true)).toBe('sigsegv');
    expect(m.access(mm, a + 64 * KiB, false)).toBe('sigsegv');
    expect(m.access(mm, 0x1000, false)).toBe('sigsegv');
    const ro = m.mmap(mm, { lengthBytes: 64 * KiB, addrBytes: BASE + 2 * MiB, prot: 'r' });
    expect(m.access(mm, ro, false)).toBe('fault');
    expect(m.access(mm, ro, true)).toBe('sigsegv');
    expect(smapsTotal(m, mm).Rss).toBe(0);
    expect(m.access(mm, a, true)).toBe('fault');
    m.munmap(mm, a, 64 * KiB);
    expect(m.access(mm, a, true)).toBe('sigsegv');
  });
});

describe('other geometries', () => {
  it('arm64-64k: a 512 MiB-aligned VMA of 512 MiB gets one PMD THP', () => {
    const s = setup({ geometry: 'arm64-64k', ramBytes: 1536 * MiB });
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 512 * MiB, alignBytes: 512 * MiB });
    expect(a % (512 * MiB)).toBe(0);
    m.access(mm, a + 3 * 64 * KiB, true);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(13);
    expect(resolve(m.kernel, mm, vpn(s, a) + 8191).huge).toBe(true);
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 524288, AnonHugePages: 524288 });
    expect(m.mthpStats()['524288kB'].anon_fault_alloc).toBe(1);
    expect(m.vmstat().thp_fault_alloc).toBe(1);
  });

  it('arm64-64k: a 256 kB folio is its smallest mTHP', () => {
    const s = setup({ geometry: 'arm64-64k', ramBytes: 1536 * MiB });
    const { m, mm } = s;
    m.sysfsWrite('hugepages-256kB/enabled', 'always');
    m.sysfsWrite('hugepages-524288kB/enabled', 'never');
    const a = m.mmap(mm, { lengthBytes: 1 * MiB, alignBytes: 1 * MiB });
    m.access(mm, a, true);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(2);
    expect(smapsTotal(m, mm).Rss).toBe(256);
  });

  it('arm64-16k: a 32 MiB-aligned VMA gets one 32 MiB THP', () => {
    const s = setup({ geometry: 'arm64-16k', ramBytes: 256 * MiB });
    const { m, mm } = s;
    const a = m.mmap(mm, { lengthBytes: 32 * MiB, alignBytes: 32 * MiB });
    m.access(mm, a + 5 * 16 * KiB, true);
    expect(orderAt(m.kernel, mm, vpn(s, a))).toBe(11);
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 32768, AnonHugePages: 32768 });
    expect(m.mthpStats()['32768kB'].anon_fault_alloc).toBe(1);
    expect(m.meminfo().AnonHugePages).toBe(32768);
  });
});
