// thpsim replay: run an event trace, a lackey trace or DAMON records on the model, streaming.

import { type Command, Option } from 'commander';
import { COLLAPSE_POLICIES, type CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import { GEOMETRY_NAMES, type GeometryName } from '../mm/geometry.ts';
import { isDirectory } from '../scenario/errors.ts';
import { PROFILE_NAMES, type ProfileName } from '../mm/profile.ts';
import { ramSizeProblem } from '../mm/ram.ts';
import { parseSize, formatKb } from '../scenario/size.ts';
import { damonOps, parseDamonJson, parseDamonPerfScript } from '../workload/damon.ts';
import { parseJsonlTrace } from '../workload/jsonl.ts';
import { parseLackey } from '../workload/lackey.ts';
import { InputError, fileLines } from '../workload/lines.ts';
import { type ReplayHeader, type ReplayOp, type ReplayResult, replay } from '../workload/replay.ts';
import { CliError, type Io, json, writeFileAtomic } from './io.ts';

export const TRACE_FORMATS = ['jsonl', 'lackey', 'damon-perf', 'damon-json'] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

export interface ReplayOpts {
  format?: TraceFormat;
  set?: string[];
  policy?: CollapsePolicy;
  profile?: ProfileName;
  geometry?: GeometryName;
  ram?: string;
  memoryMax?: string;
  interval?: string;
  intervalMs?: string;
  maxAccesses?: string;
  maxSnapshots?: string;
  read?: boolean;
  json?: boolean;
  output?: string;
}

function guessFormat(file: string): TraceFormat {
  if (isDirectory(file)) throw new CliError(`${file}: is a directory, not a trace`);
  if (/\.jsonl$/i.test(file)) return 'jsonl';
  if (/json_compressed$/i.test(file)) return 'damon-json';
  if (/lackey/i.test(file)) return 'lackey';
  if (/perf.*script/i.test(file)) return 'damon-perf';
  throw new CliError(
    `${file}: cannot tell the format from the name; give --format (${TRACE_FORMATS.join(', ')})`,
  );
}

function positiveInt(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new CliError(`${what}: expected a positive whole number, got ${JSON.stringify(v)}`);
  return n;
}

function size(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  try {
    return parseSize(v);
  } catch {
    throw new CliError(`${what}: expected a size like "2MiB", got ${JSON.stringify(v)}`);
  }
}

/** --ram: a size the model can hold (the geometry's page size is checked again at build). */
function ramSize(v: string): number {
  const bytes = size(v, '--ram')!;
  const why = ramSizeProblem(bytes, 4096);
  if (why !== null) throw new CliError(`--ram: ${why}`);
  return bytes;
}

/** --set path=value pairs. */
export function parseSets(list: readonly string[] = []): Array<[string, string]> {
  return list.map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CliError(`--set: expected path=value, got ${JSON.stringify(kv)}`);
    return [
      kv.slice(0, i).replace(/^\/sys\/kernel\/mm\/transparent_hugepage\//, ''),
      kv.slice(i + 1),
    ];
  });
}

export function runReplay(file: string, opts: ReplayOpts): ReplayResult {
  const format = opts.format ?? guessFormat(file);
  const header: ReplayHeader = {
    ...(opts.geometry ? { geometry: opts.geometry } : {}),
    ...(opts.profile ? { profile: opts.profile } : {}),
    ...(opts.ram ? { ram: ramSize(opts.ram) } : {}),
  };
  const pageSize = 4096;
  const ops = (onHeader: (h: ReplayHeader) => void): Iterable<ReplayOp> => {
    switch (format) {
      case 'jsonl':
        return parseJsonlTrace(fileLines(file), onHeader);
      case 'lackey':
        return parseLackey(fileLines(file), {
          intervalAccesses: positiveInt(opts.interval, '--interval'),
          intervalMs: positiveInt(opts.intervalMs, '--interval-ms'),
          pageSize,
        });
      case 'damon-perf':
      case 'damon-json':
        return damonOps(
          format === 'damon-perf' ? parseDamonPerfScript(fileLines(file)) : parseDamonJson(file),
          {
            maxAccesses: positiveInt(opts.maxAccesses, '--max-accesses'),
            maxSnapshots: positiveInt(opts.maxSnapshots, '--max-snapshots'),
            write: !opts.read,
            pageSize,
          },
        );
    }
  };
  try {
    return replay(ops, {
      source: file,
      format,
      header,
      policy: opts.policy,
      sysfs: parseSets(opts.set),
      memoryMax: size(opts.memoryMax, '--memory-max'),
    });
  } catch (e) {
    if (e instanceof InputError) throw new CliError(e.message, { cause: e });
    throw e;
  }
}

