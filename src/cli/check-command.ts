// `thpsim check`: explore the interleavings of a checker case and print the verdict, with the
// shortest counterexample found as numbered steps, and which of the case's `sometimes` (its race
// windows) were reached. Exit status: 0 verified within the bounds, 1 counterexample or vacuous
// (a race window never reached), 2 bad input.

import { existsSync } from 'node:fs';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { loadCaseFile } from '../check/case-file.ts';
import { CASES, caseById } from '../check/cases/index.ts';
import {
  type CheckCase,
  type CheckReport,
  type Reduction,
  UNMODELLED,
  WALKERS,
  checkTrace,
  explore,
  formatTrace,
} from '../check/index.ts';
import { KERNEL_BUG_TEXT } from '../mm/bugs.ts';
import { decodeSchedule, encodeSchedule } from '../check/schedule.ts';
import { type Io, json, oneLine, writeFileAtomic } from './io.ts';

export interface CheckOpts {
  json?: boolean;
  all?: boolean;
  list?: boolean;
  walkers?: boolean;
  random?: number;
  seed?: number;
  maxPreemptions?: number;
  maxExecutions?: number;
  replay?: string;
  sleepSets?: boolean;
  reduction?: Reduction;
  output?: string;
}

function positive(max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0 || n > max)
      throw new InvalidArgumentError(`expected an integer in 0..${max}.`);
    return n;
  };
}

/** The JSON form of one case's result; `counterexample` is the viewer's CheckTrace. */
export function checkResultJson(c: CheckCase, r: CheckReport) {
  const { counterexample, sometimes, ...rest } = r;
  return {
    format: 'thpsim-check' as const,
    version: 1 as const,
    ...rest,
    sometimes: sometimes.map(({ schedule, ...s }) =>
      schedule ? { ...s, schedule: encodeSchedule(schedule) } : s,
    ),
    description: c.description,
    expected: c.expect,
    asExpected: asExpected(c, r),
    ...(counterexample
      ? {
          schedule: encodeSchedule(counterexample.schedule),
          preemptions: counterexample.preemptions,
          counterexample: checkTrace(
            c.id,
            c.threads.map((t) => t.name),
            counterexample.steps,
            counterexample.property,
            counterexample.message,
            counterexample.violationStep,
          ),
        }
      : {}),
  };
}

function asExpected(c: CheckCase, r: CheckReport): boolean {
  if (c.expect === 'verified') return r.ok;
  return !!r.counterexample && (c.expect as readonly string[]).includes(r.counterexample.property);
}

function stats(r: CheckReport): string {
  const ratio = Math.log10(Math.max(1, r.executions)) - r.naiveLog10;
  return `${r.executions.toLocaleString('en-US')} schedules, ${r.events.toLocaleString('en-US')} steps executed, ${(r.ms / 1000).toFixed(2)} s; bounds: ${r.bounds.preemptions} preemptions, ${r.bounds.maxSteps} steps${r.incomplete ? ' (NOT exhausted: a bound on executions or steps was hit)' : ''}; naive interleavings ~1e${r.naiveLog10.toFixed(1)}, explored/naive ~1e${ratio.toFixed(1)}`;
}

/** One line per `sometimes`: reached (with the schedule that first did) or not. */
function renderSometimes(c: CheckCase, r: CheckReport): string[] {
  return r.sometimes.map((s) =>
    s.reached
      ? `  sometimes "${s.name}" reached: ${s.text}${s.schedule ? ` (first by: thpsim check ${replayName(c)} --replay ${encodeSchedule(s.schedule)})` : ''}`
      : `  sometimes "${s.name}" NOT reached: ${s.text}`,
  );
}

/** `thpsim check --walkers`: the vocabulary of case files and the matrix, and the bug switches. */
function walkersDoc() {
  return {
    format: 'thpsim-check-walkers' as const,
    version: 1 as const,
    walkers: WALKERS.map((w) => ({
      name: w.name,
      kernel: w.kernel,
      summary: w.summary,
      fields: Object.keys(w.args.shape),
      steps: Object.keys(w.steps),
    })),
    notYetModelled: UNMODELLED.map((u) => ({ ...u })),
    bugs: Object.entries(KERNEL_BUG_TEXT).map(([name, text]) => ({ name, text })),
  };
}

