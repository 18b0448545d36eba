// Replay a stream of operations (from a JSON Lines trace, a lackey trace or DAMON records) on
// the model, one at a time: nothing holds the whole input, so a trace of any length runs in
// bounded memory. The result is a summary: memory per process, coverage per folio size, what
// khugepaged collapsed (and the bloat), failures by SCAN_* result, and OOMs.

import type { CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { GeometryName } from '../mm/geometry.ts';
import type { ProfileName } from '../mm/profile.ts';
import { memcgFork } from '../mm/memcg.ts';
import { type Advice, Errno, Machine, type Mm } from '../sim/machine.ts';
import { RamSizeError } from '../mm/ram.ts';
import { formatSize } from '../scenario/size.ts';
import { InputError } from './lines.ts';

export interface ReplayHeader {
  ram?: number;
  swap?: number;
  geometry?: GeometryName;
  profile?: ProfileName;
  seed?: number;
  sysfs?: Array<[string, string]>;
}

interface At {
  /** The input line the operation came from (for error messages). */
  line?: number;
}

export type ReplayOp = At &
  (
    | { op: 'mmap'; proc: string; vma: string; size: number; addr?: number; align?: number }
    | { op: 'munmap'; proc: string; vma: string; offset?: number; length?: number }
    | {
        op: 'access';
        proc: string;
        /** A named VMA (offset/length relative to it), or an absolute address (addr). */
        vma?: string;
        addr?: number;
        offset?: number;
        length?: number;
        stride?: number;
        write: boolean;
      }
    | { op: 'madvise'; proc: string; vma: string; advice: Advice; offset?: number; length?: number }
    | { op: 'fork'; proc: string; child: string }
    | { op: 'exit'; proc: string }
    | { op: 'sleep'; ms: number }
    /** Map anonymous memory over whatever of [addr, addr+length) is not mapped yet. */
    | { op: 'ensure'; proc: string; addr: number; length: number }
  );

export interface ReplayOptions {
  /** The input's name in errors and in the result. */
  source: string;
  /** What kind of input it was (jsonl, lackey, damon-perf, damon-json). */
  format: string;
  header?: ReplayHeader;
  policy?: CollapsePolicy;
  /** sysfs writes after the header's (--set). */
  sysfs?: Array<[string, string]>;
  /** Put every process in one memory cgroup with this memory.max (bytes). */
  memoryMax?: number;
  /** Called every 4096 operations with the count so far. */
  onProgress?: (ops: number, clockMs: number) => void;
}

export interface ReplayResult {
  format: 'thpsim-replay';
  version: 1;
  input: { source: string; format: string; ops: number };
  config: {
    geometry: string;
    profile: string;
    policy: string;
    ramBytes: number;
    pageSize: number;
    sysfs: Record<string, string>;
  };
  clockMs: number;
  processes: Array<{
    name: string;
    rssKb: number;
    anonKb: number;
    anonHugeKb: number;
    /** kB mapped by folios of each order. */
    byOrderKb: Record<number, number>;
  }>;
  accesses: {
    total: number;
    faults: number;
    oom: number;
    sigsegv: number;
    firstOomLine: number | null;
  };
  collapses: {
    succeeded: number;
    /** Pages the collapses filled (bloat), kB per order. */
    bloatKb: Record<number, number>;
    /** PMD ranges khugepaged visited, by SCAN_* result. */
    pmdResults: Record<string, number>;
  };
  meminfo: Record<string, number>;
  /** The nonzero thp_* and oom counters of /proc/vmstat. */
  vmstat: Record<string, number>;
  memcg?: ReturnType<Machine['memcgs']>;
}

/** 2 MiB: the unit in which `ensure` maps memory for address-only inputs. */
const ENSURE_CHUNK = 2 * 1024 * 1024;
/** How far the regions of one process may spread, in multiples of RAM. */
const MAX_SPAN_PER_RAM = 4;

export class Replayer {
  private machine: Machine | null = null;
  private readonly procs = new Map<
    string,
    { mm: Mm; vmas: Map<string, { start: number; length: number }>; chunks: Set<number> }
  >();
  private ops = 0;
  private readonly acc = {
    total: 0,
    faults: 0,
    oom: 0,
    sigsegv: 0,
    firstOomLine: null as number | null,
  };
  private readonly coll = {
    succeeded: 0,
    bloatPages: {} as Record<number, number>,
    pmdResults: {} as Record<string, number>,
  };
  private readonly sysfs: Record<string, string> = {};
  private header: ReplayHeader;

  constructor(private readonly opts: ReplayOptions) {
    this.header = opts.header ?? {};
  }

  /** Header fields that arrive with the input (before the first operation). */
  setHeader(h: ReplayHeader): void {
    if (this.machine) throw new InputError(this.opts.source, 0, 'header after the first event');
    this.header = {
      ...this.header,
      ...h,
      sysfs: [...(this.header.sysfs ?? []), ...(h.sysfs ?? [])],
    };
  }

  private fail(op: At, msg: string): never {
    throw new InputError(this.opts.source, op.line ?? 0, msg);
  }

  private get m(): Machine {
    if (this.machine) return this.machine;
    const h = this.header;
    let m: Machine;
    try {
      m = new Machine({
        geometry: h.geometry,
        profile: h.profile,
        ramBytes: h.ram ?? 4 * 2 ** 30,
        swapBytes: h.swap ?? 0,
        seed: h.seed ?? 1,
        collapsePolicy: this.opts.policy,
      });
    } catch (e) {
      if (e instanceof RamSizeError) throw new InputError(this.opts.source, 0, e.message);
      throw e;
    }
    for (const [path, value] of [...(h.sysfs ?? []), ...(this.opts.sysfs ?? [])]) {
      try {
        m.sysfsWrite(path, value);
      } catch (e) {
        throw new InputError(
          this.opts.source,
          0,
          `cannot write ${path}=${value}: ${(e as Error).message}`,
        );
      }
      this.sysfs[path] = value;
    }
    m.setTrace((e) => {
      const f = e.fields;
      if (e.name === 'thpsim_collapse') {
        this.coll.succeeded++;
        const o = Number(f.order);
        this.coll.bloatPages[o] = (this.coll.bloatPages[o] ?? 0) + Number(f.none_or_zero);
      } else if (e.name === 'thpsim_pmd_result') {
        const r = String(f.result);
        this.coll.pmdResults[r] = (this.coll.pmdResults[r] ?? 0) + 1;
      }
    });
    this.machine = m;
    return m;
  }

  private proc(op: At, name: string, create = false) {
    let p = this.procs.get(name);
    if (!p && create) {
      const mm = this.m.spawn(name);
      if (this.opts.memoryMax !== undefined) {
        const first = [...this.procs.values()][0];
        if (first) memcgFork(this.m.kernel, first.mm, mm);
        else this.m.memoryMax(mm, this.opts.memoryMax);
      }
      p = { mm, vmas: new Map(), chunks: new Set() };
      this.procs.set(name, p);
    }
    if (!p) this.fail(op, `unknown process "${name}"`);
    return p;
  }

  private range(op: At, proc: string, vma: string, offset?: number, length?: number) {
    const p = this.proc(op, proc);
    const v = p.vmas.get(vma);
    if (!v) this.fail(op, `unknown vma "${vma}" in process "${proc}"`);
    const off = offset ?? 0;
    const len = length ?? Math.max(0, v.length - off);
    if (off + len > v.length)
      this.fail(op, `range ${off}+${len} is outside vma "${vma}" (${v.length} bytes)`);
    return { p, addr: v.start + off, length: len };
  }

  private access(
    op: At,
    mm: Mm,
    addr: number,
    length: number,
    write: boolean,
    stride?: number,
  ): void {
    const ps = this.m.kernel.geo.pageSize;
    const step = stride ?? ps;
    if (!(step > 0)) this.fail(op, 'stride must be positive');
    for (let a = addr; a < addr + Math.max(length, 1); a += step) {
      const r = this.m.access(mm, a, write);
      this.acc.total++;
      if (r === 'fault') this.acc.faults++;
      else if (r === 'oom') {
        this.acc.oom++;
        this.acc.firstOomLine ??= op.line ?? null;
        return;
      } else if (r === 'sigsegv') {
        this.acc.sigsegv++;
        return;
      }
    }
  }

  apply(op: ReplayOp): void {
    const m = this.m;
    this.ops++;
    try {
      switch (op.op) {
        case 'mmap': {
          const p = this.proc(op, op.proc, true);
          if (p.vmas.has(op.vma))
            this.fail(op, `vma "${op.vma}" of "${op.proc}" is already mapped`);
          const start = m.mmap(p.mm, {
            lengthBytes: op.size,
            ...(op.addr !== undefined ? { addrBytes: op.addr } : {}),
            ...(op.align !== undefined ? { alignBytes: op.align } : {}),
            name: op.vma,
          });
          p.vmas.set(op.vma, { start, length: op.size });
          break;
        }
        case 'munmap': {
          const { p, addr, length } = this.range(op, op.proc, op.vma, op.offset, op.length);
          m.munmap(p.mm, addr, length);
          const v = p.vmas.get(op.vma)!;
          if (addr === v.start && length >= v.length) p.vmas.delete(op.vma);
          else if (addr === v.start)
            p.vmas.set(op.vma, { start: v.start + length, length: v.length - length });
          else if (addr + length >= v.start + v.length)
            p.vmas.set(op.vma, { start: v.start, length: addr - v.start });
          break;
        }
        case 'access': {
          if (op.vma !== undefined) {
            const { p, addr, length } = this.range(op, op.proc, op.vma, op.offset, op.length);
            this.access(op, p.mm, addr, length, op.write, op.stride);
          } else {
            const p = this.proc(op, op.proc);
            this.access(op, p.mm, op.addr ?? 0, op.length ?? 1, op.write, op.stride);
          }
          break;
        }
        case 'madvise': {
          const { p, addr, length } = this.range(op, op.proc, op.vma, op.offset, op.length);
          try {
            m.madvise(p.mm, addr, length, op.advice);
          } catch (e) {
            if (!(e instanceof Errno)) throw e; // madvise's errors are results, not input errors
          }
          break;
        }
        case 'fork': {
          const p = this.proc(op, op.proc);
          if (this.procs.has(op.child)) this.fail(op, `process "${op.child}" exists already`);
          const mm = m.fork(p.mm, op.child);
          this.procs.set(op.child, { mm, vmas: new Map(p.vmas), chunks: new Set(p.chunks) });
          break;
        }
        case 'exit': {
          const p = this.proc(op, op.proc);
          m.exit(p.mm);
          this.procs.delete(op.proc);
          break;
        }
        case 'sleep':
          m.advance(op.ms);
          break;
        case 'ensure': {
          const p = this.proc(op, op.proc, true);
          const first = Math.floor(op.addr / ENSURE_CHUNK);
          const last = Math.floor((op.addr + Math.max(op.length, 1) - 1) / ENSURE_CHUNK);
          // Mapping costs work per chunk: a region no process of this machine could touch, or
          // regions spanning far more than its RAM, are a corrupted record, not a workload.
          const ram = m.kernel.nrPages * m.kernel.geo.pageSize;
          if (op.length > ram)
            this.fail(
              op,
              `region 0x${op.addr.toString(16)}-0x${(op.addr + op.length).toString(16)} (${formatSize(op.length)}) is larger than the machine's RAM (${formatSize(ram)}); give --ram for a bigger machine`,
            );
          if ((p.chunks.size + last - first + 1) * ENSURE_CHUNK > MAX_SPAN_PER_RAM * ram)
            this.fail(
              op,
              `the regions of ${op.proc} span more than ${MAX_SPAN_PER_RAM} times the machine's RAM (${formatSize(ram)}); give --ram for a bigger machine`,
            );
          for (let c = first; c <= last; c++) {
            if (p.chunks.has(c)) continue;
            m.mmap(p.mm, {
              lengthBytes: ENSURE_CHUNK,
              addrBytes: c * ENSURE_CHUNK,
              name: 'traced',
            });
            p.chunks.add(c);
          }
          break;
        }
      }
    } catch (e) {
      if (e instanceof Errno) this.fail(op, `${op.op}: ${e.message}`);
      throw e;
    }
    if ((this.ops & 4095) === 0) this.opts.onProgress?.(this.ops, m.kernel.clockMs);
  }

  result(): ReplayResult {
    const m = this.m;
    const geo = m.kernel.geo;
    const kb = geo.pageSize / 1024;
    const processes = [...this.procs].map(([name, p]) => {
      const s = m.smaps(p.mm);
      const byOrderKb: Record<number, number> = {};
      for (const v of s)
        for (const [o, k] of Object.entries(v.byOrder))
          byOrderKb[Number(o)] = (byOrderKb[Number(o)] ?? 0) + k;
      return {
        name,
        rssKb: s.reduce((a, v) => a + v.Rss, 0),
        anonKb: s.reduce((a, v) => a + v.Anonymous, 0),
        anonHugeKb: s.reduce((a, v) => a + v.AnonHugePages, 0),
        byOrderKb,
      };
    });
    const vmstat = Object.fromEntries(
      Object.entries(m.vmstat()).filter(
        ([k, v]) => v !== 0 && (k.startsWith('thp_') || k === 'oom_kill'),
      ),
    );
    const memcg = m.memcgs();
    const bloatKb: Record<number, number> = {};
    for (const [o, n] of Object.entries(this.coll.bloatPages)) bloatKb[Number(o)] = n * kb;
    return {
      format: 'thpsim-replay',
      version: 1,
      input: { source: this.opts.source, format: this.opts.format, ops: this.ops },
      config: {
        geometry: geo.name,
        profile: m.kernel.profile.name,
        policy: m.kernel.collapsePolicy,
        ramBytes: m.kernel.nrPages * geo.pageSize,
        pageSize: geo.pageSize,
        sysfs: { ...this.sysfs },
      },
      clockMs: m.kernel.clockMs,
      processes,
      accesses: { ...this.acc },
      collapses: {
        succeeded: this.coll.succeeded,
        bloatKb,
        pmdResults: { ...this.coll.pmdResults },
      },
      meminfo: { ...m.meminfo() },
      vmstat,
      ...(memcg.length ? { memcg } : {}),
    };
  }
}

/** Replay every operation of a source; the header callback lets parsers set it on the way. */
export function replay(
  ops: (onHeader: (h: ReplayHeader) => void) => Iterable<ReplayOp>,
  opts: ReplayOptions,
): ReplayResult {
  const r = new Replayer(opts);
  for (const op of ops((h) => r.setHeader(h))) r.apply(op);
  return r.result();
}
