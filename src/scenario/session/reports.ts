// Report ops: the smaps-like report of every live process (report, and the final report), and
// check, which compares smaps fields, per-order kB and mTHP stats with what the scenario expects.

import { orderSizeKb } from '../../mm/geometry.ts';
import { orderMode } from '../../mm/settings.ts';
import type { SmapsEntry } from '../../sim/machine.ts';
import type { EventRecord, OrderReport, ProcessReport, Report } from '../run-result.ts';
import type { CheckField, EventOf } from '../schema.ts';
import { CHECK_FIELDS } from '../schema.ts';
import { hugeField } from '../selftest.ts';
import { hex } from '../size.ts';
import { intact } from './contents.ts';
import type { OpHandlers } from './handler.ts';
import { type ProcRef, type ScenarioSession, plural, rangeOf } from './session.ts';

/** The kB value of an smaps field (fields the model does not report read as 0). */
export function smapsKb(v: SmapsEntry, field: CheckField): number {
  return (v as unknown as Record<string, number | undefined>)[field] ?? 0;
}

function processReport(ss: ScenarioSession, p: ProcRef): ProcessReport {
  const vmas = ss.machine.smaps(p.mm).map((v) => ({ ...v, byOrder: { ...v.byOrder } }));
  const totals: ProcessReport['totals'] = {
    Size: 0,
    Rss: 0,
    Anonymous: 0,
    AnonHugePages: 0,
    Swap: 0,
    byOrder: {},
  };
  for (const v of vmas) {
    totals.Size += v.Size;
    totals.Rss += v.Rss;
    totals.Anonymous += v.Anonymous;
    totals.AnonHugePages += v.AnonHugePages;
    totals.Swap += v.Swap;
    for (const f of ['ShmemPmdMapped', 'FilePmdMapped'] as const) {
      const kb = (v as unknown as Record<string, number | undefined>)[f];
      if (kb !== undefined) totals[f] = (totals[f] ?? 0) + kb;
    }
    for (const [o, kb] of Object.entries(v.byOrder)) {
      totals.byOrder[Number(o)] = (totals.byOrder[Number(o)] ?? 0) + kb;
    }
  }
  return { name: p.name, pid: p.mm.id, vmas, totals };
}

/** The report of the machine now: processes, meminfo, vmstat, mTHP orders, khugepaged. */
export function snapshot(ss: ScenarioSession, label: string, event: number | null): Report {
  const { machine, geo } = ss;
  const live = ss.order.filter((p) => !p.exited);
  const processes = live.map((p) => processReport(ss, p));
  const mthp = machine.mthpStats();
  const orders: OrderReport[] = [];
  for (let o = 31; o >= 0; o--) {
    if (!(geo.anonOrders & (1 << o))) continue;
    const kb = orderSizeKb(geo, o);
    const size = `${kb}kB`;
    orders.push({
      order: o,
      size,
      sizeKb: kb,
      enabled: orderMode(machine.kernel.settings, o),
      stats: { ...(mthp[size] ?? {}) },
    });
  }
  const memcg = machine.memcgs();
  return {
    label,
    event,
    clockMs: machine.kernel.clockMs,
    ...(memcg.length > 0 ? { memcg } : {}),
    processes,
    meminfo: { ...machine.meminfo() },
    vmstat: { ...machine.vmstat() },
    orders,
    khugepaged: ss.khugepagedCounters(),
    reach: live
      .map((p) => machine.anonReach(p.mm))
      .reduce(
        (a, b) => ({
          anonKb: a.anonKb + b.anonKb,
          inPmdSpansKb: a.inPmdSpansKb + b.inPmdSpansKb,
        }),
        { anonKb: 0, inPmdSpansKb: 0 },
      ),
  };
}

