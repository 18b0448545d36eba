// /sys/kernel/mm/transparent_hugepage as the kernel exposes it: one descriptor per file, each with
// a show function and (for 0644 files) a store function that validates like the kernel's own.
//
// sysfsWrite models the store call made for one write(2) of `value`. Two VFS details that the
// store functions never see are modelled at this boundary: the buffer is a C string (parsing stops
// at the first NUL), and a file without a store function refuses the write (EACCES, as kernfs does
// for a 0444 file opened for writing, even by root). The kernel skips the store call entirely for a
// zero-byte write(2); here an empty value reaches the parser and is rejected like "\n".

import { type Geometry, orderSizeKb, ordersDescending } from './geometry.ts';
import type { Kernel } from './kernel.ts';
import {
  DEFRAG,
  GLOBAL_ENABLED,
  ORDER_ENABLED,
  SHMEM_ENABLED,
  SHMEM_ORDER_ENABLED,
  maxPagecacheOrder,
  orderMode,
  setOrderMode,
  setShmemOrderMode,
  shmemOrderMode,
  type ThpSettings,
} from './settings.ts';
import { MTHP_SERIES_STATS, MTHP_STAT_NAMES } from './stats.ts';

export const SYSFS_THP_ROOT = '/sys/kernel/mm/transparent_hugepage';

export type SysfsErrno = 'EINVAL' | 'ERANGE' | 'ENOENT' | 'EACCES' | 'EISDIR';

const STRERROR: Record<SysfsErrno, string> = {
  EINVAL: 'Invalid argument',
  ERANGE: 'Numerical result out of range',
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EISDIR: 'Is a directory',
};

export class SysfsError extends Error {
  constructor(
    readonly errno: SysfsErrno,
    /** Absolute path of the file. */
    readonly path: string,
    detail: string,
  ) {
    super(`${path}: ${errno} (${STRERROR[errno]}): ${detail}`);
    this.name = 'SysfsError';
  }
}

/** A store function's verdict: null on success (state already updated), else why it refused. */
type StoreResult = null | { errno: 'EINVAL' | 'ERANGE'; expected: string };

interface SysfsFile {
  show(k: Kernel): string;
  /** Absent for read-only (0444) files. Must not touch any state when it refuses. */
  store?(k: Kernel, buf: string): StoreResult;
}

// ---- the kernel's string parsers ------------------------------------------------------------

const UINT_MAX = (1n << 32n) - 1n;
const ULONG_MAX = (1n << 64n) - 1n; // unsigned long on the 64-bit architectures modelled

/** kstrtoull(s, 10): optional '+', decimal digits, one optional trailing newline. */
function kstrtoull(s: string): bigint | 'EINVAL' | 'ERANGE' {
  const start = s.startsWith('+') ? 1 : 0;
  let end = start;
  while (end < s.length && s.charCodeAt(end) >= 48 && s.charCodeAt(end) <= 57) end++;
  if (end === start) return 'EINVAL';
  const v = BigInt(s.slice(start, end));
  if (v > ULONG_MAX) return 'ERANGE'; // overflow is reported before trailing garbage
  const rest = s.slice(end);
  if (rest !== '' && rest !== '\n') return 'EINVAL';
  return v;
}

/** kstrtoul / kstrtouint: kstrtoull narrowed to the destination type. */
function kstrtou(s: string, max: bigint): bigint | 'EINVAL' | 'ERANGE' {
  const v = kstrtoull(s);
  return typeof v === 'bigint' && v > max ? 'ERANGE' : v;
}

/** kstrtobool: decided by the first character (or the first two, for on/off). */
function kstrtobool(s: string): boolean | 'EINVAL' {
  if (/^([eEyYtT1]|[oO][nN])/.test(s)) return true;
  if (/^([dDnNfF0]|[oO][fF])/.test(s)) return false;
  return 'EINVAL';
}

/** sysfs_streq: equal, allowing one trailing newline on the written side. */
function sysfsStreq(buf: string, word: string): boolean {
  return buf === word || buf === `${word}\n`;
}

// ---- descriptor builders ------------------------------------------------------------------

