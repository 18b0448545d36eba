// DAMON monitoring records (damo record) as a touch pattern.
//
// Two formats of damo:
//   perf script text of damon:damon_aggregated, one line per region per aggregation interval:
//     "kdamond.0 4452 [000] 82820.952659: damon:damon_aggregated: target_id=... nr_regions=8
//      94253027950592-94253031862272: 0"   (an age field may follow nr_accesses)
//   json_compressed: zlib-compressed JSON, [{target_id, snapshots: [{start_time, end_time,
//     regions: [{start, end, nr_accesses: {samples}}]}]}] (numbers may be "94,827,419,009,024").
//
// Each snapshot (one aggregation interval of one target) becomes: the simulated clock advances
// to the snapshot's time (khugepaged runs), then every region with nr_accesses > 0 is touched,
// one page in every k, k = round(max_accesses / nr_accesses) (max_accesses: the sampling
// intervals per aggregation interval, 20 with DAMON's defaults of 5 ms and 100 ms). A region is
// mapped as anonymous memory the first time it is accessed. Each target is a process.
//
// The perf script text streams line by line. json_compressed is one compressed JSON document,
// so it is inflated whole, up to a limit (MAX_JSON_BYTES).

import { inflateSync } from 'node:zlib';
import { INPUT_LIMITS, readBounded } from './read-bounded.ts';
import { InputError, type LineSource } from './lines.ts';
import type { ReplayOp } from './replay.ts';

export interface DamonOptions {
  /** Sampling intervals per aggregation interval (default 20). */
  maxAccesses?: number;
  /** Write the touched pages (default) or only read them (zero pages until written). */
  write?: boolean;
  /** Stop after this many snapshots per target. */
  maxSnapshots?: number;
  pageSize?: number;
}

export interface DamonRegion {
  start: number;
  end: number;
  nrAccesses: number;
}

export interface DamonSnapshot {
  /** Where it came from (the file) and its first line (0 for json_compressed). */
  source: string;
  line: number;
  target: string;
  /** Seconds. */
  time: number;
  regions: DamonRegion[];
}

const USER_TOP = 2 ** 47;
/** Snapshots further apart than this (a day) mean a corrupted time stamp. */
const MAX_GAP_S = 86_400;
export const MAX_JSON_BYTES = 256 * 1024 * 1024;

const PERF_LINE =
  /^\s*\S+\s+\d+\s+\[\d+\]\s+(\d+(?:\.\d+)?):\s+damon:damon_aggregated:\s+target_id=(\d+)\s+nr_regions=(\d+)\s+(\d+)-(\d+):\s+(\d+)(?:\s+\d+)?\s*$/;

/** damo's perf script text, as snapshots, one line at a time. */
export function* parseDamonPerfScript(src: LineSource): Generator<DamonSnapshot> {
  const open = new Map<string, { snap: DamonSnapshot; want: number; line: number }>();
  let lineNo = 0;
  let any = false;
  for (const raw of src) {
    lineNo++;
    if (raw.trim() === '') continue;
    const m = PERF_LINE.exec(raw);
    if (!m)
      throw new InputError(
        src.name,
        lineNo,
        `not a damon:damon_aggregated line: ${JSON.stringify(raw.slice(0, 60))}`,
      );
    const [, time, target, nr, s, e, acc] = m;
    const start = Number(s);
    const end = Number(e);
    const want = Number(nr);
    if (!(start < end) || end > USER_TOP || !Number.isSafeInteger(end))
      throw new InputError(src.name, lineNo, `bad region ${s}-${e}`);
    if (want < 1 || want > 1_000_000)
      throw new InputError(src.name, lineNo, `bad nr_regions ${nr}`);
    let cur = open.get(target);
    if (!cur) {
      cur = {
        snap: { source: src.name, line: lineNo, target, time: Number(time), regions: [] },
        want,
        line: lineNo,
      };
      open.set(target, cur);
    } else if (cur.want !== want)
      throw new InputError(
        src.name,
        lineNo,
        `nr_regions changed from ${cur.want} to ${want} inside a snapshot`,
      );
    cur.snap.regions.push({ start, end, nrAccesses: Number(acc) });
    if (cur.snap.regions.length === want) {
      open.delete(target);
      any = true;
      yield cur.snap;
    }
  }
  for (const [target, cur] of open)
    throw new InputError(
      src.name,
      cur.line,
      `truncated: the snapshot of target ${target} has ${cur.snap.regions.length} of ${cur.want} regions`,
    );
  if (!any) throw new InputError(src.name, 0, 'no damon:damon_aggregated records');
}

/** damo writes big numbers with thousands separators: "94,827,419,009,024". */
const DIGITS = /^[0-9][0-9,]*$/;

function num(v: unknown, what: string, name: string): number {
  // Number('') and Number(' ') are 0: only digits (and separators) count as a number.
  const n = typeof v === 'string' ? (DIGITS.test(v) ? Number(v.replace(/,/g, '')) : NaN) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new InputError(
      name,
      0,
      `${what}: expected a whole number, got ${JSON.stringify(v)?.slice(0, 40)}`,
    );
  return n;
}

