// The explorer: every interleaving of a case's threads, up to a bound on preemptions, by
// stateless depth-first search (each execution replays from setup along a recorded path, since
// generators cannot be copied) with sleep sets to skip schedules that only reorder independent
// events. A random mode samples schedules for cases too large to exhaust.

import { LockTable, RWSEM_FAMILY } from '../mm/locks.ts';
import type { Kernel } from '../mm/kernel.ts';
import {
  L_RCU,
  OP_ACQUIRE,
  OP_DOWNGRADE,
  OP_READ,
  OP_RELEASE,
  OP_TRYLOCK,
  OP_WRITE,
  S_PSC,
  S_RCU_SYNC,
  S_TLB,
  type Step,
  describeEvent,
  evClass,
  evId,
  evOp,
} from '../mm/step.ts';
import type { Vma } from '../mm/vma.ts';
import { type CaseProperties, NO_PROPERTIES, PropertyRun, caseProperties } from './evaluate.ts';
import { PROPERTY_TEXT, type PropertyName, type Violation } from './properties.ts';
import type { Property, SometimesResult } from './property.ts';
import { ThreadRun } from './thread.ts';
import { type TraceStep, finishStep, traceStep } from './trace.ts';
import { GraphSnapshot } from './snapshot.ts';
import { childSleep } from './reduction/bounded-sleep.ts';
import type { SearchNode } from './reduction/search-node.ts';
import type { CheckWorld } from './world.ts';

export interface ThreadSpec {
  name: string;
  /** The VMA (by its world name) the operation works on, for the cross-VMA property. */
  vma?: string;
  run(w: CheckWorld, cpu: number): Step<unknown>;
}

export interface CheckCase {
  /** "R1-v5", "R11-no-recheck". */
  id: string;
  title: string;
  description: string;
  /** A fresh world, the same every time (the explorer replays from it). */
  setup(): CheckWorld;
  threads: ThreadSpec[];
  /** The model's properties to check, by name (default: all). */
  properties?: readonly PropertyName[];
  /**
   * The case's own properties, checked with the model's. A verified case states at least one
   * `sometimes`: its race window, reached in some schedule (else the verification is vacuous).
   */
  own?: readonly Property[];
  maxPreemptions?: number;
  maxSteps?: number;
  /** 'verified', or the properties one of which a counterexample violates. */
  expect: 'verified' | readonly PropertyName[];
  /** The rules of docs/page-table-walkers.md this case breaks (broken form) or keeps. */
  rules: readonly number[];
}

export type Reduction = 'bounded-sleep' | 'sleep' | 'none';

export interface ExploreOptions {
  mode?: 'dfs' | 'random';
  maxPreemptions?: number;
  maxSteps?: number;
  /** Stop after this many executions (the report says the bound was hit). */
  maxExecutions?: number;
  /** Random mode: schedules to try and the seed. */
  iterations?: number;
  seed?: number;
  /** Replay one schedule (thread ids, one per step) and return its trace. */
  replay?: number[];
  /**
   * The reduction: 'bounded-sleep' (default) prunes with sleep sets corrected for the preemption
   * bound (reduction/bounded-sleep.ts), which keep every counterexample the bounded search finds
   * and its minimal preemption count; 'none' enumerates every schedule within the bound;
   * 'sleep' is plain sleep sets, which under a preemption bound can miss a counterexample (they
   * did, for R1's migration variant): kept to show that.
   */
  reduction?: Reduction;
  /** The same as reduction: 'sleep' (the prior option). */
  sleepSets?: boolean;
  /**
   * Build the world with the case's setup() for every execution instead of building it once and
   * restoring it (the checker before world restore; kept to compare and to test restore).
   */
  rebuild?: boolean;
  /** Called every few hundred executions (for a progress bar). */
  onProgress?: (executions: number) => void;
}

export interface Counterexample {
  property: string;
  /** What the property says. */
  text: string;
  message: string;
  /** The thread of each step, the replayable schedule. */
  schedule: number[];
  preemptions: number;
  steps: TraceStep[];
  violationStep: number;
}

export interface CheckReport {
  case: string;
  title: string;
  /** verdict === 'verified'. */
  ok: boolean;
  /**
   * 'verified': no counterexample and every `sometimes` reached; 'counterexample'; 'vacuous': no
   * counterexample, but a `sometimes` never held, so the race window was never reached.
   */
  verdict: 'verified' | 'counterexample' | 'vacuous';
  /** Each `sometimes` of the case, reached or not. */
  sometimes: SometimesResult[];
  executions: number;
  /** Events executed over all executions. */
  events: number;
  /** Executions cut short because every enabled thread was asleep (redundant orders). */
  sleepPruned: number;
  maxDepth: number;
  ms: number;
  bounds: { preemptions: number; maxSteps: number; maxExecutions: number };
  /** The search stopped at maxExecutions or maxSteps before covering the bound. */
  incomplete: boolean;
  /** log10 of the number of interleavings of the threads' events without any reduction. */
  naiveLog10: number;
  counterexample?: Counterexample;
}

