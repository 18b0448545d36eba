// thpsim workload, replay, snapshot, thpmaps and whatif: real-life inputs for the model
// (src/workload/, src/snapshot/).

import { type Command, Option } from 'commander';
import { stringify } from 'yaml';
import { COLLAPSE_POLICIES, type CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import { PROFILE_NAMES, type ProfileName } from '../mm/profile.ts';
import { runScenario } from '../scenario/run.ts';
import { formatKb } from '../scenario/size.ts';
import {
  GENERATORS,
  WorkloadError,
  generate,
  generatorByName,
  parseAssignments,
} from '../workload/generators.ts';
import { type WorkloadOutcome, workloadOutcome } from '../workload/outcome.ts';
import { buildWorkload } from '../workload/scenario.ts';
import { CliError, type Io, json, writeFileAtomic } from './io.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function parsePolicyList(v: string): CollapsePolicy[] {
  const out: CollapsePolicy[] = [];
  for (const p of v.split(',').map((x) => x.trim())) {
    if (!(COLLAPSE_POLICIES as readonly string[]).includes(p))
      throw new CliError(
        `--policies: unknown policy "${p}" (policies: ${COLLAPSE_POLICIES.join(', ')})`,
      );
    out.push(p as CollapsePolicy);
  }
  return out;
}

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof WorkloadError) throw new CliError(e.message, { cause: e });
    throw e;
  }
}

interface WorkloadOpts {
  param?: string[];
  sweep?: string;
  policies?: string;
  profile?: ProfileName;
  emit?: boolean;
  json?: boolean;
  output?: string;
}

function listWorkloads(io: Io, asJson: boolean): void {
  if (asJson) {
    io.out(
      json(
        GENERATORS.map((g) => ({ name: g.name, summary: g.summary, doc: g.doc, params: g.params })),
      ),
    );
    return;
  }
  for (const g of GENERATORS) {
    io.out(`${g.name}: ${g.summary}\n`);
    io.out(`  ${g.params.map((p) => `${p.name}=${p.default}`).join(' ')}\n`);
  }
}

function kbList(rec: Record<number, number>, pageKb: number): string {
  const parts = Object.entries(rec)
    .map(([o, kb]) => [Number(o), kb] as const)
    .filter(([, kb]) => kb > 0)
    .sort((a, b) => b[0] - a[0])
    .map(([o, kb]) => `${formatKb((1 << o) * pageKb)}:${formatKb(kb)}`);
  return parts.length ? parts.join(' ') : '-';
}

export function renderOutcomes(name: string, outs: WorkloadOutcome[], pageKb: number): string {
  const lines = [`workload ${name}`];
  for (const o of outs) {
    lines.push(
      `  ${o.label ? `${o.label}, ` : ''}policy ${o.policy}: ${o.oom ? `OOM (first at ${o.oomEvent})` : 'no OOM'}`,
      `    Rss ${formatKb(o.rssKb)}, AnonHugePages ${formatKb(o.anonHugeKb)}; by folio size ${kbList(o.byOrderKb, pageKb)}`,
      `    collapses ${o.collapses}, bloat ${kbList(o.bloatKb, pageKb)}`,
      `    thp_fault_alloc ${o.vmstat.thp_fault_alloc}, thp_fault_fallback ${o.vmstat.thp_fault_fallback} (charge ${o.vmstat.thp_fault_fallback_charge}), thp_split_page ${o.vmstat.thp_split_page} (underused ${o.vmstat.thp_underused_split_page})`,
    );
    for (const m of o.memcg)
      lines.push(
        `    memcg ${m.name}: memory.peak ${formatKb(m.peakKb)} of memory.max ${m.maxKb === null ? 'max' : formatKb(m.maxKb)}, oom_kill ${m.oom_kill}`,
      );
  }
  return lines.join('\n') + '\n';
}

