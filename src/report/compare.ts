// thpsim compare: one scenario run under several collapse policies and knob settings, with what
// each run reached: coverage per order, the memory collapses added (bloat), collapses and their
// failures by SCAN_* reason, the per-order collapse stats, and when coverage stopped changing.

import Table from 'cli-table3';
import pc from 'picocolors';
import {
  COLLAPSE_POLICY_DESCRIPTIONS,
  type CollapsePolicy,
} from '../khugepaged/mthp/thresholds.ts';
import {
  type Progress,
  type RunConfig,
  type RunResult,
  describeConfig,
  runScenarioSession,
  sysfsRelPath,
} from '../scenario/run.ts';
import type { Scenario } from '../scenario/schema.ts';
import { formatKb } from '../scenario/size.ts';
import { SCAN_REASONS, orderBreakdown } from './text.ts';

type Colors = ReturnType<typeof pc.createColors>;

/** One run of the comparison: a policy and the sysfs values written over the scenario's. */
export interface CompareVariant {
  policy: CollapsePolicy;
  /** sysfs paths (relative to transparent_hugepage/) and values, applied after the header's. */
  knobs: Array<[string, string]>;
}

export interface OrderCoverage {
  order: number;
  /** "64K", "2M". */
  size: string;
  /** Mapped by folios of this order at the end, over all processes. */
  kb: number;
  pctAnon: number;
  collapses: number;
  bloatKb: number;
  /** hugepages-<size>kB/stats/collapse_* (where the profile has them). */
  stats: Record<string, number>;
}

export interface CompareRun {
  /** "v19" or "v10-scaled, khugepaged/max_ptes_none=384". */
  name: string;
  policy: CollapsePolicy;
  knobs: Record<string, string>;
  anonKb: number;
  /** Mapped by folios of order > 0. */
  hugeKb: number;
  hugePct: number;
  bloatKb: number;
  collapses: number;
  attempts: number;
  orders: OrderCoverage[];
  /** collapse_huge_page attempts that did not succeed, by result. */
  failures: Record<string, number>;
  /** PMD ranges visited, by the result for the range. */
  pmdResults: Record<string, number>;
  /** Simulated ms of the last successful collapse, or null if none happened. */
  steadyMs: number | null;
  /** The last two reports differ: coverage was still changing when the scenario ended. */
  stillChanging: boolean;
  endMs: number;
  /** Anonymous kB, and the part in PMD ranges a VMA spans whole (the merged design's reach). */
  reach: { anonKb: number; inPmdSpansKb: number };
  /** Each report of the scenario: its label, time and kB per order. */
  timeline: Array<{ label: string; clockMs: number; byOrder: Record<number, number> }>;
}

export interface CompareResult {
  format: 'thpsim-compare';
  version: 1;
  scenario: { name: string; description?: string };
  config: RunConfig;
  runs: CompareRun[];
}

/** Every policy with every combination of the knob values (the cartesian product). */
export function compareVariants(
  policies: readonly CollapsePolicy[],
  knobs: ReadonlyArray<[string, string[]]>,
): CompareVariant[] {
  let combos: Array<Array<[string, string]>> = [[]];
  for (const [path, values] of knobs)
    combos = combos.flatMap((c) => values.map((v) => [...c, [path, v] as [string, string]]));
  return policies.flatMap((policy) => combos.map((knobs) => ({ policy, knobs })));
}

function variantName(v: CompareVariant): string {
  return [v.policy, ...v.knobs.map(([p, x]) => `${p}=${x}`)].join(', ');
}

