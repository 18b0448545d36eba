// One point of a schedule in the explorer's depth-first search: who was enabled, which thread was
// chosen, and the sleep and done sets of the reduction. A leaf file so that the explorer and the
// reductions share it without importing each other.

/** A state of the search (the point before one step), kept along the current path. */
export interface SearchNode {
  chosen: number;
  enabled: number[];
  /** Pending event per thread at this point (-1: none). */
  events: number[];
  sleep: Set<number>;
  done: Set<number>;
  preemptionsBefore: number;
  /** The thread that ran the previous step (-1 at the start). */
  prev: number;
  /**
   * For each thread explored from here: whether it was still enabled right after its step (so
   * that a switch away from it then was a preemption). Unknown counts as enabled.
   */
  after: Map<number, boolean>;
}