function workloadCommand(io: Io, name: string | undefined, opts: WorkloadOpts): void {
  if (name === undefined) return listWorkloads(io, opts.json === true);
  const params = wrap(() => parseAssignments(opts.param ?? []));
  if (opts.emit) {
    const input = wrap(() => generate(name, params));
    buildWorkload(name, params); // validate before printing
    const text = opts.json ? json(input) : stringify(input, { lineWidth: 0 });
    if (opts.output) writeFileAtomic(opts.output, text);
    else io.out(text);
    return;
  }
  wrap(() => generatorByName(name));
  // --sweep name=v1,v2: one run per value (and per policy).
  let sweep: { name: string; values: string[] } | null = null;
  if (opts.sweep !== undefined) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(opts.sweep);
    if (!m)
      throw new CliError(`--sweep: expected name=v1,v2,..., got ${JSON.stringify(opts.sweep)}`);
    sweep = { name: m[1], values: m[2].split(',').map((v) => v.trim()) };
  }
  const variants = sweep ? sweep.values.map((v) => ({ ...params, [sweep.name]: v })) : [params];
  const scenarios = variants.map((p) => ({ p, scenario: buildWorkload(name, p) }));
  const policies = opts.policies
    ? parsePolicyList(opts.policies)
    : [scenarios[0].scenario.collapse_policy ?? 'v19'];
  const outs: WorkloadOutcome[] = [];
  let pageKb = 4;
  for (const { p, scenario } of scenarios)
    for (const policy of policies) {
      const r = runScenario(
        {
          ...scenario,
          collapse_policy: policy,
          ...(opts.profile ? { profile: opts.profile } : {}),
        },
        { source: `workload:${name}` },
      );
      pageKb = r.config.pageSize / 1024;
      outs.push({
        ...workloadOutcome(r),
        ...(sweep ? { label: `${sweep.name}=${p[sweep.name]}` } : {}),
      });
    }
  const result = { format: 'thpsim-workload', version: 1, workload: name, params, runs: outs };
  if (opts.output) writeFileAtomic(opts.output, json(result));
  io.out(opts.json ? json(result) : renderOutcomes(name, outs, pageKb));
}

export function registerWorkloadCommand(program: Command, io: Io): void {
  program
    .command('workload')
    .description(
      'list the built-in workload generators, or run one (once per --policies entry) and print whether it ran out of memory, its memory, coverage per folio size and bloat; --emit prints the generated scenario instead',
    )
    .argument('[name]', `a workload: ${GENERATORS.map((g) => g.name).join(', ')}`)
    .option('-p, --param <name=value>', 'a parameter of the workload (repeatable)', collect)
    .option('--policies <list>', 'comma-separated collapse policies to run it under (default: v19)')
    .option(
      '--sweep <name=values>',
      'run once per comma-separated value of one parameter, e.g. max_ptes_none=0,470,471,511',
    )
    .addOption(new Option('--profile <name>', 'kernel profile').choices(PROFILE_NAMES))
    .option('--emit', 'print the generated scenario (YAML; JSON with --json) instead of running it')
    .option('-o, --output <file>', 'also write the result (or with --emit the scenario) to <file>')
    .addOption(new Option('--json', 'print machine-readable JSON instead of text'))
    .addHelpText(
      'after',
      '\nA workload also runs wherever a scenario file goes: thpsim run workload:stride:max_ptes_none=470\n\nExamples:\n  thpsim workload\n  thpsim workload stride -p max_ptes_none=470\n  thpsim workload stride --sweep max_ptes_none=0,409,470,471,511\n  thpsim workload redis-3phase --policies v19,v10-scaled -p mthp=64kB\n  thpsim workload frag-100 --emit > frag.yaml\n  thpsim compare workload:sparse-heap:mthp=64kB --policies v19,v10-scaled',
    )
    .action((name: string | undefined, opts: WorkloadOpts) => workloadCommand(io, name, opts));
}
