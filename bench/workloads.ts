// Real-life inputs: a snapshot of a live process (pagemap entries per second), thpmaps and a
// what-if run on that snapshot, and the lackey importer (MB per second). Each phase runs in its
// own child process so that its peak RSS is its own.
//
//   npm run bench:workloads                 # an 8 GiB helper (scaled down if RAM is short)
//   npm run bench:workloads -- --gib 1      # a smaller helper
//   npm run bench:workloads -- --quick      # 1 GiB helper, a small lackey trace
//
// The helper is a C program built here (cc -O2 into a temporary directory): it maps N GiB,
// asks for THPs (MADV_HUGEPAGE), writes every page, and waits. Its THP faults happen on the
// live machine, so the run takes the oracle's machine lock first. Needs root for PFNs and
// kpageflags (without root the snapshot has no folio orders).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ORACLE_LOCK } from '../src/cli/oracle-command.ts';
import { acquireMachineLock } from '../src/oracle/sysfs-guard.ts';
import { captureLive } from '../src/snapshot/capture.ts';
import { decodeSnapshot, encodeSnapshot } from '../src/snapshot/format.ts';
import { thpmaps } from '../src/snapshot/thpmaps.ts';
import { whatif } from '../src/snapshot/whatif.ts';
import { parseLackey } from '../src/workload/lackey.ts';
import { fileLines } from '../src/workload/lines.ts';
import { replay } from '../src/workload/replay.ts';
import { GiB, machineInfo } from './common.ts';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const now = () => performance.now();
const peakRssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

/**
 * The helper: N MiB in two halves. The first is MADV_HUGEPAGE before it is written (PMD THPs);
 * the second has every other page written first and MADV_HUGEPAGE only afterwards (small pages
 * that khugepaged could collapse: what-if work).
 */
const HOLD_C = `#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
  size_t len = (size_t)strtoull(argv[1], 0, 10) << 20, pmd = 2u << 20, half = len / 2;
  char *raw = mmap(0, len + pmd, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return 1;
  char *p = (char *)(((unsigned long)raw + pmd - 1) & ~(pmd - 1));
  madvise(p, half, MADV_HUGEPAGE);
  for (size_t i = 0; i < half; i += 4096) p[i] = (char)i;
  madvise(p + half, len - half, MADV_NOHUGEPAGE);
  for (size_t i = half; i < len; i += 8192) p[i] = (char)i;
  madvise(p + half, len - half, MADV_HUGEPAGE);
  printf("ready\\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {}
  return 0;
}
`;

/** A program whose lackey trace is mostly strided loads and stores over 256 MiB. */
const STRIDE_C = `#include <stdlib.h>
int main(int argc, char **argv) {
  size_t n = (size_t)strtoull(argv[1], 0, 10) << 20;
  char *p = malloc(n);
  volatile long s = 0;
  for (int r = 0; r < 2; r++)
    for (size_t i = 0; i < n; i += 64) { p[i] = (char)i; s += p[i + 32]; }
  free(p);
  return (int)(s & 1);
}
`;

// ---- phases (each in a child process) -----------------------------------------------------

function phaseSnapshot(pid: number, out: string, reps: number): object {
  // The best of a few captures (the machine may be busy); the last one is written.
  const times: number[] = [];
  let snap;
  let stats = { pagemapEntries: 0, kpageflagsReads: 0 };
  for (let r = 0; r < reps; r++) {
    stats = { pagemapEntries: 0, kpageflagsReads: 0 };
    const t0 = now();
    snap = captureLive(pid, stats);
    times.push(now() - t0);
  }
  const best = Math.min(...times);
  const t1 = now();
  const bytes = encodeSnapshot(snap!);
  writeFileSync(out, bytes);
  const t2 = now();
  return {
    captureMs: Math.round(best),
    captureMsAll: times.map(Math.round),
    encodeWriteMs: Math.round(t2 - t1),
    pagemapEntries: stats.pagemapEntries,
    pagemapEntriesPerSec: Math.round(stats.pagemapEntries / (best / 1000)),
    kpageflagsReads: stats.kpageflagsReads,
    ordersKnown: snap!.header.kpageflags,
    snapshotBytes: bytes.length,
    peakRssMiB: peakRssMiB(),
  };
}

function phaseThpmaps(file: string): object {
  const t0 = now();
  const snap = decodeSnapshot(readFileSync(file));
  const t1 = now();
  const r = thpmaps([snap], { rollup: true, cont: [64 * 1024] });
  const t2 = now();
  return {
    decodeMs: Math.round(t1 - t0),
    thpmapsMs: Math.round(t2 - t1),
    anonPmdKb: r.rollup.get('anon-thp-pmd-aligned-2048kB')?.value ?? 0,
    peakRssMiB: peakRssMiB(),
  };
}

