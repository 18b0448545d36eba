// The comparison of a scenario's run on the live kernel with its run on the model: per event the
// results the runner recorded (madvise and MADV_COLLAPSE errnos, what a collapse context
// observed, what a check read), per snapshot the folio order of every page, PMD by PMD, and
// the counters. Pure functions over plain data, so they are tested without a kernel.

import type { EventRecord } from '../scenario/run.ts';

/** The pages of one named mapping, cut at PMD boundaries. */
export interface RegionSnap {
  proc: string;
  vma: string;
  /** Where the mapping starts within its PMD (bytes): the two sides must agree. */
  startInPmd: number;
  pages: number;
  /** Per PMD-bounded chunk: its offset in the mapping, the page symbols and exclusivity (RLE). */
  chunks: Array<{ offset: number; orders: string; share: string }>;
}

export interface Snapshot {
  /** The timeline event after which it was taken (-1: the end of the run). */
  event: number;
  label: string;
  regions: RegionSnap[];
  counters: Record<string, number>;
}

export interface SideResult {
  /** The run stopped: the field (e.g. "timeline[7].expect") and the message. */
  error?: { field: string; message: string };
  events: EventRecord[];
  snapshots: Snapshot[];
  /** Wall-clock milliseconds. */
  ms: number;
  /** Why the side's global counters cannot be compared, if they cannot. */
  countersUnreliable?: string;
}

export interface Difference {
  /** "timeline[3] madvise", "after timeline[5] collapse_ctx: test/area @0", ... */
  where: string;
  what: string;
  kernel: string;
  model: string;
  /** A global counter (other processes can move it). */
  counter?: boolean;
}

export interface DiffOptions {
  /** Counters not compared (with the reason in the result's notes). */
  skipCounters?: (name: string) => boolean;
  /** Compare exclusivity (PM_MMAP_EXCLUSIVE) too. */
  exclusive?: boolean;
}

/** The fields of an event record that must agree (timing, addresses and model-only detail not). */
export function comparableEvent(e: EventRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (e.result !== undefined && e.op !== 'mmap' && e.op !== 'sysfs') out.result = e.result;
  // A khugepaged wait that ran out of time saw no collapse either. Whether khugepaged finishes
  // its full scans in time depends on the other processes registered with it (on a live machine
  // there are some; in the model there are none), so the two are the same outcome here.
  if (e.observed !== undefined)
    out.observed = e.observed === 'timeout' ? 'not_collapsed' : e.observed;
  if (e.retried !== undefined) out.retried = e.retried;
  if (e.intactPages !== undefined) out.intactPages = e.intactPages;
  if (e.outcome === 'sigsegv') out.outcome = e.outcome;
  if (e.checked) for (const [k, v] of Object.entries(e.checked)) out[`checked ${k}`] = v.actual;
  return out;
}

function show(v: unknown): string {
  return v === undefined ? '-' : typeof v === 'string' ? v : JSON.stringify(v);
}

/** "timeline[3]" from "timeline[3].expect". */
export function eventOfField(field: string): string {
  return /^timeline\[\d+\]/.exec(field)?.[0] ?? field;
}

