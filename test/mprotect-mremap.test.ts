// mprotect and mremap: protection changes on PTEs and huge PMDs with VMA split and merge, and
// mremap's shrink, grow in place and moves (whole PUD/PMD tables, huge PMDs with their deposit,
// single PTEs). Then a model-based test over mmap/munmap/mprotect/mremap/fork/exit/read/write.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Kernel } from '../src/mm/kernel.ts';
import { levelIndex, pmdTableOf } from '../src/mm/pagewalk.ts';
import { B_PROTNONE, B_WRITE, E_PRESENT, E_TABLE, E_TYPE_MASK, PMD } from '../src/mm/pgtable.ts';
import { anonRmapVmas } from '../src/mm/split.ts';
import { walkRange } from '../src/mm/walk.ts';
import { type AccessOutcome, Errno, Machine, type Mm, type Prot } from '../src/sim/machine.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const PAGE = 4 * KiB;
const HPAGE = 2 * MiB;

function machine(ramBytes = 64 * MiB): Machine {
  return new Machine({ geometry: 'x86-64-4k', ramBytes, strictLocks: true });
}

interface Entry {
  pfn: number;
  bits: number;
  huge: boolean;
}

function entry(m: Machine, mm: Mm, addr: number): Entry | null {
  const vpn = Math.floor(addr / PAGE);
  let out: Entry | null = null;
  walkRange(m.kernel, mm, vpn, vpn + 1, {
    pmd(base, _t, _i, bits, head) {
      out = { pfn: head + (vpn - base), bits, huge: true };
    },
    pte(_v, _t, _i, bits, val) {
      if ((bits & E_TYPE_MASK) === E_PRESENT) out = { pfn: val, bits, huge: false };
    },
  });
  return out;
}

function dataAt(m: Machine, mm: Mm, addr: number): number {
  const e = entry(m, mm, addr);
  return e ? m.kernel.folios.data[e.pfn] : 0;
}

function datas(m: Machine, mm: Mm, addr: number, len: number, stride = PAGE): number[] {
  const out: number[] = [];
  for (let a = addr; a < addr + len; a += stride) out.push(dataAt(m, mm, a));
  return out;
}

/** The PTE table mapping addr, or 0. */
function pteTableAt(k: Kernel, mm: Mm, addr: number): number {
  const vpn = addr / PAGE;
  const pmdT = pmdTableOf(k, mm, vpn);
  if (!pmdT) return 0;
  const i = levelIndex(k, vpn, PMD);
  return k.pt.pmd.type(pmdT, i) === E_TABLE ? k.pt.pmd.getVal(pmdT, i) : 0;
}

function ok<T>(m: Machine, v: T): T {
  m.checkInvariants();
  return v;
}

function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof Errno) return e.errno;
    throw e;
  }
  return 'none';
}

/** Every mapped page of [addr, addr+len) is found by rmap at the address it is mapped at. */
function expectRmapConsistent(m: Machine, mm: Mm, addr: number, len: number): void {
  const k = m.kernel;
  for (let a = addr; a < addr + len; a += PAGE) {
    const e = entry(m, mm, a);
    if (!e || e.pfn === k.zeroPfn) continue;
    const head = k.folios.headOf(e.pfn);
    if (head === k.hugeZeroPfn) continue;
    const index = k.folios.index[head] + (e.pfn - head);
    const found = anonRmapVmas(k, head).filter((v) => v.mm === mm && v.addressOf(index) >= 0);
    expect(found.map((v) => v.addressOf(index))).toEqual([a / PAGE]);
  }
}

