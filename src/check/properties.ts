// The model's properties: `always` properties (property.ts has the data type), each switchable by
// name, and the monitor that gathers their evidence. Some watch the events as they happen (a
// transient none seen, a write to another VMA's entry), the rest judge the state once every
// thread is done (lost writes, leftover migration entries, the model's invariants). Numbers
// follow the list and docs/page-table-walkers.md.

import { checkInvariants } from '../mm/invariants.ts';
import type { Kernel } from '../mm/kernel.ts';
import type { LockTable } from '../mm/locks.ts';
import { levelIndex, pmdTableOf } from '../mm/pagewalk.ts';
import {
  E_MIGRATION,
  E_NONE,
  E_PRESENT,
  E_TABLE,
  E_TYPE_MASK,
  PMD,
  PUD,
  T_FREE,
  T_LINKED,
} from '../mm/pgtable.ts';
import {
  L_ANON_VMA_READ,
  L_ANON_VMA_WRITE,
  L_FOLIO_LOCK,
  L_I_MMAP_READ,
  L_I_MMAP_WRITE,
  L_IRQ_OFF,
  L_MMAP_READ,
  L_MMAP_WRITE,
  L_PAGE_TABLE_LOCK,
  L_PMD_LOCK,
  L_PTE_LOCK,
  L_VMA_WRITE,
  OP_ACQUIRE,
  OP_READ,
  OP_WRITE,
  S_PMD_ENTRY,
  S_PTE_ENTRY,
  evClass,
  evId,
  evOp,
} from '../mm/step.ts';
import type { Vma } from '../mm/vma.ts';
import { type Finding, type Property, always } from './property.ts';
import type { CheckWorld } from './world.ts';

export const PROPERTIES = [
  'lost-write',
  'table-lifetime',
  'stale-tlb',
  'cross-vma',
  'transient-none',
  'quiescence',
  'lock-order',
  'deadlock',
  'crash',
] as const;
export type PropertyName = (typeof PROPERTIES)[number];

export const PROPERTY_TEXT: Record<PropertyName, string> = {
  'lost-write': '1. no lost write, and no read of a value never written or overwritten',
  'table-lifetime': '2. no leaked page table, no use of a freed table, folio or anon_vma',
  'stale-tlb': '3. no stale TLB entry to a freed or reused page',
  'cross-vma':
    '4. an operation on VMA A never writes an entry mapping VMA B (but to create a table)',
  'transient-none': '5. no transient none observed by a walker the writer does not exclude',
  quiescence:
    '6. no migration entry left behind, nothing mapped into a reaped mm; references and mappings consistent at the end',
  'lock-order': '7. locks taken in the documented order',
  deadlock: '7. no deadlock',
  crash: 'the model itself found an impossible state (an assertion of the kernel model)',
};

/**
 * The model's properties as data: each holds at a point unless the monitor found evidence
 * against it there. `crash` is checked whatever a case selects.
 */
export const MODEL_PROPERTIES: readonly Property[] = PROPERTIES.map((name) =>
  always(
    name,
    PROPERTY_TEXT[name],
    (v) => !v.findings.some((f) => f.property === name),
    (v) => v.findings.find((f) => f.property === name)?.message ?? PROPERTY_TEXT[name],
  ),
);

/** The model's property of that name. */
export function modelProperty(name: PropertyName): Property {
  return MODEL_PROPERTIES[PROPERTIES.indexOf(name)];
}

export interface Violation {
  /** A model property's name, or a case's own. */
  property: string;
  message: string;
  /** The step (index into the execution) at which it was seen. */
  step: number;
}

/** Which thread observes a transient none harmlessly: the lockless walkers that retry. */
const TOLERANT = new Set(['hw_walk', 'gup_fast']);

/** mm/rmap.c's lock order, as ranks: a blocking acquire may not go below a held rank. */
const RANK: Record<number, number> = {
  [L_MMAP_READ]: 1,
  [L_MMAP_WRITE]: 1,
  [L_FOLIO_LOCK]: 2,
  [L_VMA_WRITE]: 3,
  [L_I_MMAP_READ]: 4,
  [L_I_MMAP_WRITE]: 4,
  [L_ANON_VMA_READ]: 5,
  [L_ANON_VMA_WRITE]: 5,
  [L_PAGE_TABLE_LOCK]: 6,
  [L_PMD_LOCK]: 6,
  [L_PTE_LOCK]: 7,
};