/** check's mTHP stats: hugepages-<size>/stats/<name> as expected. */
function checkStats(
  ss: ScenarioSession,
  e: EventOf<'check'>,
  i: number,
  checked: Record<string, { expected: number; actual: number }>,
): void {
  if (!e.stats) return;
  const mthp = ss.machine.mthpStats();
  for (const [o, names] of Object.entries(e.stats)) {
    const size = `${orderSizeKb(ss.geo, Number(o))}kB`;
    for (const [n, expected] of Object.entries(names)) {
      const actual = mthp[size]?.[n];
      const field = `${ss.at(i)}.stats.${o}.${n}`;
      if (actual === undefined)
        throw ss.error(
          field,
          `check: hugepages-${size}/stats/${n} does not exist on this profile and geometry`,
        );
      checked[`hugepages-${size}/stats/${n}`] = { expected, actual };
      if (actual !== expected)
        throw ss.error(
          field,
          `check ${e.proc}/${e.vma}${e.label ? ` "${e.label}"` : ''}: hugepages-${size}/stats/${n} is ${actual}, expected ${expected}`,
        );
    }
  }
}

const check: OpHandlers['check'] = (ss, e, i, rec) => {
  const { geo } = ss;
  const p = ss.procOf(e.proc, i);
  const v = ss.vmaOf(p, e.vma, i);
  const r = rangeOf(v, e);
  const entries = ss.machine
    .smaps(p.mm)
    .filter((x) => x.end > r.addr && x.start < r.addr + r.length);
  const straddle = entries.find((x) => x.start < r.addr || x.end > r.addr + r.length);
  const straddles = () =>
    ss.error(
      ss.at(i),
      `check ${e.proc}/${e.vma}: smaps counts whole VMAs, and the VMA ${hex(straddle!.start)}-${hex(straddle!.end)} reaches outside ${hex(r.addr)}-${hex(r.addr + r.length)}; check a range that covers it`,
    );
  const what = `check ${e.proc}/${e.vma}${e.label ? ` "${e.label}"` : ''}`;
  const checked: Record<string, { expected: number; actual: number }> = {};
  const want: Array<[CheckField, number, string]> = [];
  for (const f of CHECK_FIELDS) if (e[f] !== undefined) want.push([f, e[f], f]);
  if (e.huge !== undefined) want.push([hugeField(v.kind), e.huge * geo.pmdSize, 'huge']);
  if (want.length > 0 && straddle) throw straddles();
  for (const [f, bytes, key] of want) {
    const actual = entries.reduce((sum, x) => sum + smapsKb(x, f), 0);
    const expected = bytes / 1024;
    checked[f] = { expected, actual };
    if (actual !== expected) {
      const pmd = geo.pmdSize / 1024;
      const inPmds = (kb: number) =>
        kb % pmd === 0 && kb > 0 ? ` (${plural(kb / pmd, 'PMD')})` : '';
      throw ss.error(
        `${ss.at(i)}.${key}`,
        `${what}: ${f} is ${actual} kB${inPmds(actual)}, expected ${expected} kB${inPmds(expected)}${f === hugeField(v.kind) && actual < expected ? `; ${ss.tracepoints.rangeSummary(p.name, r.addr, r.length)}` : ''}`,
      );
    }
  }
  for (const [o, bytes] of Object.entries(e.orders ?? {})) {
    const actual = entries.reduce((sum, x) => sum + (x.byOrder[Number(o)] ?? 0), 0);
    const expected = bytes / 1024;
    checked[`order ${o}`] = { expected, actual };
    if (want.length === 0 && straddle) throw straddles();
    if (actual !== expected)
      throw ss.error(
        `${ss.at(i)}.orders.${o}`,
        `${what}: order-${o} folios map ${actual} kB, expected ${expected} kB (byOrder ${JSON.stringify(Object.fromEntries(entries.flatMap((x) => Object.entries(x.byOrder))))}); ${ss.tracepoints.rangeSummary(p.name, r.addr, r.length)}`,
      );
  }
  checkStats(ss, e, i, checked);
  const out: EventRecord = { ...rec, proc: e.proc, vma: e.vma, ...r, checked };
  if (e.intact) out.intactPages = intact(ss, p, r.addr, r.length, i);
  return out;
};

export const reportOps = {
  report(ss, e, i, rec) {
    const label = e.label ?? ss.at(i);
    ss.reports.push(snapshot(ss, label, i));
    return { ...rec, label, report: ss.reports.length - 1 };
  },
  check,
} satisfies Partial<OpHandlers>;
