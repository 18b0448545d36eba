// Helpers shared by the benchmark scripts (bench/run.ts, bench/khugepaged.ts): the machine
// description, medians, a full GC between kernels, the C reference build and the result files.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

export const GiB = 1024 ** 3;

export const benchDir = path.dirname(fileURLToPath(import.meta.url));

/** A full GC, so one Kernel's gigabyte of typed arrays is gone before the next is built. */
export function makeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  return typeof gc === 'function' ? gc : () => {};
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')[0]
      .trim();
  } catch {
    return 'unavailable';
  }
}

export interface MachineInfo {
  node: string;
  v8: string;
  cc: string;
  cpu: string;
  cpus: number;
  memTotalGiB: number;
  kernel: string;
}

export function machineInfo(): MachineInfo {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    node: process.version,
    v8: process.versions.v8,
    cc: firstLine('cc', ['--version']),
    cpu,
    cpus: os.cpus().length,
    memTotalGiB: Number((os.totalmem() / GiB).toFixed(1)),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

/**
 * Compile bench/c/ref.c with the machine's `cc -O2` into a fresh temporary directory, hand the
 * binary to `use`, and remove the directory afterwards (no binaries are kept).
 */
export function withCReference<T>(use: (bin: string, command: string) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thpsim-bench-'));
  try {
    const bin = path.join(dir, 'ref');
    const args = ['-O2', '-o', bin, path.join(benchDir, 'c', 'ref.c')];
    execFileSync('cc', args, { stdio: ['ignore', 'inherit', 'inherit'] });
    return use(bin, 'cc -O2 -o $TMPDIR/ref bench/c/ref.c');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Run the C reference with these arguments and parse the JSON object it prints. */
export function runCJson<T>(bin: string, args: Array<string | number>): T {
  const out = execFileSync(bin, args.map(String), { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as T;
}

/**
 * Write `result` to bench/out/<prefix>-<kind>-<stamp>.json and to the kind's latest file
 * (`latestName`), returning the path of the latter relative to the repository.
 */
export function writeResults(
  prefix: string,
  kind: string,
  latestName: string,
  date: string,
  result: unknown,
): string {
  const outDir = path.join(benchDir, 'out');
  fs.mkdirSync(outDir, { recursive: true });
  const json = JSON.stringify(result, null, 2) + '\n';
  const stamp = date.replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(outDir, `${prefix}-${kind}-${stamp}.json`), json);
  fs.writeFileSync(path.join(outDir, latestName), json);
  return `bench/out/${latestName}`;
}

export const fmt = (x: number, digits = 2): string =>
  x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const int = (x: number): string => Math.round(x).toLocaleString('en-US');

/** Wall and process CPU time of fn, in seconds. */
export function timed<T>(fn: () => T): { value: T; seconds: number; cpuSeconds: number } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { value, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}
