// Progress of a sweep: cells done, failed, in flight and the estimated time left, as one line on
// stderr (rewritten in place on a terminal, every few seconds otherwise). Never on stdout.

/** Where a sweep stands. */
export interface SweepProgress {
  total: number;
  done: number;
  failed: number;
  inFlight: number;
  elapsedMs: number;
  /** Estimated ms left from the rate so far, or null before the first cell ends. */
  etaMs: number | null;
}

/** A progress tracker: call the counters as cells start and end; `snapshot()` reads them. */
export class ProgressTracker {
  done = 0;
  failed = 0;
  inFlight = 0;
  private readonly started = Date.now();

  constructor(readonly total: number) {}

  snapshot(): SweepProgress {
    const elapsedMs = Date.now() - this.started;
    const ended = this.done + this.failed;
    return {
      total: this.total,
      done: this.done,
      failed: this.failed,
      inFlight: this.inFlight,
      elapsedMs,
      etaMs: ended > 0 ? Math.round((elapsedMs / ended) * (this.total - ended)) : null,
    };
  }
}

const secs = (ms: number): string =>
  ms >= 60_000
    ? `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`
    : `${(ms / 1000).toFixed(1)}s`;

/** One line: "sweep: 12/40 done, 0 failed, 2 in flight, ETA 31.0s". */
export function progressLine(p: SweepProgress, where: string): string {
  return `sweep ${where}: ${p.done}/${p.total} done, ${p.failed} failed, ${p.inFlight} in flight, ${p.etaMs === null ? 'ETA -' : `ETA ${secs(p.etaMs)}`}`;
}

/**
 * A reporter that writes progress lines to `stream`: in place on a terminal, else at most one
 * line every `everyMs` (and the last one). Quiet for sweeps that end within `delayMs`.
 */
export function progressReporter(
  stream: { write(s: string): unknown; isTTY?: boolean } | undefined,
  where: string,
  opts: { everyMs?: number; delayMs?: number } = {},
): { update: (p: SweepProgress) => void; end: (p: SweepProgress) => void } {
  if (!stream) return { update: () => {}, end: () => {} };
  const every = opts.everyMs ?? (stream.isTTY ? 200 : 5000);
  const delay = opts.delayMs ?? 1000;
  let last = 0;
  let shown = false;
  const show = (p: SweepProgress, final: boolean) => {
    const line = progressLine(p, where);
    if (stream.isTTY) stream.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else stream.write(`${line}\n`);
    shown = true;
  };
  return {
    update: (p) => {
      const now = Date.now();
      if (p.elapsedMs < delay || now - last < every) return;
      last = now;
      show(p, false);
    },
    end: (p) => {
      if (shown || p.elapsedMs >= delay) show(p, true);
    },
  };
}
