// fork: dup_mmap + copy_page_range. COW of small pages, PMD-mapped THPs and mTHPs, the zero
// page and the huge zero page, pinned pages copied eagerly, khugepaged registration, locks.

import { describe, expect, it } from 'vitest';
import { PG_ANON_EXCLUSIVE, PG_MAYBE_SHARED } from '../src/mm/folio.ts';
import type { Kernel } from '../src/mm/kernel.ts';
import { B_DIRTY, B_WRITE, B_YOUNG, E_PRESENT, E_TYPE_MASK } from '../src/mm/pgtable.ts';
import { anonRmapVmas } from '../src/mm/split.ts';
import { walkRange } from '../src/mm/walk.ts';
import { Errno, Machine, type Mm } from '../src/sim/machine.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4 * KiB;

/** A machine whose every operation is followed by an invariant check. */
function machine(ramBytes = 64 * MiB): Machine {
  return new Machine({ geometry: 'x86-64-4k', ramBytes, strictLocks: true });
}

interface Entry {
  pfn: number;
  bits: number;
  huge: boolean;
}

/** What maps addr in mm (a PTE, or the huge PMD around it), read from the tables. */
function entry(m: Machine, mm: Mm, addr: number): Entry | null {
  const k = m.kernel;
  const vpn = addr / PAGE;
  let out: Entry | null = null;
  walkRange(k, mm, vpn, vpn + 1, {
    pmd(base, _t, _i, bits, head) {
      out = { pfn: head + (vpn - base), bits, huge: true };
    },
    pte(_v, _t, _i, bits, val) {
      if ((bits & E_TYPE_MASK) === E_PRESENT) out = { pfn: val, bits, huge: false };
    },
  });
  return out;
}

function pfnOf(m: Machine, mm: Mm, addr: number): number {
  const e = entry(m, mm, addr);
  if (!e) throw new Error(`nothing mapped at ${addr}`);
  return e.pfn;
}

function dataAt(m: Machine, mm: Mm, addr: number): number {
  const e = entry(m, mm, addr);
  return e ? m.kernel.folios.data[e.pfn] : 0;
}

function writable(m: Machine, mm: Mm, addr: number): boolean {
  const e = entry(m, mm, addr);
  return e !== null && (e.bits & B_WRITE) !== 0;
}

function headOf(k: Kernel, pfn: number): number {
  return k.folios.headOf(pfn);
}

function ok<T>(m: Machine, v: T): T {
  m.checkInvariants();
  return v;
}

