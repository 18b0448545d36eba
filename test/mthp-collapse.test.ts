// mTHP collapse by khugepaged (7.2 profile): the order walk over the occupancy bitmap, the
// per-order limits, refusal of swap and shared pages, and the page-table rules of the merged
// design (khugepaged.md §2).
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../src/mm/trace.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PMD = 2 * MiB;
const PAGE = 4 * KiB;

interface Setup {
  m: Machine;
  mm: Mm;
  addr: number;
  trace: TraceEvent[];
}

/** Pages [0, written) of one PMD written as 4K pages, then the sizes enabled and MADV_HUGEPAGE. */
function setup(opts: {
  written: number;
  sizes: Record<string, string>;
  maxPtesNone: number;
  profile?: 'linux-6.18' | 'linux-7.2';
  policy?: 'v19' | 'v11-stack';
}): Setup {
  const m = new Machine({
    ramBytes: 128 * MiB,
    swapBytes: 16 * MiB,
    strictLocks: true,
    profile: opts.profile ?? 'linux-7.2',
  });
  if (opts.policy) m.kernel.collapsePolicy = opts.policy;
  m.sysfsWrite('enabled', 'madvise');
  m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
  m.sysfsWrite('khugepaged/max_ptes_none', String(opts.maxPtesNone));
  const mm = m.spawn('p');
  const addr = m.mmap(mm, { lengthBytes: PMD, alignBytes: PMD });
  m.touch(mm, addr, opts.written * PAGE, true);
  for (const [size, mode] of Object.entries(opts.sizes))
    m.sysfsWrite(`hugepages-${size}/enabled`, mode);
  const trace: TraceEvent[] = [];
  m.setTrace((e) => trace.push(e));
  return { m, mm, addr, trace };
}

function run(s: Setup): Record<number, number> {
  s.m.madvise(s.mm, s.addr, PMD, 'hugepage');
  s.m.waitKhugepaged(2, 10_000);
  s.m.checkInvariants();
  return s.m.smaps(s.mm)[0].byOrder;
}

function values(s: Setup, pages: number): Array<number | null> {
  return Array.from({ length: pages }, (_, i) => s.m.readPage(s.mm, s.addr + i * PAGE));
}

