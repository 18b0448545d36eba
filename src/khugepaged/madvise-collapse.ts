// madvise_collapse (MADV_COLLAPSE): collapse every PMD range of [start, end) synchronously,
// ignoring the sysfs modes and the max_ptes_* limits, going on past the soft failures.

import type { Kernel } from '../mm/kernel.ts';
import { L_MMAP_READ, type Step, lock, unlock } from '../mm/step.ts';
import { thpVmaAllowableOrder } from '../mm/thp-orders.ts';
import type { Mm } from '../mm/vma.ts';
import { newCollapseControl } from './control.ts';
import { hugepageVmaRevalidate } from './revalidate.ts';
import {
  type CollapseErrno,
  madviseCollapseContinues,
  madviseCollapseErrno,
  type ScanResult,
} from './scan-result.ts';
import { collapseSinglePmd } from './single-pmd.ts';

export interface MadviseCollapseResult {
  errno: 0 | CollapseErrno;
  /** One entry per PMD range tried, in order. */
  pmds: Array<{ vpn: number; result: ScanResult }>;
}

/** Entered with the mmap read lock held (by madvise), left with it held. */
export function* madviseCollapse(
  k: Kernel,
  mm: Mm,
  start: number,
  end: number,
): Step<MadviseCollapseResult> {
  const out: MadviseCollapseResult = { errno: 0, pmds: [] };
  const first = mm.findVma(start);
  if (!first || !thpVmaAllowableOrder(k, first, 'forced_collapse', k.geo.pmdOrder)) {
    out.errno = 'EINVAL';
    return out;
  }
  const cc = newCollapseControl(false);
  const nr = k.geo.ptrsPerPte;
  const hstart = Math.ceil(start / nr) * nr;
  let hend = Math.floor(end / nr) * nr;
  const wanted = (hend - hstart) / nr;
  let thps = 0;
  let lastFail: ScanResult = 'SCAN_FAIL';
  let locked = true;
  for (let addr = hstart; addr < hend; addr += nr) {
    let result: ScanResult;
    if (!locked) {
      yield lock(L_MMAP_READ, mm.id);
      locked = true;
      const rv = hugepageVmaRevalidate(k, mm, addr, false, cc);
      if (rv.result !== 'SCAN_SUCCEED') {
        result = rv.result;
        out.pmds.push({ vpn: addr, result });
        lastFail = result;
        break;
      }
      hend = Math.min(hend, Math.floor(rv.vma!.end / nr) * nr);
    }
    const vma = mm.findVma(addr);
    if (!vma) {
      result = 'SCAN_VMA_NULL';
    } else {
      const r = yield* collapseSinglePmd(k, mm, vma, addr, cc);
      result = r.result;
      if (r.lockDropped) locked = false;
    }
    out.pmds.push({ vpn: addr, result });
    if (result === 'SCAN_SUCCEED' || result === 'SCAN_PMD_MAPPED') {
      thps++;
      continue;
    }
    lastFail = result;
    if (!madviseCollapseContinues(k.profile, result)) break;
  }
  if (!locked) yield lock(L_MMAP_READ, mm.id);
  out.errno = thps === wanted ? 0 : madviseCollapseErrno(lastFail);
  return out;
}

/** madvise(MADV_COLLAPSE) over [start, end): madvise_walk_vmas calling madvise_collapse per VMA. */
export function* doMadviseCollapse(
  k: Kernel,
  mm: Mm,
  start: number,
  end: number,
): Step<MadviseCollapseResult> {
  const out: MadviseCollapseResult = { errno: 0, pmds: [] };
  yield lock(L_MMAP_READ, mm.id);
  let at = start;
  let hole = false;
  for (const vma of mm.vmasIn(start, end)) {
    if (vma.start > at) hole = true;
    const r: MadviseCollapseResult = yield* madviseCollapse(
      k,
      mm,
      Math.max(start, vma.start),
      Math.min(end, vma.end),
    );
    out.pmds.push(...r.pmds);
    at = vma.end;
    if (r.errno !== 0) {
      out.errno = r.errno;
      break;
    }
  }
  yield unlock(L_MMAP_READ, mm.id);
  if (out.errno === 0 && (hole || at < end)) out.errno = 'ENOMEM' as CollapseErrno;
  return out;
}