describe('fork of small pages', () => {
  it('shares pages read-only; a write in the child copies, the parent keeps its data', () => {
    const m = machine();
    const k = m.kernel;
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 16 * PAGE }));
    expect(ok(m, m.touch(parent, a, 16 * PAGE, true))).toBe('fault');
    const before = Array.from({ length: 16 }, (_, i) => dataAt(m, parent, a + i * PAGE));
    const pfns = Array.from({ length: 16 }, (_, i) => pfnOf(m, parent, a + i * PAGE));
    expect(before.every((d) => d !== 0)).toBe(true);

    const child = ok(m, m.fork(parent, 'child'));
    expect(child.parent).toBe(parent);
    expect(parent.writeProtectSeq % 2).toBe(0);
    expect(parent.writeProtectSeq).toBeGreaterThan(0);
    expect(child.rssAnon).toBe(16);
    for (let i = 0; i < 16; i++) {
      const addr = a + i * PAGE;
      const pe = entry(m, parent, addr)!;
      const ce = entry(m, child, addr)!;
      expect(ce.pfn).toBe(pfns[i]);
      expect(pe.bits & B_WRITE).toBe(0);
      expect(ce.bits & B_WRITE).toBe(0);
      // The child's copy starts old (pte_mkold); dirtiness is kept.
      expect(ce.bits & B_YOUNG).toBe(0);
      expect(ce.bits & B_DIRTY).toBe(B_DIRTY);
      expect(k.folios.refcount[pfns[i]]).toBe(2);
      expect(k.folios.mapcount[pfns[i]]).toBe(2);
      expect(k.folios.flags[pfns[i]] & PG_ANON_EXCLUSIVE).toBe(0);
      expect(dataAt(m, child, addr)).toBe(before[i]);
    }
    // The child's VMA hangs off the parent's anon_vma and its own, under the same root.
    const pv = parent.vmas[0];
    const cv = child.vmas[0];
    expect(cv.anonVma).not.toBe(pv.anonVma);
    expect(cv.anonVma!.root).toBe(pv.anonVma!.root);
    expect(cv.chain).toContain(pv.anonVma);
    expect(anonRmapVmas(k, pfns[0])).toEqual(expect.arrayContaining([pv, cv]));

    // Child write: COW copies the page.
    expect(ok(m, m.access(child, a, true))).toBe('fault');
    const copy = pfnOf(m, child, a);
    expect(copy).not.toBe(pfns[0]);
    expect(dataAt(m, parent, a)).toBe(before[0]);
    expect(dataAt(m, child, a)).not.toBe(before[0]);
    expect(k.folios.refcount[pfns[0]]).toBe(1);
    expect(k.folios.mapcount[pfns[0]]).toBe(1);
    expect(k.folios.refcount[copy]).toBe(1);
    expect(k.folios.flags[copy] & PG_ANON_EXCLUSIVE).toBe(PG_ANON_EXCLUSIVE);
    // The copy belongs to the child's own anon_vma.
    expect(k.folios.mapping[copy]).toBe(cv.anonVma!.id);
    expect(dataAt(m, child, a + PAGE)).toBe(before[1]);

    // Parent write on the page the child gave up: reused in place (refcount 1).
    expect(ok(m, m.access(parent, a, true))).toBe('fault');
    expect(pfnOf(m, parent, a)).toBe(pfns[0]);
    // Parent write on a page still shared: the parent copies too, the child keeps the original.
    expect(ok(m, m.access(parent, a + PAGE, true))).toBe('fault');
    expect(pfnOf(m, parent, a + PAGE)).not.toBe(pfns[1]);
    expect(pfnOf(m, child, a + PAGE)).toBe(pfns[1]);
    expect(dataAt(m, child, a + PAGE)).toBe(before[1]);

    // After the child exits the parent's remaining pages are exclusive again: writes reuse them.
    ok(m, m.exit(child));
    expect(k.folios.refcount[pfns[2]]).toBe(1);
    expect(ok(m, m.access(parent, a + 2 * PAGE, true))).toBe('fault');
    expect(pfnOf(m, parent, a + 2 * PAGE)).toBe(pfns[2]);
    expect(ok(m, m.access(parent, a + 2 * PAGE, true))).toBe('hit');
  });

  it('copies zero-page mappings as they are and skips VMAs without an anon_vma', () => {
    const m = machine();
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 8 * PAGE, name: 'read' }));
    const b = ok(m, m.mmap(parent, { lengthBytes: 8 * PAGE, name: 'mixed' }));
    // Only reads: zero-page PTEs and no anon_vma, so nothing is copied.
    ok(m, m.touch(parent, a, 8 * PAGE, false));
    // Reads then one write: this VMA has an anon_vma, its zero-page PTEs are copied.
    ok(m, m.touch(parent, b, 8 * PAGE, false));
    ok(m, m.access(parent, b, true));
    const child = ok(m, m.fork(parent, 'child'));
    expect(entry(m, child, a)).toBeNull();
    expect(entry(m, child, b + PAGE)!.pfn).toBe(m.kernel.zeroPfn);
    expect(child.rssAnon).toBe(1);
    expect(dataAt(m, child, b + PAGE)).toBe(0);
    expect(ok(m, m.access(child, a, false))).toBe('fault');
    expect(ok(m, m.access(child, b + PAGE, false))).toBe('hit');
    expect(ok(m, m.access(child, b + PAGE, true))).toBe('fault');
    expect(dataAt(m, parent, b + PAGE)).toBe(0);
  });

  it('runs under strict locks and leaves nothing held', () => {
    const m = machine();
    const parent = m.spawn('parent');
    const a = m.mmap(parent, { lengthBytes: 4 * MiB, alignBytes: 2 * MiB });
    m.touch(parent, a, 4 * MiB, true, 64 * KiB);
    const c1 = ok(m, m.fork(parent, 'c1'));
    const c2 = ok(m, m.fork(c1, 'c2'));
    ok(m, m.access(c2, a, true));
    ok(m, m.exit(c1));
    ok(m, m.access(c2, a + PAGE, true));
    ok(m, m.exit(c2));
    ok(m, m.exit(parent));
    expect(m.meminfo().AnonPages).toBe(0);
  });

  it('registers the child with khugepaged when the parent is registered', () => {
    const m = machine();
    const k = m.kernel;
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 4 * MiB, alignBytes: 2 * MiB }));
    // Registration comes with the first fault (the VMA needs an anon_vma).
    ok(m, m.access(parent, a, true));
    expect(parent.khugepagedRegistered).toBe(true);
    const child = ok(m, m.fork(parent, 'child'));
    expect(child.khugepagedRegistered).toBe(true);
    expect(k.khugepagedSlots).toEqual([parent.id, child.id]);
    ok(m, m.exit(child));
    expect(k.khugepagedSlots).toEqual([parent.id]);

    m.sysfsWrite('enabled', 'never');
    const lone = m.spawn('lone');
    const l = ok(m, m.mmap(lone, { lengthBytes: 4 * MiB }));
    ok(m, m.access(lone, l, true));
    expect(lone.khugepagedRegistered).toBe(false);
    const loneChild = ok(m, m.fork(lone, 'lone-child'));
    expect(loneChild.khugepagedRegistered).toBe(false);
  });

  it('inherits the THP prctl', () => {
    const m = machine();
    const parent = m.spawn('parent');
    m.prctlThpDisable(parent, 'all');
    const child = ok(m, m.fork(parent, 'child'));
    expect(child.thpDisable).toBe('all');
  });
});

