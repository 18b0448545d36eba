// `thpsim compare`: one scenario under several collapse policies and knob settings.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { COLLAPSE_POLICIES, type CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import { GEOMETRY_NAMES, type GeometryName, geometry as geometryOf } from '../mm/geometry.ts';
import { DEFAULT_PROFILE, PROFILE_NAMES } from '../mm/profile.ts';
import { renderCompare, compareVariants, runCompare } from '../report/compare.ts';
import { Expr, ExprError, geometryEnv, parseExprNode } from '../scenario/expr.ts';
import { DEFAULT_GEOMETRY } from '../scenario/run.ts';
import { type RunOpts, progressBar, scenarioFor } from './commands.ts';
import { CliError, type Io, json, writeFileAtomic } from './io.ts';

export interface CompareOpts extends Omit<RunOpts, 'collapsePolicy' | 'trace'> {
  policies?: CollapsePolicy[];
  knob?: Array<[string, string[]]>;
}

function parsePolicies(v: string): CollapsePolicy[] {
  const names = v.split(',').map((x) => x.trim());
  for (const n of names)
    if (!(COLLAPSE_POLICIES as readonly string[]).includes(n))
      throw new InvalidArgumentError(`"${n}" is not a policy (${COLLAPSE_POLICIES.join(', ')}).`);
  return [...new Set(names)] as CollapsePolicy[];
}

/** --knob path=v1,v2: a sysfs file and the values to try. */
function parseKnob(v: string, prev: Array<[string, string[]]> = []): Array<[string, string[]]> {
  const m = /^([^=\s]+)=(.+)$/.exec(v);
  if (!m) throw new InvalidArgumentError('expected path=value[,value...].');
  const values = m[2].split(',').map((x) => x.trim());
  if (values.some((x) => x === '')) throw new InvalidArgumentError('empty value.');
  return [...prev, [m[1], values]];
}

/** A knob value may be an expression over the geometry ("3*NR/4"); anything else is as written. */
function knobValue(v: string, geo: GeometryName): string {
  if (!/NR|PAGE|PMD|[-+*/()]/.test(v)) return v;
  try {
    return String(new Expr(v, parseExprNode(v), 'count').evaluate(geometryEnv(geometryOf(geo))));
  } catch (e) {
    throw new CliError(
      `--knob: cannot evaluate ${JSON.stringify(v)}${e instanceof ExprError ? `: ${e.message}` : ''}`,
    );
  }
}

export function compareCommand(io: Io, arg: string, opts: CompareOpts): void {
  const { scenario, source } = scenarioFor(arg, opts);
  const geo = scenario.geometry ?? DEFAULT_GEOMETRY;
  const knobs = (opts.knob ?? []).map(
    ([p, vs]) => [p, vs.map((v) => knobValue(v, geo))] as [string, string[]],
  );
  const variants = compareVariants(opts.policies ?? COLLAPSE_POLICIES, knobs);
  if (variants.length > 64) throw new CliError(`${variants.length} runs: at most 64 at once`);
  const bar = progressBar(io, !opts.json);
  let result;
  try {
    result = runCompare(scenario, variants, {
      source,
      onProgress: bar.onProgress
        ? (i, n, p) => bar.onProgress!({ ...p, done: i * p.total + p.done, total: n * p.total })
        : undefined,
    });
  } finally {
    bar.stop();
  }
  const text = json(result);
  if (opts.output) writeFileAtomic(opts.output, text);
  io.out(opts.json ? text : renderCompare(result, { color: io.color }));
}

function parseSeed(v: string): number {
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(Number(v)))
    throw new InvalidArgumentError('expected an integer.');
  return Number(v);
}

/** The compare command, with the run options that make sense across runs. */
export function registerCompare(program: Command, io: Io): void {
  program
    .command('compare')
    .description(
      'run one scenario under several mTHP collapse policies and knob settings; print per run the coverage per order, bloat, collapses and failures by SCAN_* reason, the per-order collapse stats and when coverage became steady',
    )
    .argument('<scenario>', 'scenario file (.yaml, .yml, .json; "-" for stdin) or example name')
    .addOption(
      new Option(
        '--policies <list>',
        `comma-separated collapse policies (default: all: ${COLLAPSE_POLICIES.join(',')})`,
      ).argParser(parsePolicies),
    )
    .option(
      '--knob <path=values>',
      'a sysfs file and comma-separated values to try, e.g. khugepaged/max_ptes_none=0,3*NR/4,NR-1 (repeatable; every combination runs)',
      parseKnob,
    )
    .addOption(
      new Option('--profile <name>', `kernel profile (default: ${DEFAULT_PROFILE})`).choices(
        PROFILE_NAMES,
      ),
    )
    .addOption(
      new Option('--geometry <name>', 'page-table geometry (default: x86-64-4k)').choices(
        GEOMETRY_NAMES,
      ),
    )
    .option('--seed <n>', "override the scenario's random seed", parseSeed)
    .option(
      '--variant <name=value>',
      "a value of one of the scenario's matrix dimensions (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('-o, --output <file>', 'also write the comparison as JSON to <file> (atomically)')
    .addOption(new Option('--json', 'print machine-readable JSON instead of text'))
    .addHelpText(
      'after',
      '\nExamples:\n  thpsim compare mthp-creep --policies v19,v10-scaled,v11-cap\n  thpsim compare mthp-creep --policies v19,v10-scaled --knob khugepaged/max_ptes_none=0,NR/2,NR-1\n  thpsim compare arm64-64k-reach --policies v19,pte-level',
    )
    .action((scenario: string, opts: CompareOpts) => compareCommand(io, scenario, opts));
}
