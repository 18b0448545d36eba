// Model-based test: random command sequences run against the simulator and a reference model that
// knows only what a user process can know — which pages are mapped and the last value written to
// each (0 for never written, discarded or unmapped). THP policy (sysfs, madvise, shrink) must never
// change what a process reads.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type GeometryName, geometry, orderSizeKb, ordersDescending } from '../src/mm/geometry.ts';
import type { Kernel } from '../src/mm/kernel.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';
import { MiB, RefProc, compareProc, pageValue, resolve, smapsTotal } from './support/ref-model.ts';

const NR_PROCS = 2;

/** One geometry's run: sizes are in pages and scale with the PMD size. */
interface Cfg {
  geometry: GeometryName;
  ramBytes: number;
  /** Mapped pages per process the commands may reach (bounds the per-command comparison cost). */
  maxMapped: number;
  numRuns: number;
}

interface Model {
  cfg: Cfg;
  procs: RefProc[];
  /** Highest value written so far: every write stores a fresh, larger token. */
  lastValue: number;
}

interface Real {
  m: Machine;
  k: Kernel;
  mms: Mm[];
  /** Page size in bytes, and pages per PMD. */
  ps: number;
  pmdPages: number;
}

type Cmd = fc.Command<Model, Real>;

/** The invariants and the reference comparison, after every command. */
function postCheck(model: Model, real: Real): void {
  real.m.checkInvariants();
  let rssTotal = 0;
  for (let p = 0; p < NR_PROCS; p++) {
    const mm = real.mms[p];
    const ref = model.procs[p];
    compareProc(real.k, mm, ref);
    const t = smapsTotal(real.m, mm);
    // Every page the reference holds a value for is resident (and private: no fork here).
    const kb = real.ps / 1024;
    expect(t.Rss / kb).toBeGreaterThanOrEqual(ref.values.size);
    expect(t.Rss / kb).toBeLessThanOrEqual(ref.mappedPages);
    expect(t.Anonymous).toBe(t.Rss);
    expect(t.AnonHugePages).toBeLessThanOrEqual(t.Rss);
    expect(t.Size / kb).toBe(ref.mappedPages);
    rssTotal += t.Rss;
  }
  // Nothing is shared between the processes, so their Rss adds up to AnonPages.
  expect(real.m.meminfo().AnonPages).toBe(rssTotal);
}

class MmapCmd implements Cmd {
  constructor(
    readonly p: number,
    readonly pages: number,
    readonly aligned: boolean,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.procs[this.p].mappedPages + this.pages <= m.cfg.maxMapped;
  }
  run(model: Model, real: Real): void {
    const addr = real.m.mmap(real.mms[this.p], {
      lengthBytes: this.pages * real.ps,
      alignBytes: this.aligned ? real.pmdPages * real.ps : undefined,
    });
    const start = addr / real.ps;
    if (this.aligned) expect(start % real.pmdPages).toBe(0);
    model.procs[this.p].map(start, start + this.pages);
    postCheck(model, real);
  }
  toString(): string {
    return `mmap(p${this.p}, ${this.pages}p${this.aligned ? ', pmd-aligned' : ''})`;
  }
}

class MunmapCmd implements Cmd {
  constructor(
    readonly p: number,
    readonly sel: number,
    readonly pages: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.procs[this.p].mappedPages > 0;
  }
  run(model: Model, real: Real): void {
    const ref = model.procs[this.p];
    const start = ref.nthMapped(this.sel);
    real.m.munmap(real.mms[this.p], start * real.ps, this.pages * real.ps);
    ref.unmap(start, start + this.pages);
    postCheck(model, real);
  }
  toString(): string {
    return `munmap(p${this.p}, #${this.sel}, ${this.pages}p)`;
  }
}

