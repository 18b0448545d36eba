// Reclaim and fork: written against the kernel's behaviour, they need the fork model
// (copy_page_range) to pass.

import { describe, expect, it } from 'vitest';
import { KiB, MiB, PAGE, PMD, machine, op, readAll, smapsAt } from './reclaim-helpers.ts';

describe('MADV_PAGEOUT after fork', () => {
  it('does not page out folios the child shares', () => {
    const m = machine(16 * MiB);
    const parent = m.spawn('parent');
    const addr = op(m, () => m.mmap(parent, { lengthBytes: 2 * PMD, alignBytes: PMD }));
    op(m, () => m.touch(parent, addr, PMD, true)); // a THP
    op(m, () => m.madvise(parent, addr + PMD, PMD, 'nohugepage'));
    op(m, () => m.touch(parent, addr + PMD, 64 * PAGE, true)); // small pages
    const data = readAll(m, parent, addr, 2 * PMD);
    const child = op(m, () => m.fork(parent, 'child'));
    expect(readAll(m, child, addr, 2 * PMD)).toEqual(data);
    op(m, () => m.madvise(parent, addr, 2 * PMD, 'pageout'));
    op(m, () => m.madvise(child, addr, 2 * PMD, 'pageout'));
    expect(m.vmstat().pswpout).toBe(0);
    expect(m.meminfo().SwapFree).toBe(16 * 1024);
    expect(smapsAt(m, parent, addr).Swap + smapsAt(m, child, addr).Swap).toBe(0);
    expect(readAll(m, parent, addr, 2 * PMD)).toEqual(data);
    expect(readAll(m, child, addr, 2 * PMD)).toEqual(data);

    // Once the child is gone the folios are exclusive again and go out.
    op(m, () => m.exit(child));
    op(m, () => m.madvise(parent, addr, 2 * PMD, 'pageout'));
    expect(m.vmstat().thp_swpout).toBe(1);
    expect(m.vmstat().pswpout).toBe(512 + 64);
    expect(readAll(m, parent, addr, 2 * PMD)).toEqual(data);
  });

  it('swap entries shared by fork come back read-only, and writes stay private', () => {
    const m = machine(16 * MiB);
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const addr = op(m, () => m.mmap(parent, { lengthBytes: 16 * PAGE }));
    op(m, () => m.touch(parent, addr, 16 * PAGE, true));
    const data = readAll(m, parent, addr, 16 * PAGE);
    op(m, () => m.madvise(parent, addr, 16 * PAGE, 'pageout'));
    const child = op(m, () => m.fork(parent, 'child'));
    // One slot per page, referenced by both processes.
    expect(smapsAt(m, child, addr).Swap).toBe(64);
    expect(m.meminfo().SwapFree).toBe(16 * 1024 - 64);
    expect(readAll(m, child, addr, 16 * PAGE)).toEqual(data);

    // Both read: the parent's swap-in leaves the folio in the swap cache for the child, which
    // then maps the same page. Neither mapping may be writable.
    for (let a = addr; a < addr + 16 * PAGE; a += PAGE) op(m, () => m.access(parent, a, false));
    for (let a = addr; a < addr + 16 * PAGE; a += PAGE) op(m, () => m.access(child, a, false));
    expect(m.vmstat().pswpin).toBe(16);
    expect(readAll(m, parent, addr, 16 * PAGE)).toEqual(data);
    expect(readAll(m, child, addr, 16 * PAGE)).toEqual(data);

    // The child writes: copy-on-write, the parent keeps its data.
    const faults = m.vmstat().pgfault;
    op(m, () => m.touch(child, addr, 16 * PAGE, true));
    expect(m.vmstat().pgfault).toBe(faults + 16);
    expect(readAll(m, parent, addr, 16 * PAGE)).toEqual(data);
    const childData = readAll(m, child, addr, 16 * PAGE);
    for (let i = 0; i < 16; i++) expect(childData[i]).not.toBe(data[i]);
  });
});

describe('MADV_FREE after fork', () => {
  it("a parent's MADV_FREE cannot discard what the child still holds", () => {
    const m = machine(16 * MiB);
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const addr = op(m, () => m.mmap(parent, { lengthBytes: 64 * KiB }));
    op(m, () => m.touch(parent, addr, 64 * KiB, true));
    const data = readAll(m, parent, addr, 64 * KiB);
    const child = op(m, () => m.fork(parent, 'child'));
    op(m, () => m.madvise(parent, addr, 64 * KiB, 'free'));
    op(m, () => m.madvise(parent, addr, 64 * KiB, 'pageout'));
    op(m, () => m.madvise(child, addr, 64 * KiB, 'pageout'));
    expect(readAll(m, child, addr, 64 * KiB)).toEqual(data);
    expect(readAll(m, parent, addr, 64 * KiB)).toEqual(data);

    // The parent exits: the child's mappings are still dirty (fork copies the dirty bit), so
    // the lazy-free folios are kept and become swap-backed; the next pageout swaps them.
    op(m, () => m.exit(parent));
    op(m, () => m.madvise(child, addr, 64 * KiB, 'pageout'));
    expect(readAll(m, child, addr, 64 * KiB)).toEqual(data);
    expect(smapsAt(m, child, addr).Rss).toBe(64);
    op(m, () => m.madvise(child, addr, 64 * KiB, 'pageout'));
    expect(smapsAt(m, child, addr).Swap).toBe(64);
    expect(readAll(m, child, addr, 64 * KiB)).toEqual(data);
  });

  it("the parent's clean lazy-free pages go once the child has exited", () => {
    const m = machine(16 * MiB);
    m.sysfsWrite('enabled', 'never');
    const parent = m.spawn('parent');
    const addr = op(m, () => m.mmap(parent, { lengthBytes: 64 * KiB }));
    op(m, () => m.touch(parent, addr, 64 * KiB, true));
    const child = op(m, () => m.fork(parent, 'child'));
    op(m, () => m.madvise(parent, addr, 64 * KiB, 'free'));
    op(m, () => m.exit(child));
    op(m, () => m.madvise(parent, addr, 64 * KiB, 'pageout'));
    expect(smapsAt(m, parent, addr).Rss).toBe(0);
    expect(smapsAt(m, parent, addr).Swap).toBe(0);
    expect(readAll(m, parent, addr, 64 * KiB).every((d) => d === 0)).toBe(true);
  });
});
