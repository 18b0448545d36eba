// Properties as data, in Stateright's shape: a name, a kind and a predicate over what an
// execution shows at one point. `always` must hold at every point of every execution (else a
// counterexample); `sometimes` must hold at some point of some execution (else the verification
// is vacuous: its race window was never reached); `eventually` must hold at some point of every
// execution that runs to its end. The model defines its own (properties.ts); a case adds its own.

import type { LockTable } from '../mm/locks.ts';
import type { CheckWorld } from './world.ts';

export type PropertyKind = 'always' | 'sometimes' | 'eventually';

/** What the model's monitor saw at a point: evidence against one of the model's properties. */
export interface Finding {
  property: string;
  message: string;
}

/**
 * One point of an execution, as a predicate sees it: before thread `thread` performs `event`
 * (at='step'), or once every thread has finished (at='end', thread -1). One object is reused for
 * every point, so a predicate must not keep it.
 */
export interface PropertyView {
  readonly at: 'step' | 'end';
  readonly w: CheckWorld;
  readonly locks: LockTable;
  /** Index of the step about to run (at 'end': the number of steps run). */
  readonly step: number;
  readonly thread: number;
  /** The event (src/mm/step.ts encoding) the thread is about to perform; -1 at the end. */
  readonly event: number;
  /** The kernel function the thread is in. */
  readonly fn: string;
  readonly threadNames: readonly string[];
  /** What the model's monitor found at this point (empty almost always). */
  readonly findings: readonly Finding[];
  /** Thread u's innermost kernel function ('' once it is done). */
  fnOf(u: number): string;
  /** Whether the kernel function `name` is anywhere on thread u's stack. */
  inFn(u: number, name: string): boolean;
  done(u: number): boolean;
  /** Whether an entry thread u cleared (at that level, or either) is still none. */
  cleared(u: number, level?: 'pmd' | 'pte'): boolean;
}

export interface Property {
  /** Kebab-case, unique within a case: "fault-b-while-detached". */
  name: string;
  kind: PropertyKind;
  /** One line saying what holds, e.g. "B's fault ran while A's table was detached". */
  text: string;
  /** Whether the property's condition holds at this point. */
  check(v: PropertyView): boolean;
  /** For an `always`, the message of a violation at v (default: text). */
  explain?(v: PropertyView): string;
}

/** A `sometimes` property: the condition holds at some point of some execution. */
export function sometimes(name: string, text: string, check: Property['check']): Property {
  return { name, kind: 'sometimes', text, check };
}

/** An `always` property: the condition holds at every point of every execution. */
export function always(
  name: string,
  text: string,
  check: Property['check'],
  explain?: Property['explain'],
): Property {
  return { name, kind: 'always', text, check, ...(explain ? { explain } : {}) };
}

/** An `eventually` property: the condition holds at some point of every complete execution. */
export function eventually(name: string, text: string, check: Property['check']): Property {
  return { name, kind: 'eventually', text, check };
}

/** Whether a `sometimes` was reached, and the first schedule that reached it. */
export interface SometimesResult {
  name: string;
  text: string;
  reached: boolean;
  /** The schedule (thread per step) up to the step at which it first held. */
  schedule?: number[];
}
