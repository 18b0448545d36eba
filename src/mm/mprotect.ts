// mprotect (mm/mprotect.c): do_mprotect_pkey walks the VMAs of the range, mprotect_fixup splits
// each at the range boundaries and sets its flags, and change_protection rewrites the PTEs and
// huge PMDs under their locks. Entries lose write access with VM_WRITE; when VM_WRITE is granted,
// only entries of exclusive anonymous pages become writable at once (can_change_pte_writable),
// the rest stay read-only and take a write fault (reuse or COW) later. VMAs merge back afterwards.

import type { Kernel } from './kernel.ts';
import { MmError, mmapWriteUnlock } from './mmap.ts';
import { levelIndex, pmdTableOf } from './pagewalk.ts';
import { PG_ANON, PG_ANON_EXCLUSIVE, PG_ZERO } from './folio.ts';
import {
  B_PROTNONE,
  B_SPECIAL,
  B_UFFD_WP,
  B_WRITE,
  E_PRESENT,
  E_TABLE,
  E_TYPE_MASK,
  PMD,
} from './pgtable.ts';
import { splitHugePmd } from './split.ts';
import { L_MMAP_WRITE, L_PMD_LOCK, L_PTE_LOCK, type Step, lock, unlock } from './step.ts';
import { mergeAround, splitVma, vmaStartWrite } from './vma-ops.ts';
import { type Mm, VM_EXEC, VM_READ, VM_SHARED, VM_UFFD_WP, VM_WRITE, type Vma } from './vma.ts';

/** The flags mprotect sets: PROT_READ, PROT_WRITE and PROT_EXEC as VM_* bits. */
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

/**
 * The protection bits of vm_page_prot as far as entries encode them: a PROT_NONE VMA maps its
 * pages protnone. Private mappings never get the write bit from vm_page_prot (write access is
 * granted per entry by the fault handler or can_change_pte_writable), so this has none.
 */
export function vmaPageProt(flags: number): number {
  return flags & VM_ACCESS_FLAGS ? 0 : B_PROTNONE;
}

/** maybe_mkwrite applied to vmaPageProt: what a new, exclusive anon page is mapped with. */
export function vmaPteProt(flags: number): number {
  if (!(flags & VM_ACCESS_FLAGS)) return B_PROTNONE;
  return flags & VM_WRITE ? B_WRITE : 0;
}

/** vma_wants_manual_pte_write_upgrade (MM_CP_TRY_CHANGE_WRITABLE) for private mappings. */
function tryChangeWritable(flags: number): boolean {
  return !(flags & VM_SHARED) && (flags & VM_WRITE) !== 0;
}

/** can_change_pte_writable / can_change_pmd_writable for a private mapping. */
function canChangeWritable(k: Kernel, vma: Vma, bits: number, pfn: number): boolean {
  if (bits & B_PROTNONE || bits & B_SPECIAL) return false;
  if (bits & B_UFFD_WP && vma.flags & VM_UFFD_WP) return false;
  const f = k.folios;
  const head = f.headOf(pfn);
  if (f.flags[head] & PG_ZERO || !(f.flags[head] & PG_ANON)) return false;
  return (f.flags[pfn] & PG_ANON_EXCLUSIVE) !== 0;
}

/** pte_modify / pmd_modify plus the optional write upgrade. */
function newEntryBits(k: Kernel, vma: Vma, bits: number, pfn: number): number {
  let b = (bits & ~(B_WRITE | B_PROTNONE)) | vmaPageProt(vma.flags);
  if (tryChangeWritable(vma.flags) && canChangeWritable(k, vma, b, pfn)) b |= B_WRITE;
  return b;
}

/** change_huge_pmd: rewrite a huge PMD in place, without splitting it. */
function* changeHugePmd(k: Kernel, vma: Vma, pmdT: number, pmdI: number): Step<void> {
  const pmd = k.pt.pmd;
  yield lock(L_PMD_LOCK, pmdT);
  const bits = pmd.getBits(pmdT, pmdI);
  if ((bits & E_TYPE_MASK) === E_PRESENT) {
    const head = pmd.getVal(pmdT, pmdI);
    pmd.set(pmdT, pmdI, head, newEntryBits(k, vma, bits, head));
  }
  yield unlock(L_PMD_LOCK, pmdT);
}