function renderWalkers(): string {
  const d = walkersDoc();
  const out = ['walkers (threads: { walker: NAME, ...fields }):'];
  for (const w of d.walkers) {
    out.push(`  ${w.name.padEnd(17)}${w.kernel.padEnd(24)}fields: ${w.fields.join(', ') || '-'}`);
    out.push(`    ${w.summary}`);
  }
  out.push('', 'not yet modelled:');
  for (const u of d.notYetModelled) out.push(`  ${u.name} (${u.kernel}): ${u.reason}`);
  out.push('', 'bug switches (world.bugs):');
  for (const b of d.bugs) out.push(`  ${b.name}: ${b.text}`);
  return out.join('\n') + '\n';
}

/** How a replay hint names a case: its id, or the file it came from. */
const replayNames = new WeakMap<CheckCase, string>();

function replayName(c: CheckCase): string {
  return replayNames.get(c) ?? c.id;
}

function render(c: CheckCase, r: CheckReport): string {
  const out = [`${c.id}: ${c.title}`, `  ${c.description}`];
  if (r.verdict === 'verified') {
    out.push(`verified within bounds: ${stats(r)}`, ...renderSometimes(c, r));
    return out.join('\n') + '\n';
  }
  if (r.verdict === 'vacuous') {
    out.push(
      `vacuous: no counterexample, but a race window was never reached, so nothing was shown: ${stats(r)}`,
      ...renderSometimes(c, r),
    );
    return out.join('\n') + '\n';
  }
  const cx = r.counterexample!;
  out.push(
    `counterexample: "${cx.property}" violated (${cx.text})`,
    `  ${cx.message}`,
    `  found after ${stats(r)}; ${cx.steps.length} steps, ${cx.preemptions} preemptions`,
    `  replay: thpsim check ${replayName(c)} --replay ${encodeSchedule(cx.schedule)}`,
    '',
    formatTrace(
      c.threads.map((t) => t.name),
      cx.steps,
      cx.violationStep,
    ),
  );
  return out.join('\n') + '\n';
}

