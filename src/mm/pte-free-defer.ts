// pte_free_defer: free a PTE table detached from the tree only after an RCU grace period, so
// that lockless walkers (GUP-fast, pte_offset_map under RCU) still inside it finish first.

import type { Kernel } from './kernel.ts';
import { type Step, rcuGracePeriod } from './step.ts';

export function* pteFreeDefer(k: Kernel, pteT: number): Step<void> {
  yield rcuGracePeriod();
  k.pt.pte.free(pteT);
}
