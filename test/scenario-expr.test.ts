// Geometry-relative sizes and counts in scenarios (expr.ts), their resolution per geometry and
// variant (resolve.ts: repeat, when, matrix, skips), and the messages of the new checks.

import { test as fcTest } from '@fast-check/vitest';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GEOMETRY_NAMES, type GeometryName, geometry } from '../src/mm/geometry.ts';
import { ScenarioError } from '../src/scenario/errors.ts';
import { Expr, ExprError, geometryEnv, parseExprNode } from '../src/scenario/expr.ts';
import { loadScenario, parseScenario, parseText, validateSpec } from '../src/scenario/load.ts';
import { variantsOf } from '../src/scenario/resolve.ts';
import { runScenario } from '../src/scenario/run.ts';
import { formatSize, parseSize } from '../src/scenario/size.ts';
import { Machine, type Mm } from '../src/sim/machine.ts';

const MiB = 2 ** 20;

function size(src: string | number, g: GeometryName = 'x86-64-4k'): number {
  const node = typeof src === 'number' ? ({ k: 'num', v: src } as const) : parseExprNode(src);
  return new Expr(src, node, 'size').evaluate(geometryEnv(geometry(g)));
}
function count(src: string, g: GeometryName = 'x86-64-4k'): number {
  return new Expr(src, parseExprNode(src), 'count').evaluate(geometryEnv(geometry(g)));
}