type Node = SearchNode;

// ---- independence ------------------------------------------------------------------------------

function isRead(e: number): boolean {
  return evOp(e) === OP_READ || evClass(e) === L_RCU;
}

/**
 * Whether two events of different threads commute. Conservative: page-table entries, page-table
 * locks, folios and CPU state (TLBs, IPIs, interrupt-off sections) form one family in which only
 * two reads commute, because the code between events may touch any of them under the locks it
 * holds; rwsems conflict only with themselves.
 */
export function independent(a: number, b: number): boolean {
  if (isRead(a) && isRead(b)) return true;
  // RCU sections conflict only with the end of a grace period.
  if (evClass(a) === L_RCU || evClass(b) === L_RCU)
    return evClass(a) !== S_RCU_SYNC && evClass(b) !== S_RCU_SYNC;
  const fa = RWSEM_FAMILY[evClass(a)];
  const fb = RWSEM_FAMILY[evClass(b)];
  if (fa !== undefined || fb !== undefined) return fa !== fb || evId(a) !== evId(b);
  // Page-table entries and locks, folios, TLBs and IPIs: all one family.
  return false;
}

// ---- one execution -------------------------------------------------------------------------------

export interface Execution {
  nodes: Node[];
  violation: Violation | null;
  /** The execution stopped early (sleep set, preemption bound, step bound). */
  cut: 'sleep' | 'bound' | 'steps' | 'depth' | null;
  steps: number;
  trace: TraceStep[];
  schedule: number[];
}

/** A thread may run its pending event: the model's lock and flush-completion rules decide. */
function isEnabled(w: CheckWorld, locks: LockTable, t: ThreadRun): boolean {
  return locks.mayComplete(t.pending!, t.id, w.k.geo.arch);
}

/** Runs executions of one case (a world built once and restored per execution). */
export class Runner {
  readonly c: CheckCase;
  readonly props: CaseProperties;
  /** The first schedule at which each `sometimes` held (over every execution so far). */
  readonly reached = new Map<string, number[]>();
  readonly maxPreemptions: number;
  readonly maxSteps: number;
  events = 0;

  readonly reduction: Reduction;
  /** Rebuild the world with setup() per execution instead of restoring it (the prior checker). */
  readonly rebuild: boolean;
  private world: CheckWorld | null = null;
  private snapshot: GraphSnapshot | null = null;

  constructor(c: CheckCase, o: ExploreOptions, props?: CaseProperties) {
    this.c = c;
    this.reduction = o.sleepSets ? 'sleep' : (o.reduction ?? 'bounded-sleep');
    this.rebuild = o.rebuild ?? false;
    this.props = props ?? caseProperties(c.properties, c.own);
    this.maxPreemptions = o.maxPreemptions ?? c.maxPreemptions ?? 2;
    this.maxSteps = o.maxSteps ?? c.maxSteps ?? 2000;
  }

  /** The case's world as setup() builds it: built once, then restored in place. */
  private freshWorld(): CheckWorld {
    if (this.rebuild) return this.c.setup();
    if (!this.world) {
      this.world = this.c.setup();
      this.snapshot = new GraphSnapshot(this.world);
    } else this.snapshot!.restore();
    return this.world;
  }

