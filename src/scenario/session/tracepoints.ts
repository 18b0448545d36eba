// What a run collects from the machine's tracepoints: the PMD attempts (thpsim_pmd_result), the
// collapse summary by order, and with RunOptions.trace every tracepoint.

import type { TraceEvent } from '../../mm/trace.ts';
import type { CollapseSummary, OrderCollapses, PmdAttempt } from '../run-result.ts';
import { MAX_ATTEMPTS, MAX_TRACE } from '../run-result.ts';
import { hex } from '../size.ts';
import type { ProcRef } from './session.ts';

/** The tracepoint sink of a run. */
export class Tracepoints {
  /** The timeline event running now (its index), or null for the header and after the run. */
  current: number | null = null;
  readonly attempts: PmdAttempt[] = [];
  attemptsDropped = 0;
  readonly trace: TraceEvent[] | undefined;
  traceDropped = 0;
  readonly collapses: CollapseSummary = { byOrder: {}, pmdResults: {}, lastCollapseMs: null };
  /** The attempts of the event running now. */
  private eventAttempts: PmdAttempt[] = [];

  constructor(
    private readonly byMmId: ReadonlyMap<number, ProcRef>,
    private readonly pageSize: number,
    private readonly pmdOrder: number,
    keepTrace: boolean,
  ) {
    this.trace = keepTrace ? [] : undefined;
  }

  /** A new timeline event starts (null: the run is over). */
  begin(event: number | null): void {
    this.current = event;
    this.eventAttempts = [];
  }

  /** Map a thpsim_pmd_result trace event to a PmdAttempt (null for other events). */
  attemptOf(e: TraceEvent): PmdAttempt | null {
    if (e.name !== 'thpsim_pmd_result') return null;
    const f = e.fields;
    const p = this.byMmId.get(Number(f.mm));
    const addr = Number(f.vpn) * this.pageSize;
    let vma: string | undefined;
    let offset: number | undefined;
    if (p)
      for (const [n, v] of p.vmas)
        if (addr >= v.start && addr < v.start + v.length) {
          vma = n;
          offset = addr - v.start;
          break;
        }
    return {
      t: e.t,
      by: f.khugepaged ? 'khugepaged' : 'madvise',
      event: this.current,
      proc: p?.name ?? `mm${String(f.mm)}`,
      ...(vma !== undefined ? { vma, offset } : {}),
      addr,
      result: String(f.result),
      none_or_zero: Number(f.none_or_zero),
      swap: Number(f.swap),
      shared: Number(f.shared),
      referenced: Number(f.referenced),
    };
  }

  /** The machine's trace sink. */
  record(e: TraceEvent): void {
    this.countCollapse(e);
    const trace = this.trace;
    if (trace) {
      if (trace.length < MAX_TRACE) trace.push({ t: e.t, name: e.name, fields: { ...e.fields } });
      else this.traceDropped++;
    }
    const a = this.attemptOf(e);
    if (a) {
      this.eventAttempts.push(a);
      if (this.attempts.length < MAX_ATTEMPTS) this.attempts.push(a);
      else this.attemptsDropped++;
    }
  }

  /** The attempts of the current event, for an error message. */
  eventSummary(): string {
    return attemptSummary(this.eventAttempts);
  }

  /** The stored attempts of a process on [addr, addr + length), for an error message. */
  rangeSummary(proc: string, addr: number, length: number): string {
    return attemptSummary(
      this.attempts.filter((a) => a.proc === proc && a.addr >= addr && a.addr < addr + length),
    );
  }

  private orderCollapses(o: number): OrderCollapses {
    return (this.collapses.byOrder[o] ??= {
      attempts: 0,
      succeeded: 0,
      bloatPages: 0,
      results: {},
      lastSuccessMs: null,
    });
  }

  private countCollapse(e: TraceEvent): void {
    const f = e.fields;
    if (e.name === 'mm_collapse_huge_page') {
      // The 6.18 tracepoint has no order field: PMD order.
      const c = this.orderCollapses(f.order === undefined ? this.pmdOrder : Number(f.order));
      c.attempts++;
      c.results[String(f.status)] = (c.results[String(f.status)] ?? 0) + 1;
    } else if (e.name === 'thpsim_collapse') {
      const c = this.orderCollapses(Number(f.order));
      c.succeeded++;
      c.bloatPages += Number(f.none_or_zero);
      c.lastSuccessMs = e.t;
      this.collapses.lastCollapseMs = e.t;
    } else if (e.name === 'thpsim_pmd_result') {
      const r = String(f.result);
      this.collapses.pmdResults[r] = (this.collapses.pmdResults[r] ?? 0) + 1;
    }
  }
}

/** The last attempt at each of the first four PMD ranges tried, on one line. */
function attemptSummary(list: readonly PmdAttempt[]): string {
  if (list.length === 0) return 'no PMD range was tried';
  const last = new Map<number, PmdAttempt>();
  for (const a of list) last.set(a.addr, a);
  return [...last.values()]
    .slice(0, 4)
    .map(
      (a) =>
        `${a.by} ${hex(a.addr)} ${a.result}${a.none_or_zero >= 0 ? ` (none_or_zero ${a.none_or_zero}, swap ${a.swap}, shared ${a.shared}, referenced ${a.referenced})` : ''}`,
    )
    .join('; ');
}