describe('mprotect', () => {
  it('read-only makes writes fail, read-write makes exclusive pages writable again', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 8 * PAGE }));
    ok(m, m.touch(mm, a, 8 * PAGE, true));
    const data = datas(m, mm, a, 8 * PAGE);
    ok(m, m.mprotect(mm, a, 8 * PAGE, 'r'));
    expect(mm.vmas[0].flags & B_WRITE).toBe(0);
    expect(entry(m, mm, a)!.bits & B_WRITE).toBe(0);
    expect(ok(m, m.access(mm, a, true))).toBe('sigsegv');
    expect(ok(m, m.access(mm, a, false))).toBe('hit');
    expect(datas(m, mm, a, 8 * PAGE)).toEqual(data);

    ok(m, m.mprotect(mm, a, 8 * PAGE, 'rw'));
    // can_change_pte_writable: exclusive anon pages are writable without a fault.
    expect(entry(m, mm, a)!.bits & B_WRITE).toBe(B_WRITE);
    expect(ok(m, m.access(mm, a, true))).toBe('hit');
    expect(dataAt(m, mm, a)).not.toBe(data[0]);
    expect(datas(m, mm, a + PAGE, 7 * PAGE)).toEqual(data.slice(1));
  });

  it('leaves shared pages read-only: the write after mprotect RW goes through COW', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 4 * PAGE }));
    ok(m, m.touch(parent, a, 4 * PAGE, true));
    const child = ok(m, m.fork(parent, 'child'));
    ok(m, m.mprotect(child, a, 4 * PAGE, 'r'));
    ok(m, m.mprotect(child, a, 4 * PAGE, 'rw'));
    expect(entry(m, child, a)!.bits & B_WRITE).toBe(0);
    const shared = entry(m, child, a)!.pfn;
    const d = dataAt(m, parent, a);
    expect(ok(m, m.access(child, a, true))).toBe('fault');
    expect(entry(m, child, a)!.pfn).not.toBe(shared);
    expect(dataAt(m, parent, a)).toBe(d);
  });

  it('PROT_NONE makes present pages inaccessible and keeps their data', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 4 * PAGE }));
    ok(m, m.touch(mm, a, 4 * PAGE, true));
    const data = datas(m, mm, a, 4 * PAGE);
    ok(m, m.mprotect(mm, a, 4 * PAGE, 'none'));
    expect(entry(m, mm, a)!.bits & B_PROTNONE).toBe(B_PROTNONE);
    expect(ok(m, m.access(mm, a, false))).toBe('sigsegv');
    expect(ok(m, m.access(mm, a + PAGE, true))).toBe('sigsegv');
    expect(m.smaps(mm)[0].Rss).toBe(16);
    ok(m, m.mprotect(mm, a, 4 * PAGE, 'r'));
    expect(ok(m, m.access(mm, a, false))).toBe('hit');
    expect(datas(m, mm, a, 4 * PAGE)).toEqual(data);
  });

  it('splits a VMA in the middle and merges it back', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 16 * PAGE }));
    ok(m, m.touch(mm, a, 16 * PAGE, true));
    ok(m, m.mprotect(mm, a + 4 * PAGE, 4 * PAGE, 'r'));
    expect(m.smaps(mm).map((s) => [s.start - a, s.end - a, s.flags])).toEqual([
      [0, 4 * PAGE, 'rd wr mw'],
      [4 * PAGE, 8 * PAGE, 'rd mw'],
      [8 * PAGE, 16 * PAGE, 'rd wr mw'],
    ]);
    expect(ok(m, m.access(mm, a + 3 * PAGE, true))).toBe('hit');
    expect(ok(m, m.access(mm, a + 4 * PAGE, true))).toBe('sigsegv');
    expect(ok(m, m.access(mm, a + 8 * PAGE, true))).toBe('hit');
    ok(m, m.mprotect(mm, a + 4 * PAGE, 4 * PAGE, 'rw'));
    expect(mm.vmas.length).toBe(1);
    expect(mm.vmas[0].start * PAGE).toBe(a);
    expect(mm.vmas[0].end * PAGE).toBe(a + 16 * PAGE);
    expect(ok(m, m.access(mm, a + 4 * PAGE, true))).toBe('hit');
  });

  it('keeps a huge PMD huge when it covers it whole, splits it when it cuts through it', () => {
    const m = machine();
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 2 * HPAGE, alignBytes: HPAGE }));
    ok(m, m.touch(mm, a, 2 * HPAGE, true));
    const splits = m.vmstat().thp_split_pmd;
    ok(m, m.mprotect(mm, a, HPAGE, 'r'));
    expect(m.vmstat().thp_split_pmd).toBe(splits);
    expect(m.meminfo().AnonHugePages).toBe(4096);
    expect(entry(m, mm, a)!.huge).toBe(true);
    expect(entry(m, mm, a)!.bits & B_WRITE).toBe(0);
    expect(ok(m, m.access(mm, a + PAGE, true))).toBe('sigsegv');
    ok(m, m.mprotect(mm, a, HPAGE, 'rw'));
    expect(mm.vmas.length).toBe(1);
    expect(entry(m, mm, a)!.bits & B_WRITE).toBe(B_WRITE);
    expect(ok(m, m.access(mm, a + PAGE, true))).toBe('hit');

    // One page in the middle of the second THP: the VMA and the PMD are split.
    const mid = a + HPAGE + 7 * PAGE;
    const d = datas(m, mm, a + HPAGE, HPAGE, 64 * KiB);
    ok(m, m.mprotect(mm, mid, PAGE, 'r'));
    expect(m.vmstat().thp_split_pmd).toBe(splits + 1);
    expect(mm.vmas.length).toBe(3);
    expect(entry(m, mm, mid)!.huge).toBe(false);
    expect(ok(m, m.access(mm, mid, true))).toBe('sigsegv');
    expect(ok(m, m.access(mm, mid + PAGE, true))).toBe('hit');
    expect(datas(m, mm, a + HPAGE, HPAGE, 64 * KiB)).toEqual(d);
  });

  it('fails with ENOMEM on a hole, after changing what lies before it', () => {
    const m = machine();
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 12 * PAGE, name: 'x' }));
    ok(m, m.munmap(mm, a + 4 * PAGE, 4 * PAGE));
    expect(errnoOf(() => m.mprotect(mm, a, 12 * PAGE, 'r'))).toBe('ENOMEM');
    m.checkInvariants();
    expect(m.smaps(mm).map((s) => s.flags)).toEqual(['rd mw', 'rd wr mw']);
    expect(errnoOf(() => m.mprotect(mm, a + 4 * PAGE, 8 * PAGE, 'r'))).toBe('ENOMEM');
    expect(m.smaps(mm).map((s) => s.flags)).toEqual(['rd mw', 'rd wr mw']);
    m.checkInvariants();
  });
});

