// Benchmark of mTHP collapse's order choice (see bench/README.md): the merged (v19) forward walk
// over the orders of one PMD range (forwardWalk in src/khugepaged/mthp/order-walk.ts) with its
// bitmap work (PteBitmap.count) and maxPtesNoneV19 thresholds, all anon orders 2..9 enabled,
// for random 512-bit occupancy bitmaps of varied density, at max_ptes_none 0 and 511, in ns per
// PMD range, against the same walk in C over the same bitmaps (bench/c/ref.c, `walk` mode),
// compiled with the machine's `cc -O2` into a temporary directory.
//
//   npm run bench:mthp              4096 bitmaps, 31 timed passes per row, a few seconds
// Options: --bitmaps N, --seed N (uint32, not 0), --reps N (<= 64), --no-c.

import Table from 'cli-table3';
import { PteBitmap, popcount32 } from '../src/khugepaged/mthp/bitmap.ts';
import { MthpWalkInput } from '../src/khugepaged/mthp/collapse.ts';
import { ForwardWalk } from '../src/khugepaged/mthp/order-walk.ts';
import { fmt, int, machineInfo, median, runCJson, withCReference, writeResults } from './common.ts';

const NR = 512;
const PMD_ORDER = 9;
/** Anon orders 2..9 (the PMD order included), as collapse_possible_orders would give. */
const ENABLED = 0b11_1111_1100;
const MAX_PTES_NONE = [0, NR - 1] as const;
const TARGET_RATIO = 3;
const WARMUP = 5;

interface Options {
  bitmaps: number;
  seed: number;
  reps: number;
  c: boolean;
  custom: boolean;
}

function parseArgs(argv: string[]): Options {
  const valued = ['--bitmaps', '--seed', '--reps'];
  for (let i = 0; i < argv.length; i++) {
    if (![...valued, '--no-c'].includes(argv[i])) throw new Error(`unknown option ${argv[i]}`);
    if (valued.includes(argv[i])) i++;
  }
  const num = (flag: string, max: number): number | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = Number(argv[i + 1]);
    if (!(Number.isSafeInteger(v) && v > 0 && v <= max))
      throw new Error(`${flag} needs an integer in 1..${max}`);
    return v;
  };
  return {
    bitmaps: num('--bitmaps', 1 << 20) ?? 4096,
    seed: num('--seed', 0xffffffff) ?? 12345,
    reps: num('--reps', 64) ?? 31,
    c: !argv.includes('--no-c'),
    custom: [...valued, '--no-c'].some((f) => argv.includes(f)),
  };
}

/**
 * The bitmaps, from a xorshift32 generator that bench/c/ref.c (make_bitmaps) repeats: per bitmap
 * one of four kinds (uniform density k/16 with k in 0..16; a random density per 32-bit word;
 * words all full or all empty; dense, 12..16/16 per word), then per bit a draw against k.
 */
export function makeBitmaps(n: number, seed: number): PteBitmap[] {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const out: PteBitmap[] = [];
  for (let b = 0; b < n; b++) {
    const bm = new PteBitmap(NR);
    const r = next();
    const kind = r & 3;
    const base = (r >>> 2) % 17;
    for (let w = 0; w < NR / 32; w++) {
      const k =
        kind === 0
          ? base
          : kind === 1
            ? next() % 17
            : kind === 2
              ? next() & 1
                ? 16
                : 0
              : 12 + (next() % 5);
      let word = 0;
      for (let bit = 0; bit < 32; bit++) if ((next() & 15) < k) word |= 1 << bit;
      bm.words[w] = word;
    }
    out.push(bm);
  }
  return out;
}

function bitmapHash(bitmaps: PteBitmap[]): number {
  let h = 0;
  for (const bm of bitmaps) for (const w of bm.words) h = (Math.imul(h, 31) + w) >>> 0;
  return h;
}

interface Tally {
  attempts: number;
  collapsed: number;
  /** h = h * 31 + (offset << 4 | order) over every attempt, uint32. */
  hash: number;
  results: Record<string, number>;
}

/**
 * One pass: per bitmap what mthpCollapse does around the walk (refill the collapse control's
 * MthpWalkInput, reset its ForwardWalk), then drive it: SCAN_SUCCEED for a region whose first
 * PTE is occupied, SCAN_ALLOC_HUGE_PAGE_FAIL (a soft failure: smaller orders are tried) otherwise.
 */
function walkAll(bitmaps: PteBitmap[], sysfs: number): Tally {
  let attempts = 0;
  let collapsed = 0;
  let hash = 0;
  const results: Record<string, number> = {};
  // As mthpCollapse does: one input and one walk per collapse control, reset for each range.
  let walk: ForwardWalk | undefined;
  const w = new MthpWalkInput(bitmaps[0]);
  for (let b = 0; b < bitmaps.length; b++) {
    const bits = bitmaps[b];
    w.fill('v19', bits, NR, PMD_ORDER, sysfs, false, ENABLED, 0, 0, NR);
    walk = walk ? walk.reset(w) : new ForwardWalk(w);
    while (walk.next()) {
      const { offset, order } = walk;
      attempts++;
      hash = (Math.imul(hash, 31) + ((offset << 4) | order)) >>> 0;
      walk.report(bits.test(offset) ? 'SCAN_SUCCEED' : 'SCAN_ALLOC_HUGE_PAGE_FAIL');
    }
    const result = walk.result();
    results[result] = (results[result] ?? 0) + 1;
    collapsed += walk.collapsed;
  }
  return { attempts, collapsed, hash, results };
}

