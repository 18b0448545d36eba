// What the live kernel under `thpsim oracle` can do, read from /sys and /proc: its version,
// whether THP is there at all, which per-size knobs and stats it has (the collapse_* stats exist
// only in kernels with the mTHP collapse series), whether swap is configured, and whether we may
// read /proc/kpageflags and write the THP knobs (root). The parsing is pure so tests can feed it
// a fake tree.

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

export const THP_ROOT = '/sys/kernel/mm/transparent_hugepage';

/** One hugepages-<size>kB directory. */
export interface SizeDir {
  kb: number;
  /** The anonymous `enabled` knob exists (anon mTHP orders). */
  enabled: boolean;
  shmemEnabled: boolean;
  stats: string[];
}

export interface Capabilities {
  uid: number;
  root: boolean;
  /** uname -r, and its major.minor. */
  release: string;
  version: { major: number; minor: number } | null;
  /** /sys/kernel/mm/transparent_hugepage/enabled exists. */
  thp: boolean;
  pmdSize: number | null;
  sizes: SizeDir[];
  /** Any size has stats/collapse_* (the mTHP collapse series). */
  mthpCollapseStats: boolean;
  khugepagedKnobs: string[];
  /** Active swap areas (from /proc/swaps). */
  swapAreas: number;
  pagemap: boolean;
  kpageflags: boolean;
  /** `cc --version`'s first line, or null when there is no C compiler. */
  cc: string | null;
}

export interface CapabilityPaths {
  thpRoot?: string;
  proc?: string;
  /** Override the uid (tests). */
  uid?: number;
  release?: string;
  /** Skip probing the C compiler (tests). */
  cc?: string | null;
}

/** "6.18.44-fc-v509" -> { major: 6, minor: 18 }. */
export function parseRelease(r: string): { major: number; minor: number } | null {
  const m = /^(\d+)\.(\d+)/.exec(r.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

/** The number of active swap areas in the text of /proc/swaps (a header line, then one each). */
export function parseSwaps(text: string): number {
  return text
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '').length;
}

/** "hugepages-2048kB" -> 2048. */
export function sizeDirKb(name: string): number | null {
  const m = /^hugepages-(\d+)kB$/.exec(name);
  return m ? Number(m[1]) : null;
}

function readable(path: string, bytes: number): boolean {
  try {
    const fd = openSync(path, 'r');
    try {
      return readSync(fd, Buffer.alloc(bytes), 0, bytes, 0) === bytes;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function probeCc(): string | null {
  const r = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0 || typeof r.stdout !== 'string') return null;
  return r.stdout.split('\n')[0].trim() || 'cc';
}

export function detectCapabilities(p: CapabilityPaths = {}): Capabilities {
  const thpRoot = p.thpRoot ?? THP_ROOT;
  const proc = p.proc ?? '/proc';
  const uid = p.uid ?? process.getuid?.() ?? -1;
  const rel = p.release ?? release();
  const thp = existsSync(join(thpRoot, 'enabled'));
  let pmdSize: number | null;
  try {
    pmdSize = Number(readFileSync(join(thpRoot, 'hpage_pmd_size'), 'utf8').trim()) || null;
  } catch {
    pmdSize = null;
  }
  const sizes: SizeDir[] = [];
  for (const name of list(thpRoot)) {
    const kb = sizeDirKb(name);
    if (kb === null) continue;
    const dir = join(thpRoot, name);
    sizes.push({
      kb,
      enabled: existsSync(join(dir, 'enabled')),
      shmemEnabled: existsSync(join(dir, 'shmem_enabled')),
      stats: list(join(dir, 'stats')),
    });
  }
  sizes.sort((a, b) => a.kb - b.kb);
  let swapAreas: number;
  try {
    swapAreas = parseSwaps(readFileSync(join(proc, 'swaps'), 'utf8'));
  } catch {
    swapAreas = 0;
  }
  return {
    uid,
    root: uid === 0,
    release: rel,
    version: parseRelease(rel),
    thp,
    pmdSize,
    sizes,
    mthpCollapseStats: sizes.some((s) => s.stats.some((n) => n.startsWith('collapse_'))),
    khugepagedKnobs: list(join(thpRoot, 'khugepaged')),
    swapAreas,
    pagemap: readable(join(proc, 'self', 'pagemap'), 8),
    kpageflags: readable(join(proc, 'kpageflags'), 8),
    cc: p.cc !== undefined ? p.cc : probeCc(),
  };
}

/** Why the oracle cannot run at all here, or undefined when it can. */
export function unavailableReason(c: Capabilities): string | undefined {
  if (!c.root)
    return `not running as root (uid ${c.uid}): writing the THP knobs and reading /proc/kpageflags need root`;
  if (!c.thp) return `this kernel (${c.release}) has no transparent huge pages (${THP_ROOT})`;
  if (c.pmdSize === null) return `cannot read ${THP_ROOT}/hpage_pmd_size`;
  if (!c.pagemap) return 'cannot read /proc/self/pagemap';
  if (!c.kpageflags) return 'cannot read /proc/kpageflags';
  if (c.khugepagedKnobs.length === 0) return `no ${THP_ROOT}/khugepaged directory`;
  if (c.cc === null)
    return 'no C compiler: `cc --version` failed (the helper is built at run time)';
  return undefined;
}

/** One line for the header of a report. */
export function describeCapabilities(c: Capabilities): string {
  const anon = c.sizes.filter((s) => s.enabled).map((s) => `${s.kb}K`);
  return [
    `Linux ${c.release}`,
    c.thp ? `THP (PMD ${c.pmdSize !== null ? c.pmdSize / 1024 : '?'}K)` : 'no THP',
    `anon sizes ${anon.join(' ') || 'none'}`,
    c.mthpCollapseStats ? 'mTHP collapse stats' : 'no mTHP collapse stats',
    c.swapAreas > 0 ? `${c.swapAreas} swap area(s)` : 'no swap',
    c.root ? 'root' : `uid ${c.uid}`,
  ].join(', ');
}