describe('mremap', () => {
  it('shrinks by unmapping the tail', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 16 * PAGE }));
    ok(m, m.touch(mm, a, 16 * PAGE, true));
    const free = m.meminfo().MemFree;
    const data = datas(m, mm, a, 8 * PAGE);
    expect(ok(m, m.mremap(mm, a, 16 * PAGE, 8 * PAGE))).toBe(a);
    expect(mm.vmas[0].end * PAGE).toBe(a + 8 * PAGE);
    expect(mm.rssAnon).toBe(8);
    expect(m.meminfo().MemFree).toBe(free + 32);
    expect(ok(m, m.access(mm, a + 8 * PAGE, false))).toBe('sigsegv');
    expect(datas(m, mm, a, 8 * PAGE)).toEqual(data);
  });

  it('grows in place when the following range is free', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 8 * PAGE }));
    ok(m, m.munmap(mm, a + 4 * PAGE, 4 * PAGE));
    ok(m, m.touch(mm, a, 4 * PAGE, true));
    const data = datas(m, mm, a, 4 * PAGE);
    expect(ok(m, m.mremap(mm, a, 4 * PAGE, 8 * PAGE))).toBe(a);
    expect(mm.vmas.length).toBe(1);
    expect(mm.vmas[0].end * PAGE).toBe(a + 8 * PAGE);
    expect(datas(m, mm, a, 4 * PAGE)).toEqual(data);
    expect(ok(m, m.access(mm, a + 6 * PAGE, false))).toBe('fault');
    expect(dataAt(m, mm, a + 6 * PAGE)).toBe(0);
    expect(ok(m, m.access(mm, a + 6 * PAGE, true))).toBe('fault');
  });

  it('moves when it cannot grow, keeping data, rmap and the old range unmapped', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 10 * PAGE, name: 'src' }));
    ok(m, m.mmap(mm, { lengthBytes: PAGE, addrBytes: a + 10 * PAGE, name: 'blocker' }));
    ok(m, m.touch(mm, a, 10 * PAGE, true));
    const data = datas(m, mm, a, 10 * PAGE);
    const pfns = Array.from({ length: 10 }, (_, i) => entry(m, mm, a + i * PAGE)!.pfn);
    const b = ok(m, m.mremap(mm, a, 10 * PAGE, 20 * PAGE));
    expect(b).not.toBe(a);
    expect(datas(m, mm, b, 10 * PAGE)).toEqual(data);
    expect(Array.from({ length: 10 }, (_, i) => entry(m, mm, b + i * PAGE)!.pfn)).toEqual(pfns);
    expect(entry(m, mm, a)).toBeNull();
    expect(ok(m, m.access(mm, a, false))).toBe('sigsegv');
    const moved = mm.findVma(b / PAGE)!;
    expect(moved.pgoff).toBe(a / PAGE);
    expect(moved.end - moved.start).toBe(20);
    expectRmapConsistent(m, mm, b, 10 * PAGE);
    expect(ok(m, m.access(mm, b + 15 * PAGE, false))).toBe('fault');
    expect(dataAt(m, mm, b + 15 * PAGE)).toBe(0);
    expect(ok(m, m.access(mm, b, true))).toBe('hit');
  });

  it('moves a PMD-aligned 4 MiB region of THPs whole: still huge, same folios', () => {
    const m = machine();
    const k = m.kernel;
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 2 * HPAGE, alignBytes: HPAGE, name: 'thp' }));
    ok(m, m.mmap(mm, { lengthBytes: PAGE, addrBytes: a + 2 * HPAGE, name: 'blocker' }));
    ok(m, m.touch(mm, a, 2 * HPAGE, true));
    const data = datas(m, mm, a, 2 * HPAGE, 32 * KiB);
    const heads = [entry(m, mm, a)!.pfn, entry(m, mm, a + HPAGE)!.pfn];
    const splits = m.vmstat().thp_split_pmd;
    const tables = k.pt.pte.live;
    const b = ok(m, m.mremap(mm, a, 2 * HPAGE, 3 * HPAGE));
    expect(b).not.toBe(a);
    // thp_get_unmapped_area keeps the destination PMD-aligned like the source.
    expect(b % HPAGE).toBe(0);
    expect(m.vmstat().thp_split_pmd).toBe(splits);
    expect(m.meminfo().AnonHugePages).toBe(4096);
    expect(entry(m, mm, b)).toEqual({ pfn: heads[0], bits: expect.any(Number), huge: true });
    expect(entry(m, mm, b + HPAGE)!.pfn).toBe(heads[1]);
    expect(entry(m, mm, b + HPAGE)!.huge).toBe(true);
    expect(datas(m, mm, b, 2 * HPAGE, 32 * KiB)).toEqual(data);
    // The deposited tables moved along; the old range left no table behind.
    expect(k.pt.pte.live).toBe(tables);
    expect(entry(m, mm, a)).toBeNull();
    expect(m.smaps(mm).find((s) => s.name === 'thp')!.AnonHugePages).toBe(4096);
    expectRmapConsistent(m, mm, b, 2 * HPAGE);
    expect(ok(m, m.access(mm, b + 5 * PAGE, true))).toBe('hit');
    expect(ok(m, m.access(mm, b + 2 * HPAGE, true))).toBe('fault');
  });

  it('relinks whole PTE tables when source and destination are PMD-aligned', () => {
    const m = machine();
    const k = m.kernel;
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 2 * HPAGE, alignBytes: HPAGE }));
    ok(m, m.touch(mm, a, 2 * HPAGE, true, 16 * PAGE));
    const t0 = pteTableAt(k, mm, a);
    const t1 = pteTableAt(k, mm, a + HPAGE);
    const data = datas(m, mm, a, 2 * HPAGE, 16 * PAGE);
    const dst = a + 64 * HPAGE;
    expect(ok(m, m.mremap(mm, a, 2 * HPAGE, 2 * HPAGE, dst))).toBe(dst);
    expect(pteTableAt(k, mm, dst)).toBe(t0);
    expect(pteTableAt(k, mm, dst + HPAGE)).toBe(t1);
    expect(datas(m, mm, dst, 2 * HPAGE, 16 * PAGE)).toEqual(data);
    expectRmapConsistent(m, mm, dst, 2 * HPAGE);
  });

  it('relinks a whole PMD table when source and destination are PUD-aligned', () => {
    const m = machine();
    const k = m.kernel;
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: GiB, alignBytes: GiB }));
    ok(m, m.touch(mm, a, GiB, true, 64 * HPAGE));
    const pmdT = pmdTableOf(k, mm, a / PAGE);
    const data = datas(m, mm, a, GiB, 64 * HPAGE);
    const dst = a - 4 * GiB;
    expect(ok(m, m.mremap(mm, a, GiB, GiB, dst))).toBe(dst);
    expect(pmdTableOf(k, mm, dst / PAGE)).toBe(pmdT);
    expect(pmdTableOf(k, mm, a / PAGE)).toBe(0);
    expect(datas(m, mm, dst, GiB, 64 * HPAGE)).toEqual(data);
  });

  it('moves an unaligned region PTE by PTE', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    m.sysfsWrite('hugepages-64kB/enabled', 'always');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 256 * KiB, alignBytes: 64 * KiB }));
    ok(m, m.touch(mm, a, 256 * KiB, true));
    const data = datas(m, mm, a, 256 * KiB);
    const head = entry(m, mm, a)!.pfn;
    expect(m.kernel.folios.order[head]).toBe(4);
    // Three pages past a PMD boundary: not congruent with the source in any table.
    const dst = a + 8 * HPAGE - 3 * PAGE;
    expect(ok(m, m.mremap(mm, a, 256 * KiB, 256 * KiB, dst))).toBe(dst);
    expect(datas(m, mm, dst, 256 * KiB)).toEqual(data);
    expect(entry(m, mm, dst)!.pfn).toBe(head);
    expect(m.kernel.folios.mapcount[head]).toBe(16);
    expectRmapConsistent(m, mm, dst, 256 * KiB);
    expect(ok(m, m.access(mm, dst + PAGE, true))).toBe('hit');
    ok(m, m.munmap(mm, dst, 256 * KiB));
    expect(m.meminfo().AnonPages).toBe(0);
  });

  it('splits huge PMDs that cannot move whole', () => {
    const m = machine();
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 2 * HPAGE, alignBytes: HPAGE }));
    ok(m, m.touch(mm, a, 2 * HPAGE, true));
    const data = datas(m, mm, a, 2 * HPAGE, 16 * KiB);
    const splits = m.vmstat().thp_split_pmd;
    const dst = a + 16 * HPAGE + 5 * PAGE;
    expect(ok(m, m.mremap(mm, a, 2 * HPAGE, 2 * HPAGE, dst))).toBe(dst);
    expect(m.vmstat().thp_split_pmd).toBe(splits + 2);
    expect(m.meminfo().AnonHugePages).toBe(0);
    expect(datas(m, mm, dst, 2 * HPAGE, 16 * KiB)).toEqual(data);
    expectRmapConsistent(m, mm, dst, 2 * HPAGE);
  });

  it('moves the middle of a VMA out and back in (MREMAP_FIXED), merging again', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 12 * PAGE }));
    ok(m, m.touch(mm, a, 12 * PAGE, true));
    const data = datas(m, mm, a, 12 * PAGE);
    const far = a - 64 * HPAGE;
    expect(ok(m, m.mremap(mm, a + 4 * PAGE, 4 * PAGE, 4 * PAGE, far))).toBe(far);
    expect(mm.vmas.length).toBe(3);
    expect(entry(m, mm, a + 4 * PAGE)).toBeNull();
    expect(datas(m, mm, far, 4 * PAGE)).toEqual(data.slice(4, 8));
    expect(ok(m, m.mremap(mm, far, 4 * PAGE, 4 * PAGE, a + 4 * PAGE))).toBe(a + 4 * PAGE);
    expect(mm.vmas.length).toBe(1);
    expect(datas(m, mm, a, 12 * PAGE)).toEqual(data);
    expectRmapConsistent(m, mm, a, 12 * PAGE);
  });

  it('replaces what is mapped at a fixed destination', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 4 * PAGE, name: 'a' }));
    const b = ok(m, m.mmap(mm, { lengthBytes: 8 * PAGE, addrBytes: a - 32 * PAGE, name: 'b' }));
    ok(m, m.touch(mm, a, 4 * PAGE, true));
    ok(m, m.touch(mm, b, 8 * PAGE, true));
    const data = datas(m, mm, a, 4 * PAGE);
    const keep = datas(m, mm, b + 6 * PAGE, 2 * PAGE);
    expect(ok(m, m.mremap(mm, a, 4 * PAGE, 6 * PAGE, b))).toBe(b);
    expect(datas(m, mm, b, 4 * PAGE)).toEqual(data);
    expect(datas(m, mm, b + 4 * PAGE, 2 * PAGE)).toEqual([0, 0]);
    expect(datas(m, mm, b + 6 * PAGE, 2 * PAGE)).toEqual(keep);
    expect(mm.rssAnon).toBe(6);
  });

  it('refuses bad requests without changing anything', () => {
    const m = machine();
    const mm = m.spawn('p');
    const a = ok(m, m.mmap(mm, { lengthBytes: 8 * PAGE }));
    ok(m, m.touch(mm, a, 8 * PAGE, true));
    expect(errnoOf(() => m.mremap(mm, a + 16 * PAGE, PAGE, 2 * PAGE))).toBe('EFAULT');
    expect(errnoOf(() => m.mremap(mm, a, 9 * PAGE, 10 * PAGE))).toBe('EFAULT');
    expect(errnoOf(() => m.mremap(mm, a, 8 * PAGE, 0))).toBe('EINVAL');
    expect(errnoOf(() => m.mremap(mm, a, 0, PAGE))).toBe('EINVAL');
    expect(errnoOf(() => m.mremap(mm, a, 8 * PAGE, 8 * PAGE, a + 4 * PAGE))).toBe('EINVAL');
    m.checkInvariants();
    expect(mm.vmas.length).toBe(1);
    expect(mm.rssAnon).toBe(8);
  });

  it('moves a forked child region; rmap from the shared folios follows it', () => {
    const m = machine();
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 2 * HPAGE, alignBytes: HPAGE }));
    ok(m, m.touch(parent, a, 2 * HPAGE, true));
    const child = ok(m, m.fork(parent, 'child'));
    const dst = a + 32 * HPAGE;
    expect(ok(m, m.mremap(child, a, 2 * HPAGE, 2 * HPAGE, dst))).toBe(dst);
    expect(entry(m, child, dst)!.pfn).toBe(entry(m, parent, a)!.pfn);
    expectRmapConsistent(m, child, dst, 2 * HPAGE);
    expectRmapConsistent(m, parent, a, 2 * HPAGE);
    // A COW in the moved child still splits only the child's PMD.
    expect(ok(m, m.access(child, dst + PAGE, true))).toBe('fault');
    expect(entry(m, parent, a + PAGE)!.huge).toBe(true);
    ok(m, m.exit(child));
    ok(m, m.exit(parent));
    expect(m.meminfo().AnonPages).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Model-based: random mmap/munmap/mprotect/mremap/fork/exit/read/write against a page-level
