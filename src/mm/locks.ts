// Lock state shared by both engines. LockTable implements the real semantics (rwsems, spinlocks,
// VMA locks, RCU and IRQ-off sections) and reports misuse; BalanceSink only counts, for runs where
// one thread at a time cannot contend and speed matters.

import {
  type EventSink,
  L_ANON_VMA_READ,
  L_ANON_VMA_WRITE,
  L_I_MMAP_READ,
  L_I_MMAP_WRITE,
  IRQ_HW_WALK,
  L_IRQ_OFF,
  L_MMAP_READ,
  L_MMAP_WRITE,
  L_RCU,
  L_VMA_READ,
  L_VMA_WRITE,
  OP_ACQUIRE,
  OP_DOWNGRADE,
  OP_RELEASE,
  OP_TRYLOCK,
  OP_WRITE,
  S_IPI_SYNC,
  S_PSC,
  S_RCU_SYNC,
  S_TLB,
  S_VMA_TREE,
  describeEvent,
  ev,
  evClass,
  evId,
  evOp,
} from './step.ts';

export class LockError extends Error {}

/**
 * The rwsems of the model, each once: its reader class, its writer class, and the shared-state
 * locations it protects by being held for writing (the VMA tree changes only under the mmap
 * write lock). Lock semantics and the checker's dependence both derive from this table.
 */
const RWSEMS: ReadonlyArray<{ read: number; write: number; guards?: readonly number[] }> = [
  { read: L_MMAP_READ, write: L_MMAP_WRITE, guards: [S_VMA_TREE] },
  { read: L_VMA_READ, write: L_VMA_WRITE },
  { read: L_ANON_VMA_READ, write: L_ANON_VMA_WRITE },
  { read: L_I_MMAP_READ, write: L_I_MMAP_WRITE },
];

/** Reader class → writer class of the same rwsem. */
const WRITER_OF: Record<number, number> = {};
/** Writer class → reader class of the same rwsem. */
const READER_OF: Record<number, number> = {};
/**
 * The rwsem each class belongs to (1-based index into RWSEMS; reader, writer and guarded
 * locations share it). Classes outside every family are page-table entries and locks, folios
 * and CPU state.
 */
export const RWSEM_FAMILY: Readonly<Record<number, number>> = {};
RWSEMS.forEach((r, i) => {
  WRITER_OF[r.read] = r.write;
  READER_OF[r.write] = r.read;
  const fam = RWSEM_FAMILY as Record<number, number>;
  for (const c of [r.read, r.write, ...(r.guards ?? [])]) fam[c] = i + 1;
});

/** Architectures whose TLB-flush rules differ (Geometry.arch). */
export type FlushArch = 'x86-64' | 'arm64';

/** Sections that nest and never exclude anyone. */
const SHARED_SECTIONS = new Set([L_RCU, L_IRQ_OFF]);

interface Holder {
  readonly thread: number;
  count: number;
}

/** Real lock semantics: who holds what; acquisition that cannot proceed returns false. */
export class LockTable implements EventSink {
  /** key (class, id) → holders. Readers may be many; exclusive locks have one. */
  private readonly held = new Map<number, Holder[]>();

  /** Whether thread may take the lock named by e now. */
  canAcquire(e: number, _thread: number): boolean {
    const cls = evClass(e);
    const id = evId(e);
    if (SHARED_SECTIONS.has(cls)) return true;
    const writer = WRITER_OF[cls];
    if (writer !== undefined) {
      // Reader: blocked only by a writer (of another thread; a thread holding the writer and
      // asking for a read would deadlock in the kernel too).
      return !this.held.has(ev(0, writer, id));
    }
    const reader = READER_OF[cls];
    if (reader !== undefined && this.held.has(ev(0, reader, id))) return false;
    const holders = this.held.get(ev(0, cls, id));
    return holders === undefined || holders.length === 0;
  }

  /**
   * Whether a write event that waits for other CPUs may complete now:
   * - tlb_remove_table_sync_one's IPI waits for every interrupts-off section (GUP-fast);
   * - the end of an RCU grace period waits for RCU readers and interrupts-off sections;
   * - a TLB flush on x86 is an IPI, so it waits for interrupts to be enabled again on every
   *   other CPU; arm64 broadcasts the invalidation (TLBI + DSB), which completes after the
   *   hardware walks in flight but does not wait for GUP-fast's interrupts-off section.
   * Every other non-acquire event may always go.
   */
  mayComplete(e: number, thread: number, arch: FlushArch): boolean {
    const op = evOp(e);
    if (op === OP_ACQUIRE) return this.canAcquire(e, thread);
    const cls = evClass(e);
    if (cls === S_IPI_SYNC) return !this.heldByOther(thread, L_IRQ_OFF);
    if (cls === S_RCU_SYNC)
      return !this.heldByOther(thread, L_IRQ_OFF) && !this.heldByOther(thread, L_RCU);
    if ((cls === S_TLB || cls === S_PSC) && op === OP_WRITE)
      return arch === 'x86-64'
        ? !this.heldByOther(thread, L_IRQ_OFF)
        : !this.heldByOther(thread, L_IRQ_OFF, IRQ_HW_WALK);
    return true;
  }