interface Cleared {
  thread: number;
  cls: number;
  /** Reads of the none entry by walkers that are not excluded: [thread, step, fn]. */
  seen: Array<[number, number, string]>;
  /** Other threads that filled it meanwhile. */
  filled: Array<[number, number, string]>;
}

/** Per-execution watcher gathering the evidence for the model's properties (as findings). */
export class Monitor {
  /** Evidence found since the evaluator last looked; it empties this. */
  readonly findings: Array<Finding & { step: number }> = [];
  private readonly cleared = new Map<string, Cleared>();
  /** A write event waiting for its block to run: the entry's value before it. */
  private readonly pendingWrite = new Map<
    number,
    { key: string; cls: number; loc: number; wasNone: boolean }
  >();
  private readonly w: CheckWorld;
  private readonly threadVma: ReadonlyArray<Vma | undefined>;
  private readonly threadNames: readonly string[];
  private readonly vmaNames = new Map<Vma, string>();

  constructor(
    w: CheckWorld,
    threadVma: ReadonlyArray<Vma | undefined>,
    threadNames: readonly string[],
  ) {
    this.w = w;
    this.threadVma = threadVma;
    this.threadNames = threadNames;
    for (const [name, v] of Object.entries(w.vmas)) this.vmaNames.set(v, name);
  }

  private vmaName(v: Vma): string {
    return this.vmaNames.get(v) ?? `#${v.id}`;
  }

  private report(property: PropertyName, message: string, step: number): void {
    this.findings.push({ property, message, step });
  }

  /** Whether an entry thread t cleared (of class cls, or any) is still none. */
  clearedBy(t: number, cls?: number): boolean {
    for (const c of this.cleared.values())
      if (c.thread === t && (cls === undefined || c.cls === cls)) return true;
    return false;
  }

  /** Before thread t performs event e (fn: its kernel function), at step `step`. */
  before(t: number, e: number, fn: string, step: number, locks: LockTable): void {
    const cls = evClass(e);
    const op = evOp(e);
    const k = this.w.k;
    if (op === OP_ACQUIRE && RANK[cls] !== undefined) {
      for (const [c, r] of Object.entries(RANK))
        if (r > RANK[cls] && locks.holds(t, Number(c)) && !(cls === L_PMD_LOCK && r === 6)) {
          this.report(
            'lock-order',
            `${this.threadNames[t]} (${fn}) takes a rank-${RANK[cls]} lock while holding a rank-${r} one`,
            step,
          );
          break;
        }
    }
    if (cls === L_PTE_LOCK && op === OP_ACQUIRE && k.pt.pte.state[evId(e)] === T_FREE)
      this.report(
        'table-lifetime',
        `${this.threadNames[t]} (${fn}) locks freed PTE table ${evId(e)}`,
        step,
      );
    if (cls !== S_PMD_ENTRY && cls !== S_PTE_ENTRY) return;
    const level = cls === S_PMD_ENTRY ? k.pt.pmd : k.pt.pte;
    const loc = evId(e);
    const key = `${cls}:${loc}`;
    const none = (level.bits[loc] & E_TYPE_MASK) === E_NONE;
    if (cls === S_PTE_ENTRY) {
      const table = Math.floor(loc / level.entriesPerTable);
      if (level.state[table] === T_FREE)
        this.report(
          'table-lifetime',
          `${this.threadNames[t]} (${fn}) reads an entry of freed PTE table ${table}`,
          step,
        );
    }
    if (op === OP_READ) {
      const c = this.cleared.get(key);
      if (c && c.thread !== t && none && !TOLERANT.has(fn) && !locks.holds(t, L_IRQ_OFF))
        c.seen.push([t, step, fn]);
      return;
    }
    if (op !== OP_WRITE) return;
    // Filling an entry another thread cleared is fine if that clear was for good (retraction);
    // it is a violation when the clearing thread later puts its old value back over it.
    const c = this.cleared.get(key);
    if (c && c.thread !== t && none) c.filled.push([t, step, fn]);
    this.pendingWrite.set(t, { key, cls, loc, wasNone: none });
    if (!none) this.crossVma(t, cls, loc, fn, step);
  }

