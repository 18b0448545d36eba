// Step functions: every kernel operation that touches shared state is a generator that yields an
// event at each lock operation and at each unlocked access to shared state. The simulator drives a
// step to completion; the interleaving checker drives many at once. Events are plain numbers so
// yielding never allocates: id * 256 + class * 8 + op.

/** What the operation does at this point. */
export const OP_ACQUIRE = 1;
export const OP_RELEASE = 2;
/** Try-lock: the driver answers true or false through next(). */
export const OP_TRYLOCK = 3;
/** rwsem downgrade, write to read (mmap_write_downgrade). */
export const OP_DOWNGRADE = 4;
export const OP_READ = 5;
export const OP_WRITE = 6;

/** Lock classes (reader/writer modes of one rwsem are separate classes on the same object). */
export const L_MMAP_READ = 1;
export const L_MMAP_WRITE = 2;
export const L_VMA_READ = 3;
/** vma_start_write: there is no explicit unlock; it ends at mmap_write_unlock or downgrade. */
export const L_VMA_WRITE = 4;
export const L_ANON_VMA_READ = 5;
export const L_ANON_VMA_WRITE = 6;
export const L_I_MMAP_READ = 7;
export const L_I_MMAP_WRITE = 8;
/** mm->page_table_lock. */
export const L_PAGE_TABLE_LOCK = 9;
/** Split PMD lock of a PMD table (pmd_lock). */
export const L_PMD_LOCK = 10;
/** Split PTE lock of a PTE table (pte_lockptr). */
export const L_PTE_LOCK = 11;
export const L_FOLIO_LOCK = 12;
export const L_RCU = 13;
export const L_IRQ_OFF = 14;
/**
 * The L_IRQ_OFF object of a hardware page walk in progress (object 0 is a real interrupts-off
 * section, e.g. GUP-fast). Broadcast TLB invalidation (arm64) completes only after walks that
 * may use the old entries; it does not wait for interrupts-off sections.
 */
export const IRQ_HW_WALK = 1;
export const L_WRITE_PROTECT_SEQ = 15;
export const L_SWAP_LOCK = 16;
export const L_LRU_LOCK = 17;

/** Shared-state locations for OP_READ / OP_WRITE. */
export const S_PGD_ENTRY = 20;
export const S_PUD_ENTRY = 21;
export const S_PMD_ENTRY = 22;
export const S_PTE_ENTRY = 23;
export const S_FOLIO = 24;
export const S_VMA_TREE = 25;
/** A TLB flush of an mm's range (flush_tlb_range): a write to every CPU's cached translations. */
export const S_TLB = 26;
/** tlb_remove_table_sync_one: an IPI to every CPU, which waits for IRQ-off sections (GUP-fast). */
export const S_IPI_SYNC = 27;
/**
 * The end of an RCU grace period before page tables are freed (tlb_remove_table with
 * CONFIG_MMU_GATHER_RCU_TABLE_FREE, pte_free_defer): waits for RCU readers and IRQ-off sections.
 */
export const S_RCU_SYNC = 28;
/** A flush of the paging-structure caches (the cached upper-level entries) of an mm. */
export const S_PSC = 29;

export const CLASS_NAMES: Record<number, string> = {
  [L_MMAP_READ]: 'mmap_read',
  [L_MMAP_WRITE]: 'mmap_write',
  [L_VMA_READ]: 'vma_read',
  [L_VMA_WRITE]: 'vma_write',
  [L_ANON_VMA_READ]: 'anon_vma_read',
  [L_ANON_VMA_WRITE]: 'anon_vma_write',
  [L_I_MMAP_READ]: 'i_mmap_read',
  [L_I_MMAP_WRITE]: 'i_mmap_write',
  [L_PAGE_TABLE_LOCK]: 'page_table_lock',
  [L_PMD_LOCK]: 'pmd_lock',
  [L_PTE_LOCK]: 'pte_lock',
  [L_FOLIO_LOCK]: 'folio_lock',
  [L_RCU]: 'rcu_read',
  [L_IRQ_OFF]: 'irq_off',
  [L_WRITE_PROTECT_SEQ]: 'write_protect_seq',
  [L_SWAP_LOCK]: 'swap_lock',
  [L_LRU_LOCK]: 'lru_lock',
  [S_PGD_ENTRY]: 'pgd',
  [S_PUD_ENTRY]: 'pud',
  [S_PMD_ENTRY]: 'pmd',
  [S_PTE_ENTRY]: 'pte',
  [S_FOLIO]: 'folio',
  [S_VMA_TREE]: 'vma_tree',
  [S_TLB]: 'tlb',
  [S_IPI_SYNC]: 'ipi_sync',
  [S_RCU_SYNC]: 'rcu_grace_period',
  [S_PSC]: 'paging_structure_caches',
};