describe('fork of a PMD-mapped THP', () => {
  it('shares the THP; a child write splits only the child PMD and copies one page', () => {
    const m = machine();
    const k = m.kernel;
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 4 * MiB, alignBytes: 2 * MiB }));
    ok(m, m.touch(parent, a, 4 * MiB, true));
    expect(m.meminfo().AnonHugePages).toBe(4096);
    const thp = pfnOf(m, parent, a);
    const before = [dataAt(m, parent, a), dataAt(m, parent, a + PAGE)];
    const tablesBefore = k.pt.pte.live;

    const child = ok(m, m.fork(parent, 'child'));
    expect(m.smaps(parent)[0].AnonHugePages).toBe(4096);
    expect(m.smaps(child)[0].AnonHugePages).toBe(4096);
    // Counted once in meminfo: the folios are the same.
    expect(m.meminfo().AnonHugePages).toBe(4096);
    expect(entry(m, child, a)!.huge).toBe(true);
    expect(writable(m, parent, a)).toBe(false);
    expect(writable(m, child, a)).toBe(false);
    expect(k.folios.entireMapcount[thp]).toBe(2);
    expect(k.folios.refcount[thp]).toBe(2);
    expect(k.folios.maybeMappedShared(thp)).toBe(true);
    // One more deposited table per THP for the child.
    expect(k.pt.pte.live).toBe(tablesBefore + 2);

    const splits = m.vmstat().thp_split_pmd;
    expect(ok(m, m.access(child, a, true))).toBe('fault');
    expect(m.vmstat().thp_split_pmd).toBe(splits + 1);
    expect(m.smaps(child)[0].AnonHugePages).toBe(2048);
    expect(m.smaps(parent)[0].AnonHugePages).toBe(4096);
    expect(entry(m, parent, a)!.huge).toBe(true);
    const copy = pfnOf(m, child, a);
    expect(headOf(k, copy)).not.toBe(thp);
    expect(k.folios.order[copy]).toBe(0);
    expect(dataAt(m, parent, a)).toBe(before[0]);
    expect(dataAt(m, child, a)).not.toBe(before[0]);
    // The other 511 pages stay shared, now PTE-mapped in the child.
    expect(pfnOf(m, child, a + PAGE)).toBe(thp + 1);
    expect(dataAt(m, child, a + PAGE)).toBe(before[1]);
    expect(k.folios.entireMapcount[thp]).toBe(1);
    expect(k.folios.mapcount[thp]).toBe(1 + 511);
    expect(k.folios.refcount[thp]).toBe(1 + 511);

    // Once the child is gone the parent reuses its THPs in place, still PMD-mapped.
    ok(m, m.exit(child));
    expect(k.folios.maybeMappedShared(thp)).toBe(false);
    expect(ok(m, m.access(parent, a, true))).toBe('fault');
    expect(entry(m, parent, a)!.huge).toBe(true);
    expect(pfnOf(m, parent, a)).toBe(thp);
    expect(m.meminfo().AnonHugePages).toBe(4096);
  });

  it('copies the huge zero page as it is', () => {
    const m = machine();
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB }));
    ok(m, m.access(parent, a, false));
    const hz = m.kernel.hugeZeroPfn;
    expect(pfnOf(m, parent, a)).toBe(hz);
    const child = ok(m, m.fork(parent, 'child'));
    expect(entry(m, child, a)!.huge).toBe(true);
    expect(pfnOf(m, child, a)).toBe(hz);
    expect(ok(m, m.access(child, a + PAGE, false))).toBe('hit');
    expect(ok(m, m.access(child, a, true))).toBe('fault');
    expect(m.smaps(child)[0].AnonHugePages).toBe(2048);
    expect(pfnOf(m, parent, a)).toBe(hz);
  });
});

