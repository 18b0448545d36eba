// The khugepaged daemon on the simulated clock: budget, pacing, allocation-failure sleeps, the
// cursor over mm slots, and the per-PMD scan rules with their SCAN_* results and vm events.
import { describe, expect, it } from 'vitest';
import { Machine, type Mm } from '../src/sim/machine.ts';
import type { TraceEvent } from '../src/mm/trace.ts';

const MiB = 1024 * 1024;
const PMD = 2 * MiB;
const PAGE = 4096;

function machine(opts: { ramMiB?: number; profile?: 'linux-6.18' | 'linux-7.2' } = {}): Machine {
  const m = new Machine({
    ramBytes: (opts.ramMiB ?? 256) * MiB,
    swapBytes: 64 * MiB,
    strictLocks: true,
    profile: opts.profile,
  });
  m.sysfsWrite('enabled', 'madvise');
  return m;
}

function huge(m: Machine, mm: Mm): number {
  return m.smaps(mm).reduce((s, v) => s + v.AnonHugePages, 0);
}

/** A process with n PMDs fully written as 4K pages, then MADV_HUGEPAGE. */
function populated(m: Machine, n: number, name = 'p'): { mm: Mm; addr: number } {
  const mm = m.spawn(name);
  const addr = m.mmap(mm, { lengthBytes: n * PMD, alignBytes: PMD });
  m.touch(mm, addr, n * PMD, true);
  m.madvise(mm, addr, n * PMD, 'hugepage');
  return { mm, addr };
}

