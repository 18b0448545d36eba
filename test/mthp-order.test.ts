// The mTHP order choice: the merged forward walk, the v11 explicit-stack walk, the bitmap and
// the per-order max_ptes_none rules (khugepaged.md §2.3, §2.4).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PteBitmap, popcount32 } from '../src/khugepaged/mthp/bitmap.ts';
import {
  ForwardWalk,
  type OrderWalk,
  type Region,
  StackWalk,
  type WalkInput,
  maxOrderFromOffset,
} from '../src/khugepaged/mthp/order-walk.ts';
import {
  maxPtesNoneV11Cap,
  maxPtesNoneV19,
  mthpMaxPtesNoneUnsupported,
} from '../src/khugepaged/mthp/thresholds.ts';
import { SCAN_RESULTS, type ScanResult } from '../src/khugepaged/scan-result.ts';

/** Drive a walk with an outcome per attempt; returns the attempts and the outcome. */
function drive(walk: OrderWalk, outcome: (r: Region, i: number) => ScanResult) {
  const attempts: Region[] = [];
  while (walk.next()) {
    const region = { offset: walk.offset, order: walk.order };
    attempts.push(region);
    walk.report(outcome(region, attempts.length - 1));
  }
  return { attempts, outcome: walk.outcome() };
}

function bitmapOf(nr: number, occupied: (i: number) => boolean): PteBitmap {
  const b = new PteBitmap(nr);
  for (let i = 0; i < nr; i++) if (occupied(i)) b.set(i);
  return b;
}

describe('PteBitmap', () => {
  it('counts set bits in any range like a naive count', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 512, maxLength: 512 }),
        fc.nat(511),
        fc.nat(512),
        (bits, a, len) => {
          const b = bitmapOf(512, (i) => bits[i]);
          const n = Math.min(len, 512 - a);
          expect(b.count(a, n)).toBe(bits.slice(a, a + n).filter(Boolean).length);
        },
      ),
    );
    expect(popcount32(0xffffffff)).toBe(32);
  });
});

describe('per-order max_ptes_none', () => {
  const base = { nr: 512, pmdOrder: 9, uffd: false, madvise: false };
  it('v19: PMD keeps the sysfs value, mTHP honours only 0 and 511', () => {
    expect(maxPtesNoneV19({ ...base, sysfs: 255 }, 9)).toBe(255);
    expect(maxPtesNoneV19({ ...base, sysfs: 511 }, 4)).toBe(15);
    expect(maxPtesNoneV19({ ...base, sysfs: 0 }, 4)).toBe(0);
    expect(maxPtesNoneV19({ ...base, sysfs: 255 }, 4)).toBe(0);
    expect(mthpMaxPtesNoneUnsupported({ ...base, sysfs: 255 })).toBe(true);
    expect(mthpMaxPtesNoneUnsupported({ ...base, sysfs: 511 })).toBe(false);
    expect(maxPtesNoneV19({ ...base, sysfs: 511, uffd: true }, 9)).toBe(0);
    expect(maxPtesNoneV19({ ...base, sysfs: 0, madvise: true }, 9)).toBe(512);
  });
  it('v11-cap: scaled and silently capped at HPAGE_PMD_NR/2 - 1', () => {
    expect(maxPtesNoneV11Cap({ ...base, sysfs: 511 }, 8)).toBe(127);
    expect(maxPtesNoneV11Cap({ ...base, sysfs: 511 }, 4)).toBe(7);
    expect(maxPtesNoneV11Cap({ ...base, sysfs: 64 }, 8)).toBe(32);
  });
});

