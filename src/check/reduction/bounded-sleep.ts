// Sleep sets made sound under a preemption bound. Plain sleep sets (Godefroid) skip an execution
// E = n·q·u·p·v when thread p, already explored at node n and independent of everything in q·u,
// runs again: the equivalent E' = n·p·q·u·v was explored under p. With a preemption bound that
// is not enough: E' may need more preemptions than E, exceed the bound and never be explored,
// so the bug E reaches is missed (Musuvathi and Qadeer, "Partial-order reduction for
// context-bounded state exploration", 2007; Coons, Musuvathi and McKinley, "Bounded partial-order
// reduction", OOPSLA 2013: the bound makes independent transitions dependent). It happened here,
// for R1's migration variant.
//
// The correction: p goes to sleep only where E' provably costs no more preemptions than E.
// Moving p's step from just before v to the front changes the preemption count at two places
// only, the switches around n and the one before v, provided that p's event neither enables nor
// disables any other thread's pending event on the way (the prev thread's enabledness decides
// whether a switch is a preemption). So:
//   - at its origin n (q chosen after p), p sleeps only if the thread r that ran before n was p
//     itself (E switches r→q, E' does not switch at n, and its p→q switch is at most what E's
//     r→q one cost), or if p was no longer enabled after its own step (its p→q switch is free)
//     and r is not q (E's switch at n is then a preemption whenever E' has one);
//   - it stays asleep only while its event is independent of the chosen step (as in plain sleep
//     sets) and of every other thread's pending event (so enabledness is the same in E and E').
// At the end, E's switches x→p→v1 become E' x→v1, never more preemptions. By induction over the
// pruned executions (each replacement costs no more than the one it replaces), every execution
// within the bound has an equivalent explored one within the bound: the same verdicts and the
// same minimal preemption count of each counterexample (test/checker/reduction.test.ts).

import type { SearchNode } from './search-node.ts';

/** Whether two events of different threads commute (explore.ts's relation). */
export type Independence = (a: number, b: number) => boolean;

/** Whether p, explored at n before `chosen`, may sleep in the child: the origin rule above. */
function mayStartSleeping(n: SearchNode, p: number): boolean {
  if (n.prev === p) return true;
  return n.after.get(p) === false && n.prev !== n.chosen;
}

/** Whether p's event is independent of every other thread's pending event at this point. */
function quietFor(events: readonly number[], p: number, indep: Independence): boolean {
  const e = events[p];
  for (let t = 0; t < events.length; t++)
    if (t !== p && events[t] !== -1 && !indep(e, events[t])) return false;
  return true;
}

/**
 * The sleep set of the node after `parent` (parent.chosen has just run), whose threads' pending
 * events are `events`. `plain` gives Godefroid's unbounded sleep sets (unsound under a bound,
 * kept to show the difference).
 */
export function childSleep(
  parent: SearchNode,
  events: readonly number[],
  indep: Independence,
  plain: boolean,
): Set<number> {
  const sleep = new Set<number>();
  const pe = parent.events[parent.chosen];
  const consider = (s: number, fromDone: boolean): void => {
    if (s === parent.chosen || events[s] === -1) return;
    if (!indep(parent.events[s], pe)) return;
    if (!plain) {
      if (fromDone && !mayStartSleeping(parent, s)) return;
      if (!quietFor(events, s, indep)) return;
    }
    sleep.add(s);
  };
  for (const s of parent.sleep) consider(s, false);
  for (const s of parent.done) consider(s, true);
  return sleep;
}