// reference. The model knows, per process, which pages of a window are mapped, with what
// protection, and the last value written to each (absent: never written, reads zero).

const WINDOW = 4 * 512; // pages: four PMDs
const PROTS: Prot[] = ['none', 'r', 'rw', 'rx', 'rwx'];

interface ModelPage {
  prot: Prot;
  data: number;
}

interface Proc {
  mm: Mm;
  pages: Map<number, ModelPage>;
}

interface World {
  m: Machine;
  base: number;
  procs: Proc[];
  nextName: number;
}

/**
 * Where an operation applies: a raw window offset, or a position inside one of the process's
 * current VMAs (so that operations on mapped memory are common whatever the layout).
 */
type Target = { raw: number } | { vma: number; rel: number };

function resolve(w: World, p: Proc, t: Target): number {
  if ('raw' in t) return t.raw;
  const vmas = p.mm.vmas.filter((v) => v.start >= w.base && v.end <= w.base + WINDOW);
  if (vmas.length === 0) return t.rel % WINDOW;
  const v = vmas[t.vma % vmas.length];
  return v.start - w.base + (t.rel % (v.end - v.start));
}

const readable = (p: Prot) => p !== 'none';
const writableProt = (p: Prot) => p.includes('w');
const addrOf = (w: World, off: number) => (w.base + off) * PAGE;
const procOf = (w: World, i: number) => w.procs[i % w.procs.length];

