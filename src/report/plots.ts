// Plots without a browser: Observable Plot renders SVG into a linkedom document, resvg turns the
// SVG into PNG. The PMD heat map is drawn directly (each cell at a known place, so a test can
// read a known PMD's pixel). Colours per folio order are fixed (model.ts orderColor).

import * as Plot from '@observablehq/plot';
import { Resvg } from '@resvg/resvg-js';
import { parseHTML } from 'linkedom';
import type { CompareResult } from './compare.ts';
import { type AnyRun, coverageSeries, fragmentation, orderRows, runOrders } from './metrics.ts';
import { type AddressMap, COLOR_NONE, hexAddr, orderColor, orderLabel } from './model.ts';

export interface PlotFile {
  /** File name without extension: "coverage", "bloat", "fragmentation", "heatmap". */
  name: string;
  title: string;
  svg: string;
}

const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';
const WIDTH = 720;

function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

export function plotSvg(options: Plot.PlotOptions): string {
  const { document } = parseHTML('<!doctype html><html><body></body></html>');
  const el = Plot.plot({ ...options, document } as Plot.PlotOptions) as unknown as {
    outerHTML: string;
  };
  let svg = el.outerHTML;
  if (!svg.includes('xmlns=')) svg = svg.replace('<svg', '<svg xmlns="http://www.w3.org/2000/svg"');
  return svg;
}

