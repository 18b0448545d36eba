import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Kernel } from '../src/mm/kernel.ts';
import { DEFRAG, GLOBAL_ENABLED, ORDER_ENABLED } from '../src/mm/settings.ts';
import { MTHP_SERIES_STATS, MTHP_STAT_NAMES } from '../src/mm/stats.ts';
import {
  SYSFS_THP_ROOT,
  SysfsError,
  type SysfsErrno,
  sysfsList,
  sysfsRead,
  sysfsWrite,
} from '../src/mm/sysfs.ts';

const MiB = 1024 * 1024;
const x86 = (profile: 'linux-6.18' | 'linux-7.2' = 'linux-7.2'): Kernel =>
  new Kernel({ geometry: 'x86-64-4k', profile, ramBytes: 64 * MiB });
const arm64k = (): Kernel => new Kernel({ geometry: 'arm64-64k', ramBytes: 256 * MiB });

function snapshot(k: Kernel): Map<string, string> {
  return new Map(sysfsList(k).map((p) => [p, sysfsRead(k, p)]));
}

function errnoOf(f: () => unknown): SysfsErrno | 'none' {
  try {
    f();
  } catch (e) {
    if (e instanceof SysfsError) return e.errno;
    throw e;
  }
  return 'none';
}

/** A write that must be refused with `errno` and leave every file as it was. */
function expectRejected(k: Kernel, path: string, value: string, errno: SysfsErrno): void {
  const before = snapshot(k);
  expect(
    errnoOf(() => sysfsWrite(k, path, value)),
    `${path} <- ${JSON.stringify(value)}`,
  ).toBe(errno);
  expect(snapshot(k)).toEqual(before);
}

function bracketed(words: readonly string[], active: string): string {
  return `${words.map((w) => (w === active ? `[${w}]` : w)).join(' ')}\n`;
}

describe('defaults', () => {
  it('x86-64-4k', () => {
    const k = x86();
    expect(sysfsRead(k, 'enabled')).toBe('[always] madvise never\n');
    expect(sysfsRead(k, 'defrag')).toBe('always defer defer+madvise [madvise] never\n');
    expect(sysfsRead(k, 'use_zero_page')).toBe('1\n');
    expect(sysfsRead(k, 'shrink_underused')).toBe('1\n');
    expect(sysfsRead(k, 'hpage_pmd_size')).toBe('2097152\n');
    expect(sysfsRead(k, 'khugepaged/max_ptes_none')).toBe('511\n');
    expect(sysfsRead(k, 'khugepaged/max_ptes_swap')).toBe('64\n');
    expect(sysfsRead(k, 'khugepaged/max_ptes_shared')).toBe('256\n');
    expect(sysfsRead(k, 'khugepaged/pages_to_scan')).toBe('4096\n');
    expect(sysfsRead(k, 'khugepaged/scan_sleep_millisecs')).toBe('10000\n');
    expect(sysfsRead(k, 'khugepaged/alloc_sleep_millisecs')).toBe('60000\n');
    expect(sysfsRead(k, 'khugepaged/defrag')).toBe('1\n');
    expect(sysfsRead(k, 'khugepaged/pages_collapsed')).toBe('0\n');
    expect(sysfsRead(k, 'khugepaged/full_scans')).toBe('0\n');
    expect(sysfsRead(k, 'hugepages-2048kB/enabled')).toBe('always [inherit] madvise never\n');
    expect(sysfsRead(k, 'hugepages-64kB/enabled')).toBe('always inherit madvise [never]\n');
    const dirs = new Set(
      sysfsList(k)
        .map((p) => p.split('/')[0])
        .filter((d) => d.startsWith('hugepages-')),
    );
    expect([...dirs].sort()).toEqual(
      [16, 32, 64, 128, 256, 512, 1024, 2048].map((kb) => `hugepages-${kb}kB`).sort(),
    );
  });

  it('arm64-64k', () => {
    const k = arm64k();
    expect(sysfsRead(k, 'khugepaged/max_ptes_none')).toBe('8191\n');
    expect(sysfsRead(k, 'khugepaged/max_ptes_swap')).toBe('1024\n');
    expect(sysfsRead(k, 'khugepaged/max_ptes_shared')).toBe('4096\n');
    expect(sysfsRead(k, 'khugepaged/pages_to_scan')).toBe('65536\n');
    expect(sysfsRead(k, 'hpage_pmd_size')).toBe(`${512 * MiB}\n`);
    expect(sysfsRead(k, 'hugepages-524288kB/enabled')).toBe('always [inherit] madvise never\n');
    expect(sysfsRead(k, 'hugepages-256kB/enabled')).toBe('always inherit madvise [never]\n');
    expect(errnoOf(() => sysfsRead(k, 'hugepages-16kB/enabled'))).toBe('ENOENT');
    expect(errnoOf(() => sysfsRead(k, 'hugepages-128kB/enabled'))).toBe('ENOENT');
    expect(errnoOf(() => sysfsRead(k, 'hugepages-1048576kB/enabled'))).toBe('ENOENT');
  });
});

