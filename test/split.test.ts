import { describe, expect, it } from 'vitest';
import { PG_DEFERRED, PG_PARTIALLY_MAPPED } from '../src/mm/folio.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';
import {
  KiB,
  MiB,
  checked,
  folioAt,
  orderAt,
  pageValue,
  resolve,
  smapsTotal,
} from './support/ref-model.ts';

const PAGE = 4 * KiB;

interface Thp {
  m: Machine;
  mm: Mm;
  a: number;
  /** First vpn of the THP. */
  p: number;
  head: number;
}

/** One PMD-mapped THP with `written` pages written (from the start), on x86-64 4K. */
function thp(written: number, ramBytes = 64 * MiB): Thp {
  const m = checked(new Machine({ strictLocks: true, ramBytes }));
  const mm = m.spawn('p');
  const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
  m.touch(mm, a, written * PAGE, true);
  const p = a / PAGE;
  expect(orderAt(m.kernel, mm, p)).toBe(9);
  return { m, mm, a, p, head: folioAt(m.kernel, mm, p) };
}

function values(t: Thp, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(pageValue(t.m.kernel, t.mm, t.p + i));
  return out;
}

describe('partial unmap and the deferred split queue', () => {
  it('MADV_DONTNEED of half a THP splits the PMD and queues the folio; shrink splits it', () => {
    const t = thp(512);
    const { m, mm, a, head } = t;
    const kept = values(t, 256, 512);
    expect(kept.every((v) => v > 0)).toBe(true);
    const free0 = m.meminfo().MemFree;

    m.madvise(mm, a, 1 * MiB, 'dontneed');
    const k = m.kernel;
    expect(m.vmstat().thp_split_pmd).toBe(1);
    expect(m.vmstat().thp_deferred_split_page).toBe(1);
    const st = m.mthpStats()['2048kB'];
    expect(st.split_deferred).toBe(1);
    expect(st.nr_anon_partially_mapped).toBe(1);
    expect(st.nr_anon).toBe(1);
    expect(st.split).toBe(0);
    expect(k.folios.test(head, PG_PARTIALLY_MAPPED)).toBe(true);
    expect(k.deferredSplit.has(head)).toBe(true);
    // PTE-mapped now: no longer AnonHugePages; the unmapped half is still allocated.
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 1024, AnonHugePages: 0 });
    expect(m.meminfo().AnonHugePages).toBe(0);
    expect(m.meminfo().AnonPages).toBe(1024);
    expect(m.meminfo().MemFree).toBe(free0);
    expect(resolve(k, mm, t.p).kind).toBe('none');
    expect(resolve(k, mm, t.p + 256)).toMatchObject({ kind: 'page', huge: false });
    expect(values(t, 256, 512)).toEqual(kept);

    expect(m.shrink()).toBe(1);
    const after = m.mthpStats()['2048kB'];
    expect(after.split).toBe(1);
    expect(after.nr_anon).toBe(0);
    expect(after.nr_anon_partially_mapped).toBe(0);
    expect(m.vmstat().thp_split_page).toBe(1);
    expect(k.deferredSplit.size).toBe(0);
    // The unmapped half went back to the buddy allocator; the mapped half is small folios.
    expect(m.meminfo().MemFree).toBe(free0 + 1024);
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 1024, byOrder: { 0: 1024 } });
    expect(orderAt(k, mm, t.p + 300)).toBe(0);
    expect(values(t, 256, 512)).toEqual(kept);
    // Nothing left to do.
    expect(m.shrink()).toBe(0);
  });

  it('unmapping the whole THP frees it without any split', () => {
    const t = thp(3);
    const { m, mm, a } = t;
    const free0 = m.meminfo().MemFree;
    m.madvise(mm, a, 2 * MiB, 'dontneed');
    expect(m.vmstat().thp_split_pmd).toBe(0);
    expect(m.mthpStats()['2048kB'].split_deferred).toBe(0);
    expect(m.mthpStats()['2048kB'].nr_anon).toBe(0);
    expect(m.meminfo().MemFree).toBe(free0 + 2048);
    expect(m.kernel.deferredSplit.size).toBe(0);
  });

  it('munmap of part of a THP splits the PMD and queues the rest', () => {
    const t = thp(512);
    const { m, mm, a } = t;
    m.munmap(mm, a + 1 * MiB, 1 * MiB);
    expect(m.vmstat().thp_split_pmd).toBe(1);
    expect(m.mthpStats()['2048kB'].nr_anon_partially_mapped).toBe(1);
    expect(m.shrink()).toBe(1);
    expect(smapsTotal(m, mm).Rss).toBe(1024);
  });

  it('a pinned THP fails to split and stays queued until unpinned', () => {
    const t = thp(512);
    const { m, mm, a, head } = t;
    m.madvise(mm, a + 1 * MiB, 1 * MiB, 'dontneed');
    const k = m.kernel;
    // A FOLL_PIN on a large folio: one more reference and one pin (try_grab_folio).
    k.folios.pincount[head] += 1;
    k.folios.refcount[head] += 1;
    m.checkInvariants();
    expect(m.shrink()).toBe(0);
    expect(m.mthpStats()['2048kB'].split_failed).toBe(1);
    expect(m.vmstat().thp_split_page_failed).toBe(1);
    expect(m.mthpStats()['2048kB'].split).toBe(0);
    expect(k.folios.order[head]).toBe(9);
    expect(k.folios.test(head, PG_DEFERRED)).toBe(true);
    expect(k.deferredSplit.has(head)).toBe(true);
    // Dropping the pin but not its reference leaves a reference nothing explains.
    k.folios.pincount[head] -= 1;
    expect(() => m.checkInvariants()).toThrow(/refcount/);
    k.folios.refcount[head] -= 1;
    m.checkInvariants();
    // Unpinned: the next scan splits it.
    expect(m.shrink()).toBe(1);
    expect(m.mthpStats()['2048kB'].split).toBe(1);
    expect(smapsTotal(m, mm).Rss).toBe(1024);
  });
});

