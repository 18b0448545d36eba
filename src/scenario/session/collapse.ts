// Collapse ops: MADV_COLLAPSE (collapse), waiting for khugepaged (wait_khugepaged), and the
// selftests' collapse_ctx in the khugepaged, madvise and mthp_khugepaged contexts.

import { orderSizeKb } from '../../mm/geometry.ts';
import type { Mm } from '../../sim/machine.ts';
import type { EventRecord } from '../run-result.ts';
import type { CollapseExpect, EventOf } from '../schema.ts';
import {
  hugeField,
  khugepagedWaitMs,
  madviseContextSettings,
  sysfsPop,
  sysfsPush,
} from '../selftest.ts';
import { fault } from './access.ts';
import type { OpHandlers } from './handler.ts';
import { type ProcRef, type ScenarioSession, type VmaRef, plural, rangeOf } from './session.ts';
import { smapsKb } from './reports.ts';

/** The selftest's check_huge: the PMD-mapped kB of the VMA that starts at addr, in bytes. */
function hugeAt(ss: ScenarioSession, p: ProcRef, v: VmaRef, addr: number): number {
  const e = ss.machine.smaps(p.mm).find((x) => x.start === addr);
  return e ? smapsKb(e, hugeField(v.kind)) * 1024 : 0;
}

/** Mapped kB of order-`o` folios in [addr, addr + length) (smaps byOrder of the VMAs in it). */
function orderKbAt(ss: ScenarioSession, p: ProcRef, addr: number, length: number, o: number) {
  return ss.machine
    .smaps(p.mm)
    .filter((x) => x.end > addr && x.start < addr + length)
    .reduce((sum, x) => sum + (x.byOrder[o] ?? 0), 0);
}

/** MADV_COLLAPSE, once more after EAGAIN when asked (as the selftests' madvise_collapse). */
function collapseCall(ss: ScenarioSession, mm: Mm, addr: number, length: number, retry: boolean) {
  let r = ss.machine.collapse(mm, addr, length);
  let retried = false;
  if (retry && r.errno === 'EAGAIN') {
    r = ss.machine.collapse(mm, addr, length);
    retried = true;
  }
  const result = r.errno === 0 ? 'ok' : String(r.errno);
  return { result, pmds: r.pmds.map((x) => ({ addr: x.addr, result: x.result })), retried };
}

const waitKhugepaged: OpHandlers['wait_khugepaged'] = (ss, e, i, rec) => {
  const u = e.until_collapsed;
  let done: (() => boolean) | undefined;
  let awaited = 0;
  if (u) {
    const p = ss.procOf(u.proc, i, 'until_collapsed.proc');
    const v = ss.vmaOf(p, u.vma, i, 'until_collapsed.vma');
    const want = u.pmds === undefined ? Math.floor(v.length / ss.geo.pmdSize) : u.pmds;
    awaited = want * ss.geo.pmdSize;
    done = () => hugeAt(ss, p, v, v.start) === awaited;
  }
  const scans = e.scans ?? 2;
  const maxMs = e.max_ms ?? khugepagedWaitMs(awaited);
  const before = ss.machine.khugepaged().full_scans;
  const ms = ss.machine.waitKhugepaged(scans, maxMs, done);
  const k = ss.khugepagedCounters();
  const timedOut = !(done?.() ?? false) && k.full_scans < before + scans;
  if (timedOut && e.on_timeout === 'fail')
    throw ss.error(
      `${ss.at(i)}.on_timeout`,
      `khugepaged did not complete ${plural(scans, 'full scan')} in ${ms} ms (full_scans ${before} -> ${k.full_scans})${u ? ' and the range did not collapse' : ''}`,
    );
  return { ...rec, ms, ...k, timedOut };
};

/** What collapse_ctx needs of its event, resolved against the VMA and the context. */
interface CtxRun {
  ss: ScenarioSession;
  e: EventOf<'collapse_ctx'>;
  i: number;
  out: EventRecord;
  p: ProcRef;
  v: VmaRef;
  addr: number;
  length: number;
  expected: CollapseExpect;
  want: boolean;
  failed: (detail: string) => never;
}

