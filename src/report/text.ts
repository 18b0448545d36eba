// Human-readable output of a run: the timeline, then per report an smaps-like table per process,
// a per-order (mTHP) summary, meminfo and the nonzero THP vmstat counters. Colours only when the
// caller asks (the CLI asks when stdout is a TTY and NO_COLOR is unset).

import Table from 'cli-table3';
import pc from 'picocolors';
import type { TraceEvent } from '../mm/trace.ts';
import type {
  EventRecord,
  OrderReport,
  PmdAttempt,
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
  /** Rows of the khugepaged table before the rest is summarised (default 200). */
  maxAttemptRows?: number;
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

function pmdResults(e: EventRecord, c: Colors): string {
  if (!e.pmds?.length) return '';
  const counts = new Map<string, number>();
  for (const p of e.pmds) counts.set(p.result, (counts.get(p.result) ?? 0) + 1);
  const parts = [...counts].map(([r, n]) => {
    const name = r === 'SCAN_SUCCEED' || r === 'SCAN_PMD_MAPPED' ? c.green(r) : c.yellow(r);
    return n > 1 ? `${n} x ${name}` : name;
  });
  return `: ${parts.join(', ')}`;
}

export function describeEvent(e: EventRecord, c: Colors, indexWidth = 0, opWidth = 8): string {
  const where = e.proc !== undefined ? (e.vma !== undefined ? `${e.proc}/${e.vma}` : e.proc) : '';
  const head = [`[${e.index}]`.padStart(indexWidth + 2), e.op.padEnd(opWidth), where]
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
      return `${head} ${e.ms} ms${e.full_scans !== undefined ? ` (khugepaged so far: full_scans ${e.full_scans}, pages_collapsed ${e.pages_collapsed})` : ''}`;
    case 'shrink':
      return `${head} split ${e.split}`;
    case 'sysfs':
      return `${head} ${e.path} = ${JSON.stringify(e.result)}`;
    case 'report':
      return `${head} ${JSON.stringify(e.label)}`;
    case 'create_file':
      return `${head} ${e.file} (${formatSize(e.length ?? 0)})`;
    case 'setup_area':
      return `${head} ${range(e)} ${e.mem}${e.file ? ` (${e.file})` : ''}`;
    case 'populate':
    case 'fault': {
      const bad = e.outcome === 'sigsegv' || e.outcome === 'oom';
      const outcome = bad ? c.red(String(e.outcome).toUpperCase()) : e.outcome;
      return `${head} ${range(e)} ${e.mode}: ${e.accesses} access${e.accesses === 1 ? '' : 'es'}, worst outcome ${outcome}`;
    }
    case 'collapse': {
      const res = e.result === 'ok' ? c.green('ok') : c.yellow(String(e.result));
      return `${head} MADV_COLLAPSE ${range(e)} -> ${res}${e.retried ? ' (retried after EAGAIN)' : ''}${pmdResults(e, c)}`;
    }
    case 'wait_khugepaged':
      return `${head} ${e.ms} ms, full_scans ${e.full_scans}, pages_collapsed ${e.pages_collapsed}${e.timedOut ? c.yellow(' (timed out)') : ''}`;
    case 'check': {
      const parts = Object.entries(e.checked ?? {}).map(([k, v]) => `${k}=${v.actual} kB`);
      if (e.intactPages !== undefined) parts.push(`${e.intactPages} pages intact`);
      return `${head} ${range(e)}: ${c.green('ok')}${parts.length ? ` (${parts.join(', ')})` : ''}`;
    }
    case 'collapse_ctx': {
      const ok = c.green('ok');
      const how =
        e.context === 'khugepaged'
          ? `waited ${e.ms} ms, full_scans ${e.full_scans}${e.refault ? `, refault (${e.refault})` : ''}`
          : `MADV_COLLAPSE -> ${e.result}${e.retried ? ' (retried)' : ''}`;
      return `${head} ${range(e)} ${e.context} context: ${String(e.observed).replace('_', ' ')}, as expected: ${ok} (${how})`;
    }
    case 'sysfs_push':
      return `${head} ${Object.entries(e.values ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`;
    default:
      return head;
  }
}