describe('shrink_underused', () => {
  it('a THP with few written pages is split when max_ptes_none is lowered', () => {
    const t = thp(10);
    const { m, mm } = t;
    const written = values(t, 0, 10);
    m.sysfsWrite('khugepaged/max_ptes_none', '500');
    const free0 = m.meminfo().MemFree;
    expect(m.shrink()).toBe(1);
    expect(m.vmstat().thp_underused_split_page).toBe(1);
    expect(m.vmstat().thp_split_page).toBe(1);
    expect(m.mthpStats()['2048kB'].split).toBe(1);
    expect(m.mthpStats()['2048kB'].nr_anon).toBe(0);
    // Zero-filled subpages now map the shared zero page; their memory is free again.
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 40, AnonHugePages: 0 });
    expect(m.meminfo().MemFree).toBe(free0 + (512 - 10) * 4);
    for (const i of [10, 11, 300, 511])
      expect(resolve(m.kernel, mm, t.p + i)).toMatchObject({ kind: 'zero', huge: false });
    expect(values(t, 0, 10)).toEqual(written);
    for (let i = 0; i < 10; i++) expect(orderAt(m.kernel, mm, t.p + i)).toBe(0);
    // The zero-page PTEs are read-only: a write faults in a fresh page.
    expect(m.access(mm, t.a + 20 * PAGE, true)).toBe('fault');
    expect(smapsTotal(m, mm).Rss).toBe(44);
  });

  it('the boundary: split only when zero-filled pages exceed max_ptes_none', () => {
    // 12 pages written: 500 zero-filled pages.
    const at500 = thp(12);
    at500.m.sysfsWrite('khugepaged/max_ptes_none', '500');
    expect(at500.m.shrink()).toBe(0);
    expect(at500.m.vmstat().thp_underused_split_page).toBe(0);
    const at499 = thp(12);
    at499.m.sysfsWrite('khugepaged/max_ptes_none', '499');
    expect(at499.m.shrink()).toBe(1);
    expect(at499.m.vmstat().thp_underused_split_page).toBe(1);
  });

  it('a THP a scan found not underused leaves the queue for good', () => {
    const t = thp(12);
    const { m } = t;
    m.sysfsWrite('khugepaged/max_ptes_none', '500');
    expect(m.kernel.deferredSplit.has(t.head)).toBe(true);
    expect(m.shrink()).toBe(0);
    // deferred_split_scan does not requeue a folio it considered used.
    expect(m.kernel.deferredSplit.has(t.head)).toBe(false);
    expect(m.kernel.folios.test(t.head, PG_DEFERRED)).toBe(false);
    m.sysfsWrite('khugepaged/max_ptes_none', '0');
    expect(m.shrink()).toBe(0);
    expect(smapsTotal(m, t.mm).AnonHugePages).toBe(2048);
    // A later partial unmap queues it again, as partially mapped, and then it is split.
    m.madvise(t.mm, t.a + 1 * MiB, 1 * MiB, 'dontneed');
    expect(m.kernel.deferredSplit.has(t.head)).toBe(true);
    expect(m.shrink()).toBe(1);
  });

  it('with max_ptes_none=511 (default) it is not split, and leaves the queue', () => {
    const t = thp(1);
    const { m, mm } = t;
    expect(m.sysfsRead('khugepaged/max_ptes_none')).toBe('511\n');
    expect(m.kernel.deferredSplit.has(t.head)).toBe(true);
    expect(m.shrink()).toBe(0);
    expect(m.vmstat().thp_underused_split_page).toBe(0);
    expect(smapsTotal(m, mm).AnonHugePages).toBe(2048);
    expect(m.kernel.deferredSplit.has(t.head)).toBe(false);
  });

  it('with shrink_underused=0 a new THP is not queued, so it is never split as underused', () => {
    const m = checked(new Machine({ strictLocks: true, ramBytes: 64 * MiB }));
    const mm = m.spawn('p');
    m.sysfsWrite('shrink_underused', '0');
    m.sysfsWrite('khugepaged/max_ptes_none', '0');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, true);
    const head = folioAt(m.kernel, mm, a / PAGE);
    expect(m.kernel.deferredSplit.has(head)).toBe(false);
    expect(m.shrink()).toBe(0);
    // Turning the shrinker back on does not queue THPs that already exist.
    m.sysfsWrite('shrink_underused', '1');
    expect(m.shrink()).toBe(0);
    expect(m.vmstat().thp_underused_split_page).toBe(0);
    expect(smapsTotal(m, mm).AnonHugePages).toBe(2048);
    // A THP faulted with the shrinker on is queued and split.
    const b = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, b, true);
    expect(m.shrink()).toBe(1);
    expect(m.vmstat().thp_underused_split_page).toBe(1);
    expect(orderAt(m.kernel, mm, a / PAGE)).toBe(9);
    expect(orderAt(m.kernel, mm, b / PAGE)).toBe(0);
  });

  it('shrink_underused=0 does not stop the split of a THP queued while it was on', () => {
    // thp_underused() itself ignores the knob: only deferred_split_folio() looks at it.
    const t = thp(1);
    const { m, mm } = t;
    m.sysfsWrite('shrink_underused', '0');
    m.sysfsWrite('khugepaged/max_ptes_none', '0');
    expect(m.shrink()).toBe(1);
    expect(smapsTotal(m, mm)).toMatchObject({ Rss: 4, AnonHugePages: 0 });
  });

  it('partially mapped THPs are queued and split whatever shrink_underused says', () => {
    const t = thp(512);
    const { m, mm, a } = t;
    m.sysfsWrite('shrink_underused', '0');
    m.madvise(mm, a, 4 * PAGE, 'dontneed');
    expect(m.mthpStats()['2048kB'].split_deferred).toBe(1);
    expect(m.shrink()).toBe(1);
    expect(smapsTotal(m, mm).Rss).toBe(2048 - 16);
  });

  it('an underused THP that fails to split (pinned) leaves the queue', () => {
    const t = thp(1);
    const { m, head } = t;
    m.kernel.folios.pincount[head] += 1;
    m.kernel.folios.refcount[head] += 1;
    m.sysfsWrite('khugepaged/max_ptes_none', '0');
    expect(m.shrink()).toBe(0);
    expect(m.mthpStats()['2048kB'].split_failed).toBe(1);
    expect(m.kernel.deferredSplit.has(head)).toBe(false);
    m.kernel.folios.pincount[head] -= 1;
    m.kernel.folios.refcount[head] -= 1;
    expect(m.shrink()).toBe(0);
    expect(smapsTotal(m, t.mm).AnonHugePages).toBe(2048);
  });

  it('a fully written THP is never underused', () => {
    const t = thp(512);
    t.m.sysfsWrite('khugepaged/max_ptes_none', '0');
    expect(t.m.shrink()).toBe(0);
    expect(smapsTotal(t.m, t.mm).AnonHugePages).toBe(2048);
  });

  it('mTHP folios are not queued for the underused shrinker', () => {
    const m = checked(new Machine({ strictLocks: true, ramBytes: 64 * MiB }));
    const mm = m.spawn('p');
    m.sysfsWrite('hugepages-64kB/enabled', 'always');
    m.sysfsWrite('hugepages-2048kB/enabled', 'never');
    m.sysfsWrite('khugepaged/max_ptes_none', '0');
    const a = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(mm, a, true);
    expect(m.shrink()).toBe(0);
    // A partially unmapped mTHP is queued and split like a THP.
    m.madvise(mm, a, PAGE, 'dontneed');
    expect(m.mthpStats()['64kB'].split_deferred).toBe(1);
    expect(m.mthpStats()['64kB'].nr_anon_partially_mapped).toBe(1);
    // The vmstat event counts PMD-sized THPs only.
    expect(m.vmstat().thp_deferred_split_page).toBe(0);
    expect(m.shrink()).toBe(1);
    expect(m.mthpStats()['64kB'].split).toBe(1);
    expect(m.vmstat().thp_split_page).toBe(0);
    // The 15 still-mapped pages were zero-filled: they map the zero page now.
    expect(smapsTotal(m, mm).Rss).toBe(0);
  });
});
