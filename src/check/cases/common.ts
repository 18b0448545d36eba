// Worlds the checker cases share: one process whose PMD range holds two VMAs (A below, B above,
// each with its own anon_vma) or one VMA spanning it, with some pages written as base pages.

import { newCollapseControl } from '../../khugepaged/control.ts';
import { collapseHugePage } from '../../khugepaged/collapse-anon.ts';
import type { CollapsePolicy } from '../../khugepaged/mthp/thresholds.ts';
import type { KernelBug } from '../../mm/kernel.ts';
import type { Step } from '../../mm/step.ts';
import { doMadvise } from '../../mm/madvise.ts';
import { Machine } from '../../sim/machine.ts';
import { doMunmap } from '../../mm/mmap.ts';
import { migrateFolio } from '../../walkers/rmap-walk.ts';
import type { ThreadSpec } from '../explore.ts';
import { gupWrite } from '../gup-user.ts';
import { translate } from '../properties.ts';
import { type CheckWorld, newWorld, tlbUserWrite } from '../world.ts';

export const PAGE = 4096;
const MiB = 1 << 20;

export interface WorldOptions {
  policy?: CollapsePolicy;
  bugs?: readonly KernelBug[];
  /** Two VMAs sharing the PMD range (A: first half, B: second half), or one spanning it. */
  shared: boolean;
  /** Page indices (from the PMD range's start) written before the threads start. */
  written: readonly number[];
  /** x86-64 flushes TLBs with IPIs; arm64 broadcasts (no IPI to wait for). */
  geometry?: 'x86-64-4k' | 'arm64-4k';
  /** Also enable the PMD size for khugepaged. */
  pmd?: boolean;
  /** Fault the written pages with THP enabled (a PMD-mapped THP when the VMA spans the PMD). */
  thp?: boolean;
}

/**
 * The world: mm "p"; VMA "A" (and "B" above it when shared) in one PMD-aligned 2 MiB range, the
 * given pages written while only base pages are allowed, then 64K mTHPs enabled for khugepaged.
 * pfns[`page<i>`] is the page at index i.
 */
export function pmdWorld(o: WorldOptions): CheckWorld {
  const m = new Machine({
    ramBytes: 8 * MiB,
    strictLocks: true,
    geometry: o.geometry ?? 'x86-64-4k',
    collapsePolicy: o.policy ?? 'v19',
  });
  m.sysfsWrite('enabled', o.thp ? 'always' : 'never');
  const mm = m.spawn('p');
  const base = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
  if (o.shared) m.madvise(mm, base + MiB, MiB, 'nohugepage');
  for (const i of o.written) m.touch(mm, base + i * PAGE, PAGE, true);
  if (o.thp) m.sysfsWrite('enabled', 'never');
  m.sysfsWrite('hugepages-64kB/enabled', 'always');
  if (o.pmd) m.sysfsWrite('hugepages-2048kB/enabled', 'always');
  const w = newWorld(m);
  w.mms.p = mm;
  w.vmas.A = mm.vmas[0];
  if (o.shared) w.vmas.B = mm.vmas[1];
  for (const b of o.bugs ?? []) w.k.bugs.add(b);
  const vpn0 = base / PAGE;
  for (const i of o.written) {
    w.pfns[`page${i}`] = translate(w.k, mm.id, vpn0 + i);
    // A's pages must still hold what the setup wrote (B's may be discarded by MADV_DONTNEED).
    if (i < 256 || !o.shared)
      w.expected.set(`${mm.id}:${vpn0 + i}`, w.k.folios.data[w.pfns[`page${i}`]]);
  }
  return w;
}

/** The first page of the PMD range. */
export function vpnBase(w: CheckWorld): number {
  return w.vmas.A.start;
}

/** khugepaged's collapse_huge_page of the 2^order pages at page index `at` (the scan passed). */
export function* khugepagedCollapse(w: CheckWorld, at: number, order: number): Step<unknown> {
  const cc = newCollapseControl(true);
  return yield collapseHugePage(w.k, w.mms.p, vpnBase(w) + at, order, 1 << order, 0, cc);
}

/** A write to an unpopulated page of B: the fault runs under B's VMA lock only. */
export const FAULT_B: ThreadSpec = {
  name: 'fault in B',
  vma: 'B',
  run: (w, cpu) => tlbUserWrite(w, cpu, w.mms.p, vpnBase(w) + 300),
};

/** Migration of B's first page: two rmap walks under B's anon_vma, no mmap or VMA lock. */
export const MIGRATE_B: ThreadSpec = {
  name: "migrate B's folio",
  run: (w) => migrateFolio(w.k, w.pfns.page256),
};

/** MADV_DONTNEED of B's written pages (B's own lock only); the faulting page stays out of it. */
export const DONTNEED_B: ThreadSpec = {
  name: 'MADV_DONTNEED on B',
  vma: 'B',
  run: (w) => doMadvise(w.k, w.mms.p, vpnBase(w) + 256, vpnBase(w) + 288, 'dontneed'),
};

/** Two writes to A[5]: the first caches the translation, the second may use it. */
export const USER_A: ThreadSpec = {
  name: 'user writes A[5] twice',
  run: function* (w, cpu) {
    yield* tlbUserWrite(w, cpu, w.mms.p, vpnBase(w) + 5);
    yield* tlbUserWrite(w, cpu, w.mms.p, vpnBase(w) + 5);
  },
};

/** A GUP-fast pin of A[3] and a write through it (no mmap or VMA lock). */
export const GUP_A: ThreadSpec = {
  name: 'GUP-fast pin of A[3], write through the pin',
  run: (w, cpu) => gupWrite(w, cpu, w.mms.p, vpnBase(w) + 3),
};

/** munmap of the whole of A under the mmap write lock. */
export const MUNMAP_A: ThreadSpec = {
  name: 'munmap A',
  vma: 'A',
  run: (w) => doMunmap(w.k, w.mms.p, w.vmas.A.start, w.vmas.A.end),
};