/** Counters and sizes print as plain decimals (%u / %lu). */
function dec(n: number): string {
  return `${Number.isSafeInteger(n) ? String(n) : BigInt(Math.trunc(n)).toString()}\n`;
}

function readOnly(show: (k: Kernel) => number): SysfsFile {
  return { show: (k) => dec(show(k)) };
}

/** A choice file: every word listed, the active one in brackets (enabled_show()/defrag_show()). */
function modeFile<W extends string>(
  words: readonly W[],
  get: (s: ThpSettings) => W,
  set: (s: ThpSettings, w: W) => void,
): SysfsFile {
  const expected = `one of ${words.join(', ')}`;
  return {
    show: (k) => {
      const cur = get(k.settings);
      return `${words.map((w) => (w === cur ? `[${w}]` : w)).join(' ')}\n`;
    },
    store: (k, buf) => {
      const w = words.find((w) => sysfsStreq(buf, w));
      if (w === undefined) return { errno: 'EINVAL', expected };
      set(k.settings, w);
      return null;
    },
  };
}

/** single_hugepage_flag_store(): kstrtoul, then anything above 1 is EINVAL. */
function flag01File(
  get: (s: ThpSettings) => boolean,
  set: (s: ThpSettings, v: boolean) => void,
): SysfsFile {
  const expected = '0 or 1';
  return {
    show: (k) => (get(k.settings) ? '1\n' : '0\n'),
    store: (k, buf) => {
      const v = kstrtou(buf, ULONG_MAX);
      if (typeof v !== 'bigint') return { errno: v, expected };
      if (v > 1n) return { errno: 'EINVAL', expected };
      set(k.settings, v === 1n);
      return null;
    },
  };
}

/** A kstrtobool flag (split_underused_thp_store()). */
function boolFile(
  get: (s: ThpSettings) => boolean,
  set: (s: ThpSettings, v: boolean) => void,
): SysfsFile {
  const expected = 'a boolean (1, y, t, e, on / 0, n, f, d, off)';
  return {
    show: (k) => (get(k.settings) ? '1\n' : '0\n'),
    store: (k, buf) => {
      const v = kstrtobool(buf);
      if (v === 'EINVAL') return { errno: 'EINVAL', expected };
      set(k.settings, v);
      return null;
    },
  };
}

/** A khugepaged tunable: every parse failure and every out-of-range value is EINVAL. */
function numberFile(
  width: bigint,
  min: (k: Kernel) => number,
  max: (k: Kernel) => number,
  get: (s: ThpSettings['khugepaged']) => number,
  set: (s: ThpSettings['khugepaged'], v: number) => void,
): SysfsFile {
  return {
    show: (k) => dec(get(k.settings.khugepaged)),
    store: (k, buf) => {
      const lo = min(k);
      const hi = max(k);
      const v = kstrtou(buf, width);
      if (typeof v !== 'bigint' || v < BigInt(lo) || v > BigInt(hi))
        return { errno: 'EINVAL', expected: `a decimal integer in [${lo}, ${hi}]` };
      set(k.settings.khugepaged, Number(v));
      return null;
    },
  };
}

/**
 * shmem_enabled_store(): at most 15 characters, one trailing newline dropped, then an exact word;
 * "force" only while no size but the PMD size inherits. deny and force leave the internal
 * mount's huge= option alone.
 */
function shmemEnabledFile(geo: Geometry): SysfsFile {
  const expected = `one of ${SHMEM_ENABLED.join(', ')}`;
  return {
    show: (k) => {
      const cur = k.settings.shmemEnabled;
      return `${SHMEM_ENABLED.map((w) => (w === cur ? `[${w}]` : w)).join(' ')}\n`;
    },
    store: (k, buf) => {
      if (buf.length + 1 > 16) return { errno: 'EINVAL', expected };
      const word = buf.endsWith('\n') ? buf.slice(0, -1) : buf;
      const w = SHMEM_ENABLED.find((x) => x === word);
      if (w === undefined) return { errno: 'EINVAL', expected };
      const s = k.settings;
      if (w === 'force' && s.shmemOrdersInherit !== 1 << geo.pmdOrder)
        return {
          errno: 'EINVAL',
          expected: `${expected} (force only while only the PMD size inherits)`,
        };
      s.shmemEnabled = w;
      if (w !== 'deny' && w !== 'force') s.shmemMntHuge = w;
      return null;
    },
  };
}

