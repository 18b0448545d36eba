// Race windows: the building blocks of a case's `sometimes` properties. A window is reached when
// one thread performs a step while another is in the state the race is about (holding a lock,
// inside a kernel function, with an entry cleared), e.g. "B's fault ran while A's table was
// detached".

import { levelIndex, pmdTableOf } from '../mm/pagewalk.ts';
import { E_MIGRATION, E_TYPE_MASK, PMD, T_FREE } from '../mm/pgtable.ts';
import {
  OP_ACQUIRE,
  OP_READ,
  OP_WRITE,
  S_PMD_ENTRY,
  S_PTE_ENTRY,
  evClass,
  evOp,
} from '../mm/step.ts';
import { type Property, type PropertyView, sometimes } from './property.ts';
import type { CheckWorld } from './world.ts';

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

/** Thread u waits to acquire a lock of class cls that another thread holds. */
export function waitingFor(u: number, cls: number): Cond {
  return (v) => {
    const e = v.pending(u);
    return e >= 0 && evClass(e) === cls && evOp(e) === OP_ACQUIRE && v.blocked(u);
  };
}

/** The PMD entry mapping page vpn(world) of process `mm` has the given type (E_TABLE, ...). */
export function pmdIs(vpn: (w: CheckWorld) => number, type: number, mm = 'p'): Cond {
  return (v) => {
    const k = v.w.k;
    const m = v.w.mms[mm];
    const n = vpn(v.w);
    const t = m ? pmdTableOf(k, m, n) : 0;
    return !!t && k.pt.pmd.type(t, levelIndex(k, n, PMD)) === type;
  };
}

/** Some PTE table, linked or detached, holds a migration entry (a folio is being migrated). */
export const migrationEntry: Cond = (v) => {
  const pte = v.w.k.pt.pte;
  for (let t = 1; t < pte.capacity; t++) {
    if (pte.state[t] === T_FREE) continue;
    const base = t * pte.entriesPerTable;
    for (let i = 0; i < pte.entriesPerTable; i++)
      if ((pte.bits[base + i] & E_TYPE_MASK) === E_MIGRATION) return true;
  }
  return false;
};

/** Any of the conditions. */
export function any(...conds: Cond[]): Cond {
  return (v) => conds.some((c) => c(v));
}
