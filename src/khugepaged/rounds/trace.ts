// mm_collapse_candidate: one event per candidate whenever a pass decides it.

import type { Kernel } from '../../mm/kernel.ts';
import type { Candidate, CollapsePass } from './candidate.ts';

export function traceCandidate(k: Kernel, mm: number, c: Candidate, pass: CollapsePass): void {
  if (!k.traceSink) return;
  k.trace('mm_collapse_candidate', {
    mm,
    addr: c.vpn * k.geo.pageSize,
    order: c.order,
    pass,
    result: c.result,
  });
}
