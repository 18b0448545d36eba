// The worker-thread side of the local pool (src/sweep/pool.ts): runs the cells it is sent, and
// keeps each input it was sent once, by content hash.

import { parentPort } from 'node:worker_threads';
import type { Cell, SweepInput } from './cell.ts';
import { runCell } from './run-cell.ts';

/** A task from the pool: a cell, and its input if this thread has not had it yet. */
export interface PoolTask {
  id: number;
  cell: Cell;
  input?: SweepInput;
}

export type PoolReply =
  { id: number; ok: true; value: string } | { id: number; ok: false; error: string };

const inputs = new Map<string, SweepInput>();

parentPort?.on('message', (t: PoolTask) => {
  let reply: PoolReply;
  try {
    if (t.input) inputs.set(t.input.hash, t.input);
    const input = inputs.get(t.cell.input);
    if (!input) throw new Error(`input ${t.cell.input} was never sent to this worker`);
    reply = { id: t.id, ok: true, value: runCell(t.cell, input) };
  } catch (e) {
    reply = { id: t.id, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort!.postMessage(reply);
});
