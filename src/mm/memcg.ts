// Memory cgroups (mm/memcontrol.c), as far as a memory limit needs them: a cgroup with
// memory.max, the processes in it, and the charge of every anonymous folio they allocate.
//
// Charged: anonymous faults (PMD THP, mTHP, small pages), COW copies, swap-in, and the new
// folio of an anonymous collapse (khugepaged, MADV_COLLAPSE). Not charged: the page cache and
// shmem, page tables, kernel memory. A folio stays charged until it is freed; a split keeps the
// charge of every page that survives it, migration moves it to the new page.
//
// A charge that would go over memory.max first reclaims, if its gfp mask may block
// (try_charge_memcg): the model's reclaim is the memcg's deferred-split shrinker
// (deferred_split_scan over the folios charged to it, which splits partially mapped and
// underused THPs and frees their zero-filled pages). There is no LRU reclaim (no page cache is
// charged, and anonymous pages would need swap). When reclaim makes no progress, a charge of a
// costly order (above PAGE_ALLOC_COSTLY_ORDER) just fails, so the fault falls back to a smaller
// order; a smaller one is an OOM: memory.events oom and oom_kill, vmstat oom_kill, and the fault
// returns VM_FAULT_OOM.

import { __GFP_MOVABLE, __GFP_RECLAIM, gfpDirectReclaim } from './gfp.ts';
import { type Kernel, NO_PFN } from './kernel.ts';
import { deferredSplitScan } from './split.ts';
import type { Step } from './step.ts';
import type { Mm } from './vma.ts';

/** GFP_HIGHUSER_MOVABLE: small anonymous pages may reclaim (and so may OOM). */
export const GFP_HIGHUSER_MOVABLE = __GFP_RECLAIM | __GFP_MOVABLE;
const PAGE_ALLOC_COSTLY_ORDER = 3;
/** MAX_RECLAIM_RETRIES. */
const MAX_RECLAIM_RETRIES = 16;

/** memory.events of a cgroup v2. */
export interface MemcgEvents {
  max: number;
  oom: number;
  oom_kill: number;
}

export class MemCgroup {
  /** memory.current, in pages. */
  usage = 0;
  /** memory.peak, in pages. */
  peak = 0;
  readonly events: MemcgEvents = { max: 0, oom: 0, oom_kill: 0 };
  /** Charges that failed without an OOM (a fallback to a smaller order, or a failed collapse). */
  chargeFailures = 0;
  constructor(
    readonly id: number,
    readonly name: string,
    /** memory.max, in pages (Infinity: "max"). */
    public maxPages: number,
  ) {}
}

interface MemcgState {
  groups: MemCgroup[];
  byMm: Map<number, MemCgroup>;
  /** The memcg id each page is charged to (0: none), by pfn. */
  owner: Uint16Array;
}

const STATES = new WeakMap<Kernel, MemcgState>();

function state(k: Kernel): MemcgState {
  let s = STATES.get(k);
  if (!s) {
    s = { groups: [], byMm: new Map(), owner: new Uint16Array(k.nrPages) };
    STATES.set(k, s);
    // Every freed folio gives its pages' charges back (mem_cgroup_uncharge).
    k.uncharge = (head, order) => uncharge(s!, head, order);
  }
  return s;
}

function uncharge(s: MemcgState, head: number, order: number): void {
  const n = 1 << order;
  for (let i = 0; i < n; i++) {
    const id = s.owner[head + i];
    if (id === 0) continue;
    s.owner[head + i] = 0;
    s.groups[id - 1].usage--;
  }
}

/** mkdir a cgroup with memory.max (bytes; Infinity for "max"). */
export function memcgCreate(k: Kernel, name: string, maxBytes: number): MemCgroup {
  const s = state(k);
  if (s.groups.length >= 0xffff) throw new Error('too many memory cgroups');
  const max = Number.isFinite(maxBytes) ? Math.floor(maxBytes / k.geo.pageSize) : Infinity;
  const cg = new MemCgroup(s.groups.length + 1, name, max);
  s.groups.push(cg);
  return cg;
}

