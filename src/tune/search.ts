// How `thpsim tune` picks the settings to evaluate: the whole grid, or within `--budget N`
// evaluations a seeded search in two phases:
//   1. evolutionary (half the budget): a population from the target's own setting and random
//      points; each generation breeds children of the best ranked points (uniform crossover,
//      then a step of ±2^k along a numeric knob or a new value of a word knob);
//   2. pattern search (the rest): from the best point, try ±step along every knob in one batch,
//      move when the best changes, halve the step when it does not, down to 1. On a knob whose
//      feasible region ends at a cliff (max_ptes_none and an OOM) this is a bisection.
// Each generation or batch is evaluated at once, so the cells of a batch run in parallel
// (locally or on the queue). The same seed gives the same points in the same order.

import { Rng } from '../mm/rng.ts';
import { type Preference, type TunePoint, rank } from './pareto.ts';
import type { Space } from './space.ts';

/** Evaluate a batch of points (value indices per knob) in order. */
export type Evaluate = (points: number[][]) => Promise<TunePoint[]>;

/** Every point of the grid, the last knob varying fastest. */
export function gridPoints(space: Space): number[][] {
  let pts: number[][] = [[]];
  for (const k of space) pts = pts.flatMap((p) => k.values.map((_, i) => [...p, i]));
  return pts;
}

const key = (p: readonly number[]): string => p.join(',');

export interface SearchOptions {
  budget: number;
  seed: number;
  prefer: Preference;
  /** The target's own setting as value indices (the search starts there). */
  start: number[];
}

class Search {
  readonly seen = new Map<string, TunePoint>();
  readonly rng: Rng;

  constructor(
    readonly space: Space,
    readonly evaluate: Evaluate,
    readonly opts: SearchOptions,
  ) {
    this.rng = new Rng(opts.seed);
  }

  get left(): number {
    return this.opts.budget - this.seen.size;
  }

  /** Evaluate the new points among `pts` (at most the budget left). */
  async batch(pts: number[][]): Promise<void> {
    const fresh: number[][] = [];
    const keys = new Set<string>();
    for (const p of pts) {
      const k = key(p);
      if (this.seen.has(k) || keys.has(k) || fresh.length >= this.left) continue;
      keys.add(k);
      fresh.push(p);
    }
    if (!fresh.length) return;
    for (const t of await this.evaluate(fresh)) this.seen.set(key(t.point), t);
  }

  ranked(): TunePoint[] {
    return rank([...this.seen.values()], this.opts.prefer);
  }

  random(): number[] {
    return this.space.map((k) => this.rng.int(k.values.length));
  }

  /** A step of ±2^k (k uniform up to the knob's size) or a new word. */
  mutate(p: number[]): number[] {
    const c = [...p];
    const i = this.rng.int(this.space.length);
    const n = this.space[i].values.length;
    if (n < 2) return c;
    if (this.space[i].numeric) {
      const k = this.rng.int(Math.max(1, Math.ceil(Math.log2(n))));
      const step = (1 << k) * (this.rng.next() < 0.5 ? -1 : 1);
      c[i] = Math.min(n - 1, Math.max(0, c[i] + step));
    } else c[i] = (c[i] + 1 + this.rng.int(n - 1)) % n;
    return c;
  }

  crossover(a: number[], b: number[]): number[] {
    return a.map((x, i) => (this.rng.next() < 0.5 ? x : b[i]));
  }

  async evolve(evals: number): Promise<void> {
    const pop = Math.max(2, Math.min(8, Math.floor(evals / 3)));
    const init = [this.opts.start];
    for (let i = 0; i < pop * 4 && init.length < pop; i++) init.push(this.random());
    await this.batch(init);
    let stale = 0;
    while (this.seen.size < evals && stale < 3) {
      const elite = this.ranked().slice(0, Math.max(2, Math.ceil(pop / 2)));
      const kids: number[][] = [];
      for (let i = 0; i < pop * 8 && kids.length < Math.min(pop, evals - this.seen.size); i++) {
        const a = elite[this.rng.int(elite.length)].point;
        const b = elite[this.rng.int(elite.length)].point;
        const c = this.mutate(this.rng.next() < 0.5 ? this.crossover(a, b) : a);
        if (!this.seen.has(key(c)) && !kids.some((x) => key(x) === key(c))) kids.push(c);
      }
      const before = this.seen.size;
      await this.batch(kids);
      stale = this.seen.size === before ? stale + 1 : 0;
    }
  }

  async refine(): Promise<void> {
    const steps = this.space.map((k) =>
      k.numeric ? 2 ** Math.max(0, Math.floor(Math.log2(k.values.length / 4))) : 1,
    );
    let best = this.ranked()[0];
    for (let round = 0; round < 200 && this.left > 0 && steps.some((s) => s >= 1); round++) {
      const around: number[][] = [];
      this.space.forEach((k, i) => {
        if (steps[i] < 1) return;
        if (k.numeric)
          for (const d of [steps[i], -steps[i]]) {
            const j = best.point[i] + d;
            if (j >= 0 && j < k.values.length)
              around.push(best.point.map((x, q) => (q === i ? j : x)));
          }
        else
          for (let j = 0; j < k.values.length; j++)
            if (j !== best.point[i]) around.push(best.point.map((x, q) => (q === i ? j : x)));
      });
      await this.batch(around);
      const now = this.ranked()[0];
      if (key(now.point) !== key(best.point)) best = now;
      else
        this.space.forEach((k, i) => {
          steps[i] = k.numeric && steps[i] > 1 ? steps[i] / 2 : 0;
        });
    }
  }
}

/** The seeded two-phase search within the budget; returns every evaluated point in order. */
export async function searchSpace(
  space: Space,
  evaluate: Evaluate,
  opts: SearchOptions,
): Promise<TunePoint[]> {
  const s = new Search(space, evaluate, opts);
  await s.evolve(Math.ceil(opts.budget / 2));
  await s.refine();
  return [...s.seen.values()].sort((a, b) => a.index - b.index);
}
