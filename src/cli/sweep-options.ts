// The options every sweep command shares: --queue URL (BullMQ workers) and --jobs N (local
// parallel runs), and the progress line on stderr.

import { InvalidArgumentError } from 'commander';
import { type SweepProgress, progressReporter } from '../sweep/progress.ts';
import { checkQueueUrl, QueueError } from '../sweep/queue.ts';
import type { SweepOptions } from '../sweep/sweep.ts';
import { CliError, type Io } from './io.ts';

export function parseJobs(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1024)
    throw new InvalidArgumentError('expected a number of jobs from 1 to 1024.');
  return Number(v);
}

export interface Progress {
  update(p: SweepProgress): void;
  end(): void;
}

/**
 * Progress on stderr: rewritten in place on a terminal; otherwise a line every 5 s, only for
 * sweeps on a queue (long and remote), so piped local runs keep stderr for errors.
 */
export function progressTo(io: Io, where: string, queued = where !== 'locally'): Progress {
  const stream = io.progress ?? (queued ? { write: (s: string) => io.err(s) } : undefined);
  const r = progressReporter(stream, where);
  let last: SweepProgress | null = null;
  return {
    update: (p) => {
      last = p;
      r.update(p);
    },
    end: () => {
      if (last) r.end(last);
    },
  };
}

/** The sweep options from --queue and --jobs. */
export function sweepOptions(
  opts: { queue?: string; jobs?: number },
  progress: Progress,
): SweepOptions {
  if (opts.queue !== undefined) {
    try {
      checkQueueUrl(opts.queue);
    } catch (e) {
      if (e instanceof QueueError) throw new CliError(e.message);
      throw e;
    }
  }
  return {
    ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
    ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
    onProgress: (p) => progress.update(p),
  };
}