/** Move a process into a cgroup (cgroup.procs); charges made before stay where they are. */
export function memcgAttach(k: Kernel, mm: Mm, cg: MemCgroup): void {
  state(k).byMm.set(mm.id, cg);
}

/** copy_process: the child starts in its parent's cgroup. */
export function memcgFork(k: Kernel, parent: Mm, child: Mm): void {
  const s = STATES.get(k);
  const cg = s?.byMm.get(parent.id);
  if (s && cg) s.byMm.set(child.id, cg);
}

export function memcgOf(k: Kernel, mm: Mm): MemCgroup | undefined {
  return STATES.get(k)?.byMm.get(mm.id);
}

export function memcgGroups(k: Kernel): readonly MemCgroup[] {
  return STATES.get(k)?.groups ?? [];
}

/** mem_cgroup_migrate: the new page takes over the old one's charge. */
export function memcgMigrate(k: Kernel, src: number, dst: number): void {
  const s = STATES.get(k);
  if (!s || s.owner[src] === 0) return;
  const id = s.owner[src];
  if (s.owner[dst] !== 0) s.groups[s.owner[dst] - 1].usage--;
  s.owner[dst] = id;
  s.owner[src] = 0;
}

/** try_to_free_mem_cgroup_pages: the memcg's deferred-split shrinker. Returns pages freed. */
function* reclaim(k: Kernel, s: MemcgState, cg: MemCgroup): Step<number> {
  const before = cg.usage;
  yield* deferredSplitScan(k, (head) => s.owner[head] === cg.id);
  return before - cg.usage;
}

/**
 * mem_cgroup_charge: charge a new folio to the cgroup of mm. Returns false when the charge
 * failed; the caller frees the folio (and falls back, or fails the fault with VM_FAULT_OOM).
 */
export function* memcgCharge(k: Kernel, mm: Mm, folio: number, gfp: number): Step<boolean> {
  const s = STATES.get(k);
  const cg = s?.byMm.get(mm.id);
  if (!s || !cg) return true;
  const order = k.folios.order[folio];
  const n = 1 << order;
  let retries = MAX_RECLAIM_RETRIES;
  while (cg.usage + n > cg.maxPages) {
    cg.events.max++;
    // try_charge_memcg: no reclaim without __GFP_DIRECT_RECLAIM.
    const progress = gfpDirectReclaim(gfp) ? yield* reclaim(k, s, cg) : 0;
    if (cg.usage + n <= cg.maxPages) break;
    if (progress > 0 && retries-- > 0) continue;
    if (order > PAGE_ALLOC_COSTLY_ORDER || !gfpDirectReclaim(gfp)) {
      // mem_cgroup_oom skips costly orders; the caller falls back.
      cg.chargeFailures++;
      return false;
    }
    // mem_cgroup_out_of_memory: the OOM killer picks a task of the cgroup.
    cg.events.oom++;
    cg.events.oom_kill++;
    k.stats.event('oom_kill');
    k.trace('thpsim_memcg_oom', { memcg: cg.name, order, usage: cg.usage, max: cg.maxPages });
    return false;
  }
  for (let i = 0; i < n; i++) s.owner[folio + i] = cg.id;
  cg.usage += n;
  if (cg.usage > cg.peak) cg.peak = cg.usage;
  return true;
}

/** folio_prealloc: a small anonymous folio charged to mm's cgroup, or NO_PFN. */
export function* folioPrealloc(k: Kernel, mm: Mm): Step<number> {
  const folio = k.allocFolio(0);
  if (folio === NO_PFN) return NO_PFN;
  if (yield* memcgCharge(k, mm, folio, GFP_HIGHUSER_MOVABLE)) return folio;
  k.folioPut(folio);
  return NO_PFN;
}

/** The pages charged to each cgroup, counted from the per-page owners (for invariant checks). */
export function memcgRecount(k: Kernel): number[] {
  const s = STATES.get(k);
  if (!s) return [];
  const counts = new Array<number>(s.groups.length).fill(0);
  for (let pfn = 0; pfn < s.owner.length; pfn++) if (s.owner[pfn]) counts[s.owner[pfn] - 1]++;
  return counts;
}