function checkAll(w: World): void {
  const k = w.m.kernel;
  w.m.checkInvariants();
  for (const p of w.procs) {
    // Every page's content as the tables have it: a present page's data, else 0 (absent).
    const seen = new Int32Array(WINDOW).fill(-1);
    walkRange(k, p.mm, w.base, w.base + WINDOW, {
      pmd(base, _t, _i, _bits, head) {
        for (let i = 0; i < k.geo.ptrsPerPte; i++)
          seen[base + i - w.base] = k.folios.data[head + i];
      },
      pte(vpn, _t, _i, bits, val) {
        if ((bits & E_TYPE_MASK) === E_PRESENT) seen[vpn - w.base] = k.folios.data[val];
      },
    });
    let mapped = 0;
    for (const v of p.mm.vmasIn(w.base, w.base + WINDOW)) mapped += v.end - v.start;
    expect(mapped, 'pages mapped').toBe(p.pages.size);
    for (const [off, pg] of p.pages) {
      expect(p.mm.findVma(w.base + off), `page ${off} mapped`).not.toBeNull();
      // Present pages hold exactly the last write (0 if none); absent ones were never written.
      expect(Math.max(0, seen[off]), `page ${off} data`).toBe(pg.data);
    }
  }
}

type Cmd = fc.Command<World, World>;

