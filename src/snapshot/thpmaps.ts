// The statistics and output of the kernel's tools/mm/thpmaps (shared/spec/kernel-selftests.md
// section 10), computed from a snapshot: of a live process or of a simulated one.
//
// Per VMA with any of r/w/x and Rss > 0: the present pages whose PFN has KPF_THP are cut into
// runs where the virtual and the physical frame number both go up by one. In a run, pages before
// the first head are "partial", and so is the last folio when the PFN after the run is a tail;
// every other folio's size is the distance to the next head (or the run's end), "aligned" when
// its virtual frame number is a multiple of its size. PMD-mapped memory comes from smaps and is
// taken out of the PMD-order PTE counters. --cont SIZE counts SIZE-aligned blocks inside runs
// whose virtual and physical offsets agree modulo SIZE and that hold no head but at their start.

import {
  type KernelVma,
  P_ANON,
  P_HEAD,
  P_PRESENT,
  P_THP,
  type Snapshot,
  type SnapshotVma,
  X_NEXT_TAIL,
} from './format.ts';

export interface ThpmapsOptions {
  rollup?: boolean;
  /** --cont sizes in bytes. */
  cont?: number[];
  incEmpty?: boolean;
}

export interface Stat {
  type: 'anon' | 'file';
  /** kB. */
  value: number;
}

export interface ThpmapsVma {
  pid: number;
  vma: SnapshotVma;
  stats: Map<string, Stat>;
}

export interface ThpmapsResult {
  /** Per snapshot: mappings above the user address space, listed after its VMAs. */
  kernelVmas: Array<{ pid: number; vma: KernelVma; after: number }>;
  /** False when the snapshot has no PFNs or page flags: only the PMD keys are known. */
  ordersKnown: boolean;
  vmas: ThpmapsVma[];
  rollup: Map<string, Stat>;
  totAnon: number;
  totFile: number;
}

export class ThpmapsError extends Error {}

function log2(n: number): number {
  return 31 - Math.clz32(n);
}

/** --cont SIZE: a power-of-two number of pages, at least 2 pages, at most the PMD size. */
export function checkCont(size: number, pageSize: number, pmdSize: number): void {
  const pages = size / pageSize;
  if (!Number.isInteger(pages) || pages < 2 || (pages & (pages - 1)) !== 0 || size > pmdSize)
    throw new ThpmapsError(
      `--cont ${size}: must be a power-of-two number of pages, at least 2 pages and at most the PMD size`,
    );
}

