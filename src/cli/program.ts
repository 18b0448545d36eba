// The thpsim command line (commander). Every command has --help and --json; bad input gives one
// line `thpsim: <message>` on stderr and a non-zero exit status, never a stack trace.
//
// Start-up is kept short: this file imports only commander and leaf modules. The commands other
// files register are loaded (dynamic import) only when argv names them, and the actions of the
// commands registered here import their implementation (commands.ts) when they run.

import { EXIT } from './exit-codes.ts';
import { RamSizeError } from '../mm/ram.ts';
import { readFileSync } from 'node:fs';
import { COLLAPSE_POLICIES } from '../khugepaged/mthp/thresholds.ts';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { GEOMETRY_NAMES } from '../mm/geometry.ts';
import { DEFAULT_PROFILE, PROFILE_NAMES } from '../mm/profile.ts';
import { CliError, type Io, oneLine, processIo, UnavailableError } from './io.ts';

/** The implementation of the commands registered in this file, loaded when one runs. */
const impl = () => import('./commands.ts');

type Register = (program: Command, io: Io, setExit: (code: number) => void) => void;

/** The commands registered by other files: command name → loader of its register function. */
const LAZY_COMMANDS: Record<string, () => Promise<Register>> = {
  compare: async () => (await import('./compare-command.ts')).registerCompare,
  check: async () => (await import('./check-command.ts')).registerCheck,
  report: async () => (await import('./report-command.ts')).registerReport,
  view: async () => (await import('./view-command.ts')).registerView,
  oracle: async () => (await import('./oracle-command.ts')).addOracleCommand,
  workload: async () => (await import('./workload-commands.ts')).registerWorkloadCommand,
  replay: async () => (await import('./replay-command.ts')).registerReplay,
  // One function registers all three (snapshot, thpmaps, whatif).
  snapshot: async () => (await import('./snapshot-commands.ts')).registerSnapshotCommands,
  thpmaps: async () => (await import('./snapshot-commands.ts')).registerSnapshotCommands,
  whatif: async () => (await import('./snapshot-commands.ts')).registerSnapshotCommands,
  tune: async () => (await import('./tune-command.ts')).registerTune,
  worker: async () => (await import('./worker-command.ts')).registerWorker,
};

/** The commands this file registers itself. */
const OWN_COMMANDS = ['run', 'collapse', 'validate', 'sysfs', 'geometry', 'examples'];

/** Loaded register functions by command name (what createProgram adds besides its own). */
export type LazyCommands = ReadonlyMap<string, Register>;

/**
 * The lazily registered commands argv needs: the one it names, or all of them when it names none
 * the program knows (top-level help, `help`, an unknown command and its suggestion).
 */
function commandsNeeded(argv: readonly string[]): string[] {
  const args = argv.slice(2);
  const first = args.findIndex((a) => !a.startsWith('-'));
  if (first < 0)
    return args.some((a) => a === '-V' || a === '--version') ? [] : Object.keys(LAZY_COMMANDS);
  let name = args[first];
  if (name === 'help') {
    const next = args[first + 1];
    if (next === undefined) return Object.keys(LAZY_COMMANDS);
    name = next;
  }
  if (name in LAZY_COMMANDS) return [name];
  return OWN_COMMANDS.includes(name) ? [] : Object.keys(LAZY_COMMANDS);
}

/** Load the register functions of the commands argv needs. */
export async function loadCommands(argv: readonly string[]): Promise<LazyCommands> {
  const names = commandsNeeded(argv);
  const fns = await Promise.all(names.map((n) => LAZY_COMMANDS[n]()));
  return new Map(names.map((n, i) => [n, fns[i]]));
}

function version(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function parseSeed(v: string): number {
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(Number(v)))
    throw new InvalidArgumentError('expected an integer.');
  return Number(v);
}

const profileOption = () =>
  new Option('--profile <name>', `kernel profile (default: ${DEFAULT_PROFILE})`).choices(
    PROFILE_NAMES,
  );
const geometryOption = () =>
  new Option('--geometry <name>', 'page-table geometry (default: x86-64-4k)').choices(
    GEOMETRY_NAMES,
  );
const jsonOption = () => new Option('--json', 'print machine-readable JSON instead of text');