class MmapCmd implements Cmd {
  constructor(
    readonly proc: number,
    readonly off: number,
    readonly len: number,
    readonly prot: Prot,
  ) {}
  check = () => true;
  run(_: World, w: World): void {
    const p = procOf(w, this.proc);
    const len = Math.min(this.len, WINDOW - this.off);
    let free = true;
    for (let i = 0; i < len; i++) if (p.pages.has(this.off + i)) free = false;
    const r = errnoOf(() =>
      w.m.mmap(p.mm, { lengthBytes: len * PAGE, addrBytes: addrOf(w, this.off), prot: this.prot }),
    );
    expect(r).toBe(free ? 'none' : 'EEXIST');
    if (free) for (let i = 0; i < len; i++) p.pages.set(this.off + i, { prot: this.prot, data: 0 });
    checkAll(w);
  }
  toString = () => `mmap(${this.proc}, ${this.off}, ${this.len}, ${this.prot})`;
}

class MunmapCmd implements Cmd {
  constructor(
    readonly proc: number,
    readonly at: Target,
    readonly len: number,
  ) {}
  check = () => true;
  run(_: World, w: World): void {
    const p = procOf(w, this.proc);
    const off = resolve(w, p, this.at);
    const len = Math.min(this.len, WINDOW - off);
    w.m.munmap(p.mm, addrOf(w, off), len * PAGE);
    for (let i = 0; i < len; i++) p.pages.delete(off + i);
    checkAll(w);
  }
  toString = () => `munmap(${this.proc}, ${JSON.stringify(this.at)}, ${this.len})`;
}

class MprotectCmd implements Cmd {
  constructor(
    readonly proc: number,
    readonly at: Target,
    readonly len: number,
    readonly prot: Prot,
    /** Clip the length to the VMA at the target. */
    readonly fit: boolean,
  ) {}
  check = () => true;
  run(_: World, w: World): void {
    const p = procOf(w, this.proc);
    const off = resolve(w, p, this.at);
    let len = Math.min(this.len, WINDOW - off);
    const around = p.mm.findVma(w.base + off);
    if (this.fit && around) len = Math.min(len, around.end - (w.base + off));
    // Pages up to the first hole change; a hole anywhere makes the call fail with ENOMEM.
    let i = 0;
    while (i < len && p.pages.has(off + i)) i++;
    const r = errnoOf(() => w.m.mprotect(p.mm, addrOf(w, off), len * PAGE, this.prot));
    expect(r).toBe(i === len ? 'none' : 'ENOMEM');
    for (let j = 0; j < i; j++) p.pages.get(off + j)!.prot = this.prot;
    checkAll(w);
  }
  toString = () =>
    `mprotect(${this.proc}, ${JSON.stringify(this.at)}, ${this.len}${this.fit ? '/fit' : ''}, ${this.prot})`;
}

