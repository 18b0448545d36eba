// Invariants of the sequential model, checked between operations: references, mappings, page
// table lifetimes and accounting must all agree with a recount from the page tables.

import { BalanceSink, LockTable } from './locks.ts';
import { PG_ANON, PG_DEFERRED, PG_FILE, PG_HEAD, PG_SWAPCACHE, PG_TAIL, PG_ZERO } from './folio.ts';
import type { Kernel } from './kernel.ts';
import {
  B_SPECIAL,
  E_NONE,
  E_PRESENT,
  E_SWAP,
  E_TABLE,
  E_TYPE_MASK,
  PMD,
  PTE,
  PUD,
  T_DEPOSITED,
  T_FREE,
  T_LINKED,
} from './pgtable.ts';
import { walkRange } from './walk.ts';

export class InvariantViolation extends Error {}

export function checkInvariants(k: Kernel): void {
  const problems: string[] = [];
  const fail = (msg: string) => {
    if (problems.length < 20) problems.push(msg);
  };
  const f = k.folios;
  const pt = k.pt;
  const ptrs = k.geo.ptrsPerPte;
  const pteMaps = new Map<number, number>();
  const pmdMaps = new Map<number, number>();
  const swapRefs = new Map<number, number>();
  const reachable = [new Set<number>(), new Set<number>(), new Set<number>(), new Set<number>()];
  let deposited = 0;
  let entriesInVmas = 0;
  let entriesInTables = 0;

  // Locks: nothing may be held between operations.
  if (k.sink instanceof BalanceSink && k.sink.depth !== 0)
    fail(`lock balance ${k.sink.depth} between operations`);
  if (k.sink instanceof LockTable && !k.sink.isEmpty)
    fail(`locks held between operations: ${k.sink.heldBy(0).join(', ')}`);

  for (const mm of k.mms.values()) {
    reachable[0].add(mm.pgd);
    // Tables reachable from this mm, with their recorded non-none counts.
    for (let gi = 0; gi < k.geo.entries[0]; gi++) {
      if (pt.pgd.type(mm.pgd, gi) !== E_TABLE) continue;
      const pud = pt.pgd.getVal(mm.pgd, gi);
      reachable[PUD].add(pud);
      for (let ui = 0; ui < k.geo.entries[PUD]; ui++) {
        if (pt.pud.type(pud, ui) !== E_TABLE) continue;
        const pmdT = pt.pud.getVal(pud, ui);
        reachable[PMD].add(pmdT);
        for (let mi = 0; mi < k.geo.entries[PMD]; mi++) {
          const type = pt.pmd.type(pmdT, mi);
          if (type === E_TABLE) {
            reachable[PTE].add(pt.pmd.getVal(pmdT, mi));
            entriesInTables += pt.pte.used[pt.pmd.getVal(pmdT, mi)];
          }
          const dep = pt.deposit[pmdT * pt.pmd.entriesPerTable + mi] ?? 0;
          if (type === E_PRESENT && f.flags[pt.pmd.getVal(pmdT, mi)] & PG_FILE) {
            // Page-cache THPs are mapped without a deposited table.
            if (dep) fail(`file huge PMD ${pmdT}:${mi} has deposited table ${dep}`);
            entriesInTables++;
          } else if (type === E_PRESENT) {
            if (!dep) fail(`huge PMD ${pmdT}:${mi} without a deposited table`);
            else if (pt.pte.state[dep] !== T_DEPOSITED || pt.pte.used[dep] !== 0)
              fail(`deposited table ${dep} is not an empty deposited table`);
            else deposited++;
            entriesInTables++;
          } else if (dep) fail(`PMD ${pmdT}:${mi} (type ${type}) still has deposited table ${dep}`);
        }
      }
    }
    let prevEnd = -1;
    let rss = 0;
    let rssFile = 0;
    let rssShmem = 0;
    let swapEnts = 0;
    const fileRss = (head: number, n: number) => {
      if (k.files.get(f.mapping[head])?.tmpfs) rssShmem += n;
      else rssFile += n;
    };
    for (const vma of mm.vmas) {
      if (vma.start < prevEnd || vma.end <= vma.start)
        fail(`mm ${mm.name}: VMAs overlap or are empty at ${vma.start}`);
      prevEnd = vma.end;
      walkRange(k, mm, vma.start, vma.end, {
        pmd(vpn, _t, _i, _bits, head) {
          entriesInVmas++;
          if (vpn < vma.start || vpn + ptrs > vma.end)
            fail(`huge PMD at ${vpn} crosses VMA ${vma.name}`);
          if (!(f.flags[head] & PG_HEAD) || (f.refcount[head] <= 0 && !(f.flags[head] & PG_ZERO)))
            fail(`huge PMD at ${vpn} maps dead folio ${head}`);
          if (f.flags[head] & PG_ZERO) return;
          pmdMaps.set(head, (pmdMaps.get(head) ?? 0) + 1);
          if (f.flags[head] & PG_ANON) rss += ptrs;
          else if (f.flags[head] & PG_FILE) fileRss(head, ptrs);
          else fail(`huge PMD at ${vpn} maps folio ${head} that is neither anon nor page cache`);
        },
        pte(vpn, _t, _i, bits, val) {
          entriesInVmas++;
          const type = bits & E_TYPE_MASK;
          if (type === E_SWAP) {
            swapRefs.set(val, (swapRefs.get(val) ?? 0) + 1);
            swapEnts++;
            return;
          }
          if (type !== E_PRESENT) return;
          if (bits & B_SPECIAL) {
            if (!(f.flags[f.headOf(val)] & PG_ZERO))
              fail(`special PTE at ${vpn} maps non-zero page ${val}`);
            return;
          }
          const head = f.headOf(val);
          if (!(f.flags[head] & PG_HEAD) || f.refcount[head] <= 0)
            fail(`PTE at ${vpn} maps dead page ${val}`);
          pteMaps.set(val, (pteMaps.get(val) ?? 0) + 1);
          if (f.flags[head] & PG_ANON) rss++;
          else if (f.flags[head] & PG_FILE) fileRss(head, 1);
          else fail(`PTE at ${vpn} maps page ${val} that is neither anon nor page cache`);
          if (vma.file === 0 && !(f.flags[head] & PG_ANON))
            fail(`PTE at ${vpn} of anonymous VMA ${vma.name} maps page-cache page ${val}`);
        },
      });
    }
    if (rss !== mm.rssAnon) fail(`mm ${mm.name}: MM_ANONPAGES ${mm.rssAnon}, recount ${rss}`);
    if (rssFile !== mm.rssFile)
      fail(`mm ${mm.name}: MM_FILEPAGES ${mm.rssFile}, recount ${rssFile}`);
    if (rssShmem !== mm.rssShmem)
      fail(`mm ${mm.name}: MM_SHMEMPAGES ${mm.rssShmem}, recount ${rssShmem}`);
    if (swapEnts !== mm.swapEnts)
      fail(`mm ${mm.name}: MM_SWAPENTS ${mm.swapEnts}, recount ${swapEnts}`);
  }

  // Nothing may be mapped outside the VMAs.
  if (entriesInTables !== entriesInVmas)
    fail(`${entriesInTables - entriesInVmas} page-table entries map addresses outside any VMA`);

  // Tables: the linked ones are exactly the reachable ones; none is leaked.
  for (let level = 0; level < 4; level++) {
    const t = pt.levels[level];
    let linked = 0;
    for (let id = 1; id < t.capacity; id++) {
      const st = t.state[id];
      if (st === T_LINKED) {
        linked++;
        if (!reachable[level].has(id))
          fail(`${['pgd', 'pud', 'pmd', 'pte'][level]} table ${id} linked but unreachable`);
        let used = 0;
        for (let i = 0; i < t.entriesPerTable; i++) if (t.type(id, i) !== E_NONE) used++;
        if (used !== t.used[id]) fail(`table ${id} used count ${t.used[id]}, recount ${used}`);
      } else if (st !== T_FREE && st !== T_DEPOSITED)
        fail(`${['pgd', 'pud', 'pmd', 'pte'][level]} table ${id} in transient state ${st}`);
    }
    for (const id of reachable[level])
      if (t.state[id] !== T_LINKED)
        fail(`reachable table ${id} at level ${level} is in state ${t.state[id]}`);
    const expectLive = linked + (level === PTE ? deposited : 0);
    if (t.live !== expectLive)
      fail(`level ${level}: ${t.live} live tables, ${expectLive} linked or deposited (leak)`);
  }

  // Folios: references equal mappings plus pins plus the swap cache; counts match the recount.
  let allocated = 0;
  let anonMapped = 0;
  let anonThps = 0;
  const fs = {
    filePages: 0,
    shmem: 0,
    fileMapped: 0,
    filePmdMapped: 0,
    shmemPmdMapped: 0,
    fileThps: 0,
    shmemThps: 0,
  };
  const nrAnon = new Map<number, number>();
  for (let pfn = 0; pfn < k.nrPages; pfn++) {
    const fl = f.flags[pfn];
    if (!(fl & PG_HEAD)) continue;
    const n = 1 << f.order[pfn];
    allocated += n;
    pfn += n - 1;
    const head = pfn - n + 1;
    if (fl & PG_ZERO) continue;
    let ptes = 0;
    let pagesMapped = 0;
    for (let i = 0; i < n; i++) {
      const c = pteMaps.get(head + i) ?? 0;
      if (c !== f.pteMapcount[head + i])
        fail(`page ${head + i}: PTE mapcount ${f.pteMapcount[head + i]}, recount ${c}`);
      if (i > 0 && !(f.flags[head + i] & PG_TAIL))
        fail(`page ${head + i} of folio ${head} is not a tail`);
      ptes += c;
      if (c > 0) pagesMapped++;
    }
    const pmds = pmdMaps.get(head) ?? 0;
    if (pmds !== f.entireMapcount[head])
      fail(`folio ${head}: entire mapcount ${f.entireMapcount[head]}, recount ${pmds}`);
    if (ptes + pmds !== f.mapcount[head])
      fail(`folio ${head}: mapcount ${f.mapcount[head]}, recount ${ptes + pmds}`);
    if (pagesMapped !== f.nrPagesMapped[head])
      fail(`folio ${head}: nr_pages_mapped ${f.nrPagesMapped[head]}, recount ${pagesMapped}`);
    if (f.refcount[head] !== f.expectedRefcount(head))
      fail(
        `folio ${head} (order ${f.order[head]}): refcount ${f.refcount[head]}, mappings+pins+swapcache ${f.expectedRefcount(head)}`,
      );
    if (f.refcount[head] <= 0) fail(`folio ${head} allocated with refcount ${f.refcount[head]}`);
    if (fl & PG_ANON) {
      anonMapped += pmds > 0 ? n : pagesMapped;
      if (pmds > 0 && f.order[head] === k.geo.pmdOrder) anonThps += n;
      if (f.order[head] > 0) nrAnon.set(f.order[head], (nrAnon.get(f.order[head]) ?? 0) + 1);
    }
    if (fl & PG_FILE) {
      // A page-cache folio: in its file's cache at its index, covering its whole range.
      const file = k.files.get(f.mapping[head]);
      const index = f.index[head];
      if (!file) fail(`page-cache folio ${head} names no file (${f.mapping[head]})`);
      else if (fl & PG_ANON) fail(`folio ${head} is both anon and page cache`);
      else if (index % n !== 0 || index + n > file.size)
        fail(
          `page-cache folio ${head} (order ${f.order[head]}) at bad index ${index} of ${file.name}`,
        );
      else {
        for (let i = 0; i < n; i++)
          if (file.cache[index + i] !== head)
            fail(`${file.name}[${index + i}] is ${file.cache[index + i]}, not its folio ${head}`);
        const shmem = file.tmpfs;
        fs.filePages += n;
        if (shmem) fs.shmem += n;
        if (f.order[head] === k.geo.pmdOrder) {
          if (shmem) fs.shmemThps += n;
          else fs.fileThps += n;
        }
        fs.fileMapped += pmds > 0 ? n : pagesMapped;
        if (pmds > 0) {
          if (shmem) fs.shmemPmdMapped += n;
          else fs.filePmdMapped += n;
        }
      }
    }
    if (!!(fl & PG_DEFERRED) !== k.deferredSplit.has(head))
      fail(`folio ${head}: deferred flag and queue disagree`);
    if (fl & PG_SWAPCACHE && k.swap.cache[f.swapSlot[head]] !== head)
      fail(`folio ${head}: swap cache slot does not point back`);
  }
  for (const head of k.deferredSplit)
    if (!(f.flags[head] & PG_DEFERRED)) fail(`queued folio ${head} lacks the deferred flag`);
  if (allocated + k.buddy.freePages !== k.nrPages)
    fail(`pages: ${allocated} allocated + ${k.buddy.freePages} free != ${k.nrPages}`);
  if (k.buddy.countFree() !== k.buddy.freePages)
    fail(`buddy free lists hold ${k.buddy.countFree()}, counter ${k.buddy.freePages}`);
  if (anonMapped !== k.stats.anonMapped)
    fail(`AnonPages ${k.stats.anonMapped}, recount ${anonMapped}`);
  if (anonThps !== k.stats.anonThps) fail(`AnonHugePages ${k.stats.anonThps}, recount ${anonThps}`);
  for (const [key, want] of Object.entries(fs) as Array<[keyof typeof fs, number]>)
    if (k.fileStats[key] !== want)
      fail(`page-cache counter ${key} ${k.fileStats[key]}, recount ${want}`);

  // Page caches: every entry names a live page-cache folio of that file (checked from the folio
  // side above); here the per-file counts.
  for (const file of k.files.values()) {
    let pages = 0;
    let thps = 0;
    for (let i = 0; i < file.size; i++) {
      const head = file.cache[i];
      if (head === -1) continue;
      pages++;
      if (!(f.flags[head] & PG_FILE) || f.mapping[head] !== file.id || f.refcount[head] <= 0)
        fail(`${file.name}[${i}] points at ${head}, not a live folio of this file`);
      else if (f.index[head] === i && f.order[head] === k.geo.pmdOrder) thps++;
    }
    if (pages !== file.nrPages) fail(`${file.name}: nrpages ${file.nrPages}, recount ${pages}`);
    if (!file.tmpfs && thps !== file.nrThps)
      fail(`${file.name}: nr_thps ${file.nrThps}, recount ${thps}`);
  }
  for (let o = 2; o <= k.geo.pmdOrder; o++) {
    const want = nrAnon.get(o) ?? 0;
    if (k.stats.mthpValue(o, 'nr_anon') !== want)
      fail(`order ${o}: nr_anon ${k.stats.mthpValue(o, 'nr_anon')}, recount ${want}`);
  }

  // Swap: each slot's count equals the swap PTEs that name it.
  const sw = k.swap;
  let inuse = 0;
  for (let s = 0; s < sw.nrSlots; s++) {
    const refs = swapRefs.get(s) ?? 0;
    if (sw.count[s] !== refs) fail(`swap slot ${s}: count ${sw.count[s]}, recount ${refs}`);
    if (sw.used[s]) {
      inuse++;
      if (refs === 0 && sw.cache[s] === -1) fail(`swap slot ${s} in use with no reference`);
    } else if (refs) fail(`swap slot ${s} referenced but free`);
  }
  if (inuse !== sw.inuse) fail(`swap in use ${sw.inuse}, recount ${inuse}`);

  if (problems.length) throw new InvariantViolation(problems.join('\n'));
}
