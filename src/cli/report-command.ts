// `thpsim report RUN.json`: tables on stdout, and SVG and PNG plots in a directory (coverage over
// time, bloat, fragmentation, the PMD heat map). `--scenario` runs a scenario with metrics first.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type RunWithMetrics, runWithMetrics } from '../report/collect.ts';
import { type ViewInput, parseResult } from '../report/input.ts';
import { allPlots, svgToPng } from '../report/plots.ts';
import { renderCompareReport, renderRunReport, runReportJson } from '../report/report-text.ts';
import { type RunOpts, progressBar, scenarioFor } from './commands.ts';
import { fileErrorText } from '../scenario/errors.ts';
import { INPUT_LIMITS, readBoundedText } from '../workload/read-bounded.ts';
import { CliError, type Io, json, writeFileAtomic } from './io.ts';

export interface ReportOpts {
  scenario?: string;
  outDir?: string;
  plots?: boolean;
  format?: Array<'svg' | 'png'>;
  json?: boolean;
  heatmap?: string;
}

/** Read and validate a result file (run, compare; with allowCheck also check traces). */
export function readResult(file: string, allowCheck: boolean): ViewInput {
  let text: string;
  try {
    text = readBoundedText(file, INPUT_LIMITS.result);
  } catch (e) {
    throw new CliError(`${file}: cannot read: ${fileErrorText(e)}`);
  }
  try {
    return parseResult(text, allowCheck);
  } catch (e) {
    throw new CliError(`${file}: ${(e as Error).message}`);
  }
}

/** Run a scenario with metrics, with a progress bar on a terminal. */
export function collectScenario(
  io: Io,
  arg: string,
  quiet: boolean,
  opts: RunOpts = {},
): RunWithMetrics {
  const { scenario, source } = scenarioFor(arg, opts);
  const bar = progressBar(io, !quiet);
  try {
    return runWithMetrics(scenario, { source, onProgress: bar.onProgress, keepTrace: false });
  } finally {
    bar.stop();
  }
}

function parseFormats(v: string): Array<'svg' | 'png'> {
  const xs = v.split(',').map((x) => x.trim());
  for (const x of xs)
    if (x !== 'svg' && x !== 'png') throw new InvalidArgumentError(`"${x}" is not svg or png.`);
  return [...new Set(xs)] as Array<'svg' | 'png'>;
}

export function reportCommand(io: Io, file: string | undefined, opts: ReportOpts): void {
  if ((file === undefined) === (opts.scenario === undefined))
    throw new CliError('report: give a result file or --scenario <file>, not both and not neither');
  const input: ViewInput =
    file !== undefined
      ? readResult(file, false)
      : { kind: 'run', run: collectScenario(io, opts.scenario!, opts.json === true) };
  if (input.kind === 'check')
    throw new CliError('report: a check trace has no report; use thpsim view');
  if (opts.heatmap !== undefined && input.kind === 'run') {
    const labels = input.run.metrics?.maps.map((m) => m.label) ?? [];
    if (!labels.includes(opts.heatmap))
      throw new CliError(
        `--heatmap: no snapshot "${opts.heatmap}" (have: ${labels.join(', ') || 'none; run with --metrics'})`,
      );
  }
  const result = input.kind === 'run' ? input.run : input.compare;
  // Render everything before writing anything.
  const formats = opts.format ?? ['svg', 'png'];
  const files: Array<{ path: string; data: string | Buffer }> = [];
  const outDir = opts.outDir ?? 'thpsim-report';
  if (opts.plots !== false) {
    for (const p of allPlots(result, opts.heatmap)) {
      if (formats.includes('svg')) files.push({ path: join(outDir, `${p.name}.svg`), data: p.svg });
      if (formats.includes('png'))
        files.push({ path: join(outDir, `${p.name}.png`), data: svgToPng(p.svg) });
    }
  }
  if (files.length) {
    try {
      mkdirSync(outDir, { recursive: true });
    } catch (e) {
      throw new CliError(`cannot create ${outDir}: ${(e as Error).message}`);
    }
    for (const f of files) writeFileAtomic(f.path, f.data);
  }
  const written = files.map((f) => f.path);
  if (opts.json) {
    const body =
      input.kind === 'run'
        ? runReportJson(input.run)
        : {
            format: 'thpsim-report',
            version: 1,
            scenario: input.compare.scenario,
            runs: input.compare.runs,
          };
    io.out(json({ ...(body as object), files: written }));
    return;
  }
  io.out(
    input.kind === 'run'
      ? renderRunReport(input.run, { color: io.color })
      : renderCompareReport(input.compare, { color: io.color }),
  );
  if (written.length) io.out(`\nPlots: ${written.join(', ')}\n`);
}

export function registerReport(program: Command, io: Io): void {
  program
    .command('report')
    .description(
      'print metrics of a run or compare result (coverage, bloat, fallbacks, collapse latency, creep, TLB estimate, buddyinfo) and write SVG and PNG plots',
    )
    .argument(
      '[file]',
      'a result of `thpsim run --json` (best with --metrics) or `thpsim compare --json`; "-" for stdin',
    )
    .option(
      '--scenario <file>',
      'run this scenario (file or example name) with metrics instead of reading a result',
    )
    .option('-d, --out-dir <dir>', 'where the plots go (default: thpsim-report)')
    .addOption(
      new Option('--format <list>', 'plot formats: svg,png (default both)').argParser(parseFormats),
    )
    .option('--no-plots', 'print the tables only')
    .option(
      '--heatmap <label>',
      "the heat map's snapshot: a report's label (default: the end of the run)",
    )
    .addOption(new Option('--json', 'print the metrics as JSON instead of tables'))
    .addHelpText(
      'after',
      '\nExamples:\n  thpsim run mthp-creep --metrics --json -o creep.json && thpsim report creep.json -d plots\n  thpsim report --scenario khugepaged-timeline\n  thpsim compare mthp-creep --json -o cmp.json && thpsim report cmp.json',
    )
    .action((file: string | undefined, opts: ReportOpts) => reportCommand(io, file, opts));
}
