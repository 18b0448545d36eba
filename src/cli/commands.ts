// The actions behind each CLI command. They print through an Io and throw CliError or
// ScenarioError for bad input; program.ts turns those into one line on stderr.

import { EXIT } from './exit-codes.ts';
import { existsSync, readdirSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import pc from 'picocolors';
import {
  GEOMETRY_NAMES,
  type Geometry,
  type GeometryName,
  geometry as geometryOf,
  orderSizeKb,
  ordersDescending,
} from '../mm/geometry.ts';
import type { CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { ProfileName } from '../mm/profile.ts';
import { sysfsList } from '../mm/sysfs.ts';
import { runWithMetrics } from '../report/collect.ts';
import { SCAN_REASONS, renderRun } from '../report/text.ts';
import { BUILTIN_SOURCE, builtinScenario } from '../scenario/builtin.ts';
import { ScenarioError } from '../scenario/errors.ts';
import { Expr, ExprError, geometryEnv, parseExprNode } from '../scenario/expr.ts';
import { SCENARIO_EXTENSIONS, loadScenario } from '../scenario/load.ts';
import { type ResolveOptions, describeVariant, variantsOf } from '../scenario/resolve.ts';
import {
  DEFAULT_GEOMETRY,
  type PmdAttempt,
  type Progress,
  describeConfig,
  errMessage,
  runScenarioSession,
} from '../scenario/run.ts';
import type { Scenario, Variant } from '../scenario/schema.ts';
import { formatKb, formatSize, hex } from '../scenario/size.ts';
import { Machine } from '../sim/machine.ts';
import { workloadScenario } from '../workload/scenario.ts';
import { CliError, type Io, json, oneLine, writeFileAtomic } from './io.ts';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));

function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') ? rel : abs;
}

/**
 * A scenario file, the name of an example ("fork-cow" for examples/fork-cow.yaml), or a workload
 * generator ("workload:stride:max_ptes_none=470", src/workload/).
 */
export function resolveScenario(
  arg: string,
  opts: ResolveOptions = {},
): { scenario: Scenario; source: string } {
  const workload = workloadScenario(arg, opts);
  if (workload) return { scenario: workload, source: arg };
  if (arg !== '-' && !existsSync(arg) && /^[A-Za-z0-9_.-]+$/.test(arg) && !extname(arg)) {
    for (const ext of SCENARIO_EXTENSIONS) {
      const p = join(EXAMPLES_DIR, arg + ext);
      if (existsSync(p))
        return { scenario: loadScenario(displayPath(p), opts), source: displayPath(p) };
    }
    const names = exampleFiles().map((f) => f.slice(0, -extname(f).length));
    throw new ScenarioError(
      arg,
      '',
      `no such file, and no example of that name (examples: ${names.join(', ') || 'none'})`,
    );
  }
  return { scenario: loadScenario(arg, opts), source: arg };
}

// ---- run ------------------------------------------------------------------------------------

export interface RunOpts {
  json?: boolean;
  profile?: ProfileName;
  collapsePolicy?: CollapsePolicy;
  geometry?: GeometryName;
  seed?: number;
  output?: string;
  checkInvariants?: boolean;
  trace?: boolean;
  /** Collect the metrics for `thpsim report` and `thpsim view` (src/report/collect.ts). */
  metrics?: boolean;
  context?: string;
  mem?: string;
  variant?: string[];
}

/** --context, --mem and --variant k=v as a variant. */
function variantOf(opts: { context?: string; mem?: string; variant?: string[] }): Variant {
  const v: Variant = {};
  for (const kv of opts.variant ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(kv);
    if (!m) throw new CliError(`--variant: expected name=value, got ${JSON.stringify(kv)}`);
    v[m[1]] = m[2];
  }
  if (opts.context !== undefined) v.context = opts.context;
  if (opts.mem !== undefined) v.mem = opts.mem;
  return v;
}

