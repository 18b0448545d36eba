import { describe, expect, it } from 'vitest';
import { BalanceSink, LockError, LockTable } from '../src/mm/locks.ts';
import {
  L_ANON_VMA_READ,
  L_ANON_VMA_WRITE,
  L_MMAP_READ,
  L_MMAP_WRITE,
  L_PTE_LOCK,
  L_RCU,
  L_VMA_READ,
  L_VMA_WRITE,
  OP_DOWNGRADE,
  ev,
  lock,
  trylock,
  unlock,
} from '../src/mm/step.ts';
import { Errno, Machine } from '../src/sim/machine.ts';
import { MiB } from './support/ref-model.ts';

const MM = 1;
const T0 = 0;
const T1 = 1;
const T2 = 2;

describe('LockTable', () => {
  it('rwsem: readers share, a writer waits for them', () => {
    const t = new LockTable();
    expect(t.apply(lock(L_MMAP_READ, MM), T0)).toBe(true);
    expect(t.apply(lock(L_MMAP_READ, MM), T1)).toBe(true);
    expect(t.canAcquire(lock(L_MMAP_WRITE, MM), T2)).toBe(false);
    expect(t.apply(trylock(L_MMAP_WRITE, MM), T2)).toBe(false);
    expect(() => t.apply(lock(L_MMAP_WRITE, MM), T2)).toThrow(LockError);
    // A failed trylock takes nothing.
    expect(t.heldBy(T2)).toEqual([]);
    t.apply(unlock(L_MMAP_READ, MM), T0);
    expect(t.apply(trylock(L_MMAP_WRITE, MM), T2)).toBe(false);
    t.apply(unlock(L_MMAP_READ, MM), T1);
    expect(t.apply(trylock(L_MMAP_WRITE, MM), T2)).toBe(true);
    expect(t.heldBy(T2)).toEqual(['acquire mmap_write#1']);
    t.apply(unlock(L_MMAP_WRITE, MM), T2);
    expect(t.isEmpty).toBe(true);
  });

  it('rwsem: a writer excludes readers and other writers; other objects are independent', () => {
    const t = new LockTable();
    t.apply(lock(L_MMAP_WRITE, MM), T0);
    expect(t.apply(trylock(L_MMAP_READ, MM), T1)).toBe(false);
    expect(t.apply(trylock(L_MMAP_WRITE, MM), T1)).toBe(false);
    expect(() => t.apply(lock(L_MMAP_READ, MM), T1)).toThrow(/would block/);
    // The writer asking again deadlocks on itself.
    expect(() => t.apply(lock(L_MMAP_WRITE, MM), T0)).toThrow(
      /thread 0: acquire mmap_write#1 would block/,
    );
    // Another mm's lock, and another rwsem class on the same id, are free.
    expect(t.apply(trylock(L_MMAP_READ, MM + 1), T1)).toBe(true);
    expect(t.apply(trylock(L_ANON_VMA_WRITE, MM), T1)).toBe(true);
    expect(t.apply(trylock(L_ANON_VMA_READ, MM), T0)).toBe(false);
    t.apply(unlock(L_MMAP_WRITE, MM), T0);
    expect(t.apply(trylock(L_MMAP_READ, MM), T1)).toBe(true);
  });

  it('downgrade turns the write lock into a read lock', () => {
    const t = new LockTable();
    t.apply(lock(L_MMAP_WRITE, MM), T0);
    t.apply(ev(OP_DOWNGRADE, L_MMAP_WRITE, MM), T0);
    expect(t.heldBy(T0)).toEqual(['acquire mmap_read#1']);
    expect(t.apply(trylock(L_MMAP_READ, MM), T1)).toBe(true);
    expect(t.apply(trylock(L_MMAP_WRITE, MM), T2)).toBe(false);
    t.apply(unlock(L_MMAP_READ, MM), T0);
    t.apply(unlock(L_MMAP_READ, MM), T1);
    expect(t.isEmpty).toBe(true);
    // Downgrading what one does not hold, or a spinlock, is a bug.
    expect(() => t.apply(ev(OP_DOWNGRADE, L_MMAP_WRITE, MM), T0)).toThrow(LockError);
    t.apply(lock(L_PTE_LOCK, 3), T0);
    expect(() => t.apply(ev(OP_DOWNGRADE, L_PTE_LOCK, 3), T0)).toThrow(/downgrade of a non-rwsem/);
  });

  it('spinlocks are exclusive, and a held one is not re-entrant', () => {
    const t = new LockTable();
    t.apply(lock(L_PTE_LOCK, 7), T0);
    expect(t.apply(trylock(L_PTE_LOCK, 7), T1)).toBe(false);
    expect(() => t.apply(lock(L_PTE_LOCK, 7), T0)).toThrow(LockError);
    expect(t.apply(trylock(L_PTE_LOCK, 8), T1)).toBe(true);
    t.apply(unlock(L_PTE_LOCK, 7), T0);
    expect(t.apply(trylock(L_PTE_LOCK, 7), T1)).toBe(true);
  });

  it('RCU sections nest and never exclude', () => {
    const t = new LockTable();
    t.apply(lock(L_RCU, 0), T0);
    t.apply(lock(L_RCU, 0), T0);
    expect(t.apply(trylock(L_RCU, 0), T1)).toBe(true);
    t.apply(unlock(L_RCU, 0), T0);
    expect(t.heldBy(T0)).toEqual(['acquire rcu_read#0']);
    t.apply(unlock(L_RCU, 0), T0);
    t.apply(unlock(L_RCU, 0), T1);
    expect(t.isEmpty).toBe(true);
  });

  it('releasing a lock that is not held throws', () => {
    const t = new LockTable();
    expect(() => t.apply(unlock(L_PTE_LOCK, 1), T0)).toThrow(
      /thread 0: release pte_lock#1 of a lock it does not hold/,
    );
    t.apply(lock(L_MMAP_READ, MM), T0);
    // Held by another thread is not held by me.
    expect(() => t.apply(unlock(L_MMAP_READ, MM), T1)).toThrow(LockError);
    // The reader class is not the writer class.
    expect(() => t.apply(unlock(L_MMAP_WRITE, MM), T0)).toThrow(LockError);
    t.apply(unlock(L_MMAP_READ, MM), T0);
    expect(() => t.apply(unlock(L_MMAP_READ, MM), T0)).toThrow(LockError);
  });

  it('mmap write unlock ends every VMA write lock of the thread', () => {
    const t = new LockTable();
    t.apply(lock(L_MMAP_WRITE, MM), T0);
    t.apply(lock(L_VMA_WRITE, 10), T0);
    t.apply(lock(L_VMA_WRITE, 11), T0);
    expect(t.apply(trylock(L_VMA_READ, 10), T1)).toBe(false);
    expect(t.apply(trylock(L_VMA_READ, 12), T1)).toBe(true);
    t.apply(unlock(L_MMAP_WRITE, MM), T0);
    expect(t.heldBy(T0)).toEqual([]);
    expect(t.apply(trylock(L_VMA_READ, 10), T1)).toBe(true);
    expect(t.apply(trylock(L_VMA_READ, 11), T1)).toBe(true);
  });

  it('a VMA read lock blocks vma_start_write', () => {
    const t = new LockTable();
    t.apply(lock(L_VMA_READ, 10), T1);
    expect(t.apply(trylock(L_VMA_WRITE, 10), T0)).toBe(false);
  });

  it('mmap write downgrade ends the VMA write locks too', () => {
    const t = new LockTable();
    t.apply(lock(L_MMAP_WRITE, MM), T0);
    t.apply(lock(L_VMA_WRITE, 10), T0);
    t.apply(ev(OP_DOWNGRADE, L_MMAP_WRITE, MM), T0);
    expect(t.heldBy(T0)).toEqual(['acquire mmap_read#1']);
    expect(t.apply(trylock(L_VMA_READ, 10), T1)).toBe(true);
  });

  it('another thread keeps its VMA write locks when one thread unlocks mmap', () => {
    const t = new LockTable();
    t.apply(lock(L_MMAP_WRITE, MM), T0);
    t.apply(lock(L_MMAP_WRITE, MM + 1), T1);
    t.apply(lock(L_VMA_WRITE, 20), T1);
    t.apply(unlock(L_MMAP_WRITE, MM), T0);
    expect(t.apply(trylock(L_VMA_READ, 20), T2)).toBe(false);
  });
});

