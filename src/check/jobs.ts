// Exploration split by schedule prefix. The bounded search tree of one preemption bound is cut
// at a depth: each prefix (the first steps of a schedule, with the sleep and done sets the search
// has there) is a unit of work, explored to the end of its subtree by searchBound. Units are
// disjoint and cover the bound's search exactly once, in the order the single search meets them,
// so merging their counts in order, stopping at the first unit that finds a counterexample, gives
// the single-process result. `thpsim check --jobs N` hands units to N worker processes; the
// distributed sweeps hand the same units to other machines.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type CheckCase,
  type CheckReport,
  type ExploreOptions,
  Runner,
  type SearchTotals,
  explore,
  judge,
  naiveLog10,
  schedulePrefixes,
  searchBound,
} from './explore.ts';
import type { SearchNode } from './reduction/search-node.ts';

/** One unit of work: a schedule prefix of one bound's search, with its search state. */
export interface PrefixUnit {
  bound: number;
  /** The nodes of the prefix (structured-cloneable: arrays, Sets, Maps). */
  nodes: SearchNode[];
}

/** What exploring one unit found. */
export interface UnitResult extends SearchTotals {
  events: number;
  /** The schedule of the first counterexample in the unit's subtree. */
  violation?: number[];
  /** The first schedule of the unit at which each `sometimes` held. */
  reached: Array<[string, number[]]>;
}

/** The options a unit's exploration takes (no callbacks: they cross a process boundary). */
export type UnitOptions = Pick<
  ExploreOptions,
  'maxPreemptions' | 'maxSteps' | 'maxExecutions' | 'reduction' | 'rebuild'
>;

/**
 * The units of one bound's search: its prefixes at the smallest depth 4, 8, 16, ... that gives
 * at least `minUnits` of them (or the whole tree, when it ends before).
 */
export function partitionSchedules(
  c: CheckCase,
  o: UnitOptions,
  bound: number,
  minUnits: number,
  r: Runner = new Runner(c, o),
): PrefixUnit[] {
  for (let depth = 4; ; depth *= 2) {
    const prefixes = schedulePrefixes(r, bound, depth);
    if (
      prefixes.length >= minUnits ||
      prefixes.every((p) => p.length < depth) ||
      depth > r.maxSteps
    )
      return prefixes.map((nodes) => ({ bound, nodes }));
  }
}

/** Explore one unit's subtree (r: a runner of the same case and options, reused across units). */
export function exploreUnit(r: Runner, unit: PrefixUnit, maxExecutions = 200_000): UnitResult {
  const acc: SearchTotals = { executions: 0, sleepPruned: 0, maxDepth: 0, incomplete: false };
  const events0 = r.events;
  r.reached.clear();
  const ex = searchBound(r, unit.bound, unit.nodes, acc, maxExecutions);
  return {
    ...acc,
    events: r.events - events0,
    reached: [...r.reached],
    ...(ex ? { violation: ex.schedule } : {}),
  };
}

/** How a worker process finds the case: a built-in id or a case file. */
export type CaseRef = { id: string } | { file: string };

interface Pool {
  run(units: PrefixUnit[]): Promise<UnitResult[]>;
  close(): void;
}

/** N worker processes (bin/check-worker.js) that explore units of one case. */
function startPool(ref: CaseRef, o: UnitOptions, jobs: number): Pool {
  const script = fileURLToPath(new URL('../../bin/check-worker.js', import.meta.url));
  const workers = Array.from({ length: jobs }, () =>
    fork(script, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  for (const w of workers) w.send({ type: 'init', ref, options: o });
  return {
    run: (units) =>
      new Promise((resolve, reject) => {
        const results: Array<UnitResult | undefined> = new Array(units.length);
        let next = 0;
        let stop = units.length;
        let busy = 0;
        const finish = () => resolve(results.slice(0, stop) as UnitResult[]);
        const feed = (w: (typeof workers)[number]) => {
          if (next >= stop) {
            if (busy === 0) finish();
            return;
          }
          busy++;
          w.send({ type: 'unit', index: next, unit: units[next] });
          next++;
        };
        for (const w of workers) {
          w.removeAllListeners('message');
          w.removeAllListeners('exit');
          w.on('message', (m: { index: number; result?: UnitResult; error?: string }) => {
            busy--;
            if (m.error !== undefined) {
              reject(new Error(m.error));
              return;
            }
            results[m.index] = m.result;
            // A counterexample in unit i: units after it cannot change the result.
            if (m.result!.violation && m.index + 1 < stop) stop = m.index + 1;
            feed(w);
          });
          w.on('exit', (code) => {
            if (code !== 0) reject(new Error(`a check worker exited with status ${code}`));
          });
        }
        if (units.length === 0) finish();
        else for (const w of workers) feed(w);
      }),
    close: () => {
      for (const w of workers) {
        w.removeAllListeners('exit');
        w.kill();
      }
    },
  };
}

/**
 * Explore a case with `jobs` worker processes: the same report as explore() in one process (the
 * counts, the counterexample and its preemptions; only `ms` differs). `maxExecutions` bounds each
 * unit rather than the whole search.
 */
export async function exploreParallel(
  c: CheckCase,
  ref: CaseRef,
  o: ExploreOptions,
  jobs: number,
): Promise<CheckReport> {
  const t0 = performance.now();
  const uo: UnitOptions = {
    ...(o.maxPreemptions !== undefined ? { maxPreemptions: o.maxPreemptions } : {}),
    ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : {}),
    ...(o.maxExecutions !== undefined ? { maxExecutions: o.maxExecutions } : {}),
    ...(o.reduction !== undefined ? { reduction: o.reduction } : {}),
    ...(o.sleepSets ? { reduction: 'sleep' as const } : {}),
    ...(o.rebuild !== undefined ? { rebuild: o.rebuild } : {}),
  };
  const r = new Runner(c, uo);
  const acc = { executions: 0, sleepPruned: 0, maxDepth: 0, incomplete: false, events: 0 };
  let found: { schedule: number[]; bound: number } | null = null;
  const reached = new Map<string, number[]>();
  const pool = startPool(ref, uo, jobs);
  try {
    for (let bound = 0; bound <= r.maxPreemptions && !found; bound++) {
      const units = partitionSchedules(c, uo, bound, jobs * 8, r);
      for (const u of await pool.run(units)) {
        acc.executions += u.executions;
        acc.events += u.events;
        acc.sleepPruned += u.sleepPruned;
        acc.maxDepth = Math.max(acc.maxDepth, u.maxDepth);
        acc.incomplete ||= u.incomplete;
        for (const [name, at] of u.reached) if (!reached.has(name)) reached.set(name, at);
        if (u.violation) found = { schedule: u.violation, bound };
        o.onProgress?.(acc.executions);
      }
    }
  } finally {
    pool.close();
  }
  const cx = found ? explore(c, { ...uo, replay: found.schedule }).counterexample : undefined;
  const { sometimes, verdict } = judge(r.props, reached, !!found, false);
  return {
    case: c.id,
    title: c.title,
    ok: verdict === 'verified',
    verdict,
    sometimes,
    executions: acc.executions,
    events: acc.events,
    sleepPruned: acc.sleepPruned,
    maxDepth: acc.maxDepth,
    ms: performance.now() - t0,
    bounds: {
      preemptions: r.maxPreemptions,
      maxSteps: r.maxSteps,
      maxExecutions: o.maxExecutions ?? 200_000,
    },
    incomplete: acc.incomplete,
    naiveLog10: naiveLog10(c),
    ...(cx && found ? { counterexample: { ...cx, preemptions: found.bound } } : {}),
  };
}