/** Load the scenario a command names (or the built-in one) with the command-line overrides. */
export function scenarioFor(
  arg: string | undefined,
  opts: RunOpts,
): { scenario: Scenario; source: string } {
  const ro: ResolveOptions = {
    ...(opts.geometry !== undefined ? { geometry: opts.geometry } : {}),
    variant: variantOf(opts),
  };
  const { scenario, source } = arg
    ? resolveScenario(arg, ro)
    : { scenario: builtinScenario(ro), source: BUILTIN_SOURCE };
  const s: Scenario = {
    ...scenario,
    ...(opts.profile !== undefined ? { profile: opts.profile } : {}),
    ...(opts.collapsePolicy !== undefined ? { collapse_policy: opts.collapsePolicy } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
  };
  if (s.skip) throw new CliError(`${source}: skipped on this geometry: ${s.skip}`);
  return { scenario: s, source };
}

/**
 * A progress bar on stderr for long runs: only on a terminal, never with --json, and only once
 * a run has taken a moment (short runs print nothing).
 */
export function progressBar(
  io: Io,
  enabled: boolean,
  delayMs = 300,
): {
  onProgress?: (p: Progress) => void;
  stop: () => void;
} {
  if (!enabled || !io.progress) return { stop: () => {} };
  const started = Date.now();
  let bar: cliProgress.SingleBar | undefined;
  return {
    onProgress: (p) => {
      if (!bar) {
        if (Date.now() - started < delayMs) return;
        bar = new cliProgress.SingleBar(
          {
            stream: io.progress,
            format:
              'thpsim [{bar}] {percentage}% | event {event}/{events} | t={clock} ms simulated',
            hideCursor: true,
            clearOnComplete: true,
            barsize: 30,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.total * 1000, 0, { event: 0, events: p.total, clock: 0 });
      }
      bar.update(Math.round(p.done * 1000), {
        event: Math.floor(p.done),
        events: p.total,
        clock: p.clockMs,
      });
    },
    stop: () => bar?.stop(),
  };
}

export function runCommand(io: Io, arg: string | undefined, opts: RunOpts): void {
  const { scenario: s, source } = scenarioFor(arg, opts);
  const bar = progressBar(io, !opts.json);
  let result;
  try {
    const ro = {
      source,
      checkInvariants: opts.checkInvariants,
      trace: opts.trace,
      onProgress: bar.onProgress,
    };
    result = opts.metrics
      ? runWithMetrics(s, { ...ro, keepTrace: opts.trace })
      : runScenarioSession(s, ro).result;
  } finally {
    bar.stop();
  }
  const text = json(result);
  if (opts.output) writeFileAtomic(opts.output, text);
  io.out(opts.json ? text : renderRun(result, { color: io.color }));
}

// ---- collapse -------------------------------------------------------------------------------

export interface CollapseOpts extends RunOpts {
  proc: string;
  vma: string;
  offset?: string;
  length?: string;
}

/** --offset/--length: a size or an expression ("2pmd", "NR/2 pages") for the run's geometry. */
function sizeOption(name: string, v: string | undefined, s: Scenario): number | undefined {
  if (v === undefined) return undefined;
  const g = geometryOf(s.geometry ?? DEFAULT_GEOMETRY);
  try {
    const n = new Expr(v, parseExprNode(v), 'size').evaluate(geometryEnv(g));
    if (n < 0) throw new ExprError('negative');
    return n;
  } catch (e) {
    throw new CliError(
      `--${name}: expected a size like "2MiB", "1pmd" or "(NR/2) pages", got ${JSON.stringify(v)}${e instanceof ExprError ? ` (${e.message})` : ''}`,
    );
  }
}

/**
 * Run a scenario, then MADV_COLLAPSE on a range of one of its VMAs; print the errno and the
 * result of every PMD range. Returns the exit status: 0 if MADV_COLLAPSE returned 0, else 1 (a negative result).
 */
export function collapseCommand(io: Io, arg: string, opts: CollapseOpts): number {
  const { scenario: s, source } = scenarioFor(arg, opts);
  const session = runScenarioSession(s, { source, checkInvariants: opts.checkInvariants });
  const offset = sizeOption('offset', opts.offset, s);
  const length = sizeOption('length', opts.length, s);
  if (length === 0) throw new CliError('--length: must be greater than 0');
  const r = session.range(opts.proc, opts.vma, offset, length);
  // madvise(2) on a range the VMA does not cover is ENOMEM in the kernel: here a usage error.
  const v = session.range(opts.proc, opts.vma);
  if (r.addr < v.addr || r.addr + r.length > v.addr + v.length || r.length === 0)
    throw new CliError(
      `--offset/--length: the range ${formatSize(r.addr - v.addr)}+${formatSize(r.length)} is outside vma "${opts.vma}" (${formatSize(v.length)}); madvise would fail with ENOMEM`,
    );
  const attempts: PmdAttempt[] = [];
  session.machine.setTrace((e) => {
    const a = session.attemptOf(e);
    if (a) attempts.push(a);
  });
  const c = session.machine.collapse(r.mm, r.addr, r.length);
  session.machine.setTrace(null);
  const errno = c.errno === 0 ? 'ok' : String(c.errno);
  const pmds = c.pmds.map((p, i) => {
    const a = attempts.find((x) => x.addr === p.addr) ?? attempts[i];
    return {
      addr: p.addr,
      result: p.result,
      none_or_zero: a?.none_or_zero ?? -1,
      swap: a?.swap ?? -1,
      shared: a?.shared ?? -1,
      referenced: a?.referenced ?? -1,
    };
  });
  const out = {
    scenario: s.name,
    config: session.result.config,
    ...(Object.keys(s.variant).length ? { variant: s.variant } : {}),
    clockMs: session.machine.kernel.clockMs,
    proc: opts.proc,
    vma: opts.vma,
    addr: r.addr,
    length: r.length,
    errno,
    pmds,
  };
  if (opts.json) {
    io.out(json(out));
    return c.errno === 0 ? EXIT.ok : EXIT.negative;
  }
  const col = pc.createColors(io.color);
  const lines: string[] = [];
  lines.push(
    `${col.bold(`scenario ${s.name}`)}${Object.keys(s.variant).length ? ` (${describeVariant(s.variant)})` : ''}: ${describeConfig(session.result.config)}`,
  );
  lines.push(
    `after ${session.result.events.length} events, t=${out.clockMs} ms: MADV_COLLAPSE ${opts.proc}/${opts.vma} ${hex(r.addr)}-${hex(r.addr + r.length)} (${formatSize(r.length)}) -> ${errno === 'ok' ? col.green('0') : col.yellow(errno)}`,
  );
  if (pmds.length === 0)
    lines.push(
      'no PMD range was tried (none lies wholly inside the range, or the VMA is not eligible)',
    );
  else {
    const t = new Table({
      head: ['PMD address', 'result', 'why', 'none/zero', 'swap', 'shared', 'referenced'].map((h) =>
        col.bold(h),
      ),
      style: { head: [], border: [], compact: true },
      colAligns: ['left', 'left', 'left', 'right', 'right', 'right', 'right'],
    });
    const n = (x: number) => (x < 0 ? '-' : String(x));
    for (const p of pmds) {
      const ok = p.result === 'SCAN_SUCCEED' || p.result === 'SCAN_PMD_MAPPED';
      t.push([
        hex(p.addr),
        ok ? col.green(p.result) : col.yellow(p.result),
        SCAN_REASONS[p.result] ?? '',
        n(p.none_or_zero),
        n(p.swap),
        n(p.shared),
        n(p.referenced),
      ]);
    }
    lines.push(t.toString());
  }
  io.out(lines.join('\n') + '\n');
  return c.errno === 0 ? EXIT.ok : EXIT.negative;
}

// ---- validate -------------------------------------------------------------------------------

export function validateCommand(io: Io, files: string[], opts: { json?: boolean }): number {
  const results: {
    file: string;
    ok: boolean;
    name?: string;
    processes?: number;
    events?: number;
    error?: string;
  }[] = [];
  for (const file of files) {
    try {
      const { scenario: s } = resolveScenario(file);
      // A selftest or matrix file: every variant must resolve (its `when`s and names).
      for (const variant of variantsOf(s).slice(1)) resolveScenario(file, { variant });
      results.push({
        file,
        ok: true,
        name: s.name,
        processes: s.processes.length,
        events: s.timeline.length,
      });
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      results.push({ file, ok: false, error: e.message });
    }
  }
  if (opts.json) io.out(json(files.length === 1 ? results[0] : results));
  for (const r of results) {
    if (!r.ok) io.err(`thpsim: ${oneLine(r.error!)}\n`);
    else if (!opts.json)
      io.out(
        `${r.file}: ok (scenario "${r.name}", ${r.processes} processes, ${r.events} events)\n`,
      );
  }
  return results.every((r) => r.ok) ? 0 : 1;
}

// ---- sysfs ----------------------------------------------------------------------------------

export function sysfsCommand(
  io: Io,
  path: string | undefined,
  opts: { json?: boolean; profile?: ProfileName; geometry?: GeometryName },
): void {
  const m = new Machine({ profile: opts.profile, geometry: opts.geometry ?? DEFAULT_GEOMETRY });
  const read = (p: string): string => {
    try {
      return m.sysfsRead(p);
    } catch (e) {
      throw new CliError(`sysfs: ${errMessage(e)}`, { cause: e });
    }
  };
  if (path !== undefined) {
    const value = read(path);
    io.out(
      opts.json
        ? json({ path, value: value.replace(/\n$/, '') })
        : value.endsWith('\n')
          ? value
          : value + '\n',
    );
    return;
  }
  const tree: Record<string, string> = {};
  for (const p of sysfsList(m.kernel)) tree[p] = read(p).replace(/\n$/, '');
  if (opts.json) {
    io.out(json(tree));
    return;
  }
  for (const [p, v] of Object.entries(tree)) io.out(`${p}: ${v}\n`);
}

// ---- geometry -------------------------------------------------------------------------------

export function geometryInfo(g: Geometry) {
  const orders = ordersDescending(g.anonOrders);
  return {
    name: g.name,
    arch: g.arch,
    pageSize: g.pageSize,
    pageShift: g.pageShift,
    levels: g.levelBits.filter((b) => b > 0).length,
    levelBits: [...g.levelBits],
    entries: [...g.entries],
    vaBits: g.vaBits,
    ptrsPerPte: g.ptrsPerPte,
    pmdOrder: g.pmdOrder,
    pmdSize: g.pmdSize,
    pudSize: g.pagesPerPud * g.pageSize,
    contPtes: g.contPtes,
    contPteSize: g.contPtes * g.pageSize,
    maxPageOrder: g.maxPageOrder,
    anonOrders: orders,
    mthpSizes: orders.map((o) => `${orderSizeKb(g, o)}kB`),
  };
}

export function geometryCommand(io: Io, name: string | undefined, opts: { json?: boolean }): void {
  const names = name !== undefined ? [name as GeometryName] : [...GEOMETRY_NAMES];
  const infos = names.map((n) => geometryInfo(geometryOf(n)));
  if (opts.json) {
    io.out(json(name !== undefined ? infos[0] : infos));
    return;
  }
  const c = pc.createColors(io.color);
  const t = new Table({
    head: [
      'geometry',
      'page',
      'levels (bits)',
      'VA bits',
      'PMD',
      'PMD order',
      'PUD',
      'cont-PTE',
      'anon mTHP sizes',
    ].map((h) => c.bold(h)),
    style: { head: [], border: [], compact: true },
  });
  for (const g of infos) {
    t.push([
      g.name,
      formatSize(g.pageSize),
      `${g.levels} (${g.levelBits.join('/')})`,
      g.vaBits,
      formatSize(g.pmdSize),
      g.pmdOrder,
      formatSize(g.pudSize),
      g.contPtes > 1
        ? `${g.contPtes} x ${formatSize(g.pageSize)} = ${formatSize(g.contPteSize)}`
        : '-',
      g.anonOrders.map((o) => formatKb(orderSizeKb(geometryOf(g.name), o))).join(' '),
    ]);
  }
  io.out(t.toString() + '\n');
}

// ---- examples -------------------------------------------------------------------------------

export interface ExampleInfo {
  name: string;
  file: string;
  valid: boolean;
  title?: string;
  description?: string;
  error?: string;
}

/** The scenario files in examples/, sorted. */
export function exampleFiles(): string[] {
  try {
    return readdirSync(EXAMPLES_DIR)
      .filter((f) => (SCENARIO_EXTENSIONS as readonly string[]).includes(extname(f)))
      .sort();
  } catch (e) {
    throw new CliError(`cannot list ${EXAMPLES_DIR}: ${oneLine((e as Error).message)}`, {
      cause: e,
    });
  }
}

export function listExamples(): ExampleInfo[] {
  return exampleFiles().map((f) => {
    const file = displayPath(join(EXAMPLES_DIR, f));
    const name = f.slice(0, -extname(f).length);
    try {
      const s = loadScenario(file);
      return { name, file, valid: true, title: s.name, description: s.description ?? '' };
    } catch (e) {
      return { name, file, valid: false, error: oneLine((e as Error).message) };
    }
  });
}

export function examplesCommand(io: Io, opts: { json?: boolean }): void {
  const list = listExamples();
  if (opts.json) {
    io.out(json(list));
    return;
  }
  const c = pc.createColors(io.color);
  for (const e of list) {
    io.out(`${c.bold(e.name)}  ${c.dim(e.file)}\n`);
    io.out(`    ${e.valid ? e.description : c.red(`invalid: ${e.error}`)}\n`);
  }
  if (list.length) io.out(`\nrun one with: thpsim run ${list[0].name}\n`);
}