describe('paths', () => {
  it('lists every readable file, sorted and relative', () => {
    const k = x86();
    const list = sysfsList(k);
    expect(list).toEqual([...list].sort());
    expect(new Set(list).size).toBe(list.length);
    for (const p of list) {
      expect(p.startsWith('/')).toBe(false);
      expect(sysfsRead(k, p).endsWith('\n')).toBe(true);
    }
    // 6 top-level files, 9 khugepaged files, 8 sizes x (enabled + shmem_enabled + every stat).
    expect(list.length).toBe(6 + 9 + 8 * (2 + MTHP_STAT_NAMES.length));
  });

  it('accepts absolute paths and redundant slashes', () => {
    const k = x86();
    expect(sysfsRead(k, `${SYSFS_THP_ROOT}/khugepaged/max_ptes_none`)).toBe('511\n');
    expect(sysfsRead(k, `${SYSFS_THP_ROOT}//khugepaged/./max_ptes_none`)).toBe('511\n');
    sysfsWrite(k, `${SYSFS_THP_ROOT}/enabled`, 'never');
    expect(sysfsRead(k, 'enabled')).toBe('always madvise [never]\n');
  });

  it('unknown paths are ENOENT, directories EISDIR', () => {
    const k = x86();
    for (const p of [
      'nope',
      'khugepaged/nope',
      'shmem_enable',
      '/sys/kernel/mm/ksm/run',
      'enabled/x',
    ]) {
      expect(errnoOf(() => sysfsRead(k, p))).toBe('ENOENT');
      expectRejected(k, p, '1', 'ENOENT');
    }
    for (const p of [
      '',
      SYSFS_THP_ROOT,
      'khugepaged',
      'hugepages-2048kB',
      'hugepages-2048kB/stats/',
    ]) {
      expect(errnoOf(() => sysfsRead(k, p))).toBe('EISDIR');
      expectRejected(k, p, '1', 'EISDIR');
    }
  });

  it('error messages name the path and the expected values', () => {
    const k = x86();
    try {
      sysfsWrite(k, 'enabled', 'sometimes');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SysfsError);
      const err = e as SysfsError;
      expect(err.path).toBe(`${SYSFS_THP_ROOT}/enabled`);
      expect(err.message).toContain(`${SYSFS_THP_ROOT}/enabled`);
      expect(err.message).toContain('always, madvise, never');
      expect(err.message).toContain('sometimes');
    }
  });
});

