// The local pool: sweep cells over all cores of this machine, one worker thread per job slot.
// Each thread is sent an input once (by content hash). With one job slot the cells run in this
// thread. Results come back as the cell's JSON text, so the pool's output equals a serial run's.

import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Cell, SweepInput } from './cell.ts';
import type { PoolReply, PoolTask } from './pool-worker.ts';
import { runCell } from './run-cell.ts';

/** Job slots when none are asked for: every core. */
export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}

/** A worker thread that runs pool-worker.ts, through tsx when this tree runs from source. */
function spawnWorker(): Worker {
  const ext = extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./pool-worker${ext}`, import.meta.url).href;
  const boot =
    ext === '.ts'
      ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`
      : `import(${JSON.stringify(entry)});`;
  return new Worker(boot, { eval: true });
}

interface Slot {
  worker: Worker;
  /** Inputs this thread already has. */
  has: Set<string>;
  busy: { id: number; resolve: (v: string) => void; reject: (e: Error) => void } | null;
}

/** A pool of `size` job slots; `run` queues a cell and resolves with its JSON result. */
export class LocalPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Array<{
    cell: Cell;
    input: SweepInput;
    resolve: (v: string) => void;
    reject: (e: Error) => void;
  }> = [];
  private nextId = 0;
  private closed = false;

  /** `threads`: run in worker threads even with one slot (keeps this thread's loop free). */
  constructor(
    readonly size: number,
    private readonly opts: { threads?: boolean } = {},
  ) {}

  /** Run one cell; rejects with the cell's error. */
  run(cell: Cell, input: SweepInput): Promise<string> {
    if (this.closed) return Promise.reject(new Error('the pool is closed'));
    if (this.size <= 1 && !this.opts.threads)
      return new Promise((resolve, reject) =>
        setImmediate(() => {
          try {
            resolve(runCell(cell, input));
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        }),
      );
    return new Promise((resolve, reject) => {
      this.waiting.push({ cell, input, resolve, reject });
      this.pump();
    });
  }

  private slot(): Slot | null {
    const idle = this.slots.find((s) => !s.busy);
    if (idle) return idle;
    if (this.slots.length >= Math.max(1, this.size)) return null;
    const s: Slot = { worker: spawnWorker(), has: new Set(), busy: null };
    s.worker.on('message', (r: PoolReply) => {
      const b = s.busy;
      if (!b || b.id !== r.id) return;
      s.busy = null;
      if (r.ok) b.resolve(r.value);
      else b.reject(new Error(r.error));
      this.pump();
    });
    const lost = (why: string) => {
      const i = this.slots.indexOf(s);
      if (i >= 0) this.slots.splice(i, 1);
      const b = s.busy;
      s.busy = null;
      b?.reject(new Error(`worker thread ${why}`));
      if (!this.closed) this.pump();
    };
    s.worker.on('error', (e) => lost(`failed: ${e.message}`));
    s.worker.on('exit', (code) => lost(`exited with status ${code}`));
    this.slots.push(s);
    return s;
  }

  private pump(): void {
    while (this.waiting.length) {
      const s = this.slot();
      if (!s) return;
      const t = this.waiting.shift()!;
      const id = this.nextId++;
      s.busy = { id, resolve: t.resolve, reject: t.reject };
      const task: PoolTask = { id, cell: t.cell };
      if (!s.has.has(t.input.hash)) {
        task.input = t.input;
        s.has.add(t.input.hash);
      }
      s.worker.postMessage(task);
    }
  }

  /** Stop every thread (pending cells are rejected). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.waiting.splice(0)) t.reject(new Error('the pool is closed'));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}