const OP_NAMES = ['?', 'acquire', 'release', 'trylock', 'downgrade', 'read', 'write'];

/**
 * A step function. It yields either an event (a number) or a sub-step to run (a generator): the
 * engine runs the sub-step on its own stack and resumes the caller with its return value, so
 * events of deeply nested steps cost one resume each. `yield* sub()` is also fine where depth
 * does not matter. A trylock event is answered with true or false through next().
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- a named, recursive alias
export interface Step<T> extends Generator<number | Step<unknown>, T, unknown> {}

/** Run a sub-step through the engine and get its (typed) result: `yield* call(sub(...))`. */
export function* call<T>(sub: Step<T>): Step<T> {
  return (yield sub) as T;
}

export function ev(op: number, cls: number, id: number): number {
  return id * 256 + cls * 8 + op;
}
export function evOp(e: number): number {
  return e & 7;
}
export function evClass(e: number): number {
  return (e & 255) >>> 3;
}
export function evId(e: number): number {
  return Math.floor(e / 256);
}
/** The lock object an event names, with the op masked out (same for acquire and release). */
export function evKey(e: number): number {
  return e - (e & 7);
}

export function describeEvent(e: number): string {
  return `${OP_NAMES[evOp(e)] ?? '?'} ${CLASS_NAMES[evClass(e)] ?? evClass(e)}#${evId(e)}`;
}

export const lock = (cls: number, id: number): number => ev(OP_ACQUIRE, cls, id);
export const unlock = (cls: number, id: number): number => ev(OP_RELEASE, cls, id);
export const trylock = (cls: number, id: number): number => ev(OP_TRYLOCK, cls, id);
export const readShared = (cls: number, id: number): number => ev(OP_READ, cls, id);
export const writeShared = (cls: number, id: number): number => ev(OP_WRITE, cls, id);
/** flush_tlb_range on an mm (the range itself is not part of the event). */
export const tlbFlushRange = (mm: number): number => ev(OP_WRITE, S_TLB, mm);
/** tlb_remove_table_sync_one. */
export const tlbRemoveTableSyncOne = (): number => ev(OP_WRITE, S_IPI_SYNC, 0);
/** Flush the TLB with freed_tables set: the paging-structure caches go too (tlb_flush_mmu). */
export const tlbFlushTables = (mm: number): number => ev(OP_WRITE, S_PSC, mm);
/** An RCU grace period ends (the deferred free of page tables may go ahead). */
export const rcuGracePeriod = (): number => ev(OP_WRITE, S_RCU_SYNC, 0);

/** How an engine answers events. The simulator's answers always succeed. */
export interface EventSink {
  /** Apply one event for a thread; returns the trylock answer (true for all other events). */
  apply(e: number, thread: number): boolean;
}

/**
 * Drive a step to completion: the simulator engine. Sub-steps yielded as generators run on an
 * explicit stack; an exception unwinds into the caller as it would through yield*.
 */
export function runStep<T>(step: Step<T>, sink: EventSink, thread = 0): T {
  let stack: Step<unknown>[] | null = null;
  let cur: Step<unknown> = step;
  let input: unknown = undefined;
  let error: unknown = undefined;
  let throwing = false;
  for (;;) {
    let r: IteratorResult<number | Step<unknown>, unknown>;
    try {
      if (throwing) {
        throwing = false;
        r = cur.throw(error);
      } else r = cur.next(input);
    } catch (e) {
      if (!stack || stack.length === 0) throw e;
      cur = stack.pop()!;
      error = e;
      throwing = true;
      continue;
    }
    const v = r.value;
    if (r.done) {
      if (!stack || stack.length === 0) return v as T;
      cur = stack.pop()!;
      input = v;
    } else if (typeof v === 'number') {
      input = sink.apply(v, thread);
    } else {
      (stack ??= []).push(cur);
      cur = v as Step<unknown>;
      input = undefined;
    }
  }
}