/** damo's json_compressed (or plain json) record file, as snapshots. */
export function parseDamonJson(path: string, bytes?: Buffer): DamonSnapshot[] {
  let data: Buffer;
  try {
    data = bytes ?? readBounded(path, INPUT_LIMITS.damon);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(path, 0, code === 'ENOENT' ? 'no such file' : (e as Error).message);
  }
  let text: string;
  if (data[0] === 0x78) {
    let r: { buffer: Buffer; engine: { bytesWritten: number } };
    try {
      r = inflateSync(data, { maxOutputLength: MAX_JSON_BYTES, info: true }) as unknown as typeof r;
    } catch (e) {
      throw new InputError(path, 0, `not zlib data or truncated: ${(e as Error).message}`);
    }
    // The engine stops at the end of the zlib stream; anything after it is not part of the record.
    const extra = data.length - r.engine.bytesWritten;
    if (extra > 0)
      throw new InputError(
        path,
        0,
        `${extra} bytes after the end of the zlib stream (at byte ${r.engine.bytesWritten}): corrupted or two files joined?`,
      );
    text = r.buffer.toString('utf8');
  } else text = data.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InputError(path, 0, `not JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!Array.isArray(doc)) throw new InputError(path, 0, 'expected a JSON array of records');
  const out: DamonSnapshot[] = [];
  doc.forEach((rec: unknown, ri) => {
    if (
      !rec ||
      typeof rec !== 'object' ||
      !Array.isArray((rec as { snapshots?: unknown }).snapshots)
    )
      throw new InputError(path, 0, `record ${ri}: expected {target_id, snapshots: [...]}`);
    const r = rec as { target_id?: unknown; snapshots: unknown[] };
    const target = String(r.target_id ?? ri);
    r.snapshots.forEach((snap: unknown, si) => {
      const s = snap as { start_time?: unknown; end_time?: unknown; regions?: unknown };
      if (!s || typeof s !== 'object' || !Array.isArray(s.regions))
        throw new InputError(
          path,
          0,
          `record ${ri} snapshot ${si}: expected {start_time, end_time, regions}`,
        );
      const regions = s.regions.map((reg: unknown, gi): DamonRegion => {
        const g = reg as { start?: unknown; end?: unknown; nr_accesses?: unknown };
        const where = `record ${ri} snapshot ${si} region ${gi}`;
        if (!g || typeof g !== 'object')
          throw new InputError(path, 0, `${where}: expected an object`);
        const start = num(g.start, `${where} start`, path);
        const end = num(g.end, `${where} end`, path);
        if (!(start < end) || end > USER_TOP)
          throw new InputError(path, 0, `${where}: bad range ${start}-${end}`);
        const acc =
          g.nr_accesses !== null && typeof g.nr_accesses === 'object'
            ? (g.nr_accesses as { samples?: unknown }).samples
            : g.nr_accesses;
        return { start, end, nrAccesses: num(acc, `${where} nr_accesses`, path) };
      });
      out.push({
        source: path,
        line: 0,
        target,
        time: num(s.end_time ?? s.start_time ?? 0, `record ${ri} snapshot ${si} time`, path) / 1e9,
        regions,
      });
    });
  });
  if (out.length === 0) throw new InputError(path, 0, 'no snapshots');
  return out;
}

/** Snapshots to replay operations. */
export function* damonOps(
  snaps: Iterable<DamonSnapshot>,
  opts: DamonOptions = {},
  stats = { snapshots: 0, regions: 0 },
): Generator<ReplayOp> {
  const ps = opts.pageSize ?? 4096;
  const max = opts.maxAccesses ?? 20;
  const write = opts.write ?? true;
  const procs = new Map<string, { name: string; n: number }>();
  let last: number | null = null;
  for (const s of snaps) {
    let p = procs.get(s.target);
    if (!p) {
      p = { name: `target${procs.size}`, n: 0 };
      procs.set(s.target, p);
    }
    if (opts.maxSnapshots !== undefined && p.n >= opts.maxSnapshots) continue;
    p.n++;
    stats.snapshots++;
    if (last !== null && s.time - last > MAX_GAP_S)
      throw new InputError(
        s.source,
        s.line,
        `snapshot time jumps by ${Math.round(s.time - last)} s (more than a day): corrupted?`,
      );
    if (last !== null && s.time > last)
      yield { op: 'sleep', ms: Math.round((s.time - last) * 1000) };
    if (last === null || s.time > last) last = s.time;
    for (const r of s.regions) {
      stats.regions++;
      if (r.nrAccesses <= 0) continue;
      const start = Math.ceil(r.start / ps) * ps;
      const end = Math.floor(r.end / ps) * ps;
      if (end <= start) continue;
      const k = Math.max(1, Math.round(max / r.nrAccesses));
      yield { op: 'ensure', proc: p.name, addr: start, length: end - start };
      yield { op: 'access', proc: p.name, addr: start, length: end - start, stride: k * ps, write };
    }
  }
}