  apply(e: number, thread: number): boolean {
    const op = evOp(e);
    if (op === OP_ACQUIRE || op === OP_TRYLOCK) {
      if (!this.canAcquire(e, thread)) {
        if (op === OP_TRYLOCK) return false;
        throw new LockError(
          `thread ${thread}: ${describeEvent(e)} would block (self-deadlock or contention)`,
        );
      }
      this.take(ev(0, evClass(e), evId(e)), thread);
      return true;
    }
    if (op === OP_RELEASE) {
      this.drop(ev(0, evClass(e), evId(e)), thread, e);
      if (evClass(e) === L_MMAP_WRITE) this.dropVmaWriteLocks(thread);
      return true;
    }
    if (op === OP_DOWNGRADE) {
      const cls = evClass(e);
      const reader = READER_OF[cls];
      if (reader === undefined)
        throw new LockError(`downgrade of a non-rwsem: ${describeEvent(e)}`);
      this.drop(ev(0, cls, evId(e)), thread, e);
      this.take(ev(0, reader, evId(e)), thread);
      if (cls === L_MMAP_WRITE) this.dropVmaWriteLocks(thread);
      return true;
    }
    return true;
  }

  private take(key: number, thread: number): void {
    let hs = this.held.get(key);
    if (!hs) this.held.set(key, (hs = []));
    const mine = hs.find((h) => h.thread === thread);
    if (mine) mine.count++;
    else hs.push({ thread, count: 1 });
  }

  private drop(key: number, thread: number, e: number): void {
    const hs = this.held.get(key);
    const i = hs ? hs.findIndex((h) => h.thread === thread) : -1;
    if (!hs || i < 0)
      throw new LockError(`thread ${thread}: ${describeEvent(e)} of a lock it does not hold`);
    if (--hs[i].count === 0) hs.splice(i, 1);
    if (hs.length === 0) this.held.delete(key);
  }

  /** Release every VMA write lock of a thread (mmap_write_unlock or downgrade ends them). */
  dropVmaWriteLocks(thread: number): void {
    for (const [key, hs] of this.held) {
      if (evClass(key) !== L_VMA_WRITE) continue;
      const i = hs.findIndex((h) => h.thread === thread);
      if (i >= 0) hs.splice(i, 1);
      if (hs.length === 0) this.held.delete(key);
    }
  }

  /** Whether a thread holds a lock of this class (any object when id is omitted). */
  holds(thread: number, cls: number, id?: number): boolean {
    for (const [key, hs] of this.held) {
      if (evClass(key) !== cls || (id !== undefined && evId(key) !== id)) continue;
      if (hs.some((h) => h.thread === thread)) return true;
    }
    return false;
  }

  /** Whether any thread other than this one holds a lock of this class (this object). */
  heldByOther(thread: number, cls: number, id?: number): boolean {
    for (const [key, hs] of this.held)
      if (
        evClass(key) === cls &&
        (id === undefined || evId(key) === id) &&
        hs.some((h) => h.thread !== thread)
      )
        return true;
    return false;
  }

  /** Locks held by a thread, described. */
  heldBy(thread: number): string[] {
    const out: string[] = [];
    for (const [key, hs] of this.held)
      if (hs.some((h) => h.thread === thread)) out.push(describeEvent(key + OP_ACQUIRE));
    return out;
  }

  get isEmpty(): boolean {
    return this.held.size === 0;
  }
}

/** Counts acquisitions minus releases: the cheapest sink that still catches an unbalanced step. */
export class BalanceSink implements EventSink {
  depth = 0;
  apply(e: number): boolean {
    const op = e & 7;
    // vma_start_write has no unlock of its own.
    if (evClass(e) === L_VMA_WRITE) return true;
    if (op === OP_ACQUIRE || op === OP_TRYLOCK) this.depth++;
    else if (op === OP_RELEASE) this.depth--;
    return true;
  }
}