describe('khugepaged daemon', () => {
  it('collapses at the pace of pages_to_scan and scan_sleep_millisecs', () => {
    const m = machine();
    m.sysfsWrite('khugepaged/pages_to_scan', String(2 * 512));
    m.sysfsWrite('khugepaged/scan_sleep_millisecs', '1000');
    const { mm } = populated(m, 8);
    m.advance(0); // the registration woke the thread: one pass now
    const first = m.khugepaged().pages_collapsed;
    expect(first).toBeGreaterThanOrEqual(1);
    expect(first).toBeLessThanOrEqual(2);
    m.advance(999);
    expect(m.khugepaged().pages_collapsed).toBe(first);
    m.advance(1);
    expect(m.khugepaged().pages_collapsed).toBeGreaterThan(first);
    m.advance(10_000);
    expect(m.khugepaged().pages_collapsed).toBe(8);
    expect(huge(m, mm)).toBe(8 * 2048);
    expect(m.vmstat().thp_collapse_alloc).toBe(8);
    m.checkInvariants();
  });

  it('counts a full scan each time the cursor passes the last mm', () => {
    const m = machine();
    m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
    populated(m, 1, 'a');
    populated(m, 1, 'b');
    m.waitKhugepaged(2, 10_000);
    expect(m.khugepaged().full_scans).toBeGreaterThanOrEqual(2);
    expect(m.khugepaged().pages_collapsed).toBe(2);
    expect(m.khugepaged().registered).toEqual(['a', 'b']);
  });

  it('sleeps alloc_sleep_millisecs after an allocation failure and ends the pass on the second', () => {
    // 24 MiB of RAM fragmented so no 2 MiB block is left: every collapse allocation fails.
    // khugepaged/defrag=0 (GFP_TRANSHUGE_LIGHT): no direct compaction to undo the fragmentation.
    const m = machine({ ramMiB: 24 });
    m.sysfsWrite('khugepaged/defrag', '0');
    m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
    m.sysfsWrite('khugepaged/alloc_sleep_millisecs', '5000');
    const hog = m.spawn('hog');
    const h = m.mmap(hog, { lengthBytes: 24 * MiB });
    // Fill all of RAM (the last touches run out of memory), keep a few pages for the process
    // below, then free every other page: plenty is free but nothing of PMD order.
    expect(m.touch(hog, h, 24 * MiB, true)).toBe('oom');
    m.madvise(hog, h, 16 * PAGE, 'dontneed');
    for (let a = h + 16 * PAGE; a < h + 24 * MiB; a += 2 * PAGE)
      m.madvise(hog, a, PAGE, 'dontneed');
    expect(m.kernel.buddy.canAlloc(9)).toBe(false);
    const mm = m.spawn('p');
    const addr = m.mmap(mm, { lengthBytes: 2 * PMD, alignBytes: PMD });
    m.touch(mm, addr, 2 * PAGE, true);
    m.touch(mm, addr + PMD, 2 * PAGE, true);
    m.madvise(mm, addr, 2 * PMD, 'hugepage');
    m.advance(0);
    expect(m.vmstat().thp_collapse_alloc_failed).toBe(1);
    m.advance(4999);
    expect(m.vmstat().thp_collapse_alloc_failed).toBe(1);
    m.advance(1);
    expect(m.vmstat().thp_collapse_alloc_failed).toBe(2);
    expect(m.mthpStats()['2048kB'].collapse_alloc_failed).toBe(2);
    expect(huge(m, mm)).toBe(0);
    m.checkInvariants();
  });

  it('leaves sparse PMDs above max_ptes_none and says why', () => {
    const m = machine();
    m.sysfsWrite('khugepaged/max_ptes_none', '255');
    m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
    const mm = m.spawn('p');
    const addr = m.mmap(mm, { lengthBytes: 2 * PMD, alignBytes: PMD });
    m.touch(mm, addr, 257 * PAGE, true); // 255 none: collapses
    m.touch(mm, addr + PMD, 256 * PAGE, true); // 256 none: one too many
    m.madvise(mm, addr, 2 * PMD, 'hugepage');
    const trace: TraceEvent[] = [];
    m.setTrace((e) => trace.push(e));
    m.waitKhugepaged(2, 10_000);
    expect(huge(m, mm)).toBe(2048);
    const results = trace
      .filter((e) => e.name === 'thpsim_pmd_result')
      .map((e) => [e.fields.result, e.fields.none_or_zero]);
    expect(results).toContainEqual(['SCAN_SUCCEED', 255]);
    expect(results).toContainEqual(['SCAN_EXCEED_NONE_PTE', 256]);
    expect(m.vmstat().thp_scan_exceed_none_pte).toBeGreaterThanOrEqual(1);
    expect(m.mthpStats()['2048kB'].collapse_exceed_none_pte).toBeGreaterThanOrEqual(1);
    // Zero-filled holes became part of the THP: Rss grew, data of the written pages kept.
    expect(m.smaps(mm)[0].Rss).toBe(2048 + 256 * 4);
    m.checkInvariants();
  });

  it('charges HPAGE_PMD_NR per PMD on 6.18 and per PTE inspected on 7.2', () => {
    for (const profile of ['linux-6.18', 'linux-7.2'] as const) {
      const m = machine({ profile });
      m.sysfsWrite('khugepaged/max_ptes_none', '0');
      m.sysfsWrite('khugepaged/pages_to_scan', String(8 * 512));
      const mm = m.spawn('p');
      const addr = m.mmap(mm, { lengthBytes: 16 * PMD, alignBytes: PMD });
      // Page 0 of each PMD is none: the scan stops at the first PTE, max_ptes_none=0.
      for (let i = 0; i < 16; i++) m.touch(mm, addr + i * PMD + PAGE, PAGE, true);
      m.madvise(mm, addr, 16 * PMD, 'hugepage');
      m.advance(0);
      // 6.18 spends 512 per PMD (8 PMDs a pass); 7.2 spends 1 per PMD: one pass sees them all.
      expect(m.khugepaged().full_scans).toBe(profile === 'linux-6.18' ? 0 : 1);
      expect(m.vmstat().thp_scan_exceed_none_pte).toBe(profile === 'linux-6.18' ? 8 : 16);
    }
  });

  it('drops the slot of an exited mm and skips a process with THP disabled', () => {
    const m = machine();
    m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
    const a = populated(m, 1, 'a');
    const b = populated(m, 1, 'b');
    m.prctlThpDisable(b.mm, 'all');
    m.exit(a.mm);
    m.waitKhugepaged(2, 10_000);
    expect(huge(m, b.mm)).toBe(0);
    expect(m.khugepaged().registered).toEqual([]);
    m.checkInvariants();
  });

  it('does not collapse a PMD with more swap entries than max_ptes_swap, and swaps in up to it', () => {
    const m = machine();
    m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
    const mm = m.spawn('p');
    const addr = m.mmap(mm, { lengthBytes: 2 * PMD, alignBytes: PMD });
    m.touch(mm, addr, 2 * PMD, true);
    m.madvise(mm, addr, 65 * PAGE, 'pageout');
    m.madvise(mm, addr + PMD, 64 * PAGE, 'pageout');
    m.madvise(mm, addr, 2 * PMD, 'hugepage');
    m.waitKhugepaged(2, 10_000);
    const [v] = m.smaps(mm);
    expect(v.AnonHugePages).toBe(2048);
    expect(v.Swap).toBe(65 * 4);
    expect(m.vmstat().thp_scan_exceed_swap_pte).toBeGreaterThanOrEqual(1);
    expect(m.vmstat().pswpin).toBe(64);
    m.checkInvariants();
  });
});
