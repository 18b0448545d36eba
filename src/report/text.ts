// Human-readable output of a run: the timeline, then per report an smaps-like table per process,
// a per-order (mTHP) summary, meminfo and the nonzero THP vmstat counters. Colours only when the
// caller asks (the CLI asks when stdout is a TTY and NO_COLOR is unset).

import Table from 'cli-table3';
import pc from 'picocolors';
import type {
  EventRecord,
  OrderReport,
  ProcessReport,
  Report,
  RunConfig,
  RunResult,
} from '../scenario/run.ts';
import { describeConfig } from '../scenario/run.ts';
import { formatKb, formatSize, hex } from '../scenario/size.ts';

type Colors = ReturnType<typeof pc.createColors>;

export interface TextOptions {
  color?: boolean;
}

/** Tables without cli-table3's own (always-on) colours. */
function table(head: string[], c: Colors, align: ('left' | 'right')[]): Table.Table {
  return new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [], compact: true, 'padding-left': 1, 'padding-right': 1 },
    colAligns: align,
  });
}

/** "2M:4096k 64K:512k 4K:120k": kB mapped by folios of each order, largest order first. */
export function orderBreakdown(byOrder: Record<number, number>, pageSize: number): string {
  const pageKb = pageSize / 1024;
  const parts = Object.entries(byOrder)
    .map(([o, kb]) => [Number(o), kb] as const)
    .filter(([, kb]) => kb > 0)
    .sort((a, b) => b[0] - a[0])
    .map(([o, kb]) => `${formatKb(pageKb * 2 ** o)}:${kb}k`);
  return parts.join(' ') || '-';
}

function range(e: EventRecord): string {
  if (e.addr === undefined || e.length === undefined) return '';
  return `${hex(e.addr)}-${hex(e.addr + e.length)} (${formatSize(e.length)})`;
}

export function describeEvent(e: EventRecord, c: Colors, indexWidth = 0): string {
  const where = e.proc !== undefined ? (e.vma !== undefined ? `${e.proc}/${e.vma}` : e.proc) : '';
  const head = [`[${e.index}]`.padStart(indexWidth + 2), e.op.padEnd(8), where]
    .filter(Boolean)
    .join(' ');
  switch (e.op) {
    case 'mmap':
    case 'mremap':
    case 'munmap':
      return `${head} ${range(e)}`;
    case 'mprotect':
      return `${head} ${range(e)} prot=${e.result}`;
    case 'touch':
    case 'write': {
      const bad = e.outcome === 'sigsegv' || e.outcome === 'oom';
      const outcome = bad ? c.red(String(e.outcome).toUpperCase()) : e.outcome;
      return `${head} ${range(e)}: ${e.accesses} access${e.accesses === 1 ? '' : 'es'}, worst outcome ${outcome}`;
    }
    case 'madvise':
    case 'swapout': {
      const res = e.result === 'ok' ? c.green('ok') : c.yellow(String(e.result));
      const exp = e.expect !== undefined && e.expect !== 'ok' ? ' (as expected)' : '';
      return `${head} ${e.advice} ${range(e)} -> ${res}${exp}`;
    }
    case 'fork':
      return `${head} -> ${e.child}`;
    case 'prctl':
      return `${head} thp_disable=${e.result}`;
    case 'sleep':
      return `${head} ${e.ms} ms`;
    case 'shrink':
      return `${head} split ${e.split}`;
    case 'sysfs':
      return `${head} ${e.path} = ${JSON.stringify(e.result)}`;
    case 'report':
      return `${head} ${JSON.stringify(e.label)}`;
    default:
      return head;
  }
}

function processTable(p: ProcessReport, cfg: RunConfig, c: Colors): string {
  const t = table(
    ['VMA', 'Name', 'Size', 'Rss', 'Anonymous', 'AnonHugePages', 'Swap', 'Orders'],
    c,
    ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left'],
  );
  for (const v of p.vmas) {
    t.push([
      `${hex(v.start)}-${hex(v.end)}`,
      v.name || '-',
      v.Size,
      v.Rss,
      v.Anonymous,
      v.AnonHugePages,
      v.Swap,
      orderBreakdown(v.byOrder, cfg.pageSize),
    ]);
  }
  const s = p.totals;
  t.push([
    c.bold('total'),
    '',
    s.Size,
    s.Rss,
    s.Anonymous,
    s.AnonHugePages,
    s.Swap,
    orderBreakdown(s.byOrder, cfg.pageSize),
  ]);
  return `${c.bold(`${p.name}`)} (pid ${p.pid}), smaps in kB\n${t.toString()}`;
}

const ORDER_STATS = [
  'nr_anon',
  'anon_fault_alloc',
  'anon_fault_fallback',
  'split',
  'split_deferred',
  'swpout',
] as const;

function orderTable(orders: OrderReport[], c: Colors): string {
  const t = table(['size', 'order', 'enabled', ...ORDER_STATS], c, [
    'right',
    'right',
    'left',
    ...ORDER_STATS.map(() => 'right' as const),
  ]);
  for (const o of orders) {
    const enabled = o.enabled === 'never' ? c.dim(o.enabled) : o.enabled;
    t.push([formatKb(o.sizeKb), o.order, enabled, ...ORDER_STATS.map((k) => o.stats[k] ?? 0)]);
  }
  return `${c.bold('per-order (hugepages-<size>kB)')}\n${t.toString()}`;
}

function meminfoLines(r: Report): string {
  return Object.entries(r.meminfo)
    .map(([k, v]) => `  ${(k + ':').padEnd(16)}${String(v).padStart(10)} kB`)
    .join('\n');
}

function vmstatLines(r: Report): string {
  const lines = Object.entries(r.vmstat)
    .filter(([k, v]) => k.startsWith('thp_') && v !== 0)
    .map(([k, v]) => `  ${k.padEnd(28)}${String(v).padStart(10)}`);
  return lines.length ? lines.join('\n') : '  (all zero)';
}

export function renderReport(r: Report, cfg: RunConfig, c: Colors): string {
  const where = r.event === null ? 'end of timeline' : `timeline[${r.event}]`;
  const out: string[] = [c.bold(c.cyan(`== report "${r.label}" (${where}, t=${r.clockMs} ms) ==`))];
  if (r.processes.length === 0) out.push('(no live processes)');
  for (const p of r.processes) out.push(processTable(p, cfg, c));
  out.push(orderTable(r.orders, c));
  out.push(`${c.bold('meminfo')}\n${meminfoLines(r)}`);
  out.push(`${c.bold('vmstat (nonzero thp_*)')}\n${vmstatLines(r)}`);
  return out.join('\n\n');
}

export function renderRun(result: RunResult, opts: TextOptions = {}): string {
  const c = pc.createColors(opts.color ?? false);
  const out: string[] = [];
  const s = result.scenario;
  out.push(`${c.bold(`scenario ${s.name}`)}${s.description ? `: ${s.description}` : ''}`);
  out.push(`machine: ${describeConfig(result.config)}`);
  const sysfs = Object.entries(result.sysfs);
  if (sysfs.length) out.push(`sysfs: ${sysfs.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  out.push('');
  out.push(c.bold('timeline'));
  if (result.events.length === 0) out.push('  (empty)');
  const width = String(Math.max(0, result.events.length - 1)).length;
  for (const e of result.events) out.push(`  ${describeEvent(e, c, width)}`.trimEnd());
  for (const r of result.reports) {
    out.push('');
    out.push(renderReport(r, result.config, c));
  }
  return out.join('\n') + '\n';
}