class WriteCmd implements Cmd {
  constructor(
    readonly p: number,
    readonly sel: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.procs[this.p].mappedPages > 0;
  }
  run(model: Model, real: Real): void {
    const ref = model.procs[this.p];
    const mm = real.mms[this.p];
    const vpn = ref.nthMapped(this.sel);
    const out = real.m.access(mm, vpn * real.ps, true);
    expect(['fault', 'hit', 'oom']).toContain(out);
    if (out === 'oom') {
      // Nothing was written: the page still reads what it read before.
      expect(pageValue(real.k, mm, vpn)).toBe(ref.read(vpn));
      postCheck(model, real);
      return;
    }
    const r = resolve(real.k, mm, vpn);
    expect(r.kind).toBe('page');
    expect(r.writable).toBe(true);
    const v = pageValue(real.k, mm, vpn);
    expect(v).toBeGreaterThan(model.lastValue);
    model.lastValue = v;
    ref.write(vpn, v);
    postCheck(model, real);
  }
  toString(): string {
    return `write(p${this.p}, #${this.sel})`;
  }
}

/** Writes every stride-th page of [page #sel, +pages), clipped to its mapped range. */
class TouchCmd implements Cmd {
  constructor(
    readonly p: number,
    readonly sel: number,
    readonly pages: number,
    readonly stride: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.procs[this.p].mappedPages > 0;
  }
  run(model: Model, real: Real): void {
    const ref = model.procs[this.p];
    const mm = real.mms[this.p];
    const start = ref.nthMapped(this.sel);
    const range = ref.ranges.find((r) => start >= r.start && start < r.end)!;
    const end = Math.min(range.end, start + this.pages);
    const before = model.lastValue;
    const ps = real.ps;
    const out = real.m.touch(mm, start * ps, (end - start) * ps, true, this.stride * ps);
    expect(['fault', 'hit', 'oom']).toContain(out);
    // Pages are written in order with ever larger values; after an OOM nothing more is written.
    let stopped = false;
    for (let vpn = start; vpn < end; vpn += this.stride) {
      const v = pageValue(real.k, mm, vpn);
      if (stopped || v <= before) {
        expect(out).toBe('oom');
        expect(v).toBe(ref.read(vpn));
        stopped = true;
        continue;
      }
      expect(v).toBeGreaterThan(model.lastValue);
      model.lastValue = v;
      ref.write(vpn, v);
    }
    postCheck(model, real);
  }
  toString(): string {
    return `touch(p${this.p}, #${this.sel}, ${this.pages}p, stride ${this.stride})`;
  }
}

class ReadCmd implements Cmd {
  constructor(
    readonly p: number,
    readonly sel: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.procs[this.p].mappedPages > 0;
  }
  run(model: Model, real: Real): void {
    const ref = model.procs[this.p];
    const mm = real.mms[this.p];
    const vpn = ref.nthMapped(this.sel);
    expect(['fault', 'hit']).toContain(real.m.access(mm, vpn * real.ps, false));
    expect(resolve(real.k, mm, vpn).kind).not.toBe('none');
    expect(pageValue(real.k, mm, vpn)).toBe(ref.read(vpn));
    postCheck(model, real);
  }
  toString(): string {
    return `read(p${this.p}, #${this.sel})`;
  }
}

/** An access far below every mapping (mmap places mappings top-down): SIGSEGV, nothing changes. */
class OutsideCmd implements Cmd {
  constructor(
    readonly p: number,
    readonly vpn: number,
    readonly write: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    expect(model.procs[this.p].isMapped(this.vpn)).toBe(false);
    expect(real.m.access(real.mms[this.p], this.vpn * real.ps, this.write)).toBe('sigsegv');
    postCheck(model, real);
  }
  toString(): string {
    return `${this.write ? 'write' : 'read'}-outside(p${this.p}, vpn ${this.vpn})`;
  }
}

/** madvise over [page #sel, +pages), clipped to the mapped range holding #sel. */
class MadviseCmd implements Cmd {
  constructor(
    readonly p: number,
    readonly sel: number,
    readonly pages: number,
    readonly advice: 'dontneed' | 'hugepage' | 'nohugepage',
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.procs[this.p].mappedPages > 0;
  }
  run(model: Model, real: Real): void {
    const ref = model.procs[this.p];
    const start = ref.nthMapped(this.sel);
    const range = ref.ranges.find((r) => start >= r.start && start < r.end)!;
    const end = Math.min(range.end, start + this.pages);
    real.m.madvise(real.mms[this.p], start * real.ps, (end - start) * real.ps, this.advice);
    if (this.advice === 'dontneed') ref.discard(start, end);
    postCheck(model, real);
  }
  toString(): string {
    return `madvise(p${this.p}, #${this.sel}, ${this.pages}p, ${this.advice})`;
  }
}

