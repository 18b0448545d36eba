// A kernel user of get_user_pages_fast (O_DIRECT, io_uring): pin the page, write into it through
// the pin, unpin. If GUP-fast falls back, the slow path is modelled as a plain user write.

import { folioRefFrozen } from '../mm/folio-ref-freeze.ts';
import { NO_PFN } from '../mm/kernel.ts';
import { S_FOLIO, type Step, writeShared } from '../mm/step.ts';
import type { Mm } from '../mm/vma.ts';
import { gupFast } from '../walkers/gup-fast.ts';
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
