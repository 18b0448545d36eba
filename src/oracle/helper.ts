// The native helper (native/thp-helper.c): built with the machine's `cc -O2` into a temporary
// directory, and driven synchronously over a pair of FIFOs per process. The scenario runner is
// synchronous, so the replies are read with non-blocking reads and short sleeps, and every wait
// has a deadline: a helper that dies or hangs becomes an error, never a hung run.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HELPER_SOURCE = fileURLToPath(new URL('../../native/thp-helper.c', import.meta.url));
export const CC_FLAGS = ['-O2', '-Wall', '-Wextra', '-Werror'];

export class HelperError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HelperError';
  }
}

const SLEEP = new Int32Array(new SharedArrayBuffer(4));
/** Block the thread for ms milliseconds (fractions allowed). */
export function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(SLEEP, 0, 0, ms);
}

/** Compile the helper into a new temporary directory; returns the binary and a cleanup. */
export function buildHelper(): { bin: string; dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'thpsim-oracle-'));
  const bin = join(dir, 'thp-helper');
  const r = spawnSync('cc', [...CC_FLAGS, '-o', bin, HELPER_SOURCE], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    const why = (r.stderr || r.error?.message || `exit status ${r.status}`).trim().split('\n')[0];
    throw new HelperError(`cannot build the helper with cc: ${why}`);
  }
  return { bin, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A JSON reply: ok 1 with op-specific fields, or ok 0 with errno and msg. */
export interface Reply {
  ok: 0 | 1;
  errno?: string;
  msg?: string;
  [k: string]: unknown;
}

/** One real process running the helper: a command FIFO and a reply FIFO. */
export class HelperProc {
  private buf = '';
  private closed = false;
  pid = 0;

  constructor(
    readonly name: string,
    private readonly cmdFd: number,
    private readonly replyFd: number,
    private readonly timeoutMs: number,
  ) {}

  get alive(): boolean {
    return !this.closed;
  }

  /** Send one command line and wait for its one-line reply. */
  request(line: string, timeoutMs = this.timeoutMs): Reply {
    if (this.closed) throw new HelperError(`process ${this.name} has exited`);
    const data = Buffer.from(line + '\n');
    let off = 0;
    const deadline = performance.now() + timeoutMs;
    while (off < data.length) {
      try {
        off += writeSync(this.cmdFd, data, off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN') throw new HelperError(`helper ${this.name} is gone (${code})`);
        if (performance.now() > deadline) throw new HelperError(`helper ${this.name}: timeout`);
        sleepSync(0.1);
      }
    }
    return this.readReply(deadline, line);
  }

  /** The first line a new process sends. */
  hello(timeoutMs = this.timeoutMs): Reply {
    return this.readReply(performance.now() + timeoutMs, 'hello');
  }

  private readReply(deadline: number, what: string): Reply {
    const chunk = Buffer.alloc(1 << 16);
    let wait = 0.02;
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl >= 0) {
        const text = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        try {
          return JSON.parse(text) as Reply;
        } catch {
          throw new HelperError(`helper ${this.name}: bad reply to ${what}: ${text.slice(0, 200)}`);
        }
      }
      let n: number;
      try {
        n = readSync(this.replyFd, chunk, 0, chunk.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        n = -1;
      }
      if (n > 0) {
        this.buf += chunk.toString('utf8', 0, n);
        wait = 0.02;
        continue;
      }
      if (n === 0 && this.pid !== 0) {
        this.closed = true;
        throw new HelperError(`helper process ${this.name} died during "${what.split(' ')[0]}"`);
      }
      if (performance.now() > deadline)
        throw new HelperError(`helper ${this.name}: no reply to "${what}" in time`);
      sleepSync(wait);
      wait = Math.min(wait * 2, 2);
    }
  }

  /** The process has exited (after an `exit` command): close our ends. */
  markExited(): void {
    this.close();
  }

  close(): void {
    if (this.closed && this.cmdFd < 0) return;
    this.closed = true;
    for (const fd of [this.cmdFd, this.replyFd]) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}

/**
 * The helper processes of one kernel-side run. The first process is spawned; the others are
 * forked by the helper itself (`fork`), each with its own FIFOs.
 */
export class HelperSession {
  private readonly dir: string;
  private readonly procs: HelperProc[] = [];
  private readonly roots: ChildProcess[] = [];
  private seq = 0;

  constructor(
    private readonly bin: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'thpsim-fifo-'));
  }

  private fifos(): { id: number; cmd: string; reply: string } {
    const id = ++this.seq;
    const cmd = join(this.dir, `cmd.${id}`);
    const reply = join(this.dir, `reply.${id}`);
    const r = spawnSync('mkfifo', ['-m', '600', cmd, reply]);
    if (r.status !== 0) throw new HelperError(`mkfifo failed in ${this.dir}`);
    return { id, cmd, reply };
  }

  /** Open our ends: the reply FIFO first (so the helper's open for writing succeeds). */
  private connect(name: string, cmd: string, reply: string): HelperProc {
    const replyFd = openSync(reply, constants.O_RDONLY | constants.O_NONBLOCK);
    const deadline = performance.now() + 10_000;
    let cmdFd = -1;
    while (cmdFd < 0) {
      try {
        cmdFd = openSync(cmd, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
        if (performance.now() > deadline) {
          closeSync(replyFd);
          throw new HelperError(`helper process ${name} did not start`);
        }
        sleepSync(1);
      }
    }
    const p = new HelperProc(name, cmdFd, replyFd, this.timeoutMs);
    const hello = p.hello();
    p.pid = Number(hello.pid);
    this.procs.push(p);
    return p;
  }

  /** A new, unrelated process. */
  spawn(name: string): HelperProc {
    const f = this.fifos();
    const child = spawn(this.bin, [String(f.id), f.cmd, f.reply], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('error', () => {});
    this.roots.push(child);
    return this.connect(name, f.cmd, f.reply);
  }

  /** parent forks; the child is a new HelperProc. */
  fork(parent: HelperProc, name: string): HelperProc {
    const f = this.fifos();
    const r = parent.request(`fork ${f.id} ${f.cmd} ${f.reply}`);
    if (!r.ok) throw new HelperError(`fork failed: ${r.errno}`);
    return this.connect(name, f.cmd, f.reply);
  }

  /** Close every FIFO (the helpers see end of file and exit), kill the spawned ones. */
  close(): void {
    for (const p of this.procs) p.close();
    for (const c of this.roots) if (c.exitCode === null && c.pid !== undefined) c.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