function vmaStats(
  s: Snapshot,
  vi: number,
  opts: ThpmapsOptions,
  ordersKnown: boolean,
): Map<string, Stat> {
  const h = s.header;
  const v = h.vmas[vi];
  const pageKb = h.pageSize / 1024;
  const pmdOrder = log2(h.pmdSize / h.pageSize);
  const odkb = (o: number) => (h.pageSize * 2 ** o) / 1024;
  const st = s.state[vi];
  const pf = s.pfn[vi];
  const ex = s.extra[vi];
  const firstVfn = v.start / h.pageSize;
  const anonPmd = v.smaps.AnonHugePages;
  const filePmd = v.smaps.ShmemPmdMapped + v.smaps.FilePmdMapped;
  // Runs of THP pages contiguous in both address spaces: [from, to) indexes into the VMA.
  const runs: Array<[number, number]> = [];
  if (ordersKnown) {
    let i = 0;
    const n = st.length;
    const thp = (j: number) => (st[j] & (P_PRESENT | P_THP)) === (P_PRESENT | P_THP) && pf[j] >= 0;
    while (i < n) {
      if (!thp(i)) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n && thp(j) && pf[j] === pf[j - 1] + 1) j++;
      runs.push([i, j]);
      i = j;
    }
  }
  const blank = () => ({
    partial: 0,
    aligned: new Array<number>(pmdOrder + 1).fill(0),
    unaligned: new Array<number>(pmdOrder + 1).fill(0),
  });
  const acc = { anon: blank(), file: blank() };
  const kind = (j: number) => (st[j] & P_ANON ? 'anon' : 'file');
  runs.forEach(([from, to0], ri) => {
    let to = to0;
    const heads: number[] = [];
    for (let j = from; j < to; j++) if (st[j] & P_HEAD) heads.push(j);
    acc[kind(from)].partial += (heads.length ? heads[0] : to) - from;
    if (heads.length && ex[to - 1] & X_NEXT_TAIL) {
      const last = heads.pop()!;
      // thpmaps takes the type of the THP page before the last head (in its list of the VMA's
      // THP pages, wrapping to the last one): the same page in all but corner cases.
      const before =
        last > from ? last - 1 : ri > 0 ? runs[ri - 1][1] - 1 : runs[runs.length - 1][1] - 1;
      acc[kind(before)].partial += to - last;
      to = last;
    }
    heads.forEach((hd, k) => {
      const nr = (k + 1 < heads.length ? heads[k + 1] : to) - hd;
      const order = log2(nr);
      const size = 2 ** order;
      const vfn = firstVfn + hd;
      const which = vfn % size === 0 ? 'aligned' : 'unaligned';
      if (order <= pmdOrder) acc[kind(hd)][which][order] += size;
    });
  });
  acc.anon.aligned[pmdOrder] = Math.max(0, acc.anon.aligned[pmdOrder] - anonPmd / pageKb);
  acc.file.aligned[pmdOrder] = Math.max(0, acc.file.aligned[pmdOrder] - filePmd / pageKb);
  const out = new Map<string, Stat>();
  out.set(`anon-thp-pmd-aligned-${odkb(pmdOrder)}kB`, { type: 'anon', value: anonPmd });
  out.set(`file-thp-pmd-aligned-${odkb(pmdOrder)}kB`, { type: 'file', value: filePmd });
  if (ordersKnown)
    for (const type of ['anon', 'file'] as const) {
      for (const sub of ['aligned', 'unaligned'] as const)
        for (let o = 2; o <= pmdOrder; o++)
          out.set(`${type}-thp-pte-${sub}-${odkb(o)}kB`, {
            type,
            value: acc[type][sub][o] * pageKb,
          });
      out.set(`${type}-thp-pte-partial`, { type, value: acc[type].partial * pageKb });
    }
  for (const size of opts.cont ?? []) {
    const nrCont = size / h.pageSize;
    let nrAnon = 0;
    let nrFile = 0;
    if (ordersKnown)
      for (const [from, to] of runs) {
        const vfnStart = firstVfn + from;
        const pfnStart = pf[from];
        if (pfnStart % nrCont !== vfnStart % nrCont) continue;
        let j = from + ((nrCont - (vfnStart % nrCont)) % nrCont);
        for (; j + nrCont <= to; j += nrCont) {
          let boundary = false;
          for (let q = j + 1; q < j + nrCont; q++)
            if (st[q] & P_HEAD) {
              boundary = true;
              break;
            }
          if (boundary) continue;
          if (st[j] & P_ANON) nrAnon += nrCont;
          else nrFile += nrCont;
        }
      }
    nrAnon = Math.max(0, nrAnon - anonPmd / pageKb);
    nrFile = Math.max(0, nrFile - filePmd / pageKb);
    const kb = size / 1024;
    out.set(`anon-cont-pmd-aligned-${kb}kB`, { type: 'anon', value: anonPmd });
    out.set(`file-cont-pmd-aligned-${kb}kB`, { type: 'file', value: filePmd });
    if (ordersKnown) {
      out.set(`anon-cont-pte-aligned-${kb}kB`, { type: 'anon', value: nrAnon * pageKb });
      out.set(`file-cont-pte-aligned-${kb}kB`, { type: 'file', value: nrFile * pageKb });
    }
  }
  return out;
}

export function thpmaps(snaps: Snapshot[], opts: ThpmapsOptions = {}): ThpmapsResult {
  const result: ThpmapsResult = {
    kernelVmas: [],
    ordersKnown: true,
    vmas: [],
    rollup: new Map(),
    totAnon: 0,
    totFile: 0,
  };
  for (const s of snaps) {
    const ordersKnown = s.header.pfns && s.header.kpageflags;
    if (!ordersKnown) result.ordersKnown = false;
    for (const size of opts.cont ?? []) checkCont(size, s.header.pageSize, s.header.pmdSize);
    s.header.vmas.forEach((v, vi) => {
      // Like thpmaps: every VMA is listed, statistics only for accessible ones with Rss.
      if (v.perms.slice(0, 3) === '---' || v.smaps.Rss === 0) {
        result.vmas.push({ pid: s.header.pid, vma: v, stats: new Map() });
        return;
      }
      const stats = vmaStats(s, vi, opts, ordersKnown);
      result.vmas.push({ pid: s.header.pid, vma: v, stats });
      result.totAnon += v.smaps.Anonymous;
      result.totFile += v.smaps.Rss - v.smaps.Anonymous;
      for (const [k, st] of stats) {
        const r = result.rollup.get(k);
        if (r) r.value += st.value;
        else result.rollup.set(k, { ...st });
      }
    });
    for (const k of s.header.kernelVmas ?? [])
      result.kernelVmas.push({ pid: s.header.pid, vma: k, after: result.vmas.length });
  }
  return result;
}

