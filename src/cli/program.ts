// The thpsim command line (commander). Every command has --help and --json; bad input gives one
// line `thpsim: <message>` on stderr and a non-zero exit status, never a stack trace.

import { EXIT } from './exit-codes.ts';
import { RamSizeError } from '../mm/ram.ts';
import { readFileSync } from 'node:fs';
import { COLLAPSE_POLICIES } from '../khugepaged/mthp/thresholds.ts';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { GEOMETRY_NAMES } from '../mm/geometry.ts';
import { DEFAULT_PROFILE, PROFILE_NAMES } from '../mm/profile.ts';
import { ScenarioError } from '../scenario/errors.ts';
import {
  collapseCommand,
  examplesCommand,
  geometryCommand,
  runCommand,
  sysfsCommand,
  validateCommand,
} from './commands.ts';
import { registerCheck } from './check-command.ts';
import { registerCompare } from './compare-command.ts';
import { registerReport } from './report-command.ts';
import { registerTune } from './tune-command.ts';
import { registerWorker } from './worker-command.ts';
import { registerView } from './view-command.ts';
import { CliError, type Io, oneLine, processIo, UnavailableError } from './io.ts';
import { addOracleCommand } from './oracle-command.ts';
import { registerWorkloadCommands } from './workload-commands.ts';

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

export function createProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('thpsim');
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
    .action((scenario: string | undefined, opts) => runCommand(io, scenario, opts));

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
    .action((scenario: string, opts) => setExit(collapseCommand(io, scenario, opts)));

  registerCompare(program, io);
  registerCheck(program, io, setExit);
  registerReport(program, io);
  registerView(program, io, setExit);

  program
    .command('validate')
    .description(
      'check scenario files against the schema and the timeline rules, without running them',
    )
    .argument('<scenario...>', 'scenario files or example names')
    .addOption(jsonOption())
    .action((files: string[], opts: { json?: boolean }) =>
      setExit(validateCommand(io, files, opts)),
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
    .action((path: string | undefined, opts) => sysfsCommand(io, path, opts));

  program
    .command('geometry')
    .description('print the page-table geometries (page size, levels, PMD size, mTHP sizes)')
    .addArgument(new Argument('[name]', 'one geometry').choices(GEOMETRY_NAMES))
    .addOption(jsonOption())
    .action((name: string | undefined, opts: { json?: boolean }) =>
      geometryCommand(io, name, opts),
    );

  program
    .command('examples')
    .description('list the example scenarios in examples/ with their descriptions')
    .addOption(jsonOption())
    .action((opts: { json?: boolean }) => examplesCommand(io, opts));

  addOracleCommand(program, io, setExit);
  registerWorkloadCommands(program, io);
  registerTune(program, io);
  registerWorker(program, io);

  return program;
}

/** Run the CLI on argv (as process.argv); returns the exit status. */
export async function runCli(argv: readonly string[], io: Io = processIo): Promise<number> {
  let code = 0;
  const program = createProgram(io, (c) => (code = c));
  try {
    await program.parseAsync([...argv]);
    return code;
  } catch (e) {
    // commander has printed its own line for a usage error; --help and --version exit 0.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    if (e instanceof ScenarioError || e instanceof CliError || e instanceof RamSizeError) {
      io.err(`thpsim: ${oneLine(e.message)}\n`);
      return e instanceof UnavailableError ? EXIT.unavailable : EXIT.badInput;
    }
    if (process.env.THPSIM_DEBUG && e instanceof Error && e.stack) io.err(e.stack + '\n');
    io.err(`thpsim: internal error: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
    return EXIT.internal;
  }
}
