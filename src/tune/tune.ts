// `thpsim tune`: evaluate THP settings on a target (scenario, workload, snapshot or trace) with
// the model, keep the Pareto front, recommend one setting for a preference and print the sysfs
// writes that apply it. Each setting is one sweep cell, so a tune runs over the local cores or
// on BullMQ workers with the same result.

import type { ProfileName } from '../mm/profile.ts';
import { type Cell, type SweepInput } from '../sweep/cell.ts';
import { type SweepOptions, runSweep, valuesOrThrow } from '../sweep/sweep.ts';
import { cellName } from '../sweep/cell.ts';
import { OBJECTIVES, type TuneObjectives } from './objectives.ts';
import { type Preference, type TunePoint, paretoFront, rank } from './pareto.ts';
import { gridPoints, searchSpace } from './search.ts';
import { type Space, distanceFromBaseline, gridSize, settingsOf } from './space.ts';

/** What tune runs on. */
export interface TuneTarget {
  kind: 'scenario' | 'snapshot' | 'trace';
  /** As given on the command line. */
  source: string;
  name: string;
  input: SweepInput;
  /** The target's own value per knob (space order). */
  baseline: string[];
}

export interface TuneOptions {
  space: Space;
  /** Evaluations at most; the whole grid when absent or when the grid is smaller. */
  budget?: number;
  seed: number;
  prefer: Preference;
  preferText: string;
  profile?: ProfileName;
  /** Simulated ms khugepaged runs on a snapshot. */
  ms?: number;
  sweep: SweepOptions;
}

export interface TuneResult {
  format: 'thpsim-tune';
  version: 1;
  target: { kind: TuneTarget['kind']; source: string; name: string };
  space: Array<{ name: string; path: string | null; values: string[]; baseline: string }>;
  search: {
    method: 'grid' | 'evolutionary+pattern';
    budget: number | null;
    seed: number;
    grid: number;
    evaluated: number;
  };
  prefer: string;
  objectives: Array<{ name: string; label: string; unit: string; better: string }>;
  /** Every evaluated setting, in evaluation order. */
  points: Array<{
    index: number;
    settings: Record<string, string>;
    objectives: TuneObjectives;
    front: boolean;
  }>;
  /** Indices of the Pareto front, best first for the preference. */
  front: number[];
  /** Index of the recommended setting, or null when every setting ran out of memory. */
  recommended: number | null;
  /** The writes that apply the recommendation on a live kernel. */
  apply: string[];
}

const SYSFS = '/sys/kernel/mm/transparent_hugepage';

/** The shell lines that apply a setting (sysfs writes; the policy is a kernel design, noted). */
export function applyCommands(space: Space, point: readonly number[]): string[] {
  return space.map((k, i) => {
    const v = k.values[point[i]];
    return k.path === null
      ? `# collapse policy ${v}: a kernel build (mTHP collapse design), not a sysfs file`
      : `echo ${v} > ${SYSFS}/${k.path}`;
  });
}

/** Run the tune (see the file comment). */
export async function tune(target: TuneTarget, opts: TuneOptions): Promise<TuneResult> {
  const { space } = opts;
  let next = 0;
  const evaluate = async (pts: number[][]): Promise<TunePoint[]> => {
    const cells: Cell[] = pts.map((p) => {
      const s = settingsOf(space, p);
      return {
        kind: 'tune',
        input: target.input.hash,
        inputKind: target.input.kind,
        settings: {
          ...(s.policy ? { policy: s.policy } : {}),
          knobs: s.knobs,
          ...(opts.profile ? { profile: opts.profile } : {}),
        },
        ...(opts.ms !== undefined ? { ms: opts.ms } : {}),
      };
    });
    const outs = await runSweep(cells, [target.input], opts.sweep);
    const objs = valuesOrThrow<TuneObjectives>(cells, outs, cellName);
    return pts.map((p, i) => ({
      index: next++,
      point: p,
      settings: settingsOf(space, p).named,
      objectives: objs[i],
      distance: distanceFromBaseline(space, p, target.baseline),
    }));
  };
  const grid = gridSize(space);
  const useGrid = opts.budget === undefined || grid <= opts.budget;
  const start = space.map((k, i) => Math.max(0, k.values.indexOf(target.baseline[i])));
  const points = useGrid
    ? await evaluate(gridPoints(space))
    : await searchSpace(space, evaluate, {
        budget: opts.budget!,
        seed: opts.seed,
        prefer: opts.prefer,
        start,
      });
  const front = new Set(paretoFront(points));
  const ranked = rank(points, opts.prefer);
  const best = ranked.find((p) => !p.objectives.oom) ?? null;
  return {
    format: 'thpsim-tune',
    version: 1,
    target: { kind: target.kind, source: target.source, name: target.name },
    space: space.map((k, i) => ({
      name: k.name,
      path: k.path,
      values: k.values,
      baseline: target.baseline[i],
    })),
    search: {
      method: useGrid ? 'grid' : 'evolutionary+pattern',
      budget: opts.budget ?? null,
      seed: opts.seed,
      grid,
      evaluated: points.length,
    },
    prefer: opts.preferText,
    objectives: OBJECTIVES.map(({ name, label, unit, better }) => ({ name, label, unit, better })),
    points: points.map((p) => ({
      index: p.index,
      settings: p.settings,
      objectives: p.objectives,
      front: front.has(p),
    })),
    front: ranked.filter((p) => front.has(p)).map((p) => p.index),
    recommended: best ? best.index : null,
    apply: best ? applyCommands(space, best.point) : [],
  };
}
