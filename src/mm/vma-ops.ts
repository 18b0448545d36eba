// VMA tree changes under the mmap write lock: split_vma at a boundary and vma_merge with the
// neighbours after a change of flags or a new mapping.

import { anonVmaLink } from './anon-vma.ts';
import type { Kernel } from './kernel.ts';
import { levelIndex, pmdTableOf } from './pagewalk.ts';
import { E_PRESENT, PMD } from './pgtable.ts';
import { splitHugePmd } from './split.ts';
import { L_I_MMAP_WRITE, L_VMA_WRITE, type Step, lock, unlock } from './step.ts';
import { canMerge, type Mm, type Vma } from './vma.ts';

/** vma_start_write: stamp the VMA write-locked until mmap_write_unlock. */
export function* vmaStartWrite(vma: Vma): Step<void> {
  if (vma.vmLockSeq === vma.mm.mmLockSeq) return; // already write-locked in this section
  yield lock(L_VMA_WRITE, vma.id);
  vma.vmLockSeq = vma.mm.mmLockSeq;
}

/** split_huge_pmd_if_needed (vma_adjust_trans_huge): no huge PMD may straddle a new boundary. */
function* splitHugePmdAt(k: Kernel, vma: Vma, vpn: number): Step<void> {
  const ptrs = k.geo.ptrsPerPte;
  const base = vpn - (vpn % ptrs);
  if (base === vpn || base < vma.start || base + ptrs > vma.end) return;
  const pmdT = pmdTableOf(k, vma.mm, vpn);
  const pmdI = levelIndex(k, vpn, PMD);
  if (pmdT && k.pt.pmd.type(pmdT, pmdI) === E_PRESENT) yield* splitHugePmd(k, vma, pmdT, pmdI);
}

/** split_vma: cut vma at vpn; the new VMA takes [vpn, end). Returns the upper part. */
export function* splitVma(k: Kernel, vma: Vma, vpn: number): Step<Vma> {
  yield* vmaStartWrite(vma);
  yield* splitHugePmdAt(k, vma, vpn);
  // vma_prepare: rmap walks of a file must not see the VMA half split.
  if (vma.file) yield lock(L_I_MMAP_WRITE, vma.file);
  const upper = k.newVma(vma.mm, vpn, vma.end, vma.flags, vma.linearIndex(vpn), vma.file, vma.name);
  upper.anonVma = vma.anonVma;
  for (const av of vma.chain) anonVmaLink(upper, av);
  vma.end = vpn;
  vma.mm.insertVma(upper);
  if (vma.file) yield unlock(L_I_MMAP_WRITE, vma.file);
  yield* vmaStartWrite(upper);
  return upper;
}

/** Split so that no VMA straddles start or end; returns the VMAs inside [start, end). */
export function* splitRange(k: Kernel, mm: Mm, start: number, end: number): Step<Vma[]> {
  for (const vma of mm.vmasIn(start, end)) {
    let v = vma;
    if (v.start < start) v = yield* splitVma(k, v, start);
    if (v.end > end) yield* splitVma(k, v, end);
  }
  return mm.vmasIn(start, end);
}

/** vma_merge: fold VMAs in [start, end) into compatible neighbours. */
export function* mergeAround(mm: Mm, start: number, end: number): Step<void> {
  for (let i = 0; i + 1 < mm.vmas.length;) {
    const a = mm.vmas[i];
    const b = mm.vmas[i + 1];
    if (b.start <= end && a.end >= start && canMerge(a, b)) {
      yield* vmaStartWrite(a);
      yield* vmaStartWrite(b);
      if (a.file) yield lock(L_I_MMAP_WRITE, a.file);
      a.end = b.end;
      if (!a.anonVma && b.anonVma) {
        a.anonVma = b.anonVma;
        anonVmaLink(a, b.anonVma);
      }
      for (const av of b.chain) av.vmas.delete(b);
      b.detached = true;
      mm.removeVma(b);
      if (a.file) yield unlock(L_I_MMAP_WRITE, a.file);
    } else i++;
  }
}