  /** After thread t ran the block that followed its event (the write, if any, is done). */
  after(t: number, step: number): void {
    const p = this.pendingWrite.get(t);
    if (!p) return;
    this.pendingWrite.delete(t);
    const { cls, loc } = p;
    const k = this.w.k;
    const level = cls === S_PMD_ENTRY ? k.pt.pmd : k.pt.pte;
    const none = (level.bits[loc] & E_TYPE_MASK) === E_NONE;
    if (!p.wasNone && none) this.cleared.set(p.key, { thread: t, cls, seen: [], filled: [] });
    else if (!p.wasNone && !none) {
      // Overwritten while cleared by this thread: whoever filled it in between is undone.
      const c = this.cleared.get(p.key);
      this.cleared.delete(p.key);
      if (c && c.thread === t && c.filled.length) {
        const [u, at, fn] = c.filled[0];
        this.report(
          'transient-none',
          `${this.threadNames[u]} (${fn}) filled ${describeEntry(k, cls, loc)} at step ${at + 1} while ${this.threadNames[t]} had cleared it for the moment; it has now put its old value back over it`,
          step,
        );
      }
    } else if (p.wasNone && !none) {
      const c = this.cleared.get(p.key);
      this.cleared.delete(p.key);
      if (c && c.thread === t && c.seen.length) {
        const [u, at, fn] = c.seen[0];
        this.report(
          'transient-none',
          `${this.threadNames[u]} (${fn}) saw ${describeEntry(k, cls, loc)} none at step ${at + 1} while ${this.threadNames[t]} had cleared it and has now put it back`,
          step,
        );
      }
    }
  }

  private crossVma(t: number, cls: number, loc: number, fn: string, step: number): void {
    const own = this.threadVma[t];
    if (!own) return;
    const k = this.w.k;
    const span = entrySpan(k, cls, loc);
    if (!span) return;
    const [mmId, start, pages] = span;
    const mm = k.mms.get(mmId);
    if (!mm) return;
    for (const v of mm.vmas)
      if (v !== own && v.start < start + pages && v.end > start) {
        this.report(
          'cross-vma',
          `${this.threadNames[t]} (${fn}), working on VMA ${this.vmaName(own)}, changes ${describeEntry(k, cls, loc)}, which also maps VMA ${this.vmaName(v)}`,
          step,
        );
        return;
      }
  }

  /** The properties judged when every thread has finished. */
  quiescence(step: number): void {
    const k = this.w.k;
    for (const f of this.w.found) this.report(f.property as PropertyName, f.message, step);
    // Leftover migration entries.
    const pte = k.pt.pte;
    for (let t = 1; t < pte.capacity; t++) {
      if (pte.state[t] !== T_LINKED) continue;
      for (let i = 0; i < pte.entriesPerTable; i++)
        if ((pte.bits[t * pte.entriesPerTable + i] & E_TYPE_MASK) === E_MIGRATION) {
          this.report(
            'quiescence',
            `a migration entry is left behind in PTE table ${t} (index ${i})`,
            step,
          );
          break;
        }
    }
    // No VMA may be left linked to an anon_vma that was freed.
    for (const mm of k.mms.values())
      for (const v of mm.vmas)
        if (v.chain.some((av) => av.freed) || v.anonVma?.freed)
          this.report(
            'table-lifetime',
            `a VMA of mm ${mm.id} at vpn ${v.start} is linked to an anon_vma that was freed`,
            step,
          );
    // An OOM-reaped mm gets no new anonymous memory after the reaper was through.
    for (const mm of k.mms.values())
      if (mm.unstable && mm.rssAnon > 0)
        this.report(
          'quiescence',
          `mm ${mm.id} was reaped by the OOM reaper but maps ${mm.rssAnon} anonymous pages again`,
          step,
        );
    // Lost writes: every user write must be readable where it was written.
    for (const [key, token] of this.w.expected) {
      const [mmId, vpn] = key.split(':').map(Number);
      const mm = k.mms.get(mmId);
      const pfn = mm ? translate(k, mmId, vpn) : -1;
      // A range an operation throws away by design (MADV_DONTNEED, munmap, a move) may end
      // unmapped or refaulted afresh: its writes are not judged (the other properties are).
      if (this.w.discards.some(([m, s, e]) => m === mmId && vpn >= s && vpn < e)) continue;
      if (pfn < 0)
        this.report(
          'lost-write',
          `vpn ${vpn} of mm ${mmId} is not mapped any more; its last write is gone`,
          step,
        );
      else if (k.folios.data[pfn] !== token)
        this.report(
          'lost-write',
          `vpn ${vpn} of mm ${mmId} reads ${k.folios.data[pfn]}, but the last write stored ${token}`,
          step,
        );
    }
    try {
      checkInvariants(k);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.report(/table/i.test(msg) ? 'table-lifetime' : 'quiescence', msg.split('\n')[0], step);
    }
  }
}

