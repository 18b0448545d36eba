// `thpsim worker --queue URL`: a BullMQ worker that runs sweep cells (src/sweep/queue.ts) on
// this host. Cells run in worker threads (the local pool), so this thread stays free to renew
// the job locks: a long cell is never mistaken for a dead worker. Inputs are fetched from Redis
// by content hash once and kept.

import { Worker } from 'bullmq';
import type { Cell, SweepInput } from './cell.ts';
import { LocalPool, defaultJobs } from './pool.ts';
import { QUEUE_NAME, bullConnection, connectRedis, inputKey } from './queue.ts';

export interface WorkerOptions {
  /** Cells run at once (default: every core). */
  concurrency?: number;
  /** BullMQ's lock duration: a job whose lock is not renewed for this long has stalled (ms). */
  lockDurationMs?: number;
  /** How often this worker checks for stalled jobs (ms). */
  stalledIntervalMs?: number;
  name?: string;
  log?: (line: string) => void;
}

export interface RunningWorker {
  /** Finish the jobs in hand, then stop. */
  close(): Promise<void>;
}

/** Start a worker on the queue at `url`. */
export async function startWorker(url: string, opts: WorkerOptions = {}): Promise<RunningWorker> {
  const redis = await connectRedis(url);
  const concurrency = opts.concurrency ?? defaultJobs();
  const pool = new LocalPool(concurrency, { threads: true });
  const inputs = new Map<string, SweepInput>();
  const log = opts.log ?? (() => {});
  const input = async (hash: string): Promise<SweepInput> => {
    const have = inputs.get(hash);
    if (have) return have;
    const text = await redis.get(inputKey(hash));
    if (text === null) throw new Error(`input ${hash} is not in Redis (expired or never stored)`);
    const got = JSON.parse(text) as SweepInput;
    inputs.set(hash, got);
    return got;
  };
  const worker = new Worker(
    opts.name ?? QUEUE_NAME,
    async (job) => {
      const cell = (job.data as { cell: Cell }).cell;
      const t0 = Date.now();
      const value = await pool.run(cell, await input(cell.input));
      log(`job ${job.id} done in ${Date.now() - t0} ms`);
      return value;
    },
    {
      connection: bullConnection(url),
      concurrency,
      ...(opts.lockDurationMs ? { lockDuration: opts.lockDurationMs } : {}),
      ...(opts.stalledIntervalMs ? { stalledInterval: opts.stalledIntervalMs } : {}),
    },
  );
  worker.on('failed', (job, e) => log(`job ${job?.id ?? '?'} failed: ${e.message}`));
  worker.on('error', (e) => log(`error: ${e.message}`));
  await worker.waitUntilReady();
  return {
    close: async () => {
      await worker.close();
      await pool.close();
      redis.disconnect();
    },
  };
}