  /**
   * Run one execution: follow `prefix`, then extend with `pick` (DFS: keep the current thread
   * when possible; random: any). Records a trace when asked.
   */
  run(
    prefix: Node[],
    bound: number,
    pick: (node: Node) => number | null,
    withTrace: boolean,
    stopAt = Infinity,
  ): Execution {
    const w = this.freshWorld();
    const k: Kernel = w.k;
    if (!(k.sink instanceof LockTable)) throw new Error('check worlds need strictLocks');
    const locks = k.sink;
    const threads = this.c.threads.map((s, i) => new ThreadRun(i, s.run(w, i)));
    const vmaOf: Array<Vma | undefined> = this.c.threads.map((s) =>
      s.vma ? w.vmas[s.vma] : undefined,
    );
    const names = this.c.threads.map((s) => s.name);
    const nodes: Node[] = [];
    const trace: TraceStep[] = [];
    const schedule: number[] = [];
    const mon = new PropertyRun(
      w,
      locks,
      this.props,
      vmaOf,
      names,
      threads,
      (name) => this.reached.has(name),
      (name, at, t) => this.reached.set(name, t < 0 ? schedule.slice(0, at) : [...schedule, t]),
    );
    for (const t of threads) t.advance();
    let prev = -1;
    let preemptions = 0;
    let cut: Execution['cut'] = null;
    let step = 0;
    const fail = (v: Violation | undefined): Execution | null =>
      v ? { nodes, violation: v, cut: null, steps: step, trace, schedule } : null;
    for (;;) {
      const crashed = threads.find((t) => t.error);
      if (crashed) {
        const msg = crashed.error instanceof Error ? crashed.error.message : String(crashed.error);
        mon.report(
          { property: 'crash', message: `${names[crashed.id]}: ${msg}` },
          Math.max(0, step - 1),
        );
      }
      if (mon.violations.length) return fail(mon.violations[0])!;
      const live = threads.filter((t) => !t.done);
      const enabled = live.filter((t) => isEnabled(w, locks, t)).map((t) => t.id);
      if (step > 0) {
        const last = nodes[step - 1];
        last.after.set(last.chosen, enabled.includes(last.chosen));
      }
      if (live.length === 0) {
        mon.end(step);
        return (
          fail(mon.violations[0]) ?? { nodes, violation: null, cut, steps: step, trace, schedule }
        );
      }
      if (enabled.length === 0) {
        if (mon.checks('deadlock'))
          mon.report(
            {
              property: 'deadlock',
              message: `no thread can go on: ${live.map((t) => `${names[t.id]} waits at ${describeEvent(t.pending!)}`).join('; ')}`,
            },
            step,
          );
        if (mon.violations.length) return fail(mon.violations[0])!;
        return { nodes, violation: null, cut: 'bound', steps: step, trace, schedule };
      }
      if (step >= this.maxSteps) {
        cut = 'steps';
        return { nodes, violation: null, cut, steps: step, trace, schedule };
      }
      if (step >= stopAt)
        return { nodes, violation: null, cut: 'depth', steps: step, trace, schedule };
      let node: Node;
      if (step < prefix.length) {
        node = prefix[step];
        if (!enabled.includes(node.chosen))
          throw new Error(`replay diverged at step ${step}: thread ${node.chosen} is not enabled`);
      } else {
        const events = threads.map((t) => (t.done ? -1 : t.pending!));
        const parent = nodes[step - 1];
        const sleep =
          parent && this.reduction !== 'none'
            ? childSleep(parent, events, independent, this.reduction === 'sleep')
            : new Set<number>();
        node = {
          chosen: -1,
          enabled,
          events,
          sleep,
          done: new Set(),
          preemptionsBefore: preemptions,
          prev,
          after: new Map(),
        };
        const choice = pick(node);
        if (choice === null) {
          cut = enabled.every((t) => sleep.has(t)) ? 'sleep' : 'bound';
          return { nodes, violation: null, cut, steps: step, trace, schedule };
        }
        node.chosen = choice;
      }
      nodes.push(node);
      const t = threads[node.chosen];
      if (prev !== -1 && node.chosen !== prev && enabled.includes(prev)) preemptions++;
      if (preemptions > bound && step >= prefix.length) throw new Error('preemption bound broken');
      const e = t.pending!;
      const fn = t.fn(this.c.threads[t.id].name);
      mon.before(t.id, e, fn, step, locks);
      const op = evOp(e);
      let answer: unknown = undefined;
      if (op === OP_TRYLOCK) answer = locks.canAcquire(e, t.id);
      if (
        op === OP_ACQUIRE ||
        op === OP_RELEASE ||
        (op === OP_TRYLOCK && answer) ||
        op === OP_DOWNGRADE
      )
        locks.apply(e, t.id);
      if (evClass(e) === S_TLB && op === OP_WRITE) w.tlb.flush(evId(e));
      if (evClass(e) === S_PSC) w.tlb.flushTables(evId(e));
      const ts = withTrace ? traceStep(k, locks, step, t.id, fn, e, answer) : null;
      t.advance(answer);
      this.events++;
      mon.after(t.id, step);
      if (ts) {
        finishStep(k, ts, e, locks);
        trace.push(ts);
      }
      schedule.push(t.id);
      prev = t.id;
      step++;
    }
  }
}

/**
 * The verdict of a search: a counterexample if one was found; else vacuous if some `sometimes`
 * was never reached (the race window the case is about never opened); else verified. A replayed
 * schedule proves what it shows; it is not a search that must reach every window.
 */