describe('fork of an mTHP', () => {
  it('makes the folio maybe-mapped-shared through the mm-id slots until the child exits', () => {
    const m = machine();
    const k = m.kernel;
    m.sysfsWrite('enabled', 'never');
    m.sysfsWrite('hugepages-64kB/enabled', 'always');
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 256 * KiB, alignBytes: 64 * KiB }));
    ok(m, m.touch(parent, a, 256 * KiB, true));
    const head = pfnOf(m, parent, a);
    expect(k.folios.order[head]).toBe(4);
    expect(k.folios.maybeMappedShared(head)).toBe(false);
    expect(k.folios.mmId0[head]).toBe(parent.id);

    const child = ok(m, m.fork(parent, 'child'));
    expect(k.folios.maybeMappedShared(head)).toBe(true);
    expect(k.folios.flags[head] & PG_MAYBE_SHARED).toBe(PG_MAYBE_SHARED);
    expect([k.folios.mmId0[head], k.folios.mmId1[head]].sort()).toEqual(
      [parent.id, child.id].sort(),
    );
    expect(k.folios.mapcount[head]).toBe(32);
    expect(k.folios.refcount[head]).toBe(32);
    expect(m.smaps(child)[0].byOrder[4]).toBe(256);

    // A child write copies one base page; the folio stays mapped by both.
    const d1 = dataAt(m, parent, a + PAGE);
    expect(ok(m, m.access(child, a, true))).toBe('fault');
    expect(headOf(k, pfnOf(m, child, a))).not.toBe(head);
    expect(pfnOf(m, child, a + PAGE)).toBe(head + 1);
    expect(dataAt(m, child, a + PAGE)).toBe(d1);
    expect(k.folios.maybeMappedShared(head)).toBe(true);

    ok(m, m.exit(child));
    expect(k.folios.maybeMappedShared(head)).toBe(false);
    expect(k.folios.mapcount[head]).toBe(16);
    // Exclusive to the parent again: the write reuses the folio.
    expect(ok(m, m.access(parent, a + PAGE, true))).toBe('fault');
    expect(pfnOf(m, parent, a + PAGE)).toBe(head + 1);
  });
});

