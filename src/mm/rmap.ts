// Reverse-map accounting (mm/rmap.c): every PTE or PMD that maps a folio goes through here so the
// mapcounts, the meminfo counters (NR_ANON_MAPPED, NR_ANON_THPS, NR_FILE_MAPPED,
// NR_FILE_PMDMAPPED, NR_SHMEM_PMDMAPPED), the mm rss counters (MM_ANONPAGES, MM_FILEPAGES,
// MM_SHMEMPAGES) and the deferred split queue stay in step.

import { PG_ANON, PG_FILE, PG_LRU, PG_ZERO } from './folio.ts';
import type { Kernel } from './kernel.ts';
import type { Vma } from './vma.ts';

/** Pages of the folio that are mapped at all (by a PTE, or by its PMD mapping). */
function mappedPages(k: Kernel, head: number): number {
  const f = k.folios;
  return f.entireMapcount[head] > 0 ? 1 << f.order[head] : f.nrPagesMapped[head];
}

function modAnonStat(k: Kernel, head: number, before: number): void {
  if (k.folios.flags[head] & PG_ANON) k.stats.anonMapped += mappedPages(k, head) - before;
  else if (k.folios.flags[head] & PG_FILE) k.fileStats.fileMapped += mappedPages(k, head) - before;
}

/** folio_test_swapbacked for a page-cache folio: it belongs to a tmpfs/shmem file. */
function shmemFolio(k: Kernel, head: number): boolean {
  return k.files.get(k.folios.mapping[head])?.tmpfs === true;
}

/** add_mm_counter(mm, mm_counter_file(folio), nr). */
function modFileRss(k: Kernel, head: number, vma: Vma, nr: number): void {
  if (shmemFolio(k, head)) vma.mm.rssShmem += nr;
  else vma.mm.rssFile += nr;
}

/** NR_SHMEM_PMDMAPPED / NR_FILE_PMDMAPPED when the first PMD maps a page-cache folio or the last goes. */
function modFilePmdMapped(k: Kernel, head: number, nr: number): void {
  if (shmemFolio(k, head)) k.fileStats.shmemPmdMapped += nr;
  else k.fileStats.filePmdMapped += nr;
}

/** folio_add_new_anon_rmap: a fresh folio becomes anonymous, exclusive to this VMA. */
export function folioAddNewAnon(k: Kernel, head: number, vma: Vma, vpn: number): void {
  const f = k.folios;
  f.set(head, PG_ANON | PG_LRU);
  f.mapping[head] = vma.anonVma!.id;
  f.index[head] = vma.linearIndex(vpn);
  if (f.order[head] > 0) k.stats.mthpStat(f.order[head], 'nr_anon');
}

/** folio_add_{new_,}anon_rmap_ptes / folio_add_file_rmap_ptes. */
export function rmapAddPtes(k: Kernel, head: number, pfn: number, nr: number, vma: Vma): void {
  const f = k.folios;
  if (f.flags[head] & PG_ZERO) return;
  const before = mappedPages(k, head);
  f.addRmapPtes(head, pfn, nr, vma.mm.id);
  modAnonStat(k, head, before);
  if (f.flags[head] & PG_ANON) vma.mm.rssAnon += nr;
  else if (f.flags[head] & PG_FILE) modFileRss(k, head, vma, nr);
}

/** folio_remove_rmap_ptes: a partially mapped large folio is queued for deferred split. */
export function rmapRemovePtes(k: Kernel, head: number, pfn: number, nr: number, vma: Vma): void {
  const f = k.folios;
  if (f.flags[head] & PG_ZERO) return;
  const before = mappedPages(k, head);
  const partial = f.removeRmapPtes(head, pfn, nr, vma.mm.id);
  modAnonStat(k, head, before);
  if (f.flags[head] & PG_ANON) vma.mm.rssAnon -= nr;
  else if (f.flags[head] & PG_FILE) modFileRss(k, head, vma, -nr);
  if (partial) k.deferredSplitAdd(head, true);
}

/** folio_add_{anon,file}_rmap_pmd. */
export function rmapAddPmd(k: Kernel, head: number, vma: Vma): void {
  const f = k.folios;
  if (f.flags[head] & PG_ZERO) return;
  const before = mappedPages(k, head);
  f.addRmapPmd(head, vma.mm.id);
  modAnonStat(k, head, before);
  const nr = 1 << f.order[head];
  if (f.flags[head] & PG_ANON) {
    vma.mm.rssAnon += nr;
    if (f.entireMapcount[head] === 1) k.stats.anonThps += nr;
  } else if (f.flags[head] & PG_FILE) {
    modFileRss(k, head, vma, nr);
    if (f.entireMapcount[head] === 1) modFilePmdMapped(k, head, nr);
  }
}

/** folio_remove_rmap_pmd (anon and file). */
export function rmapRemovePmd(k: Kernel, head: number, vma: Vma): void {
  const f = k.folios;
  if (f.flags[head] & PG_ZERO) return;
  const before = mappedPages(k, head);
  const partial = f.removeRmapPmd(head, vma.mm.id);
  modAnonStat(k, head, before);
  const nr = 1 << f.order[head];
  if (f.flags[head] & PG_ANON) {
    vma.mm.rssAnon -= nr;
    if (f.entireMapcount[head] === 0) k.stats.anonThps -= nr;
  } else if (f.flags[head] & PG_FILE) {
    modFileRss(k, head, vma, -nr);
    if (f.entireMapcount[head] === 0) modFilePmdMapped(k, head, -nr);
  }
  if (partial) k.deferredSplitAdd(head, true);
}