describe('size and count expressions', () => {
  it('scale with the geometry', () => {
    expect(size('4pmd')).toBe(8 * MiB);
    expect(size('4 pmds', 'arm64-16k')).toBe(128 * MiB);
    expect(size('1pmd', 'arm64-64k')).toBe(512 * MiB);
    expect(size('(NR - NR/2 - 1) pages')).toBe(255 * 4096);
    expect(size('(NR - NR/2 - 1) pages', 'arm64-16k')).toBe(1023 * 16384);
    expect(size('NR pages', 'arm64-64k')).toBe(512 * MiB);
    expect(size('1GiB + 2pmd')).toBe(2 ** 30 + 4 * MiB);
    expect(size('1GiB - (3 + 1) pages')).toBe(2 ** 30 - 16384);
    expect(size('2 * PMD')).toBe(4 * MiB);
    expect(size('PAGE', 'arm64-16k')).toBe(16384);
    expect(size('pmd')).toBe(2 * MiB);
    expect(count('NR/8')).toBe(64);
    expect(count('NR/8', 'arm64-64k')).toBe(1024);
    expect(count('8*NR')).toBe(4096);
    expect(count('NR - 1', 'arm64-4k')).toBe(511);
    expect(count('PMD / PAGE', 'arm64-16k')).toBe(2048);
    expect(count('7/2')).toBe(3); // C division
  });

  it('keeps version-1 sizes: bytes and binary units', () => {
    for (const s of ['4096', '4K', '64KiB', '2048kB', '2 MiB', '1.5GiB', '0x200000', '0B'])
      expect(size(s), s).toBe(parseSize(s));
    expect(size(4096)).toBe(4096);
  });

  it('rejects mixed dimensions and unknown names', () => {
    expect(() => size('NR')).toThrow('this is a count, not a size');
    expect(() => count('2pmd')).toThrow('this is a size, not a count');
    expect(() => size('1pmd + 1')).toThrow('cannot add a size and a count');
    expect(() => size('1pmd * 1pmd')).toThrow('cannot multiply two sizes');
    expect(() => count('1 / 1pmd')).toThrow('cannot divide a count by a size');
    expect(() => count('NR / 0')).toThrow('division by zero');
    expect(() => count('FOO + 1')).toThrow('unknown name "FOO"');
    expect(() => parseExprNode('2 megs')).toThrow(ExprError);
    expect(() => parseExprNode('(NR - 1')).toThrow('missing ")"');
    expect(() => parseExprNode('MiB')).toThrow('needs a number before it');
    expect(() => size('0.3K')).toThrow('not a whole number');
  });

  fcTest.prop([
    fc.constantFrom(...GEOMETRY_NAMES),
    fc.integer({ min: 0, max: 64 }),
    fc.integer({ min: 0, max: 8192 }),
    fc.integer({ min: 0, max: 4 }),
  ])('"a pmd + b pages + c K" is a x PMD + b x page + c KiB', (g, a, b, c) => {
    const geo = geometry(g);
    expect(size(`${a}pmd + ${b} pages + ${c}K`, g)).toBe(
      a * geo.pmdSize + b * geo.pageSize + c * 1024,
    );
    expect(size(`(${a} + ${b}) pages`, g)).toBe((a + b) * geo.pageSize);
  });

  fcTest.prop([fc.maxSafeNat()])('formatSize output parses back as an expression', (n) => {
    expect(size(formatSize(n))).toBe(n);
  });

  // Random expression trees over NR evaluate as the same arithmetic in JS (C division).
  const tree: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.integer({ min: 1, max: 50 }).map(String),
      fc.constant('NR'),
      fc
        .tuple(tie('e'), fc.constantFrom('+', '-', '*', '/'), tie('e'))
        .map(([a, op, b]) => `(${a} ${op} ${b})`),
    ),
  })).e;
  fcTest.prop([tree, fc.constantFrom(...GEOMETRY_NAMES)])('expressions over NR', (src, g) => {
    const nr = geometry(g).ptrsPerPte;
    const ref = (s: string): number => {
      // Evaluate with truncating division, mirroring C.
      const toks = s.match(/NR|\d+|[-+*/()]/g)!;
      let p = 0;
      const expr = (): number => {
        let a = term();
        while (toks[p] === '+' || toks[p] === '-') a = toks[p++] === '+' ? a + term() : a - term();
        return a;
      };
      const term = (): number => {
        let a = prim();
        while (toks[p] === '*' || toks[p] === '/') {
          const op = toks[p++];
          const b = prim();
          if (op === '/' && b === 0) throw new Error('div0');
          a = op === '*' ? a * b : Math.trunc(a / b);
        }
        return a;
      };
      const prim = (): number => {
        const t = toks[p++];
        if (t === '(') {
          const v = expr();
          p++;
          return v;
        }
        return t === 'NR' ? nr : Number(t);
      };
      return expr();
    };
    let want: number | 'error';
    try {
      want = ref(src);
    } catch {
      want = 'error';
    }
    const e = new Expr(src, parseExprNode(src), 'count');
    if (want === 'error') expect(() => e.evaluate(geometryEnv(geometry(g)))).toThrow(ExprError);
    else if (Number.isSafeInteger(want)) expect(e.evaluate(geometryEnv(geometry(g)))).toBe(want);
  });
});

const HEAD = `version: 1
name: t
processes: [{ name: app }]
`;

