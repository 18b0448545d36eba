// What-if: load a snapshot into the model, change settings, let khugepaged run for a while, and
// report what changed: coverage per folio size before and after, the memory collapses added
// (bloat), and the PMD ranges khugepaged visited by SCAN_* result.
//
// Loading. Only private anonymous VMAs are loaded (heap, stack, anonymous mmaps); file and shared
// mappings are listed as skipped. Each VMA is mapped at its address. When the snapshot has PFNs
// and page flags, its folios are recreated: each naturally aligned, fully mapped large folio by a
// fault with only its size enabled (PMD-mapped ones as PMD THPs), every other present page as a
// small page, zero-page mappings by a read, swapped pages by a write and MADV_PAGEOUT. Without
// PFNs the orders are unknown: as many PMD-aligned, fully present PMD ranges as smaps
// AnonHugePages accounts for become PMD THPs and everything else small pages. Every loaded page
// holds data (the model cannot know which real pages are zero-filled), and every page is mapped
// by this one process (sharing with other processes is not recreated). After loading, the
// settings are the model's defaults, then the snapshot's captured sysfs values, then --set; each
// VMA is registered with khugepaged as a fault after the change would register it.

import { khugepagedEnterVma } from '../khugepaged/enter.ts';
import type { CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { GeometryName } from '../mm/geometry.ts';
import type { ProfileName } from '../mm/profile.ts';
import { Errno, Machine, type Prot } from '../sim/machine.ts';
import {
  P_ANON,
  P_HEAD,
  P_PRESENT,
  P_SWAPPED,
  P_THP,
  P_ZERO,
  type Snapshot,
  type SnapshotVma,
  X_FILE,
  X_NEXT_TAIL,
} from './format.ts';

export class WhatifError extends Error {}

export interface WhatifOptions {
  sets?: Array<[string, string]>;
  policy?: CollapsePolicy;
  profile?: ProfileName;
  /** Simulated time khugepaged runs (ms). */
  ms?: number;
  /** Physical memory of the model (default: what the snapshot needs, with room). */
  ramBytes?: number;
}

export interface Coverage {
  rssKb: number;
  anonKb: number;
  /** kB mapped by folios of each size ("2048kB"). */
  bySizeKb: Record<string, number>;
}

export interface WhatifResult {
  format: 'thpsim-whatif';
  version: 1;
  snapshot: { pid: number; comm: string; source: string; ordersKnown: boolean };
  loaded: {
    vmas: number;
    pages: number;
    /** Large folios recreated, by size. */
    folios: Record<string, number>;
    skipped: Array<{ start: number; end: number; name: string; reason: string }>;
  };
  config: {
    geometry: string;
    profile: string;
    policy: string;
    ms: number;
    sysfs: Record<string, string>;
  };
  before: Coverage;
  after: Coverage;
  collapses: {
    succeeded: number;
    /** By folio size: collapses and the kB of empty or zero PTEs they filled (bloat). */
    bySize: Record<string, { succeeded: number; bloatKb: number }>;
    /** PMD ranges visited, by SCAN_* result. */
    pmdResults: Record<string, number>;
    /** collapse_huge_page results (mm_collapse_huge_page status), by SCAN_* result. */
    collapseResults: Record<string, number>;
  };
  khugepaged: { full_scans: number; pages_collapsed: number };
  notes: string[];
}

function geometryFor(pageSize: number, pmdSize: number): GeometryName {
  if (pageSize === 4096 && pmdSize === 2 * 1024 * 1024) return 'x86-64-4k';
  if (pageSize === 16384) return 'arm64-16k';
  if (pageSize === 65536) return 'arm64-64k';
  throw new WhatifError(`no geometry with ${pageSize}-byte pages and a ${pmdSize}-byte PMD`);
}

function skipReason(v: SnapshotVma): string | null {
  if (v.perms[3] === 's') return 'shared mapping';
  if (v.inode !== 0 || (v.name.startsWith('/') && !v.name.startsWith('/memfd:')))
    return 'file mapping';
  if (
    v.name === '[vvar]' ||
    v.name === '[vdso]' ||
    v.name === '[vsyscall]' ||
    v.name.startsWith('[vvar')
  )
    return 'special mapping';
  if (v.perms.slice(0, 3) === '---') return 'no access (guard)';
  return null;
}

function coverage(m: Machine, mm: ReturnType<Machine['spawn']>, pageKb: number): Coverage {
  const c: Coverage = { rssKb: 0, anonKb: 0, bySizeKb: {} };
  for (const v of m.smaps(mm)) {
    c.rssKb += v.Rss;
    c.anonKb += v.Anonymous;
    for (const [o, kb] of Object.entries(v.byOrder)) {
      const size = `${(1 << Number(o)) * pageKb}kB`;
      c.bySizeKb[size] = (c.bySizeKb[size] ?? 0) + kb;
    }
  }
  return c;
}

/** Large folios of a VMA to recreate: [first page index, order], found as thpmaps finds them. */
function largeFolios(s: Snapshot, vi: number): Array<[number, number]> {
  const st = s.state[vi];
  const pf = s.pfn[vi];
  const ex = s.extra[vi];
  const h = s.header;
  const firstVfn = h.vmas[vi].start / h.pageSize;
  const maxOrder = Math.log2(h.pmdSize / h.pageSize);
  const out: Array<[number, number]> = [];
  const thp = (j: number) =>
    (st[j] & (P_PRESENT | P_THP | P_ANON)) === (P_PRESENT | P_THP | P_ANON) && pf[j] >= 0;
  for (let i = 0; i < st.length;) {
    if (!thp(i)) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < st.length && thp(j) && pf[j] === pf[j - 1] + 1) j++;
    const heads: number[] = [];
    for (let q = i; q < j; q++) if (st[q] & P_HEAD) heads.push(q);
    let end = j;
    if (heads.length && ex[j - 1] & X_NEXT_TAIL) end = heads.pop()!;
    heads.forEach((hd, k) => {
      const nr = (k + 1 < heads.length ? heads[k + 1] : end) - hd;
      const order = 31 - Math.clz32(nr);
      if (
        nr === 1 << order &&
        order >= 2 &&
        order <= maxOrder &&
        (firstVfn + hd) % nr === 0 &&
        pf[hd] % nr === 0
      )
        out.push([hd, order]);
    });
    i = j;
  }
  return out;
}

