// The actions behind each CLI command. They print through an Io and throw CliError or
// ScenarioError for bad input; program.ts turns those into one line on stderr.

import { existsSync, readdirSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
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
import type { ProfileName } from '../mm/profile.ts';
import { sysfsList } from '../mm/sysfs.ts';
import { renderRun } from '../report/text.ts';
import { BUILTIN_SOURCE, builtinScenario } from '../scenario/builtin.ts';
import { ScenarioError } from '../scenario/errors.ts';
import { SCENARIO_EXTENSIONS, loadScenario } from '../scenario/load.ts';
import { DEFAULT_GEOMETRY, errMessage, runScenario } from '../scenario/run.ts';
import type { Scenario } from '../scenario/schema.ts';
import { formatKb, formatSize } from '../scenario/size.ts';
import { Machine } from '../sim/machine.ts';
import { CliError, type Io, json, oneLine, writeFileAtomic } from './io.ts';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));

function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') ? rel : abs;
}

/** A scenario file, or the name of an example ("fork-cow" for examples/fork-cow.yaml). */
export function resolveScenario(arg: string): { scenario: Scenario; source: string } {
  if (arg !== '-' && !existsSync(arg) && /^[A-Za-z0-9_.-]+$/.test(arg) && !extname(arg)) {
    for (const ext of SCENARIO_EXTENSIONS) {
      const p = join(EXAMPLES_DIR, arg + ext);
      if (existsSync(p)) return { scenario: loadScenario(displayPath(p)), source: displayPath(p) };
    }
    const names = exampleFiles().map((f) => f.slice(0, -extname(f).length));
    throw new ScenarioError(
      arg,
      '',
      `no such file, and no example of that name (examples: ${names.join(', ') || 'none'})`,
    );
  }
  return { scenario: loadScenario(arg), source: arg };
}

// ---- run ------------------------------------------------------------------------------------

export interface RunOpts {
  json?: boolean;
  profile?: ProfileName;
  geometry?: GeometryName;
  seed?: number;
  output?: string;
  checkInvariants?: boolean;
}

export function runCommand(io: Io, arg: string | undefined, opts: RunOpts): void {
  const { scenario, source } = arg
    ? resolveScenario(arg)
    : { scenario: builtinScenario(), source: BUILTIN_SOURCE };
  const s: Scenario = {
    ...scenario,
    ...(opts.profile !== undefined ? { profile: opts.profile } : {}),
    ...(opts.geometry !== undefined ? { geometry: opts.geometry } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
  };
  const result = runScenario(s, { source, checkInvariants: opts.checkInvariants });
  const text = json(result);
  if (opts.output) writeFileAtomic(opts.output, text);
  io.out(opts.json ? text : renderRun(result, { color: io.color }));
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