function errorOf(text: string, opts = {}): string {
  try {
    parseScenario(text, 's.yaml', opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('scenario fields with expressions', () => {
  it('resolves sizes for the geometry given, or the header one', () => {
    const text =
      HEAD +
      'ram: "(64 + 8) pmd"\nsysfs: { khugepaged/max_ptes_none: NR/2, enabled: madvise }\ntimeline:\n' +
      '  - { op: mmap, proc: app, vma: heap, size: 4pmd, align: 1pmd }\n' +
      '  - { op: write, proc: app, vma: heap, length: "(NR - NR/2 - 1) pages", pattern: { every: NR/8 } }\n';
    const x86 = parseScenario(text, 's.yaml');
    expect(x86.ram).toBe(72 * 2 * MiB);
    expect(x86.sysfs).toEqual({ 'khugepaged/max_ptes_none': 256, enabled: 'madvise' });
    expect(x86.timeline[0]).toMatchObject({ size: 8 * MiB, align: 2 * MiB });
    expect(x86.timeline[1]).toMatchObject({ length: 255 * 4096, pattern: { every: 64 } });
    const a16 = parseScenario(text, 's.yaml', { geometry: 'arm64-16k' });
    expect(a16.geometry).toBe('arm64-16k');
    expect(a16.timeline[0]).toMatchObject({ size: 128 * MiB, align: 32 * MiB });
    expect(a16.sysfs!['khugepaged/max_ptes_none']).toBe(1024);
    const h = parseScenario(text.replace('name: t', 'name: t\ngeometry: arm64-64k'), 's.yaml');
    expect(h.timeline[0]).toMatchObject({ size: 2048 * MiB });
  });

  it('names the field of a bad expression', () => {
    expect(errorOf(HEAD + 'timeline:\n  - { op: mmap, proc: app, vma: h, size: NR }\n')).toBe(
      's.yaml: timeline[0].size: expected a size like "2MiB" or a number of bytes, got "NR" (this is a count, not a size: give it a unit, e.g. "NR pages" or "2pmd")',
    );
    expect(
      errorOf(HEAD + 'timeline:\n  - { op: mmap, proc: app, vma: h, size: "(NR - 1) pagez" }\n'),
    ).toBe(
      's.yaml: timeline[0].size: expected a size like "2MiB" or a number of bytes, got "(NR - 1) pagez" (unknown unit "pagez")',
    );
    expect(
      errorOf(HEAD + 'timeline:\n  - { op: mmap, proc: app, vma: h, size: 1pmd, align: 3pmd }\n'),
    ).toBe('s.yaml: timeline[0].align: expected a power of two like "2MiB", got "3pmd" (= 6MiB)');
    expect(
      errorOf(HEAD + 'timeline:\n  - { op: mmap, proc: app, vma: h, size: "NR pages - 1pmd" }\n'),
    ).toBe(
      's.yaml: timeline[0].size: expected a size greater than 0, got "NR pages - 1pmd" (= 0B)',
    );
    // A sysfs value that is not an expression is written as it is.
    expect(
      parseScenario(
        HEAD + 'sysfs: { enabled: inherit, defrag: "defer+madvise" }\ntimeline: []\n',
        's.yaml',
      ).sysfs,
    ).toEqual({ enabled: 'inherit', defrag: 'defer+madvise' });
  });

  it('unrolls repeat with its variable, with a source path per event', () => {
    const s = parseScenario(
      HEAD +
        'timeline:\n' +
        '  - { op: mmap, proc: app, vma: h, size: 4pmd }\n' +
        '  - op: repeat\n    count: 3\n    var: j\n    do:\n' +
        '      - { op: touch, proc: app, vma: h, offset: j pmd, length: "(j + 1) pages" }\n',
      's.yaml',
    );
    expect(s.timeline.map((e) => (e.op === 'touch' ? [e.offset, e.length] : e.op))).toEqual([
      'mmap',
      [0, 4096],
      [2 * MiB, 8192],
      [4 * MiB, 12288],
    ]);
    expect(s.sources).toEqual([
      'timeline[0]',
      'timeline[1][j=0].do[0]',
      'timeline[1][j=1].do[0]',
      'timeline[1][j=2].do[0]',
    ]);
    expect(
      errorOf(
        HEAD +
          'timeline:\n  - { op: mmap, proc: app, vma: h, size: 1pmd }\n  - op: repeat\n    count: 2\n    do:\n      - { op: touch, proc: app, vma: h, offset: "i pmd" }\n',
      ),
    ).toBe('s.yaml: timeline[1][i=1].do[0].offset: offset 2MiB is outside vma "h" (2MiB)');
    expect(errorOf(HEAD + 'timeline:\n  - { op: repeat, count: 1, var: k, do: [] }\n')).toBe(
      's.yaml: timeline[0].var: "k" is a unit, not a usable name',
    );
    expect(
      errorOf(HEAD + 'timeline:\n  - op: repeat\n    count: 1\n    do:\n      - { op: nap }\n'),
    ).toMatch(/^s\.yaml: timeline\[0\]\.do\[0\]\.op: unknown op "nap"/);
  });

  it('selects events with when, per variant', () => {
    const text = `version: 1
name: v
contexts: [khugepaged, madvise]
mem: [anon, file]
matrix: { policy: [never, always] }
processes: [{ name: app }]
timeline:
  - { op: sysfs, path: enabled, value: never, when: { policy: never } }
  - { op: sysfs, path: enabled, value: always, when: { policy: always } }
  - { op: shrink, when: { context: madvise, mem: [anon, file] } }
`;
    const spec = validateSpec(parseText(text, 'v.yaml'), 'v.yaml');
    expect(variantsOf(spec)).toHaveLength(8);
    expect(variantsOf(spec)[0]).toEqual({ context: 'khugepaged', mem: 'anon', policy: 'never' });
    const a = parseScenario(text, 'v.yaml');
    expect(a.variant).toEqual({ context: 'khugepaged', mem: 'anon', policy: 'never' });
    expect(a.timeline.map((e) => e.op)).toEqual(['sysfs']);
    const b = parseScenario(text, 'v.yaml', { variant: { context: 'madvise', policy: 'always' } });
    expect(b.timeline).toMatchObject([{ op: 'sysfs', value: 'always' }, { op: 'shrink' }]);
    expect(b.sources).toEqual(['timeline[1]', 'timeline[2]']);
    expect(errorOf(text, { variant: { context: 'daemon' } })).toBe(
      's.yaml: context "daemon" is not one of this scenario\'s: khugepaged, madvise',
    );
    expect(errorOf(text, { variant: { colour: 'red' } })).toBe(
      's.yaml: this scenario has no variant dimension "colour" (it has: context, mem, policy)',
    );
    expect(errorOf(text.replace('when: { policy: never }', 'when: { policy: sometimes }'))).toBe(
      's.yaml: timeline[0].when.policy: "sometimes" is not one of: never, always',
    );
    expect(errorOf(HEAD + 'timeline:\n  - { op: shrink, when: { context: madvise } }\n')).toBe(
      's.yaml: timeline[0].when.context: unknown variant dimension "context" (declare contexts, mem or matrix in the header)',
    );
  });

  it('skips by geometry: skip_if, and page-cache cases without a PMD-sized folio', () => {
    const text = `version: 1
name: s
contexts: [khugepaged]
mem: [anon, shmem]
skip_if: { pmd_larger_than: 32MiB, reason: too big }
processes: []
timeline: []
`;
    expect(parseScenario(text, 's.yaml', { geometry: 'arm64-16k' }).skip).toBeUndefined();
    expect(parseScenario(text, 's.yaml', { geometry: 'arm64-64k' }).skip).toBe('too big');
    expect(
      parseScenario(text.replace(/skip_if.*\n/, ''), 's.yaml', {
        geometry: 'arm64-64k',
        variant: { mem: 'shmem' },
      }).skip,
    ).toMatch(
      /^no PMD-sized page-cache folio on arm64-64k \(MAX_PAGECACHE_ORDER 11 < PMD order 13\)/,
    );
  });
});

// ---- the new ops against the real model ---------------------------------------------------

function run(text: string, machine?: (cfg: object) => Machine) {
  const s = parseScenario(text, 'c.yaml');
  return runScenario(s, {
    source: 'c.yaml',
    checkInvariants: true,
    ...(machine ? { createMachine: machine } : {}),
  });
}

function runError(text: string, machine?: (cfg: object) => Machine): string {
  try {
    run(text, machine);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('the run succeeded');
}

const APP = `version: 1
name: c
ram: 64pmd
swap: 4pmd
sysfs: { enabled: madvise, khugepaged/scan_sleep_millisecs: 10 }
processes: [{ name: app }]
timeline:
  - { op: mmap, proc: app, vma: heap, size: 2pmd, addr: 1GiB }
  - { op: write, proc: app, vma: heap }
`;

describe('check, collapse, wait_khugepaged', () => {
  it('check passes and records what it compared', () => {
    const r = run(
      APP +
        '  - { op: collapse, proc: app, vma: heap, length: 1pmd, expect: ok }\n' +
        '  - { op: check, proc: app, vma: heap, AnonHugePages: 1pmd, Rss: 2pmd, huge: 1, intact: true }\n',
    );
    expect(r.events[2]).toMatchObject({
      op: 'collapse',
      result: 'ok',
      pmds: [{ addr: 2 ** 30, result: 'SCAN_SUCCEED' }],
    });
    expect(r.events[3]).toMatchObject({
      op: 'check',
      checked: {
        AnonHugePages: { expected: 2048, actual: 2048 },
        Rss: { expected: 4096, actual: 4096 },
      },
      intactPages: 1024,
    });
    expect(r.khugepaged.attempts).toMatchObject([
      {
        by: 'madvise',
        proc: 'app',
        vma: 'heap',
        offset: 0,
        addr: 2 ** 30,
        result: 'SCAN_SUCCEED',
        event: 2,
      },
    ]);
  });

  it('a failed check names the event, the field, the expected and the actual value', () => {
    expect(runError(APP + '  - { op: check, proc: app, vma: heap, AnonHugePages: 2pmd }\n')).toBe(
      'c.yaml: timeline[2].AnonHugePages: check app/heap: AnonHugePages is 0 kB, expected 4096 kB (2 PMDs); no PMD range was tried',
    );
    expect(runError(APP + '  - { op: check, proc: app, vma: heap, huge: 1, label: after }\n')).toBe(
      'c.yaml: timeline[2].huge: check app/heap "after": AnonHugePages is 0 kB, expected 2048 kB (1 PMD); no PMD range was tried',
    );
    expect(runError(APP + '  - { op: check, proc: app, vma: heap, Swap: 1page }\n')).toBe(
      'c.yaml: timeline[2].Swap: check app/heap: Swap is 0 kB, expected 4 kB',
    );
    expect(runError(APP + '  - { op: check, proc: app, vma: heap, length: 1pmd, Rss: 0 }\n')).toBe(
      'c.yaml: timeline[2]: check app/heap: smaps counts whole VMAs, and the VMA 000040000000-000040400000 reaches outside 000040000000-000040200000; check a range that covers it',
    );
  });

  it('intact: a page that lost its contents is reported', () => {
    class Lossy extends Machine {
      override readPage(mm: Mm, addr: number): number | null {
        const v = super.readPage(mm, addr);
        return addr === 2 ** 30 + 3 * 4096 && this.kernel.clockMs > 0 ? 12345 : v;
      }
    }
    const msg = runError(
      APP + '  - { op: sleep, ms: 1 }\n  - { op: check, proc: app, vma: heap, intact: true }\n',
      (cfg) => new Lossy(cfg),
    );
    expect(msg).toMatch(
      /^c\.yaml: timeline\[3\]\.intact: check app: 1 of 1024 pages differ from what was written; first: page 3 \(000040003000\) reads 12345, last written \d+$/,
    );
  });

  it('intact follows dontneed, fork, mremap and swap', () => {
    run(
      APP +
        '  - { op: madvise, proc: app, vma: heap, length: 16K, advice: dontneed }\n' +
        '  - { op: swapout, proc: app, vma: heap, offset: 1pmd, length: 64K }\n' +
        '  - { op: fork, proc: app, child: kid }\n' +
        '  - { op: write, proc: kid, vma: heap, length: 8K }\n' +
        '  - { op: mremap, proc: app, vma: heap, newSize: 1pmd, to: 2GiB }\n' +
        '  - { op: check, proc: app, vma: heap, intact: true }\n' +
        '  - { op: check, proc: kid, vma: heap, intact: true, Swap: 64K }\n',
    );
  });

  it('collapse: expect and the MADV_COLLAPSE errno', () => {
    const msg = runError(
      APP +
        '  - { op: munmap, proc: app, vma: heap, offset: 1pmd }\n  - { op: madvise, proc: app, vma: heap, advice: nohugepage }\n  - { op: collapse, proc: app, vma: heap, expect: ok }\n',
    );
    expect(msg).toBe(
      'c.yaml: timeline[4].expect: MADV_COLLAPSE on app/heap returned EINVAL, expected ok: no PMD range was tried',
    );
  });

  it('wait_khugepaged runs khugepaged on the clock and can fail on a timeout', () => {
    const r = run(
      APP +
        '  - { op: madvise, proc: app, vma: heap, advice: hugepage }\n' +
        '  - { op: wait_khugepaged, until_collapsed: { proc: app, vma: heap } }\n' +
        '  - { op: check, proc: app, vma: heap, huge: 2 }\n',
    );
    expect(r.events[3]).toMatchObject({
      op: 'wait_khugepaged',
      timedOut: false,
      pages_collapsed: 2,
    });
    expect(r.khugepaged).toMatchObject({ pages_collapsed: 2 });
    expect(r.reports[0].khugepaged.pages_collapsed).toBe(2);
    const msg = runError(
      APP +
        '  - { op: sysfs, path: khugepaged/scan_sleep_millisecs, value: 100000 }\n' +
        '  - { op: madvise, proc: app, vma: heap, advice: hugepage }\n' +
        '  - { op: sleep, ms: 1 }\n' +
        '  - { op: wait_khugepaged, max_ms: 500, on_timeout: fail }\n',
    );
    expect(msg).toMatch(
      /^c\.yaml: timeline\[5\]\.on_timeout: khugepaged did not complete 2 full scans in 500 ms \(full_scans 1 -> 1\)$/,
    );
  });

  it('sysfs_push and sysfs_pop restore the previous values', () => {
    const r = run(
      APP +
        '  - { op: sysfs_push, values: { enabled: never, khugepaged/max_ptes_none: NR/4 } }\n' +
        '  - { op: report, label: pushed }\n' +
        '  - { op: sysfs_pop }\n',
    );
    expect(r.events[2]).toMatchObject({
      values: { enabled: 'never', 'khugepaged/max_ptes_none': '128' },
    });
    expect(runError(APP + '  - { op: sysfs_pop }\n')).toBe(
      'c.yaml: timeline[2]: sysfs_pop without a matching sysfs_push',
    );
  });

  it('collapse_ctx needs contexts in the header, and reports why a collapse did not happen', () => {
    expect(
      runError(APP + '  - { op: collapse_ctx, proc: app, vma: heap, expect: collapsed }\n'),
    ).toBe(
      'c.yaml: timeline[2]: collapse_ctx needs a selftest context: declare contexts: [khugepaged, madvise] in the header',
    );
    const selftest = `version: 1
name: c
contexts: [khugepaged, madvise]
mem: anon
ram: 64pmd
processes: [{ name: t }]
timeline:
  - { op: setup_area, proc: t, vma: a, pmds: 1 }
  - { op: fault, proc: t, vma: a, length: 1page }
  - { op: sysfs, path: khugepaged/max_ptes_none, value: 0 }
  - { op: collapse_ctx, proc: t, vma: a, expect: collapsed, label: one page }
`;
    expect(runError(selftest)).toBe(
      'c.yaml: timeline[3].expect: collapse_ctx t/a "one page" (khugepaged context, anon): expected collapsed, got not_collapsed: AnonHugePages 0 kB, expected 2048 kB; khugepaged 000040000000 SCAN_EXCEED_NONE_PTE (none_or_zero 1, swap 0, shared 0, referenced 1)',
    );
    const s = parseScenario(selftest.replace('value: 0', 'value: 511'), 'c.yaml', {
      variant: { context: 'madvise' },
    });
    const r = runScenario(s, { source: 'c.yaml' });
    expect(r.variant).toEqual({ context: 'madvise', mem: 'anon' });
    expect(r.sysfs).toMatchObject({ enabled: 'madvise', 'khugepaged/max_ptes_none': '511' });
    expect(r.events[3]).toMatchObject({
      op: 'collapse_ctx',
      context: 'madvise',
      expected: 'collapsed',
      observed: 'collapsed',
      result: 'ok',
    });
  });
});

it('the example scenarios still load', () => {
  expect(loadScenario('examples/khugepaged-timeline.yaml').timeline.length).toBeGreaterThan(5);
});