/** The run options `run` and `collapse` share. */
function addRunOptions(c: Command): Command {
  return c
    .addOption(profileOption())
    .addOption(
      new Option('--collapse-policy <name>', 'mTHP collapse design (default: v19)').choices(
        COLLAPSE_POLICIES,
      ),
    )
    .addOption(geometryOption())
    .option('--seed <n>', "override the scenario's random seed", parseSeed)
    .option(
      '--context <name>',
      'selftest files: the collapse context to run (khugepaged or madvise; default: the first declared)',
    )
    .option(
      '--mem <type>',
      'selftest files: the memory type (anon, file or shmem; default: the first declared)',
    )
    .option(
      '--variant <name=value>',
      "a value of one of the scenario's matrix dimensions (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--check-invariants', 'check the model invariants after every event');
}

export function createProgram(
  io: Io,
  setExit: (code: number) => void,
  lazy: LazyCommands = new Map(),
): Command {
  const program = new Command('thpsim');
  const done = new Set<Register>();
  // Register the loaded commands in a fixed order (the order of `thpsim --help`), each once.
  const add = (...names: string[]) => {
    for (const n of names) {
      const f = lazy.get(n);
      if (f && !done.has(f)) {
        done.add(f);
        f(program, io, setExit);
      }
    }
  };
  program
    .description(
      "An executable model of the Linux memory manager's transparent huge pages (THP and mTHP): " +
        'faults, khugepaged, MADV_COLLAPSE, swap-out and the deferred-split shrinker.',
    )
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s, write) => write(`thpsim: ${oneLine(s.replace(/^error: /, ''))}\n`),
    });

  addRunOptions(
    program
      .command('run')
      .description(
        'run a scenario (a file, an example name, or the built-in default): the timeline, khugepaged and MADV_COLLAPSE per PMD range, and smaps-like, per-order and counter reports',
      )
      .argument(
        '[scenario]',
        'scenario file (.yaml, .yml, .json; "-" for stdin) or example name; default: the built-in scenario',
      )
      .addOption(jsonOption()),
  )
    .option('-o, --output <file>', 'also write the run result as JSON to <file> (atomically)')
    .option(
      '--trace',
      'print every tracepoint (mm_khugepaged_scan_pmd, mm_collapse_huge_page, ..., thpsim_pmd_result); with --json, include them as "trace"',
    )
    .option(
      '--metrics',
      'also collect what `thpsim report` and `thpsim view` show (coverage samples, address maps, TLB estimate, ...) as "metrics" in the JSON result',
    )
    .addHelpText(
      'after',
      '\nA progress bar appears on stderr for long runs when stderr is a terminal (never with --json).\n\nExamples:\n  thpsim run\n  thpsim run khugepaged-timeline --trace\n  thpsim run examples/fork-cow.yaml --json\n  thpsim run fault-orders --profile linux-6.18 -o out.json\n  thpsim run test/kernel-selftests/collapse_full.yaml --context madvise --mem shmem',
    )
    .action(async (scenario: string | undefined, opts) =>
      (await impl()).runCommand(io, scenario, opts),
    );

  addRunOptions(
    program
      .command('collapse')
      .description(
        'run a scenario, then MADV_COLLAPSE on a range of one of its VMAs; print the errno and the result of every PMD range (exit status 1 if MADV_COLLAPSE failed)',
      )
      .argument('<scenario>', 'scenario file (.yaml, .yml, .json; "-" for stdin) or example name')
      .requiredOption('--proc <name>', 'the process')
      .requiredOption('--vma <name>', 'the VMA, by its scenario name')
      .option('--offset <size>', 'start of the range in the VMA, e.g. 2MiB or 1pmd (default: 0)')
      .option('--length <size>', 'length of the range, e.g. 4pmd (default: to the end of the VMA)')
      .addOption(jsonOption()),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  thpsim collapse khugepaged-timeline --proc app --vma heap\n  thpsim collapse examples/fork-cow.yaml --proc parent --vma heap --length 2pmd --json',
    )
    .action(async (scenario: string, opts) =>
      setExit((await impl()).collapseCommand(io, scenario, opts)),
    );

  add('compare', 'check', 'report', 'view');

  program
    .command('validate')
    .description(
      'check scenario files against the schema and the timeline rules, without running them',
    )
    .argument('<scenario...>', 'scenario files or example names')
    .addOption(jsonOption())
    .action(async (files: string[], opts: { json?: boolean }) =>
      setExit((await impl()).validateCommand(io, files, opts)),
    );

  program
    .command('sysfs')
    .description('print the default /sys/kernel/mm/transparent_hugepage tree, or one file of it')
    .argument(
      '[path]',
      'a file relative to /sys/kernel/mm/transparent_hugepage, e.g. hugepages-2048kB/enabled',
    )
    .addOption(jsonOption())
    .addOption(profileOption())
    .addOption(geometryOption())
    .action(async (path: string | undefined, opts) => (await impl()).sysfsCommand(io, path, opts));

  program
    .command('geometry')
    .description('print the page-table geometries (page size, levels, PMD size, mTHP sizes)')
    .addArgument(new Argument('[name]', 'one geometry').choices(GEOMETRY_NAMES))
    .addOption(jsonOption())
    .action(async (name: string | undefined, opts: { json?: boolean }) =>
      (await impl()).geometryCommand(io, name, opts),
    );

  program
    .command('examples')
    .description('list the example scenarios in examples/ with their descriptions')
    .addOption(jsonOption())
    .action(async (opts: { json?: boolean }) => (await impl()).examplesCommand(io, opts));

  add('oracle', 'workload', 'replay', 'snapshot', 'thpmaps', 'whatif', 'tune', 'worker');

  return program;
}

/** Run the CLI on argv (as process.argv); returns the exit status. */
export async function runCli(argv: readonly string[], io: Io = processIo): Promise<number> {
  let code = 0;
  const program = createProgram(io, (c) => (code = c), await loadCommands(argv));
  try {
    await program.parseAsync([...argv]);
    return code;
  } catch (e) {
    // commander has printed its own line for a usage error; --help and --version exit 0.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    const { ScenarioError } = await import('../scenario/errors.ts');
    if (e instanceof ScenarioError || e instanceof CliError || e instanceof RamSizeError) {
      io.err(`thpsim: ${oneLine(e.message)}\n`);
      return e instanceof UnavailableError ? EXIT.unavailable : EXIT.badInput;
    }
    if (process.env.THPSIM_DEBUG && e instanceof Error && e.stack) io.err(e.stack + '\n');
    io.err(`thpsim: internal error: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
    return EXIT.internal;
  }
}