/** khugepaged.c's c->collapse(): the khugepaged or the madvise context. */
const collapseCtx: OpHandlers['collapse_ctx'] = (ss, e, i, rec) => {
  const context = ss.context;
  if (!context)
    throw ss.error(
      ss.at(i),
      'collapse_ctx needs a selftest context: declare contexts: [khugepaged, madvise] in the header',
    );
  const p = ss.procOf(e.proc, i);
  const v = ss.vmaOf(p, e.vma, i);
  const offset = e.offset ?? 0;
  const addr = v.start + offset;
  const nr = e.pmds ?? Math.floor((v.length - offset) / ss.geo.pmdSize);
  const length = nr * ss.geo.pmdSize;
  const expected: CollapseExpect =
    typeof e.expect === 'string'
      ? e.expect
      : context === 'mthp_khugepaged'
        ? (e.expect.mthp_khugepaged ?? e.expect.khugepaged)
        : e.expect[context];
  const want = expected === 'collapsed';
  const out: EventRecord = { ...rec, proc: e.proc, vma: e.vma, addr, length, context, expected };
  const label = `${e.proc}/${e.vma}${e.label ? ` "${e.label}"` : ''}`;
  if (context === 'mthp_khugepaged') return mthpCollapseCtx(ss, e, i, out, p, v, label, want);
  const what = `collapse_ctx ${label} (${context} context, ${v.kind})`;
  const failed = (detail: string): never => {
    throw ss.error(`${ss.at(i)}.expect`, `${what}: ${detail}`);
  };
  const run: CtxRun = { ss, e, i, out, p, v, addr, length, expected, want, failed };
  // Sanity check: the range must not be PMD-mapped already.
  if (e.precheck !== false && hugeAt(ss, p, v, addr) !== 0)
    failed(
      `unexpected huge page before the collapse (${hugeField(v.kind)} ${hugeAt(ss, p, v, addr) / 1024} kB)`,
    );
  return context === 'khugepaged' ? khugepagedCtx(run) : madviseCtx(run);
};

const observedOf = (bytes: number, length: number): CollapseExpect | 'partial' =>
  bytes === length ? 'collapsed' : bytes === 0 ? 'not_collapsed' : 'partial';

function gotText(r: CtxRun, bytes: number): string {
  return `${hugeField(r.v.kind)} ${bytes / 1024} kB, expected ${r.want ? r.length / 1024 : 0} kB`;
}

/** The khugepaged context: MADV_HUGEPAGE, then wait for two full scans or the collapse. */
function khugepagedCtx(r: CtxRun): EventRecord {
  const { ss, p, v, addr, length, out, failed } = r;
  ss.machine.madvise(p.mm, addr, length, 'hugepage');
  const before = ss.machine.khugepaged().full_scans;
  const ms = ss.machine.waitKhugepaged(
    2,
    khugepagedWaitMs(length),
    () => hugeAt(ss, p, v, addr) === length,
  );
  const k = ss.khugepagedCounters();
  Object.assign(out, { ms, ...k });
  const timedOut = hugeAt(ss, p, v, addr) !== length && k.full_scans < before + 2;
  if (timedOut) {
    out.observed = 'timeout';
    out.timedOut = true;
    if (r.want)
      failed(
        `timed out after ${ms} ms (full_scans ${before} -> ${k.full_scans}) waiting for the collapse; ${ss.tracepoints.eventSummary()}`,
      );
    return out;
  }
  // File and shmem: khugepaged leaves the THP in the page cache; the next fault maps it.
  if (v.kind !== 'anon') out.refault = fault(ss, p, v, addr, length, r.i).mode;
  const bytes = hugeAt(ss, p, v, addr);
  out.observed = observedOf(bytes, length);
  if (bytes !== (r.want ? length : 0))
    failed(
      `expected ${r.expected}, got ${out.observed}: ${gotText(r, bytes)}; ${ss.tracepoints.eventSummary()}`,
    );
  return out;
}

