// Timeline: coverage per order, bloat and counters over simulated time (uPlot), and from a compare
// result the memory mapped by large folios per policy, overlaid.

import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { CompareResult } from '../../report/compare.ts';
import { type AnyRun, coverageSeries, runOrders } from '../../report/metrics.ts';
import { orderColor, orderLabel } from '../../report/model.ts';

const SCHEME = [
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

interface Series {
  label: string;
  color: string;
  /** y per x (null: no value). */
  ys: Array<number | null>;
}

function Chart(props: {
  title: string;
  xs: number[];
  series: Series[];
  ylabel: string;
  testid: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!ref.current) return;
    const opts: uPlot.Options = {
      title: props.title,
      width: Math.min(1000, window.innerWidth - 60),
      height: 260,
      scales: { x: { time: false } },
      axes: [{ label: 'simulated time (ms)' }, { label: props.ylabel, size: 70 }],
      series: [
        { label: 't (ms)' },
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          paths: uPlot.paths.stepped!({ align: 1 }),
        })),
      ],
    };
    const data = [props.xs, ...props.series.map((s) => s.ys)] as uPlot.AlignedData;
    const u = new uPlot(opts, data, ref.current);
    return () => u.destroy();
  }, [props]);
  return (
    <div
      ref={ref}
      data-unit={props.ylabel}
      data-testid={props.testid}
      data-series={props.series.length}
      data-points={props.xs.length}
    />
  );
}

function runCharts(run: AnyRun, pct: boolean) {
  const pageKb = run.config.pageSize / 1024;
  const pmdOrder = Math.log2(run.config.pmdSize / run.config.pageSize);
  const pts = coverageSeries(run);
  const xs = pts.map((p) => p.t);
  const orders = runOrders(run).filter((o) => pts.some((p) => (p.byOrderKb[o] ?? 0) > 0));
  const coverage: Series[] = orders.map((o) => ({
    label: orderLabel(o, pageKb),
    color: orderColor(o, pmdOrder),
    ys: pts.map((p) =>
      pct ? (p.anonKb > 0 ? (100 * (p.byOrderKb[o] ?? 0)) / p.anonKb : 0) : (p.byOrderKb[o] ?? 0),
    ),
  }));
  const samples = run.metrics?.samples ?? [];
  const dedup = samples.filter((s, i) => i === samples.length - 1 || samples[i + 1].t !== s.t);
  const sx = dedup.map((s) => s.t);
  const counterNames = dedup.length ? Object.keys(dedup[dedup.length - 1].counters) : [];
  const counters: Series[] = counterNames.map((c, i) => ({
    label: c,
    color: SCHEME[i % SCHEME.length],
    ys: dedup.map((s) => s.counters[c] ?? null),
  }));
  const bloat: Series[] = [
    { label: 'bloat (kB)', color: '#d62728', ys: dedup.map((s) => s.bloatKb) },
  ];
  return (
    <>
      <Chart
        title={`Coverage per folio order (${pct ? '% of' : 'kB of'} anonymous memory)`}
        xs={xs}
        series={coverage}
        ylabel={pct ? '%' : 'kB'}
        testid="chart-coverage"
      />
      {dedup.length > 0 && (
        <>
          <Chart
            title="Memory added by collapse (bloat, kB, cumulative)"
            xs={sx}
            series={bloat}
            ylabel="kB"
            testid="chart-bloat"
          />
          <Chart
            title="Counters"
            xs={sx}
            series={counters}
            ylabel="count"
            testid="chart-counters"
          />
        </>
      )}
    </>
  );
}

function compareChart(c: CompareResult) {
  const xs = [...new Set(c.runs.flatMap((r) => r.timeline.map((p) => p.clockMs)))].sort(
    (a, b) => a - b,
  );
  const series: Series[] = c.runs.map((r, i) => {
    const at = new Map(
      r.timeline.map((p) => [
        p.clockMs,
        Object.entries(p.byOrder)
          .filter(([o]) => Number(o) > 0)
          .reduce((a, [, kb]) => a + kb, 0),
      ]),
    );
    return {
      label: r.name,
      color: SCHEME[i % SCHEME.length],
      ys: xs.map((x) => at.get(x) ?? null),
    };
  });
  return (
    <Chart
      title={`${c.scenario.name}: memory mapped by large folios per policy (kB)`}
      xs={xs}
      series={series}
      ylabel="kB"
      testid="chart-compare"
    />
  );
}

export function TimelineView(props: { run?: AnyRun; compare?: CompareResult }) {
  const [pct, setPct] = useState(false);
  return (
    <div>
      {props.run && (
        <label>
          <input
            type="checkbox"
            data-testid="coverage-pct"
            checked={pct}
            onChange={(e) => setPct((e.target as HTMLInputElement).checked)}
          />{' '}
          coverage as % of anonymous memory
        </label>
      )}
      {props.compare && compareChart(props.compare)}
      {props.compare && (
        <table class="race" data-testid="compare-table">
          <tr>
            <th>run</th>
            <th>large folios kB</th>
            <th>bloat kB</th>
            <th>collapses</th>
          </tr>
          {props.compare.runs.map((r) => (
            <tr key={r.name}>
              <td>{r.name}</td>
              <td>{r.hugeKb}</td>
              <td>{r.bloatKb}</td>
              <td>{r.collapses}</td>
            </tr>
          ))}
        </table>
      )}
      {props.run && runCharts(props.run, pct)}
    </div>
  );
}
