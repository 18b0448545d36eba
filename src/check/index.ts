// The interleaving checker: cases, the explorer and counterexample traces.

import * as collapseAnon from '../khugepaged/collapse-anon.ts';
import * as fault from '../mm/fault.ts';
import * as madvise from '../mm/madvise.ts';
import * as pagewalk from '../mm/pagewalk.ts';
import * as vmaOps from '../mm/vma-ops.ts';
import * as mmap from '../mm/mmap.ts';
import * as zap from '../mm/zap.ts';
import * as gup from '../walkers/gup-fast.ts';
import * as gupSlow from '../walkers/gup-slow.ts';
import * as guard from '../walkers/guard.ts';
import * as mincore from '../walkers/mincore.ts';
import * as numa from '../walkers/numa-hinting.ts';
import * as oom from '../walkers/oom-reaper.ts';
import * as uffd from '../walkers/uffd.ts';
import * as collapseFile from '../khugepaged/collapse-file.ts';
import * as rmapWalk from '../walkers/rmap-walk.ts';
import * as world from './world.ts';
import { registerSteps } from './names.ts';

for (const mod of [
  collapseAnon,
  collapseFile,
  fault,
  madvise,
  pagewalk,
  vmaOps,
  mmap,
  zap,
  gup,
  gupSlow,
  guard,
  mincore,
  numa,
  oom,
  uffd,
  rmapWalk,
  world,
])
  registerSteps(mod as Record<string, unknown>);

export {
  explore,
  type CheckCase,
  type CheckReport,
  type ExploreOptions,
  type Reduction,
} from './explore.ts';
export { MODEL_PROPERTIES, PROPERTIES, PROPERTY_TEXT, type PropertyName } from './properties.ts';
export {
  type Property,
  type PropertyKind,
  type PropertyView,
  type SometimesResult,
  always,
  eventually,
  sometimes,
} from './property.ts';
export { checkTrace, formatTrace } from './trace.ts';
export type { CheckTrace } from '../report/model.ts';
