// `thpsim oracle`: run one resolved scenario on the live kernel (through KernelMachine and the
// native helper) and on the model (linux-6.18, starting from the kernel's current settings), both
// with the same scenario runner, and compare what happened. Scenarios or steps this kernel
// cannot run are "not comparable", with the reason; they never count as agreeing.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GeometryName } from '../mm/geometry.ts';
import type { KernelConfig } from '../mm/kernel.ts';
import type { ProfileName } from '../mm/profile.ts';
import { sysfsList } from '../mm/sysfs.ts';
import { ScenarioError } from '../scenario/errors.ts';
import { type RunSession, errMessage, runScenarioSession } from '../scenario/run.ts';
import type { Scenario, TimelineEvent, Variant } from '../scenario/schema.ts';
import { sysfsValueOf } from '../scenario/selftest.ts';
import type { Machine } from '../sim/machine.ts';
import type { Capabilities } from './capabilities.ts';
import {
  type Difference,
  type RegionSnap,
  type SideResult,
  type Snapshot,
  diffSides,
} from './diff.ts';
import { HelperSession } from './helper.ts';
import { KernelMachine, NotComparableError } from './kernel-machine.ts';
import { ModelMachine, type OracleSide, pageSymbol, rle, shareSymbol } from './pages.ts';
import type { SysfsGuard } from './sysfs-guard.ts';

/** The model profile of the kernels the oracle runs on (no mTHP collapse). */
export const ORACLE_PROFILE: ProfileName = 'linux-6.18';

export interface OracleEnv {
  caps: Capabilities;
  /** The built helper binary. */
  helperBin: string;
  guard: SysfsGuard;
  thpRoot: string;
  /** The machine's geometry (x86-64-4k here). */
  geometry: GeometryName;
}

export type Verdict = 'equal' | 'differ' | 'not-comparable';

export interface OracleResult {
  scenario: string;
  source: string;
  variant: Variant;
  verdict: Verdict;
  /** Why the scenario (or a step of it) could not be compared. */
  notComparable?: string[];
  notes: string[];
  differences: Difference[];
  kernel?: SideResult;
  model?: SideResult;
}

/** The geometry of the machine we run on, if the model has it. */
export function machineGeometry(pageSize: number, pmdSize: number | null): GeometryName | null {
  if (pageSize !== 4096 || pmdSize !== 2 * 2 ** 20) return null;
  return process.arch === 'arm64' ? 'arm64-4k' : 'x86-64-4k';
}

const SNAPSHOT_OPS = new Set<TimelineEvent['op']>([
  'collapse_ctx',
  'collapse',
  'check',
  'report',
  'wait_khugepaged',
  'fork',
  'exit',
  'write',
  'touch',
  'madvise',
  'fault',
  'populate',
  'mprotect',
  'mremap',
  'munmap',
]);

function usesSwap(s: Scenario): boolean {
  return (
    (s.swap ?? 0) > 0 ||
    s.timeline.some(
      (e) =>
        e.op === 'swapout' ||
        (e.op === 'madvise' && e.advice === 'pageout') ||
        (e.op === 'check' && (e.Swap ?? 0) > 0),
    )
  );
}

/** Why this resolved scenario cannot be compared here (empty: it can). */
export function staticReasons(s: Scenario, env: Pick<OracleEnv, 'caps' | 'geometry'>): string[] {
  const out: string[] = [];
  const caps = env.caps;
  if ((s.geometry ?? env.geometry) !== env.geometry)
    out.push(`geometry ${s.geometry}: this machine is ${env.geometry}`);
  if (s.variant.context === 'mthp_khugepaged' && !caps.mthpCollapseStats)
    out.push(
      `mTHP collapse (the mthp_khugepaged context) needs the mTHP collapse series; Linux ${caps.release} has no hugepages-*/stats/collapse_*`,
    );
  const mem = s.variant.mem;
  if (
    (mem !== undefined && mem !== 'anon') ||
    s.timeline.some(
      (e) =>
        e.op === 'create_file' ||
        e.op === 'drop_caches' ||
        (e.op === 'mmap' && (e.file !== undefined || e.shared === true)) ||
        (e.op === 'setup_area' && e.mem !== undefined && e.mem !== 'anon'),
    )
  )
    out.push(
      `${mem && mem !== 'anon' ? `mem=${mem}: ` : ''}file and shmem memory: the helper maps private anonymous memory only`,
    );
  if (usesSwap(s) && caps.swapAreas === 0)
    out.push('swap-out (MADV_PAGEOUT, swap: in the header): this machine has no swap device');
  if (s.timeline.some((e) => e.op === 'shrink'))
    out.push('shrink: the deferred-split shrinker cannot be run on demand on a live kernel');
  return out;
}

