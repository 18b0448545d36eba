// Capturing a snapshot: of a live process from /proc (smaps, pagemap region by region at the
// VMA's offsets, /proc/kpageflags for the PFNs seen), or of a process of the model.

import { closeSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { PG_ANON, PG_ANON_EXCLUSIVE, PG_ZERO } from '../mm/folio.ts';
import { E_PRESENT, E_SWAP, E_TYPE_MASK } from '../mm/pgtable.ts';
import { walkRange } from '../mm/walk.ts';
import type { Machine, Mm } from '../sim/machine.ts';
import {
  P_ANON,
  P_EXCLUSIVE,
  P_HEAD,
  P_PRESENT,
  P_SWAPPED,
  P_TAIL,
  P_THP,
  P_ZERO,
  type KernelVma,
  type SmapsFields,
  type Snapshot,
  type SnapshotVma,
  X_FILE,
  X_NEXT_TAIL,
} from './format.ts';

/** A capture failure; `unavailable` when it is the machine's permissions, not the input. */
export class CaptureError extends Error {
  constructor(
    message: string,
    readonly unavailable = false,
  ) {
    super(message);
  }
}

/** CAP_SYS_PTRACE (include/uapi/linux/capability.h): overrides the ptrace access check. */
const CAP_SYS_PTRACE = 19n;

/** Whether this process has CAP_SYS_PTRACE in its effective set (/proc/self/status CapEff). */
function hasSysPtrace(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && ((BigInt('0x' + m[1]) >> CAP_SYS_PTRACE) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** kpageflags bits (include/uapi/linux/kernel-page-flags.h). */
const KPF_ANON = 12;
const KPF_COMPOUND_HEAD = 15;
const KPF_COMPOUND_TAIL = 16;
const KPF_THP = 22;
const KPF_ZERO_PAGE = 24;

/** pagemap entries read per pread. */
const PAGEMAP_CHUNK = 1 << 16;
/** Addresses above this (the vsyscall page) are skipped. */
const USER_TOP = 2 ** 47;

const SMAPS_HEADER =
  /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s*(.*)$/;

function procError(pid: number, file: string, e: unknown): CaptureError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ESRCH')
    return new CaptureError(`no process ${pid} (it does not exist or has exited)`);
  if (code === 'EACCES' || code === 'EPERM') {
    const where = `permission denied (${code}) reading /proc/${pid}/${file}`;
    if (process.getuid?.() !== 0)
      return new CaptureError(`${where}: run as root or as the process's user`, true);
    // Root is refused only by the ptrace access check (__ptrace_may_access): the target is not
    // dumpable or lives in another user namespace, and this process lacks CAP_SYS_PTRACE.
    return new CaptureError(
      hasSysPtrace()
        ? `${where}: refused although running as root with CAP_SYS_PTRACE (a security module, or another user namespace)`
        : `${where}: running as root without CAP_SYS_PTRACE, and the kernel's ptrace access check refuses a process that is not dumpable or in another user namespace`,
      true,
    );
  }
  return new CaptureError(`cannot read /proc/${pid}/${file}: ${(e as Error).message}`);
}

export function parseSmaps(text: string): SnapshotVma[] {
  const vmas: SnapshotVma[] = [];
  let cur: SnapshotVma | null = null;
  for (const line of text.split('\n')) {
    const h = SMAPS_HEADER.exec(line);
    if (h) {
      cur = {
        start: Number.parseInt(h[1], 16),
        end: Number.parseInt(h[2], 16),
        perms: h[3],
        offset: Number.parseInt(h[4], 16),
        dev: h[5],
        inode: Number(h[6]),
        name: h[7].trim(),
        vmFlags: [],
        smaps: {
          Rss: 0,
          Anonymous: 0,
          AnonHugePages: 0,
          ShmemPmdMapped: 0,
          FilePmdMapped: 0,
          Swap: 0,
        },
      };
      vmas.push(cur);
      continue;
    }
    if (!cur) continue;
    const f = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (f && f[1] in cur.smaps)
      (cur.smaps as unknown as Record<string, number>)[f[1]] = Number(f[2]);
    else if (line.startsWith('VmFlags:'))
      cur.vmFlags = line.slice(8).trim().split(/\s+/).filter(Boolean);
  }
  return vmas;
}

function preadFull(fd: number, buf: Buffer, len: number, pos: number): number {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

export interface CaptureStats {
  pagemapEntries: number;
  kpageflagsReads: number;
}

/** Snapshot a live process. */
export function captureLive(
  pid: number,
  stats: CaptureStats = { pagemapEntries: 0, kpageflagsReads: 0 },
): Snapshot {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new CaptureError(`bad pid ${pid}`);
  let smapsText: string;
  let comm = '';
  try {
    smapsText = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch (e) {
    throw procError(pid, 'smaps', e);
  }
  try {
    comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    // comm is cosmetic
  }
  const all = parseSmaps(smapsText);
  const vmas = all.filter((v) => v.end <= USER_TOP);
  const kernelVmas: KernelVma[] = [];
  for (const line of smapsText.split('\n')) {
    const h = SMAPS_HEADER.exec(line);
    if (h && h[1].length > 12)
      kernelVmas.push({
        range: `${h[1]}-${h[2]}`,
        perms: h[3],
        offset: Number.parseInt(h[4], 16),
        dev: h[5],
        inode: Number(h[6]),
        name: h[7].trim(),
      });
  }
  if (vmas.length === 0)
    throw new CaptureError(`process ${pid} has no mappings (a kernel thread, or it has exited)`);
  const pageSize = 4096;
  let pmdSize = 2 * 1024 * 1024;
  try {
    pmdSize =
      Number(readFileSync('/sys/kernel/mm/transparent_hugepage/hpage_pmd_size', 'utf8').trim()) ||
      pmdSize;
  } catch {
    // no THP support: keep the x86-64 value
  }
  let pm: number;
  try {
    pm = openSync(`/proc/${pid}/pagemap`, 'r');
  } catch (e) {
    throw procError(pid, 'pagemap', e);
  }
  let kpf = -1;
  try {
    kpf = openSync('/proc/kpageflags', 'r');
  } catch {
    // not root: orders unknown
  }
  const buf = Buffer.alloc(PAGEMAP_CHUNK * 8);
  const kbuf = Buffer.alloc(PAGEMAP_CHUNK * 8 + 8);
  let anyPfn = false;
  const state: Uint8Array[] = [];
  const extra: Uint8Array[] = [];
  const pfnArr: Float64Array[] = [];
  try {
    for (const v of vmas) {
      const n = (v.end - v.start) / pageSize;
      const st = new Uint8Array(n);
      // Nothing resident or swapped (a reservation, a guard): no pagemap to read.
      const empty = v.smaps.Rss === 0 && v.smaps.Swap === 0;
      const ex = new Uint8Array(empty ? 0 : n);
      const pf = new Float64Array(empty ? 0 : n).fill(-1);
      const first = v.start / pageSize;
      for (let i = 0; i < (empty ? 0 : n); i += PAGEMAP_CHUNK) {
        const cnt = Math.min(PAGEMAP_CHUNK, n - i);
        let got: number;
        try {
          got = preadFull(pm, buf, cnt * 8, (first + i) * 8);
        } catch (e) {
          throw procError(pid, 'pagemap', e);
        }
        if (got < cnt * 8)
          throw new CaptureError(`process ${pid} changed or exited while its pagemap was read`);
        stats.pagemapEntries += cnt;
        const from = i;
        for (let j = 0; j < cnt; j++) {
          const lo = buf.readUInt32LE(j * 8);
          const hi = buf.readUInt32LE(j * 8 + 4);
          let s = 0;
          if (hi & 0x80000000) s |= P_PRESENT;
          else if (hi & 0x40000000) s |= P_SWAPPED;
          if (hi & 0x01000000) s |= P_EXCLUSIVE;
          st[i + j] = s;
          if (s & P_PRESENT) {
            ex[i + j] = hi & 0x20000000 ? X_FILE : 0;
            const pfn = (hi & 0x7fffff) * 2 ** 32 + lo;
            if (pfn !== 0) {
              pf[i + j] = pfn;
              anyPfn = true;
            }
          }
        }
        if (kpf >= 0) readKpageflags(kpf, kbuf, st, ex, pf, from, from + cnt, stats);
      }

      state.push(st);
      extra.push(ex);
      pfnArr.push(pf);
    }
  } finally {
    closeSync(pm);
    if (kpf >= 0) closeSync(kpf);
  }
  const pfns = anyPfn;
  if (!pfns) for (const p of pfnArr) p.fill(-1);
  return {
    header: {
      format: 'thpsim-snapshot',
      pid,
      comm,
      pageSize,
      pmdSize,
      pfns,
      kpageflags: pfns && kpf >= 0,
      source: 'live',
      vmas,
      sysfs: liveSysfs(),
      ...(kernelVmas.length ? { kernelVmas } : {}),
    },
    state,
    extra,
    pfn: pfnArr,
  };
}

const SYSFS = '/sys/kernel/mm/transparent_hugepage/';
const SYSFS_FILES = [
  'enabled',
  'defrag',
  'khugepaged/defrag',
  'khugepaged/max_ptes_none',
  'khugepaged/max_ptes_swap',
  'khugepaged/max_ptes_shared',
  'khugepaged/pages_to_scan',
  'khugepaged/scan_sleep_millisecs',
  'khugepaged/alloc_sleep_millisecs',
];

/** The THP settings of this machine: the selected value of each file ("[always] madvise never"). */
export function liveSysfs(): Record<string, string> {
  const out: Record<string, string> = {};
  let sizes: string[];
  try {
    sizes = readdirSync(SYSFS).filter((d) => /^hugepages-\d+kB$/.test(d));
  } catch {
    return out;
  }
  for (const f of [...SYSFS_FILES, ...sizes.map((d) => `${d}/enabled`)]) {
    try {
      const text = readFileSync(SYSFS + f, 'utf8').trim();
      const sel = /\[([^\]]+)\]/.exec(text);
      out[f] = sel ? sel[1] : text;
    } catch {
      // not on this kernel
    }
  }
  return out;
}

/** PFNs closer than this share one read of /proc/kpageflags. */
const KPF_GAP = 512;

/**
 * Flags of the PFNs of one VMA's present pages: the PFNs sorted, and each cluster of nearby ones
 * read with one pread (plus the entry after it: thpmaps asks whether the next PFN is a tail).
 */
function readKpageflags(
  fd: number,
  kbuf: Buffer,
  st: Uint8Array,
  ex: Uint8Array,
  pf: Float64Array,
  from: number,
  to: number,
  stats: CaptureStats,
): void {
  // Sort (pfn, index) pairs as one number each: to - from <= 2^16 and PFNs stay below 2^37.
  let n = 0;
  const keys = new Float64Array(to - from);
  for (let i = from; i < to; i++) if (pf[i] >= 0) keys[n++] = pf[i] * 65536 + (i - from);
  const sorted = keys.subarray(0, n).sort();
  const pfnOf = (q: number) => Math.floor(sorted[q] / 65536);
  const maxEntries = kbuf.length / 8 - 1;
  for (let a = 0; a < n;) {
    const lo = pfnOf(a);
    let b = a + 1;
    while (b < n && pfnOf(b) - pfnOf(b - 1) <= KPF_GAP && pfnOf(b) - lo < maxEntries) b++;
    const cnt = pfnOf(b - 1) - lo + 2;
    let got: number;
    try {
      got = preadFull(fd, kbuf, cnt * 8, lo * 8);
    } catch {
      got = 0; // a PFN past the end of memory: no flags
    }
    stats.kpageflagsReads++;
    for (let q = a; q < b; q++) {
      const i = from + (sorted[q] % 65536);
      const off = (pfnOf(q) - lo) * 8;
      if (off + 8 > got) continue;
      const f = kbuf.readUInt32LE(off);
      let s = st[i];
      if (f & (1 << KPF_ANON)) s |= P_ANON;
      if (f & (1 << KPF_THP)) s |= P_THP;
      if (f & (1 << KPF_COMPOUND_HEAD)) s |= P_HEAD;
      if (f & (1 << KPF_COMPOUND_TAIL)) s |= P_TAIL;
      if (f & (1 << KPF_ZERO_PAGE)) s |= P_ZERO;
      st[i] = s;
      if (off + 16 <= got && kbuf.readUInt32LE(off + 8) & (1 << KPF_COMPOUND_TAIL))
        ex[i] |= X_NEXT_TAIL;
    }
    a = b;
  }
}

/** Snapshot a process of the model: the same information, from its page tables and folios. */
export function captureModel(machine: Machine, mm: Mm, pid = mm.id): Snapshot {
  const k = machine.kernel;
  const ps = k.geo.pageSize;
  const f = k.folios;
  const smaps = machine.smaps(mm);
  const vmas: SnapshotVma[] = [];
  const state: Uint8Array[] = [];
  const extra: Uint8Array[] = [];
  const pfnArr: Float64Array[] = [];
  const isTail = (pfn: number) => pfn >= 0 && pfn < k.nrPages && f.headOf(pfn) !== pfn;
  mm.vmas.forEach((vma, vi) => {
    const sm = smaps[vi];
    const n = vma.end - vma.start;
    const st = new Uint8Array(n);
    const ex = new Uint8Array(n);
    const pf = new Float64Array(n).fill(-1);
    const page = (vpn: number, pfn: number) => {
      const i = vpn - vma.start;
      if (i < 0 || i >= n) return;
      const head = f.headOf(pfn);
      let s = P_PRESENT;
      const zero = pfn === k.zeroPfn || (f.flags[head] & PG_ZERO) !== 0;
      if (zero) s |= P_ZERO;
      else {
        if (f.flags[head] & PG_ANON) s |= P_ANON;
        if (f.flags[pfn] & PG_ANON_EXCLUSIVE) s |= P_EXCLUSIVE;
        if (f.order[head] > 0) {
          s |= pfn === head ? P_HEAD : P_TAIL;
          if (f.flags[head] & PG_ANON) s |= P_THP;
        }
      }
      st[i] = s;
      ex[i] = (vma.file !== 0 ? X_FILE : 0) | (isTail(pfn + 1) ? X_NEXT_TAIL : 0);
      pf[i] = pfn;
    };
    walkRange(k, mm, vma.start, vma.end, {
      pmd: (base, _t, _i, _bits, head) => {
        for (let j = 0; j < k.geo.ptrsPerPte; j++) page(base + j, head + j);
      },
      pte: (vpn, _t, _i, bits, val) => {
        const type = bits & E_TYPE_MASK;
        if (type === E_PRESENT) page(vpn, val);
        else if (type === E_SWAP) st[vpn - vma.start] = P_SWAPPED;
      },
    });
    const fields: SmapsFields = {
      Rss: sm.Rss,
      Anonymous: sm.Anonymous,
      AnonHugePages: sm.AnonHugePages,
      ShmemPmdMapped: sm.ShmemPmdMapped,
      FilePmdMapped: sm.FilePmdMapped,
      Swap: sm.Swap,
    };
    const r = sm.flags.includes('rd');
    vmas.push({
      start: vma.start * ps,
      end: vma.end * ps,
      perms: `${r ? 'r' : '-'}${sm.flags.includes('wr') ? 'w' : '-'}${sm.flags.includes('ex') ? 'x' : '-'}${sm.flags.includes('sh') ? 's' : 'p'}`,
      offset: vma.pgoff * ps,
      dev: '00:00',
      inode: vma.file,
      name: vma.file !== 0 ? vma.name : '',
      vmFlags: sm.flags.split(' ').filter(Boolean),
      smaps: fields,
    });
    state.push(st);
    extra.push(ex);
    pfnArr.push(pf);
  });
  return {
    header: {
      format: 'thpsim-snapshot',
      pid,
      comm: mm.name,
      pageSize: ps,
      pmdSize: k.geo.pmdSize,
      pfns: true,
      kpageflags: true,
      source: 'model',
      vmas,
    },
    state,
    extra,
    pfn: pfnArr,
  };
}
