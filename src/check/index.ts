// The interleaving checker: cases, the explorer, counterexample traces, the walker registry and
// the helpers that build check worlds (for cases written in TypeScript).

import './walkers/registry.ts';

export {
  explore,
  type CheckCase,
  type CheckReport,
  type ExploreOptions,
  type ThreadSpec,
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
export { type CheckWorld, Tlb, newWorld, tlbUserWrite } from './world.ts';
export { type WorldOptions, khugepagedCollapse, pmdWorld, vpnBase } from './cases/common.ts';
export { gupWrite } from './gup-user.ts';
export { UNMODELLED, WALKERS, walkerByName } from './walkers/registry.ts';
export type { WalkerDef, WorldInfo, WorldVma } from './walkers/types.ts';
