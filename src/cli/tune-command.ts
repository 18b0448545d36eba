// `thpsim tune TARGET`: search the THP knobs on a scenario, workload, snapshot or trace (src/tune/).

import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { PROFILE_NAMES, type ProfileName } from '../mm/profile.ts';
import { svgToPng } from '../report/plots.ts';
import { inputOf } from '../sweep/cell.ts';
import { QueueError } from '../sweep/queue.ts';
import { SweepError } from '../sweep/sweep.ts';
import { PreferenceError, parsePreference } from '../tune/pareto.ts';
import { renderTune, tunePlot } from '../tune/render.ts';
import {
  type Space,
  SpaceError,
  baselineOf,
  checkSpace,
  parseKnob,
  shownValue,
} from '../tune/space.ts';
import { type TuneResult, type TuneTarget, tune } from '../tune/tune.ts';
import { INPUT_LIMITS, readBounded } from '../workload/read-bounded.ts';
import { scenarioFor } from './commands.ts';
import { CliError, type Io, json, writeFileAtomic } from './io.ts';
import { readSnapshot } from './snapshot-commands.ts';
import { sweepOptions, parseJobs, progressTo } from './sweep-options.ts';

/** The grid when no --space is given; with --budget, max_ptes_none over its whole range. */
export const DEFAULT_SPACE = [
  'max_ptes_none=0,64,128,256,384,409,448,470,511',
  'shrink_underused=0,1',
];
export const DEFAULT_BUDGET_SPACE = ['max_ptes_none=0..511', 'shrink_underused=0,1'];

const TRACE_FORMATS = ['jsonl', 'lackey', 'damon-perf', 'damon-json'] as const;

interface TuneOpts {
  space?: string[];
  budget?: number;
  seed?: number;
  prefer?: string;
  profile?: ProfileName;
  ms?: number;
  format?: (typeof TRACE_FORMATS)[number];
  queue?: string;
  jobs?: number;
  json?: boolean;
  all?: boolean;
  output?: string;
  plot?: string;
}

function traceFormat(file: string, given?: string): string | null {
  if (given) return given;
  if (/\.jsonl$/i.test(file)) return 'jsonl';
  if (/json_compressed$/i.test(file)) return 'damon-json';
  if (/lackey/i.test(file)) return 'lackey';
  if (/perf.*script/i.test(file)) return 'damon-perf';
  return null;
}

/** The target as a sweep input, with each knob's own value. */
function targetOf(arg: string, space: Space, opts: TuneOpts): TuneTarget {
  const ctx = { ...(opts.profile ? { profile: opts.profile } : {}) };
  if (/\.snap$/i.test(arg)) {
    const snap = readSnapshot(arg);
    const bytes = readBounded(arg, INPUT_LIMITS.snapshot);
    const sysfs = Object.fromEntries(
      Object.entries(snap.header.sysfs ?? {}).map(([p, v]) => [p, shownValue(v)]),
    );
    return {
      kind: 'snapshot',
      source: arg,
      name: `pid ${snap.header.pid} (${snap.header.comm})`,
      input: inputOf('snapshot', bytes.toString('base64')),
      baseline: baselineOf(space, { ...ctx, sysfs }),
    };
  }
  const format = traceFormat(arg, opts.format);
  if (format) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(arg);
    } catch (e) {
      throw new CliError(`${arg}: cannot read the trace: ${(e as Error).message}`);
    }
    return {
      kind: 'trace',
      source: arg,
      name: arg,
      input: inputOf('trace', bytes.toString('base64'), format),
      baseline: baselineOf(space, ctx),
    };
  }
  const { scenario, source } = scenarioFor(arg, opts);
  return {
    kind: 'scenario',
    source,
    name: scenario.name,
    input: inputOf('scenario', JSON.stringify(scenario)),
    baseline: baselineOf(space, {
      ...ctx,
      ...(scenario.geometry ? { geometry: scenario.geometry } : {}),
      ...(scenario.profile && !opts.profile ? { profile: scenario.profile } : {}),
      policy: scenario.collapse_policy ?? 'v19',
      sysfs: scenario.sysfs ?? {},
    }),
  };
}

function writeOutputs(result: TuneResult, opts: TuneOpts): void {
  if (opts.output) writeFileAtomic(opts.output, json(result));
  if (opts.plot) {
    const svg = tunePlot(result).svg;
    writeFileAtomic(opts.plot, /\.png$/i.test(opts.plot) ? svgToPng(svg) : svg);
  }
}

