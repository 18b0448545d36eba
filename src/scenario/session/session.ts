// The state of one running scenario: the machine, the processes and their named VMAs, the
// records so far and the header's settings. The op handlers (mapping.ts, access.ts, collapse.ts,
// reports.ts, settings.ts) act on it; run.ts drives the timeline.

import { type Geometry, orderSizeKb } from '../../mm/geometry.ts';
import type { KernelConfig } from '../../mm/kernel.ts';
import { Errno, Machine, type Mm } from '../../sim/machine.ts';
import { ScenarioError } from '../errors.ts';
import type { EventRecord, Report, RunConfig, RunOptions } from '../run-result.ts';
import { SYSFS_PREFIX } from '../run-result.ts';
import type { ContextName, Scenario, TimelineEvent, Variant } from '../schema.ts';
import type { SysfsStack } from '../selftest.ts';
import { Tracepoints } from './tracepoints.ts';

export type VmaKind = 'anon' | 'file' | 'shmem';

/** A named VMA of a process, as the scenario knows it (moved by mremap, cut by munmap). */
export interface VmaRef {
  start: number;
  length: number;
  /** What backs it: smaps counts its PMD mappings as AnonHugePages, FilePmdMapped, ShmemPmdMapped. */
  kind: VmaKind;
  shared: boolean;
  /** The file (or unnamed shmem object) and the byte offset of `start` in it. */
  object?: string;
  pgoff: number;
}

/** A process of the scenario. */
export interface ProcRef {
  name: string;
  mm: Mm;
  vmas: Map<string, VmaRef>;
  exited: boolean;
  /** Page contents as last written (page number -> token; NaN: unknown), for `check intact`. */
  shadow: Map<number, number>;
}

/** A sysfs path relative to /sys/kernel/mm/transparent_hugepage/ (the prefix may be written). */
export function sysfsRelPath(path: string): string {
  return path.startsWith(SYSFS_PREFIX) ? path.slice(SYSFS_PREFIX.length) : path.replace(/^\/+/, '');
}

/** An error's message on one line; an Errno's "ERRNO: " prefix goes when the rest names an errno. */
export function errMessage(e: unknown): string {
  let msg = e instanceof Error ? e.message : String(e);
  if (
    e instanceof Errno &&
    msg.startsWith(`${e.errno}: `) &&
    /\bE[A-Z]{2,}\b/.test(msg.slice(e.errno.length + 2))
  )
    msg = msg.slice(e.errno.length + 2);
  return msg.replace(/\s*\n\s*/g, ' ');
}

export function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** One running scenario. */
export class ScenarioSession {
  /** The file name used in error messages. */
  readonly source: string;
  readonly machine: Machine;
  readonly geo: Geometry;
  /** The base page size in bytes. */
  readonly ps: number;
  readonly procs = new Map<string, ProcRef>();
  readonly byMmId = new Map<number, ProcRef>();
  /** Processes in the order they were created (reports list them so). */
  readonly order: ProcRef[] = [];
  readonly events: EventRecord[] = [];
  readonly reports: Report[] = [];
  /** The header's sysfs writes, in the order applied. */
  readonly sysfs: Record<string, string> = {};
  readonly notes: string[] = [];
  /** Files created by the scenario (create_file, setup_area). */
  readonly files = new Map<string, { tmpfs: boolean }>();
  /** sysfs_push/sysfs_pop, as the selftests' push_settings/pop_settings. */
  readonly stack: SysfsStack = [];
  readonly variant: Variant;
  /** A selftest file (it declares `contexts`). */
  readonly selftest: boolean;
  readonly context: ContextName | undefined;
  /** Page contents are tracked only when something checks them. */
  readonly tracking: boolean;
  readonly tracepoints: Tracepoints;
  shmSeq = 0;
  fileSeq = 0;