/**
 * Bench-only context, not model code: the same walk and outcomes as one plain function (no
 * generator, no WalkInput or closure, no Set, shifts for 2 ** order), with the region weight
 * either from PteBitmap.count (`wordCount` false) or read at word level (a masked word for
 * regions under 32 PTEs, whole words above; regions are aligned to their size). Checked against
 * the same attempt hash; it shows where forwardWalk's time goes.
 */
function plainWalkAll(bitmaps: PteBitmap[], sysfs: number, wordCount: boolean): Tally {
  let attempts = 0;
  let collapsed = 0;
  let hash = 0;
  let succeeded = 0;
  let failed = 0;
  for (let b = 0; b < bitmaps.length; b++) {
    const bits = bitmaps[b];
    const words = bits.words;
    let offset = 0;
    let order = PMD_ORDER;
    let done = 0;
    while (offset < NR) {
      const n = 1 << order;
      let advance = false;
      if (ENABLED & (1 << order)) {
        let occupied = 0;
        if (!wordCount) occupied = bits.count(offset, n);
        else if (n >= 32)
          for (let i = offset >>> 5, e = (offset + n) >>> 5; i < e; i++)
            occupied += popcount32(words[i]);
        else occupied = popcount32((words[offset >>> 5] >>> (offset & 31)) & ((1 << n) - 1));
        const maxNone = order === PMD_ORDER ? sysfs : sysfs === NR - 1 ? n - 1 : 0;
        if (occupied >= n - maxNone) {
          attempts++;
          hash = (Math.imul(hash, 31) + ((offset << 4) | order)) >>> 0;
          if (bits.test(offset)) {
            done += n;
            advance = true;
          }
        }
      }
      if (!advance && order > 2 && ENABLED & ((1 << order) - 1) & ~3) {
        order--;
        continue;
      }
      offset += 1 << order;
      order = Math.min(31 - Math.clz32(offset & -offset), PMD_ORDER);
    }
    collapsed += done;
    if (done) succeeded++;
    else failed++;
  }
  return { attempts, collapsed, hash, results: { SCAN_SUCCEED: succeeded, other: failed } };
}

interface Timing {
  ms: number;
  cpuMs: number;
  samplesMs: number[];
}

function timeJs(reps: number, ref: Tally, pass: () => Tally): Timing {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < WARMUP + reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const t = pass();
    const t1 = performance.now();
    const c = process.cpuUsage(c0);
    if (t.hash !== ref.hash || t.attempts !== ref.attempts || t.collapsed !== ref.collapsed)
      throw new Error('JS walk changed');
    if (r < WARMUP) continue;
    wall.push(t1 - t0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { ms: median(wall), cpuMs: median(cpu), samplesMs: wall };
}

interface CWalk {
  n: number;
  maxPtesNone: number;
  enabled: number;
  bitmapHash: number;
  median_s: number;
  cpu_median_s: number;
  samples_s: number[];
  attempts: number;
  collapsed: number;
  hash: number;
  results: Record<string, number>;
}

function sameResults(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => (a[k] ?? 0) === (b[k] ?? 0));
}

