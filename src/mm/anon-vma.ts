// anon_vma_prepare() and the anon_vma_chain links that rmap walks follow.

import type { Kernel } from './kernel.ts';
import {
  L_ANON_VMA_READ,
  L_ANON_VMA_WRITE,
  L_PAGE_TABLE_LOCK,
  S_VMA_TREE,
  type Step,
  lock,
  readShared,
  unlock,
} from './step.ts';
import { type AnonVma, VM_EXEC, VM_READ, VM_WRITE, type Vma } from './vma.ts';

/**
 * anon_vma_lock_write: every anon_vma of a fork tree shares its root's rwsem, so the lock
 * taken is the root's whichever anon_vma of the tree the caller has.
 */
export function* anonVmaLockWrite(av: AnonVma): Step<void> {
  yield lock(L_ANON_VMA_WRITE, av.root.id);
}

/** anon_vma_unlock_write. */
export function* anonVmaUnlockWrite(av: AnonVma): Step<void> {
  yield unlock(L_ANON_VMA_WRITE, av.root.id);
}

/** anon_vma_lock_read: the root's rwsem, for reading (rmap walks). */
export function* anonVmaLockRead(av: AnonVma): Step<void> {
  yield lock(L_ANON_VMA_READ, av.root.id);
}

/** anon_vma_unlock_read. */
export function* anonVmaUnlockRead(av: AnonVma): Step<void> {
  yield unlock(L_ANON_VMA_READ, av.root.id);
}

/** folio_anon_vma: the anon_vma an anonymous folio's mapping names, if it still exists. */
export function folioAnonVma(k: Kernel, head: number): AnonVma | undefined {
  return k.anonVmas.get(k.folios.mapping[head]);
}

/** Link a VMA to an anon_vma (anon_vma_chain_link). */
export function anonVmaLink(vma: Vma, av: AnonVma): void {
  if (!vma.chain.includes(av)) vma.chain.push(av);
  av.vmas.add(vma);
}

/** Unlink a VMA from all its anon_vmas (unlink_anon_vmas); one left without VMAs is freed. */
export function anonVmaUnlinkAll(vma: Vma): void {
  for (const av of vma.chain) {
    av.vmas.delete(vma);
    if (av.vmas.size === 0 && av.root === av) av.freed = true;
  }
  vma.chain = [];
  vma.anonVma = null;
}

/**
 * find_mergeable_anon_vma: a neighbour whose anon_vma this VMA could share (adjacent, anonymous,
 * flags equal but for access bits, contiguous page offsets, an anon_vma of its own only). It
 * reads the neighbours, which only the mmap lock keeps still.
 */
function mergeableAnonVma(vma: Vma): AnonVma | null {
  const mm = vma.mm;
  const i = mm.vmas.indexOf(vma);
  const compatible = (a: Vma, b: Vma): boolean =>
    a.end === b.start &&
    a.file === 0 &&
    b.file === 0 &&
    (a.flags & ~ACCESS) === (b.flags & ~ACCESS) &&
    b.pgoff === a.pgoff + a.pages;
  for (const n of [mm.vmas[i - 1], mm.vmas[i + 1]]) {
    if (!n || !n.anonVma || n.chain.length !== 1) continue;
    if (n.end === vma.start ? compatible(n, vma) : compatible(vma, n)) return n.anonVma;
  }
  return null;
}

const ACCESS = VM_READ | VM_WRITE | VM_EXEC;

/** __anon_vma_prepare: give the VMA an anon_vma (a neighbour's if it can), set under PTLk. */
export function* anonVmaPrepare(k: Kernel, vma: Vma): Step<void> {
  if (vma.anonVma) return;
  yield readShared(S_VMA_TREE, vma.mm.id);
  const found = mergeableAnonVma(vma);
  const av = found ?? k.newAnonVma();
  yield* anonVmaLockWrite(av);
  yield lock(L_PAGE_TABLE_LOCK, vma.mm.id);
  if (!vma.anonVma) {
    vma.anonVma = av;
    anonVmaLink(vma, av);
  }
  yield unlock(L_PAGE_TABLE_LOCK, vma.mm.id);
  yield* anonVmaUnlockWrite(av);
}
