// What a walker of the checker's vocabulary is: its name in case files and traces, the kernel
// function it models, its case-file form (a zod object of its fields), the step functions its
// traces name, and how its fields become a thread of a world. A leaf file: the registry and
// the family files import it, never the other way round.

import type { z } from 'zod';
import type { CollapsePolicy } from '../../khugepaged/mthp/thresholds.ts';
import type { Step } from '../../mm/step.ts';
import type { CheckWorld } from '../world.ts';

/** The backing of a VMA of a check world. */
export type VmaKind = 'anon' | 'file' | 'shmem';

/** A VMA of a check world as a case file states it: pages [from, to) of the PMD range. */
export interface WorldVma {
  name: string;
  kind: VmaKind;
  from: number;
  to: number;
}

/** What a thread's fields are checked against before the world is built. */
export interface WorldInfo {
  vmas: readonly WorldVma[];
  /** Pages (indices from the PMD range's start) that hold a folio when the threads start. */
  populated: ReadonlySet<number>;
  /** Pages whose folio is PMD-mapped when the threads start. */
  pmdMapped: ReadonlySet<number>;
}

/** A walker's fields made into a thread of the explorer. */
export interface WalkerThread {
  /** The default thread name (a case file may give its own). */
  label: string;
  /** The world VMA the operation works on, for the cross-VMA property. */
  vma?: string;
  /**
   * Pages [from, to) whose contents the operation may throw away by design (MADV_DONTNEED,
   * munmap, the OOM reaper, a move): a write there may end unmapped without being lost.
   */
  discards?: readonly [number, number];
  /** The collapse design the thread asks for (the world's, which must then agree). */
  policy?: CollapsePolicy;
  run(w: CheckWorld, cpu: number): Step<unknown>;
}

/** A field that is well formed but does not fit the world (a page no VMA maps). */
export class WalkerArgError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** A generator function: a step function of the model. */
export type StepFunction = (...args: never[]) => Generator<unknown, unknown, unknown>;

export interface WalkerDef<S extends z.ZodObject = z.ZodObject> {
  /** The vocabulary name: `fault`, `gup-fast`, ... */
  name: string;
  /** The kernel function the walker's entry step models. */
  kernel: string;
  /** One line: what it does and under which locks. */
  summary: string;
  /** The case-file fields besides `walker` and `name`. */
  args: S;
  /** The model's step functions its traces show, by kernel name (the entry first). */
  steps: Readonly<Record<string, StepFunction>>;
  /** The thread for validated fields; throws WalkerArgError when they do not fit the world. */
  thread(a: z.infer<S>, world: WorldInfo): WalkerThread;
  /**
   * Fields for acting on VMA `v` of a world (its first 16 pages populated), for the matrix and
   * the vocabulary tests; or why the walker has nothing to do there.
   */
  sample(world: WorldInfo, v: WorldVma): z.input<S> | { skip: string };
}

/** A vocabulary word the model cannot run yet, and why. */
export interface UnmodelledWalker {
  name: string;
  kernel: string;
  reason: string;
}

/** Declare a walker with its fields' types inferred from its schema. */
export function walker<S extends z.ZodObject>(def: WalkerDef<S>): WalkerDef {
  return def as unknown as WalkerDef;
}