describe('BalanceSink', () => {
  it('counts acquisitions minus releases, ignoring vma_start_write', () => {
    const b = new BalanceSink();
    b.apply(lock(L_MMAP_WRITE, MM));
    b.apply(lock(L_VMA_WRITE, 3));
    b.apply(trylock(L_PTE_LOCK, 2));
    expect(b.depth).toBe(2);
    b.apply(unlock(L_PTE_LOCK, 2));
    b.apply(unlock(L_MMAP_WRITE, MM));
    expect(b.depth).toBe(0);
    // Downgrade keeps the depth: one lock in, one lock out.
    b.apply(lock(L_MMAP_WRITE, MM));
    b.apply(ev(OP_DOWNGRADE, L_MMAP_WRITE, MM));
    expect(b.depth).toBe(1);
  });
});

describe('every Machine operation leaves no lock held (strictLocks)', () => {
  it('mmap, faults, madvise, munmap, shrink, sysfs, reports, exit; failures included', () => {
    const m = new Machine({ strictLocks: true, ramBytes: 64 * MiB });
    const sink = m.kernel.sink;
    expect(sink).toBeInstanceOf(LockTable);
    const table = sink as LockTable;
    const clean = (what: string) => {
      expect(table.heldBy(0), what).toEqual([]);
      expect(table.isEmpty, what).toBe(true);
      m.checkInvariants();
    };
    const mm = m.spawn('p');
    const a = m.mmap(mm, { lengthBytes: 4 * MiB, alignBytes: 2 * MiB });
    clean('mmap');
    m.access(mm, a, false);
    clean('read fault (huge zero page)');
    m.access(mm, a, true);
    clean('write fault on the huge zero page');
    m.access(mm, a + 2 * MiB, true);
    clean('THP write fault');
    m.access(mm, a + 2 * MiB + 4096, true);
    clean('hit');
    m.touch(mm, a, 4 * MiB, false, 64 * 1024);
    clean('touch');
    expect(m.access(mm, 4096, true)).toBe('sigsegv');
    clean('sigsegv');
    m.madvise(mm, a, 1 * MiB, 'nohugepage');
    clean('madvise nohugepage (split VMA)');
    m.madvise(mm, a, 1 * MiB, 'hugepage');
    clean('madvise hugepage (merge back)');
    m.madvise(mm, a + 2 * MiB, 4096, 'dontneed');
    clean('madvise dontneed (PMD split)');
    m.madvise(mm, a, 2 * MiB, 'dontneed');
    clean('madvise dontneed of a whole PMD');
    expect(() => m.madvise(mm, a + 4 * MiB - 4096, 2 * 4096, 'dontneed')).toThrow(/ENOMEM/);
    clean('madvise over a hole (ENOMEM)');
    expect(() => m.madvise(mm, a, 4096, 'collapse')).toThrow(Errno);
    clean('madvise collapse (EINVAL)');
    expect(() => m.mmap(mm, { lengthBytes: 4096, addrBytes: a })).toThrow(/EEXIST/);
    clean('mmap over an existing mapping (EEXIST)');
    expect(() => m.munmap(mm, a, 0)).toThrow(Errno);
    clean('munmap of nothing (EINVAL)');
    expect(m.shrink()).toBe(1);
    clean('shrink');
    m.sysfsWrite('enabled', 'madvise');
    expect(() => m.sysfsWrite('enabled', 'bogus')).toThrow(Errno);
    clean('sysfs');
    m.smaps(mm);
    m.meminfo();
    m.vmstat();
    m.mthpStats();
    clean('reports');
    m.munmap(mm, a + 1 * MiB, 1 * MiB);
    clean('munmap of part of the mapping');
    const other = m.spawn('q');
    const b = m.mmap(other, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
    m.access(other, b, true);
    m.exit(other);
    clean('exit');
    m.exit(mm);
    clean('exit of the first mm');
    expect(m.kernel.pt.pte.live).toBe(0);
    expect(m.kernel.pt.pmd.live).toBe(0);
    expect(m.kernel.pt.pud.live).toBe(0);
  });
});
