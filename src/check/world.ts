// The shared state a checked execution runs on: a fresh kernel built by the case's setup, named
// processes and VMAs, the CPUs' TLBs, and the value each user write left behind (so a lost write
// and a stale read can be told apart at the end).

import { faultUser, hwAccess, VM_FAULT_OOM, VM_FAULT_SIGSEGV } from '../mm/fault.ts';
import { folioRefFrozen } from '../mm/folio-ref-freeze.ts';
import { type Kernel, NO_PFN } from '../mm/kernel.ts';
import { levelIndex, pmdTableOf } from '../mm/pagewalk.ts';
import { E_TABLE, PMD, T_LINKED } from '../mm/pgtable.ts';
import { S_PTE_ENTRY, S_TLB, type Step, readShared } from '../mm/step.ts';
import type { Mm, Vma } from '../mm/vma.ts';
import type { Machine } from '../sim/machine.ts';

/**
 * Per-CPU caches of leaf translations. A CPU caches what its accesses walked; a TLB flush of an
 * mm (an S_TLB write event) empties every CPU's entries for it.
 */
export class Tlb {
  private readonly entries = new Map<number, Map<string, number>>();
  /** Paging-structure caches: per CPU, `${mm}:${pmd number}` → the PTE table it pointed to. */
  private readonly psc = new Map<number, Map<string, number>>();

  pscLookup(cpu: number, mm: number, pmdNo: number): number | undefined {
    return this.psc.get(cpu)?.get(`${mm}:${pmdNo}`);
  }

  pscInsert(cpu: number, mm: number, pmdNo: number, pteTable: number): void {
    let m = this.psc.get(cpu);
    if (!m) this.psc.set(cpu, (m = new Map()));
    m.set(`${mm}:${pmdNo}`, pteTable);
  }

  /** A flush with freed_tables: leaf entries and paging-structure caches of the mm. */
  flushTables(mm: number): void {
    this.flush(mm);
    for (const m of this.psc.values())
      for (const key of [...m.keys()]) if (key.startsWith(`${mm}:`)) m.delete(key);
  }

  lookup(cpu: number, mm: number, vpn: number): number | undefined {
    return this.entries.get(cpu)?.get(`${mm}:${vpn}`);
  }

  insert(cpu: number, mm: number, vpn: number, pfn: number): void {
    let m = this.entries.get(cpu);
    if (!m) this.entries.set(cpu, (m = new Map()));
    m.set(`${mm}:${vpn}`, pfn);
  }

  /**
   * flush_tlb_range / flush_tlb_mm on every CPU (the range is not tracked: all of the mm). Only
   * leaf entries: the upper-level ones go with a freed_tables flush (flushTables).
   */
  flush(mm: number): void {
    for (const m of this.entries.values())
      for (const key of [...m.keys()]) if (key.startsWith(`${mm}:`)) m.delete(key);
  }
}

export interface CheckWorld {
  m: Machine;
  k: Kernel;
  mms: Record<string, Mm>;
  vmas: Record<string, Vma>;
  /** Named pfns the threads act on (e.g. the folio a migration moves). */
  pfns: Record<string, number>;
  tlb: Tlb;
  /** The last value user writes stored, per `${mm}:${vpn}`. */
  expected: Map<string, number>;
  /** Violations the walkers found as they ran (e.g. a write through a stale TLB entry). */
  found: Array<{ property: string; message: string }>;
  /**
   * [mm, start vpn, end vpn) ranges a thread may discard by design (MADV_DONTNEED, munmap, a
   * move): a write there may end unmapped without being lost. Threads add theirs as they start.
   */
  discards: Array<[number, number, number]>;
}

export function newWorld(m: Machine): CheckWorld {
  return {
    m,
    k: m.kernel,
    mms: {},
    vmas: {},
    pfns: {},
    tlb: new Tlb(),
    expected: new Map(),
    found: [],
    discards: [],
  };
}

/**
 * A user write on a CPU: through its TLB if the translation is cached, else the hardware walk
 * (which caches it), else a page fault and the access again. Each write stores a fresh value.
 */
export function* tlbUserWrite(w: CheckWorld, cpu: number, mm: Mm, vpn: number): Step<void> {
  const k = w.k;
  const key = `${mm.id}:${vpn}`;
  for (let attempt = 0; attempt < 6; attempt++) {
    yield readShared(S_TLB, mm.id);
    const hit = w.tlb.lookup(cpu, mm.id, vpn);
    if (hit !== undefined) {
      // A frozen folio (folio_ref_freeze, before the freezer's flush) is still allocated.
      const head = k.folios.headOf(hit);
      if (k.folios.refcount[head] === 0 && !folioRefFrozen(k.folios, head))
        w.found.push({
          property: 'stale-tlb',
          message: `CPU ${cpu} wrote vpn ${vpn} through a TLB entry to pfn ${hit}, which is free`,
        });
      const t = k.freshData();
      k.folios.data[hit] = t;
      w.expected.set(key, t);
      return;
    }
    // A leaf miss: the walk may start from a cached upper-level entry.
    const nr = k.geo.ptrsPerPte;
    const cached = w.tlb.pscLookup(cpu, mm.id, Math.floor(vpn / nr));
    if (cached !== undefined) {
      const loc = cached * k.pt.pte.entriesPerTable + (vpn % nr);
      if (k.pt.pte.state[cached] === T_LINKED) yield readShared(S_PTE_ENTRY, loc);
      else {
        w.found.push({
          property: 'stale-tlb',
          message: `CPU ${cpu} walks vpn ${vpn} through a cached pointer to PTE table ${cached}, which is no longer linked`,
        });
        return;
      }
    }
    const pfn = (yield hwAccess(k, mm, vpn, true)) as number;
    if (pfn !== NO_PFN) {
      w.tlb.insert(cpu, mm.id, vpn, pfn);
      const pmdT = pmdTableOf(k, mm, vpn);
      const pmdI = levelIndex(k, vpn, PMD);
      if (pmdT && k.pt.pmd.type(pmdT, pmdI) === E_TABLE)
        w.tlb.pscInsert(cpu, mm.id, Math.floor(vpn / nr), k.pt.pmd.getVal(pmdT, pmdI));
      w.expected.set(key, k.folios.data[pfn]);
      return;
    }
    const r = (yield faultUser(k, mm, vpn, true)) as number;
    if (r & (VM_FAULT_SIGSEGV | VM_FAULT_OOM)) return;
  }
}
