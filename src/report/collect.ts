// The metrics collector: runs a scenario like `thpsim run` and records, beside the run result,
// what the report and the viewer need that a RunResult does not hold: coverage samples after
// every event and every khugepaged pass, the address space (PMD by PMD, PTE by PTE) at each
// report, buddyinfo, creep events, per-collapse costs, the TLB estimate from the access stream,
// and the mTHP order walks' inputs for the collapse explainer.
//
// It observes the machine from outside: a Machine subclass sees every user access and every
// tracepoint, Machine.onKhugepagedPass marks khugepaged passes, onProgress marks events.

import { smapsCounts } from '../mm/accounting.ts';
import type { Kernel, KernelConfig } from '../mm/kernel.ts';
import { B_SPECIAL, B_YOUNG, E_PRESENT, E_SWAP, E_TYPE_MASK } from '../mm/pgtable.ts';
import type { TraceEvent, TraceSink } from '../mm/trace.ts';
import { type Mm, type Vma, VM_FLAG_NAMES } from '../mm/vma.ts';
import { walkRange } from '../mm/walk.ts';
import { type RunOptions, type RunResult, runScenarioSession } from '../scenario/run.ts';
import type { Scenario } from '../scenario/schema.ts';
import { type AccessOutcome, Machine } from '../sim/machine.ts';
import { collapseCostUs } from './metrics.ts';
import {
  type AddressMap,
  type CollapseCost,
  type CreepEvent,
  type PmdExplain,
  type PmdMap,
  PTE_NONE,
  PTE_OTHER,
  PTE_PRESENT,
  PTE_SHARED,
  PTE_SHARED_YOUNG,
  PTE_SWAP,
  PTE_YOUNG,
  PTE_ZERO,
  type RunMetrics,
  type Sample,
  type VmaMap,
} from './model.ts';
import { TlbModel } from './tlb.ts';

export const MAX_SAMPLES = 4000;
export const MAX_EXPLAIN = 2000;
export const MAX_CREEP = 10_000;
/** PTEs recorded state by state per address map; PMD ranges beyond it get only their order. */
export const MAX_DETAIL_PTES = 1 << 19;

export type RunWithMetrics = RunResult & { metrics: RunMetrics };

export interface CollectOptions extends Omit<RunOptions, 'createMachine'> {
  /** Keep the whole trace in the result (as `run --trace`); the collector reads it either way. */
  keepTrace?: boolean;
}

const COUNTERS = [
  'thp_fault_alloc',
  'thp_fault_fallback',
  'thp_collapse_alloc',
  'thp_collapse_alloc_failed',
  'thp_split_page',
  'thp_deferred_split_page',
];

/** A Machine that reports every user access and tees the tracepoints. */
class ObservedMachine extends Machine {
  onAccess: ((mm: Mm, addr: number, write: boolean) => void) | null = null;
  onTrace: TraceSink | null = null;

  override access(mm: Mm, addr: number, write: boolean): AccessOutcome {
    const r = super.access(mm, addr, write);
    this.onAccess?.(mm, addr, write);
    return r;
  }

  override setTrace(sink: TraceSink | null): void {
    const mine = this.onTrace;
    super.setTrace(
      sink && mine
        ? (e) => {
            sink(e);
            mine(e);
          }
        : (sink ?? mine),
    );
  }
}

function vmaKind(k: Kernel, vma: Vma): VmaMap['kind'] {
  if (vma.isAnonymous) return 'anon';
  return k.files.get(vma.file)?.tmpfs ? 'shmem' : 'file';
}