describe('order walk', () => {
  it('max_order_from_offset follows the alignment', () => {
    expect(maxOrderFromOffset(0, 9)).toBe(9);
    expect(maxOrderFromOffset(256, 9)).toBe(8);
    expect(maxOrderFromOffset(16, 9)).toBe(4);
    expect(maxOrderFromOffset(304, 9)).toBe(4);
    expect(maxOrderFromOffset(2, 9)).toBe(1);
  });

  it('the worked example of §2.4: orders {9, 4}, max_ptes_none 0, PTEs 0..299 occupied', () => {
    const w: WalkInput = {
      bits: bitmapOf(512, (i) => i < 300),
      nr: 512,
      pmdOrder: 9,
      enabled: (1 << 9) | (1 << 4),
      maxPtesNone: (o) =>
        maxPtesNoneV19({ sysfs: 0, nr: 512, pmdOrder: 9, uffd: false, madvise: false }, o),
      unmapped: 0,
    };
    const { attempts, outcome } = drive(new ForwardWalk(w), () => 'SCAN_SUCCEED');
    expect(attempts).toEqual(Array.from({ length: 18 }, (_, i) => ({ offset: 16 * i, order: 4 })));
    expect(outcome).toEqual({ result: 'SCAN_SUCCEED', collapsed: 18 * 16 });
    // With 511 the PMD is tried first; if its allocation fails every 64K block with a page follows.
    const w511 = {
      ...w,
      maxPtesNone: (o: number) =>
        maxPtesNoneV19({ sysfs: 511, nr: 512, pmdOrder: 9, uffd: false, madvise: false }, o),
    };
    const r = drive(new ForwardWalk(w511), (reg) =>
      reg.order === 9 ? 'SCAN_ALLOC_HUGE_PAGE_FAIL' : 'SCAN_SUCCEED',
    );
    expect(r.attempts[0]).toEqual({ offset: 0, order: 9 });
    expect(r.attempts.slice(1)).toEqual(
      Array.from({ length: 19 }, (_, i) => ({ offset: 16 * i, order: 4 })),
    );
  });

  it('a hard failure stops the whole PMD; the PMD swap fix counts swap PTEs as occupied', () => {
    const w: WalkInput = {
      bits: bitmapOf(512, (i) => i !== 7),
      nr: 512,
      pmdOrder: 9,
      enabled: (1 << 9) | (1 << 2),
      maxPtesNone: () => 0,
      unmapped: 1,
    };
    const r = drive(new ForwardWalk(w), () => 'SCAN_PMD_MAPPED');
    expect(r.attempts).toEqual([{ offset: 0, order: 9 }]);
    expect(r.outcome.result).toBe('SCAN_PMD_MAPPED');
  });

  it('the v11 explicit stack chooses exactly what the v19 forward walk chooses', () => {
    const nrOf = { 9: 512, 11: 2048 } as const;
    fc.assert(
      fc.property(
        fc.constantFrom(9, 11),
        fc.integer({ min: 0, max: 2 ** 12 - 1 }),
        fc.constantFrom(0, 1, 255, 511, 2047),
        fc.nat(64),
        fc.array(fc.constantFrom(...SCAN_RESULTS), { minLength: 1, maxLength: 8 }),
        fc.integer(),
        fc.constantFrom('dense', 'sparse', 'runs'),
        (pmdOrder, enabledRaw, sysfs, unmapped, results, seed, shape) => {
          const nr = nrOf[pmdOrder as 9 | 11];
          const enabled = enabledRaw & ((2 << pmdOrder) - 1) & ~3;
          let x = seed >>> 0 || 1;
          const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
          const runStart = Math.floor(rnd() * nr);
          const bits = bitmapOf(nr, (i) =>
            shape === 'dense'
              ? rnd() < 0.9
              : shape === 'sparse'
                ? rnd() < 0.05
                : i >= runStart && i < runStart + nr / 4,
          );
          const t = { sysfs: Math.min(sysfs, nr - 1), nr, pmdOrder, uffd: false, madvise: false };
          const w: WalkInput = {
            bits,
            nr,
            pmdOrder,
            enabled,
            maxPtesNone: (o) => maxPtesNoneV19(t, o),
            unmapped,
          };
          // The outcome of an attempt depends only on the region, the same for both walks.
          const outcome = (r: Region) => results[(r.offset * 31 + r.order * 7) % results.length];
          const a = drive(new ForwardWalk(w), outcome);
          const b = drive(new StackWalk(w), outcome);
          expect(b.attempts).toEqual(a.attempts);
          expect(b.outcome).toEqual(a.outcome);
        },
      ),
      { numRuns: 400 },
    );
  });
});
