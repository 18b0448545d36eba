// R3, CVE-2012-1179: a walker under the mmap read lock (mincore, pagemap) meets a PMD that a THP
// fault, also under the read lock, has just made huge. pmd_none_or_clear_bad took it for a bad
// entry and cleared it, throwing away the THP's mapping; pmd_trans_unstable leaves it alone.

import type { KernelBug } from '../../mm/kernel.ts';
import { mincoreWalk } from '../../walkers/mincore.ts';
import type { CheckCase, ThreadSpec } from '../explore.ts';
import { entryAccess, inside, stepWhile } from '../windows.ts';
import { tlbUserWrite } from '../world.ts';
import { pmdWorld, vpnBase } from './common.ts';

const fault: ThreadSpec = {
  name: 'THP fault in A',
  vma: 'A',
  run: (w, cpu) => tlbUserWrite(w, cpu, w.mms.p, vpnBase(w) + 7),
};
const walker: ThreadSpec = {
  name: 'mincore walk of A',
  vma: 'A',
  run: (w) => mincoreWalk(w.k, w.mms.p, vpnBase(w), vpnBase(w) + 512),
};

function r3(id: string, title: string, bugs: KernelBug[], expect: CheckCase['expect']): CheckCase {
  return {
    id,
    title: `R3 THP fault vs a read-locked walker: ${title}`,
    description:
      'An empty PMD range with THP enabled: a write fault maps a PMD THP while mincore walks the range under the mmap read lock.',
    setup: () => {
      const w = pmdWorld({ shared: false, bugs, written: [] });
      w.m.sysfsWrite('enabled', 'always');
      return w;
    },
    threads: [fault, walker],
    ...(expect === 'verified'
      ? {
          own: [
            stepWhile(
              'walk-while-thp-fault',
              "mincore read A's PMD while the THP fault was in handle_mm_fault",
              1,
              inside(0, 'handle_mm_fault'),
              entryAccess('pmd', 'read'),
            ),
          ],
        }
      : {}),
    maxPreemptions: 2,
    expect,
    rules: [7],
  };
}

export const R3_KERNEL = r3('R3-kernel', 'pmd_trans_unstable', [], 'verified');
export const R3_CLEAR_BAD = r3(
  'R3-clear-bad',
  'pmd_none_or_clear_bad',
  ['pmd-clear-bad'],
  ['lost-write', 'quiescence', 'table-lifetime', 'crash'],
);
export const R3_CASES = [R3_KERNEL, R3_CLEAR_BAD];
