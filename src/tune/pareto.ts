// The Pareto front of the evaluated settings and the recommendation for a stated preference.
//
// A setting is feasible when no OOM happened (the memcg OOM constraint). Among feasible ones, a
// setting dominates another when it is at least as good in every objective (src/tune/
// objectives.ts) and better in one. The recommendation ranks feasible settings:
//   coverage   most huge coverage, then TLB reach, then least bloat, then least khugepaged CPU
//   memory     least bloat, then most coverage, then least khugepaged CPU
//   balanced   weights coverage=1, bloat=1, cpu=0.5, tlb=0.5 over values scaled to 0..1 across
//              the feasible settings; or the user's weights (--prefer coverage=2,bloat=1)
// Ties go to the setting nearest the target's own settings (the least change), then to the
// first evaluated: the same inputs and seed always give the same recommendation.

import { OBJECTIVES, type Objective, type TuneObjectives } from './objectives.ts';

/** One evaluated setting. */
export interface TunePoint {
  /** Order of evaluation. */
  index: number;
  /** Value index per knob. */
  point: number[];
  /** Knob name → value. */
  settings: Record<string, string>;
  objectives: TuneObjectives;
  /** Distance from the target's own settings (src/tune/space.ts). */
  distance: number;
}

export type ObjectiveName = Objective['name'];

export type Preference =
  | { kind: 'coverage' | 'memory' | 'balanced' }
  | { kind: 'weights'; weights: Partial<Record<ObjectiveName, number>> };

export class PreferenceError extends Error {}

export const BALANCED: Record<ObjectiveName, number> = {
  coverage: 1,
  bloat: 1,
  cpu: 0.5,
  tlb: 0.5,
};

/** --prefer coverage|memory|balanced, or weights "coverage=2,bloat=1,cpu=0,tlb=0.5". */
export function parsePreference(text: string): Preference {
  if (text === 'coverage' || text === 'memory' || text === 'balanced') return { kind: text };
  const weights: Partial<Record<ObjectiveName, number>> = {};
  for (const part of text.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    const names = OBJECTIVES.map((o) => o.name) as string[];
    if (!m || !names.includes(m[1]))
      throw new PreferenceError(
        `--prefer: expected coverage, memory, balanced or weights like coverage=2,bloat=1 (objectives: ${names.join(', ')}), got ${JSON.stringify(text)}`,
      );
    weights[m[1] as ObjectiveName] = Number(m[2]);
  }
  return { kind: 'weights', weights };
}

const objective = (n: ObjectiveName): Objective => OBJECTIVES.find((o) => o.name === n)!;

/** a dominates b: no worse in every objective, better in one. */
function dominates(a: TuneObjectives, b: TuneObjectives): boolean {
  let better = false;
  for (const o of OBJECTIVES) {
    const [x, y] = o.better === 'higher' ? [o.value(a), o.value(b)] : [o.value(b), o.value(a)];
    if (x < y) return false;
    if (x > y) better = true;
  }
  return better;
}

/** The feasible settings no other feasible setting dominates (in evaluation order). */
export function paretoFront(points: readonly TunePoint[]): TunePoint[] {
  const ok = points.filter((p) => !p.objectives.oom);
  return ok.filter((p) => !ok.some((q) => q !== p && dominates(q.objectives, p.objectives)));
}

/** A score per point, higher is better, from weights over values scaled across `pool`. */
function weighted(
  pool: readonly TunePoint[],
  weights: Partial<Record<ObjectiveName, number>>,
): (p: TunePoint) => number {
  const scale = OBJECTIVES.map((o) => {
    const vs = pool.map((p) => o.value(p.objectives));
    return { o, lo: Math.min(...vs), hi: Math.max(...vs) };
  });
  return (p) => {
    let s = 0;
    for (const { o, lo, hi } of scale) {
      const w = weights[o.name] ?? 0;
      if (w === 0) continue;
      const v = o.value(p.objectives);
      const t = hi > lo ? (v - lo) / (hi - lo) : 1;
      s += w * (o.better === 'higher' ? t : 1 - t);
    }
    return Math.round(s * 1e9) / 1e9;
  };
}

/** The keys a preference sorts by, each "smaller is better". */
function keysFor(pref: Preference, pool: readonly TunePoint[]): (p: TunePoint) => number[] {
  const v = (n: ObjectiveName, p: TunePoint) => {
    const o = objective(n);
    return o.better === 'higher' ? -o.value(p.objectives) : o.value(p.objectives);
  };
  switch (pref.kind) {
    case 'coverage':
      return (p) => [v('coverage', p), v('tlb', p), v('bloat', p), v('cpu', p)];
    case 'memory':
      return (p) => [v('bloat', p), v('coverage', p), v('cpu', p)];
    case 'balanced': {
      const s = weighted(pool, BALANCED);
      return (p) => [-s(p)];
    }
    case 'weights': {
      const s = weighted(pool, pref.weights);
      return (p) => [-s(p)];
    }
  }
}

/** Every point, best first for the preference: feasible ones, then the OOMs. */
export function rank(points: readonly TunePoint[], pref: Preference): TunePoint[] {
  const feasible = points.filter((p) => !p.objectives.oom);
  const keys = keysFor(pref, feasible.length ? feasible : points);
  const k = new Map(points.map((p) => [p, [...keys(p), p.distance, p.index]]));
  const cmp = (a: TunePoint, b: TunePoint): number => {
    const [x, y] = [k.get(a)!, k.get(b)!];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
  };
  return [
    ...feasible.sort(cmp),
    ...points
      .filter((p) => p.objectives.oom)
      .sort((a, b) => a.distance - b.distance || a.index - b.index),
  ];
}