/** The mm, first page and pages an entry of the PMD or PTE level maps, found by a table walk. */
function entrySpan(k: Kernel, cls: number, loc: number): [number, number, number] | null {
  const nr = k.geo.ptrsPerPte;
  const perPmd = k.pt.pmd.entriesPerTable;
  for (const mm of k.mms.values()) {
    for (let gi = 0; gi < k.geo.entries[0]; gi++) {
      if (k.pt.pgd.type(mm.pgd, gi) !== E_TABLE) continue;
      const pud = k.pt.pgd.getVal(mm.pgd, gi);
      for (let ui = 0; ui < k.geo.entries[PUD]; ui++) {
        if (k.pt.pud.type(pud, ui) !== E_TABLE) continue;
        const pmdT = k.pt.pud.getVal(pud, ui);
        const base = (gi * k.geo.entries[PUD] + ui) * perPmd;
        if (cls === S_PMD_ENTRY) {
          if (Math.floor(loc / perPmd) === pmdT) return [mm.id, (base + (loc % perPmd)) * nr, nr];
          continue;
        }
        const pteT = Math.floor(loc / k.pt.pte.entriesPerTable);
        for (let mi = 0; mi < perPmd; mi++)
          if (k.pt.pmd.type(pmdT, mi) === E_TABLE && k.pt.pmd.getVal(pmdT, mi) === pteT)
            return [mm.id, (base + mi) * nr + (loc % k.pt.pte.entriesPerTable), 1];
      }
    }
  }
  return null;
}

function describeEntry(k: Kernel, cls: number, loc: number): string {
  if (cls !== S_PMD_ENTRY && cls !== S_PTE_ENTRY)
    return `${cls === S_PMD_ENTRY - 2 ? 'pgd' : 'pud'}@${loc}`;
  const span = entrySpan(k, cls, loc);
  const what = cls === S_PMD_ENTRY ? 'pmd' : 'pte';
  if (!span) return `${what}@${loc}`;
  return `${what}[0x${(span[1] * k.geo.pageSize).toString(16)}]`;
}

/** The pfn mapped at vpn, or -1 (none, swap, migration), by a plain table walk. */
export function translate(k: Kernel, mmId: number, vpn: number): number {
  const mm = k.mms.get(mmId);
  if (!mm) return -1;
  const pmdT = pmdTableOf(k, mm, vpn);
  if (!pmdT) return -1;
  const pmdI = levelIndex(k, vpn, PMD);
  const bits = k.pt.pmd.getBits(pmdT, pmdI);
  if ((bits & E_TYPE_MASK) === E_PRESENT)
    return k.pt.pmd.getVal(pmdT, pmdI) + (vpn % k.geo.ptrsPerPte);
  if ((bits & E_TYPE_MASK) !== E_TABLE) return -1;
  const pteT = k.pt.pmd.getVal(pmdT, pmdI);
  const i = vpn % k.geo.ptrsPerPte;
  return (k.pt.pte.getBits(pteT, i) & E_TYPE_MASK) === E_PRESENT ? k.pt.pte.getVal(pteT, i) : -1;
}

export { describeEntry };