/** thpsize_shmem_enabled_store(): inherit is refused for non-PMD sizes while shmem_enabled=force. */
function shmemOrderFile(geo: Geometry, order: number): SysfsFile {
  const expected = `one of ${SHMEM_ORDER_ENABLED.join(', ')}`;
  return {
    show: (k) => {
      const cur = shmemOrderMode(k.settings, order);
      return `${SHMEM_ORDER_ENABLED.map((w) => (w === cur ? `[${w}]` : w)).join(' ')}\n`;
    },
    store: (k, buf) => {
      const w = SHMEM_ORDER_ENABLED.find((x) => sysfsStreq(buf, x));
      if (w === undefined) return { errno: 'EINVAL', expected };
      if (w === 'inherit' && k.settings.shmemEnabled === 'force' && order !== geo.pmdOrder)
        return { errno: 'EINVAL', expected: `${expected} (not inherit while shmem_enabled=force)` };
      setShmemOrderMode(k.settings, order, w);
      return null;
    },
  };
}

const zero = (): number => 0;
const uintMax = (): number => Number(UINT_MAX);
const hpagePmdNrMinus1 = (k: Kernel): number => k.geo.ptrsPerPte - 1;

// ---- the tree -----------------------------------------------------------------------------

function buildTree(geo: Geometry, mthpCollapseStats: boolean): Map<string, SysfsFile> {
  const files: [string, SysfsFile][] = [
    // enabled_store()
    [
      'enabled',
      modeFile(
        GLOBAL_ENABLED,
        (s) => s.enabled,
        (s, w) => (s.enabled = w),
      ),
    ],
    // defrag_store()
    [
      'defrag',
      modeFile(
        DEFRAG,
        (s) => s.defrag,
        (s, w) => (s.defrag = w),
      ),
    ],
    // use_zero_page_store()
    [
      'use_zero_page',
      flag01File(
        (s) => s.useZeroPage,
        (s, v) => (s.useZeroPage = v),
      ),
    ],
    // hpage_pmd_size_show()
    ['hpage_pmd_size', readOnly((k) => k.geo.pmdSize)],
    // split_underused_thp_store()
    [
      'shrink_underused',
      boolFile(
        (s) => s.shrinkUnderused,
        (s, v) => (s.shrinkUnderused = v),
      ),
    ],
    // khugepaged defrag_store()
    [
      'khugepaged/defrag',
      flag01File(
        (s) => s.khugepaged.defrag,
        (s, v) => (s.khugepaged.defrag = v),
      ),
    ],
    // pages_to_scan_store()
    [
      'khugepaged/pages_to_scan',
      numberFile(
        UINT_MAX,
        () => 1,
        uintMax,
        (s) => s.pagesToScan,
        (s, v) => (s.pagesToScan = v),
      ),
    ],
    // scan_sleep_millisecs_store()
    [
      'khugepaged/scan_sleep_millisecs',
      numberFile(
        UINT_MAX,
        zero,
        uintMax,
        (s) => s.scanSleepMillisecs,
        (s, v) => (s.scanSleepMillisecs = v),
      ),
    ],
    // alloc_sleep_millisecs_store()
    [
      'khugepaged/alloc_sleep_millisecs',
      numberFile(
        UINT_MAX,
        zero,
        uintMax,
        (s) => s.allocSleepMillisecs,
        (s, v) => (s.allocSleepMillisecs = v),
      ),
    ],
    // max_ptes_none_store() / max_ptes_swap_store() / max_ptes_shared_store()
    [
      'khugepaged/max_ptes_none',
      numberFile(
        ULONG_MAX,
        zero,
        hpagePmdNrMinus1,
        (s) => s.maxPtesNone,
        (s, v) => (s.maxPtesNone = v),
      ),
    ],
    [
      'khugepaged/max_ptes_swap',
      numberFile(
        ULONG_MAX,
        zero,
        hpagePmdNrMinus1,
        (s) => s.maxPtesSwap,
        (s, v) => (s.maxPtesSwap = v),
      ),
    ],
    [
      'khugepaged/max_ptes_shared',
      numberFile(
        ULONG_MAX,
        zero,
        hpagePmdNrMinus1,
        (s) => s.maxPtesShared,
        (s, v) => (s.maxPtesShared = v),
      ),
    ],
    // shmem_enabled_store()
    ['shmem_enabled', shmemEnabledFile(geo)],
    ['khugepaged/pages_collapsed', readOnly((k) => k.khugepaged.pagesCollapsed)],
    ['khugepaged/full_scans', readOnly((k) => k.khugepaged.fullScans)],
  ];

  for (const order of ordersDescending(geo.anonOrders)) {
    const dir = `hugepages-${orderSizeKb(geo, order)}kB`;
    // anon_enabled_store()
    files.push([
      `${dir}/enabled`,
      modeFile(
        ORDER_ENABLED,
        (s) => orderMode(s, order),
        (s, w) => setOrderMode(s, order, w),
      ),
    ]);
    // thpsize_shmem_enabled_store(), for the sizes the page cache supports (order-1 directories,
    // which would hold only shmem files, are not modelled).
    if (order <= maxPagecacheOrder(geo))
      files.push([`${dir}/shmem_enabled`, shmemOrderFile(geo, order)]);
    for (const name of MTHP_STAT_NAMES) {
      if (MTHP_SERIES_STATS.has(name) && !mthpCollapseStats) continue;
      files.push([`${dir}/stats/${name}`, readOnly((k) => k.stats.mthpValue(order, name))]);
    }
  }
  return new Map(files);
}

