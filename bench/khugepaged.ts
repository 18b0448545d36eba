// Benchmarks of khugepaged (see bench/README.md):
//   (1) the daemon on the simulated clock over one process with N GiB of anonymous memory in 4K
//       pages, at the default knobs, until full_scans reaches 2: simulated time per real second,
//       in two runs: (1a) nothing to collapse (every PMD range is scanned, all 512 PTEs, and
//       left alone) and (1b) every PMD range collapses;
//   (2) the PMD scan loop alone (collapseScanPmd on PMD ranges whose every PTE passes), in PTEs
//       per second, against a C scan over the same typed-array layout (bench/c/ref.c, `scan`
//       mode), compiled with the machine's `cc -O2` into a temporary directory.
//
//   npm run bench:khugepaged              64 GiB (16 Mi PTEs, 32,768 PMD ranges), 70-105 s
//   npm run bench:khugepaged -- --quick   8 GiB, ~12 s
// Options: --gib N (process size), --ram-gib X (kernel RAM, default N + 1; may be fractional),
// --scan-reps N,
// --no-c (skip the C reference).

import Table from 'cli-table3';
import { Bench } from 'tinybench';
import { newCollapseControl } from '../src/khugepaged/control.ts';
import { collapseScanPmd, type PmdScan } from '../src/khugepaged/scan-pmd.ts';
import type { Kernel } from '../src/mm/kernel.ts';
import { BalanceSink } from '../src/mm/locks.ts';
import { L_MMAP_READ, type Step, lock, unlock } from '../src/mm/step.ts';
import type { Mm, Vma } from '../src/mm/vma.ts';
import { Machine } from '../src/sim/machine.ts';
import {
  GiB,
  type MachineInfo,
  fmt,
  int,
  machineInfo,
  makeGc,
  median,
  runCJson,
  timed,
  withCReference,
  writeResults,
} from './common.ts';

const PAGE = 4096;
const PTRS = 512;
const PMD_BYTES = PTRS * PAGE;
const SCAN_TARGET_RATIO = 3;
/** Upper bound on simulated time for one daemon run (waitKhugepaged's maxMs): 30 days. */
const MAX_SIM_MS = 30 * 24 * 3600 * 1000;
const KNOBS = [
  'pages_to_scan',
  'scan_sleep_millisecs',
  'alloc_sleep_millisecs',
  'max_ptes_none',
  'max_ptes_swap',
  'max_ptes_shared',
  'defrag',
] as const;

interface Options {
  quick: boolean;
  gib: number;
  ramGib: number;
  scanReps: number;
  c: boolean;
  custom: boolean;
}

function parseArgs(argv: string[]): Options {
  const flags = ['--quick', '--gib', '--ram-gib', '--scan-reps', '--no-c'];
  for (let i = 0; i < argv.length; i++) {
    if (!flags.includes(argv[i])) throw new Error(`unknown option ${argv[i]}`);
    if (['--gib', '--ram-gib', '--scan-reps'].includes(argv[i])) i++;
  }
  const num = (flag: string, integer = true): number | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = Number(argv[i + 1]);
    if (!(v > 0 && Number.isFinite(v)) || (integer && !Number.isSafeInteger(v)))
      throw new Error(`${flag} needs a positive ${integer ? 'integer' : 'number'}`);
    return v;
  };
  const quick = argv.includes('--quick');
  const gib = num('--gib') ?? (quick ? 8 : 64);
  const ramGib = num('--ram-gib', false) ?? gib + 1;
  if (ramGib <= gib) throw new Error('--ram-gib must exceed --gib');
  const scanReps = num('--scan-reps') ?? (quick ? 15 : 9);
  if (scanReps > 64) throw new Error('--scan-reps is at most 64');
  return {
    quick,
    gib,
    ramGib,
    scanReps,
    c: !argv.includes('--no-c'),
    custom: ['--gib', '--ram-gib', '--scan-reps', '--no-c'].some((f) => argv.includes(f)),
  };
}