/** How the old length is chosen: as generated, clipped to the VMA, or up to the VMA's end. */
type OldLen = 'raw' | 'fit' | 'toEnd';

class MremapCmd implements Cmd {
  constructor(
    readonly proc: number,
    readonly at: Target,
    readonly oldLen: number,
    readonly newLen: number,
    readonly to: number | null,
    readonly mode: OldLen,
  ) {}
  check = () => true;
  run(_: World, w: World): void {
    const p = procOf(w, this.proc);
    const off = resolve(w, p, this.at);
    const around = p.mm.findVma(w.base + off);
    let oldLen = Math.min(this.oldLen, WINDOW - off);
    if (around && this.mode !== 'raw') {
      const rest = around.end - (w.base + off);
      oldLen = this.mode === 'toEnd' ? rest : Math.min(oldLen, rest);
    }
    const newLen = this.newLen;
    const to = this.to === null ? null : Math.min(this.to, WINDOW - newLen);
    // The oracle uses the VMA layout: the old range must lie inside one VMA.
    const vma = p.mm.findVma(w.base + off);
    let expected = 'none';
    if (to !== null && to < off + oldLen && off < to + newLen) expected = 'EINVAL';
    else if (!vma || w.base + off + oldLen > vma.end) expected = 'EFAULT';
    let got = 'none';
    let at = -1;
    try {
      const dst = to === null ? undefined : addrOf(w, to);
      at = w.m.mremap(p.mm, addrOf(w, off), oldLen * PAGE, newLen * PAGE, dst);
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      got = e.errno;
    }
    expect(got).toBe(expected);
    if (got === 'none') {
      const prot = p.pages.get(off)!.prot;
      const moved: ModelPage[] = [];
      for (let i = 0; i < oldLen; i++) {
        if (i < newLen) moved.push(p.pages.get(off + i)!);
        p.pages.delete(off + i);
      }
      if (to !== null) for (let i = 0; i < newLen; i++) p.pages.delete(to + i);
      const newOff = at / PAGE - w.base;
      if (to !== null) expect(newOff).toBe(to);
      if (newOff < 0 || newOff + newLen > WINDOW) {
        // Placed (partly) outside the window: unmap it there, the model tracks the window only.
        w.m.munmap(p.mm, at, newLen * PAGE);
      } else {
        for (let i = 0; i < newLen; i++) p.pages.set(newOff + i, moved[i] ?? { prot, data: 0 });
      }
    }
    checkAll(w);
  }
  toString = () =>
    `mremap(${this.proc}, ${JSON.stringify(this.at)}, ${this.oldLen}/${this.mode}, ${this.newLen}, ${this.to ?? '-'})`;
}

class ForkCmd implements Cmd {
  constructor(readonly proc: number) {}
  check = (w: Readonly<World>) => w.procs.length < 4;
  run(_: World, w: World): void {
    const p = procOf(w, this.proc);
    const mm = w.m.fork(p.mm, `p${w.nextName++}`);
    const pages = new Map<number, ModelPage>();
    for (const [off, pg] of p.pages) pages.set(off, { ...pg });
    w.procs.push({ mm, pages });
    checkAll(w);
  }
  toString = () => `fork(${this.proc})`;
}

class ExitCmd implements Cmd {
  constructor(readonly proc: number) {}
  check = (w: Readonly<World>) => w.procs.length > 1;
  run(_: World, w: World): void {
    const i = this.proc % w.procs.length;
    w.m.exit(w.procs[i].mm);
    w.procs.splice(i, 1);
    checkAll(w);
  }
  toString = () => `exit(${this.proc})`;
}

