// Changes to the live kernel's THP knobs go through a SysfsGuard. It says what it is about to
// change before it changes it, remembers the value each file held before its first change, and
// puts every one of them back on restore(): after a run, on an exception (callers restore in
// `finally`), at process exit and on SIGINT/SIGTERM. The original values are also kept in a
// journal file while changes are outstanding, so a run killed with SIGKILL is repaired by the
// next guard created with the same journal.

import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sysfsValueOf } from '../scenario/selftest.ts';

export interface GuardOptions {
  /** The transparent_hugepage directory (a fake one in tests). */
  root: string;
  /** Where the notes go ("will set ...", "restored ..."). */
  log?: (line: string) => void;
  /** A journal of the original values; none when undefined. */
  journal?: string;
}

interface Journal {
  pid: number;
  root: string;
  values: Array<[string, string]>;
}

export class SysfsGuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SysfsGuardError';
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class SysfsGuard {
  readonly root: string;
  private readonly log: (line: string) => void;
  private readonly journal: string | undefined;
  /** Original values, in the order of first change. */
  private readonly saved = new Map<string, string>();
  private disposers: Array<() => void> = [];

  constructor(opts: GuardOptions) {
    this.root = opts.root;
    this.log = opts.log ?? (() => {});
    this.journal = opts.journal;
    this.repairStale();
  }

  /** Files changed and not yet restored, with their original values. */
  get changed(): ReadonlyMap<string, string> {
    return this.saved;
  }

  /** The value a file holds: the [selected] word of a choice list, else the text. */
  read(rel: string): string {
    return sysfsValueOf(readFileSync(join(this.root, rel), 'utf8'));
  }

  /** Write a value, first noting (and journalling) the original on the first change. */
  write(rel: string, value: string): void {
    if (!this.saved.has(rel)) {
      const before = this.read(rel);
      if (before !== value) this.log(`sysfs: ${rel}: ${before} -> ${value}`);
      this.saved.set(rel, before);
      this.writeJournal();
    }
    this.raw(rel, value);
  }

  private raw(rel: string, value: string): void {
    try {
      writeFileSync(join(this.root, rel), value);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      throw new SysfsGuardError(`cannot write ${JSON.stringify(value)} to ${rel}: ${code}`);
    }
  }

  /**
   * Put back every changed file, last changed first. Every file is tried; the failures are
   * reported together. Safe to call more than once.
   */
  restore(): void {
    if (this.saved.size === 0) return;
    const failed: string[] = [];
    const entries = [...this.saved].reverse();
    for (const [rel, value] of entries) {
      try {
        this.raw(rel, value);
      } catch (e) {
        failed.push((e as Error).message);
      }
    }
    this.log(
      `sysfs: restored ${entries.length - failed.length} of ${entries.length} changed value(s)`,
    );
    this.saved.clear();
    if (failed.length === 0) this.removeJournal();
    else throw new SysfsGuardError(`could not restore: ${failed.join('; ')}`);
  }

  /**
   * Restore on process exit and on SIGINT/SIGTERM (then exit with 128 + the signal number).
   * Returns a function that removes the handlers.
   */
  installExitHandlers(): () => void {
    const onExit = () => {
      try {
        this.restore();
      } catch {
        // at exit there is nobody left to tell
      }
    };
    const onSignal = (sig: NodeJS.Signals) => {
      this.log(`sysfs: ${sig}: restoring before exit`);
      onExit();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    process.on('exit', onExit);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const dispose = () => {
      process.off('exit', onExit);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    this.disposers.push(dispose);
    return dispose;
  }

  /** Restore, then remove the exit handlers. */
  close(): void {
    try {
      this.restore();
    } finally {
      for (const d of this.disposers) d();
      this.disposers = [];
    }
  }

  private writeJournal(): void {
    if (!this.journal) return;
    const j: Journal = { pid: process.pid, root: this.root, values: [...this.saved] };
    const tmp = `${this.journal}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(j) + '\n');
    renameSync(tmp, this.journal);
  }

  private removeJournal(): void {
    if (this.journal && existsSync(this.journal)) unlinkSync(this.journal);
  }

  /** A journal left by a run that died without restoring: put its values back. */
  private repairStale(): void {
    if (!this.journal || !existsSync(this.journal)) return;
    let j: Journal;
    try {
      j = JSON.parse(readFileSync(this.journal, 'utf8')) as Journal;
    } catch {
      this.log(`sysfs: ignoring an unreadable journal ${this.journal}`);
      unlinkSync(this.journal);
      return;
    }
    if (j.pid !== process.pid && pidAlive(j.pid)) return; // another run is still going
    if (j.root !== this.root) return;
    this.log(
      `sysfs: a previous run (pid ${j.pid}) did not restore ${j.values.length} value(s); restoring them`,
    );
    for (const [rel, value] of [...j.values].reverse()) {
      try {
        this.raw(rel, value);
      } catch (e) {
        this.log(`sysfs: ${(e as Error).message}`);
      }
    }
    unlinkSync(this.journal);
  }
}

/**
 * One oracle run per machine at a time: two runs writing the same global knobs would spoil each
 * other. The lock is a file holding the owner's pid, created exclusively; a lock whose owner has
 * died is taken over. Waits up to timeoutMs; returns the release function.
 */
export function acquireMachineLock(
  path: string,
  timeoutMs: number,
  log: (line: string) => void = () => {},
): () => void {
  const deadline = performance.now() + timeoutMs;
  const wait = new Int32Array(new SharedArrayBuffer(4));
  let told = false;
  for (;;) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner: number;
    try {
      owner = Number(readFileSync(path, 'utf8').trim());
    } catch {
      continue; // released in between
    }
    if (!Number.isInteger(owner) || owner === process.pid || !pidAlive(owner)) {
      try {
        unlinkSync(path);
      } catch {
        // someone else took it over first
      }
      continue;
    }
    if (performance.now() > deadline)
      throw new SysfsGuardError(`another oracle run (pid ${owner}) is using the THP knobs`);
    if (!told) log(`oracle: waiting for another oracle run (pid ${owner}) to finish`);
    told = true;
    Atomics.wait(wait, 0, 0, 200);
  }
}
