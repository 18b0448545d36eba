// `thpsim oracle SCENARIO`: run a scenario on the live kernel and on the model and print where
// they differ. Exit status: 0 every comparable variant agrees, 2 a difference, 3 the oracle
// cannot run here (not root, no THP, no /proc/kpageflags, no cc), 1 bad input.

import { EXIT } from './exit-codes.ts';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { type Command, Option } from 'commander';
import {
  describeCapabilities,
  detectCapabilities,
  THP_ROOT,
  unavailableReason,
} from '../oracle/capabilities.ts';
import { renderSnapshots } from '../oracle/diff.ts';
import { buildHelper } from '../oracle/helper.ts';
import { type OracleResult, machineGeometry, runOracle } from '../oracle/oracle.ts';
import { SysfsGuard, acquireMachineLock } from '../oracle/sysfs-guard.ts';
import { loadSpec, resolveAndCheck, SCENARIO_EXTENSIONS } from '../scenario/load.ts';
import { describeVariant, variantsOf } from '../scenario/resolve.ts';
import type { Variant } from '../scenario/schema.ts';
import { EXAMPLES_DIR } from './commands.ts';
import { CliError, type Io, json } from './io.ts';

export const ORACLE_EXIT = {
  agree: EXIT.ok,
  differ: EXIT.negative,
  error: EXIT.badInput,
  unavailable: EXIT.unavailable,
} as const;
/** Where the guard keeps the original sysfs values while a run has changed them. */
export const ORACLE_JOURNAL = join(tmpdir(), 'thpsim-oracle-sysfs.json');
/** Held while a run may change the knobs (one oracle run per machine). */
export const ORACLE_LOCK = join(tmpdir(), 'thpsim-oracle.lock');

export interface OracleOpts {
  json?: boolean;
  context?: string;
  mem?: string;
  variant?: string[];
}

function scenarioPath(arg: string): string {
  if (existsSync(arg)) return arg;
  if (/^[A-Za-z0-9_.-]+$/.test(arg) && !extname(arg))
    for (const ext of SCENARIO_EXTENSIONS) {
      const p = join(EXAMPLES_DIR, arg + ext);
      if (existsSync(p)) return p;
    }
  throw new CliError(`${arg}: no such file, and no example of that name`);
}

function matches(v: Variant, opts: OracleOpts): boolean {
  if (opts.context !== undefined && v.context !== opts.context) return false;
  if (opts.mem !== undefined && v.mem !== opts.mem) return false;
  for (const kv of opts.variant ?? []) {
    const [k, x] = kv.split('=');
    if (v[k] !== x) return false;
  }
  return true;
}

export function renderOracleResult(r: OracleResult): string {
  const lines: string[] = [];
  const variant = describeVariant(r.variant);
  const verdict =
    r.verdict === 'equal'
      ? 'the kernel and the model agree'
      : r.verdict === 'not-comparable'
        ? `not comparable: ${(r.notComparable ?? []).join('; ')}`
        : `${r.differences.length} difference(s)`;
  lines.push(`${r.scenario}${variant ? ` (${variant})` : ''}: ${verdict}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  if (r.kernel && r.model) {
    lines.push(`  ${''.padEnd(24)} ${'kernel'.padEnd(44)} model`);
    for (const l of renderSnapshots(r.kernel, r.model)) lines.push(`  ${l}`);
    if (r.kernel.error) lines.push(`  kernel stopped: ${r.kernel.error.message}`);
    if (r.model.error) lines.push(`  model stopped: ${r.model.error.message}`);
  }
  for (const d of r.differences)
    lines.push(`  DIFF ${d.where}: ${d.what}: kernel ${d.kernel}, model ${d.model}`);
  return lines.join('\n') + '\n';
}

/** The action: returns the exit status. */
export function oracleCommand(io: Io, arg: string, opts: OracleOpts): number {
  if (
    opts.context !== undefined &&
    !['khugepaged', 'madvise', 'mthp_khugepaged'].includes(opts.context)
  )
    throw new CliError(`--context: expected khugepaged or madvise, got "${opts.context}"`);
  const path = scenarioPath(arg);
  const spec = loadSpec(path);
  const variants = variantsOf(spec).filter((v) => matches(v, opts));
  if (variants.length === 0) throw new CliError(`${path}: no variant matches the options`);
  const caps = detectCapabilities();
  const why = unavailableReason(caps);
  if (why) {
    io.err(`thpsim: oracle unavailable: ${why}\n`);
    return ORACLE_EXIT.unavailable;
  }
  const geometry = machineGeometry(4096, caps.pmdSize);
  if (!geometry) {
    io.err(`thpsim: oracle unavailable: the model has no geometry for this machine\n`);
    return ORACLE_EXIT.unavailable;
  }
  const log = (line: string) => io.err(`${line}\n`);
  const scenarios = variants.map((v) => resolveAndCheck(spec, path, { geometry, variant: v }));
  let unlock: () => void;
  try {
    unlock = acquireMachineLock(ORACLE_LOCK, 120_000, log);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const helper = buildHelper();
  const guard = new SysfsGuard({ root: THP_ROOT, log, journal: ORACLE_JOURNAL });
  guard.installExitHandlers();
  const results: OracleResult[] = [];
  try {
    if (!opts.json) io.out(`oracle: ${describeCapabilities(caps)}; model profile linux-6.18\n`);
    for (const s of scenarios) {
      const r = runOracle(s, path, {
        caps,
        helperBin: helper.bin,
        guard,
        thpRoot: THP_ROOT,
        geometry,
      });
      results.push(r);
      if (!opts.json) io.out(renderOracleResult(r));
    }
  } finally {
    guard.close();
    helper.cleanup();
    unlock();
  }
  if (opts.json)
    io.out(json({ format: 'thpsim-oracle', version: 1, kernel: caps.release, results }));
  return results.some((r) => r.verdict === 'differ') ? ORACLE_EXIT.differ : ORACLE_EXIT.agree;
}

/** Register `oracle` on the program. */
export function addOracleCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('oracle')
    .description(
      'run a scenario on the live kernel (root, THP) and on the model (linux-6.18) and compare: folio orders per PMD, call results, counters (exit 1 on a difference, 2 on bad input, 3 when the oracle cannot run here)',
    )
    .argument('<scenario>', 'scenario file or example name')
    .addOption(new Option('--json', 'print machine-readable JSON instead of text'))
    .option(
      '--context <name>',
      'selftest files: only this collapse context (khugepaged or madvise)',
    )
    .option('--mem <type>', 'selftest files: only this memory type')
    .option(
      '--variant <name=value>',
      "only this value of one of the scenario's matrix dimensions (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .addHelpText(
      'after',
      '\nThe sysfs knobs the scenario sets are written on the kernel and restored afterwards (also on\nerrors and on SIGINT/SIGTERM); each change is printed on stderr first.\n\nExamples:\n  sudo thpsim oracle test/kernel-selftests/collapse_full.yaml --context madvise\n  sudo thpsim oracle test/kernel-selftests/cow_anon_thp_collapse.yaml --variant case=lower_shared --json',
    )
    .action((scenario: string, opts: OracleOpts) => setExit(oracleCommand(io, scenario, opts)));
}
