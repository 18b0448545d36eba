// `thpsim report` and `thpsim run --metrics` through the CLI: tables, the SVG and PNG plots (their
// size and the colour of known PMDs in the heat map), and the error contract.

import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunWithMetrics } from '../src/report/collect.ts';
import { COLOR_PMD, orderColor } from '../src/report/model.ts';
import { HEAT_CELL, heatmapLayout } from '../src/report/plots.ts';
import { pixel, readPng } from './support/png.ts';
import { oneLineError, thpsim } from './support/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thpsim-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const runFile = join(tmp, 'run.json');
const plots = join(tmp, 'plots');

describe('thpsim report', () => {
  it('run --metrics, then report: tables and four plots as SVG and PNG', () => {
    const r1 = thpsim([
      'run',
      'mthp-creep',
      '--collapse-policy',
      'v10-scaled',
      '--metrics',
      '--json',
      '-o',
      runFile,
    ]);
    expect(r1.status).toBe(0);
    const run = JSON.parse(readFileSync(runFile, 'utf8')) as RunWithMetrics;
    expect(run.metrics.format).toBe('thpsim-metrics');
    const r = thpsim(['report', runFile, '-d', plots, '--heatmap', 'scan-1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Per order \(at the end\)/);
    expect(r.stdout).toMatch(`Creep events: ${run.metrics.creep.length}`);
    expect(r.stdout).toMatch(/TLB \(an estimate, not a measurement\)/);
    expect(r.stdout).toMatch(/Assumptions: fully associative LRU/);
    expect(r.stdout).toMatch(/Collapse latency \(estimate\): 11 collapses/);
    expect(readdirSync(plots).sort()).toEqual(
      ['bloat', 'coverage', 'fragmentation', 'heatmap']
        .flatMap((n) => [`${n}.png`, `${n}.svg`])
        .sort(),
    );
    for (const n of ['bloat', 'coverage', 'fragmentation', 'heatmap']) {
      const svg = readFileSync(join(plots, `${n}.svg`), 'utf8');
      const png = readPng(readFileSync(join(plots, `${n}.png`)));
      const m = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg)!;
      expect([png.width, png.height], n).toEqual([Number(m[1]), Number(m[2])]);
      expect(png.width).toBeGreaterThanOrEqual(720);
    }

    // Heat map at scan-1: every PMD cell has its order's colour.
    const map = run.metrics.maps.find((x) => x.label === 'scan-1')!;
    const heat = readPng(readFileSync(join(plots, 'heatmap.png')));
    const { cells } = heatmapLayout(map);
    const heap = map.vmas.findIndex((v) => v.name === 'heap');
    const heapCells = cells.filter((c) => c.vma === heap);
    expect(heapCells).toHaveLength(4);
    expect(heapCells.map((c) => c.order)).toEqual(map.vmas[heap].pmds.map((p) => p.order));
    // After one scan the third PMD range (NR/2 pages written) is a PMD THP.
    expect(heapCells[2].order).toBe(9);
    for (const c of heapCells)
      expect(pixel(heat, c.x + HEAT_CELL / 2, c.y + HEAT_CELL / 2), `PMD ${c.pmd}`).toBe(
        orderColor(c.order, 9),
      );
    expect(pixel(heat, heapCells[2].x + 3, heapCells[2].y + 3)).toBe(COLOR_PMD);

    // Coverage: the PMD colour fills a good part of the stacked areas.
    const cov = readPng(readFileSync(join(plots, 'coverage.png')));
    let red = 0;
    for (let y = 0; y < cov.height; y++)
      for (let x = 0; x < cov.width; x++) if (pixel(cov, x, y) === COLOR_PMD) red++;
    expect(red).toBeGreaterThan(10_000);
  });

  it('--scenario --json --no-plots: the metrics as JSON, no files', () => {
    const dir = join(tmp, 'none');
    const r = thpsim(['report', '--scenario', 'mthp-creep', '--json', '--no-plots', '-d', dir]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as {
      format: string;
      tlb: { accesses: number; assumptions: string[] };
      creep: unknown[];
      files: string[];
    };
    expect(j.format).toBe('thpsim-report');
    expect(j.tlb.accesses).toBe(1 + 64 + 256 + 8);
    expect(j.tlb.assumptions.length).toBeGreaterThan(3);
    expect(j.creep).toEqual([]);
    expect(j.files).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it('a compare result: coverage and bloat per policy', () => {
    const cmp = join(tmp, 'cmp.json');
    expect(
      thpsim(['compare', 'mthp-creep', '--policies', 'v19,v10-scaled', '--json', '-o', cmp]).status,
    ).toBe(0);
    const dir = join(tmp, 'cmp-plots');
    const r = thpsim(['report', cmp, '-d', dir, '--format', 'png']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/v10-scaled/);
    expect(readdirSync(dir).sort()).toEqual(['bloat.png', 'coverage.png']);
    expect(readPng(readFileSync(join(dir, 'bloat.png'))).width).toBe(720);
  });

  it('bad input: one line, exit 2, no plots written', () => {
    const dir = join(tmp, 'bad');
    expect(oneLineError(thpsim(['report', join(tmp, 'missing.json'), '-d', dir]), 2)).toMatch(
      /missing\.json: cannot read: no such file \(ENOENT\)/,
    );
    const notRun = join(tmp, 'x.json');
    writeFileSync(notRun, '{"format":"something"}');
    expect(oneLineError(thpsim(['report', notRun, '-d', dir]), 2)).toMatch(
      /x\.json: format is "something", expected "thpsim-run" or "thpsim-compare"/,
    );
    writeFileSync(notRun, '{"format":"thpsim-run","version":1,"scenario":{"name":"x"}}');
    expect(oneLineError(thpsim(['report', notRun, '-d', dir]), 2)).toMatch(
      /not a valid run result: config/,
    );
    expect(oneLineError(thpsim(['report', runFile, '-d', dir, '--heatmap', 'nope']), 2)).toMatch(
      /--heatmap: no snapshot "nope"/,
    );
    expect(oneLineError(thpsim(['report', '-d', dir]), 2)).toMatch(
      /give a result file or --scenario/,
    );
    expect(existsSync(dir)).toBe(false);
  });
});
