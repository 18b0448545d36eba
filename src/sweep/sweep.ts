// A sweep: cells run on the BullMQ queue when a URL is given, else over the local cores. Either
// way the outcomes come back in cell order as the cells' JSON text.

import type { Cell, CellOutcome, SweepInput } from './cell.ts';
import { LocalPool, defaultJobs } from './pool.ts';
import { ProgressTracker, type SweepProgress } from './progress.ts';
import { runOnQueue } from './queue.ts';

export interface SweepOptions {
  /** redis://HOST:PORT: run the cells on the workers of that queue. */
  queue?: string;
  /** Local job slots (default: every core); ignored with a queue. */
  jobs?: number;
  onProgress?: (p: SweepProgress) => void;
}

/** Run the cells locally over `jobs` slots. */
export async function runLocal(
  cells: readonly Cell[],
  inputs: readonly SweepInput[],
  opts: Omit<SweepOptions, 'queue'> = {},
): Promise<CellOutcome[]> {
  const byHash = new Map(inputs.map((i) => [i.hash, i]));
  const pool = new LocalPool(Math.min(opts.jobs ?? defaultJobs(), Math.max(1, cells.length)));
  const progress = new ProgressTracker(cells.length);
  const report = () => opts.onProgress?.(progress.snapshot());
  try {
    return await Promise.all(
      cells.map(async (cell): Promise<CellOutcome> => {
        const input = byHash.get(cell.input);
        if (!input) return { ok: false, error: `no input ${cell.input}`, attempts: 0 };
        progress.inFlight++;
        try {
          const value = await pool.run(cell, input);
          progress.done++;
          return { ok: true, value };
        } catch (e) {
          progress.failed++;
          return { ok: false, error: (e as Error).message, attempts: 1 };
        } finally {
          progress.inFlight--;
          report();
        }
      }),
    );
  } finally {
    await pool.close();
  }
}

/** Run the cells (see the file comment). */
export function runSweep(
  cells: readonly Cell[],
  inputs: readonly SweepInput[],
  opts: SweepOptions = {},
): Promise<CellOutcome[]> {
  return opts.queue ? runOnQueue(opts.queue, cells, inputs, opts) : runLocal(cells, inputs, opts);
}

/** The values of the outcomes, parsed; throws one error naming every failed cell. */
export function valuesOrThrow<T>(
  cells: readonly Cell[],
  outs: readonly CellOutcome[],
  name: (c: Cell) => string,
): T[] {
  const bad = outs
    .map((o, i) => [o, i] as const)
    .filter(([o]) => !o.ok)
    .map(
      ([o, i]) =>
        `${name(cells[i])}: ${(o as { error: string }).error}${(o as { attempts: number }).attempts > 1 ? ` (failed ${(o as { attempts: number }).attempts} times)` : ''}`,
    );
  if (bad.length)
    throw new SweepError(`${bad.length} of ${outs.length} cells failed: ${bad.join('; ')}`);
  return outs.map((o) => JSON.parse((o as { value: string }).value) as T);
}

/** Some cells of a sweep failed. */
export class SweepError extends Error {}