function progress(io: Io, enabled: boolean) {
  if (!enabled || !io.progress) return { onProgress: undefined, stop: () => {} };
  let bar: cliProgress.SingleBar | undefined;
  return {
    onProgress: (n: number) => {
      if (!bar) {
        bar = new cliProgress.SingleBar(
          {
            stream: io.progress,
            format: 'thpsim check | {value} schedules explored',
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(0, 0);
      }
      bar.update(n);
    },
    stop: () => bar?.stop(),
  };
}

export function checkCommand(io: Io, ids: string[], o: CheckOpts): number {
  if (o.walkers) {
    io.out(o.json ? json(walkersDoc()) : renderWalkers());
    return 0;
  }
  if (o.list) {
    if (o.json)
      io.out(
        json(CASES.map((c) => ({ id: c.id, title: c.title, expect: c.expect, rules: c.rules }))),
      );
    else {
      const t = new Table({ head: ['case', 'expected', 'title'], style: { head: [], border: [] } });
      for (const c of CASES)
        t.push([c.id, c.expect === 'verified' ? 'verified' : c.expect.join('|'), c.title]);
      io.out(t.toString() + '\n');
    }
    return 0;
  }
  const cases: CheckCase[] = [];
  for (const id of o.all ? CASES.map((c) => c.id) : ids) {
    let c = caseById(id);
    if (!c && (existsSync(id) || /\.(ya?ml|json)$/i.test(id))) {
      // A case file (docs/page-table-walkers.md describes the format).
      try {
        c = loadCaseFile(id);
        replayNames.set(c, /^[\w./-]+$/.test(id) ? id : `'${id.replace(/'/g, "'\\''")}'`);
      } catch (e) {
        io.err(`thpsim: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
        return 2;
      }
    }
    if (!c) {
      io.err(
        `thpsim: ${oneLine(`no checker case "${id}" and no such file (thpsim check --list shows the cases)`)}\n`,
      );
      return 2;
    }
    cases.push(c);
  }
  if (cases.length === 0) {
    io.err('thpsim: name a case (thpsim check --list), or use --all\n');
    return 2;
  }
  return runChecks(io, cases, o);
}

/** Explore the given cases and print their verdicts; the exit status as checkCommand's. */
export function runChecks(io: Io, cases: readonly CheckCase[], o: CheckOpts): number {
  let replay: number[] | undefined;
  if (o.replay !== undefined) {
    if (cases.length !== 1) {
      io.err('thpsim: --replay needs exactly one case\n');
      return 2;
    }
    const d = decodeSchedule(o.replay, cases[0].threads.length);
    if (typeof d === 'string') {
      io.err(`thpsim: --replay: ${d}\n`);
      return 2;
    }
    replay = d;
  }
  const results: Array<ReturnType<typeof checkResultJson>> = [];
  const texts: string[] = [];
  let failed = false;
  for (const c of cases) {
    const bar = progress(io, !o.json);
    let r: CheckReport;
    try {
      r = explore(c, {
        ...(o.random !== undefined ? { mode: 'random' as const, iterations: o.random } : {}),
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
        ...(o.maxPreemptions !== undefined ? { maxPreemptions: o.maxPreemptions } : {}),
        ...(o.maxExecutions !== undefined ? { maxExecutions: o.maxExecutions } : {}),
        ...(replay ? { replay } : {}),
        ...(o.reduction ? { reduction: o.reduction } : {}),
        sleepSets: o.sleepSets ?? false,
        onProgress: bar.onProgress,
      });
    } catch (e) {
      bar.stop();
      io.err(`thpsim: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
      return 2;
    }
    bar.stop();
    if (!r.ok) failed = true;
    results.push(checkResultJson(c, r));
    texts.push(render(c, r));
  }
  const doc =
    results.length === 1 ? results[0] : { format: 'thpsim-check-list', version: 1, results };
  if (o.output) writeFileAtomic(o.output, json(doc));
  io.out(o.json ? json(doc) : texts.join('\n'));
  return failed ? 1 : 0;
}

export function registerCheck(program: Command, io: Io, setExit: (n: number) => void): void {
  program
    .command('check')
    .description(
      'explore every interleaving (within bounds) of a checker case: walkers and collapse racing on shared page tables; prints "verified" (with the race windows reached) or the shortest counterexample as numbered steps (exit 0 verified, 1 counterexample or vacuous: a race window never reached, 2 bad input)',
    )
    .argument('[case...]', 'case ids (thpsim check --list) or case files (.yaml, .yml, .json)')
    .option('--list', 'list the cases')
    .option('--all', 'run every case')
    .option('--walkers', 'list the walkers case files can name (and the bug switches)')
    .addOption(
      new Option('--random <n>', 'sample n random schedules instead of exploring').argParser(
        positive(10_000_000),
      ),
    )
    .addOption(new Option('--seed <n>', 'seed for --random').argParser(positive(0xffffffff)))
    .addOption(
      new Option('--max-preemptions <n>', "preemption bound (default: the case's)").argParser(
        positive(10),
      ),
    )
    .addOption(
      new Option('--max-executions <n>', 'stop after n schedules (default 200000)').argParser(
        positive(100_000_000),
      ),
    )
    .option('--replay <schedule>', 're-run one schedule, as printed with a counterexample')
    .addOption(
      new Option(
        '--reduction <kind>',
        'bounded-sleep (default): sleep sets corrected for the preemption bound, sound; none: every schedule; sleep: plain sleep sets (can miss bugs under the bound)',
      ).choices(['bounded-sleep', 'none', 'sleep']),
    )
    .option('--sleep-sets', 'the same as --reduction sleep (can miss bugs under the bound)')
    .option('-o, --output <file>', 'also write the JSON result to <file> (atomically)')
    .option('--json', "print machine-readable JSON (counterexample in the viewer's format)")
    .addHelpText(
      'after',
      '\nExamples:\n  thpsim check --list\n  thpsim check --walkers\n  thpsim check R1-v5\n  thpsim check R1-v19\n  thpsim check pte-level-isolate-before-clear --json -o trace.json\n  thpsim check --all',
    )
    .action((ids: string[], o: CheckOpts) => setExit(checkCommand(io, ids, o)));
}