/** The kernel's RAM in bytes: --ram-gib rounded down to whole pages. */
function ramBytes(o: Options): number {
  return Math.floor((o.ramGib * GiB) / PAGE) * PAGE;
}

interface Populated {
  m: Machine;
  k: Kernel;
  mm: Mm;
  addr: number;
  len: number;
  /** Wall and CPU seconds of the fault-in. */
  faultSeconds: number;
  faultCpuSeconds: number;
}

/**
 * A kernel of ramGib with one process that has written every page of a PMD-aligned gib-sized
 * anonymous mapping once, with THP enabled=never (so 4K pages only), then THP enabled=madvise
 * and MADV_HUGEPAGE on the mapping, which registers the process with khugepaged.
 */
function populate(o: Options, label: string): Populated {
  const m = new Machine({ geometry: 'x86-64-4k', ramBytes: ramBytes(o), strictLocks: false });
  const k = m.kernel;
  m.sysfsWrite('enabled', 'never');
  const mm = m.spawn('bench');
  const len = o.gib * GiB;
  const addr = m.mmap(mm, { lengthBytes: len, alignBytes: PMD_BYTES, name: 'bench' });
  process.stdout.write(`${label}: write-fault ${int(len / PAGE)} 4K pages ... `);
  const t = timed(() => {
    for (let a = addr; a < addr + len; a += GiB) {
      const r = m.touch(mm, a, Math.min(GiB, addr + len - a), true);
      if (r !== 'fault') throw new Error(`populate: ${r} at ${a}`);
    }
  });
  console.log(`${fmt(t.seconds, 1)} s (CPU ${fmt(t.cpuSeconds, 1)} s)`);
  const pages = len / PAGE;
  const problems: string[] = [];
  if (mm.rssAnon !== pages) problems.push(`rssAnon ${mm.rssAnon}`);
  if (k.stats.vmstat('pgfault') !== pages) problems.push(`pgfault ${k.stats.vmstat('pgfault')}`);
  if (k.stats.vmstat('thp_fault_alloc') !== 0) problems.push('THP faults happened');
  if (problems.length) throw new Error(`populate check failed: ${problems.join(', ')}`);
  m.sysfsWrite('enabled', 'madvise');
  m.madvise(mm, addr, len, 'hugepage');
  if (!mm.khugepagedRegistered) throw new Error('MADV_HUGEPAGE did not register the mm');
  return { m, k, mm, addr, len, faultSeconds: t.seconds, faultCpuSeconds: t.cpuSeconds };
}

interface DaemonRun {
  pmds: number;
  simSeconds: number;
  /** Wake-ups of the thread: simulated time / scan_sleep_millisecs + 1 (no alloc sleep seen). */
  passes: number | null;
  wallSeconds: number;
  cpuSeconds: number;
  simPerRealSecond: number;
  fullScans: number;
  pagesCollapsed: number;
  collapseAlloc: number;
  collapseAllocFailed: number;
  /** Real time per PMD range visited (two full scans) and per collapse. */
  wallUsPerPmdVisit: number;
  wallUsPerCollapse: number | null;
  /** Results of a khugepaged-style scan of every PMD range afterwards (the check). */
  after: Record<string, number>;
  anonHugePagesKb: number;
}

/** Tally of scanning every PMD range of vma as khugepaged would (the mmap read lock held). */
interface Tally {
  results: Record<string, number>;
  inspected: number;
  referenced: number;
  lastFolioSum: number;
}

function* scanOnePmd(k: Kernel, mm: Mm, vma: Vma, vpn: number): Step<PmdScan> {
  yield lock(L_MMAP_READ, mm.id);
  const scan = yield* collapseScanPmd(k, mm, vma, vpn, newCollapseControl(true));
  yield unlock(L_MMAP_READ, mm.id);
  return scan;
}

