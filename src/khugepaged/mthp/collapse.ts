// mthp_collapse: after a successful scan of a PMD range with orders below PMD enabled, walk the
// occupancy bitmap and collapse each chosen region at its order (khugepaged.md §2.4).

import type { Kernel } from '../../mm/kernel.ts';
import type { Step } from '../../mm/step.ts';
import type { Mm } from '../../mm/vma.ts';
import { collapseHugePage } from '../collapse-anon.ts';
import type { CollapseControl } from '../control.ts';
import type { PmdScan } from '../scan-pmd.ts';
import type { ScanResult } from '../scan-result.ts';
import type { PteBitmap } from './bitmap.ts';
import { ForwardWalk, StackWalk, type WalkInput } from './order-walk.ts';
import {
  type CollapsePolicy,
  type ThresholdInput,
  maxPtesNoneFor,
  mthpMaxPtesNoneUnsupported,
  policyUsesStack,
  policyWarnsUnsupported,
} from './thresholds.ts';

/**
 * The order walk's input, kept on the collapse control and refilled for each PMD range: the walk
 * runs once per scanned range, and allocating its inputs each time cost more than the walk.
 */
export class MthpWalkInput implements WalkInput {
  bits: PteBitmap;
  nr = 0;
  pmdOrder = 0;
  enabled = 0;
  unmapped = 0;
  chunked = false;
  lo = 0;
  hi = 0;
  readonly t: ThresholdInput = { sysfs: 0, nr: 0, pmdOrder: 0, uffd: false, madvise: false };
  threshold: (t: ThresholdInput, order: number) => number = maxPtesNoneFor('v19');
  readonly maxPtesNone = (order: number): number => this.threshold(this.t, order);

  constructor(bits: PteBitmap) {
    this.bits = bits;
  }

  /** Fill in a PMD range's values under a policy (lo/hi: the part of the range to consider). */
  fill(
    policy: CollapsePolicy,
    bits: PteBitmap,
    nr: number,
    pmdOrder: number,
    sysfs: number,
    madvise: boolean,
    enabled: number,
    unmapped: number,
    lo: number,
    hi: number,
  ): this {
    this.bits = bits;
    this.nr = this.t.nr = nr;
    this.pmdOrder = this.t.pmdOrder = pmdOrder;
    this.t.sysfs = sysfs;
    this.t.madvise = madvise;
    this.threshold = maxPtesNoneFor(policy);
    this.chunked = policy === 'v10-scaled';
    this.enabled = enabled;
    this.unmapped = unmapped;
    this.lo = lo;
    this.hi = hi;
    return this;
  }
}

export function* mthpCollapse(
  k: Kernel,
  mm: Mm,
  vpn: number,
  scan: PmdScan,
  enabled: number,
  cc: CollapseControl,
): Step<ScanResult> {
  const g = k.geo;
  const policy = k.collapsePolicy;
  const w = (cc.walkInput ??= new MthpWalkInput(cc.bits!)).fill(
    policy,
    cc.bits!,
    g.ptrsPerPte,
    g.pmdOrder,
    k.settings.khugepaged.maxPtesNone,
    !cc.isKhugepaged,
    enabled,
    scan.unmapped,
    scan.lo,
    scan.hi,
  );
  if (
    policyWarnsUnsupported(policy) &&
    mthpMaxPtesNoneUnsupported(w.t) &&
    !k.khugepaged.warnedMaxPtesNone
  ) {
    // pr_warn_once: the value is not supported below PMD order and behaves as 0 there.
    k.khugepaged.warnedMaxPtesNone = true;
    k.trace('pr_warn_once', {
      msg: 'mTHP collapse does not support max_ptes_none values other than 0 or HPAGE_PMD_NR-1; using 0',
    });
  }
  // thpsim's view of the walk's input, for replaying the order choice (thpsim view's explainer).
  if (k.traceSink)
    k.trace('thpsim_mthp_bitmap', {
      mm: mm.id,
      vpn,
      bits: Array.from(w.bits.words, (x) => x.toString(16).padStart(8, '0')).join(''),
      enabled,
      unmapped: scan.unmapped,
      lo: scan.lo,
      hi: scan.hi,
      max_ptes_none: w.t.sysfs,
      madvise: w.t.madvise,
      policy,
    });
  // One walk per collapse control, reset for each PMD range.
  const walk = policyUsesStack(policy)
    ? (cc.stackWalk?.reset(w) ?? (cc.stackWalk = new StackWalk(w)))
    : (cc.forwardWalk?.reset(w) ?? (cc.forwardWalk = new ForwardWalk(w)));
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
  return walk.result();
}
