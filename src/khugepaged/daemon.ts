// The khugepaged thread on the simulated clock: khugepaged_do_scan passes over the registered mms
// (collapse_scan_mm_slot) within the pages_to_scan budget, scan_sleep_millisecs between passes,
// alloc_sleep_millisecs after an allocation failure, and the second failure ending a pass.

import type { Kernel } from '../mm/kernel.ts';
import { L_MMAP_READ, type Step, trylock, unlock } from '../mm/step.ts';
import { collapsePossibleOrders, newCollapseControl, type CollapseControl } from './control.ts';
import { khugepagedHasWork } from './enter.ts';
import type { ScanResult } from './scan-result.ts';
import { collapseSinglePmd } from './single-pmd.ts';
import { policyReachesSubPmd } from './mthp/thresholds.ts';

/** Forget an mm that exited or lost THP (the slot is freed when the cursor passes it). */
function collectMmSlot(k: Kernel, id: number): void {
  const i = k.khugepagedSlots.indexOf(id);
  if (i >= 0) k.khugepagedSlots.splice(i, 1);
  const mm = k.mms.get(id);
  if (mm) mm.khugepagedRegistered = false;
}

/** Move the cursor to the slot after `id`; wrapping past the end completes a full scan. */
function advanceCursor(k: Kernel, id: number, drop: boolean): void {
  const slots = k.khugepagedSlots;
  const i = slots.indexOf(id);
  const next = i >= 0 && i + 1 < slots.length ? slots[i + 1] : -1;
  if (drop) collectMmSlot(k, id);
  k.khugepaged.cursorMm = next;
  k.khugepaged.cursorAddress = 0;
  if (next === -1) k.khugepaged.fullScans++;
}

/** collapse_scan_mm_slot: scan from the cursor until the budget is spent or the lock dropped. */
export function* scanMmSlot(
  k: Kernel,
  budget: number,
  cc: CollapseControl,
): Step<{ progress: number; result: ScanResult }> {
  const kh = k.khugepaged;
  let result: ScanResult = 'SCAN_SUCCEED';
  if (kh.cursorMm === -1 || !k.khugepagedSlots.includes(kh.cursorMm)) {
    kh.cursorMm = k.khugepagedSlots[0];
    kh.cursorAddress = 0;
  }
  const id = kh.cursorMm;
  const mm = k.mms.get(id);
  let progress = 0;
  let finished = true; // no VMA left to scan in this mm
  const gone = () => !mm || mm.exiting || mm.thpDisable === 'all';
  if (mm && (yield trylock(L_MMAP_READ, mm.id))) {
    let locked = true;
    progress++;
    if (!gone()) {
      const nr = k.geo.ptrsPerPte;
      outer: for (const vma of [...mm.vmas]) {
        if (vma.end <= kh.cursorAddress) continue;
        if (gone()) {
          progress++;
          break;
        }
        const orders = collapsePossibleOrders(k, vma, cc);
        if (!orders) {
          progress++;
          continue;
        }
        // pte-level and rounds collapse also reach the parts of PMD ranges a VMA covers only in part.
        const partial =
          policyReachesSubPmd(k.collapsePolicy) && (orders & ((1 << k.geo.pmdOrder) - 1)) !== 0;
        const hstart = partial ? vma.start : Math.ceil(vma.start / nr) * nr;
        const hend = partial ? vma.end : Math.floor(vma.end / nr) * nr;
        if (kh.cursorAddress > hend || hstart >= hend) {
          progress++;
          continue;
        }
        if (kh.cursorAddress < hstart) kh.cursorAddress = hstart;
        while (kh.cursorAddress < hend) {
          if (gone()) break outer;
          const base = Math.floor(kh.cursorAddress / nr) * nr;
          const end = Math.min(base + nr, hend);
          const lo = kh.cursorAddress - base;
          const r = yield* collapseSinglePmd(k, mm, vma, base, cc, lo, end - base);
          result = r.result;
          progress += r.progress;
          if (r.result === 'SCAN_SUCCEED') kh.pagesCollapsed++;
          kh.cursorAddress = end;
          if (r.lockDropped) {
            locked = false; // collapse_single_pmd let go of it
            finished = false;
            break outer;
          }
          if (progress >= budget) {
            finished = false;
            break outer;
          }
        }
      }
    }
    if (locked) yield unlock(L_MMAP_READ, mm.id);
  }
  if (gone() || finished) advanceCursor(k, id, gone());
  return { progress, result };
}

/** One wake-up of the thread: run (or resume) a khugepaged_do_scan pass. */
function* doScan(k: Kernel): Step<void> {
  const kh = k.khugepaged;
  const s = k.settings.khugepaged;
  const budget = s.pagesToScan;
  const pass = kh.pass ?? { progress: 0, passThroughHead: 0, waitAllowed: true };
  kh.pass = null;
  const cc = newCollapseControl(true);
  for (;;) {
    if (kh.cursorMm === -1) pass.passThroughHead++;
    let result: ScanResult = 'SCAN_SUCCEED';
    if (k.khugepagedSlots.length > 0 && khugepagedHasWork(k) && pass.passThroughHead < 2) {
      const r = yield* scanMmSlot(k, budget - pass.progress, cc);
      pass.progress += r.progress;
      result = r.result;
    } else pass.progress = budget;
    if (pass.progress >= budget) break;
    if (result === 'SCAN_ALLOC_HUGE_PAGE_FAIL') {
      if (!pass.waitAllowed) break;
      pass.waitAllowed = false;
      // Sleep alloc_sleep_millisecs, then go on with this pass.
      kh.pass = pass;
      kh.wakeAt = k.clockMs + s.allocSleepMillisecs;
      return;
    }
  }
  // khugepaged_wait_work
  kh.wakeAt =
    k.khugepagedSlots.length > 0 && khugepagedHasWork(k)
      ? k.clockMs + s.scanSleepMillisecs
      : Infinity;
}

/** Run the thread for every wake-up due up to `untilMs`, moving the clock; leaves it at untilMs. */
export function khugepagedRunUntil(k: Kernel, untilMs: number, onPass?: () => void): void {
  const kh = k.khugepaged;
  while (kh.wakeAt <= untilMs) {
    k.clockMs = Math.max(k.clockMs, kh.wakeAt);
    const before = kh.wakeAt;
    k.run(doScan(k));
    onPass?.();
    // Guard against a zero sleep spinning at one instant with nothing to do.
    if (kh.wakeAt <= before && kh.pass === null && k.settings.khugepaged.scanSleepMillisecs === 0)
      kh.wakeAt = before + 1;
  }
  k.clockMs = Math.max(k.clockMs, untilMs);
}

/**
 * A write to scan_sleep_millisecs or alloc_sleep_millisecs expires the current sleep and wakes
 * the thread (the store functions zero khugepaged_sleep_expire): it scans again right away.
 */
export function khugepagedSleepChanged(k: Kernel): void {
  const kh = k.khugepaged;
  if (kh.wakeAt !== Infinity) kh.wakeAt = k.clockMs;
}

/** After sysfs enables THP, a waiting thread finds work again (start_stop_khugepaged). */
export function khugepagedSettingsChanged(k: Kernel): void {
  const kh = k.khugepaged;
  if (kh.wakeAt === Infinity && k.khugepagedSlots.length > 0 && khugepagedHasWork(k))
    kh.wakeAt = k.clockMs;
}
