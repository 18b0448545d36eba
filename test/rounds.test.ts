// The rounds design (mm/collapse.c, not merged) in the simulator: collapse under the mmap read
// lock with the sources quiesced by migration entries and a frozen refcount, candidates cut from
// the usable-PTE bitmap and retried at lower orders, PMD order without a pmd_none-to-fault window.
import { describe, expect, it } from 'vitest';
import { PteBitmap } from '../src/khugepaged/mthp/bitmap.ts';
import { maxPtesNoneV19 } from '../src/khugepaged/mthp/thresholds.ts';
import { RoundsSelection } from '../src/khugepaged/rounds/select.ts';
import type { ScanResult } from '../src/khugepaged/scan-result.ts';
import type { LockTable } from '../src/mm/locks.ts';
import {
  type EventSink,
  L_ANON_VMA_WRITE,
  L_MMAP_WRITE,
  L_PMD_LOCK,
  S_RCU_SYNC,
  evClass,
} from '../src/mm/step.ts';
import type { TraceEvent } from '../src/mm/trace.ts';
import { Machine } from '../src/sim/machine.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PMD = 2 * MiB;
const PAGE = 4 * KiB;

function selection(bits: (i: number) => boolean, orders: number, sysfs = 0): RoundsSelection {
  const b = new PteBitmap(512);
  for (let i = 0; i < 512; i++) if (bits(i)) b.set(i);
  const t = { sysfs, nr: 512, pmdOrder: 9, uffd: false, madvise: false };
  return new RoundsSelection({
    bits: b,
    orders,
    pmdOrder: 9,
    start: 0,
    end: 512,
    unmapped: 0,
    maxPtesNone: (o) => maxPtesNoneV19(t, o),
  });
}

/** Drain a selection, answering each window with `answer`; the windows it emitted. */
function drain(s: RoundsSelection, answer: (off: number, order: number) => ScanResult): string[] {
  const out: string[] = [];
  while (s.next()) {
    out.push(`${s.outOffset}@${s.outOrder}${s.outReclaim ? 'r' : ''}`);
    if (!s.classify(s.outOffset, s.outOrder, answer(s.outOffset, s.outOrder))) break;
    if (out.length > 2000) throw new Error('selection does not terminate');
  }
  return out;
}

describe('rounds selection', () => {
  it('cuts a full table at the largest enabled order', () => {
    const s = selection(() => true, (1 << 9) | (1 << 4));
    expect(drain(s, () => 'SCAN_SUCCEED')).toEqual(['0@9']);
    expect(s.result()).toBe('SCAN_SUCCEED');
  });

  it('a refused window re-enters at the next enabled order, walked to its tail', () => {
    const s = selection((i) => i < 64, (1 << 6) | (1 << 4));
    // Window 0@6 refused (say a page was pinned): its four order-4 windows are tried.
    const seen = drain(s, (off, o) =>
      o === 6 ? 'SCAN_PAGE_COUNT' : off === 16 ? 'SCAN_PAGE_LOCK' : 'SCAN_SUCCEED',
    );
    expect(seen).toEqual(['0@6', '0@4', '16@4', '32@4', '48@4']);
    expect(s.collapsedPages).toBe(48);
  });

  it('a light miss comes back once at the same order with reclaim, then descends', () => {
    const s = selection((i) => i < 16, 1 << 4);
    let misses = 0;
    const seen = drain(s, () => (misses++ === 0 ? 'SCAN_ALLOC_LIGHT_MISS' : 'SCAN_SUCCEED'));
    expect(seen).toEqual(['0@4', '0@4r']);
  });

  it('a dropped lock abandons the table', () => {
    const s = selection(() => true, 1 << 4);
    expect(drain(s, () => 'SCAN_LOCK_DROPPED')).toEqual(['0@4']);
    expect(s.result()).toBe('SCAN_LOCK_DROPPED');
  });

  it('terminates on every answer pattern', () => {
    for (let seed = 0; seed < 50; seed++) {
      let x = seed * 2654435761;
      const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) % 5;
      const answers: ScanResult[] = [
        'SCAN_SUCCEED',
        'SCAN_PAGE_COUNT',
        'SCAN_ALLOC_LIGHT_MISS',
        'SCAN_ALLOC_HUGE_PAGE_FAIL',
        'SCAN_EXCEED_NONE_PTE',
      ];
      const s = selection((i) => (i * 7 + seed) % 3 !== 0, 0b1111111100, 511);
      expect(() => drain(s, () => answers[rnd()])).not.toThrow();
    }
  });
});