class AccessCmd implements Cmd {
  constructor(
    readonly proc: number,
    readonly at: Target,
    readonly len: number,
    readonly stride: number,
    readonly write: boolean,
  ) {}
  check = () => true;
  run(_: World, w: World): void {
    const p = procOf(w, this.proc);
    const start = resolve(w, p, this.at);
    for (let i = 0; i < this.len; i++) {
      const off = start + i * this.stride;
      if (off >= WINDOW) break;
      const pg = p.pages.get(off);
      const r: AccessOutcome = w.m.access(p.mm, addrOf(w, off), this.write);
      const allowed = pg && (this.write ? writableProt(pg.prot) : readable(pg.prot));
      if (!allowed) {
        expect(r).toBe('sigsegv');
        continue;
      }
      expect(['hit', 'fault']).toContain(r);
      const d = dataAt(w.m, p.mm, addrOf(w, off));
      if (this.write) {
        expect(d).not.toBe(0);
        pg.data = d;
      } else expect(d).toBe(pg.data);
    }
    checkAll(w);
  }
  toString = () =>
    `${this.write ? 'write' : 'read'}(${this.proc}, ${JSON.stringify(this.at)}, ${this.len}x${this.stride})`;
}

describe('model-based: mmap/munmap/mprotect/mremap/fork/exit/read/write', () => {
  const rawOff = fc.oneof(
    fc.integer({ min: 0, max: WINDOW - 1 }),
    // PMD- and mTHP-aligned offsets, and slightly off them.
    fc.integer({ min: 0, max: 3 }).map((i) => i * 512),
    fc.integer({ min: 0, max: 127 }).map((i) => i * 16),
    fc.integer({ min: 0, max: 3 }).map((i) => i * 512 + 16),
  );
  const target: fc.Arbitrary<Target> = fc.oneof(
    rawOff.map((raw) => ({ raw })),
    fc.record({ vma: fc.nat(7), rel: fc.oneof(fc.constant(0), fc.nat(1023)) }),
    fc.record({ vma: fc.nat(7), rel: fc.oneof(fc.constant(0), fc.nat(1023)) }),
  );
  // Lengths that hit single pages, mTHP blocks and whole PMDs.
  const len = fc.oneof(fc.integer({ min: 1, max: 24 }), fc.constantFrom(16, 64, 512, 1024));
  const proc = fc.nat(7);
  const prot = fc.oneof(
    { arbitrary: fc.constant<Prot>('rw'), weight: 3 },
    { arbitrary: fc.constantFrom(...PROTS), weight: 2 },
  );
  const oldLenMode = fc.constantFrom<OldLen>('raw', 'fit', 'fit', 'toEnd', 'toEnd');
  const commands: fc.Arbitrary<Cmd>[] = [
    fc.tuple(proc, rawOff, len, prot).map(([p, o, l, pr]) => new MmapCmd(p, o, l, pr)),
    // Room for PMD-mapped THPs: PMD-aligned, PMD-sized, writable.
    fc
      .tuple(proc, fc.integer({ min: 0, max: 3 }), fc.constantFrom(512, 1024))
      .map(([p, i, l]) => new MmapCmd(p, i * 512, l, 'rw')),
    fc.tuple(proc, target, len).map(([p, t, l]) => new MunmapCmd(p, t, l)),
    fc
      .tuple(proc, target, len, prot, fc.boolean())
      .map(([p, t, l, pr, fit]) => new MprotectCmd(p, t, l, pr, fit)),
    fc
      .tuple(proc, target, len, len, fc.option(rawOff, { freq: 2 }), oldLenMode)
      .map(([p, t, l1, l2, to, mode]) => new MremapCmd(p, t, l1, l2, to, mode)),
    fc
      .tuple(proc, target, len, len, fc.option(rawOff, { freq: 2 }), oldLenMode)
      .map(([p, t, l1, l2, to, mode]) => new MremapCmd(p, t, l1, l2, to, mode)),
    proc.map((p) => new ForkCmd(p)),
    proc.map((p) => new ExitCmd(p)),
    fc
      .tuple(proc, target, fc.integer({ min: 1, max: 24 }), fc.constantFrom(1, 7, 64), fc.boolean())
      .map(([p, t, l, s, wr]) => new AccessCmd(p, t, l, s, wr)),
    fc
      .tuple(proc, target, fc.integer({ min: 1, max: 24 }), fc.constantFrom(1, 7, 64), fc.boolean())
      .map(([p, t, l, s, wr]) => new AccessCmd(p, t, l, s, wr)),
  ];

  it.each(['never', 'always'] as const)('keeps invariants and data (THP %s)', (thp) => {
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 40, size: 'max' }), (cmds) => {
        const m = machine(128 * MiB);
        m.sysfsWrite('enabled', thp);
        if (thp === 'always') m.sysfsWrite('hugepages-64kB/enabled', 'always');
        const mm = m.spawn('p0');
        // A PMD-aligned window that every operation addresses by page offset.
        const start = m.mmap(mm, { lengthBytes: WINDOW * PAGE, alignBytes: HPAGE });
        m.munmap(mm, start, WINDOW * PAGE);
        const w: World = { m, base: start / PAGE, procs: [{ mm, pages: new Map() }], nextName: 1 };
        fc.modelRun(() => ({ model: w, real: w }), cmds);
      }),
      { numRuns: 40 },
    );
  });
});