describe('round trips', () => {
  it('mode files', () => {
    const k = x86();
    for (const w of GLOBAL_ENABLED) {
      sysfsWrite(k, 'enabled', `${w}\n`);
      expect(sysfsRead(k, 'enabled')).toBe(bracketed(GLOBAL_ENABLED, w));
      expect(k.settings.enabled).toBe(w);
    }
    for (const w of DEFRAG) {
      sysfsWrite(k, 'defrag', w);
      expect(sysfsRead(k, 'defrag')).toBe(bracketed(DEFRAG, w));
      expect(k.settings.defrag).toBe(w);
    }
    for (const w of ORDER_ENABLED) {
      sysfsWrite(k, 'hugepages-64kB/enabled', w);
      expect(sysfsRead(k, 'hugepages-64kB/enabled')).toBe(bracketed(ORDER_ENABLED, w));
      // Other sizes are untouched.
      expect(sysfsRead(k, 'hugepages-2048kB/enabled')).toBe('always [inherit] madvise never\n');
      expect(sysfsRead(k, 'hugepages-32kB/enabled')).toBe('always inherit madvise [never]\n');
    }
    sysfsWrite(k, 'hugepages-64kB/enabled', 'always');
    expect(k.settings.ordersAlways).toBe(1 << 4);
  });

  it('numeric files', () => {
    const k = x86();
    const cases: [string, string, string][] = [
      ['khugepaged/max_ptes_none', '0', '0\n'],
      ['khugepaged/max_ptes_none', '511\n', '511\n'],
      ['khugepaged/max_ptes_swap', '+007', '7\n'],
      ['khugepaged/max_ptes_shared', '511', '511\n'],
      ['khugepaged/pages_to_scan', '1', '1\n'],
      ['khugepaged/pages_to_scan', '4294967295', '4294967295\n'],
      ['khugepaged/scan_sleep_millisecs', '0', '0\n'],
      ['khugepaged/alloc_sleep_millisecs', '4294967295\n', '4294967295\n'],
    ];
    for (const [path, value, readBack] of cases) {
      sysfsWrite(k, path, value);
      expect(sysfsRead(k, path)).toBe(readBack);
    }
    expect(k.settings.khugepaged.maxPtesSwap).toBe(7);
    expect(k.settings.khugepaged.allocSleepMillisecs).toBe(4294967295);
  });

  it('flag files', () => {
    const k = x86();
    for (const path of ['use_zero_page', 'khugepaged/defrag', 'shrink_underused']) {
      sysfsWrite(k, path, '0');
      expect(sysfsRead(k, path)).toBe('0\n');
      sysfsWrite(k, path, '1\n');
      expect(sysfsRead(k, path)).toBe('1\n');
    }
    sysfsWrite(k, 'use_zero_page', '+0\n');
    expect(k.settings.useZeroPage).toBe(false);
    sysfsWrite(k, 'khugepaged/defrag', '00');
    expect(k.settings.khugepaged.defrag).toBe(false);
    // shrink_underused is parsed by kstrtobool.
    for (const [v, b] of [
      ['n', false],
      ['Yes', true],
      ['off', false],
      ['ON\n', true],
      ['false', false],
      ['t', true],
      ['disabled', false],
      ['e', true],
    ] as const) {
      sysfsWrite(k, 'shrink_underused', v);
      expect(k.settings.shrinkUnderused).toBe(b);
    }
  });

  it('stats and khugepaged counters read the live values', () => {
    const k = x86();
    k.stats.mthpStat(4, 'anon_fault_alloc', 3);
    k.stats.mthpStat(9, 'split');
    k.khugepaged.pagesCollapsed = 1536;
    k.khugepaged.fullScans = 2;
    expect(sysfsRead(k, 'hugepages-64kB/stats/anon_fault_alloc')).toBe('3\n');
    expect(sysfsRead(k, 'hugepages-2048kB/stats/split')).toBe('1\n');
    expect(sysfsRead(k, 'hugepages-2048kB/stats/anon_fault_alloc')).toBe('0\n');
    expect(sysfsRead(k, 'khugepaged/pages_collapsed')).toBe('1536\n');
    expect(sysfsRead(k, 'khugepaged/full_scans')).toBe('2\n');
  });
});