function main(): void {
  const t00 = performance.now();
  const o = parseArgs(process.argv.slice(2));
  const machine = machineInfo();
  const bitmaps = makeBitmaps(o.bitmaps, o.seed);
  const bmHash = bitmapHash(bitmaps);
  let density = 0;
  for (const bm of bitmaps) density += bm.count(0, NR);
  density /= bitmaps.length * NR;

  const rows = MAX_PTES_NONE.map((sysfs) => {
    const ref = walkAll(bitmaps, sysfs);
    const js = timeJs(o.reps, ref, () => walkAll(bitmaps, sysfs));
    const plain = timeJs(o.reps, ref, () => plainWalkAll(bitmaps, sysfs, false));
    const words = timeJs(o.reps, ref, () => plainWalkAll(bitmaps, sysfs, true));
    return { sysfs, ref, js, plain, words };
  });

  let cCommand = '';
  const cRows: Array<CWalk | null> = o.c
    ? withCReference((bin, command) => {
        cCommand = command;
        return MAX_PTES_NONE.map((sysfs) =>
          runCJson<CWalk>(bin, ['walk', o.bitmaps, o.seed, sysfs, ENABLED, o.reps]),
        );
      })
    : MAX_PTES_NONE.map(() => null);
  rows.forEach(({ sysfs, ref }, i) => {
    const c = cRows[i];
    if (!c) return;
    if (c.bitmapHash !== bmHash) throw new Error(`C and JS bitmaps differ (${sysfs})`);
    if (
      c.hash !== ref.hash ||
      c.attempts !== ref.attempts ||
      c.collapsed !== ref.collapsed ||
      !sameResults(c.results, ref.results)
    )
      throw new Error(
        `C and JS walks disagree at max_ptes_none ${sysfs}: C ${JSON.stringify(c)} JS ${JSON.stringify(ref)}`,
      );
  });

  const n = o.bitmaps;
  const figures = rows.map(({ sysfs, ref, js, plain, words }, i) => {
    const c = cRows[i];
    const jsNs = (js.ms * 1e6) / n;
    const jsCpuNs = (js.cpuMs * 1e6) / n;
    const cNs = c ? (c.median_s * 1e9) / n : null;
    const cCpuNs = c ? (c.cpu_median_s * 1e9) / n : null;
    const ratio = cNs ? jsNs / cNs : null;
    return {
      maxPtesNone: sysfs,
      attempts: ref.attempts,
      attemptsPerPmd: ref.attempts / n,
      collapsedPtes: ref.collapsed,
      attemptHash: ref.hash,
      results: ref.results,
      js: {
        median_ms: js.ms,
        cpu_median_ms: js.cpuMs,
        samples_ms: js.samplesMs,
        nsPerPmd: jsNs,
        cpuNsPerPmd: jsCpuNs,
      },
      c: c
        ? {
            median_s: c.median_s,
            cpu_median_s: c.cpu_median_s,
            samples_s: c.samples_s,
            nsPerPmd: cNs,
            cpuNsPerPmd: cCpuNs,
          }
        : null,
      benchOnly: {
        plainWithCount: {
          median_ms: plain.ms,
          cpu_median_ms: plain.cpuMs,
          nsPerPmd: (plain.ms * 1e6) / n,
          overC: cNs ? (plain.ms * 1e6) / n / cNs : null,
        },
        plainWordPopcount: {
          median_ms: words.ms,
          cpu_median_ms: words.cpuMs,
          nsPerPmd: (words.ms * 1e6) / n,
          overC: cNs ? (words.ms * 1e6) / n / cNs : null,
        },
      },
      jsOverC: ratio,
      jsOverCCpu: c && cCpuNs ? jsCpuNs / cCpuNs : null,
      targetMet: ratio === null ? null : ratio <= TARGET_RATIO,
    };
  });

  const table = new Table({
    head: [
      'forward walk, orders 2..9',
      'attempts/PMD',
      'JS (median)',
      'C -O2 (median)',
      'JS / C',
      'target',
    ],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', 'right', 'right', 'right', 'left'],
  });
  for (const f of figures) {
    table.push([
      `max_ptes_none ${f.maxPtesNone}, ${int(n)} PMDs`,
      fmt(f.attemptsPerPmd, 1),
      `${fmt(f.js.nsPerPmd, 0)} ns/PMD (CPU ${fmt(f.js.cpuNsPerPmd, 0)})`,
      f.c ? `${fmt(f.c.nsPerPmd!, 0)} ns/PMD (CPU ${fmt(f.c.cpuNsPerPmd!, 0)})` : '-',
      f.jsOverC === null ? '-' : `${fmt(f.jsOverC, 1)}x`,
      f.jsOverC === null ? '' : `<= ${TARGET_RATIO}x: ${f.targetMet ? 'met' : 'MISSED'}`,
    ]);
    for (const [label, v] of [
      ['  bench-only: plain loop + PteBitmap.count', f.benchOnly.plainWithCount],
      ['  bench-only: plain loop, word popcount', f.benchOnly.plainWordPopcount],
    ] as const)
      table.push([
        label,
        '',
        `${fmt(v.nsPerPmd, 0)} ns/PMD`,
        '',
        v.overC === null ? '-' : `${fmt(v.overC, 1)}x`,
        '',
      ]);
  }
  console.log(table.toString());
  console.log(
    `bitmaps: ${int(n)} x ${NR} bits, seed ${o.seed}, mean density ${fmt(density * 100, 1)} %` +
      (o.c ? '; C and JS attempt sequences identical' : ''),
  );

  const result = {
    bench: 'thpsim-mthp-walk',
    date: new Date().toISOString(),
    custom: o.custom,
    bitmaps: n,
    seed: o.seed,
    reps: o.reps,
    warmup: WARMUP,
    enabledOrders: ENABLED,
    meanDensity: density,
    bitmapHash: bmHash,
    machine,
    cBuild: cCommand || null,
    targetRatio: TARGET_RATIO,
    rows: figures,
    totalSeconds: (performance.now() - t00) / 1000,
  };
  const kind = o.custom ? 'custom' : 'full';
  const latest = writeResults(
    'mthp-walk',
    kind,
    kind === 'full' ? 'mthp-walk-latest.json' : `mthp-walk-latest-${kind}.json`,
    result.date,
    result,
  );
  console.log(`results in ${latest} (total ${fmt(result.totalSeconds, 1)} s)`);
  console.log(JSON.stringify(result));
}

main();
