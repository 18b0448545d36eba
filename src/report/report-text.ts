// `thpsim report` as text: per-order coverage, bloat, fallback rates and collapse latency, creep
// events, the TLB estimate and buddyinfo for a run; coverage and bloat per policy for a compare.

import Table from 'cli-table3';
import pc from 'picocolors';
import type { CompareResult } from './compare.ts';
import {
  type AnyRun,
  COST_MODEL,
  fragmentation,
  latencyTotal,
  orderRows,
  totalBloatKb,
} from './metrics.ts';
import { hexAddr, orderLabel } from './model.ts';

type Colors = ReturnType<typeof pc.createColors>;

const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);

function table(head: string[], c: Colors): Table.Table {
  return new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}

function bytes(n: number): string {
  if (n >= 2 ** 30) return `${+(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${+(n / 2 ** 20).toFixed(2)} MiB`;
  return `${+(n / 1024).toFixed(2)} KiB`;
}

export function renderRunReport(r: AnyRun, opts: { color: boolean }): string {
  const c = pc.createColors(opts.color);
  const out: string[] = [];
  const pageKb = r.config.pageSize / 1024;
  out.push(
    c.bold(`${r.scenario.name}`) + ` (${r.config.geometry}, policy ${r.config.collapsePolicy})`,
  );
  if (!r.metrics)
    out.push(
      c.dim(
        'This run file has no metrics (run it with `thpsim run --metrics`, or use `thpsim report --scenario`): coverage comes from its reports; no TLB estimate, creep, latency, fragmentation or heat map.',
      ),
    );
  out.push('', c.bold('Per order (at the end)'));
  const t = table(
    [
      'order',
      'size',
      'mapped kB',
      '% anon',
      'collapses',
      'bloat kB',
      'fault fallback',
      'collapse alloc fail',
      'latency mean/max us',
    ],
    c,
  );
  for (const x of orderRows(r))
    t.push([
      x.order,
      orderLabel(x.order, pageKb),
      x.kb,
      x.pctAnon.toFixed(1),
      x.collapses,
      x.bloatKb,
      x.fallbackRate === null
        ? '-'
        : `${pct(x.fallbackRate)} (${x.faultFallback}/${x.faultAlloc + x.faultFallback})`,
      x.collapseFallbackRate === null
        ? '-'
        : `${pct(x.collapseFallbackRate)} (${x.collapseAllocFailed}/${x.collapseAlloc + x.collapseAllocFailed})`,
      x.latencyMeanUs === null ? '-' : `${x.latencyMeanUs} / ${x.latencyMaxUs}`,
    ]);
  out.push(t.toString());
  out.push(`Bloat: ${totalBloatKb(r)} kB added by collapse in total.`);
  const m = r.metrics;
  if (m) {
    const lat = latencyTotal(m.collapseCosts);
    out.push(
      `Collapse latency (estimate): ${lat.count} collapses, ${lat.us} us in total. Model: ${COST_MODEL}.`,
    );
    out.push(
      '',
      c.bold(`Creep events: ${m.creep.length}`) +
        c.dim(
          ' (a region collapsed to a larger order with no user access since its smaller collapse)',
        ),
    );
    if (m.creep.length) {
      const ct = table(['t ms', 'proc', 'vma', 'address', 'from', 'to', 'since ms'], c);
      for (const e of m.creep.slice(0, 20))
        ct.push([
          e.t,
          e.proc,
          e.vma ?? '-',
          hexAddr(e.addr),
          orderLabel(e.fromOrder, pageKb),
          orderLabel(e.toOrder, pageKb),
          e.sinceMs,
        ]);
      out.push(ct.toString());
      if (m.creep.length > 20) out.push(c.dim(`... and ${m.creep.length - 20} more`));
    }
    const tlb = m.tlb;
    out.push('', c.bold('TLB (an estimate, not a measurement)'));
    out.push(`Model: ${tlb.model}.`);
    const tt = table(['entry size', 'accesses', 'resident in L2 at end'], c);
    for (const k of tlb.classes) tt.push([k.name, k.accesses, k.resident]);
    out.push(tt.toString());
    const saved = tlb.baselineMisses - tlb.misses;
    out.push(
      `${tlb.accesses} accesses, ${tlb.misses} misses (page walks, ${pct(tlb.missRate)}), ${tlb.l1Misses} L1 misses; with base pages only: ${tlb.baselineMisses} misses (${saved >= 0 ? `${saved} fewer` : `${-saved} more`} with this run's mappings).`,
    );
    out.push(
      `TLB reach at the end: ${bytes(tlb.reachBytes)} (base pages only: ${bytes(tlb.baseReachBytes)}).`,
    );
    out.push(c.dim('Assumptions: ' + tlb.assumptions.join('; ') + '.'));
    const f = fragmentation(m.buddyinfo, pageKb, m.pmdOrder);
    out.push('', c.bold('Free memory by buddy order (buddyinfo)'));
    const bt = table(['order', ...f.rows.map((x) => String(x.order))], c);
    bt.push(['blocks', ...f.rows.map((x) => x.blocks)]);
    out.push(bt.toString());
    out.push(
      `${f.freeKb} kB free; ${pct(f.unusableForPmd)} of it in blocks below the PMD order (unusable for a PMD-sized allocation without compaction).`,
    );
  }
  return out.join('\n') + '\n';
}

export function renderCompareReport(r: CompareResult, opts: { color: boolean }): string {
  const c = pc.createColors(opts.color);
  const out: string[] = [
    c.bold(`${r.scenario.name}`) + ` (${r.config.geometry}): ${r.runs.length} runs`,
    '',
  ];
  const t = table(
    ['run', 'large folios kB', '% anon', 'bloat kB', 'collapses', 'attempts', 'steady at ms'],
    c,
  );
  for (const x of r.runs)
    t.push([
      x.name,
      x.hugeKb,
      x.hugePct.toFixed(1),
      x.bloatKb,
      x.collapses,
      x.attempts,
      x.steadyMs ?? '-',
    ]);
  out.push(t.toString());
  return out.join('\n') + '\n';
}

/** What `report --json` prints for a run. */
export function runReportJson(r: AnyRun): unknown {
  const m = r.metrics;
  const pageKb = r.config.pageSize / 1024;
  return {
    format: 'thpsim-report',
    version: 1,
    scenario: r.scenario,
    orders: orderRows(r),
    bloatKb: totalBloatKb(r),
    ...(m
      ? {
          collapseLatency: { ...latencyTotal(m.collapseCosts), model: COST_MODEL },
          creep: m.creep,
          tlb: m.tlb,
          fragmentation: fragmentation(m.buddyinfo, pageKb, m.pmdOrder),
        }
      : {}),
  };
}
