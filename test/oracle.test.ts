// `thpsim oracle`: the live kernel against the model. One file on purpose: the live tests change
// the machine's global THP knobs, so they run here one after another (vitest runs files in
// parallel). The pure parts (capability parsing, the sysfs guard on a fake tree, the diff, the
// generators) run everywhere; the live part needs root, THP and /proc/kpageflags, and without
// them it is skipped with the reason printed, never failed and never passed.
//
// THPSIM_ORACLE_FUZZ=<n> runs n fuzz cases (default 16), from seed THPSIM_ORACLE_FUZZ_SEED
// (default 1). A fuzz case that differs is minimised and saved under test/oracle/found/.

import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Capabilities,
  THP_ROOT,
  detectCapabilities,
  parseRelease,
  parseSwaps,
  sizeDirKb,
  unavailableReason,
} from '../src/oracle/capabilities.ts';
import { type SideResult, diffSides } from '../src/oracle/diff.ts';
import { faultCases, fuzzScenario, minimize, saveFound } from '../src/oracle/generate.ts';
import { buildHelper } from '../src/oracle/helper.ts';
import { ORACLE_LOCK } from '../src/cli/oracle-command.ts';
import {
  type OracleEnv,
  type OracleResult,
  machineGeometry,
  runOracle,
  staticReasons,
} from '../src/oracle/oracle.ts';
import { ModelMachine, modelPages, pageSymbol, rle } from '../src/oracle/pages.ts';
import { SysfsGuard, acquireMachineLock } from '../src/oracle/sysfs-guard.ts';
import { loadSpec, parseText, resolveAndCheck, validateScenario } from '../src/scenario/load.ts';
import { describeVariant, variantsOf } from '../src/scenario/resolve.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';

const SELFTESTS = join(import.meta.dirname, 'kernel-selftests');
const FOUND = join(import.meta.dirname, 'oracle', 'found');

// ---- pure parts -----------------------------------------------------------------------------

function fakeThpTree(): string {
  const root = mkdtempSync(join(tmpdir(), 'thpsim-fake-thp-'));
  const put = (rel: string, text: string) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  put('enabled', 'always [madvise] never\n');
  put('defrag', 'always defer defer+madvise [madvise] never\n');
  put('hpage_pmd_size', '2097152\n');
  put('khugepaged/scan_sleep_millisecs', '10000\n');
  put('khugepaged/max_ptes_none', '511\n');
  put('hugepages-64kB/enabled', 'always inherit madvise [never]\n');
  put('hugepages-64kB/stats/nr_anon', '0\n');
  put('hugepages-8kB/shmem_enabled', 'always inherit within_size advise [never]\n');
  put('hugepages-2048kB/enabled', 'always [inherit] madvise never\n');
  put('hugepages-2048kB/stats/collapse_alloc', '0\n');
  return root;
}

/** A fake sysfs file takes a write as the kernel shows it: the word selected in the list. */
function readRaw(root: string, rel: string): string {
  return readFileSync(join(root, rel), 'utf8').trim();
}