export function judge(
  props: CaseProperties,
  reached: ReadonlyMap<string, number[]>,
  found: boolean,
  replay: boolean,
): { sometimes: SometimesResult[]; verdict: CheckReport['verdict'] } {
  const sometimes = props.sometimes.map((p): SometimesResult => {
    const at = reached.get(p.name);
    return { name: p.name, text: p.text, reached: !!at, ...(at ? { schedule: at } : {}) };
  });
  const verdict = found
    ? 'counterexample'
    : !replay && sometimes.some((s) => !s.reached)
      ? 'vacuous'
      : 'verified';
  return { sometimes, verdict };
}

/** Explore a case; see ExploreOptions for the modes. */
export function explore(c: CheckCase, o: ExploreOptions = {}): CheckReport {
  const t0 = performance.now();
  const r = new Runner(c, o);
  const maxExecutions = o.maxExecutions ?? 200_000;
  let executions = 0;
  let sleepPruned = 0;
  let maxDepth = 0;
  let incomplete = false;
  let found: { ex: Execution; bound: number } | null = null;

  if (o.replay) {
    const nodes = replayNodes(o.replay);
    const ex = r.run(nodes, Infinity, () => null, true);
    executions = 1;
    if (ex.violation) found = { ex, bound: countSwitches(ex.schedule) };
  } else if (o.mode === 'random') {
    let x = (o.seed ?? 1) >>> 0 || 1;
    const rnd = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const iterations = o.iterations ?? 1000;
    for (let i = 0; i < iterations && !found; i++) {
      const ex = r.run([], Infinity, (n) => n.enabled[rnd(n.enabled.length)], false);
      executions++;
      maxDepth = Math.max(maxDepth, ex.steps);
      if (ex.violation) found = { ex, bound: countSwitches(ex.schedule) };
    }
  } else {
    // Iterative context bounding: all schedules with 0 preemptions, then 1, ... so the first
    // counterexample found has as few preemptions as possible.
    const acc: SearchTotals = { executions: 0, sleepPruned: 0, maxDepth: 0, incomplete: false };
    for (let bound = 0; bound <= r.maxPreemptions && !found; bound++) {
      const ex = searchBound(r, bound, [], acc, maxExecutions, o.onProgress);
      if (ex) found = { ex, bound };
      if (acc.executions >= maxExecutions) break;
    }
    ({ executions, sleepPruned, maxDepth, incomplete } = acc);
  }

  // The events of the search (not of the traced re-run of its counterexample below).
  const events = r.events;
  let counterexample: Counterexample | undefined;
  if (found) {
    // Replay the schedule with tracing on.
    const nodes = replayNodes(found.ex.schedule);
    const ex =
      o.replay && found.ex.trace.length ? found.ex : r.run(nodes, Infinity, () => null, true);
    const v = ex.violation ?? found.ex.violation!;
    counterexample = {
      property: v.property,
      text: propertyText(c, v.property),
      message: v.message,
      schedule: found.ex.schedule,
      preemptions: found.bound,
      steps: ex.trace,
      violationStep: Math.min(v.step, Math.max(0, ex.trace.length - 1)),
    };
  }
  const { sometimes, verdict } = judge(r.props, r.reached, !!found, !!o.replay);
  return {
    case: c.id,
    title: c.title,
    ok: verdict === 'verified',
    verdict,
    sometimes,
    executions,
    events,
    sleepPruned,
    maxDepth,
    ms: performance.now() - t0,
    bounds: { preemptions: r.maxPreemptions, maxSteps: r.maxSteps, maxExecutions },
    incomplete,
    naiveLog10: naiveLog10(c),
    ...(counterexample ? { counterexample } : {}),
  };
}

/** Counts a search adds up (over bounds, prefixes, workers). */
export interface SearchTotals {
  executions: number;
  sleepPruned: number;
  maxDepth: number;
  incomplete: boolean;
}

/** The DFS's choice at a new node: keep the previous thread, else the first candidate. */
function boundedPick(bound: number) {
  return (n: Node): number | null => {
    const cands = n.enabled.filter((t) => !n.sleep.has(t) && !n.done.has(t));
    if (cands.includes(n.prev)) return n.prev;
    const prevEnabled = n.prev !== -1 && n.enabled.includes(n.prev);
    if (prevEnabled && n.preemptionsBefore + 1 > bound) return null;
    return cands.length ? cands[0] : null;
  };
}