describe('fork of pinned pages', () => {
  /** FOLL_PIN as pin_user_pages takes it: one reference and one pin on the folio. */
  function pin(k: Kernel, head: number): void {
    k.folios.pincount[head]++;
    k.folios.refcount[head]++;
  }
  function unpin(k: Kernel, head: number): void {
    k.folios.pincount[head]--;
    k.folios.refcount[head]--;
  }

  it('gives the child its own copy of a pinned small page at once', () => {
    const m = machine();
    const k = m.kernel;
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 4 * PAGE }));
    ok(m, m.touch(parent, a, 4 * PAGE, true));
    const pinned = pfnOf(m, parent, a);
    const data = dataAt(m, parent, a);
    pin(k, pinned);
    m.checkInvariants();

    const child = ok(m, m.fork(parent, 'child'));
    const copy = pfnOf(m, child, a);
    expect(copy).not.toBe(pinned);
    expect(dataAt(m, child, a)).toBe(data);
    expect(k.folios.refcount[copy]).toBe(1);
    expect(k.folios.mapping[copy]).toBe(child.vmas[0].anonVma!.id);
    // The parent's pinned page stays exclusive and writable: no COW can move it away.
    expect(k.folios.flags[pinned] & PG_ANON_EXCLUSIVE).toBe(PG_ANON_EXCLUSIVE);
    expect(writable(m, parent, a)).toBe(true);
    expect(writable(m, child, a)).toBe(true);
    expect(k.folios.refcount[pinned]).toBe(2); // one mapping + the pin
    // The unpinned neighbours are shared as usual.
    expect(pfnOf(m, child, a + PAGE)).toBe(pfnOf(m, parent, a + PAGE));
    expect(writable(m, parent, a + PAGE)).toBe(false);

    expect(ok(m, m.access(parent, a, true))).toBe('hit');
    expect(pfnOf(m, parent, a)).toBe(pinned);
    expect(dataAt(m, child, a)).toBe(data);
    expect(ok(m, m.access(child, a, true))).toBe('hit');
    unpin(k, pinned);
    m.checkInvariants();
  });

  it('splits a pinned THP in the parent and copies its pages for the child', () => {
    const m = machine();
    const k = m.kernel;
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB }));
    ok(m, m.touch(parent, a, 2 * MiB, true));
    const thp = pfnOf(m, parent, a);
    const d5 = dataAt(m, parent, a + 5 * PAGE);
    pin(k, thp);
    const splits = m.vmstat().thp_split_pmd;

    const child = ok(m, m.fork(parent, 'child'));
    expect(m.vmstat().thp_split_pmd).toBe(splits + 1);
    expect(entry(m, parent, a)!.huge).toBe(false);
    expect(pfnOf(m, parent, a + 5 * PAGE)).toBe(thp + 5);
    expect(writable(m, parent, a + 5 * PAGE)).toBe(true);
    const c5 = pfnOf(m, child, a + 5 * PAGE);
    expect(headOf(k, c5)).not.toBe(thp);
    expect(dataAt(m, child, a + 5 * PAGE)).toBe(d5);
    expect(k.folios.mapcount[thp]).toBe(512);
    expect(child.rssAnon).toBe(512);
    unpin(k, thp);
    m.checkInvariants();
  });

  it('fails with ENOMEM when there is no page for the copy, leaving no child behind', () => {
    const m = machine(1 * MiB);
    const k = m.kernel;
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const a = ok(m, m.mmap(parent, { lengthBytes: 2 * PAGE }));
    ok(m, m.touch(parent, a, 2 * PAGE, true));
    pin(k, pfnOf(m, parent, a));
    const filler = ok(m, m.mmap(parent, { lengthBytes: 1 * MiB }));
    expect(ok(m, m.touch(parent, filler, 1 * MiB, true))).toBe('oom');
    expect(k.buddy.freePages).toBe(0);
    const mms = k.mms.size;
    expect(() => m.fork(parent, 'child')).toThrowError(Errno);
    m.checkInvariants();
    expect(k.mms.size).toBe(mms);
    expect(k.mmByName('child')).toBeUndefined();
    expect(writable(m, parent, a)).toBe(true);
    unpin(k, pfnOf(m, parent, a));
    m.checkInvariants();
  });
});