describe('mTHP collapse (v19)', () => {
  it('the worked example: 2M + 64K, max_ptes_none 0, pages 0..299 → 18 × 64K', () => {
    const s = setup({
      written: 300,
      sizes: { '2048kB': 'inherit', '64kB': 'always' },
      maxPtesNone: 0,
    });
    const before = values(s, 512);
    const byOrder = run(s);
    expect(byOrder).toEqual({ 4: 18 * 64, 0: 12 * 4 });
    // 18 on the first pass; the second pass tries the same regions again, allocates, and isolate
    // finds a folio of the target order already there (SCAN_PTE_MAPPED_HUGEPAGE).
    expect(s.m.mthpStats()['64kB'].collapse_alloc).toBe(36);
    const again = s.trace.filter(
      (e) => e.name === 'thpsim_mthp_attempt' && e.fields.result === 'SCAN_PTE_MAPPED_HUGEPAGE',
    );
    expect(again).toHaveLength(18);
    expect(s.m.mthpStats()['2048kB'].collapse_alloc).toBe(0);
    expect(values(s, 512)).toEqual(before);
    expect(s.m.khugepaged().pages_collapsed).toBeGreaterThanOrEqual(1);
    // The PMD was never attempted (it failed the bitmap pre-check); (4,288) neither.
    const attempts = s.trace.filter((e) => e.name === 'thpsim_mthp_attempt');
    expect(attempts.some((e) => e.fields.order === 9)).toBe(false);
    expect(attempts.some((e) => e.fields.vpn === s.addr / PAGE + 288)).toBe(false);
  });

  it('max_ptes_none 511: every 64K block with a page collapses, the zero-filled rest too', () => {
    const s = setup({
      written: 300,
      sizes: { '2048kB': 'never', '64kB': 'always' },
      maxPtesNone: 511,
    });
    expect(run(s)).toEqual({ 4: 19 * 64 });
  });

  it('another max_ptes_none behaves as 0 below PMD order and warns once', () => {
    const s = setup({
      written: 300,
      sizes: { '2048kB': 'never', '64kB': 'always' },
      maxPtesNone: 255,
    });
    expect(run(s)).toEqual({ 4: 18 * 64, 0: 12 * 4 });
    expect(s.trace.filter((e) => e.name === 'pr_warn_once')).toHaveLength(1);
  });

  it('refuses a region with a swapped-out page, and one with a page shared after fork', () => {
    const s = setup({
      written: 64,
      sizes: { '2048kB': 'never', '64kB': 'always' },
      maxPtesNone: 0,
    });
    s.m.madvise(s.mm, s.addr + 20 * PAGE, PAGE, 'pageout'); // region 1 (16..31)
    const child = s.m.fork(s.mm, 'child');
    s.m.touch(s.mm, s.addr, 64 * PAGE, true); // the parent COWs everything back...
    s.m.exit(child);
    const child2 = s.m.fork(s.mm, 'child2');
    s.m.touch(s.mm, s.addr, 32 * PAGE, true); // ...and re-shares pages 32..63 with child2
    const byOrder = run(s);
    // Regions 0 and 1 are private and collapse (region 1's swapped page was faulted back by the
    // write above); regions 2 and 3 are shared with child2 and are refused.
    expect(byOrder[4]).toBe(2 * 64);
    expect(s.m.mthpStats()['64kB'].collapse_exceed_shared_pte).toBeGreaterThanOrEqual(1);
    s.m.exit(child2);
    s.m.checkInvariants();
  });

  it('a swap entry in a region: swap-in gives up at the first one (SCAN_EXCEED_SWAP_PTE)', () => {
    // With a swap PTE in the PMD the scan wants HPAGE_PMD_NR/2 referenced PTEs: write 300.
    // max_ptes_none 511 makes the region with the swap entry eligible, so it is attempted.
    const s = setup({
      written: 300,
      sizes: { '2048kB': 'never', '64kB': 'always' },
      maxPtesNone: 511,
    });
    s.m.madvise(s.mm, s.addr + 20 * PAGE, PAGE, 'pageout');
    const byOrder = run(s);
    // Every region with a page but the one holding the swap entry: 0, 2..18.
    expect(byOrder[4]).toBe(18 * 64);
    expect(s.m.smaps(s.mm)[0].Swap).toBe(4);
    expect(s.m.mthpStats()['64kB'].collapse_exceed_swap_pte).toBeGreaterThanOrEqual(1);
  });

  it('does not touch a PMD range that the VMA does not span', () => {
    const m = new Machine({ ramBytes: 64 * MiB, strictLocks: true });
    m.sysfsWrite('enabled', 'madvise');
    m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
    const mm = m.spawn('p');
    const base = m.mmap(mm, { lengthBytes: 2 * PMD, alignBytes: PMD });
    m.munmap(mm, base + PMD, PMD);
    m.munmap(mm, base, PMD / 2); // the VMA covers only the upper half of the PMD range
    m.touch(mm, base + PMD / 2, PMD / 2, true);
    m.sysfsWrite('hugepages-64kB/enabled', 'always');
    m.madvise(mm, base + PMD / 2, PMD / 2, 'hugepage');
    m.waitKhugepaged(2, 10_000);
    expect(m.smaps(mm)[0].byOrder).toEqual({ 0: 1024 });
    m.checkInvariants();
  });

  it('the v11 explicit stack gives the same result as the v19 forward walk', () => {
    const layouts = [300, 17, 511, 129];
    for (const written of layouts) {
      const a = setup({
        written,
        sizes: { '2048kB': 'inherit', '64kB': 'always', '16kB': 'always', '256kB': 'always' },
        maxPtesNone: 0,
      });
      const b = setup({
        written,
        sizes: { '2048kB': 'inherit', '64kB': 'always', '16kB': 'always', '256kB': 'always' },
        maxPtesNone: 0,
        policy: 'v11-stack',
      });
      expect(run(b)).toEqual(run(a));
    }
  });

  it('the 6.18 profile collapses to PMD order only', () => {
    const s = setup({
      written: 300,
      sizes: { '2048kB': 'inherit', '64kB': 'always' },
      maxPtesNone: 0,
      profile: 'linux-6.18',
    });
    expect(run(s)).toEqual({ 0: 300 * 4 });
  });
});