/** The madvise context: keep khugepaged out (and show that MADV_COLLAPSE ignores `enabled`). */
function madviseCtx(r: CtxRun): EventRecord {
  const { ss, p, v, addr, length, out, failed } = r;
  sysfsPush(ss.machine, ss.stack, madviseContextSettings(ss.machine));
  try {
    ss.machine.madvise(p.mm, addr, length, 'hugepage');
    const c = collapseCall(ss, p.mm, addr, length, true);
    Object.assign(out, {
      result: c.result,
      pmds: c.pmds,
      ...(c.retried ? { retried: true } : {}),
    });
    const bytes = hugeAt(ss, p, v, addr);
    out.observed = observedOf(bytes, length);
    if ((c.result === 'ok') !== r.want)
      failed(
        `MADV_COLLAPSE returned ${c.result}, expected ${r.want ? 'success' : 'an error'}; ${ss.tracepoints.eventSummary()}`,
      );
    if (bytes !== (r.want ? length : 0))
      failed(
        `MADV_COLLAPSE returned ${c.result} but ${gotText(r, bytes)}; ${ss.tracepoints.eventSummary()}`,
      );
  } finally {
    sysfsPop(ss.machine, ss.stack);
  }
  return out;
}

/**
 * The mthp_khugepaged context (kernel-selftests.md section 3.1): enabled = never (so the PMD
 * size, inherit, is off), every size never but order c = always; MADV_HUGEPAGE; wait for two
 * full scans or until the range holds the expected number of order-c folios.
 */
function mthpCollapseCtx(
  ss: ScenarioSession,
  e: EventOf<'collapse_ctx'>,
  i: number,
  out: EventRecord,
  p: ProcRef,
  v: VmaRef,
  label: string,
  want: boolean,
): EventRecord {
  const addr = out.addr!;
  const length = out.length!;
  const geo = ss.geo;
  const c = e.order ?? 4;
  const what = `collapse_ctx ${label} (mthp_khugepaged context, order ${c})`;
  if (v.kind !== 'anon' || c >= geo.pmdOrder || !(geo.anonOrders & (1 << c)))
    throw ss.error(
      ss.at(i),
      `${what}: needs anon memory and a supported mTHP order below the PMD order ${geo.pmdOrder}`,
    );
  const folioKb = orderSizeKb(geo, c);
  const wantKb = (e.folios ?? (want ? length / (folioKb * 1024) : 0)) * folioKb;
  const settings = madviseContextSettings(ss.machine).filter(([f]) => !f.includes('shmem'));
  settings.push([`hugepages-${folioKb}kB/enabled`, 'always']);
  sysfsPush(ss.machine, ss.stack, settings);
  try {
    ss.machine.madvise(p.mm, addr, length, 'hugepage');
    const before = ss.machine.khugepaged().full_scans;
    const ms = ss.machine.waitKhugepaged(
      2,
      khugepagedWaitMs(length),
      () => wantKb > 0 && orderKbAt(ss, p, addr, length, c) === wantKb,
    );
    const k = ss.khugepagedCounters();
    Object.assign(out, { ms, ...k });
    const kb = orderKbAt(ss, p, addr, length, c);
    out.observed = kb === 0 ? 'not_collapsed' : kb === length / 1024 ? 'collapsed' : 'partial';
    if (kb !== wantKb) {
      const timedOut = k.full_scans < before + 2;
      throw ss.error(
        `${ss.at(i)}.expect`,
        `${what}: order-${c} folios map ${kb} kB (${kb / folioKb} folios), expected ${wantKb} kB (${wantKb / folioKb} folios)${timedOut ? `; timed out after ${ms} ms (full_scans ${before} -> ${k.full_scans})` : ''}; ${ss.tracepoints.eventSummary()}`,
      );
    }
  } finally {
    sysfsPop(ss.machine, ss.stack);
  }
  return out;
}

export const collapseOps = {
  collapse(ss, e, i, rec) {
    const p = ss.procOf(e.proc, i);
    const r = rangeOf(ss.vmaOf(p, e.vma, i), e);
    const c = collapseCall(ss, p.mm, r.addr, r.length, e.retry_eagain ?? false);
    if (e.expect !== undefined && e.expect !== c.result)
      throw ss.error(
        `${ss.at(i)}.expect`,
        `MADV_COLLAPSE on ${e.proc}/${e.vma} returned ${c.result}, expected ${e.expect}: ${ss.tracepoints.eventSummary()}`,
      );
    return {
      ...rec,
      proc: e.proc,
      vma: e.vma,
      ...r,
      result: c.result,
      pmds: c.pmds,
      ...(c.retried ? { retried: true } : {}),
      ...(e.expect !== undefined ? { expect: e.expect } : {}),
    };
  },
  wait_khugepaged: waitKhugepaged,
  collapse_ctx: collapseCtx,
} satisfies Partial<OpHandlers>;
