// Race windows: the building blocks of a case's `sometimes` properties. A window is reached when
// one thread performs a step while another is in the state the race is about (holding a lock,
// inside a kernel function, with an entry cleared), e.g. "B's fault ran while A's table was
// detached".

import { OP_READ, OP_WRITE, S_PMD_ENTRY, S_PTE_ENTRY, evClass, evOp } from '../mm/step.ts';
import { type Property, type PropertyView, sometimes } from './property.ts';

/** A condition on one point of an execution. */
export type Cond = (v: PropertyView) => boolean;

/** `sometimes`: thread `who` performs a step (that also meets `step`, if given) while `cond`. */
export function stepWhile(
  name: string,
  text: string,
  who: number,
  cond: Cond,
  step: Cond = () => true,
): Property {
  return sometimes(name, text, (v) => v.at === 'step' && v.thread === who && step(v) && cond(v));
}

/** Thread t holds a lock of class cls (src/mm/step.ts), any instance or the given one. */
export function holding(t: number, cls: number, id?: number): Cond {
  return (v) => v.locks.holds(t, cls, id);
}

/** The kernel function `fn` is on thread t's stack. */
export function inside(t: number, fn: string): Cond {
  return (v) => v.inFn(t, fn);
}

/** An entry thread t cleared (at the PMD or PTE level, or either) is still none. */
export function clearedBy(t: number, level?: 'pmd' | 'pte'): Cond {
  return (v) => v.cleared(t, level);
}

/** Thread t has started (performed a step) and not finished. */
export function midway(t: number): Cond {
  return (v) => !v.done(t) && v.fnOf(t) !== '';
}

/** All of the conditions. */
export function all(...conds: Cond[]): Cond {
  return (v) => conds.every((c) => c(v));
}

/** The step reads or writes a page-table entry (of the level, or PMD or PTE). */
export function entryAccess(level?: 'pmd' | 'pte', op?: 'read' | 'write'): Cond {
  return (v) => {
    const cls = evClass(v.event);
    const lvl = cls === S_PMD_ENTRY ? 'pmd' : cls === S_PTE_ENTRY ? 'pte' : null;
    if (!lvl || (level && lvl !== level)) return false;
    const o = evOp(v.event);
    return op === undefined
      ? o === OP_READ || o === OP_WRITE
      : o === (op === 'read' ? OP_READ : OP_WRITE);
  };
}