export function renderReplay(r: ReplayResult): string {
  const lines = [
    `replay ${r.input.source} (${r.input.format}): ${r.input.ops} operations, ${(r.clockMs / 1000).toFixed(1)} s simulated, policy ${r.config.policy}`,
    `accesses ${r.accesses.total} (faults ${r.accesses.faults}, OOM ${r.accesses.oom}${r.accesses.firstOomLine !== null ? ` first at line ${r.accesses.firstOomLine}` : ''}, SIGSEGV ${r.accesses.sigsegv})`,
  ];
  const pageKb = r.config.pageSize / 1024;
  for (const p of r.processes) {
    const orders = Object.entries(p.byOrderKb)
      .map(([o, kb]) => [Number(o), kb] as const)
      .sort((a, b) => b[0] - a[0])
      .map(([o, kb]) => `${formatKb((1 << o) * pageKb)}:${formatKb(kb)}`)
      .join(' ');
    lines.push(
      `process ${p.name}: Rss ${formatKb(p.rssKb)}, AnonHugePages ${formatKb(p.anonHugeKb)}, by folio size ${orders || '-'}`,
    );
  }
  const bloat = Object.entries(r.collapses.bloatKb)
    .map(([o, kb]) => `${formatKb((1 << Number(o)) * pageKb)}:${formatKb(kb)}`)
    .join(' ');
  lines.push(`collapses ${r.collapses.succeeded}, bloat ${bloat || '-'}`);
  const res = Object.entries(r.collapses.pmdResults)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  if (res) lines.push(`PMD ranges scanned: ${res}`);
  const vm = Object.entries(r.vmstat)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  if (vm) lines.push(`vmstat: ${vm}`);
  for (const m of r.memcg ?? [])
    lines.push(`memcg ${m.name}: memory.peak ${formatKb(m.peak)}, oom_kill ${m.events.oom_kill}`);
  return lines.join('\n') + '\n';
}

export function registerReplay(program: Command, io: Io): void {
  program
    .command('replay')
    .description(
      'replay a trace on the model, streaming: a thpsim JSON Lines event trace, a Valgrind lackey trace, or DAMON records (damo perf script text or json_compressed); print memory, coverage per folio size, collapses, bloat and OOMs',
    )
    .argument('<file>', 'the trace ("-" for stdin, except damon-json)')
    .addOption(
      new Option('--format <format>', 'input format (default: from the file name)').choices(
        TRACE_FORMATS,
      ),
    )
    .option(
      '--set <path=value>',
      'a sysfs write before the replay (repeatable)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .addOption(
      new Option('--policy <name>', 'mTHP collapse policy (default: v19)').choices(
        COLLAPSE_POLICIES,
      ),
    )
    .addOption(new Option('--profile <name>', 'kernel profile').choices(PROFILE_NAMES))
    .addOption(new Option('--geometry <name>', 'page-table geometry').choices(GEOMETRY_NAMES))
    .option('--ram <size>', 'physical memory (default 4GiB, or the trace header)')
    .option(
      '--memory-max <size>',
      'run the traced processes in one memory cgroup with this memory.max',
    )
    .option('--interval <n>', 'lackey: data accesses per interval (default 100000)')
    .option('--interval-ms <ms>', 'lackey: simulated ms per interval (default 100)')
    .option('--max-accesses <n>', 'DAMON: sampling intervals per aggregation interval (default 20)')
    .option('--max-snapshots <n>', 'DAMON: replay at most this many snapshots per target')
    .option('--read', 'DAMON: read the touched pages instead of writing them')
    .option('-o, --output <file>', 'also write the result as JSON to <file> (atomically)')
    .addOption(new Option('--json', 'print machine-readable JSON instead of text'))
    .addHelpText(
      'after',
      '\nExamples:\n  thpsim replay app.jsonl --set enabled=always\n  valgrind --tool=lackey --trace-mem=yes --log-file=app.lackey ./app && thpsim replay app.lackey --format lackey\n  thpsim replay perf.data.script --format damon-perf --set enabled=madvise\n  thpsim replay damon.data.json_compressed --policy v10-scaled',
    )
    .action((file: string, opts: ReplayOpts) => {
      const r = runReplay(file, opts);
      if (opts.output) writeFileAtomic(opts.output, json(r));
      io.out(opts.json ? json(r) : renderReplay(r));
    });
}