/** The address space of every live process: per PMD range its largest folio order and PTEs. */
export function addressMap(machine: Machine, label: string, detail = MAX_DETAIL_PTES): AddressMap {
  const k = machine.kernel;
  const nr = k.geo.ptrsPerPte;
  const ps = k.geo.pageSize;
  const f = k.folios;
  const vmas: VmaMap[] = [];
  let budget = detail;
  const mms = [...k.mms.values()].sort((a, b) => a.id - b.id);
  for (const mm of mms) {
    for (const vma of mm.vmas) {
      const pmds: PmdMap[] = [];
      const first = Math.floor(vma.start / nr) * nr;
      for (let base = first; base < vma.end; base += nr) {
        const lo = Math.max(base, vma.start);
        const hi = Math.min(base + nr, vma.end);
        const want = budget >= nr;
        const ptes = want ? new Array<string>(nr).fill(PTE_NONE) : null;
        const folios: Array<[number, number, number, number]> = [];
        let order = -1;
        let huge = false;
        walkRange(k, mm, lo, hi, {
          pmd: (_vpn, _t, _i, bits, val) => {
            huge = true;
            const head = f.headOf(val);
            order = Math.max(order, f.order[head]);
            if (ptes) {
              const young = (bits & B_YOUNG) !== 0;
              const shared = f.mapcount[head] > 1;
              ptes.fill(
                shared ? (young ? PTE_SHARED_YOUNG : PTE_SHARED) : young ? PTE_YOUNG : PTE_PRESENT,
              );
              folios.push([0, nr, f.order[head], head]);
            }
          },
          pte: (vpn, _t, _i, bits, val) => {
            const type = bits & E_TYPE_MASK;
            const i = vpn - base;
            if (type === E_PRESENT) {
              const head = f.headOf(val);
              const o = f.order[head];
              if (!(bits & B_SPECIAL)) order = Math.max(order, o);
              if (!ptes) return;
              if (bits & B_SPECIAL) {
                ptes[i] = PTE_ZERO;
                return;
              }
              const young = (bits & B_YOUNG) !== 0;
              const shared = f.pageMapcount(val) > 1 || f.maybeMappedShared(head);
              ptes[i] = shared
                ? young
                  ? PTE_SHARED_YOUNG
                  : PTE_SHARED
                : young
                  ? PTE_YOUNG
                  : PTE_PRESENT;
              const last = folios[folios.length - 1];
              if (last && last[3] === head && last[0] + last[1] === i) last[1]++;
              else folios.push([i, 1, o, head]);
            } else if (ptes) {
              ptes[i] = type === E_SWAP ? PTE_SWAP : PTE_OTHER;
            }
          },
        });
        const pmd: PmdMap = { addr: base * ps, order, huge };
        if (ptes) {
          budget -= nr;
          pmd.ptes = ptes.join('');
          pmd.folios = folios;
        }
        pmds.push(pmd);
      }
      vmas.push({
        proc: mm.name,
        name: vma.name,
        start: vma.start * ps,
        end: vma.end * ps,
        kind: vmaKind(k, vma),
        flags: VM_FLAG_NAMES.filter(([bit]) => vma.flags & bit)
          .map(([, n]) => n)
          .join(' '),
        pmds,
      });
    }
  }
  return { label, t: k.clockMs, vmas };
}

