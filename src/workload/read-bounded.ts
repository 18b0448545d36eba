// Whole-file reads with a size limit. A file that is not streamed (a scenario, a case file, a
// snapshot, a run result, a DAMON JSON record) is read into memory, so a character device such as
// /dev/zero, a pipe that never ends, or a huge file must stop at a limit with a clear reason
// instead of growing the heap until the process is killed.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const MiB = 1024 * 1024;

/** Size limits per kind of whole-file input, in bytes. */
export const INPUT_LIMITS = {
  /** Scenario YAML/JSON and checker case files: written by hand or generated, never huge. */
  scenario: 16 * MiB,
  /** A `run`/`compare`/`check` result (JSON), including metrics time series. */
  result: 256 * MiB,
  /** A binary snapshot of a process (VMAs and per-page records). */
  snapshot: 1024 * MiB,
  /** A DAMON json_compressed or plain JSON record file, before inflation. */
  damon: 256 * MiB,
} as const;

/** An input over its size limit. `code` is EFBIG, as write(2) names a file too large. */
export class InputTooLargeError extends Error {
  readonly code = 'EFBIG';
  constructor(
    readonly path: string,
    readonly limit: number,
  ) {
    super(`larger than ${formatLimit(limit)}, the limit for this kind of input`);
    this.name = 'InputTooLargeError';
  }
}

function formatLimit(n: number): string {
  return n % MiB === 0 ? `${n / MiB} MiB` : `${n} bytes`;
}

const CHUNK = 1 << 20;

/**
 * Read a whole file (or fd 0 for "-") of at most `limit` bytes. A regular file is checked by its
 * size first; anything else (a pipe, a device) is read until EOF or one byte past the limit.
 * Errors from open/read (ENOENT, EISDIR, EACCES) are thrown as they are.
 */
export function readBounded(path: string, limit: number): Buffer {
  const fd = path === '-' ? 0 : openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      const e = new Error(
        `EISDIR: illegal operation on a directory, read`,
      ) as NodeJS.ErrnoException;
      e.code = 'EISDIR';
      throw e;
    }
    if (st.isFile() && st.size > limit) throw new InputTooLargeError(path, limit);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, limit + 1 - total));
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw e;
      }
      if (n === 0) break;
      total += n;
      if (total > limit) throw new InputTooLargeError(path, limit);
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

/** readBounded, decoded as UTF-8. */
export function readBoundedText(path: string, limit: number): string {
  return readBounded(path, limit).toString('utf8');
}
