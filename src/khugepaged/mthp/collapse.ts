// mthp_collapse: after a successful scan of a PMD range with orders below PMD enabled, walk the
// occupancy bitmap and collapse each chosen region at its order (khugepaged.md §2.4).

import type { Kernel } from '../../mm/kernel.ts';
import type { Step } from '../../mm/step.ts';
import type { Mm } from '../../mm/vma.ts';
import { collapseHugePage } from '../collapse-anon.ts';
import type { CollapseControl } from '../control.ts';
import type { PmdScan } from '../scan-pmd.ts';
import type { ScanResult } from '../scan-result.ts';
import { ForwardWalk, StackWalk, type WalkInput } from './order-walk.ts';
import {
  maxPtesNoneFor,
  mthpMaxPtesNoneUnsupported,
  policyUsesStack,
  policyWarnsUnsupported,
} from './thresholds.ts';

export function* mthpCollapse(
  k: Kernel,
  mm: Mm,
  vpn: number,
  scan: PmdScan,
  enabled: number,
  cc: CollapseControl,
): Step<ScanResult> {
  const g = k.geo;
  const t = {
    sysfs: k.settings.khugepaged.maxPtesNone,
    nr: g.ptrsPerPte,
    pmdOrder: g.pmdOrder,
    uffd: false,
    madvise: !cc.isKhugepaged,
  };
  const policy = k.collapsePolicy;
  if (
    policyWarnsUnsupported(policy) &&
    mthpMaxPtesNoneUnsupported(t) &&
    !k.khugepaged.warnedMaxPtesNone
  ) {
    // pr_warn_once: the value is not supported below PMD order and behaves as 0 there.
    k.khugepaged.warnedMaxPtesNone = true;
    k.trace('pr_warn_once', {
      msg: 'mTHP collapse does not support max_ptes_none values other than 0 or HPAGE_PMD_NR-1; using 0',
    });
  }
  const threshold = maxPtesNoneFor(policy);
  const w: WalkInput = {
    bits: cc.bits!,
    nr: g.ptrsPerPte,
    pmdOrder: g.pmdOrder,
    enabled,
    maxPtesNone: (order) => threshold(t, order),
    unmapped: scan.unmapped,
    chunked: policy === 'v10-scaled',
    lo: scan.lo,
    hi: scan.hi,
  };
  const walk = policyUsesStack(policy) ? new StackWalk(w) : new ForwardWalk(w);
  while (walk.next()) {
    const { offset, order } = walk;
    const r: ScanResult = yield* collapseHugePage(
      k,
      mm,
      vpn + offset,
      order,
      scan.referenced,
      scan.unmapped,
      cc,
    );
    k.trace('thpsim_mthp_attempt', { mm: mm.id, vpn: vpn + offset, order, result: r });
    walk.report(r);
  }
  return walk.outcome().result;
}