describe('invalid writes', () => {
  it('mode files take exactly the listed words (sysfs_streq)', () => {
    const k = x86();
    for (const path of ['enabled', 'defrag', 'hugepages-2048kB/enabled']) {
      for (const v of [
        '',
        '\n',
        ' always',
        'always ',
        'always\n\n',
        'Always',
        'alw',
        'always\r\n',
        'never madvise',
        '[never]',
        'defer+',
        '\tnever',
      ])
        expectRejected(k, path, v, 'EINVAL');
    }
    expectRejected(k, 'enabled', 'inherit', 'EINVAL');
    expectRejected(k, 'enabled', 'defer', 'EINVAL');
    expectRejected(k, 'defrag', 'inherit', 'EINVAL');
    expectRejected(k, 'hugepages-64kB/enabled', 'defer', 'EINVAL');
  });

  it('numbers follow kstrtoul/kstrtouint and the kernel bounds', () => {
    const k = x86();
    const bad = [
      '',
      '\n',
      '-1',
      '-0',
      ' 1',
      '1 ',
      '1\n\n',
      '0x10',
      '1e3',
      '1.0',
      'abc',
      '+',
      '++1',
      '12a',
      '\n1',
    ];
    for (const path of [
      'khugepaged/pages_to_scan',
      'khugepaged/scan_sleep_millisecs',
      'khugepaged/alloc_sleep_millisecs',
      'khugepaged/max_ptes_none',
      'khugepaged/max_ptes_swap',
      'khugepaged/max_ptes_shared',
    ]) {
      for (const v of bad) expectRejected(k, path, v, 'EINVAL');
      // Overflowing unsigned long: kstrtoul says ERANGE, the store reports EINVAL.
      expectRejected(k, path, '18446744073709551616', 'EINVAL');
    }
    expectRejected(k, 'khugepaged/pages_to_scan', '0', 'EINVAL');
    expectRejected(k, 'khugepaged/pages_to_scan', '4294967296', 'EINVAL');
    expectRejected(k, 'khugepaged/scan_sleep_millisecs', '4294967296', 'EINVAL');
    for (const path of [
      'khugepaged/max_ptes_none',
      'khugepaged/max_ptes_swap',
      'khugepaged/max_ptes_shared',
    ]) {
      expectRejected(k, path, '512', 'EINVAL');
      expectRejected(k, path, '18446744073709551615', 'EINVAL');
    }
    const a = arm64k();
    expectRejected(a, 'khugepaged/max_ptes_none', '8192', 'EINVAL');
    sysfsWrite(a, 'khugepaged/max_ptes_swap', '8191');
    expect(sysfsRead(a, 'khugepaged/max_ptes_swap')).toBe('8191\n');
  });

  it('0/1 flags take 0 or 1 only', () => {
    const k = x86();
    for (const path of ['use_zero_page', 'khugepaged/defrag']) {
      for (const v of ['2', '10', 'y', 'n', 'on', 'true', '', '\n', '-1', ' 1', '1 ', '0x1'])
        expectRejected(k, path, v, 'EINVAL');
      // kstrtoul's overflow error is passed through by single_hugepage_flag_store().
      expectRejected(k, path, '18446744073709551616', 'ERANGE');
    }
    for (const v of ['', '\n', '2', ' 1', 'x', 'o', 'o\n', 'maybe', '-1'])
      expectRejected(k, 'shrink_underused', v, 'EINVAL');
  });

  it('the written value is a C string: parsing stops at NUL', () => {
    const k = x86();
    sysfsWrite(k, 'enabled', 'never\0garbage');
    expect(k.settings.enabled).toBe('never');
    sysfsWrite(k, 'khugepaged/max_ptes_none', '12\0x');
    expect(k.settings.khugepaged.maxPtesNone).toBe(12);
    expectRejected(k, 'khugepaged/max_ptes_none', '\x001', 'EINVAL');
  });

  it('read-only files are EACCES', () => {
    const k = x86();
    const ro = sysfsList(k).filter((p) => p.includes('/stats/'));
    ro.push('hpage_pmd_size', 'khugepaged/pages_collapsed', 'khugepaged/full_scans');
    for (const p of ro) expectRejected(k, p, '0', 'EACCES');
  });
});

describe('mTHP collapse stats follow the profile', () => {
  const series = MTHP_STAT_NAMES.filter((n) => MTHP_SERIES_STATS.has(n));

  it('absent under linux-6.18', () => {
    const k = x86('linux-6.18');
    for (const n of series) {
      expect(errnoOf(() => sysfsRead(k, `hugepages-2048kB/stats/${n}`))).toBe('ENOENT');
      expect(errnoOf(() => sysfsRead(k, `hugepages-64kB/stats/${n}`))).toBe('ENOENT');
    }
    expect(sysfsList(k).some((p) => p.includes('/stats/collapse_'))).toBe(false);
    expect(sysfsRead(k, 'hugepages-2048kB/stats/anon_fault_alloc')).toBe('0\n');
  });

  it('present under linux-7.2', () => {
    const k = x86('linux-7.2');
    k.stats.mthpStat(3, 'collapse_exceed_none_pte', 5);
    for (const n of series) expect(sysfsList(k)).toContain(`hugepages-32kB/stats/${n}`);
    expect(sysfsRead(k, 'hugepages-32kB/stats/collapse_exceed_none_pte')).toBe('5\n');
    expect(sysfsRead(k, 'hugepages-2048kB/stats/collapse_alloc')).toBe('0\n');
  });
});

// ---- property: random writes are accepted exactly when the kernel would accept them ----------

type Oracle = (buf: string) => string | null; // canonical read-back on success, null if refused