/** smaps fields shown only when some VMA of the process has them nonzero (file and shmem THPs). */
const FILE_FIELDS = ['ShmemPmdMapped', 'FilePmdMapped'] as const;

function processTable(p: ProcessReport, cfg: RunConfig, c: Colors): string {
  const extra = FILE_FIELDS.filter((f) => (p.totals[f] ?? 0) > 0);
  const t = table(
    ['VMA', 'Name', 'Size', 'Rss', 'Anonymous', 'AnonHugePages', ...extra, 'Swap', 'Orders'],
    c,
    [
      'left',
      'left',
      'right',
      'right',
      'right',
      'right',
      ...extra.map(() => 'right' as const),
      'right',
      'left',
    ],
  );
  const field = (v: object, f: string) => (v as Record<string, number | undefined>)[f] ?? 0;
  for (const v of p.vmas) {
    t.push([
      `${hex(v.start)}-${hex(v.end)}`,
      v.name || '-',
      v.Size,
      v.Rss,
      v.Anonymous,
      v.AnonHugePages,
      ...extra.map((f) => field(v, f)),
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
    ...extra.map((f) => field(s, f)),
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
  // Memory cgroups (processes with memory_max, src/mm/memcg.ts).
  for (const g of r.memcg ?? [])
    out.push(
      `${c.bold(`memcg ${g.name}`)}\n  memory.current ${g.current} kB, memory.max ${g.max === null ? 'max' : `${g.max} kB`}, memory.peak ${g.peak} kB; memory.events max ${g.events.max}, oom ${g.events.oom}, oom_kill ${g.events.oom_kill}`,
    );
  out.push(`${c.bold('vmstat (nonzero thp_*)')}\n${vmstatLines(r)}`);
  out.push(
    `${c.bold('khugepaged')}\n  pages_collapsed ${r.khugepaged.pages_collapsed}, full_scans ${r.khugepaged.full_scans}`,
  );
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
  const opWidth = Math.max(8, ...result.events.map((e) => e.op.length));
  for (const e of result.events) out.push(`  ${describeEvent(e, c, width, opWidth)}`.trimEnd());
  if (result.notes?.length) {
    out.push('');
    for (const n of result.notes) out.push(c.dim(`note: ${n}`));
  }
  if (result.khugepaged.attempts.length > 0) {
    out.push('');
    out.push(renderAttempts(result, c, opts.maxAttemptRows ?? 200));
  }
  if (result.trace) {
    out.push('');
    out.push(
      c.bold(
        `trace (${result.trace.length} events${result.traceDropped ? `, ${result.traceDropped} more not kept` : ''})`,
      ),
    );
    for (const e of result.trace) out.push(`  ${traceLine(e)}`);
  }
  for (const r of result.reports) {
    out.push('');
    out.push(renderReport(r, result.config, c));
  }
  return out.join('\n') + '\n';
}

/** Why a PMD range did or did not collapse, in a few words (mm/khugepaged.c's scan results). */
export const SCAN_REASONS: Record<string, string> = {
  SCAN_SUCCEED: 'collapsed',
  SCAN_PMD_MAPPED: 'already PMD-mapped',
  SCAN_FAIL: 'failed',
  SCAN_NO_PTE_TABLE: 'no PTE table (nothing mapped)',
  SCAN_PMD_NULL: 'no PMD table',
  SCAN_PMD_NONE: 'PMD entry empty',
  SCAN_EXCEED_NONE_PTE: 'more empty PTEs than max_ptes_none',
  SCAN_EXCEED_SWAP_PTE: 'more swap PTEs than max_ptes_swap',
  SCAN_EXCEED_SHARED_PTE: 'more shared PTEs than max_ptes_shared',
  SCAN_PTE_NON_PRESENT: 'a non-present PTE',
  SCAN_PTE_UFFD_WP: 'a uffd-wp PTE',
  SCAN_PTE_MAPPED_HUGEPAGE: 'already a large enough folio (anon), or a THP in the page cache',
  SCAN_LACK_REFERENCED_PAGE: 'not enough referenced pages',
  SCAN_PAGE_NULL: 'no page',
  SCAN_SCAN_ABORT: 'scan aborted',
  SCAN_PAGE_COUNT: 'unexpected page references (pinned or in use)',
  SCAN_PAGE_LRU: 'page not on the LRU',
  SCAN_PAGE_LOCK: 'page locked',
  SCAN_PAGE_ANON: 'not an anonymous page',
  SCAN_PAGE_LAZYFREE: 'lazy-free page',
  SCAN_PAGE_COMPOUND: 'compound page',
  SCAN_ANY_PROCESS: 'no process',
  SCAN_VMA_NULL: 'no VMA',
  SCAN_VMA_CHECK: 'VMA not eligible',
  SCAN_ADDRESS_RANGE: 'range outside the VMA',
  SCAN_DEL_PAGE_LRU: 'could not isolate from the LRU',
  SCAN_ALLOC_HUGE_PAGE_FAIL: 'no huge page available',
  SCAN_CGROUP_CHARGE_FAIL: 'memcg charge failed',
  SCAN_TRUNCATED: 'file truncated',
  SCAN_PAGE_HAS_PRIVATE: 'page has private data',
  SCAN_STORE_FAILED: 'page-cache store failed',
  SCAN_COPY_MC: 'machine check while copying',
  SCAN_PAGE_FILLED: 'page cache already filled',
  SCAN_PAGE_DIRTY_OR_WRITEBACK: 'dirty or under writeback',
};

function count(n: number): string {
  return n < 0 ? '-' : String(n);
}

/**
 * The PMD ranges khugepaged and MADV_COLLAPSE tried: one row per range and outcome (repeated
 * scans with the same outcome are folded into one row with a count and a time span).
 */
export function renderAttempts(result: RunResult, c: Colors, maxRows: number): string {
  const k = result.khugepaged;
  interface Row {
    a: PmdAttempt;
    first: number;
    last: number;
    n: number;
  }
  const rows = new Map<string, Row>();
  for (const a of k.attempts) {
    const key = [
      a.by,
      a.proc,
      a.addr,
      a.result,
      a.none_or_zero,
      a.swap,
      a.shared,
      a.referenced,
    ].join('|');
    const r = rows.get(key);
    if (r) {
      r.last = a.t;
      r.n++;
    } else rows.set(key, { a, first: a.t, last: a.t, n: 1 });
  }
  const where = (a: PmdAttempt) =>
    a.vma ? `${a.proc}/${a.vma}${a.offset ? `+${formatSize(a.offset)}` : ''}` : a.proc;
  const t = table(
    [
      't (ms)',
      'by',
      'where',
      'PMD address',
      'result',
      'why',
      'none/zero',
      'swap',
      'shared',
      'referenced',
      'times',
    ],
    c,
    ['right', 'left', 'left', 'left', 'left', 'left', 'right', 'right', 'right', 'right', 'right'],
  );
  const all = [...rows.values()];
  for (const r of all.slice(0, maxRows)) {
    const a = r.a;
    const ok = a.result === 'SCAN_SUCCEED' || a.result === 'SCAN_PMD_MAPPED';
    t.push([
      r.first === r.last ? r.first : `${r.first}-${r.last}`,
      a.by,
      where(a),
      hex(a.addr),
      ok ? c.green(a.result) : c.yellow(a.result),
      SCAN_REASONS[a.result] ?? '',
      count(a.none_or_zero),
      count(a.swap),
      count(a.shared),
      count(a.referenced),
      r.n,
    ]);
  }
  const more =
    all.length > maxRows
      ? `\n  ... ${all.length - maxRows} more rows (run with --json for all)`
      : '';
  const dropped = k.dropped ? `\n  (${k.dropped} later attempts not kept)` : '';
  return `${c.bold(`khugepaged and MADV_COLLAPSE, per PMD range`)} (pages_collapsed ${k.pages_collapsed}, full_scans ${k.full_scans})\n${t.toString()}${more}${dropped}`;
}

/** One tracepoint as a line: `t=12 mm_khugepaged_scan_pmd mm=1 pfn=... status=SCAN_SUCCEED`. */
export function traceLine(e: TraceEvent): string {
  const fields = Object.entries(e.fields)
    .map(
      ([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`,
    )
    .join(' ');
  return `t=${e.t} ${e.name}${fields ? ` ${fields}` : ''}`;
}
