// Output plumbing for the CLI: where text goes, whether it may be coloured, one-line errors, and
// files written atomically (a temporary file in the same directory, then rename).

import { randomBytes } from 'node:crypto';
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import pc from 'picocolors';
import { isDirectory } from '../scenario/is-directory.ts';

/** A user-facing error: printed as one line `thpsim: <message>`, exit status 2 (bad input). */
export class CliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** The command cannot run on this machine (permissions, missing kernel feature): exit status 3. */
export class UnavailableError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnavailableError';
  }
}

export interface Io {
  out(s: string): void;
  err(s: string): void;
  /** ANSI colours allowed on stdout. */
  color: boolean;
  /** Where a progress bar may go: stderr when it is a terminal, else nothing. */
  progress?: NodeJS.WriteStream;
}

/**
 * Colours only on a terminal: picocolors also turns them on for any CI=... environment, which
 * would put escape codes into piped output. FORCE_COLOR still forces them; NO_COLOR still wins.
 */
export function stdoutColor(): boolean {
  if (process.env.FORCE_COLOR) return pc.isColorSupported;
  return pc.isColorSupported && process.stdout.isTTY === true && process.env.TERM !== 'dumb';
}

export const processIo: Io = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  color: stdoutColor(),
  progress: process.stderr.isTTY && process.env.TERM !== 'dumb' ? process.stderr : undefined,
};

/** Collapse a message to one line (no stack, no embedded newlines). */
export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** Write a whole file or nothing: never leaves a partial file under `path`. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const abs = resolve(path);
  const tmp = join(
    dirname(abs),
    `.${basename(abs)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  if (isDirectory(abs)) throw new CliError(`cannot write ${path}: is a directory`);
  try {
    writeFileSync(tmp, data, { flag: 'wx' });
    renameSync(tmp, abs);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // the temporary file was never created
    }
    throw new CliError(`cannot write ${path}: ${oneLine((e as Error).message)}`, { cause: e });
  }
}