/** The scenario with the variant's policy and sysfs values (replacing the header's for a path). */
export function applyVariant(s: Scenario, v: CompareVariant): Scenario {
  const sysfs: NonNullable<Scenario['sysfs']> = {};
  const over = new Set(v.knobs.map(([p]) => sysfsRelPath(p)));
  for (const [p, x] of Object.entries(s.sysfs ?? {})) if (!over.has(sysfsRelPath(p))) sysfs[p] = x;
  for (const [p, x] of v.knobs) sysfs[p] = x;
  return { ...s, collapse_policy: v.policy, sysfs };
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** What one run of the comparison reached (see CompareRun). */
export function summarise(r: RunResult, v: CompareVariant): CompareRun {
  const final = r.reports[r.reports.length - 1];
  const pageKb = r.config.pageSize / 1024;
  const anonKb = sum(final.processes.map((p) => p.totals.Anonymous));
  const byOrder: Record<number, number> = {};
  for (const p of final.processes)
    for (const [o, kb] of Object.entries(p.totals.byOrder))
      byOrder[Number(o)] = (byOrder[Number(o)] ?? 0) + kb;
  const pct = (kb: number) => (anonKb > 0 ? (100 * kb) / anonKb : 0);
  const orders: OrderCoverage[] = [];
  for (const o of final.orders) {
    const kb = byOrder[o.order] ?? 0;
    const c = r.collapses.byOrder[o.order];
    const stats = Object.fromEntries(
      Object.entries(o.stats).filter(([n]) => n.startsWith('collapse_')),
    );
    if (!kb && !c && !Object.values(stats).some((x) => x > 0)) continue;
    orders.push({
      order: o.order,
      size: formatKb(o.sizeKb),
      kb,
      pctAnon: pct(kb),
      collapses: c?.succeeded ?? 0,
      bloatKb: (c?.bloatPages ?? 0) * pageKb,
      stats,
    });
  }
  const failures: Record<string, number> = {};
  for (const c of Object.values(r.collapses.byOrder))
    for (const [res, n] of Object.entries(c.results))
      if (res !== 'SCAN_SUCCEED') failures[res] = (failures[res] ?? 0) + n;
  const hugeKb = sum(
    Object.entries(byOrder)
      .filter(([o]) => Number(o) > 0)
      .map(([, kb]) => kb),
  );
  const timeline = r.reports.map((rep) => {
    const t: Record<number, number> = {};
    for (const p of rep.processes)
      for (const [o, kb] of Object.entries(p.totals.byOrder))
        t[Number(o)] = (t[Number(o)] ?? 0) + kb;
    return { label: rep.label, clockMs: rep.clockMs, byOrder: t };
  });
  const n = timeline.length;
  const same = (a: Record<number, number>, b: Record<number, number>): boolean =>
    JSON.stringify(Object.entries(a).filter(([, kb]) => kb > 0)) ===
    JSON.stringify(Object.entries(b).filter(([, kb]) => kb > 0));
  const stillChanging = n >= 2 && !same(timeline[n - 1].byOrder, timeline[n - 2].byOrder);
  const all = Object.values(r.collapses.byOrder);
  return {
    name: variantName(v),
    policy: v.policy,
    knobs: Object.fromEntries(v.knobs),
    anonKb,
    hugeKb,
    hugePct: pct(hugeKb),
    bloatKb: sum(all.map((c) => c.bloatPages)) * pageKb,
    collapses: sum(all.map((c) => c.succeeded)),
    attempts: sum(all.map((c) => c.attempts)),
    orders,
    failures,
    pmdResults: { ...r.collapses.pmdResults },
    steadyMs: r.collapses.lastCollapseMs,
    stillChanging,
    endMs: final.clockMs,
    reach: final.reach,
    timeline,
  };
}

export interface CompareOptions {
  source?: string;
  /** Called with the run index and that run's progress. */
  onProgress?: (run: number, runs: number, p: Progress) => void;
}

/** The comparison result from its runs (in variant order) and the first run's config. */
export function compareResult(s: Scenario, config: RunConfig, runs: CompareRun[]): CompareResult {
  return {
    format: 'thpsim-compare',
    version: 1,
    scenario: { name: s.name, ...(s.description ? { description: s.description } : {}) },
    config,
    runs,
  };
}

/** Run the scenario once per variant. */
export function runCompare(
  s: Scenario,
  variants: readonly CompareVariant[],
  opts: CompareOptions = {},
): CompareResult {
  const runs: CompareRun[] = [];
  let config: RunConfig | undefined;
  variants.forEach((v, i) => {
    const { result } = runScenarioSession(applyVariant(s, v), {
      source: opts.source,
      onProgress: opts.onProgress ? (p) => opts.onProgress!(i, variants.length, p) : undefined,
    });
    config ??= result.config;
    runs.push(summarise(result, v));
  });
  return compareResult(s, config!, runs);
}

// ---- text ------------------------------------------------------------------------------------

function table(head: string[], c: Colors, align: ('left' | 'right')[]): Table.Table {
  return new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [], compact: true, 'padding-left': 1, 'padding-right': 1 },
    colAligns: align,
  });
}

