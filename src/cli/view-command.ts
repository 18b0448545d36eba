// `thpsim view FILE...` / `thpsim view --scenario FILE`: the web viewer on 127.0.0.1.

import { basename } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { COLLAPSE_POLICIES, type CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { ViewData } from '../web/view-data.ts';
import { buildViewer, startViewServer } from '../web/server.ts';
import { collectScenario, readResult } from './report-command.ts';
import { CliError, type Io } from './io.ts';

export interface ViewOpts {
  scenario?: string;
  collapsePolicy?: CollapsePolicy;
  port?: number;
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535)
    throw new InvalidArgumentError('expected a port number (0-65535).');
  return n;
}

export const DEFAULT_VIEW_PORT = 5178;

/** Arguments that name a scenario (a YAML file or a generated workload), not a result file. */
const SCENARIO_ARG = /\.ya?ml$|^workload:/i;

/** The data the page shows: at most one run, one compare result and one check trace. */
export function viewData(io: Io, files: string[], opts: ViewOpts): ViewData {
  const data: ViewData = { title: '' };
  const names: string[] = [];
  const put = <K extends 'run' | 'compare' | 'check'>(k: K, v: ViewData[K], from: string) => {
    if (data[k] !== undefined) throw new CliError(`view: more than one ${k} given (${from})`);
    data[k] = v;
    names.push(basename(from));
  };
  const runScenario = (f: string) =>
    collectScenario(
      io,
      f,
      false,
      opts.collapsePolicy ? { collapsePolicy: opts.collapsePolicy } : {},
    );
  for (const f of files) {
    // A scenario given where a result is expected is run, as `--scenario` would run it.
    if (SCENARIO_ARG.test(f)) {
      put('run', runScenario(f), f);
      continue;
    }
    const x = readResult(f, true);
    if (x.kind === 'run') put('run', x.run, f);
    else if (x.kind === 'compare') put('compare', x.compare, f);
    else put('check', x.trace, f);
  }
  if (opts.scenario !== undefined) put('run', runScenario(opts.scenario), opts.scenario);
  if (!names.length)
    throw new CliError('view: give result files, a check trace, or --scenario <file>');
  data.title = names.join(' + ');
  return data;
}

export async function viewCommand(io: Io, files: string[], opts: ViewOpts): Promise<void> {
  const data = viewData(io, files, opts);
  const dist = await buildViewer((s) => io.err(s));
  const port = opts.port ?? DEFAULT_VIEW_PORT;
  let srv;
  try {
    srv = await startViewServer(dist, data, port);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'EADDRINUSE'
        ? `view: port ${port} on 127.0.0.1 is in use; choose another with --port (0: any free port)`
        : `view: cannot listen on 127.0.0.1:${port}: ${(e as Error).message}`,
    );
  }
  io.out(`thpsim view: ${srv.url} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void srv.close().then(() => {
        io.err('thpsim view: stopped\n');
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export function registerView(program: Command, io: Io, _setExit: (code: number) => void): void {
  program
    .command('view')
    .description(
      'serve the web viewer on 127.0.0.1: address-space map, collapse explainer, timeline, race trace',
    )
    .argument(
      '[files...]',
      'results to show: `thpsim run --metrics --json` output, `thpsim compare --json` output, a check trace or a check result with a counterexample; a scenario file (.yaml) or `workload:NAME` is run and shown',
    )
    .option(
      '--scenario <file>',
      'run this scenario (file or example name) with metrics and show it',
    )
    .addOption(
      new Option('--collapse-policy <name>', 'for a scenario run here: the mTHP collapse design').choices(
        COLLAPSE_POLICIES,
      ),
    )
    .option(
      '--port <n>',
      `port on 127.0.0.1 (default ${DEFAULT_VIEW_PORT}; 0: any free port)`,
      parsePort,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  thpsim view --scenario mthp-creep\n  thpsim view examples/mthp-creep.yaml\n  thpsim run mthp-creep --metrics --json -o run.json && thpsim view run.json\n  thpsim view run.json cmp.json test/fixtures/check-trace-r1.json',
    )
    .action((files: string[], opts: ViewOpts) => viewCommand(io, files, opts));
}
