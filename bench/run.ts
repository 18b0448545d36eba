// Benchmarks of the model's two hottest shapes against a C reference on the same data layout:
//   (a) faulting in N 4K PTEs in one VMA with THP disabled, one write access per page
//       (userAccess: hardware walk, fault, retried walk), as the simulator runs it;
//   (b) reading every PTE of the populated range afterwards (smapsCounts, and walkRange with a
//       counting visitor).
// The C reference (bench/c/ref.c) is compiled here with the machine's `cc -O2` into a temporary
// directory. See bench/README.md.
//
//   npm run bench              16 Mi PTEs (a 64 GiB VMA on a 65 GiB kernel), 2-3.5 minutes
//   npm run bench -- --quick   1 Mi PTEs, a few seconds
// Options: --pages N, --fault-reps N, --read-reps N, --no-c (skip the C reference).

import Table from 'cli-table3';
import { Bench } from 'tinybench';
import { smapsCounts } from '../src/mm/accounting.ts';
import { ACCESS_FAULT, ACCESS_HIT, userAccess } from '../src/mm/fault.ts';
import { Kernel } from '../src/mm/kernel.ts';
import { BalanceSink } from '../src/mm/locks.ts';
import { doMmap } from '../src/mm/mmap.ts';
import { type EventSink, runStep } from '../src/mm/step.ts';
import { levelIndex, pmdTableOf } from '../src/mm/pagewalk.ts';
import { E_NONE, E_TABLE, E_TYPE_MASK, PMD } from '../src/mm/pgtable.ts';
import { VM_MAYWRITE, VM_READ, VM_WRITE, type Mm, type Vma } from '../src/mm/vma.ts';
import { walkRange } from '../src/mm/walk.ts';
import {
  GiB,
  fmt,
  int,
  machineInfo,
  makeGc,
  median,
  runCJson,
  withCReference,
  writeResults,
} from './common.ts';

const PAGE = 4096;
const FAULT_TARGET_PER_S = 2_000_000;
const READ_TARGET_RATIO = 3;