const UINT_MAX = 2n ** 32n - 1n;
const ULONG_MAX = 2n ** 64n - 1n;

function decimal(buf: string): bigint | null {
  const m = /^\+?(\d+)\n?$/.exec(buf);
  return m ? BigInt(m[1]) : null;
}
const modeOracle =
  (words: readonly string[]): Oracle =>
  (buf) => {
    const w = words.find((x) => buf === x || buf === `${x}\n`);
    return w === undefined ? null : bracketed(words, w);
  };
const rangeOracle =
  (lo: bigint, hi: bigint): Oracle =>
  (buf) => {
    const v = decimal(buf);
    return v !== null && v >= lo && v <= hi ? `${v}\n` : null;
  };
const boolOracle: Oracle = (buf) =>
  /^([eEyYtT1]|[oO][nN])/.test(buf) ? '1\n' : /^([dDnNfF0]|[oO][fF])/.test(buf) ? '0\n' : null;

function oracles(k: Kernel): Map<string, Oracle> {
  const pmd = BigInt(k.geo.ptrsPerPte - 1);
  const m = new Map<string, Oracle>([
    ['enabled', modeOracle(GLOBAL_ENABLED)],
    ['defrag', modeOracle(DEFRAG)],
    ['use_zero_page', rangeOracle(0n, 1n)],
    ['khugepaged/defrag', rangeOracle(0n, 1n)],
    ['shrink_underused', boolOracle],
    ['khugepaged/pages_to_scan', rangeOracle(1n, UINT_MAX)],
    ['khugepaged/scan_sleep_millisecs', rangeOracle(0n, UINT_MAX)],
    ['khugepaged/alloc_sleep_millisecs', rangeOracle(0n, UINT_MAX)],
    ['khugepaged/max_ptes_none', rangeOracle(0n, pmd)],
    ['khugepaged/max_ptes_swap', rangeOracle(0n, pmd)],
    ['khugepaged/max_ptes_shared', rangeOracle(0n, pmd)],
  ]);
  for (const p of sysfsList(k))
    if (/^hugepages-\d+kB\/enabled$/.test(p)) m.set(p, modeOracle(ORDER_ENABLED));
  return m;
}

const WORDS = [
  ...new Set([...GLOBAL_ENABLED, ...ORDER_ENABLED, ...DEFRAG, 'on', 'off', 'yes', 'no']),
];

const valueArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({
    unit: fc.constantFrom('0', '1', '2', '5', '9', '+', '-', '\n', ' ', 'x', '\0'),
    maxLength: 24,
  }),
  fc
    .tuple(
      fc.constantFrom('', '+', '-', ' '),
      fc.oneof(fc.bigInt({ min: 0n, max: 20000n }), fc.bigInt({ min: 0n, max: ULONG_MAX + 10n })),
      fc.constantFrom('', '\n', '\n\n', ' ', 'x'),
    )
    .map(([pre, n, post]) => `${pre}${n}${post}`),
  fc
    .tuple(
      fc.constantFrom(...WORDS),
      fc.constantFrom('', '\n', '\n\n', ' ', '\0', 'x'),
      fc.boolean(),
    )
    .map(([w, post, upper]) => `${upper ? w.toUpperCase() : w}${post}`),
);

describe('property: writes are validated like the kernel and failed writes change nothing', () => {
  for (const geometry of ['x86-64-4k', 'arm64-64k'] as const) {
    it(geometry, () => {
      const k = new Kernel({ geometry, ramBytes: (geometry === 'x86-64-4k' ? 64 : 256) * MiB });
      const table = oracles(k);
      const writable = sysfsList(k).filter((p) => table.has(p));
      expect(writable.length).toBe(table.size);
      fc.assert(
        fc.property(fc.constantFrom(...writable), valueArb, (path, value) => {
          const before = snapshot(k);
          const nul = value.indexOf('\0');
          const expected = table.get(path)!(nul >= 0 ? value.slice(0, nul) : value);
          const errno = errnoOf(() => sysfsWrite(k, path, value));
          const after = snapshot(k);
          if (expected === null) {
            expect(errno).not.toBe('none');
            expect(after).toEqual(before);
          } else {
            expect(errno).toBe('none');
            expect(after.get(path)).toBe(expected);
            before.set(path, expected);
            expect(after).toEqual(before);
          }
        }),
        { numRuns: 1500 },
      );
    });
  }
});
