// The tune result as text (the front as a table, the recommendation, the sysfs writes that apply
// it) and as a plot (coverage against bloat, the front joined, the recommendation ringed).

import * as Plot from '@observablehq/plot';
import Table from 'cli-table3';
import pc from 'picocolors';
import { type PlotFile, page, plotSvg } from '../report/plots.ts';
import type { TuneResult } from './tune.ts';

type Point = TuneResult['points'][number];

const settingText = (p: Point): string =>
  Object.entries(p.settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

function row(p: Point, rec: number | null): string[] {
  const o = p.objectives;
  return [
    `${p.index === rec ? '* ' : ''}${settingText(p)}`,
    `${o.hugePct.toFixed(1)}%`,
    o.coverage.map((c) => `${c.size}:${c.pct.toFixed(1)}%`).join(' ') || '-',
    String(o.bloatKb),
    String(Math.round(o.khugepagedUs)),
    String(o.tlbReachKb),
    o.oom ? 'OOM' : 'ok',
  ];
}

/** The text report. */
export function renderTune(r: TuneResult, opts: { color?: boolean; all?: boolean } = {}): string {
  const c = pc.createColors(opts.color ?? false);
  const byIndex = new Map(r.points.map((p) => [p.index, p]));
  const oom = r.points.filter((p) => p.objectives.oom);
  const out: string[] = [
    `tune ${r.target.kind} ${r.target.source}: ${r.search.evaluated} of ${r.search.grid} settings evaluated (${r.search.method}${r.search.budget !== null ? `, budget ${r.search.budget}, seed ${r.search.seed}` : ''}); prefer ${r.prefer}`,
    `space: ${r.space.map((k) => `${k.name}=${k.values.length > 8 ? `${k.values[0]}..${k.values.at(-1)} (${k.values.length} values)` : k.values.join(',')} (now ${k.baseline})`).join('; ')}`,
    '',
  ];
  const t = new Table({
    head: ['setting', 'huge', 'per size', 'bloat kB', 'khugepaged µs', 'TLB reach kB', 'memcg'].map(
      (h) => c.bold(h),
    ),
    style: { head: [], border: [], compact: true, 'padding-left': 1, 'padding-right': 1 },
    colAligns: ['left', 'right', 'left', 'right', 'right', 'right', 'left'],
  });
  const shown = opts.all ? r.points.map((p) => p.index) : r.front;
  for (const i of shown) t.push(row(byIndex.get(i)!, r.recommended));
  out.push(
    opts.all
      ? 'every evaluated setting (* recommended)'
      : `Pareto front: ${r.front.length} settings, best first for "${r.prefer}" (* recommended)`,
    t.toString(),
    '',
  );
  if (oom.length)
    out.push(
      `memcg OOM (infeasible): ${oom.length} settings, e.g. ${oom
        .slice(0, 4)
        .map((p) => settingText(p))
        .join('; ')}`,
    );
  if (r.recommended === null) out.push('no setting avoided the OOM: nothing to recommend');
  else {
    const p = byIndex.get(r.recommended)!;
    out.push(
      `recommended: ${settingText(p)}: huge ${p.objectives.hugePct.toFixed(1)}%, bloat ${p.objectives.bloatKb} kB, khugepaged ${Math.round(p.objectives.khugepagedUs)} µs, TLB reach ${p.objectives.tlbReachKb} kB (${p.objectives.tlbSource})`,
      'apply it with:',
      ...r.apply.map((l) => `  ${l}`),
    );
  }
  return out.join('\n') + '\n';
}

/** The front plot: huge coverage against bloat, every setting a dot, the front joined. */
export function tunePlot(r: TuneResult): PlotFile {
  const rows = r.points.map((p) => ({
    bloat: p.objectives.bloatKb,
    coverage: p.objectives.hugePct,
    kind: p.objectives.oom ? 'OOM' : p.front ? 'front' : 'dominated',
    rec: p.index === r.recommended,
    label: Object.values(p.settings).join(','),
  }));
  const front = rows.filter((x) => x.kind === 'front').sort((a, b) => a.bloat - b.bloat);
  const colors = { front: '#d62728', dominated: '#9ecae1', OOM: '#7f7f7f' };
  const body = plotSvg({
    width: 720,
    height: 420,
    marginLeft: 60,
    x: { label: 'bloat (kB) →', grid: true },
    y: { label: '↑ huge coverage (% of anon)', grid: true, domain: [0, 100] },
    marks: [
      Plot.line(front, { x: 'bloat', y: 'coverage', stroke: colors.front }),
      Plot.dot(rows, {
        x: 'bloat',
        y: 'coverage',
        fill: (d: { kind: keyof typeof colors }) => colors[d.kind],
        r: 4,
        symbol: (d: { kind: string }) => (d.kind === 'OOM' ? 'times' : 'circle'),
        stroke: (d: { kind: keyof typeof colors }) => colors[d.kind],
      }),
      Plot.dot(
        rows.filter((x) => x.rec),
        { x: 'bloat', y: 'coverage', r: 9, stroke: 'black', strokeWidth: 2 },
      ),
      Plot.text(front, { x: 'bloat', y: 'coverage', text: 'label', dy: -10, fontSize: 10 }),
    ],
  });
  return {
    name: 'tune-front',
    title: `tune ${r.target.name}: Pareto front (prefer ${r.prefer})`,
    svg: page(
      `tune ${r.target.name}: huge coverage vs bloat (prefer ${r.prefer})`,
      [
        ['front', colors.front],
        ['dominated', colors.dominated],
        ['memcg OOM', colors.OOM],
      ],
      body,
      420,
    ),
  };
}