/** collapseScanPmd over every PMD range of vma, one k.run per range (the scan loop of (2)). */
function scanEveryPmd(k: Kernel, mm: Mm, vma: Vma): Tally {
  const t: Tally = { results: {}, inspected: 0, referenced: 0, lastFolioSum: 0 };
  for (let vpn = vma.start; vpn < vma.end; vpn += PTRS) {
    const s = k.run(scanOnePmd(k, mm, vma, vpn));
    t.results[s.result] = (t.results[s.result] ?? 0) + 1;
    t.inspected += s.inspected;
    t.referenced += s.referenced;
    t.lastFolioSum += s.lastFolio;
  }
  return t;
}

/**
 * (2), JS side: scanEveryPmd through tinybench (3 warm-up iterations, then `reps`), wall time as
 * the median of the iterations and process CPU time of the same iterations.
 */
function timeScanLoop(
  p: Populated,
  vma: Vma,
  reference: Tally,
  reps: number,
): { ms: number; cpuMs: number; iterations: number } {
  const cpuMs: number[] = [];
  let calls = 0;
  let differing = 0;
  const bench = new Bench({
    name: 'PMD scan loop',
    iterations: reps,
    time: 0,
    warmupIterations: 3,
    warmupTime: 0,
    throws: true,
  });
  bench.add('collapseScanPmd, every PMD range', () => {
    const cpu0 = process.cpuUsage();
    calls++;
    if (scanEveryPmd(p.k, p.mm, vma).lastFolioSum !== reference.lastFolioSum) differing++;
    const d = process.cpuUsage(cpu0);
    cpuMs.push((d.user + d.system) / 1000);
  });
  bench.runSync();
  const task = bench.tasks[0].result;
  if (task.state !== 'completed') throw new Error(`scan loop: ${task.state}`);
  const n = task.latency.samplesCount;
  if (calls < n || differing !== 0) throw new Error('scan loop results changed');
  if (p.k.sink instanceof BalanceSink && p.k.sink.depth !== 0) throw new Error('unbalanced locks');
  return { ms: task.latency.p50, cpuMs: median(cpuMs.slice(-n)), iterations: n };
}

/** Let the simulated clock run (Machine.waitKhugepaged) until full_scans has gone up by 2. */
function runDaemon(p: Populated, mm: Mm): DaemonRun {
  const { m, k } = p;
  const pmds = p.len / PMD_BYTES;
  const before = m.khugepaged();
  const vmstat0 = m.vmstat();
  const clock0 = k.clockMs;
  const t = timed(() => m.waitKhugepaged(2, MAX_SIM_MS));
  const after = m.khugepaged();
  const vmstat1 = m.vmstat();
  const fullScans = after.full_scans - before.full_scans;
  if (fullScans < 2) throw new Error(`only ${fullScans} full scans within ${MAX_SIM_MS} ms`);
  if (k.sink instanceof BalanceSink && k.sink.depth !== 0) throw new Error('unbalanced locks');
  const simSeconds = (k.clockMs - clock0) / 1000;
  const pagesCollapsed = after.pages_collapsed - before.pages_collapsed;
  const collapseAllocFailed = vmstat1.thp_collapse_alloc_failed - vmstat0.thp_collapse_alloc_failed;
  const sleepMs = Number(m.sysfsRead('khugepaged/scan_sleep_millisecs'));
  const vma = mm.findVma(p.addr / PAGE)!;
  const smaps = m.smaps(mm).find((e) => e.start === p.addr);
  return {
    pmds,
    simSeconds,
    passes: collapseAllocFailed === 0 ? Math.round((simSeconds * 1000) / sleepMs) + 1 : null,
    wallSeconds: t.seconds,
    cpuSeconds: t.cpuSeconds,
    simPerRealSecond: simSeconds / t.seconds,
    fullScans,
    pagesCollapsed,
    collapseAlloc: vmstat1.thp_collapse_alloc - vmstat0.thp_collapse_alloc,
    collapseAllocFailed,
    wallUsPerPmdVisit: (t.seconds * 1e6) / (fullScans * pmds),
    wallUsPerCollapse: pagesCollapsed > 0 ? (t.seconds * 1e6) / pagesCollapsed : null,
    after: scanEveryPmd(k, mm, vma).results,
    anonHugePagesKb: smaps?.AnonHugePages ?? 0,
  };
}