function phaseWhatif(file: string, ms: number): object {
  const snap = decodeSnapshot(readFileSync(file));
  const t0 = now();
  const r = whatif(snap, {
    // One full scan of the whole helper within the simulated time.
    sets: [
      ['enabled', 'madvise'],
      ['khugepaged/scan_sleep_millisecs', '100'],
      ['khugepaged/pages_to_scan', '4096'],
      ['khugepaged/max_ptes_none', '511'],
    ],
    ms,
  });
  const t1 = now();
  return {
    whatifMs: Math.round(t1 - t0),
    simulatedMs: ms,
    pagesLoaded: r.loaded.pages,
    folios: r.loaded.folios,
    before: r.before.bySizeKb,
    after: r.after.bySizeKb,
    collapses: r.collapses.succeeded,
    bloatKb: r.collapses.bySize,
    fullScans: r.khugepaged.full_scans,
    pmdResults: r.collapses.pmdResults,
    peakRssMiB: peakRssMiB(),
  };
}

function phaseLackey(file: string, parseOnly: boolean): object {
  const bytes = statSync(file).size;
  const t0 = now();
  let ops = 0;
  const stats = { lines: 0, dataAccesses: 0, intervals: 0, pagesAccessed: 0 };
  if (parseOnly) for (const _ of parseLackey(fileLines(file), {}, stats)) ops++;
  else {
    const r = replay(() => parseLackey(fileLines(file), {}, stats), {
      source: file,
      format: 'lackey',
      sysfs: [['enabled', 'always']],
    });
    ops = r.input.ops;
  }
  const s = (now() - t0) / 1000;
  return {
    mode: parseOnly ? 'parse' : 'replay',
    mb: +(bytes / 2 ** 20).toFixed(1),
    seconds: +s.toFixed(2),
    mbPerSec: +(bytes / 2 ** 20 / s).toFixed(1),
    lines: stats.lines,
    dataAccesses: stats.dataAccesses,
    ops,
    peakRssMiB: peakRssMiB(),
  };
}

function child(phase: string, ...rest: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [...process.execArgv, self, '--phase', phase, ...rest], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`phase ${phase} failed (${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

// ---- main ---------------------------------------------------------------------------------

const phase = opt('--phase', '');
if (phase) {
  const [a, b] = [opt('--a', ''), opt('--b', '')];
  const out =
    phase === 'snapshot'
      ? phaseSnapshot(Number(a), b, 3)
      : phase === 'thpmaps'
        ? phaseThpmaps(a)
        : phase === 'whatif'
          ? phaseWhatif(a, Number(b))
          : phaseLackey(a, b === 'parse');
  console.log(JSON.stringify(out));
  process.exit(0);
}

const quick = flag('--quick');
let gib = Number(opt('--gib', quick ? '1' : '8'));
const free = freemem() / GiB;
let note = '';
// The helper, the model's copy during what-if (about 1.3x) and slack.
if (gib * 2.6 + 1 > free) {
  const fit = Math.max(1, Math.floor((free - 1) / 2.6));
  note = `scaled down from ${gib} GiB to ${fit} GiB: ${free.toFixed(1)} GiB free`;
  gib = fit;
}
const dir = mkdtempSync(path.join(tmpdir(), 'thpsim-bench-wl-'));
const results: Record<string, unknown> = { machine: machineInfo(), helperGiB: gib, note };
try {
  execFileSync('cc', ['-O2', '-o', path.join(dir, 'hold'), '-x', 'c', '-'], { input: HOLD_C });
  execFileSync('cc', ['-O1', '-o', path.join(dir, 'stride'), '-x', 'c', '-'], { input: STRIDE_C });
  const unlock = acquireMachineLock(ORACLE_LOCK, 30 * 60_000, (l) => console.error(l));
  const snapFile = path.join(dir, 'helper.snap');
  try {
    const helper = spawn(path.join(dir, 'hold'), [String(gib * 1024)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const t0 = now();
    await new Promise<void>((resolve, reject) => {
      helper.stdout.once('data', () => resolve());
      helper.once('exit', (c) => reject(new Error(`helper exited with ${c}`)));
    });
    results.helperFaultInSec = +((now() - t0) / 1000).toFixed(1);
    const smaps = readFileSync(`/proc/${helper.pid}/smaps_rollup`, 'utf8');
    results.helperAnonHugePagesKb = Number(/AnonHugePages:\s+(\d+)/.exec(smaps)?.[1] ?? 0);
    try {
      results.snapshot = child('snapshot', '--a', String(helper.pid), '--b', snapFile);
    } finally {
      helper.stdin.end();
      helper.kill();
    }
  } finally {
    unlock();
  }
  console.error('snapshot', JSON.stringify(results.snapshot));
  results.thpmaps = child('thpmaps', '--a', snapFile);
  console.error('thpmaps', JSON.stringify(results.thpmaps));
  results.whatif = child('whatif', '--a', snapFile, '--b', quick ? '10000' : '60000');
  console.error('whatif', JSON.stringify(results.whatif));
  const trace = path.join(dir, 'stride.lackey');
  const mb = quick ? 16 : 128;
  execFileSync('valgrind', [
    '--tool=lackey',
    '--trace-mem=yes',
    `--log-file=${trace}`,
    path.join(dir, 'stride'),
    String(mb),
  ]);
  results.lackeyParse = child('lackey', '--a', trace, '--b', 'parse');
  console.error('lackey parse', JSON.stringify(results.lackeyParse));
  results.lackeyReplay = child('lackey', '--a', trace, '--b', 'replay');
  console.error('lackey replay', JSON.stringify(results.lackeyReplay));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(results));
