// Evaluating a case's properties along one execution: the model's monitor gathers evidence at
// each event, and every property (the model's and the case's own) is judged on a view of that
// point. `always` violations end the execution; a `sometimes` that holds is reported to the
// explorer once; an `eventually` that never held by the end is a violation.

import type { LockTable } from '../mm/locks.ts';
import { S_PMD_ENTRY, S_PTE_ENTRY } from '../mm/step.ts';
import type { Vma } from '../mm/vma.ts';
import {
  MODEL_PROPERTIES,
  Monitor,
  PROPERTIES,
  type PropertyName,
  type Violation,
} from './properties.ts';
import type { Finding, Property, PropertyView } from './property.ts';
import type { ThreadRun } from './thread.ts';
import type { CheckWorld } from './world.ts';

/** A case's properties, sorted by kind. */
export interface CaseProperties {
  always: readonly Property[];
  sometimes: readonly Property[];
  eventually: readonly Property[];
}

/**
 * The properties a case checks: the model's it selects by name (all by default; `crash` always)
 * and its own.
 */
export function caseProperties(
  selected: readonly PropertyName[] | undefined,
  own: readonly Property[] = [],
): CaseProperties {
  const names = new Set<string>(selected ?? PROPERTIES);
  names.add('crash');
  const model = MODEL_PROPERTIES.filter((p) => names.has(p.name));
  const all = [...model, ...own];
  const seen = new Set<string>();
  for (const p of all) {
    if (seen.has(p.name)) throw new Error(`property "${p.name}" is defined twice`);
    seen.add(p.name);
  }
  return {
    always: all.filter((p) => p.kind === 'always'),
    sometimes: all.filter((p) => p.kind === 'sometimes'),
    eventually: all.filter((p) => p.kind === 'eventually'),
  };
}

/** No properties at all (for the explorer's own sequential runs). */
export const NO_PROPERTIES: CaseProperties = { always: [], sometimes: [], eventually: [] };

/** The view predicates see: one object per execution, moved from point to point. */
class View implements PropertyView {
  at: 'step' | 'end' = 'step';
  step = 0;
  thread = -1;
  event = -1;
  fn = '';
  findings: readonly Finding[] = [];
  constructor(
    readonly w: CheckWorld,
    readonly locks: LockTable,
    readonly threadNames: readonly string[],
    private readonly threads: readonly ThreadRun[],
    private readonly mon: Monitor,
  ) {}
  fnOf(u: number): string {
    const t = this.threads[u];
    return t.done ? '' : t.fn(this.threadNames[u]);
  }
  inFn(u: number, name: string): boolean {
    return this.threads[u].inFn(name);
  }
  done(u: number): boolean {
    return this.threads[u].done;
  }
  cleared(u: number, level?: 'pmd' | 'pte'): boolean {
    return this.mon.clearedBy(
      u,
      level === 'pmd' ? S_PMD_ENTRY : level === 'pte' ? S_PTE_ENTRY : undefined,
    );
  }
}

/** One execution's evaluation. */
export class PropertyRun {
  readonly violations: Violation[] = [];
  private readonly mon: Monitor;
  private readonly view: View;
  /** The sometimes not reached yet (in any execution so far). */
  private pending: Property[];
  private readonly held = new Set<string>();
  /** Whether the case has always properties of its own (judged at every point). */
  private readonly ownAlways: boolean;

  constructor(
    w: CheckWorld,
    locks: LockTable,
    private readonly props: CaseProperties,
    threadVma: ReadonlyArray<Vma | undefined>,
    threadNames: readonly string[],
    threads: readonly ThreadRun[],
    private readonly isReached: (name: string) => boolean,
    private readonly onReached: (name: string, step: number, thread: number) => void,
  ) {
    this.ownAlways = props.always.some((p) => !MODEL_PROPERTIES.includes(p));
    this.mon = new Monitor(w, threadVma, threadNames);
    this.view = new View(w, locks, threadNames, threads, this.mon);
    this.pending = props.sometimes.filter((p) => !isReached(p.name));
  }

  /** Whether the model's property of that name is checked. */
  checks(name: PropertyName): boolean {
    return this.props.always.some((p) => p.name === name);
  }

  /** Evidence the explorer found itself (a model exception, a deadlock). */
  report(f: Finding, step: number): void {
    this.mon.findings.push({ ...f, step });
    this.judge(step);
  }

  /** Before thread t performs event e in function fn at step `step`. */
  before(t: number, e: number, fn: string, step: number, locks: LockTable): void {
    this.mon.before(t, e, fn, step, locks);
    const v = this.view;
    v.at = 'step';
    v.step = step;
    v.thread = t;
    v.event = e;
    v.fn = fn;
    this.judge(step);
    this.point();
  }

  /** After thread t ran the block that followed its event. */
  after(t: number, step: number): void {
    this.mon.after(t, step);
    if (this.mon.findings.length) this.judge(step);
  }

  /** Every thread has finished. */
  end(step: number): void {
    this.mon.quiescence(step);
    const v = this.view;
    v.at = 'end';
    v.step = step;
    v.thread = -1;
    v.event = -1;
    v.fn = '';
    this.judge(step);
    this.point();
    for (const p of this.props.eventually)
      if (!this.held.has(p.name))
        this.violations.push({
          property: p.name,
          message: `the execution ended without: ${p.text}`,
          step: Math.max(0, step - 1),
        });
  }

  /** The always properties over the monitor's findings, then the case's own at this point. */
  private judge(step: number): void {
    const v = this.view;
    if (this.mon.findings.length === 0 && !this.ownAlways) return;
    v.findings = this.mon.findings;
    for (const p of this.props.always)
      if (!p.check(v))
        this.violations.push({ property: p.name, message: p.explain?.(v) ?? p.text, step });
    this.mon.findings.length = 0;
    v.findings = [];
  }

  private point(): void {
    const v = this.view;
    if (this.pending.length) {
      let dropped = false;
      for (const p of this.pending)
        if (!this.isReached(p.name) && p.check(v)) {
          this.onReached(p.name, v.step, v.thread);
          dropped = true;
        }
      if (dropped) this.pending = this.pending.filter((p) => !this.isReached(p.name));
    }
    for (const p of this.props.eventually)
      if (!this.held.has(p.name) && p.check(v)) this.held.add(p.name);
  }
}