class SysfsCmd implements Cmd {
  constructor(
    readonly path: string,
    readonly value: string,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    real.m.sysfsWrite(this.path, this.value);
    expect(real.m.sysfsRead(this.path)).toContain(this.value);
    postCheck(model, real);
  }
  toString(): string {
    return `sysfs(${this.path} <- ${this.value})`;
  }
}

class ShrinkCmd implements Cmd {
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const queued = real.k.deferredSplit.size;
    const split = real.m.shrink();
    expect(split).toBeGreaterThanOrEqual(0);
    expect(split).toBeLessThanOrEqual(queued);
    // A scan empties the queue: partially mapped folios are split (nothing pins them here) and
    // whole THPs are either split as underused or dropped as used.
    expect(real.k.deferredSplit.size).toBe(0);
    for (const row of Object.values(real.m.mthpStats()))
      expect(row.nr_anon_partially_mapped).toBe(0);
    postCheck(model, real);
  }
  toString(): string {
    return 'shrink';
  }
}

class RespawnCmd implements Cmd {
  constructor(readonly p: number) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const old = real.mms[this.p];
    real.m.exit(old);
    expect(real.k.mms.has(old.id)).toBe(false);
    real.mms[this.p] = real.m.spawn(`p${this.p}`);
    model.procs[this.p].clear();
    postCheck(model, real);
  }
  toString(): string {
    return `exit+respawn(p${this.p})`;
  }
}

function commandArbs(cfg: Cfg): fc.Arbitrary<Cmd>[] {
  const g = geometry(cfg.geometry);
  const nr = g.ptrsPerPte;
  const sizes = ordersDescending(g.anonOrders).map(
    (o) => `hugepages-${orderSizeKb(g, o)}kB/enabled`,
  );
  const proc = fc.integer({ min: 0, max: NR_PROCS - 1 });
  const sel = fc.nat();
  const sysfsArb: fc.Arbitrary<Cmd> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .tuple(fc.constantFrom(...sizes), fc.constantFrom('always', 'inherit', 'madvise', 'never'))
        .map(([p, v]) => new SysfsCmd(p, v)),
    },
    fc.constantFrom('always', 'madvise', 'never').map((v) => new SysfsCmd('enabled', v)),
    fc
      .constantFrom(0, nr / 8, nr / 2, nr - 32, nr - 1)
      .map((v) => new SysfsCmd('khugepaged/max_ptes_none', String(v))),
    fc.constantFrom('0', '1').map((v) => new SysfsCmd('shrink_underused', v)),
    fc.constantFrom('0', '1').map((v) => new SysfsCmd('use_zero_page', v)),
  );
  // Mappings of 1/2 to 4 PMDs (1 to 8 MiB with 4K pages).
  const mmapArb = fc
    .tuple(proc, fc.integer({ min: nr / 2, max: 4 * nr }), fc.boolean())
    .map(([p, n, a]) => new MmapCmd(p, n, a));
  return [
    mmapArb,
    mmapArb,
    fc
      .tuple(proc, sel, fc.integer({ min: 1, max: 2 * nr }))
      .map(([p, s, n]) => new MunmapCmd(p, s, n)),
    fc.tuple(proc, sel).map(([p, s]) => new WriteCmd(p, s)),
    fc.tuple(proc, sel).map(([p, s]) => new WriteCmd(p, s)),
    fc
      .tuple(proc, sel, fc.integer({ min: 1, max: nr + 100 }), fc.integer({ min: 1, max: nr / 8 }))
      .map(([p, s, n, st]) => new TouchCmd(p, s, n, st)),
    fc.tuple(proc, sel).map(([p, s]) => new ReadCmd(p, s)),
    fc
      .tuple(proc, fc.integer({ min: 16, max: 4096 }), fc.boolean())
      .map(([p, v, w]) => new OutsideCmd(p, v, w)),
    fc
      .tuple(proc, sel, fc.integer({ min: 1, max: 2 * nr }))
      .map(([p, s, n]) => new MadviseCmd(p, s, n, 'dontneed')),
    fc
      .tuple(
        proc,
        sel,
        fc.integer({ min: 1, max: 4 * nr }),
        fc.constantFrom('hugepage', 'nohugepage'),
      )
      .map(([p, s, n, a]) => new MadviseCmd(p, s, n, a as 'hugepage' | 'nohugepage')),
    sysfsArb,
    sysfsArb,
    fc.constant(new ShrinkCmd()),
    proc.map((p) => new RespawnCmd(p)),
  ];
}

