// memcg accounting under random operations: memory.current always equals the pages charged to
// the cgroup (counted page by page), never exceeds memory.max, and every charged page is a page
// some process of the cgroup maps or the swap cache holds.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memcgGroups, memcgRecount } from '../src/mm/memcg.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';

const MiB = 1024 * 1024;

type Op =
  | { op: 'write'; vma: number; at: number; pages: number }
  | { op: 'dontneed'; vma: number; at: number; pages: number }
  | { op: 'fork' }
  | { op: 'exitChild' }
  | { op: 'collapse'; vma: number }
  | { op: 'sleep' }
  | { op: 'mthp'; size: '16kB' | '64kB' | '2048kB' | 'off' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('write' as const),
    vma: fc.nat(1),
    at: fc.nat(1023),
    pages: fc.integer({ min: 1, max: 300 }),
  }),
  fc.record({
    op: fc.constant('dontneed' as const),
    vma: fc.nat(1),
    at: fc.nat(1023),
    pages: fc.integer({ min: 1, max: 300 }),
  }),
  fc.constant({ op: 'fork' as const }),
  fc.constant({ op: 'exitChild' as const }),
  fc.record({ op: fc.constant('collapse' as const), vma: fc.nat(1) }),
  fc.constant({ op: 'sleep' as const }),
  fc.record({
    op: fc.constant('mthp' as const),
    size: fc.constantFrom('16kB' as const, '64kB' as const, '2048kB' as const, 'off' as const),
  }),
);

describe('memcg accounting', () => {
  it('memory.current is the pages charged, never above memory.max', () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom('always', 'madvise', 'never'),
        fc.constantFrom('0', '256', '511'),
        (ops, limitMiB, enabled, maxNone) => {
          const m = new Machine({ ramBytes: 64 * MiB, strictLocks: true, seed: 3 });
          m.sysfsWrite('enabled', enabled);
          m.sysfsWrite('khugepaged/max_ptes_none', maxNone);
          m.sysfsWrite('khugepaged/scan_sleep_millisecs', '10');
          const parent = m.spawn('app');
          m.memoryMax(parent, limitMiB * MiB);
          const vmas = [0, 1].map(() =>
            m.mmap(parent, { lengthBytes: 4 * MiB, alignBytes: 2 * MiB }),
          );
          const procs: Mm[] = [parent];
          for (const o of ops) {
            const mm = procs[procs.length - 1];
            switch (o.op) {
              case 'write':
                m.touch(mm, vmas[o.vma] + o.at * 4096, Math.min(o.pages, 1024 - o.at) * 4096, true);
                break;
              case 'dontneed':
                m.madvise(
                  mm,
                  vmas[o.vma] + o.at * 4096,
                  Math.min(o.pages, 1024 - o.at) * 4096,
                  'dontneed',
                );
                break;
              case 'fork':
                if (procs.length < 3) procs.push(m.fork(mm, `kid${procs.length}`));
                break;
              case 'exitChild':
                if (procs.length > 1) m.exit(procs.pop()!);
                break;
              case 'collapse':
                m.collapse(mm, vmas[o.vma], 4 * MiB);
                break;
              case 'sleep':
                m.advance(50);
                break;
              case 'mthp':
                for (const s of ['16kB', '64kB'])
                  m.sysfsWrite(`hugepages-${s}/enabled`, s === o.size ? 'always' : 'never');
                m.sysfsWrite('enabled', o.size === '2048kB' ? 'always' : enabled);
                break;
            }
            m.checkInvariants();
            const g = memcgGroups(m.kernel)[0];
            expect(memcgRecount(m.kernel)).toEqual([g.usage]);
            expect(g.usage).toBeLessThanOrEqual(g.maxPages);
          }
          for (const mm of procs.reverse()) m.exit(mm);
          expect(memcgRecount(m.kernel)).toEqual([0]);
          expect(memcgGroups(m.kernel)[0].usage).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);
});
