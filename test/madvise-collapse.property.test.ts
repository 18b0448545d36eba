// MADV_COLLAPSE on random PMD contents against the rule of khugepaged.md §1.6: the limits are
// not enforced, swapped pages are brought back, shared pages are fine, a page with an extra
// reference (a pin) makes it fail with EAGAIN, and a range without a PTE table is EINVAL.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Machine, type Mm } from '../src/sim/machine.ts';
import { readBack } from './reclaim-helpers.ts';
import { resolve } from './support/ref-model.ts';

const MiB = 1024 * 1024;
type PageKind = 'none' | 'read' | 'write' | 'swap' | 'shared' | 'pinned';
const KINDS: PageKind[] = ['none', 'read', 'write', 'swap', 'shared', 'pinned'];

const pageValue = (m: Machine, mm: Mm, addr: number): number => readBack(m, mm, addr);

describe('MADV_COLLAPSE on random PMD contents', () => {
  it('succeeds exactly when the rule says so, and keeps every page', () => {
    fc.assert(
      fc.property(
        // Draw which kinds may appear first, so all-none and pin-free PMDs are common too.
        fc
          .subarray(KINDS, { minLength: 1 })
          .chain((allowed) =>
            fc.array(fc.constantFrom(...allowed), { minLength: 512, maxLength: 512 }),
          ),
        fc.constantFrom('linux-6.18', 'linux-7.2') as fc.Arbitrary<'linux-6.18' | 'linux-7.2'>,
        (kinds, profile) => {
          const m = new Machine({
            profile,
            ramBytes: 128 * MiB,
            swapBytes: 16 * MiB,
            strictLocks: true,
          });
          m.sysfsWrite('enabled', 'never');
          const k = m.kernel;
          const ps = k.geo.pageSize;
          const parent = m.spawn('parent');
          const base = m.mmap(parent, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
          // Shared pages are written before the fork; everything else after, in the child.
          kinds.forEach((kind, i) => kind === 'shared' && m.access(parent, base + i * ps, true));
          const child = m.fork(parent, 'child');
          kinds.forEach((kind, i) => {
            const a = base + i * ps;
            if (kind === 'read') m.access(child, a, false);
            if (kind === 'write' || kind === 'swap' || kind === 'pinned') m.access(child, a, true);
          });
          kinds.forEach(
            (kind, i) => kind === 'swap' && m.madvise(child, base + i * ps, ps, 'pageout'),
          );
          const pinned: number[] = [];
          kinds.forEach((kind, i) => {
            if (kind !== 'pinned') return;
            const r = resolve(k, child, (base + i * ps) / ps);
            if (r.kind !== 'page') return;
            const head = k.folios.headOf(r.pfn);
            k.folios.pincount[head]++;
            k.folios.refcount[head]++;
            pinned.push(head);
          });
          m.checkInvariants();
          const before = kinds.map((_, i) => pageValue(m, child, base + i * ps));
          const anyTable = kinds.some((kind) => kind !== 'none');
          // Only written pages give the VMA an anon_vma; without one the VMA is not eligible.
          const anonVma = kinds.some((kind) => kind !== 'none' && kind !== 'read');
          const r = m.collapse(child, base, 2 * MiB);
          const expected = !anyTable || !anonVma ? 'EINVAL' : pinned.length ? 'EAGAIN' : 0;
          expect(r.errno).toBe(expected);
          const huge = m.smaps(child)[0].AnonHugePages;
          expect(huge).toBe(expected === 0 ? 2048 : 0);
          const after = kinds.map((_, i) => pageValue(m, child, base + i * ps));
          expect(after).toEqual(before);
          for (const head of pinned) {
            k.folios.pincount[head]--;
            k.folios.refcount[head]--;
          }
          m.checkInvariants();
        },
      ),
      { numRuns: 80 },
    );
  });
});