describe('oracle: capability parsing', () => {
  it('parses kernel releases, /proc/swaps and size directory names', () => {
    expect(parseRelease('6.18.44-fc-v509')).toEqual({ major: 6, minor: 18 });
    expect(parseRelease('garbage')).toBeNull();
    expect(parseSwaps('Filename\tType\tSize\tUsed\tPriority\n')).toBe(0);
    expect(
      parseSwaps('Filename Type\n/dev/zram0 partition 100 0 -2\n/swapfile file 5 0 -3\n'),
    ).toBe(2);
    expect(sizeDirKb('hugepages-2048kB')).toBe(2048);
    expect(sizeDirKb('khugepaged')).toBeNull();
  });

  it('reads a fake tree: anon sizes, collapse stats, swap, root', () => {
    const root = fakeThpTree();
    const proc = mkdtempSync(join(tmpdir(), 'thpsim-fake-proc-'));
    writeFileSync(join(proc, 'swaps'), 'Filename\n');
    try {
      const c = detectCapabilities({ thpRoot: root, proc, uid: 0, release: '6.18.1', cc: 'cc' });
      expect(c.thp).toBe(true);
      expect(c.pmdSize).toBe(2 * 2 ** 20);
      expect(c.sizes.map((s) => [s.kb, s.enabled])).toEqual([
        [8, false],
        [64, true],
        [2048, true],
      ]);
      expect(c.mthpCollapseStats).toBe(true);
      expect(c.swapAreas).toBe(0);
      expect(c.kpageflags).toBe(false);
      expect(unavailableReason(c)).toMatch(/kpageflags|pagemap/);
      const user = { ...c, uid: 1000, root: false };
      expect(unavailableReason(user)).toMatch(/not running as root \(uid 1000\)/);
      const nothp = { ...c, thp: false, root: true, pagemap: true, kpageflags: true };
      expect(unavailableReason(nothp)).toMatch(/no transparent huge pages/);
      const ok: Capabilities = { ...c, pagemap: true, kpageflags: true };
      expect(unavailableReason(ok)).toBeUndefined();
      expect(unavailableReason({ ...ok, cc: null })).toMatch(/C compiler/);
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it('marks what a kernel without swap or mTHP collapse cannot run as not comparable', () => {
    const caps = {
      ...detectCapabilities({ thpRoot: '/nonexistent', uid: 0, release: '6.18.0', cc: null }),
      swapAreas: 0,
      mthpCollapseStats: false,
    };
    const env = { caps, geometry: 'x86-64-4k' as const };
    const resolve = (file: string, variant: Record<string, string>) =>
      resolveAndCheck(loadSpec(join(SELFTESTS, file)), file, { geometry: 'x86-64-4k', variant });
    expect(
      staticReasons(resolve('collapse_max_ptes_swap.yaml', { context: 'madvise' }), env),
    ).toEqual([expect.stringMatching(/no swap device/)]);
    expect(staticReasons(resolve('mthp_collapse_full.yaml', {}), env)).toEqual([
      expect.stringMatching(/mTHP collapse series/),
    ]);
    expect(
      staticReasons(resolve('collapse_full.yaml', { context: 'madvise', mem: 'shmem' }), env),
    ).toEqual([expect.stringMatching(/anonymous memory only/)]);
    expect(
      staticReasons(resolve('collapse_full.yaml', { context: 'madvise', mem: 'anon' }), env),
    ).toEqual([]);
  });
});

describe('oracle: the sysfs guard (fake tree)', () => {
  it('notes each change first, restores every changed value, and only once', () => {
    const root = fakeThpTree();
    const log: string[] = [];
    try {
      const g = new SysfsGuard({ root, log: (l) => log.push(l) });
      g.write('enabled', 'never');
      g.write('enabled', 'always');
      g.write('khugepaged/max_ptes_none', '0');
      g.write('hugepages-64kB/enabled', 'never'); // unchanged value: recorded, not announced
      expect(log).toEqual([
        'sysfs: enabled: madvise -> never',
        'sysfs: khugepaged/max_ptes_none: 511 -> 0',
      ]);
      expect(readRaw(root, 'enabled')).toBe('always');
      expect([...g.changed.keys()]).toEqual([
        'enabled',
        'khugepaged/max_ptes_none',
        'hugepages-64kB/enabled',
      ]);
      g.restore();
      expect(readRaw(root, 'enabled')).toBe('madvise');
      expect(readRaw(root, 'khugepaged/max_ptes_none')).toBe('511');
      expect(readRaw(root, 'hugepages-64kB/enabled')).toBe('never');
      expect(g.changed.size).toBe(0);
      g.restore(); // nothing left: no write, no note
      expect(log.filter((l) => l.includes('restored'))).toHaveLength(1);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('restores when the code between fails, and at process exit', () => {
    const root = fakeThpTree();
    try {
      const g = new SysfsGuard({ root });
      expect(() => {
        try {
          g.write('defrag', 'never');
          throw new Error('boom');
        } finally {
          g.restore();
        }
      }).toThrow('boom');
      expect(readRaw(root, 'defrag')).toBe('madvise');
      const dispose = g.installExitHandlers();
      g.write('defrag', 'always');
      process.emit('exit', 0);
      expect(readRaw(root, 'defrag')).toBe('madvise');
      dispose();
      expect(() => g.write('nosuchfile', '1')).toThrow(/cannot|ENOENT/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('repairs what a killed run left, from its journal', () => {
    const root = fakeThpTree();
    const journal = join(root, 'journal.json');
    try {
      const g = new SysfsGuard({ root, journal });
      g.write('enabled', 'never');
      g.write('khugepaged/scan_sleep_millisecs', '10');
      // The run dies here (SIGKILL): the journal is left, with a pid that is not alive.
      const j = JSON.parse(readFileSync(journal, 'utf8')) as { pid: number };
      writeFileSync(journal, JSON.stringify({ ...j, pid: 2 ** 22 + 1 }));
      const log: string[] = [];
      new SysfsGuard({ root, journal, log: (l) => log.push(l) });
      expect(log[0]).toMatch(/did not restore 2 value/);
      expect(readRaw(root, 'enabled')).toBe('madvise');
      expect(readRaw(root, 'khugepaged/scan_sleep_millisecs')).toBe('10000');
      expect(() => readFileSync(journal)).toThrow();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('oracle: the diff', () => {
  const snap = (orders: string, counters: Record<string, number> = {}) => ({
    event: 3,
    label: 'timeline[3] collapse a',
    regions: [
      {
        proc: 'a',
        vma: 'area',
        startInPmd: 0,
        pages: 512,
        chunks: [{ offset: 0, orders, share: 'e*512' }],
      },
    ],
    counters,
  });
  const side = (over: Partial<SideResult> = {}): SideResult => ({
    events: [{ index: 0, op: 'collapse', result: 'ok' }],
    snapshots: [snap('9*512', { thp_collapse_alloc: 1 })],
    ms: 1,
    ...over,
  });

  it('finds nothing between equal sides', () => {
    expect(diffSides(side(), side())).toEqual([]);
  });

  it('reports folio orders, call results, counters and a run that stopped', () => {
    const k = side({ snapshots: [snap('0*512', { thp_collapse_alloc: 0 })] });
    const m = side({ events: [{ index: 0, op: 'collapse', result: 'EINVAL' }] });
    const d = diffSides(k, m);
    expect(d.map((x) => x.what)).toEqual(['result', 'folio orders', 'thp_collapse_alloc']);
    expect(d[1]).toMatchObject({ kernel: '0*512', model: '9*512' });
    expect(d[2].counter).toBe(true);
    expect(diffSides(k, m, { skipCounters: () => true }).map((x) => x.what)).not.toContain(
      'thp_collapse_alloc',
    );
    const stopped = diffSides(
      side({ error: { field: 'timeline[4].expect', message: 'x' }, events: [] }),
      side(),
    );
    expect(stopped[0]).toMatchObject({ where: 'run', what: 'outcome', model: 'completed' });
  });

  it('treats a khugepaged wait that timed out as not collapsed', () => {
    const ev = (observed: 'timeout' | 'not_collapsed') => ({
      events: [{ index: 0, op: 'collapse_ctx' as const, observed }],
    });
    expect(diffSides(side(ev('timeout')), side(ev('not_collapsed')))).toEqual([]);
  });

  it('writes page symbols run-length encoded', () => {
    expect(rle('000..z9')).toBe('0*3 .*2 z 9');
    expect(pageSymbol(1 | (9 << 8))).toBe('9');
    expect(pageSymbol(1 | 8)).toBe('z');
    expect(pageSymbol(2)).toBe('s');
    expect(pageSymbol(0)).toBe('.');
  });

  it("reads the model's pages as pagemap shows them", () => {
    const m = new ModelMachine({ profile: 'linux-6.18', ramBytes: 64 * 2 ** 20 });
    m.sysfsWrite('enabled', 'never');
    const mm = m.spawn('a');
    const a = m.mmap(mm, { lengthBytes: 2 * 2 ** 20, addrBytes: 2 ** 30 });
    m.touch(mm, a, 2 * 2 ** 20, true);
    m.touch(mm, a, 4096, false);
    expect(rle(modelPages(m, mm, a, 512).map(pageSymbol).join(''))).toBe('0*512');
    expect(m.collapse(mm, a, 2 * 2 ** 20).errno).toBe(0);
    expect(rle(modelPages(m, mm, a, 512).map(pageSymbol).join(''))).toBe('9*512');
    expect(m.regions(mm)).toEqual([{ name: 'anon', start: a, end: a + 2 * 2 ** 20 }]);
  });
});

describe('oracle: generated scenarios', () => {
  it('fuzz cases are valid scenarios, the same for the same seed', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const s = fuzzScenario(seed);
      expect(fuzzScenario(seed)).toEqual(s);
      expect(() => validateScenario(s, s.name)).not.toThrow();
    }
    expect(fuzzScenario(1)).not.toEqual(fuzzScenario(2));
  });

  it('fault-path cases are valid scenarios', () => {
    const cases = faultCases();
    expect(cases.length).toBeGreaterThanOrEqual(25);
    for (const c of cases) expect(() => validateScenario(c.scenario, c.name)).not.toThrow();
  });

  it('minimises while the difference stays, and saves atomically', () => {
    const s = fuzzScenario(3);
    const keep = s.timeline.length;
    // "Differs" while a fork is still in the timeline.
    const differs = (x: ScenarioInput) =>
      x.timeline.some((e) => (e as { op: string }).op === 'fork');
    const withFork: ScenarioInput = {
      ...s,
      timeline: [
        ...s.timeline.slice(0, 1),
        { op: 'fork', proc: 'a', child: 'z' },
        ...s.timeline.slice(1),
      ],
    };
    const small = minimize(withFork, differs, 100);
    expect(small.timeline.length).toBeLessThan(keep + 1);
    expect(differs(small)).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'thpsim-found-'));
    try {
      const path = saveFound(dir, small, 'why\nit differs');
      const text = readFileSync(path, 'utf8');
      expect(text.startsWith('# why\n# it differs\n')).toBe(true);
      expect(parseText(text, path)).toEqual(JSON.parse(JSON.stringify(small)));
      expect(readdirSync(dir)).toEqual([`${small.name}.yaml`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- the live kernel ------------------------------------------------------------------------

const caps = detectCapabilities();
const geometry = machineGeometry(4096, caps.pmdSize);
const unavailable =
  unavailableReason(caps) ?? (geometry ? undefined : 'the model has no geometry for this machine');
const FUZZ = Number(process.env.THPSIM_ORACLE_FUZZ ?? 16);
const FUZZ_SEED = Number(process.env.THPSIM_ORACLE_FUZZ_SEED ?? 1);

interface Row {
  name: string;
  verdict: string;
  ms: number;
  detail: string;
}
const rows: Row[] = [];

describe.sequential('oracle: live kernel', () => {
  if (unavailable) {
    it('runs on a root machine with THP and /proc/kpageflags', (ctx) => {
      console.log(`oracle: live kernel tests skipped: ${unavailable}`);
      ctx.skip(unavailable);
    });
    return;
  }
  let env: OracleEnv;
  let cleanup = () => {};
  let unlock = () => {};
  beforeAll(() => {
    // Another oracle run on this machine (a second test run, a CLI run) would change the same
    // knobs: wait for it.
    unlock = acquireMachineLock(ORACLE_LOCK, 15 * 60_000, (l) => console.log(l));
    const helper = buildHelper();
    cleanup = helper.cleanup;
    const guard = new SysfsGuard({
      root: THP_ROOT,
      journal: join(tmpdir(), 'thpsim-oracle-test-sysfs.json'),
    });
    guard.installExitHandlers();
    env = { caps, helperBin: helper.bin, guard, thpRoot: THP_ROOT, geometry: geometry! };
  });
  afterAll(() => {
    env?.guard.close();
    cleanup();
    unlock();
    const w = Math.max(...rows.map((r) => r.name.length), 10);
    console.log(
      `oracle: ${caps.release}\n` +
        rows
          .map(
            (r) =>
              `${r.name.padEnd(w)}  ${r.verdict.padEnd(14)} ${String(r.ms).padStart(6)} ms  ${r.detail}`,
          )
          .join('\n') +
        `\n${['equal', 'differ', 'not-comparable', 'known-mismatch'].map((v) => `${rows.filter((r) => r.verdict === v).length} ${v}`).join(', ')}`,
    );
  });

  const run = (
    ctx: { skip: (note?: string) => never },
    name: string,
    f: () => OracleResult,
  ): OracleResult => {
    const t0 = performance.now();
    let r = f();
    if (r.verdict === 'differ') {
      // One more run: a live kernel under the suite's load has transients the model does not.
      const again = f();
      if (again.verdict !== 'differ')
        console.log(`${name}: differed once, ${again.verdict} when run again (a transient)`);
      r = again;
    }
    const detail =
      r.verdict === 'not-comparable'
        ? (r.notComparable ?? []).join('; ')
        : r.differences.length
          ? r.differences
              .slice(0, 3)
              .map((d) => `${d.where}: ${d.what} kernel ${d.kernel} model ${d.model}`)
              .join(' | ')
          : r.notes.join('; ');
    rows.push({ name, verdict: r.verdict, ms: Math.round(performance.now() - t0), detail });
    if (r.verdict === 'not-comparable') ctx.skip(`not comparable: ${detail}`);
    return r;
  };

  describe('kernel selftests', () => {
    for (const file of readdirSync(SELFTESTS)
      .filter((f) => f.endsWith('.yaml'))
      .sort()) {
      const spec = loadSpec(join('test', 'kernel-selftests', file));
      for (const v of variantsOf(spec)) {
        const name = `${file.replace(/\.yaml$/, '')} ${describeVariant(v)}`;
        it(name, { timeout: 180_000 }, (ctx) => {
          const s = resolveAndCheck(spec, file, { geometry: geometry!, variant: v });
          const r = run(ctx, name, () => runOracle(s, file, env));
          expect(r.differences).toEqual([]);
          expect(r.verdict).toBe('equal');
        });
      }
    }
  });

  describe('mTHP fault path: folio orders PTE by PTE', () => {
    for (const c of faultCases())
      it(c.name, (ctx) => {
        const s = validateScenario(c.scenario, c.name, { geometry: geometry! });
        const r = run(ctx, c.name, () =>
          runOracle(s, c.name, env, {
            ...(c.always
              ? {
                  skipCounters: {
                    match: () => true,
                    reason:
                      'an order is "always", so every process on the machine faults such folios',
                  },
                }
              : {}),
          }),
        );
        expect(r.differences).toEqual([]);
        const snaps = r.kernel!.snapshots.filter((x) => x.label.includes('report'));
        expect(snaps.length).toBeGreaterThan(0);
      });
  });

  describe('known mismatches and regressions (test/oracle/found)', () => {
    let files: string[];
    try {
      files = readdirSync(FOUND)
        .filter((f) => f.endsWith('.yaml'))
        .sort();
    } catch {
      files = [];
    }
    if (files.length === 0) it('has no findings to replay', () => expect(files).toEqual([]));
    for (const f of files)
      it(f, (ctx) => {
        const path = join(FOUND, f);
        const text = readFileSync(path, 'utf8');
        const s = validateScenario(parseText(text, path), path, { geometry: geometry! });
        const r = run(ctx, `found/${f}`, () => runOracle(s, path, env));
        // A file marked "known-mismatch:" is a model difference we understand and keep out of the
        // passing set; it must still differ (when it stops differing, the mark goes).
        if (/^# known-mismatch:/m.test(text)) {
          rows[rows.length - 1].verdict = 'known-mismatch';
          expect(r.verdict).toBe('differ');
        } else expect(r.differences).toEqual([]);
      });
  });

  describe(`differential fuzzer (${FUZZ} cases from seed ${FUZZ_SEED})`, () => {
    for (let seed = FUZZ_SEED; seed < FUZZ_SEED + FUZZ; seed++)
      it(`fuzz-${seed}`, { timeout: 120_000 }, (ctx) => {
        const input = fuzzScenario(seed);
        const oracle = (x: ScenarioInput) =>
          runOracle(validateScenario(x, x.name, { geometry: geometry! }), x.name, env);
        let r = run(ctx, `fuzz-${seed}`, () => oracle(input));
        // The live kernel has transients the model does not (khugepaged starved of CPU by the
        // rest of the suite, a folio briefly off the LRU): a difference counts only if it
        // repeats. Two more runs of the same input; one equal run makes it a transient.
        for (let i = 0; i < 2 && r.verdict === 'differ'; i++) {
          const retry = oracle(input);
          if (retry.verdict !== 'differ') {
            console.log(
              `fuzz-${seed}: differed once (${r.differences[0]?.where}: ${r.differences[0]?.what}), equal when run again: a transient of the live kernel`,
            );
            r = retry;
          }
        }
        if (r.verdict === 'differ') {
          const small = minimize(input, (x) => oracle(x).verdict === 'differ');
          const again = oracle(small);
          if (again.verdict !== 'differ')
            expect.fail(
              `fuzz-${seed}: differed three times, but its minimized form does not (${r.differences[0]?.where}: ${r.differences[0]?.what}); not saved`,
            );
          const path = saveFound(
            FOUND,
            small,
            `Found by the oracle fuzzer (seed ${seed}) on Linux ${caps.release}.\n` +
              again.differences
                .slice(0, 5)
                .map((d) => `${d.where}: ${d.what}: kernel ${d.kernel}, model ${d.model}`)
                .join('\n'),
          );
          expect.fail(`fuzz-${seed}: the kernel and the model differ; minimal scenario: ${path}`);
        }
        expect(r.verdict).toBe('equal');
      });
  });
});
