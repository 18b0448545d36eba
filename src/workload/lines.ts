// Bounded-memory line reading: a file is read in fixed-size chunks, never whole, and a line
// longer than the limit is an error instead of an unbounded buffer.

import { closeSync, openSync, readSync } from 'node:fs';

export class InputError extends Error {
  constructor(
    readonly source: string,
    /** 1-based line number, or 0 when the error is not about one line. */
    readonly line: number,
    message: string,
  ) {
    super(`${source}${line > 0 ? `:${line}` : ''}: ${message}`);
  }
}

export const CHUNK_BYTES = 1 << 16;
export const MAX_LINE_BYTES = 1 << 20;

/** Bytes consumed so far (for throughput figures) and the lines of a file, lazily. */
export interface LineSource extends Iterable<string> {
  readonly name: string;
  bytesRead: number;
}

/** The lines of a file (or of fd 0 for "-"), decoded as UTF-8, without their line ends. */
export function fileLines(path: string, maxLine = MAX_LINE_BYTES): LineSource {
  const src: LineSource = {
    name: path,
    bytesRead: 0,
    *[Symbol.iterator]() {
      let fd: number;
      try {
        fd = path === '-' ? 0 : openSync(path, 'r');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new InputError(
          path,
          0,
          code === 'ENOENT'
            ? 'no such file'
            : code === 'EACCES'
              ? 'permission denied'
              : String((e as Error).message),
        );
      }
      const buf = Buffer.allocUnsafe(CHUNK_BYTES);
      let carry: Buffer = Buffer.alloc(0);
      let lineNo = 0;
      try {
        for (;;) {
          let n: number;
          try {
            n = readSync(fd, buf, 0, buf.length, null);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'EISDIR')
              throw new InputError(path, 0, 'is a directory');
            if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
            throw e;
          }
          if (n === 0) break;
          src.bytesRead += n;
          let start = 0;
          for (let i = 0; i < n; i++) {
            if (buf[i] !== 10) continue;
            const piece = buf.subarray(start, i);
            const line = carry.length ? Buffer.concat([carry, piece]) : piece;
            carry = Buffer.alloc(0);
            lineNo++;
            yield line.toString('utf8').replace(/\r$/, '');
            start = i + 1;
          }
          if (start < n) {
            if (carry.length + (n - start) > maxLine)
              throw new InputError(path, lineNo + 1, `line longer than ${maxLine} bytes`);
            carry = Buffer.concat([carry, buf.subarray(start, n)]);
          }
        }
        if (carry.length) yield carry.toString('utf8').replace(/\r$/, '');
      } finally {
        if (fd !== 0) closeSync(fd);
      }
    },
  };
  return src;
}

/** The same over text in memory (tests, fuzzing). */
export function textLines(text: string, name = '<text>'): LineSource {
  return {
    name,
    bytesRead: text.length,
    *[Symbol.iterator]() {
      const lines = text.split('\n');
      if (lines.length && lines[lines.length - 1] === '') lines.pop();
      for (const l of lines) yield l.replace(/\r$/, '');
    },
  };
}
