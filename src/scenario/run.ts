// Run a validated scenario on a Machine and collect a plain, JSON-serialisable result. The run is
// deterministic: the same scenario (and overrides) gives a byte-identical JSON result.
//
// The session (session/session.ts) holds the run's state; each op family has its handlers in
// session/: mapping, access (with page contents), collapse and selftest contexts, reports, and
// time and settings. Besides the version-1 events, the runner knows the kernel selftests'
// vocabulary (selftest.ts): a scenario that declares `contexts` gets the selftest's global
// settings first, and its `collapse_ctx` events run as khugepaged.c's contexts do.

import { geometry as geometryOf } from '../mm/geometry.ts';
import { DEFAULT_PROFILE } from '../mm/profile.ts';
import type { TraceEvent } from '../mm/trace.ts';
import { Errno, type Machine, type Mm } from '../sim/machine.ts';
import { ScenarioError } from './errors.ts';
import { DEFAULT_GEOMETRY } from './resolve.ts';
import {
  DEFAULT_RAM_BYTES,
  DEFAULT_SEED,
  DEFAULT_SWAP_BYTES,
  type EventRecord,
  type PmdAttempt,
  type RunConfig,
  type RunOptions,
  type RunResult,
} from './run-result.ts';
import type { Scenario, TimelineEvent } from './schema.ts';
import { accessOps } from './session/access.ts';
import { collapseOps } from './session/collapse.ts';
import type { OpHandler, OpHandlers } from './session/handler.ts';
import { mappingOps } from './session/mapping.ts';
import { reportOps, snapshot } from './session/reports.ts';
import { ScenarioSession, errMessage, eventLabel, rangeOf } from './session/session.ts';
import { applyHeader, settingsOps } from './session/settings.ts';
import { formatSize } from './size.ts';

export * from './run-result.ts';
export { DEFAULT_GEOMETRY, errMessage };
export { sysfsRelPath, type VmaKind, type VmaRef } from './session/session.ts';

/** Every op's handler. */
const HANDLERS: OpHandlers = {
  ...mappingOps,
  ...accessOps,
  ...collapseOps,
  ...reportOps,
  ...settingsOps,
};

export function runConfig(s: Scenario): RunConfig {
  const geo = geometryOf(s.geometry ?? DEFAULT_GEOMETRY);
  return {
    profile: s.profile ?? DEFAULT_PROFILE,
    collapsePolicy: s.collapse_policy ?? 'v19',
    geometry: geo.name,
    ramBytes: s.ram ?? DEFAULT_RAM_BYTES,
    swapBytes: s.swap ?? DEFAULT_SWAP_BYTES,
    seed: s.seed ?? DEFAULT_SEED,
    pageSize: geo.pageSize,
    pmdSize: geo.pmdSize,
  };
}

/** A running scenario: the result so far, the machine, and the named VMAs. */
export interface RunSession {
  result: RunResult;
  machine: Machine;
  /** The byte range of a named VMA of a live process (offset/length relative to it). */
  range(
    proc: string,
    vma: string,
    offset?: number,
    length?: number,
  ): { mm: Mm; addr: number; length: number };
  /** Map a thpsim_pmd_result trace event to a PmdAttempt (null for other events). */
  attemptOf(e: TraceEvent): PmdAttempt | null;
}

export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  return runScenarioSession(s, opts).result;
}

/** Run one timeline event; any error becomes a ScenarioError naming the event. */
function runEvent(ss: ScenarioSession, e: TimelineEvent, i: number): EventRecord {
  const rec: EventRecord = { index: i, op: e.op };
  const src = ss.s.sources?.[i];
  if (src !== undefined && src !== `timeline[${i}]`) rec.source = src;
  try {
    return (HANDLERS[e.op] as OpHandler<typeof e.op>)(ss, e as never, i, rec);
  } catch (err) {
    if (err instanceof ScenarioError) throw err;
    const what = eventLabel(e);
    const detail =
      err instanceof Errno
        ? `${what} failed: ${errMessage(err)}`
        : `${what}: model error: ${errMessage(err)}`;
    throw ss.error(ss.at(i), detail, err);
  }
}

function resultOf(ss: ScenarioSession): RunResult {
  const { s, tracepoints: tp } = ss;
  return {
    format: 'thpsim-run',
    version: 1,
    scenario: {
      name: s.name,
      ...(s.description !== undefined ? { description: s.description } : {}),
    },
    config: ss.config,
    ...(Object.keys(ss.variant).length ? { variant: { ...ss.variant } } : {}),
    sysfs: ss.sysfs,
    ...(ss.notes.length ? { notes: ss.notes } : {}),
    events: ss.events,
    khugepaged: {
      ...ss.khugepagedCounters(),
      attempts: tp.attempts,
      dropped: tp.attemptsDropped,
    },
    collapses: tp.collapses,
    ...(tp.trace
      ? { trace: tp.trace, ...(tp.traceDropped ? { traceDropped: tp.traceDropped } : {}) }
      : {}),
    reports: ss.reports,
  };
}

export function runScenarioSession(s: Scenario, opts: RunOptions = {}): RunSession {
  const ss = new ScenarioSession(s, runConfig(s), opts);
  applyHeader(ss);
  for (const [i, e] of s.timeline.entries()) {
    ss.tracepoints.begin(i);
    ss.events.push(runEvent(ss, e, i));
    ss.invariants(ss.at(i), eventLabel(e));
    ss.progress(i + 1);
  }
  ss.tracepoints.begin(null);
  if (!s.timeline.some((e) => e.op === 'report')) {
    try {
      ss.reports.push(snapshot(ss, 'final', null));
    } catch (err) {
      throw ss.error('', `final report: model error: ${errMessage(err)}`, err);
    }
  }
  return {
    result: resultOf(ss),
    machine: ss.machine,
    range(proc, vma, offset, length) {
      const p = ss.procs.get(proc);
      if (!p || p.exited)
        throw ss.error(
          '',
          `no live process "${proc}" at the end of the run (live: ${
            ss.order
              .filter((x) => !x.exited)
              .map((x) => x.name)
              .join(', ') || 'none'
          })`,
        );
      const v = p.vmas.get(vma);
      if (!v)
        throw ss.error(
          '',
          `process "${proc}" has no vma "${vma}" at the end of the run (known: ${[...p.vmas.keys()].join(', ') || 'none'})`,
        );
      return { mm: p.mm, ...rangeOf(v, { offset, length }) };
    },
    attemptOf: (e) => ss.tracepoints.attemptOf(e),
  };
}

/** A short description of the machine, e.g. "x86-64-4k, 4KiB pages, 2MiB PMD, 1GiB RAM". */
export function describeConfig(c: RunConfig): string {
  return `${c.profile}${c.collapsePolicy !== 'v19' ? ` (collapse policy ${c.collapsePolicy})` : ''}, ${c.geometry} (${formatSize(c.pageSize)} pages, ${formatSize(c.pmdSize)} PMD), RAM ${formatSize(c.ramBytes)}, ${c.swapBytes ? `swap ${formatSize(c.swapBytes)}` : 'no swap'}, seed ${c.seed}`;
}
