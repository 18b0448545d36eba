// One thread of a checked execution: a step function run on its own explicit stack, stopped at
// each event so that the explorer decides who goes next. The same protocol as runStep, one
// event at a time.

import type { Step } from '../mm/step.ts';
import { stepName } from './names.ts';

export class ThreadRun {
  readonly id: number;
  /** The event the thread waits to perform, or null when done. */
  pending: number | null = null;
  done = false;
  result: unknown = undefined;
  /** A model exception (an assertion of the kernel model, a lock misuse). */
  error: unknown = null;
  private readonly stack: Step<unknown>[];
  private input: unknown = undefined;

  constructor(id: number, step: Step<unknown>) {
    this.id = id;
    this.stack = [step];
  }

  /** Run until the next event (or the end), after the current one got `answer`. */
  advance(answer: unknown = undefined): void {
    this.input = answer;
    this.pending = null;
    let throwing = false;
    let err: unknown = null;
    for (;;) {
      const cur = this.stack[this.stack.length - 1];
      let r: IteratorResult<number | Step<unknown>, unknown>;
      try {
        r = throwing ? cur.throw(err) : cur.next(this.input);
        throwing = false;
      } catch (e) {
        this.stack.pop();
        if (this.stack.length === 0) {
          this.done = true;
          this.error = e;
          return;
        }
        throwing = true;
        err = e;
        continue;
      }
      if (r.done) {
        this.stack.pop();
        if (this.stack.length === 0) {
          this.done = true;
          this.result = r.value;
          return;
        }
        this.input = r.value;
      } else if (typeof r.value === 'number') {
        this.pending = r.value;
        return;
      } else {
        this.stack.push(r.value);
        this.input = undefined;
      }
    }
  }

  /** The innermost registered kernel function on the thread's stack. */
  fn(fallback: string): string {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const n = stepName(this.stack[i]);
      if (n) return n;
    }
    return fallback;
  }

  /** Whether the registered kernel function `name` is anywhere on the thread's stack. */
  inFn(name: string): boolean {
    for (const g of this.stack) if (stepName(g) === name) return true;
    return false;
  }
}