const pctText = (p: number): string => `${p.toFixed(1)}%`;

function steadyText(r: CompareRun): string {
  if (r.steadyMs === null) return 'no collapse';
  return r.stillChanging ? `still changing at ${r.endMs} ms` : `${r.steadyMs} ms`;
}

function reasons(counts: Record<string, number>): string[] {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(
      ([res, n]) =>
        `${String(n).padStart(6)}  ${res}${SCAN_REASONS[res] ? ` (${SCAN_REASONS[res]})` : ''}`,
    );
}

const STAT_COLUMNS = [
  ['collapse_alloc', 'alloc'],
  ['collapse_alloc_failed', 'alloc_failed'],
  ['collapse_exceed_none_pte', 'exceed_none'],
  ['collapse_exceed_swap_pte', 'exceed_swap'],
  ['collapse_exceed_shared_pte', 'exceed_shared'],
] as const;

function runSection(r: CompareRun, pageSize: number, c: Colors): string {
  const out: string[] = [
    c.bold(`== ${r.name} ==`),
    `  ${COLLAPSE_POLICY_DESCRIPTIONS[r.policy]}`,
    '',
  ];
  const stats = STAT_COLUMNS.filter(([n]) => r.orders.some((o) => n in o.stats));
  const t = table(
    ['size', 'order', 'kB', '% anon', 'collapses', 'bloat kB', ...stats.map(([, h]) => h)],
    c,
    ['right', 'right', 'right', 'right', 'right', 'right', ...stats.map(() => 'right' as const)],
  );
  for (const o of r.orders)
    t.push([
      o.size,
      String(o.order),
      String(o.kb),
      pctText(o.pctAnon),
      String(o.collapses),
      String(o.bloatKb),
      ...stats.map(([n]) => String(o.stats[n] ?? 0)),
    ]);
  out.push(
    'coverage per order (at the end; collapse_* from hugepages-<size>kB/stats)',
    t.toString(),
  );
  const f = reasons(r.failures);
  out.push(
    '',
    `collapse attempts: ${r.attempts}, succeeded ${r.collapses}${f.length ? ', failed:' : ''}`,
    ...f,
  );
  const p = reasons(r.pmdResults);
  if (p.length) out.push('', 'PMD ranges visited, by result:', ...p);
  if (r.reach.inPmdSpansKb < r.reach.anonKb) {
    const out_ = r.reach.anonKb - r.reach.inPmdSpansKb;
    out.push(
      '',
      `anon memory outside PMD ranges a VMA spans whole: ${out_} kB of ${r.reach.anonKb} kB (${pctText((100 * out_) / r.reach.anonKb)}); designs that detach the whole table cannot collapse it`,
    );
  }
  if (r.timeline.length > 1) {
    const tl = table(['report', 't (ms)', 'orders (kB)'], c, ['left', 'right', 'left']);
    for (const x of r.timeline)
      tl.push([x.label, String(x.clockMs), orderBreakdown(x.byOrder, pageSize)]);
    out.push('', 'coverage at each report', tl.toString());
  }
  out.push('', `steady coverage: ${steadyText(r)}`);
  return out.join('\n');
}

export function renderCompare(r: CompareResult, opts: { color?: boolean } = {}): string {
  const c = pc.createColors(opts.color ?? false);
  const out: string[] = [
    `compare ${r.scenario.name}${r.scenario.description ? `: ${r.scenario.description}` : ''}`,
    `machine: ${describeConfig({ ...r.config, collapsePolicy: 'v19' })}`,
    '',
  ];
  const t = table(
    ['run', 'anon kB', 'huge kB', '% huge', 'bloat kB', 'collapses', 'failed', 'steady at'],
    c,
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  );
  for (const x of r.runs)
    t.push([
      x.name,
      String(x.anonKb),
      String(x.hugeKb),
      pctText(x.hugePct),
      String(x.bloatKb),
      String(x.collapses),
      String(x.attempts - x.collapses),
      steadyText(x),
    ]);
  out.push(
    'summary (huge: mapped by folios of order > 0; bloat: pages added by collapses)',
    t.toString(),
    '',
  );
  for (const x of r.runs) out.push(runSection(x, r.config.pageSize, c), '');
  return out.join('\n');
}