/** An SVG page: a title, a legend (label, colour) and a body SVG below them. */
export function page(
  title: string,
  legend: Array<[string, string]>,
  body: string,
  bodyHeight: number,
): string {
  const top = 34 + (legend.length ? 22 : 0);
  const items = legend
    .map(
      ([label, color], i) =>
        `<g transform="translate(${12 + (i % 8) * 88},${30 + Math.floor(i / 8) * 18})"><rect width="12" height="12" fill="${color}" stroke="#555" stroke-width="0.5"/><text x="16" y="10" font-size="11">${esc(label)}</text></g>`,
    )
    .join('');
  const legendRows = Math.ceil(legend.length / 8);
  const height = top + (legendRows > 1 ? (legendRows - 1) * 18 : 0) + bodyHeight;
  const inner = body.replace('<svg', `<svg x="0" y="${height - bodyHeight}"`);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="${FONT}">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="12" y="20" font-size="14" font-weight="bold">${esc(title)}</text>${items}${inner}</svg>`
  );
}

/** Coverage per order over simulated time (stacked areas, kB). */
export function coveragePlot(r: AnyRun): PlotFile {
  const pageKb = r.config.pageSize / 1024;
  const pmdOrder = Math.log2(r.config.pmdSize / r.config.pageSize);
  const orders = runOrders(r);
  const series = coverageSeries(r);
  const rows: Array<{ t: number; kb: number; order: string }> = [];
  const used = orders.filter((o) => series.some((p) => (p.byOrderKb[o] ?? 0) > 0));
  for (const p of series)
    for (const o of used)
      rows.push({ t: p.t, kb: p.byOrderKb[o] ?? 0, order: orderLabel(o, pageKb) });
  const domain = used.map((o) => orderLabel(o, pageKb));
  const range = used.map((o) => orderColor(o, pmdOrder));
  const height = 300;
  const body = plotSvg({
    width: WIDTH,
    height,
    marginLeft: 70,
    style: { fontFamily: FONT, fontSize: '11px', background: 'white' },
    x: { label: 'simulated time (ms)' },
    y: { label: 'anonymous memory (kB)', grid: true },
    color: { domain, range },
    marks: rows.length
      ? [
          Plot.areaY(
            rows,
            Plot.stackY({
              x: 't',
              y: 'kb',
              z: 'order',
              fill: 'order',
              curve: 'step-after',
              order: domain,
            }),
          ),
          Plot.ruleY([0]),
        ]
      : [Plot.ruleY([0]), Plot.text(['no anonymous memory'], { frameAnchor: 'middle' })],
  });
  return {
    name: 'coverage',
    title: 'coverage',
    svg: page(
      `${r.scenario.name}: coverage per folio order over time`,
      domain.map((d, i) => [d, range[i]]),
      body,
      height,
    ),
  };
}

/** Bloat: per order for a run; per policy (and knob setting) for a comparison. */
export function bloatPlot(input: AnyRun | CompareResult): PlotFile {
  const height = 280;
  let rows: Array<{ x: string; kb: number; color: string }>;
  let title: string;
  if (input.format === 'thpsim-compare') {
    rows = input.runs.map((run) => ({ x: run.name, kb: run.bloatKb, color: '#d62728' }));
    title = `${input.scenario.name}: memory added by collapse (bloat) per policy`;
  } else {
    const pmdOrder = Math.log2(input.config.pmdSize / input.config.pageSize);
    const pageKb = input.config.pageSize / 1024;
    rows = orderRows(input)
      .filter((x) => x.order > 0)
      .map((x) => ({
        x: orderLabel(x.order, pageKb),
        kb: x.bloatKb,
        color: orderColor(x.order, pmdOrder),
      }));
    title = `${input.scenario.name}: memory added by collapse (bloat) per order`;
  }
  const body = plotSvg({
    width: WIDTH,
    height,
    marginLeft: 70,
    marginBottom: 60,
    style: { fontFamily: FONT, fontSize: '11px', background: 'white' },
    x: {
      label: null,
      domain: rows.map((r) => r.x),
      tickRotate: rows.some((r) => r.x.length > 8) ? -20 : 0,
    },
    y: { label: 'bloat (kB)', grid: true },
    marks: [
      Plot.barY(rows, { x: 'x', y: 'kb', fill: (d: { color: string }) => d.color }),
      Plot.text(rows, { x: 'x', y: 'kb', text: (d: { kb: number }) => `${d.kb}`, dy: -6 }),
      Plot.ruleY([0]),
    ],
  });
  return { name: 'bloat', title: 'bloat', svg: page(title, [], body, height) };
}

/** Free memory per buddy order at the end (buddyinfo as kB). */
export function fragmentationPlot(r: AnyRun): PlotFile | null {
  const free = r.metrics?.buddyinfo;
  if (!free) return null;
  const pageKb = r.config.pageSize / 1024;
  const pmdOrder = Math.log2(r.config.pmdSize / r.config.pageSize);
  const f = fragmentation(free, pageKb, pmdOrder);
  const rows = f.rows.map((x) => ({
    order: String(x.order),
    blocks: x.blocks,
    color: x.order >= pmdOrder ? '#2ca02c' : '#ff7f0e',
  }));
  const height = 260;
  const body = plotSvg({
    width: WIDTH,
    height,
    marginLeft: 70,
    style: { fontFamily: FONT, fontSize: '11px', background: 'white' },
    x: { label: 'buddy order', domain: rows.map((x) => x.order) },
    y: { label: 'free blocks', grid: true },
    marks: [
      Plot.barY(rows, { x: 'order', y: 'blocks', fill: (d: { color: string }) => d.color }),
      Plot.text(rows, {
        x: 'order',
        y: 'blocks',
        text: (d: { blocks: number }) => `${d.blocks}`,
        dy: -6,
      }),
      Plot.ruleY([0]),
    ],
  });
  return {
    name: 'fragmentation',
    title: 'fragmentation',
    svg: page(
      `${r.scenario.name}: free blocks per buddy order (${(100 * f.unusableForPmd).toFixed(1)}% of free memory below PMD order)`,
      [
        ['< PMD order', '#ff7f0e'],
        ['>= PMD order', '#2ca02c'],
      ],
      body,
      height,
    ),
  };
}

// ---- heat map -----------------------------------------------------------------------------

export const HEAT_COLS = 32;
export const HEAT_CELL = 16;
export const HEAT_LEFT = 200;
export const HEAT_TOP = 84;

export interface HeatCell {
  vma: number;
  pmd: number;
  x: number;
  y: number;
  order: number;
}

/** Where each PMD of each VMA goes: rows of HEAT_COLS cells, VMAs one after the other. */
export function heatmapLayout(map: AddressMap): {
  cells: HeatCell[];
  rows: Array<{ y: number; label: string }>;
  height: number;
} {
  const cells: HeatCell[] = [];
  const rows: Array<{ y: number; label: string }> = [];
  let row = 0;
  map.vmas.forEach((v, vi) => {
    const y0 = HEAT_TOP + row * HEAT_CELL;
    rows.push({ y: y0, label: `${v.proc}/${v.name} ${hexAddr(v.start)}` });
    v.pmds.forEach((p, j) => {
      cells.push({
        vma: vi,
        pmd: j,
        x: HEAT_LEFT + (j % HEAT_COLS) * HEAT_CELL,
        y: HEAT_TOP + (row + Math.floor(j / HEAT_COLS)) * HEAT_CELL,
        order: p.order,
      });
    });
    row += Math.max(1, Math.ceil(v.pmds.length / HEAT_COLS)) + 0.5;
  });
  return { cells, rows, height: Math.ceil(HEAT_TOP + row * HEAT_CELL + 20) };
}

/** Each PMD of each VMA as a cell coloured by the largest folio order mapping it. */
export function heatmapPlot(r: AnyRun, label?: string): PlotFile | null {
  const maps = r.metrics?.maps;
  if (!maps?.length) return null;
  const map = (label && maps.find((m) => m.label === label)) || maps[maps.length - 1];
  const pageKb = r.config.pageSize / 1024;
  const pmdOrder = Math.log2(r.config.pmdSize / r.config.pageSize);
  const { cells, rows, height } = heatmapLayout(map);
  const used = [...new Set(cells.map((c) => c.order))].sort((a, b) => b - a);
  const legend = used.map(
    (o) =>
      [o < 0 ? 'not mapped' : orderLabel(o, pageKb), orderColor(o, pmdOrder)] as [string, string],
  );
  const w = Math.max(WIDTH, HEAT_LEFT + HEAT_COLS * HEAT_CELL + 20);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${height}" viewBox="0 0 ${w} ${height}" font-family="${FONT}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="12" y="20" font-size="14" font-weight="bold">${esc(`${r.scenario.name}: PMDs by largest folio order (${map.label}, t=${map.t} ms)`)}</text>`,
    `<text x="12" y="${HEAT_TOP - 10}" font-size="11" fill="#444">one cell per PMD range (${orderLabel(pmdOrder, pageKb)}), ${HEAT_COLS} per row</text>`,
  ];
  legend.forEach(([l, c], i) =>
    parts.push(
      `<g transform="translate(${12 + (i % 8) * 88},${30 + Math.floor(i / 8) * 18})"><rect width="12" height="12" fill="${c}" stroke="#555" stroke-width="0.5"/><text x="16" y="10" font-size="11">${esc(l)}</text></g>`,
    ),
  );
  for (const row of rows)
    parts.push(
      `<text x="${HEAT_LEFT - 8}" y="${row.y + 12}" font-size="11" text-anchor="end">${esc(row.label)}</text>`,
    );
  for (const c of cells)
    parts.push(
      `<rect x="${c.x}" y="${c.y}" width="${HEAT_CELL - 1}" height="${HEAT_CELL - 1}" fill="${orderColor(c.order, pmdOrder)}"/>`,
    );
  if (!cells.length)
    parts.push(
      `<text x="${HEAT_LEFT}" y="${HEAT_TOP + 12}" font-size="12" fill="${COLOR_NONE}">no VMAs</text>`,
    );
  parts.push('</svg>');
  return { name: 'heatmap', title: 'PMD heat map', svg: parts.join('') };
}

