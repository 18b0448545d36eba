// anon_vma_prepare() and the anon_vma_chain links that rmap walks follow.

import type { Kernel } from './kernel.ts';
import { L_PAGE_TABLE_LOCK, type Step, lock, unlock } from './step.ts';
import type { AnonVma, Vma } from './vma.ts';

/** Link a VMA to an anon_vma (anon_vma_chain_link). */
export function anonVmaLink(vma: Vma, av: AnonVma): void {
  if (!vma.chain.includes(av)) vma.chain.push(av);
  av.vmas.add(vma);
}

/** Unlink a VMA from all its anon_vmas (unlink_anon_vmas). */
export function anonVmaUnlinkAll(vma: Vma): void {
  for (const av of vma.chain) av.vmas.delete(vma);
  vma.chain = [];
  vma.anonVma = null;
}

/** __anon_vma_prepare: give the VMA an anon_vma, set under mm->page_table_lock. */
export function* anonVmaPrepare(k: Kernel, vma: Vma): Step<void> {
  if (vma.anonVma) return;
  const av = k.newAnonVma();
  yield lock(L_PAGE_TABLE_LOCK, vma.mm.id);
  if (!vma.anonVma) {
    vma.anonVma = av;
    anonVmaLink(vma, av);
  }
  yield unlock(L_PAGE_TABLE_LOCK, vma.mm.id);
}