  constructor(
    readonly s: Scenario,
    readonly config: RunConfig,
    readonly opts: RunOptions,
  ) {
    this.source = opts.source ?? s.name;
    try {
      const cfg: KernelConfig = {
        profile: config.profile,
        collapsePolicy: config.collapsePolicy,
        geometry: config.geometry,
        ramBytes: config.ramBytes,
        swapBytes: config.swapBytes,
        seed: config.seed,
      };
      this.machine = opts.createMachine ? opts.createMachine(cfg) : new Machine(cfg);
    } catch (e) {
      throw new ScenarioError(this.source, '', `cannot build the machine: ${errMessage(e)}`, {
        cause: e,
      });
    }
    this.geo = this.machine.kernel.geo;
    this.ps = this.geo.pageSize;
    this.variant = s.variant ?? {};
    this.selftest = s.contexts !== undefined;
    this.context = this.variant.context as ContextName | undefined;
    this.tracking = this.selftest || s.timeline.some((e) => e.op === 'check' && e.intact);
    this.tracepoints = new Tracepoints(this.byMmId, this.ps, this.geo.pmdOrder, !!opts.trace);
    this.machine.setTrace((e) => this.tracepoints.record(e));
  }

  /** Where timeline event i came from, for error messages. */
  at(i: number): string {
    return this.s.sources?.[i] ?? `timeline[${i}]`;
  }

  /** A ScenarioError at a field of the scenario. */
  error(field: string, message: string, cause?: unknown): ScenarioError {
    return new ScenarioError(this.source, field, message, cause === undefined ? {} : { cause });
  }

  /** "hugepages-order<N>/..." names the order-N size directory on this geometry. */
  orderPath(rel: string): string {
    return rel.replace(
      /^hugepages-order(\d+)\//,
      (_, o: string) => `hugepages-${orderSizeKb(this.geo, Number(o))}kB/`,
    );
  }

  /** Run Machine.checkInvariants() when the run asks for it. */
  invariants(field: string, what: string): void {
    if (!this.opts.checkInvariants) return;
    try {
      this.machine.checkInvariants();
    } catch (e) {
      throw this.error(field, `invariant violated after ${what}: ${errMessage(e)}`, e);
    }
  }

  addProc(name: string, mm: Mm): ProcRef {
    const ref: ProcRef = { name, mm, vmas: new Map(), exited: false, shadow: new Map() };
    this.procs.set(name, ref);
    this.byMmId.set(mm.id, ref);
    this.order.push(ref);
    return ref;
  }

  procOf(name: string, i: number, field = 'proc'): ProcRef {
    const p = this.procs.get(name);
    // checkScenario() rules these out for validated scenarios.
    if (!p || p.exited) throw this.error(`${this.at(i)}.${field}`, `no live process "${name}"`);
    return p;
  }

  vmaOf(p: ProcRef, name: string, i: number, field = 'vma'): VmaRef {
    const v = p.vmas.get(name);
    if (!v) throw this.error(`${this.at(i)}.${field}`, `no vma "${name}" in process "${p.name}"`);
    return v;
  }

  /** The VMA a process maps at addr, by the scenario's names. */
  vmaAt(p: ProcRef, addr: number): VmaRef | undefined {
    for (const v of p.vmas.values()) if (addr >= v.start && addr < v.start + v.length) return v;
    return undefined;
  }

  khugepagedCounters(): { pages_collapsed: number; full_scans: number } {
    const k = this.machine.khugepaged();
    return { pages_collapsed: k.pages_collapsed, full_scans: k.full_scans };
  }

  /** Report progress: `done` events (with a fraction for one in progress). */
  progress(done: number): void {
    this.opts.onProgress?.({
      done,
      total: this.s.timeline.length,
      clockMs: this.machine.kernel.clockMs,
    });
  }
}

/** The byte range of an event's offset/length within a VMA (the rest of the VMA by default). */
export function rangeOf(
  v: VmaRef,
  e: { offset?: number; length?: number },
): { addr: number; length: number } {
  const offset = e.offset ?? 0;
  return { addr: v.start + offset, length: e.length ?? Math.max(0, v.length - offset) };
}

/** "mmap app/heap" etc., for error messages. */
export function eventLabel(e: TimelineEvent): string {
  const parts: string[] = [e.op];
  if ('proc' in e) parts.push('vma' in e ? `${e.proc}/${e.vma}` : e.proc);
  if (e.op === 'madvise') parts.push(e.advice);
  if (e.op === 'sysfs') parts.push(e.path);
  return parts.join(' ');
}