/** Tableau 10: one colour per compared run. */
export const SCHEME = [
  '#4e79a7',
  '#f28e2c',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc949',
  '#af7aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ab',
];

/** Compare runs: huge-page coverage per report, one line per policy. */
export function compareCoveragePlot(c: CompareResult): PlotFile {
  const rows = c.runs.flatMap((run) =>
    run.timeline.map((p) => {
      const huge = Object.entries(p.byOrder)
        .filter(([o]) => Number(o) > 0)
        .reduce((a, [, kb]) => a + kb, 0);
      return { t: p.clockMs, kb: huge, run: run.name };
    }),
  );
  const height = 300;
  const body = plotSvg({
    width: WIDTH,
    height,
    marginLeft: 70,
    style: { fontFamily: FONT, fontSize: '11px', background: 'white' },
    x: { label: 'simulated time (ms)' },
    y: { label: 'mapped by large folios (kB)', grid: true },
    color: { domain: c.runs.map((run) => run.name), range: SCHEME },
    marks: [
      Plot.line(rows, { x: 't', y: 'kb', z: 'run', stroke: 'run', curve: 'step-after' }),
      Plot.dot(rows, { x: 't', y: 'kb', fill: 'run', r: 2.5 }),
      Plot.ruleY([0]),
    ],
  });
  return {
    name: 'coverage',
    title: 'coverage',
    svg: page(
      `${c.scenario.name}: memory mapped by large folios per policy`,
      c.runs.map((run, i) => [run.name, SCHEME[i % SCHEME.length]]),
      body,
      height,
    ),
  };
}

/** Every plot for a run or a comparison. */
export function allPlots(input: AnyRun | CompareResult, heatmap?: string): PlotFile[] {
  if (input.format === 'thpsim-compare') return [compareCoveragePlot(input), bloatPlot(input)];
  return [
    coveragePlot(input),
    bloatPlot(input),
    fragmentationPlot(input),
    heatmapPlot(input, heatmap),
  ].filter((p): p is PlotFile => p !== null);
}

/** SVG to PNG at 1:1 (white background, the system's DejaVu or Liberation fonts). */
export function svgToPng(svg: string): Buffer {
  const r = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'original' },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}