const X86: Cfg = { geometry: 'x86-64-4k', ramBytes: 128 * MiB, maxMapped: 6144, numRuns: 150 };
const CONFIGS: Cfg[] = [
  X86,
  // No empty-PTE-table reclaim on arm64; same sizes as x86.
  { geometry: 'arm64-4k', ramBytes: 128 * MiB, maxMapped: 6144, numRuns: 60 },
  // 16 kB pages, 32 MiB PMDs: RAM can run out, so writes may end in OOM.
  { geometry: 'arm64-16k', ramBytes: 512 * MiB, maxMapped: 8192, numRuns: 40 },
];

function setup(cfg: Cfg = X86): { model: Model; real: Real } {
  const m = new Machine({ strictLocks: true, ramBytes: cfg.ramBytes, geometry: cfg.geometry });
  const mms: Mm[] = [];
  for (let p = 0; p < NR_PROCS; p++) mms.push(m.spawn(`p${p}`));
  const g = m.kernel.geo;
  return {
    model: { cfg, procs: Array.from({ length: NR_PROCS }, () => new RefProc()), lastValue: 0 },
    real: { m, k: m.kernel, mms, ps: g.pageSize, pmdPages: g.ptrsPerPte },
  };
}

describe('model-based: the simulator against a reference of mapped pages and written values', () => {
  it.each(CONFIGS)(
    'random mmap/munmap/access/madvise/sysfs/shrink/exit sequences ($geometry)',
    (cfg) => {
      fc.assert(
        fc.property(fc.commands(commandArbs(cfg), { maxCommands: 80, size: 'max' }), (cmds) => {
          fc.modelRun(() => setup(cfg), cmds);
        }),
        { numRuns: cfg.numRuns },
      );
    },
  );

  it('a focused scenario: writes survive PMD splits, deferred splits and underused shrinking', () => {
    const { model, real } = setup();
    const cmds: Cmd[] = [
      new SysfsCmd('khugepaged/max_ptes_none', '64'),
      new MmapCmd(0, 1536, true),
      new WriteCmd(0, 3),
      new WriteCmd(0, 700),
      new ReadCmd(0, 4),
      new MadviseCmd(0, 0, 100, 'dontneed'), // partial unmap of the first THP
      new WriteCmd(0, 513),
      new ShrinkCmd(), // partial THP split; underused second THP split too
      new ReadCmd(0, 700),
      new MunmapCmd(0, 600, 200),
      new MadviseCmd(0, 0, 2048, 'nohugepage'),
      new WriteCmd(0, 1400),
      new RespawnCmd(0),
    ];
    for (const c of cmds) {
      expect(c.check(model)).toBe(true);
      c.run(model, real);
    }
    expect(real.m.vmstat().thp_split_pmd).toBeGreaterThanOrEqual(1);
    expect(real.m.vmstat().thp_underused_split_page).toBe(1);
    expect(real.m.mthpStats()['2048kB'].split).toBe(2);
  });

  it('the reference comparison can fail: a value changed behind its back is caught', () => {
    const { model, real } = setup();
    new MmapCmd(0, 512, true).run(model, real);
    new WriteCmd(0, 5).run(model, real);
    const vpn = model.procs[0].nthMapped(5);
    const pfn = resolve(real.k, real.mms[0], vpn).pfn;
    real.k.folios.data[pfn] += 1;
    expect(() => compareProc(real.k, real.mms[0], model.procs[0])).toThrow(/reference value/);
    real.k.folios.data[pfn] -= 1;
    // A stray non-zero value in a page the reference never wrote is caught as well.
    real.k.folios.data[pfn + 1] = 12345;
    expect(() => compareProc(real.k, real.mms[0], model.procs[0])).toThrow(/model reads 12345/);
  });
});