/**
 * Move the deepest node at or below `floor` with an untried choice within the bound to that
 * choice; the new prefix, or null when the subtree under nodes[0..floor) is exhausted.
 */
function backtrack(nodes: Node[], bound: number, floor: number): Node[] | null {
  for (let i = nodes.length - 1; i >= floor; i--) {
    const n = nodes[i];
    n.done.add(n.chosen);
    const prevEnabled = n.prev !== -1 && n.enabled.includes(n.prev);
    const next = n.enabled.find(
      (t) =>
        !n.sleep.has(t) &&
        !n.done.has(t) &&
        (!prevEnabled || t === n.prev || n.preemptionsBefore + 1 <= bound),
    );
    if (next !== undefined) {
      n.chosen = next;
      return nodes.slice(0, i + 1);
    }
  }
  return null;
}

/**
 * Depth-first search of every schedule within `bound` preemptions that starts with `root` (the
 * nodes of a schedule prefix, kept as they are; [] for the whole tree). Counts go to `acc`;
 * returns the first execution that violates a property, or null.
 */
export function searchBound(
  r: Runner,
  bound: number,
  root: Node[],
  acc: SearchTotals,
  maxExecutions: number,
  onProgress?: (executions: number) => void,
): Execution | null {
  const pick = boundedPick(bound);
  let prefix: Node[] | null = root;
  while (prefix) {
    const ex = r.run(prefix, bound, pick, false);
    acc.executions++;
    if (onProgress && acc.executions % 256 === 0) onProgress(acc.executions);
    acc.maxDepth = Math.max(acc.maxDepth, ex.steps);
    if (ex.cut === 'sleep') acc.sleepPruned++;
    if (ex.cut === 'steps') acc.incomplete = true;
    if (ex.violation) return ex;
    if (acc.executions >= maxExecutions) {
      acc.incomplete = true;
      return null;
    }
    prefix = backtrack(ex.nodes, bound, root.length);
  }
  return null;
}

/**
 * The prefixes of length `depth` of the schedules within `bound` (and the shorter schedules that
 * end before it), in the order the search meets them, each with the search state (sleep and done
 * sets) it has there. Exploring each with searchBound covers the bound's search exactly once.
 */
export function schedulePrefixes(r: Runner, bound: number, depth: number): Node[][] {
  const pick = boundedPick(bound);
  const out: Node[][] = [];
  let prefix: Node[] | null = [];
  while (prefix) {
    const ex = r.run(prefix, bound, pick, false, depth);
    out.push(ex.nodes.map(cloneNode));
    prefix = backtrack(ex.nodes, bound, 0);
  }
  return out;
}

function cloneNode(n: Node): Node {
  return {
    ...n,
    enabled: [...n.enabled],
    events: [...n.events],
    sleep: new Set(n.sleep),
    done: new Set(n.done),
    after: new Map(n.after),
  };
}

/** What a violated property says: the model's text, or the case's own property's. */
function propertyText(c: CheckCase, name: string): string {
  return PROPERTY_TEXT[name as PropertyName] ?? c.own?.find((p) => p.name === name)?.text ?? name;
}

/** Path nodes that only say which thread goes at each step: a schedule to replay. */
function replayNodes(schedule: readonly number[]): Node[] {
  return schedule.map((chosen) => ({
    chosen,
    enabled: [],
    events: [],
    sleep: new Set(),
    done: new Set(),
    preemptionsBefore: 0,
    prev: -1,
    after: new Map(),
  }));
}

/** Context switches of a schedule (random and replayed schedules have no search bound). */
function countSwitches(schedule: number[]): number {
  let n = 0;
  for (let i = 1; i < schedule.length; i++) if (schedule[i] !== schedule[i - 1]) n++;
  return n;
}

/**
 * log10 of (sum n_i)! / prod n_i!: the interleavings of the threads' event sequences, with the
 * lengths from one run in which each thread goes alone to its end in turn.
 */
export function naiveLog10(c: CheckCase): number {
  // With no property checked, so that the sequential run goes to its end.
  const r = new Runner(c, {}, NO_PROPERTIES);
  const lengths = new Array<number>(c.threads.length).fill(0);
  const ex = r.run(
    [],
    Infinity,
    (n) => (n.enabled.includes(n.prev) ? n.prev : n.enabled[0]),
    false,
  );
  for (const t of ex.schedule) lengths[t]++;
  const lf = (n: number) => {
    let s = 0;
    for (let i = 2; i <= n; i++) s += Math.log10(i);
    return s;
  };
  return lf(lengths.reduce((a, b) => a + b, 0)) - lengths.reduce((a, n) => a + lf(n), 0);
}