/** Run a scenario and collect the metrics (see the file comment). */
export function runWithMetrics(s: Scenario, opts: CollectOptions = {}): RunWithMetrics {
  let machine: ObservedMachine | undefined;
  const samples: Sample[] = [];
  let samplesDropped = 0;
  let passStride = 1;
  let passNo = 0;
  const maps: AddressMap[] = [];
  const buddyinfoByReport: RunMetrics['buddyinfoByReport'] = [];
  const creep: CreepEvent[] = [];
  const collapseCosts: CollapseCost[] = [];
  const explain: PmdExplain[] = [];
  let explainDropped = 0;
  let bloatKb = 0;
  let tlb: TlbModel | undefined;
  /** Access sequence numbers: per mm, per page, the last access; collapses take one too. */
  let seq = 0;
  const lastAccess = new Map<number, Map<number, number>>();
  const collapsed = new Map<
    number,
    Array<{ vpn: number; order: number; t: number; seq: number }>
  >();
  let openExplain: PmdExplain | null = null;

  const procName = (id: number): string => machine?.kernel.mms.get(id)?.name ?? `mm${id}`;
  const vmaAt = (mmId: number, addr: number): { vma?: string; vmaOffset?: number } => {
    const mm = machine?.kernel.mms.get(mmId);
    const vma = mm?.findVma(addr / (machine?.kernel.geo.pageSize ?? 1));
    if (!vma || !machine) return {};
    return { vma: vma.name, vmaOffset: addr - vma.start * machine.kernel.geo.pageSize };
  };

  const onTrace = (e: TraceEvent): void => {
    const k = machine!.kernel;
    const ps = k.geo.pageSize;
    const f = e.fields;
    if (e.name === 'thpsim_mthp_bitmap') {
      const mm = Number(f.mm);
      const addr = Number(f.vpn) * ps;
      openExplain = {
        t: e.t,
        proc: procName(mm),
        ...vmaAt(mm, addr),
        addr,
        bits: String(f.bits),
        nr: k.geo.ptrsPerPte,
        pmdOrder: k.geo.pmdOrder,
        enabled: Number(f.enabled),
        unmapped: Number(f.unmapped),
        lo: Number(f.lo),
        hi: Number(f.hi),
        maxPtesNone: Number(f.max_ptes_none),
        madvise: f.madvise === true,
        policy: String(f.policy),
        attempts: [],
      };
      if (explain.length < MAX_EXPLAIN) explain.push(openExplain);
      else explainDropped++;
    } else if (e.name === 'thpsim_mthp_attempt') {
      const x = openExplain;
      const vpn = Number(f.vpn);
      if (x && x.addr / ps <= vpn && vpn < x.addr / ps + x.nr)
        x.attempts.push({
          offset: vpn - x.addr / ps,
          order: Number(f.order),
          result: String(f.result),
        });
    } else if (e.name === 'thpsim_pmd_result') {
      openExplain = null;
    } else if (e.name === 'thpsim_collapse') {
      const mm = Number(f.mm);
      const vpn = Number(f.vpn);
      const order = Number(f.order);
      const pages = 2 ** order;
      const zeroed = Math.max(0, Number(f.none_or_zero));
      bloatKb += (zeroed * ps) / 1024;
      collapseCosts.push({
        t: e.t,
        order,
        pages,
        copied: pages - zeroed,
        zeroed,
        us: collapseCostUs(pages - zeroed, zeroed, ps),
      });
      // Creep: a smaller collapse inside this region, and no user access to it since.
      const list = collapsed.get(mm) ?? [];
      const inside = list.filter((c) => c.vpn >= vpn && c.vpn + 2 ** c.order <= vpn + pages);
      const prev = inside.filter((c) => c.order < order).sort((a, b) => b.seq - a.seq)[0];
      if (prev && creep.length < MAX_CREEP) {
        const la = lastAccess.get(mm);
        let touched = false;
        for (let p = vpn; p < vpn + pages && !touched; p++)
          if ((la?.get(p) ?? -1) > prev.seq) touched = true;
        if (!touched)
          creep.push({
            t: e.t,
            proc: procName(mm),
            addr: vpn * ps,
            ...(vmaAt(mm, vpn * ps).vma !== undefined ? { vma: vmaAt(mm, vpn * ps).vma } : {}),
            fromOrder: prev.order,
            toOrder: order,
            sinceMs: prev.t,
          });
      }
      const keep = list.filter((c) => !inside.includes(c));
      keep.push({ vpn, order, t: e.t, seq: ++seq });
      collapsed.set(mm, keep);
    }
  };

  const anonCoverage = (): { byOrderKb: Record<number, number>; anonKb: number } => {
    const k = machine!.kernel;
    const kb = k.geo.pageSize / 1024;
    const byOrderKb: Record<number, number> = {};
    let anon = 0;
    for (const mm of k.mms.values())
      for (const vma of mm.vmas) {
        if (!vma.isAnonymous) continue;
        const c = smapsCounts(k, vma);
        anon += c.anonymous * kb;
        for (const [o, n] of c.byOrder) byOrderKb[o] = (byOrderKb[o] ?? 0) + n * kb;
      }
    return { byOrderKb, anonKb: anon };
  };

  const sample = (event: number | null): void => {
    const m = machine!;
    const k = m.kernel;
    const vm = m.vmstat();
    const kh = m.khugepaged();
    const counters: Record<string, number> = {
      pages_collapsed: kh.pages_collapsed,
      full_scans: kh.full_scans,
    };
    for (const c of COUNTERS) if (vm[c] !== undefined) counters[c] = vm[c];
    const s: Sample = {
      t: k.clockMs,
      event,
      ...anonCoverage(),
      bloatKb,
      freeKb: (k.buddy.freePages * k.geo.pageSize) / 1024,
      counters,
    };
    // Two samples at one time: the later one stands.
    const last = samples[samples.length - 1];
    if (last && last.t === s.t && last.event === null) samples.pop();
    samples.push(s);
    if (samples.length > MAX_SAMPLES) {
      // Keep every event's sample and every other pass sample; sample passes half as often.
      let odd = false;
      const before = samples.length;
      const kept = samples.filter((x) => x.event !== null || (odd = !odd));
      samples.length = 0;
      samples.push(...kept);
      samplesDropped += before - kept.length;
      passStride *= 2;
    }
  };

  const buddy = (): number[] => Array.from(machine!.kernel.buddy.nrFree);

  const onProgress = opts.onProgress;
  const session = runScenarioSession(s, {
    ...opts,
    trace: opts.keepTrace === true,
    createMachine: (cfg: KernelConfig) => {
      const m = new ObservedMachine(cfg);
      machine = m;
      tlb = new TlbModel(m.kernel);
      m.onTrace = onTrace;
      m.setTrace(null);
      m.onAccess = (mm, addr) => {
        const vpn = Math.floor(addr / m.kernel.geo.pageSize);
        tlb!.access(mm, vpn);
        let la = lastAccess.get(mm.id);
        if (!la) lastAccess.set(mm.id, (la = new Map()));
        la.set(vpn, ++seq);
      };
      m.onKhugepagedPass = () => {
        if (++passNo % passStride === 0) sample(null);
      };
      return m;
    },
    onProgress: (p) => {
      onProgress?.(p);
      if (!Number.isInteger(p.done) || p.done < 1) return;
      const i = p.done - 1;
      sample(i);
      const e = s.timeline[i];
      if (e?.op === 'report') {
        const label = e.label ?? `report ${i}`;
        maps.push(addressMap(machine!, label));
        buddyinfoByReport.push({ label, t: machine!.kernel.clockMs, free: buddy() });
      }
    },
  });
  const m = machine!;
  const k = m.kernel;
  if (!samples.length || samples[samples.length - 1].t !== k.clockMs) sample(null);
  maps.push(addressMap(m, 'end'));
  const orders: number[] = [];
  for (let o = 31; o >= 1; o--) if (k.geo.anonOrders & (1 << o)) orders.push(o);
  orders.push(0);
  const metrics: RunMetrics = {
    format: 'thpsim-metrics',
    version: 1,
    pageKb: k.geo.pageSize / 1024,
    pmdOrder: k.geo.pmdOrder,
    orders,
    samples,
    samplesDropped,
    creep,
    collapseCosts,
    buddyinfo: buddy(),
    buddyinfoByReport,
    tlb: tlb!.estimate(),
    maps,
    explain,
    explainDropped,
  };
  return { ...session.result, metrics };
}
