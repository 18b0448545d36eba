// `thpsim worker --queue redis://HOST:PORT`: run sweep cells for tune, compare --knob and
// workload --sweep from any host (src/sweep/worker.ts) until SIGINT or SIGTERM.

import { type Command, InvalidArgumentError } from 'commander';
import { QueueError, checkQueueUrl } from '../sweep/queue.ts';
import { startWorker } from '../sweep/worker.ts';
import { CliError, type Io } from './io.ts';
import { parseJobs } from './sweep-options.ts';

interface WorkerOpts {
  queue: string;
  jobs?: number;
  lockMs?: number;
  stalledMs?: number;
  quiet?: boolean;
}

function ms(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 100)
    throw new InvalidArgumentError('expected milliseconds, at least 100.');
  return Number(v);
}

export async function workerCommand(io: Io, opts: WorkerOpts): Promise<void> {
  let w;
  try {
    checkQueueUrl(opts.queue);
    w = await startWorker(opts.queue, {
      ...(opts.jobs !== undefined ? { concurrency: opts.jobs } : {}),
      ...(opts.lockMs !== undefined ? { lockDurationMs: opts.lockMs } : {}),
      ...(opts.stalledMs !== undefined ? { stalledIntervalMs: opts.stalledMs } : {}),
      log: opts.quiet ? undefined : (l) => io.err(`worker: ${l}\n`),
    });
  } catch (e) {
    if (e instanceof QueueError) throw new CliError(e.message, { cause: e });
    throw e;
  }
  io.err(`worker: ready on ${opts.queue} (pid ${process.pid})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  io.err('worker: stopping after the jobs in hand\n');
  await w.close();
}

export function registerWorker(program: Command, io: Io): void {
  program
    .command('worker')
    .description(
      'run sweep cells (tune, compare --knob, workload --sweep with --queue) from a BullMQ queue on Redis until SIGINT/SIGTERM; start one per host',
    )
    .requiredOption('--queue <url>', 'the Redis the sweeps use: redis://HOST:PORT')
    .option('--jobs <n>', 'cells run at once (default: every core)', parseJobs)
    .option(
      '--lock-ms <ms>',
      'BullMQ lock duration: a job whose worker is silent this long is retried elsewhere (default 30000)',
      ms,
    )
    .option('--stalled-ms <ms>', 'how often to look for stalled jobs (default 30000)', ms)
    .option('--quiet', 'no line per job on stderr')
    .addHelpText(
      'after',
      '\nExamples:\n  thpsim worker --queue redis://10.0.0.5:6379\n  thpsim worker --queue redis://10.0.0.5:6379 --jobs 8',
    )
    .action((opts: WorkerOpts) => workerCommand(io, opts));
}