interface Options {
  quick: boolean;
  pages: number;
  faultReps: number;
  readReps: number;
  c: boolean;
  /** Any of --pages, --fault-reps, --read-reps or --no-c given. */
  custom: boolean;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    pages: quick ? 1 << 20 : 1 << 24,
    faultReps: 3,
    readReps: quick ? 15 : 9,
    c: !argv.includes('--no-c'),
    custom: ['--pages', '--fault-reps', '--read-reps', '--no-c'].some((f) => argv.includes(f)),
  };
  const num = (flag: string): number | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = Number(argv[i + 1]);
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${flag} needs a positive integer`);
    return v;
  };
  o.pages = num('--pages') ?? o.pages;
  o.faultReps = num('--fault-reps') ?? o.faultReps;
  o.readReps = num('--read-reps') ?? o.readReps;
  for (const a of argv)
    if (
      a.startsWith('--') &&
      !['--quick', '--no-c', '--pages', '--fault-reps', '--read-reps'].includes(a)
    )
      throw new Error(`unknown option ${a}`);
  return o;
}

/** A kernel of ramBytes with THP disabled (enabled=never, no per-size order enabled), one mm. */
function thpOffKernel(ramBytes: number): { k: Kernel; mm: Mm } {
  const k = new Kernel({ geometry: 'x86-64-4k', ramBytes, strictLocks: false });
  k.settings.enabled = 'never';
  k.settings.ordersInherit = 0;
  k.settings.ordersAlways = 0;
  k.settings.ordersMadvise = 0;
  return { k, mm: k.newMm('bench') };
}

function mmapAnon(k: Kernel, mm: Mm, pages: number): Vma {
  const start = k.run(
    doMmap(k, mm, { pages, flags: VM_READ | VM_WRITE | VM_MAYWRITE, name: 'bench' }),
  );
  const vma = mm.findVma(start);
  if (!vma || vma.start !== start || vma.pages !== pages)
    throw new Error('mmap did not give one VMA');
  return vma;
}

/** Write-touch every page once; returns how many accesses faulted. */
function touchAll(k: Kernel, mm: Mm, start: number, end: number): number {
  let faults = 0;
  for (let vpn = start; vpn < end; vpn++)
    if (k.run(userAccess(k, mm, vpn, true)) === ACCESS_FAULT) faults++;
  return faults;
}

interface FaultRun {
  k: Kernel;
  vma: Vma;
  seconds: number;
  /** Process CPU time (user + system) over the same loop: shows contention from other work. */
  cpuSeconds: number;
}

function faultIn(ramBytes: number, pages: number): FaultRun {
  const { k, mm } = thpOffKernel(ramBytes);
  const vma = mmapAnon(k, mm, pages);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const faults = touchAll(k, mm, vma.start, vma.end);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const problems: string[] = [];
  if (faults !== pages) problems.push(`${faults} faulting accesses`);
  if (k.stats.vmstat('pgfault') !== pages) problems.push(`pgfault ${k.stats.vmstat('pgfault')}`);
  if (mm.rssAnon !== pages) problems.push(`rssAnon ${mm.rssAnon}`);
  if (k.stats.vmstat('thp_fault_alloc') !== 0) problems.push('THP faults happened');
  if (k.sink instanceof BalanceSink && k.sink.depth !== 0) problems.push('unbalanced locks');
  if (problems.length) throw new Error(`fault-in check failed: ${problems.join(', ')}`);
  return { k, vma, seconds, cpuSeconds };
}

/** Sum of val over present PTEs of the VMA, walking as walkRange does, with a counting visitor. */
function walkCount(k: Kernel, vma: Vma): { present: number; valSum: number } {
  let present = 0;
  let valSum = 0;
  walkRange(k, vma.mm, vma.start, vma.end, {
    pmd() {
      present += k.geo.ptrsPerPte;
    },
    pte(_vpn, _t, _i, bits, val) {
      if ((bits & E_TYPE_MASK) !== E_NONE) {
        present++;
        valSum += val;
      }
    },
  });
  return { present, valSum };
}

// Module-local copies of the entry-type constants for the loop below (see accounting.ts).
const TYPE_MASK = E_TYPE_MASK;
const NONE = E_NONE;
const TABLE = E_TABLE;

/**
 * The C reference's read loop written in TypeScript over the model's own arrays: the PMD entry of
 * each PMD-sized step (pmdTableOf, as walkRange and the C code do), then type bits and val of
 * every entry of its PTE table. Bench-only, not model code: it shows what the language itself
 * costs on this layout.
 */
function directCount(k: Kernel, vma: Vma): { present: number; valSum: number } {
  const n = k.geo.ptrsPerPte;
  const pmd = k.pt.pmd;
  const acc = { present: 0, valSum: 0 };
  for (let s = vma.start; s < vma.end; s += n) {
    const pmdT = pmdTableOf(k, vma.mm, s);
    if (!pmdT) continue;
    const pmdI = levelIndex(k, s, PMD);
    if ((pmd.getBits(pmdT, pmdI) & TYPE_MASK) !== TABLE) continue;
    const off = pmd.getVal(pmdT, pmdI) * n;
    countTable(k, off, off + n, acc);
  }
  return acc;
}

/** One PTE table's entries; a function of its own so V8 optimizes it whole (as in accounting.ts). */
function countTable(
  k: Kernel,
  from: number,
  to: number,
  acc: { present: number; valSum: number },
): void {
  const bits = k.pt.pte.bits;
  const val = k.pt.pte.val;
  let present = 0;
  let valSum = 0;
  for (let i = from; i < to; i++) {
    if ((bits[i] & TYPE_MASK) !== NONE) {
      present++;
      valSum += val[i];
    }
  }
  acc.present += present;
  acc.valSum += valSum;
}

/**
 * Events (lock operations and shared reads) one steady-state fault yields: a write to the second
 * page of a VMA whose first page is already mapped (anon_vma and tables in place).
 */
function eventsPerFault(): number {
  const { k, mm } = thpOffKernel(64 * 1024 * 1024);
  const vma = mmapAnon(k, mm, 1024);
  k.run(userAccess(k, mm, vma.start, true));
  let events = 0;
  const counting: EventSink = {
    apply(): boolean {
      events++;
      return true;
    },
  };
  if (runStep(userAccess(k, mm, vma.start + 1, true), counting) !== ACCESS_FAULT)
    throw new Error('expected a fault');
  return events;
}

interface CResult {
  n: number;
  startVpn: number;
  fault: {
    median_s: number;
    samples_s: number[];
    cpu_median_s: number;
    cpu_s: number[];
    freePages: number;
    pteTables: number;
  };
  readPte: {
    median_s: number;
    samples_s: number[];
    cpu_median_s: number;
    present: number;
    valSum: number;
  };
  readSmaps: { median_s: number; samples_s: number[]; cpu_median_s: number; rss: number };
}

function runC(bin: string, o: Options, ramPages: number, startVpn: number): CResult {
  return runCJson<CResult>(bin, [o.pages, ramPages, startVpn, o.faultReps, o.readReps]);
}

function main(): void {
  const t00 = performance.now();
  const o = parseArgs(process.argv.slice(2));
  const gc = makeGc();
  const machine = machineInfo();
  const ramBytes = o.pages * PAGE + GiB;
  const ramPages = ramBytes / PAGE;
  console.log(
    `thpsim bench${o.quick ? ' --quick' : ''}: ${int(o.pages)} PTEs (${fmt((o.pages * PAGE) / GiB, 1)} GiB VMA), ` +
      `kernel ${fmt(ramBytes / GiB, 1)} GiB, ${o.faultReps} fault repetitions, ${o.readReps} read iterations`,
  );
  console.log(`${machine.cpu} x${machine.cpus}, node ${machine.node}, ${machine.cc}`);

  // The VMA's start does not depend on RAM: take it from a small kernel so C can run first.
  const probe = thpOffKernel(16 * PAGE);
  const startVpn = mmapAnon(probe.k, probe.mm, o.pages).start;

  let c: CResult | null = null;
  let cCommand = '';
  if (o.c) {
    c = withCReference((bin, command) => {
      cCommand = command;
      process.stdout.write('C reference ... ');
      return runC(bin, o, ramPages, startVpn);
    });
    console.log(
      `fault ${fmt(c.fault.median_s, 3)} s (CPU ${fmt(c.fault.cpu_median_s, 3)} s), ` +
        `read ${fmt(c.readPte.median_s * 1000, 1)} ms`,
    );
  }

  // (a) fault in every page: a fresh kernel per repetition, only the access loop timed.
  const faultSeconds: number[] = [];
  const faultCpuSeconds: number[] = [];
  // Holds the latest run only; emptied before each GC so the previous kernel can be collected.
  const latest: FaultRun[] = [];
  for (let r = 0; r < o.faultReps; r++) {
    latest.length = 0;
    gc();
    process.stdout.write(`JS fault-in ${r + 1}/${o.faultReps} ... `);
    const run = faultIn(ramBytes, o.pages);
    if (run.vma.start !== startVpn) throw new Error('VMA start differs from the probe');
    faultSeconds.push(run.seconds);
    faultCpuSeconds.push(run.cpuSeconds);
    latest.push(run);
    console.log(
      `${fmt(run.seconds, 2)} s (${int(o.pages / run.seconds)} faults/s), CPU ${fmt(run.cpuSeconds, 2)} s`,
    );
  }
  const { k, vma } = latest[0];
  const jsFault = median(faultSeconds);
  const jsFaultCpu = median(faultCpuSeconds);
  const faultsPerSec = o.pages / jsFault;
  if (c) {
    if (c.fault.freePages !== k.buddy.freePages || c.fault.pteTables !== k.pt.pte.live)
      throw new Error(
        `C and JS disagree after the fault-in: free pages ${c.fault.freePages} vs ${k.buddy.freePages}, ` +
          `PTE tables ${c.fault.pteTables} vs ${k.pt.pte.live}`,
      );
  }

  // (b) read every PTE of the populated range.
  gc();
  let sink = 0;
  const expect = (what: string, got: number, want: number): void => {
    if (got !== want) throw new Error(`${what}: got ${got}, want ${want}`);
  };
  const smaps = smapsCounts(k, vma);
  expect('smapsCounts rss', smaps.rss, o.pages);
  expect('smapsCounts anonymous', smaps.anonymous, o.pages);
  expect('smapsCounts order-0 pages', smaps.byOrder.get(0) ?? 0, o.pages);
  expect('smapsCounts orders', smaps.byOrder.size, 1);
  const walked = walkCount(k, vma);
  const direct = directCount(k, vma);
  expect('walkRange present', walked.present, o.pages);
  expect('direct present', direct.present, o.pages);
  expect('direct val sum', direct.valSum, walked.valSum);
  if (c) expect('C val sum vs JS', c.readPte.valSum, walked.valSum);

  // Wall time through tinybench (median of the iterations); process CPU time of the same
  // iterations alongside, since other work on a shared machine inflates wall time.
  const cpuMs = new Map<string, number[]>();
  const withCpu = (name: string, fn: () => void): [string, () => void] => {
    const samples: number[] = [];
    cpuMs.set(name, samples);
    return [
      name,
      () => {
        const cpu0 = process.cpuUsage();
        fn();
        const d = process.cpuUsage(cpu0);
        samples.push((d.user + d.system) / 1000);
      },
    ];
  };
  const bench = new Bench({
    name: 'read every PTE',
    iterations: o.readReps,
    time: 0,
    warmupIterations: 5,
    warmupTime: 0,
    throws: true,
  });
  bench
    .add(
      ...withCpu('smapsCounts', () => {
        sink += smapsCounts(k, vma).rss;
      }),
    )
    .add(
      ...withCpu('walkRange + counting visitor', () => {
        sink += walkCount(k, vma).present;
      }),
    )
    .add(
      ...withCpu('direct typed-array loop (bench-only)', () => {
        sink += direct.present === directCount(k, vma).present ? 1 : 0;
      }),
    );
  bench.runSync();
  const nsPerPte = (ms: number) => (ms * 1e6) / o.pages;
  const cPteNs = c ? (c.readPte.median_s * 1e9) / o.pages : NaN;
  const cPteCpuNs = c ? (c.readPte.cpu_median_s * 1e9) / o.pages : NaN;
  const cSmapsNs = c ? (c.readSmaps.median_s * 1e9) / o.pages : NaN;
  const cSmapsCpuNs = c ? (c.readSmaps.cpu_median_s * 1e9) / o.pages : NaN;
  const reads = bench.tasks.map((t) => {
    const r = t.result;
    if (r.state !== 'completed') throw new Error(`${t.name}: ${r.state}`);
    // The last readReps samples are the measured iterations (the first ones are the warm-up).
    const cpu = median(cpuMs.get(t.name)!.slice(-r.latency.samplesCount));
    return {
      name: t.name,
      ms: r.latency.p50,
      cpuMs: cpu,
      iterations: r.latency.samplesCount,
      nsPerPte: nsPerPte(r.latency.p50),
      cpuNsPerPte: nsPerPte(cpu),
      vsCPte: nsPerPte(r.latency.p50) / cPteNs,
      cpuVsCPte: nsPerPte(cpu) / cPteCpuNs,
    };
  });
  if (sink <= 0) throw new Error('no work done');
  const smapsRead = reads.find((r) => r.name === 'smapsCounts')!;
  const walkRead = reads.find((r) => r.name.startsWith('walkRange'))!;
  const smapsVsCSmaps = smapsRead.nsPerPte / cSmapsNs;
  const smapsVsCSmapsCpu = smapsRead.cpuNsPerPte / cSmapsCpuNs;

  // Context for (a): what the step engine costs on an access that needs no fault (4 events).
  const HIT_BATCH = 4096;
  const hitBench = new Bench({ name: 'hit', time: 500, warmupTime: 100, throws: true });
  hitBench.add(`userAccess hit x${HIT_BATCH}`, () => {
    for (let vpn = vma.start; vpn < vma.start + HIT_BATCH; vpn++)
      if (k.run(userAccess(k, vma.mm, vpn, true)) !== ACCESS_HIT) throw new Error('expected a hit');
  });
  hitBench.runSync();
  const hitResult = hitBench.tasks[0].result;
  if (hitResult.state !== 'completed') throw new Error(`hit bench: ${hitResult.state}`);
  const hitNs = (hitResult.latency.p50 * 1e6) / HIT_BATCH;
  const faultEvents = eventsPerFault();

  // Report: wall time first, process CPU time in brackets.
  const table = new Table({
    head: ['benchmark', 'JS (median)', 'C -O2 (median)', 'JS / C', 'target'],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', 'right', 'right', 'left'],
  });
  const cFaultS = c ? c.fault.median_s : NaN;
  const cFaultCpuS = c ? c.fault.cpu_median_s : NaN;
  const perFault = (sec: number) => fmt((sec * 1e9) / o.pages, 0);
  table.push([
    `(a) fault in ${int(o.pages)} PTEs`,
    `${int(faultsPerSec)} faults/s\n${perFault(jsFault)} ns/fault (CPU ${perFault(jsFaultCpu)})`,
    c
      ? `${int(o.pages / cFaultS)} faults/s\n${perFault(cFaultS)} ns/fault (CPU ${perFault(cFaultCpuS)})`
      : '-',
    c ? `${fmt(jsFault / cFaultS, 1)}x\n(CPU ${fmt(jsFaultCpu / cFaultCpuS, 1)}x)` : '-',
    `>= ${int(FAULT_TARGET_PER_S)}/s: ${faultsPerSec >= FAULT_TARGET_PER_S ? 'met' : 'MISSED'}`,
  ]);
  table.push([
    '    events per fault / cost of a hit',
    `${faultEvents} events / ${fmt(hitNs, 0)} ns`,
    '-',
    '-',
    '(context)',
  ]);
  for (const r of reads) {
    table.push([
      `(b) ${r.name}`,
      `${fmt(r.nsPerPte, 2)} ns/PTE\n(CPU ${fmt(r.cpuNsPerPte, 2)})`,
      c ? `${fmt(cPteNs, 2)} ns/PTE, PTE read\n(CPU ${fmt(cPteCpuNs, 2)})` : '-',
      c ? `${fmt(r.vsCPte, 1)}x\n(CPU ${fmt(r.cpuVsCPte, 1)}x)` : '-',
      c ? `<= ${READ_TARGET_RATIO}x: ${r.vsCPte <= READ_TARGET_RATIO ? 'met' : 'MISSED'}` : '',
    ]);
    if (r === smapsRead && c)
      table.push([
        '    smapsCounts vs C doing the same\n    per-page folio work',
        `${fmt(r.nsPerPte, 2)} ns/PTE\n(CPU ${fmt(r.cpuNsPerPte, 2)})`,
        `${fmt(cSmapsNs, 2)} ns/PTE, smaps read\n(CPU ${fmt(cSmapsCpuNs, 2)})`,
        `${fmt(smapsVsCSmaps, 1)}x\n(CPU ${fmt(smapsVsCSmapsCpu, 1)}x)`,
        '(like for like)',
      ]);
  }
  console.log(table.toString());

  const result = {
    bench: 'thpsim',
    date: new Date().toISOString(),
    quick: o.quick,
    custom: o.custom,
    pages: o.pages,
    vmaBytes: o.pages * PAGE,
    ramBytes,
    machine,
    cBuild: cCommand || null,
    fault: {
      js: {
        median_s: jsFault,
        samples_s: faultSeconds,
        cpu_median_s: jsFaultCpu,
        cpu_s: faultCpuSeconds,
        faultsPerSec,
        nsPerFault: (jsFault * 1e9) / o.pages,
      },
      c: c
        ? {
            median_s: c.fault.median_s,
            samples_s: c.fault.samples_s,
            cpu_median_s: c.fault.cpu_median_s,
            cpu_s: c.fault.cpu_s,
            faultsPerSec: o.pages / c.fault.median_s,
            nsPerFault: (c.fault.median_s * 1e9) / o.pages,
          }
        : null,
      jsOverC: c ? jsFault / c.fault.median_s : null,
      eventsPerFault: faultEvents,
      hitNsPerAccess: hitNs,
      targetFaultsPerSec: FAULT_TARGET_PER_S,
      targetMet: faultsPerSec >= FAULT_TARGET_PER_S,
    },
    read: {
      js: Object.fromEntries(
        reads.map((r) => [
          r.name,
          {
            median_ms: r.ms,
            cpu_median_ms: r.cpuMs,
            iterations: r.iterations,
            nsPerPte: r.nsPerPte,
            cpuNsPerPte: r.cpuNsPerPte,
          },
        ]),
      ),
      c: c
        ? {
            pte: {
              median_s: c.readPte.median_s,
              cpu_median_s: c.readPte.cpu_median_s,
              nsPerPte: cPteNs,
              cpuNsPerPte: cPteCpuNs,
            },
            smaps: {
              median_s: c.readSmaps.median_s,
              cpu_median_s: c.readSmaps.cpu_median_s,
              nsPerPte: cSmapsNs,
              cpuNsPerPte: cSmapsCpuNs,
            },
          }
        : null,
      smapsCountsOverCPte: c ? smapsRead.vsCPte : null,
      smapsCountsOverCPteCpu: c ? smapsRead.cpuVsCPte : null,
      smapsCountsOverCSmaps: c ? smapsVsCSmaps : null,
      smapsCountsOverCSmapsCpu: c ? smapsVsCSmapsCpu : null,
      walkRangeOverCPte: c ? walkRead.vsCPte : null,
      walkRangeOverCPteCpu: c ? walkRead.cpuVsCPte : null,
      targetRatio: READ_TARGET_RATIO,
      targetMet: c ? smapsRead.vsCPte <= READ_TARGET_RATIO : null,
    },
    totalSeconds: (performance.now() - t00) / 1000,
  };
  // Runs with other sizes or repetition counts do not overwrite the standard runs' latest files.
  const kind = o.custom ? 'custom' : o.quick ? 'quick' : 'full';
  writeResults(
    'bench',
    kind,
    kind === 'full' ? 'latest.json' : `latest-${kind}.json`,
    result.date,
    result,
  );
  console.log(`results in bench/out/ (total ${fmt(result.totalSeconds, 0)} s)`);
  console.log(JSON.stringify(result));
}

main();