interface Tree {
  files: Map<string, SysfsFile>;
  dirs: Set<string>;
  list: string[];
}

// The tree depends only on geometry and profile; descriptors take the kernel as an argument.
const TREES = new Map<string, Tree>();

function tree(k: Kernel): Tree {
  const key = `${k.geo.name}|${k.profile.name}`;
  let t = TREES.get(key);
  if (!t) {
    const files = buildTree(k.geo, k.profile.mthpCollapseStats);
    const dirs = new Set<string>(['']);
    for (const p of files.keys())
      for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) dirs.add(p.slice(0, i));
    t = { files, dirs, list: [...files.keys()].sort() };
    TREES.set(key, t);
  }
  return t;
}

/** Path relative to the transparent_hugepage directory ('' for the directory itself). */
function relative(path: string): string {
  const p =
    path === SYSFS_THP_ROOT || path.startsWith(`${SYSFS_THP_ROOT}/`)
      ? path.slice(SYSFS_THP_ROOT.length)
      : path;
  return p
    .split('/')
    .filter((seg) => seg !== '' && seg !== '.')
    .join('/');
}

function lookup(k: Kernel, path: string): [SysfsFile, string] {
  const rel = relative(path);
  const abs = rel === '' ? SYSFS_THP_ROOT : `${SYSFS_THP_ROOT}/${rel}`;
  const t = tree(k);
  const f = t.files.get(rel);
  if (f) return [f, abs];
  if (t.dirs.has(rel)) throw new SysfsError('EISDIR', abs, 'is a directory, not a file');
  throw new SysfsError('ENOENT', abs, 'no such file under the transparent_hugepage directory');
}

// ---- API ----------------------------------------------------------------------------------

/** Every file path (relative to the transparent_hugepage directory), sorted. */
export function sysfsList(k: Kernel): string[] {
  return [...tree(k).list];
}

/** The content of a file, ending in "\n" as the kernel prints it. */
export function sysfsRead(k: Kernel, path: string): string {
  const [f] = lookup(k, path);
  return f.show(k);
}

/** One write of `value`; throws SysfsError and changes nothing when the kernel would refuse it. */
export function sysfsWrite(k: Kernel, path: string, value: string): void {
  const [f, abs] = lookup(k, path);
  if (!f.store) throw new SysfsError('EACCES', abs, 'read-only file (mode 0444)');
  const nul = value.indexOf('\0');
  const buf = nul >= 0 ? value.slice(0, nul) : value;
  const r = f.store(k, buf);
  if (r) {
    const what = r.errno === 'ERANGE' ? 'out of range' : 'invalid value';
    throw new SysfsError(r.errno, abs, `${what} ${JSON.stringify(value)}; expected ${r.expected}`);
  }
}
