// The collapse explainer's replay: the model's own order walk (ForwardWalk or StackWalk) run again
// on the bitmap a scan recorded (thpsim_mthp_bitmap), with a bitmap that records every density
// test the walk makes, fed the attempt results the trace recorded (thpsim_mthp_attempt). Each
// density test and each attempt becomes one step. Browser-safe: the viewer bundles it.

import { PteBitmap } from '../khugepaged/mthp/bitmap.ts';
import {
  ForwardWalk,
  type OrderWalk,
  StackWalk,
  type WalkInput,
  softCollapseFailure,
} from '../khugepaged/mthp/order-walk.ts';
import {
  type CollapsePolicy,
  type ThresholdInput,
  maxPtesNoneFor,
  policyUsesStack,
} from '../khugepaged/mthp/thresholds.ts';
import type { ScanResult } from '../khugepaged/scan-result.ts';
import { type PmdExplain, bitmapWords } from './model.ts';

export type ExplainStep =
  | {
      kind: 'test';
      offset: number;
      order: number;
      /** Occupied PTEs in the region (plus swap PTEs at PMD order), and the number needed. */
      count: number;
      need: number;
      dense: boolean;
    }
  | {
      kind: 'attempt';
      offset: number;
      order: number;
      result: string;
      outcome: 'success' | 'soft' | 'hard' | 'done';
    };

export interface Replay {
  steps: ExplainStep[];
  /** Folios the successful attempts made: [offset, order]. */
  folios: Array<[number, number]>;
  result: string;
  /** The walk asked for an attempt the trace does not have, or the other way round. */
  diverged: string | null;
  /** Density judged per 4-PTE chunk (v4..v10): the density tests are not shown one by one. */
  chunked: boolean;
}

/** A PteBitmap that records the counts asked of it while `on`. */
class RecordingBitmap extends PteBitmap {
  on = false;
  readonly calls: Array<{ start: number; n: number; count: number }> = [];
  override count(start: number, n: number): number {
    const c = super.count(start, n);
    if (this.on) this.calls.push({ start, n, count: c });
    return c;
  }
}

export function replayExplain(x: PmdExplain): Replay {
  const policy = x.policy as CollapsePolicy;
  const bits = new RecordingBitmap(x.nr);
  bits.words.set(bitmapWords(x.bits).subarray(0, bits.words.length));
  const t: ThresholdInput = {
    sysfs: x.maxPtesNone,
    nr: x.nr,
    pmdOrder: x.pmdOrder,
    uffd: false,
    madvise: x.madvise,
  };
  const threshold = maxPtesNoneFor(policy);
  const chunked = policy === 'v10-scaled';
  const input: WalkInput = {
    bits,
    nr: x.nr,
    pmdOrder: x.pmdOrder,
    enabled: x.enabled,
    maxPtesNone: (o) => threshold(t, o),
    unmapped: x.unmapped,
    chunked,
    lo: x.lo,
    hi: x.hi,
  };
  const walk: OrderWalk = policyUsesStack(policy) ? new StackWalk(input) : new ForwardWalk(input);
  const steps: ExplainStep[] = [];
  const folios: Array<[number, number]> = [];
  let diverged: string | null = null;
  let i = 0;
  const flushTests = () => {
    for (const c of bits.calls) {
      const order = Math.log2(c.n);
      const count = c.count + (order === x.pmdOrder ? x.unmapped : 0);
      const need = (1 << order) - threshold(t, order);
      steps.push({ kind: 'test', offset: c.start, order, count, need, dense: count >= need });
    }
    bits.calls.length = 0;
  };
  for (let guard = 0; guard < 4 * x.nr + 64; guard++) {
    bits.on = true;
    const more = walk.next();
    bits.on = false;
    flushTests();
    if (!more) break;
    const a = x.attempts[i];
    if (!a || a.offset !== walk.offset || a.order !== walk.order) {
      diverged = a
        ? `the walk chose order ${walk.order} at ${walk.offset}, the trace has order ${a.order} at ${a.offset}`
        : `the walk chose order ${walk.order} at ${walk.offset}, the trace has no more attempts`;
      break;
    }
    i++;
    const r = a.result as ScanResult;
    const outcome =
      r === 'SCAN_SUCCEED'
        ? 'success'
        : r === 'SCAN_PTE_MAPPED_HUGEPAGE'
          ? 'done'
          : softCollapseFailure(r)
            ? 'soft'
            : 'hard';
    steps.push({ kind: 'attempt', offset: a.offset, order: a.order, result: a.result, outcome });
    if (outcome === 'success') folios.push([a.offset, a.order]);
    walk.report(r);
  }
  if (!diverged && i < x.attempts.length)
    diverged = `the trace has ${x.attempts.length - i} attempt(s) the walk did not choose`;
  return { steps, folios, result: walk.outcome().result, diverged, chunked };
}
