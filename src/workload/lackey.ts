// Valgrind lackey traces (valgrind --tool=lackey --trace-mem=yes): one line per memory access,
//   "I  04222cd0,3"   instruction fetch (ignored)
//   " L 04222cd8,8"   load
//   " S 7ff000ba8,8"  store
//   " M 0421f4a8,4"   modify (load and store)
// plus "==PID== ..." lines of Valgrind itself. Accesses are aggregated per page per interval (a
// number of data accesses that stands for an amount of simulated time): at the end of each
// interval every page touched in it is accessed once, written if any access wrote it, then the
// clock advances and khugepaged runs. Lackey says nothing about mappings, so each touched 2 MiB
// of address space becomes anonymous memory (heap, stack, data and libraries alike).

import { InputError, type LineSource } from './lines.ts';
import type { ReplayOp } from './replay.ts';

export interface LackeyOptions {
  /** Data accesses per interval (default 100000). */
  intervalAccesses?: number;
  /** Simulated ms per interval (default 100). */
  intervalMs?: number;
  /** The process name (default "traced"). */
  proc?: string;
  pageSize?: number;
}

const LINE = /^(?:I {2}| [LSM] )([0-9a-fA-F]{1,16}),(\d{1,10})$/;
/** The top of the x86-64 and arm64 user address space (47 bits). */
const USER_TOP = 2 ** 47;

export interface LackeyStats {
  lines: number;
  dataAccesses: number;
  intervals: number;
  pagesAccessed: number;
}

export function* parseLackey(
  src: LineSource,
  opts: LackeyOptions = {},
  stats: LackeyStats = { lines: 0, dataAccesses: 0, intervals: 0, pagesAccessed: 0 },
): Generator<ReplayOp> {
  const per = opts.intervalAccesses ?? 100_000;
  const ms = opts.intervalMs ?? 100;
  const proc = opts.proc ?? 'traced';
  const ps = opts.pageSize ?? 4096;
  if (!(per >= 1) || !Number.isSafeInteger(per))
    throw new InputError(src.name, 0, 'interval must be a positive whole number of accesses');
  /** Page -> written, in first-touch order, for the current interval. */
  let pages = new Map<number, boolean>();
  let inInterval = 0;
  let lineNo = 0;
  let sawData = false;
  function* flush(line: number): Generator<ReplayOp> {
    if (pages.size === 0) return;
    stats.intervals++;
    for (const [page, write] of pages) {
      const addr = page * ps;
      yield { op: 'ensure', proc, addr, length: ps, line };
      yield { op: 'access', proc, addr, length: 1, write, line };
      stats.pagesAccessed++;
    }
    yield { op: 'sleep', ms, line };
    pages = new Map();
    inInterval = 0;
  }
  for (const raw of src) {
    lineNo++;
    stats.lines++;
    if (raw === '' || raw.startsWith('==')) continue;
    // Instruction fetches ("I  addr,size") are most of a trace: a cheap shape check, no regex.
    if (raw.charCodeAt(0) === 73 && raw.charCodeAt(1) === 32 && raw.charCodeAt(2) === 32) {
      const comma = raw.indexOf(',', 3);
      if (comma > 3 && comma < raw.length - 1 && comma < 20) continue;
    }
    const m = LINE.exec(raw);
    if (!m)
      throw new InputError(
        src.name,
        lineNo,
        `not a lackey line: ${JSON.stringify(raw.slice(0, 60))}`,
      );
    if (raw.charCodeAt(0) === 73) continue;
    const addr = Number.parseInt(m[1], 16);
    const size = Number(m[2]);
    if (addr + size > USER_TOP)
      throw new InputError(src.name, lineNo, `address 0x${m[1]} is not a user-space address`);
    const kind = raw[1];
    const write = kind !== 'L';
    sawData = true;
    stats.dataAccesses++;
    const first = Math.floor(addr / ps);
    const last = Math.floor((addr + Math.max(size, 1) - 1) / ps);
    for (let p = first; p <= last; p++) pages.set(p, (pages.get(p) ?? false) || write);
    if (++inInterval >= per) yield* flush(lineNo);
  }
  yield* flush(lineNo);
  if (!sawData)
    throw new InputError(src.name, 0, 'no data accesses (L, S or M lines) in the trace');
}
