// Sweeps across machines on BullMQ (Redis): the side that enqueues a sweep's cells and gathers
// their results. Inputs go to Redis once, by content hash (SET NX); each cell is a job whose
// data is the cell alone. Workers (src/sweep/worker.ts) on any host run the jobs. A worker that
// dies mid-job loses nothing: its lock expires, BullMQ's stalled-job check puts the job back in
// the wait list and another worker runs it. A job that fails `attempts` times is reported with
// its error. Results are the cells' JSON text, so they equal a local run byte for byte.

import { randomBytes } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { Cell, CellOutcome, SweepInput } from './cell.ts';
import { ProgressTracker, type SweepProgress } from './progress.ts';

/** The BullMQ queue every thpsim worker takes cells from. */
export const QUEUE_NAME = 'thpsim-cells';
/** How long an input stays in Redis after a sweep last stored it (s). */
export const INPUT_TTL_S = 7 * 24 * 3600;
/** Tries of a job before it is reported as failed. */
export const ATTEMPTS = 2;

/** The Redis key of an input. */
export const inputKey = (hash: string): string => `thpsim:input:${hash}`;

/** A bad queue URL or an unreachable Redis: one line for the user. */
export class QueueError extends Error {}

/** Check a queue URL: redis://HOST:PORT[/DB] or rediss://... */
export function checkQueueUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueError(`--queue: expected redis://HOST:PORT, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new QueueError(
      `--queue: expected a redis:// or rediss:// URL, got ${JSON.stringify(url)}`,
    );
  if (!u.hostname) throw new QueueError(`--queue: no host in ${JSON.stringify(url)}`);
  return url;
}

/** A plain client that fails fast (no endless reconnects) when Redis is not there. */
export async function connectRedis(url: string): Promise<Redis> {
  const r = new Redis(checkQueueUrl(url), {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    connectTimeout: 5000,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
  });
  r.on('error', () => {}); // reported through the failed connect or command
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    r.disconnect();
    throw new QueueError(`cannot reach Redis at ${url}: ${(e as Error).message}`);
  }
  return r;
}

/** BullMQ's connection options for a URL. */
export function bullConnection(url: string) {
  return { url, maxRetriesPerRequest: null };
}

export interface QueueRunOptions {
  onProgress?: (p: SweepProgress) => void;
  /** The queue's name (default QUEUE_NAME). */
  name?: string;
  attempts?: number;
  /** How often outstanding jobs are also polled, in case an event was missed (ms). */
  pollMs?: number;
}

/** Store the inputs (each once), enqueue the cells, and wait for every result. */
export async function runOnQueue(
  url: string,
  cells: readonly Cell[],
  inputs: readonly SweepInput[],
  opts: QueueRunOptions = {},
): Promise<CellOutcome[]> {
  const name = opts.name ?? QUEUE_NAME;
  const redis = await connectRedis(url);
  const queue = new Queue(name, { connection: bullConnection(url) });
  // Events from now on by Redis's clock: QueueEvents' default ("$") misses those sent before
  // its first read, such as a worker taking the first job right after it is added.
  const [sec, usec] = await redis.time();
  const lastEventId = `${Number(sec) * 1000 + Math.floor(Number(usec) / 1000) - 1}-0`;
  const events = new QueueEvents(name, { connection: bullConnection(url), lastEventId });
  const run = randomBytes(6).toString('hex');
  const ids = cells.map((_, i) => `${run}-${i}`);
  const index = new Map(ids.map((id, i) => [id, i]));
  const out: Array<CellOutcome | undefined> = new Array(cells.length);
  const progress = new ProgressTracker(cells.length);
  const active = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  try {
    const m = redis.multi();
    for (const inp of inputs) {
      m.set(inputKey(inp.hash), JSON.stringify(inp), 'EX', INPUT_TTL_S, 'NX');
      m.expire(inputKey(inp.hash), INPUT_TTL_S);
    }
    await m.exec();
    await events.waitUntilReady();
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    const report = () => opts.onProgress?.({ ...progress.snapshot(), inFlight: active.size });
    const settle = (id: string, o: CellOutcome) => {
      const i = index.get(id);
      if (i === undefined || out[i]) return;
      out[i] = o;
      active.delete(id);
      if (o.ok) progress.done++;
      else progress.failed++;
      report();
      if (progress.done + progress.failed === cells.length) finish();
    };
    const gather = async (id: string) => {
      try {
        const job = await queue.getJob(id);
        if (!job) return;
        const state = await job.getState();
        if (state === 'completed') settle(id, { ok: true, value: String(job.returnvalue) });
        else if (state === 'failed')
          settle(id, { ok: false, error: job.failedReason, attempts: job.attemptsMade });
      } catch {
        // Redis went away for a moment: the next poll asks again
      }
    };
    events.on('active', ({ jobId }) => {
      if (index.has(jobId) && !out[index.get(jobId)!]) {
        active.add(jobId);
        report();
      }
    });
    events.on('completed', ({ jobId }) => void (index.has(jobId) && gather(jobId)));
    events.on('failed', ({ jobId }) => void (index.has(jobId) && gather(jobId)));
    await queue.addBulk(
      cells.map((cell, i) => ({
        name: cell.kind,
        data: { cell },
        opts: {
          jobId: ids[i],
          attempts: opts.attempts ?? ATTEMPTS,
          removeOnComplete: { age: 24 * 3600 },
          removeOnFail: { age: 24 * 3600 },
        },
      })),
    );
    report();
    timer = setInterval(() => {
      for (const id of ids.filter((x) => !out[index.get(x)!]).slice(0, 200)) void gather(id);
    }, opts.pollMs ?? 2000);
    if (cells.length > 0) await finished;
    return out as CellOutcome[];
  } finally {
    if (timer) clearInterval(timer);
    await Promise.allSettled(ids.map((id) => queue.remove(id)));
    await Promise.allSettled([events.close(), queue.close()]);
    redis.disconnect();
  }
}
