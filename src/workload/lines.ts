// Bounded-memory line reading: a file is read in fixed-size chunks, never whole, and a line
// longer than the limit is an error instead of an unbounded buffer.

import { closeSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

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
      // Decoded a chunk at a time; a multi-byte character split between chunks stays whole.
      const decoder = new StringDecoder('utf8');
      let carry = '';
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
          const text = carry + decoder.write(buf.subarray(0, n));
          let start = 0;
          for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
            lineNo++;
            const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
            yield text.slice(start, end);
            start = nl + 1;
          }
          carry = text.slice(start);
          if (carry.length > maxLine)
            throw new InputError(path, lineNo + 1, `line longer than ${maxLine} bytes`);
        }
        carry += decoder.end();
        if (carry.length) yield carry.replace(/\r$/, '');
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