/** The kernel's current values of the THP knobs the model also has (copied into the model). */
export function kernelSettings(thpRoot: string, model: Machine): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const rel of sysfsList(model.kernel)) {
    if (rel.includes('/stats/') || /full_scans|pages_collapsed|hpage_pmd_size/.test(rel)) continue;
    let text: string;
    try {
      text = readFileSync(join(thpRoot, rel), 'utf8');
    } catch {
      continue;
    }
    out.push([rel, sysfsValueOf(text)]);
  }
  return out;
}

function notComparableIn(e: unknown): NotComparableError | undefined {
  for (let x: unknown = e; x instanceof Error; x = x.cause)
    if (x instanceof NotComparableError) return x;
  return undefined;
}

/** Take a snapshot of every live process's named mappings. */
export function snapshot(
  side: OracleSide,
  pmdSize: number,
  pageSize: number,
  event: number,
  label: string,
): Snapshot {
  const regions: RegionSnap[] = [];
  for (const { name, mm } of side.liveProcs()) {
    for (const r of side.regions(mm).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const n = (r.end - r.start) / pageSize;
      const codes = side.pageCodes(mm, r.start, n);
      const chunks: RegionSnap['chunks'] = [];
      let i = 0;
      while (i < n) {
        const addr = r.start + i * pageSize;
        const next = Math.min(n, i + (pmdSize - (addr % pmdSize)) / pageSize);
        const part = codes.slice(i, next);
        chunks.push({
          offset: i * pageSize,
          orders: rle(part.map(pageSymbol).join('')),
          share: rle(part.map(shareSymbol).join('')),
        });
        i = next;
      }
      regions.push({ proc: name, vma: r.name, startInPmd: r.start % pmdSize, pages: n, chunks });
    }
  }
  return { event, label, regions, counters: side.counters() };
}

type SideMachine = Machine & OracleSide;

function unreliable(m: SideMachine | undefined): { countersUnreliable?: string } {
  const why = m instanceof KernelMachine ? m.countersUnreliable : undefined;
  return why ? { countersUnreliable: why } : {};
}

/** Run one side; a NotComparableError anywhere in it is thrown, other failures are recorded. */
function runSide(
  s: Scenario,
  source: string,
  create: (cfg: KernelConfig) => SideMachine,
): SideResult {
  const t0 = performance.now();
  let machine: SideMachine | undefined;
  const snapshots: Snapshot[] = [];
  const take = (event: number, label: string) => {
    if (!machine) return;
    const g = machine.kernel.geo;
    snapshots.push(snapshot(machine, g.pmdSize, g.pageSize, event, label));
  };
  let session: RunSession | undefined;
  try {
    session = runScenarioSession(s, {
      source,
      createMachine: (cfg) => (machine = create(cfg)),
      onProgress: (p) => {
        if (!Number.isInteger(p.done) || p.done < 1) return;
        const i = p.done - 1;
        const e = s.timeline[i];
        const src = s.sources[i] ?? `timeline[${i}]`;
        if (!SNAPSHOT_OPS.has(e.op) || src.includes('[i=') || /\]\[\w+=/.test(src)) return;
        // MADV_HUGEPAGE maps nothing; and the first mm to register wakes a khugepaged that had
        // no work at once on the kernel, while the model runs it at the next wait.
        if (e.op === 'madvise' && (e.advice === 'hugepage' || e.advice === 'nohugepage')) return;
        if (snapshots.length > 0 && snapshots[snapshots.length - 1].event === i) return;
        const label = `timeline[${i}] ${e.op}${'proc' in e ? ` ${e.proc}` : ''}${e.op === 'madvise' ? ` ${e.advice}` : ''}`;
        take(i, label);
      },
    });
    take(-1, 'the end');
    return {
      events: session.result.events,
      snapshots,
      ms: Math.round(performance.now() - t0),
      ...unreliable(machine),
    };
  } catch (e) {
    const nc = notComparableIn(e);
    if (nc) throw nc;
    if (!(e instanceof ScenarioError)) throw e;
    return {
      error: { field: e.field, message: e.message },
      events: [],
      snapshots,
      ms: Math.round(performance.now() - t0),
      ...unreliable(machine),
    };
  } finally {
    if (machine instanceof KernelMachine) machine.close();
  }
}