export function diffSides(k: SideResult, m: SideResult, opts: DiffOptions = {}): Difference[] {
  const out: Difference[] = [];
  // 1. Did both runs get through, or stop at the same event?
  if (k.error || m.error) {
    const ke = k.error ? eventOfField(k.error.field) : 'completed';
    const me = m.error ? eventOfField(m.error.field) : 'completed';
    if (ke !== me)
      out.push({
        where: 'run',
        what: 'outcome',
        kernel: k.error ? k.error.message : 'completed',
        model: m.error ? m.error.message : 'completed',
      });
  }
  // 2. Event results (only when both completed: a failed run has no records).
  const n = Math.min(k.events.length, m.events.length);
  for (let i = 0; i < n; i++) {
    const ke = comparableEvent(k.events[i]);
    const me = comparableEvent(m.events[i]);
    for (const f of new Set([...Object.keys(ke), ...Object.keys(me)])) {
      if (JSON.stringify(ke[f]) === JSON.stringify(me[f])) continue;
      out.push({
        where: `timeline[${i}] ${m.events[i].op}${m.events[i].source ? ` (${m.events[i].source})` : ''}`,
        what: f,
        kernel: show(ke[f]),
        model: show(me[f]),
      });
    }
  }
  // 3. Snapshots, paired in order while they are of the same event.
  const s = Math.min(k.snapshots.length, m.snapshots.length);
  for (let i = 0; i < s; i++) {
    const ks = k.snapshots[i];
    const ms = m.snapshots[i];
    if (ks.event !== ms.event) break;
    const at = `after ${ms.label}`;
    const key = (r: RegionSnap) => `${r.proc}/${r.vma}`;
    const kr = new Map(ks.regions.map((r) => [key(r), r]));
    const mr = new Map(ms.regions.map((r) => [key(r), r]));
    for (const name of new Set([...kr.keys(), ...mr.keys()])) {
      const a = kr.get(name);
      const b = mr.get(name);
      if (!a || !b) {
        out.push({
          where: `${at}: ${name}`,
          what: 'mapping',
          kernel: a ? `${a.pages} pages` : 'absent',
          model: b ? `${b.pages} pages` : 'absent',
        });
        continue;
      }
      if (a.startInPmd !== b.startInPmd || a.pages !== b.pages) {
        out.push({
          where: `${at}: ${name}`,
          what: 'placement',
          kernel: `${a.pages} pages at +${a.startInPmd} in a PMD`,
          model: `${b.pages} pages at +${b.startInPmd} in a PMD`,
        });
        continue;
      }
      for (let c = 0; c < Math.max(a.chunks.length, b.chunks.length); c++) {
        const x = a.chunks[c];
        const y = b.chunks[c];
        const where = `${at}: ${name} +${(y ?? x).offset}`;
        if (x?.orders !== y?.orders)
          out.push({
            where,
            what: 'folio orders',
            kernel: x?.orders ?? '-',
            model: y?.orders ?? '-',
          });
        else if (opts.exclusive !== false && x?.share !== y?.share)
          out.push({ where, what: 'exclusive', kernel: x?.share ?? '-', model: y?.share ?? '-' });
      }
    }
    for (const c of new Set([...Object.keys(ks.counters), ...Object.keys(ms.counters)])) {
      if (!(c in ks.counters) || !(c in ms.counters) || opts.skipCounters?.(c)) continue;
      if (ks.counters[c] !== ms.counters[c])
        out.push({
          where: at,
          what: c,
          kernel: String(ks.counters[c]),
          model: String(ms.counters[c]),
          counter: true,
        });
    }
  }
  return out;
}

/** Side-by-side text of the snapshots: one row per PMD chunk, '!' where the sides differ. */
export function renderSnapshots(k: SideResult, m: SideResult, width = 44): string[] {
  const lines: string[] = [];
  const pad = (s: string) => (s.length > width ? s.slice(0, width - 1) + '~' : s.padEnd(width));
  const s = Math.min(k.snapshots.length, m.snapshots.length);
  for (let i = 0; i < s; i++) {
    const ks = k.snapshots[i];
    const ms = m.snapshots[i];
    if (ks.event !== ms.event) break;
    lines.push(`after ${ms.label}`);
    const kr = new Map(ks.regions.map((r) => [`${r.proc}/${r.vma}`, r]));
    for (const r of ms.regions) {
      const o = kr.get(`${r.proc}/${r.vma}`);
      for (const [c, chunk] of r.chunks.entries()) {
        const kc = o?.chunks[c];
        const same = kc?.orders === chunk.orders;
        lines.push(
          `  ${same ? ' ' : '!'} ${`${r.proc}/${r.vma} +${chunk.offset}`.padEnd(22)} ${pad(kc?.orders ?? '(none)')} ${pad(chunk.orders)}`,
        );
      }
    }
    for (const r of ks.regions)
      if (!ms.regions.some((x) => x.proc === r.proc && x.vma === r.vma))
        lines.push(`  ! ${`${r.proc}/${r.vma}`.padEnd(22)} ${pad(`${r.pages} pages`)} (none)`);
    const counters = Object.keys(ms.counters)
      .filter((c) => c in ks.counters && (ks.counters[c] !== 0 || ms.counters[c] !== 0))
      .map(
        (c) =>
          `${c} ${ks.counters[c]}${ks.counters[c] === ms.counters[c] ? '' : `/${ms.counters[c]}`}`,
      );
    if (counters.length) lines.push(`    counters (kernel[/model]): ${counters.join(', ')}`);
  }
  return lines;
}
