// A kernel user of get_user_pages_fast (O_DIRECT, io_uring): pin the page, write into it through
// the pin, unpin. If GUP-fast falls back, the slow path is modelled as a plain user write. And
// a user of get_user_pages, which pins under the mmap read lock.

import { folioRefFrozen } from '../mm/folio-ref-freeze.ts';
import { NO_PFN } from '../mm/kernel.ts';
import { S_FOLIO, type Step, writeShared } from '../mm/step.ts';
import type { Mm } from '../mm/vma.ts';
import { gupFast } from '../walkers/gup-fast.ts';
import { gupSlow } from '../walkers/gup-slow.ts';
import { type CheckWorld, tlbUserWrite } from './world.ts';

export function* gupWrite(w: CheckWorld, cpu: number, mm: Mm, vpn: number): Step<void> {
  const k = w.k;
  const pfn = (yield gupFast(k, mm, vpn, true)) as number;
  if (pfn === NO_PFN) {
    yield* tlbUserWrite(w, cpu, mm, vpn);
    return;
  }
  const head = k.folios.headOf(pfn);
  // The device writes into the pinned page, then the pin goes.
  yield writeShared(S_FOLIO, head);
  if (k.folios.refcount[head] === 0 && !folioRefFrozen(k.folios, head))
    w.found.push({
      property: 'table-lifetime',
      message: `GUP user writes pfn ${pfn}, which is free`,
    });
  const t = k.freshData();
  k.folios.data[pfn] = t;
  w.expected.set(`${mm.id}:${vpn}`, t);
  yield writeShared(S_FOLIO, head);
  k.folioPut(head);
}

/**
 * A kernel user of get_user_pages (a driver pinning for write): pin, write through the pin,
 * unpin. Without the page (the fault failed) nothing is written.
 */
export function* gupSlowWrite(w: CheckWorld, mm: Mm, vpn: number): Step<void> {
  const k = w.k;
  const pfn = (yield gupSlow(k, mm, vpn, true)) as number;
  if (pfn === NO_PFN) return;
  const head = k.folios.headOf(pfn);
  yield writeShared(S_FOLIO, head);
  if (k.folios.refcount[head] === 0)
    w.found.push({
      property: 'table-lifetime',
      message: `GUP user writes pfn ${pfn}, which is free`,
    });
  const t = k.freshData();
  k.folios.data[pfn] = t;
  w.expected.set(`${mm.id}:${vpn}`, t);
  k.folioPut(head);
}