export interface OracleRunOptions {
  /** Counters not compared, with the reason noted. */
  skipCounters?: { match: (name: string) => boolean; reason: string };
  /** Re-run once when only global counters differ (default true). */
  retryCounters?: boolean;
}

/** Run a resolved scenario on both sides and compare. Restores sysfs before returning. */
export function runOracle(
  s: Scenario,
  source: string,
  env: OracleEnv,
  opts: OracleRunOptions = {},
): OracleResult {
  const base = { scenario: s.name, source, variant: { ...s.variant } };
  const notes: string[] = [];
  const reasons = staticReasons(s, env);
  if (reasons.length)
    return { ...base, verdict: 'not-comparable', notComparable: reasons, notes, differences: [] };
  if (s.profile && s.profile !== ORACLE_PROFILE)
    notes.push(`profile ${s.profile} replaced by ${ORACLE_PROFILE}, the profile of this kernel`);
  const scenario: Scenario = { ...s, profile: ORACLE_PROFILE, geometry: env.geometry };
  if (opts.skipCounters) notes.push(`counters not compared: ${opts.skipCounters.reason}`);

  const attempt = (): OracleResult => {
    // The kernel's settings now, before this run changes anything.
    let settings: Array<[string, string]> = [];
    const model = runSide(scenario, source, (cfg) => {
      const m = new ModelMachine({ ...cfg, profile: ORACLE_PROFILE });
      m.collapseStats = env.caps.mthpCollapseStats;
      settings = kernelSettings(env.thpRoot, m);
      for (const [rel, value] of settings) {
        try {
          m.sysfsWrite(rel, value);
        } catch (e) {
          notes.push(`the model does not take ${rel}=${value}: ${errMessage(e)}`);
        }
      }
      return m;
    });
    let kernel: SideResult;
    try {
      kernel = runSide(
        scenario,
        source,
        (cfg) =>
          new KernelMachine(
            { ...cfg, profile: ORACLE_PROFILE },
            {
              session: new HelperSession(env.helperBin),
              guard: env.guard,
              thpRoot: env.thpRoot,
              collapseStats: env.caps.mthpCollapseStats,
              mirror: settings,
            },
          ),
      );
    } finally {
      env.guard.restore();
    }
    const skipAll = kernel.countersUnreliable;
    if (skipAll && !opts.skipCounters) notes.push(`counters not compared: ${skipAll}`);
    const differences = diffSides(kernel, model, {
      skipCounters: skipAll ? () => true : opts.skipCounters?.match,
    });
    return {
      ...base,
      verdict: differences.length ? 'differ' : 'equal',
      notes,
      differences,
      kernel,
      model,
    };
  };

  try {
    const first = attempt();
    if (
      first.verdict !== 'differ' ||
      opts.retryCounters === false ||
      !first.differences.every((d) => d.counter)
    )
      return first;
    // Only global counters differ: other processes move them too. Run again; a real difference
    // repeats with the same values, noise does not.
    const again = attempt();
    const key = (d: Difference) => `${d.where}|${d.what}|${d.kernel}|${d.model}`;
    const before = new Set(first.differences.map(key));
    const stable = again.differences.filter((d) => !d.counter || before.has(key(d)));
    const unstable = [...first.differences, ...again.differences].filter(
      (d) => d.counter && !stable.includes(d),
    );
    if (unstable.length)
      again.notes.push(
        `global counters moved differently in two runs (${[...new Set(unstable.map((d) => `${d.what} ${d.kernel}/${d.model}`))].slice(0, 6).join(', ')}): other processes on this machine; not counted as differences`,
      );
    again.differences = stable;
    again.verdict = stable.length ? 'differ' : 'equal';
    return again;
  } catch (e) {
    const nc = notComparableIn(e);
    if (!nc) throw e;
    return {
      ...base,
      verdict: 'not-comparable',
      notComparable: [nc.message],
      notes,
      differences: [],
    };
  }
}