export function whatif(s: Snapshot, opts: WhatifOptions = {}): WhatifResult {
  const h = s.header;
  const geometry = geometryFor(h.pageSize, h.pmdSize);
  const ps = h.pageSize;
  const pageKb = ps / 1024;
  const ordersKnown = h.pfns && h.kpageflags;
  const skipped: WhatifResult['loaded']['skipped'] = [];
  const load: number[] = [];
  let pages = 0;
  let swapped = 0;
  h.vmas.forEach((v, vi) => {
    const why = skipReason(v);
    const st = s.state[vi];
    if (!why && [...st].some((b, j) => b & (P_PRESENT | P_SWAPPED) && !(s.extra[vi][j] & X_FILE))) {
      load.push(vi);
      for (const b of st) {
        if (b & P_PRESENT) pages++;
        else if (b & P_SWAPPED) swapped++;
      }
    } else
      skipped.push({ start: v.start, end: v.end, name: v.name, reason: why ?? 'nothing mapped' });
  });
  // Room for what collapse may fill in: every PMD range that holds a page, filled whole.
  const ranges = new Set<number>();
  for (const vi of load) {
    const first = h.vmas[vi].start / ps;
    s.state[vi].forEach((b, j) => {
      if (b & (P_PRESENT | P_SWAPPED)) ranges.add(Math.floor(((first + j) * ps) / h.pmdSize));
    });
  }
  const need = Math.max((pages + swapped) * ps, ranges.size * h.pmdSize);
  const ramBytes =
    opts.ramBytes ??
    Math.max(2 ** 30, Math.ceil((need * 1.1 + 256 * 2 ** 20) / h.pmdSize) * h.pmdSize);
  const m = new Machine({
    geometry,
    profile: opts.profile,
    ramBytes,
    swapBytes: swapped ? swapped * ps + 64 * 2 ** 20 : 0,
    collapsePolicy: opts.policy,
  });
  const geo = m.kernel.geo;
  const sizes: number[] = [];
  for (let o = 2; o <= geo.pmdOrder; o++) if (geo.anonOrders & (1 << o)) sizes.push(o);
  const sizeKb = (o: number) => (1 << o) * pageKb;
  const only = (order: number | null) => {
    m.sysfsWrite('enabled', order === null ? 'never' : 'always');
    for (const o of sizes)
      m.sysfsWrite(`hugepages-${sizeKb(o)}kB/enabled`, o === order ? 'always' : 'never');
  };
  const mm = m.spawn(h.comm || `pid${h.pid}`);
  const folios: Record<string, number> = {};
  const write = (addr: number) => {
    const r = m.access(mm, addr, true);
    if (r === 'oom' || r === 'sigsegv')
      throw new WhatifError(
        `loading the snapshot failed at ${addr.toString(16)}: ${r} (try a larger --ram)`,
      );
  };
  // Map every VMA first, writable, so the faults below may write.
  for (const vi of load) {
    const v = h.vmas[vi];
    try {
      m.mmap(mm, {
        lengthBytes: v.end - v.start,
        addrBytes: v.start,
        prot: v.perms[2] === 'x' ? 'rwx' : 'rw',
        name: v.name || 'anon',
      });
    } catch (e) {
      if (e instanceof Errno)
        throw new WhatifError(
          `cannot map ${v.start.toString(16)}-${v.end.toString(16)}: ${e.message}`,
        );
      throw e;
    }
  }
  // Large folios, largest first, each size with only that size enabled.
  const plan = new Map<number, Array<[number, number]>>();
  const covered = load.map((vi) => new Uint8Array(h.vmas[vi].end / ps - h.vmas[vi].start / ps));
  load.forEach((vi, li) => {
    const v = h.vmas[vi];
    let list = ordersKnown ? largeFolios(s, vi) : [];
    if (!ordersKnown && v.smaps.AnonHugePages > 0) {
      // Orders unknown: the first fully present, PMD-aligned ranges stand for AnonHugePages.
      let left = Math.floor((v.smaps.AnonHugePages * 1024) / h.pmdSize);
      const nr = h.pmdSize / ps;
      const st = s.state[vi];
      for (
        let a = Math.ceil(v.start / h.pmdSize) * h.pmdSize;
        a + h.pmdSize <= v.end && left > 0;
        a += h.pmdSize
      ) {
        const i0 = (a - v.start) / ps;
        let full = true;
        for (let j = 0; j < nr && full; j++) full = (st[i0 + j] & P_PRESENT) !== 0;
        if (full) {
          list.push([i0, geo.pmdOrder]);
          left--;
        }
      }
    }
    list = list.filter(([, o]) => geo.anonOrders & (1 << o));
    for (const [i, o] of list) {
      const arr = plan.get(o) ?? [];
      arr.push([li, i]);
      plan.set(o, arr);
      covered[li].fill(1, i, i + (1 << o));
    }
  });
  for (const o of [...plan.keys()].sort((a, b) => b - a)) {
    only(o);
    for (const [li, i] of plan.get(o)!) {
      const v = h.vmas[load[li]];
      for (let j = 0; j < 1 << o; j++) write(v.start + (i + j) * ps);
      folios[`${sizeKb(o)}kB`] = (folios[`${sizeKb(o)}kB`] ?? 0) + 1;
    }
  }
  // Small pages, zero-page reads, swapped pages.
  only(null);
  const swapOut: Array<[number, number]> = [];
  load.forEach((vi, li) => {
    const v = h.vmas[vi];
    const st = s.state[vi];
    for (let j = 0; j < st.length; j++) {
      if (covered[li][j]) continue;
      const addr = v.start + j * ps;
      if (st[j] & P_PRESENT) {
        if (s.extra[vi][j] & X_FILE) continue;
        if (st[j] & P_ZERO) m.access(mm, addr, false);
        else write(addr);
      } else if (st[j] & P_SWAPPED) {
        write(addr);
        swapOut.push([addr, ps]);
      }
    }
  });
  for (const [addr, len] of swapOut) m.madvise(mm, addr, len, 'pageout');
  // The real protections and madvise flags.
  for (const vi of load) {
    const v = h.vmas[vi];
    const want = v.perms.slice(0, 3).replace(/-/g, '');
    const prot: Prot | null = want === 'r' || want === 'rx' ? want : want === '' ? 'none' : null;
    if (prot) m.mprotect(mm, v.start, v.end - v.start, prot);
    if (v.vmFlags.includes('hg')) m.madvise(mm, v.start, v.end - v.start, 'hugepage');
    if (v.vmFlags.includes('nh')) m.madvise(mm, v.start, v.end - v.start, 'nohugepage');
  }
  const before = coverage(m, mm, pageKb);
  // Settings: defaults, the captured sysfs, --set.
  m.sysfsWrite('enabled', 'always');
  for (const o of sizes)
    m.sysfsWrite(`hugepages-${sizeKb(o)}kB/enabled`, o === geo.pmdOrder ? 'inherit' : 'never');
  const sysfs: Record<string, string> = {};
  const captured = h.sysfs ?? {};
  const notes: string[] = [];
  for (const [p, val] of Object.entries(captured)) {
    try {
      m.sysfsWrite(p, val);
      sysfs[p] = val;
    } catch (e) {
      notes.push(`the captured ${p}=${val} does not apply to the model: ${(e as Error).message}`);
    }
  }
  for (const [p, val] of opts.sets ?? []) {
    try {
      m.sysfsWrite(p, val);
    } catch (e) {
      throw new WhatifError(`--set ${p}=${val}: ${(e as Error).message}`);
    }
    sysfs[p] = val;
  }
  for (const vma of mm.vmas) khugepagedEnterVma(m.kernel, vma);
  const bySize: WhatifResult['collapses']['bySize'] = {};
  const pmdResults: Record<string, number> = {};
  const collapseResults: Record<string, number> = {};
  let succeeded = 0;
  m.setTrace((e) => {
    const f = e.fields;
    if (e.name === 'thpsim_collapse') {
      succeeded++;
      const key = `${sizeKb(Number(f.order))}kB`;
      const b = (bySize[key] ??= { succeeded: 0, bloatKb: 0 });
      b.succeeded++;
      b.bloatKb += Number(f.none_or_zero) * pageKb;
    } else if (e.name === 'thpsim_pmd_result') {
      pmdResults[String(f.result)] = (pmdResults[String(f.result)] ?? 0) + 1;
    } else if (e.name === 'mm_collapse_huge_page') {
      collapseResults[String(f.status)] = (collapseResults[String(f.status)] ?? 0) + 1;
    }
  });
  const ms = opts.ms ?? 60_000;
  m.advance(ms);
  m.setTrace(null);
  const kh = m.khugepaged();
  return {
    format: 'thpsim-whatif',
    version: 1,
    snapshot: { pid: h.pid, comm: h.comm, source: h.source, ordersKnown },
    loaded: { vmas: load.length, pages: pages + swapped, folios, skipped },
    config: {
      geometry,
      profile: m.kernel.profile.name,
      policy: m.kernel.collapsePolicy,
      ms,
      sysfs,
    },
    before,
    after: coverage(m, mm, pageKb),
    collapses: { succeeded, bySize, pmdResults, collapseResults },
    khugepaged: { full_scans: kh.full_scans, pages_collapsed: kh.pages_collapsed },
    notes,
  };
}