/** change_pte_range over [start, end) of one PTE table; non-present entries keep their bits. */
function* changePteRange(
  k: Kernel,
  vma: Vma,
  pteT: number,
  start: number,
  end: number,
): Step<void> {
  const pte = k.pt.pte;
  const ptrs = k.geo.ptrsPerPte;
  yield lock(L_PTE_LOCK, pteT);
  for (let vpn = start; vpn < end; vpn++) {
    const i = vpn % ptrs;
    const bits = pte.getBits(pteT, i);
    if ((bits & E_TYPE_MASK) !== E_PRESENT) continue;
    const pfn = pte.getVal(pteT, i);
    pte.set(pteT, i, pfn, newEntryBits(k, vma, bits, pfn));
  }
  yield unlock(L_PTE_LOCK, pteT);
}

/** change_protection over [start, end) of one VMA whose flags are already the new ones. */
export function* changeProtection(k: Kernel, vma: Vma, start: number, end: number): Step<void> {
  const ptrs = k.geo.ptrsPerPte;
  const pudSpan = k.geo.pagesPerPud;
  const pmd = k.pt.pmd;
  for (let s = start; s < end;) {
    const base = s - (s % ptrs);
    const e = Math.min(end, base + ptrs);
    const pmdT = pmdTableOf(k, vma.mm, s);
    if (!pmdT) {
      // change_pud_range: nothing mapped under this PUD entry.
      s = Math.min(end, s - (s % pudSpan) + pudSpan);
      continue;
    }
    const pmdI = levelIndex(k, s, PMD);
    if (pmd.type(pmdT, pmdI) === E_PRESENT) {
      // change_pmd_range: a huge PMD covered whole is changed as it is, else split first.
      if (s === base && e === base + ptrs) yield* changeHugePmd(k, vma, pmdT, pmdI);
      else yield* splitHugePmd(k, vma, pmdT, pmdI);
    }
    if (pmd.type(pmdT, pmdI) === E_TABLE)
      yield* changePteRange(k, vma, pmd.getVal(pmdT, pmdI), s, e);
    s = e;
  }
}

/** mprotect_fixup: split off [start, end) of vma, set its flags, rewrite its entries. */
function* mprotectFixup(
  k: Kernel,
  vma: Vma,
  start: number,
  end: number,
  newFlags: number,
): Step<void> {
  if (newFlags === vma.flags) return;
  let v = vma;
  if (v.start < start) v = yield* splitVma(k, v, start);
  if (v.end > end) yield* splitVma(k, v, end);
  yield* vmaStartWrite(v);
  v.flags = newFlags;
  yield* changeProtection(k, v, v.start, v.end);
}

/** do_mprotect_pkey: set the access flags (VM_READ/VM_WRITE/VM_EXEC) of [start, end). */
export function* doMprotect(
  k: Kernel,
  mm: Mm,
  start: number,
  end: number,
  prot: number,
): Step<void> {
  if (prot & ~VM_ACCESS_FLAGS) throw new MmError('EINVAL', `bad protection ${prot}`);
  if (end === start) return;
  if (end < start) throw new MmError('ENOMEM', 'range wraps around');
  yield lock(L_MMAP_WRITE, mm.id);
  let error: MmError | null = null;
  try {
    const vmas = mm.vmasIn(start, end);
    // VMAs before a hole keep their new protection; the hole makes the call fail.
    let at = start;
    for (const vma of vmas) {
      if (vma.start > at) break;
      const e = Math.min(end, vma.end);
      yield* mprotectFixup(k, vma, at, e, (vma.flags & ~VM_ACCESS_FLAGS) | prot);
      at = e;
    }
    if (at < end) error = new MmError('ENOMEM', `[${at}, ${end}) is not mapped`);
    yield* mergeAround(mm, start, end);
  } finally {
    yield* mmapWriteUnlock(mm);
  }
  if (error) throw error;
}
