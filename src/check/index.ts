// The interleaving checker: cases, the explorer and counterexample traces.

import * as collapseAnon from '../khugepaged/collapse-anon.ts';
import * as fault from '../mm/fault.ts';
import * as madvise from '../mm/madvise.ts';
import * as pagewalk from '../mm/pagewalk.ts';
import * as vmaOps from '../mm/vma-ops.ts';
import * as mmap from '../mm/mmap.ts';
import * as zap from '../mm/zap.ts';
import * as gup from '../walkers/gup-fast.ts';
import * as rmapWalk from '../walkers/rmap-walk.ts';
import * as world from './world.ts';
import { registerSteps } from './names.ts';

for (const mod of [collapseAnon, fault, madvise, pagewalk, vmaOps, mmap, zap, gup, rmapWalk, world])
  registerSteps(mod as Record<string, unknown>);

export { explore, type CheckCase, type CheckReport, type ExploreOptions } from './explore.ts';
export { PROPERTIES, PROPERTY_TEXT, type PropertyName } from './properties.ts';
export { checkTrace, formatTrace } from './trace.ts';
export type { CheckTrace } from '../report/model.ts';