/** Python's format(value / total, '3.0%'): rounded half to even, at least 3 characters wide. */
function percent(value: number, total: number): string {
  const x = (value / total) * 100;
  const fl = Math.floor(x);
  const diff = x - fl;
  const r = diff > 0.5 || (diff === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return `${r}%`.padStart(3);
}

function statsText(
  stats: Map<string, Stat>,
  totAnon: number,
  totFile: number,
  incEmpty: boolean,
): string[] {
  const lines: string[] = [];
  for (const [label, { type, value }] of stats) {
    if (!value && !incEmpty) continue;
    const pad = Math.max(0, 32 - label.length - 1);
    const tot = type === 'anon' ? totAnon : totFile;
    const pc = tot > 0 ? ` (${percent(value, tot)})` : '';
    lines.push(`${label}:${' '.repeat(pad)}${String(value).padStart(8)} kB${pc}`);
  }
  return lines;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

export function renderThpmaps(r: ThpmapsResult, opts: ThpmapsOptions = {}): string {
  const out: string[] = [];
  if (opts.rollup) {
    out.push(...statsText(r.rollup, r.totAnon, r.totFile, opts.incEmpty === true));
  } else {
    out.push('       PID             START              END PROT   OFFSET   DEV    INODE OBJECT');
    const kernelAt = (i: number) => {
      for (const k of r.kernelVmas) {
        if (k.after !== i) continue;
        const [lo, hi] = k.vma.range.split('-');
        const [maj, min] = k.vma.dev.split(':');
        const name = /\s/.test(k.vma.name) ? '' : k.vma.name;
        out.push(
          `${String(k.pid).padStart(10, '0')}: ${lo.padStart(16, '0')}-${hi.padStart(16, '0')} ${k.vma.perms} ${hex(k.vma.offset, 8)} ${maj.padStart(2, '0')}:${min.padStart(2, '0')} ${String(k.vma.inode).padStart(8, '0')} ${name}`,
        );
      }
    };
    r.vmas.forEach((v, i) => {
      kernelAt(i);
      const [maj, min] = v.vma.dev.split(':');
      // thpmaps shows a name only when the smaps line has six fields (no spaces in it), and
      // prints the inode's decimal digits as they are (it parses them as hex and prints hex).
      const name = /\s/.test(v.vma.name) ? '' : v.vma.name;
      out.push(
        `${String(v.pid).padStart(10, '0')}: ${hex(v.vma.start, 16)}-${hex(v.vma.end, 16)} ${v.vma.perms} ${hex(v.vma.offset, 8)} ${maj.padStart(2, '0')}:${min.padStart(2, '0')} ${String(v.vma.inode).padStart(8, '0')} ${name}`,
      );
      out.push(
        ...statsText(
          v.stats,
          v.vma.smaps.Anonymous,
          v.vma.smaps.Rss - v.vma.smaps.Anonymous,
          opts.incEmpty === true,
        ),
      );
    });
    kernelAt(r.vmas.length);
  }
  if (!r.ordersKnown)
    out.push(
      '# folio orders unknown: the snapshot has no PFNs or page flags (not taken as root); only PMD-mapped sizes are shown',
    );
  return out.join('\n') + '\n';
}

/** The result as JSON: per VMA (or the rollup) the keys and kB values. */
export function thpmapsJson(r: ThpmapsResult, opts: ThpmapsOptions = {}): unknown {
  const obj = (m: Map<string, Stat>) =>
    Object.fromEntries(
      [...m].filter(([, s]) => s.value || opts.incEmpty).map(([k, s]) => [k, s.value]),
    );
  return {
    format: 'thpsim-thpmaps',
    version: 1,
    ordersKnown: r.ordersKnown,
    ...(opts.rollup
      ? { rollup: obj(r.rollup), totals: { anonKb: r.totAnon, fileKb: r.totFile } }
      : {
          vmas: r.vmas.map((v) => ({
            pid: v.pid,
            start: v.vma.start,
            end: v.vma.end,
            perms: v.vma.perms,
            name: v.vma.name,
            stats: obj(v.stats),
          })),
        }),
  };
}