function box(opts: { geometry?: 'x86-64-4k' | 'arm64-64k'; sizes: string[]; ram?: number }) {
  const m = new Machine({
    ramBytes: opts.ram ?? 64 * MiB,
    strictLocks: true,
    collapsePolicy: 'rounds',
    geometry: opts.geometry ?? 'x86-64-4k',
  });
  m.sysfsWrite('enabled', 'madvise');
  m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
  m.sysfsWrite('khugepaged/max_ptes_none', '0');
  const trace: TraceEvent[] = [];
  m.setTrace((e) => trace.push(e));
  /** Enable the sizes once the pages are written (as base pages). */
  const enable = () => {
    for (const s of opts.sizes) m.sysfsWrite(`hugepages-${s}/enabled`, 'always');
  };
  return { m, trace, enable };
}

/** Record the lock classes the collapse takes, through the kernel's event sink. */
function recordLocks(m: Machine): { classes: Set<number>; rcu: number; sink: EventSink } {
  const k = m.kernel;
  const strict = k.sink;
  const seen = { classes: new Set<number>(), rcu: 0, sink: strict };
  const rec: EventSink = {
    apply(e, t) {
      seen.classes.add(evClass(e));
      if (evClass(e) === S_RCU_SYNC) seen.rcu++;
      return strict.apply(e, t);
    },
  };
  (k as unknown as { sink: EventSink }).sink = rec;
  return seen;
}

describe('rounds collapse in the simulator', () => {
  it('collapses a dense PMD range to a PMD under the mmap read lock only, data intact', () => {
    const { m, trace } = box({ sizes: [] });
    const mm = m.spawn('p');
    const a = m.mmap(mm, { lengthBytes: PMD, alignBytes: PMD });
    m.touch(mm, a, PMD, true);
    m.madvise(mm, a, PMD, 'hugepage');
    const before = Array.from({ length: 512 }, (_, i) => m.readPage(mm, a + i * PAGE));
    const locks = recordLocks(m);
    m.waitKhugepaged(2, 10_000);
    expect(m.smaps(mm)[0].byOrder).toEqual({ 9: 2048 });
    expect(Array.from({ length: 512 }, (_, i) => m.readPage(mm, a + i * PAGE))).toEqual(before);
    expect(locks.classes.has(L_MMAP_WRITE)).toBe(false);
    expect(locks.classes.has(L_ANON_VMA_WRITE)).toBe(false);
    expect(locks.classes.has(L_PMD_LOCK)).toBe(true);
    // The detached table went to pte_free_defer (an RCU grace period before its free).
    expect(locks.rcu).toBeGreaterThan(0);
    expect((locks.sink as LockTable).isEmpty).toBe(true);
    const cands = trace.filter((e) => e.name === 'mm_collapse_candidate');
    expect(
      cands.some((e) => e.fields.pass === 'install' && e.fields.result === 'SCAN_SUCCEED'),
    ).toBe(true);
    m.checkInvariants();
  });

  it('reaches a VMA that covers only half of a PMD range (the other half another VMA)', () => {
    const { m, enable } = box({ sizes: ['64kB'] });
    const mm = m.spawn('p');
    const base = m.mmap(mm, { lengthBytes: 2 * PMD, alignBytes: PMD });
    m.munmap(mm, base + PMD, PMD);
    m.touch(mm, base, PMD, true);
    enable();
    m.madvise(mm, base, PMD / 2, 'nohugepage');
    m.madvise(mm, base + PMD / 2, PMD / 2, 'hugepage');
    const before = Array.from({ length: 512 }, (_, i) => m.readPage(mm, base + i * PAGE));
    m.waitKhugepaged(2, 10_000);
    expect(m.smaps(mm).map((v) => v.byOrder)).toEqual([{ 0: 1024 }, { 4: 1024 }]);
    expect(Array.from({ length: 512 }, (_, i) => m.readPage(mm, base + i * PAGE))).toEqual(before);
    m.checkInvariants();
  });

  it('batches a table into rounds of at most 32 MiB on arm64-64k', () => {
    const { m, enable } = box({ geometry: 'arm64-64k', sizes: ['2048kB'], ram: 512 * MiB });
    const mm = m.spawn('p');
    const a = m.mmap(mm, { lengthBytes: 64 * MiB, alignBytes: 2 * MiB });
    m.touch(mm, a, 64 * MiB, true);
    enable();
    m.madvise(mm, a, 64 * MiB, 'hugepage');
    m.waitKhugepaged(2, 10_000);
    expect(m.smaps(mm)[0].byOrder).toEqual({ 5: 64 * 1024 });
    const r = m.kernel.khugepaged.rounds;
    // 32 candidates of 2 MiB: two rounds of 16 (a second scan's rounds refuse the new folios).
    expect(r.installed).toBe(32);
    expect(r.maxCopied).toBe(16 * 32);
    expect(r.copiedPages).toBe(32 * 32);
    m.checkInvariants();
  });
});