interface CScan {
  n: number;
  fault_s: number;
  scan: {
    median_s: number;
    samples_s: number[];
    cpu_median_s: number;
    results: Record<string, number>;
    inspected: number;
    referenced: number;
    lastFolioSum: number;
  };
}

function main(): void {
  const t00 = performance.now();
  const o = parseArgs(process.argv.slice(2));
  const gc = makeGc();
  const machine: MachineInfo = machineInfo();
  const pages = (o.gib * GiB) / PAGE;
  const pmds = pages / PTRS;
  console.log(
    `thpsim khugepaged bench${o.quick ? ' --quick' : ''}: ${o.gib} GiB of anonymous memory ` +
      `(${int(pages)} 4K pages, ${int(pmds)} PMD ranges), kernel ${o.ramGib} GiB, ` +
      `${o.scanReps} scan-loop iterations`,
  );
  console.log(`${machine.cpu} x${machine.cpus}, node ${machine.node}, ${machine.cc}`);

  // The mapping's address does not depend on RAM: take it from a small kernel so C runs first.
  const probe = new Machine({ geometry: 'x86-64-4k', ramBytes: 64 * 1024 * 1024 });
  const probeAddr = probe.mmap(probe.spawn('bench'), {
    lengthBytes: o.gib * GiB,
    alignBytes: PMD_BYTES,
    name: 'bench',
  });
  const knobs = Object.fromEntries(
    KNOBS.map((n) => [n, probe.sysfsRead(`khugepaged/${n}`).trim()]),
  );
  const profileName = probe.kernel.profile.name;

  // (2), C side: fault the same range in, then time the scan of every PMD range.
  let c: CScan | null = null;
  let cCommand = '';
  if (o.c) {
    c = withCReference((bin, command) => {
      cCommand = command;
      process.stdout.write('C reference (fault-in, then the PMD scan loop) ... ');
      return runCJson<CScan>(bin, [
        'scan',
        pages,
        ramBytes(o) / PAGE,
        probeAddr / PAGE,
        o.scanReps,
      ]);
    });
    console.log(`scan ${fmt(c.scan.median_s * 1000, 1)} ms`);
  }

  // Kernel 1: every PMD range collapsible. (2) first, since the scan leaves the state alone,
  // then (1b).
  gc();
  const pb = populate(o, 'collapse kernel');
  if (pb.addr !== probeAddr) throw new Error('mapping address differs from the probe');
  const vmaB = pb.mm.findVma(pb.addr / PAGE)!;
  const reference = scanEveryPmd(pb.k, pb.mm, vmaB);
  if (reference.results.SCAN_SUCCEED !== pmds || reference.inspected !== pages)
    throw new Error(`scan loop: not every PTE passed: ${JSON.stringify(reference.results)}`);
  if (c) {
    const same =
      c.scan.results.SCAN_SUCCEED === pmds &&
      Object.keys(c.scan.results).length === 1 &&
      c.scan.inspected === reference.inspected &&
      c.scan.referenced === reference.referenced &&
      c.scan.lastFolioSum === reference.lastFolioSum;
    if (!same)
      throw new Error(
        `C and JS scans disagree: C ${JSON.stringify(c.scan)} JS ${JSON.stringify(reference)}`,
      );
  }
  process.stdout.write('JS PMD scan loop ... ');
  const scanLoop = timeScanLoop(pb, vmaB, reference, o.scanReps);
  const jsScanMs = scanLoop.ms;
  const jsScanCpuMs = scanLoop.cpuMs;
  const jsNs = (jsScanMs * 1e6) / pages;
  const jsCpuNs = (jsScanCpuMs * 1e6) / pages;
  const cNs = c ? (c.scan.median_s * 1e9) / pages : NaN;
  const cCpuNs = c ? (c.scan.cpu_median_s * 1e9) / pages : NaN;
  console.log(`${fmt(jsScanMs, 1)} ms`);

  process.stdout.write('(1b) khugepaged until full_scans = 2, collapsing ... ');
  const collapse = runDaemon(pb, pb.mm);
  console.log(`${fmt(collapse.wallSeconds, 2)} s`);
  if (collapse.pagesCollapsed < pmds)
    console.log(
      `  note: ${int(pmds - collapse.pagesCollapsed)} PMD ranges not collapsed ` +
        `(${int(collapse.collapseAllocFailed)} allocation failures)`,
    );
  const collapseFault = { seconds: pb.faultSeconds, cpuSeconds: pb.faultCpuSeconds };

  // Kernel 2: nothing to collapse. fork() leaves the child's PTEs old (copy_present_pte), and
  // with the parent gone every folio is the child's alone, so each PMD range is scanned to the
  // end and refused with SCAN_LACK_REFERENCED_PAGE.
  gc();
  const pa = populate(o, 'scan-only kernel');
  const forkT = timed(() => pa.m.fork(pa.mm, 'child'));
  const child = forkT.value;
  const exitT = timed(() => pa.m.exit(pa.mm));
  const registered = pa.m.khugepaged().registered;
  if (registered.length !== 1 || registered[0] !== 'child')
    throw new Error(`khugepaged slots after fork and exit: ${registered.join(', ')}`);
  console.log(
    `  fork ${fmt(forkT.seconds, 2)} s, parent exit ${fmt(exitT.seconds, 2)} s; ` +
      `khugepaged scans the child`,
  );
  process.stdout.write('(1a) khugepaged until full_scans = 2, nothing to collapse ... ');
  const scanOnly = runDaemon(pa, child);
  console.log(`${fmt(scanOnly.wallSeconds, 2)} s`);
  if (scanOnly.pagesCollapsed !== 0 || scanOnly.after.SCAN_LACK_REFERENCED_PAGE !== pmds)
    throw new Error(`scan-only run: ${JSON.stringify(scanOnly)}`);
  if ((collapse.after.SCAN_PMD_MAPPED ?? 0) !== collapse.pagesCollapsed)
    throw new Error(`collapse run: ${JSON.stringify(collapse.after)}`);

  // Report.
  const hours = (s: number) => `${fmt(s / 3600, 2)} h`;
  const daemonTable = new Table({
    head: [
      `(1) khugepaged, ${o.gib} GiB, default knobs,\n    until full_scans = 2`,
      'simulated',
      'real (CPU)',
      'sim : real',
      'PMDs collapsed\n(alloc failed)',
      'real per PMD visit\n/ per collapse',
    ],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right'],
  });
  for (const [name, r] of [
    ['(1a) nothing to collapse\n     (LACK_REFERENCED_PAGE)', scanOnly],
    ['(1b) every PMD range collapses', collapse],
  ] as const)
    daemonTable.push([
      name,
      `${hours(r.simSeconds)}\n${r.passes === null ? '' : `${int(r.passes)} passes`}`,
      `${fmt(r.wallSeconds, 2)} s\n(${fmt(r.cpuSeconds, 2)} s)`,
      `${int(r.simPerRealSecond)} : 1`,
      `${int(r.pagesCollapsed)}\n(${int(r.collapseAllocFailed)})`,
      `${fmt(r.wallUsPerPmdVisit, 1)} us\n${r.wallUsPerCollapse === null ? '-' : `${fmt(r.wallUsPerCollapse, 1)} us`}`,
    ]);
  console.log(daemonTable.toString());

  const scanTable = new Table({
    head: ['(2) PMD scan loop', 'JS (median)', 'C -O2 (median)', 'JS / C', 'target'],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', 'right', 'right', 'left'],
  });
  scanTable.push([
    `collapseScanPmd via k.run,\n${int(pmds)} PMD ranges x 512 PTEs`,
    `${fmt(jsNs, 2)} ns/PTE (CPU ${fmt(jsCpuNs, 2)})\n${int(1e9 / jsNs)} PTEs/s`,
    c ? `${fmt(cNs, 2)} ns/PTE (CPU ${fmt(cCpuNs, 2)})\n${int(1e9 / cNs)} PTEs/s` : '-',
    c ? `${fmt(jsNs / cNs, 1)}x\n(CPU ${fmt(jsCpuNs / cCpuNs, 1)}x)` : '-',
    c ? `<= ${SCAN_TARGET_RATIO}x: ${jsNs / cNs <= SCAN_TARGET_RATIO ? 'met' : 'MISSED'}` : '',
  ]);
  console.log(scanTable.toString());
  console.log(
    `setup: write-fault ${int(pages)} pages ${fmt(collapseFault.seconds, 1)} s and ` +
      `${fmt(pa.faultSeconds, 1)} s; fork ${fmt(forkT.seconds, 2)} s, exit ${fmt(exitT.seconds, 2)} s` +
      (c ? `; C fault-in ${fmt(c.fault_s, 2)} s` : ''),
  );

  const daemonJson = (r: DaemonRun) => ({ ...r, simHours: r.simSeconds / 3600 });
  const result = {
    bench: 'thpsim-khugepaged',
    date: new Date().toISOString(),
    quick: o.quick,
    custom: o.custom,
    gib: o.gib,
    vmaBytes: o.gib * GiB,
    ramBytes: ramBytes(o),
    pages,
    pmds,
    profile: profileName,
    knobs,
    machine,
    cBuild: cCommand || null,
    daemon: {
      scanOnly: daemonJson(scanOnly),
      collapse: daemonJson(collapse),
    },
    scanLoop: {
      js: {
        median_ms: jsScanMs,
        cpu_median_ms: jsScanCpuMs,
        iterations: scanLoop.iterations,
        nsPerPte: jsNs,
        cpuNsPerPte: jsCpuNs,
        ptesPerSec: 1e9 / jsNs,
        results: reference.results,
      },
      c: c
        ? {
            median_s: c.scan.median_s,
            samples_s: c.scan.samples_s,
            cpu_median_s: c.scan.cpu_median_s,
            nsPerPte: cNs,
            cpuNsPerPte: cCpuNs,
            ptesPerSec: 1e9 / cNs,
            results: c.scan.results,
          }
        : null,
      jsOverC: c ? jsNs / cNs : null,
      jsOverCCpu: c ? jsCpuNs / cCpuNs : null,
      targetRatio: SCAN_TARGET_RATIO,
      targetMet: c ? jsNs / cNs <= SCAN_TARGET_RATIO : null,
    },
    setup: {
      faultCollapseKernel_s: collapseFault.seconds,
      faultScanOnlyKernel_s: pa.faultSeconds,
      fork_s: forkT.seconds,
      exit_s: exitT.seconds,
      cFault_s: c ? c.fault_s : null,
    },
    totalSeconds: (performance.now() - t00) / 1000,
  };
  const kind = o.custom ? 'custom' : o.quick ? 'quick' : 'full';
  const latest = writeResults(
    'khugepaged',
    kind,
    kind === 'full' ? 'khugepaged-latest.json' : `khugepaged-latest-${kind}.json`,
    result.date,
    result,
  );
  console.log(`results in ${latest} (total ${fmt(result.totalSeconds, 0)} s)`);
  console.log(JSON.stringify(result));
}

main();
