// collapse_anon_pmd of the rounds design: cut one table's usable-PTE bitmap into candidate
// windows and run them in rounds (at most COLLAPSE_BATCH_BYTES in flight), feeding each
// candidate's result back into selection. Entered without the mmap lock.

import type { Kernel } from '../../mm/kernel.ts';
import type { Step } from '../../mm/step.ts';
import type { Mm } from '../../mm/vma.ts';
import type { CollapseControl } from '../control.ts';
import { maxPtesNoneV19 } from '../mthp/thresholds.ts';
import type { PmdScan } from '../scan-pmd.ts';
import type { ScanResult } from '../scan-result.ts';
import { COLLAPSE_BATCH_BYTES, COLLAPSE_MIN_MTHP_ORDER, RoundPool } from './candidate.ts';
import { collapseRound } from './round.ts';
import { RoundsSelection } from './select.ts';

const pools = new WeakMap<Kernel, RoundPool>();

/** COLLAPSE_MAX_CANDIDATES: the byte cap at the smallest order, at most a table's windows. */
function maxCandidates(k: Kernel): number {
  const g = k.geo;
  return Math.max(
    1,
    Math.min(
      COLLAPSE_BATCH_BYTES / (g.pageSize << COLLAPSE_MIN_MTHP_ORDER),
      g.ptrsPerPte >> COLLAPSE_MIN_MTHP_ORDER,
    ),
  );
}

/** collapse_batch_full: an empty round takes whatever it is offered. */
function batchFull(
  k: Kernel,
  pool: RoundPool,
  slots: number,
  bytes: number,
  order: number,
): boolean {
  if (!pool.candidates.length) return false;
  return (
    pool.candidates.length >= maxCandidates(k) ||
    slots + (1 << order) > k.geo.ptrsPerPte ||
    bytes + (k.geo.pageSize << order) > COLLAPSE_BATCH_BYTES
  );
}

/**
 * The rounds design's collapse of the PMD range at pmdVpn after a successful scan: `enabled`
 * the orders in play, cc.bits the usable PTEs of [scan.lo, scan.hi).
 */
export function* collapseAnonPmdRounds(
  k: Kernel,
  mm: Mm,
  pmdVpn: number,
  scan: PmdScan,
  enabled: number,
  cc: CollapseControl,
): Step<ScanResult> {
  const g = k.geo;
  const nr = g.ptrsPerPte;
  let pool = pools.get(k);
  if (!pool) pools.set(k, (pool = new RoundPool(nr)));
  const t = {
    sysfs: k.settings.khugepaged.maxPtesNone,
    nr,
    pmdOrder: g.pmdOrder,
    uffd: false,
    madvise: !cc.isKhugepaged,
  };
  const sel = new RoundsSelection({
    bits: cc.bits!,
    orders: enabled,
    pmdOrder: g.pmdOrder,
    start: scan.lo,
    end: scan.hi,
    unmapped: scan.unmapped,
    maxPtesNone: (order) => maxPtesNoneV19(t, order),
  });
  let pending = false;
  let slots = 0;
  let bytes = 0;
  for (;;) {
    if (!pending) pending = sel.next();
    if (!pending || batchFull(k, pool, slots, bytes, sel.outOrder)) {
      if (!pool.candidates.length) break;
      yield* collapseRound(k, mm, pmdVpn, cc, pool);
      let cont = true;
      for (const c of pool.candidates) {
        k.trace('thpsim_mthp_attempt', { mm: mm.id, vpn: c.vpn, order: c.order, result: c.result });
        if (!sel.classify(c.vpn - pmdVpn, c.order, c.result)) {
          cont = false;
          break;
        }
      }
      pool.candidates.length = 0;
      slots = 0;
      bytes = 0;
      if (!cont) break;
      continue;
    }
    pool.add(pmdVpn + sel.outOffset, sel.outOrder, sel.outReclaim, slots);
    slots += 1 << sel.outOrder;
    bytes += g.pageSize << sel.outOrder;
    pending = false;
  }
  return sel.result();
}