export async function tuneCommand(io: Io, arg: string, opts: TuneOpts): Promise<void> {
  try {
    const specs = opts.space?.length
      ? opts.space
      : opts.budget !== undefined
        ? DEFAULT_BUDGET_SPACE
        : DEFAULT_SPACE;
    const space = specs.map(parseKnob);
    const prefer = parsePreference(opts.prefer ?? 'balanced');
    const target = targetOf(arg, space, opts);
    checkSpace(space, { ...(opts.profile ? { profile: opts.profile } : {}) });
    const progress = progressTo(io, opts.queue ? 'on the queue' : 'locally');
    const result = await tune(target, {
      space,
      ...(opts.budget !== undefined ? { budget: opts.budget } : {}),
      seed: opts.seed ?? 1,
      prefer,
      preferText: opts.prefer ?? 'balanced',
      ...(opts.profile ? { profile: opts.profile } : {}),
      ...(opts.ms !== undefined ? { ms: opts.ms } : {}),
      sweep: sweepOptions(opts, progress),
    });
    progress.end();
    writeOutputs(result, opts);
    io.out(opts.json ? json(result) : renderTune(result, { color: io.color, all: opts.all }));
  } catch (e) {
    if (
      e instanceof SpaceError ||
      e instanceof PreferenceError ||
      e instanceof QueueError ||
      e instanceof SweepError
    )
      throw new CliError(e.message, { cause: e });
    throw e;
  }
}

function positive(what: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v)))
      throw new InvalidArgumentError(`expected a positive integer (${what}).`);
    return Number(v);
  };
}

export function registerTune(program: Command, io: Io): void {
  program
    .command('tune')
    .description(
      'search the THP knobs on a scenario, workload (workload:NAME), snapshot (.snap) or trace: the Pareto front of huge coverage, bloat, khugepaged CPU and TLB reach with memcg OOM as a constraint, a recommended setting and the sysfs writes that apply it',
    )
    .argument(
      '<target>',
      'scenario file or example, workload:NAME[:k=v,...], FILE.snap, or a trace (.jsonl, lackey, perf script, json_compressed)',
    )
    .option(
      '--space <knob=values>',
      'a knob and its values, e.g. max_ptes_none=0,256,511 or max_ptes_none=0..511:8 (repeatable; knobs: enabled, enabled-<size>kB, defrag, max_ptes_none, max_ptes_swap, max_ptes_shared, pages_to_scan, scan_sleep_millisecs, shrink_underused, policy, or any transparent_hugepage path)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--budget <n>',
      'evaluate at most n settings with a seeded evolutionary + pattern search',
      positive('--budget'),
    )
    .option('--seed <n>', 'seed of the search (default: 1)', positive('--seed'))
    .option(
      '--prefer <p>',
      'coverage, memory, balanced (default) or weights like coverage=2,bloat=1,cpu=0,tlb=0.5',
    )
    .addOption(new Option('--profile <name>', 'kernel profile').choices(PROFILE_NAMES))
    .option(
      '--ms <n>',
      'snapshots: simulated ms khugepaged runs (default: as whatif)',
      positive('--ms'),
    )
    .addOption(new Option('--format <f>', 'traces: the format').choices(TRACE_FORMATS))
    .option(
      '--queue <url>',
      'run the settings on BullMQ workers (thpsim worker) at redis://HOST:PORT',
    )
    .option('--jobs <n>', 'local parallel runs (default: every core)', parseJobs)
    .option('--all', 'list every evaluated setting, not only the front')
    .option('-o, --output <file>', 'also write the result as JSON to <file> (atomically)')
    .option('--plot <file>', 'write the front plot (.svg or .png)')
    .addOption(new Option('--json', 'print machine-readable JSON instead of text'))
    .addHelpText(
      'after',
      '\nExamples:\n  thpsim tune workload:stride --space max_ptes_none=0,409,470,471,511 --space shrink_underused=0,1 --prefer coverage\n  thpsim tune workload:redis-3phase --budget 24 --prefer coverage\n  thpsim tune app.snap --space max_ptes_none=0,255,511 --space enabled-64kB=never,always --plot front.png\n  thpsim tune mthp-creep --space policy=v19,v10-scaled --queue redis://10.0.0.5:6379',
    )
    .action((target: string, opts: TuneOpts) => tuneCommand(io, target, opts));
}
