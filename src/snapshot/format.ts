// The snapshot file: the VMAs of one process and the state of each of their pages, compact and
// versioned. Layout (integers little-endian):
//
//   "THPSNAP\0"                     8 bytes of magic
//   u32 version                      1
//   u32 n, n bytes of JSON, u32 crc  the header: pid, comm, page and PMD size, what was
//                                    readable, and per VMA its maps line, VmFlags and smaps fields
//   per VMA, in header order:
//     u32 n, n bytes, u32 crc        its pages: per page one byte of state (P_*); a present page
//                                    also has a byte of X_* flags and, when PFNs were readable,
//                                    its PFN as a zigzag varint of (pfn - previous pfn - 1); a
//                                    state of 0 (nothing mapped) is followed by a varint of how
//                                    many more pages in a row have nothing mapped
//   "END\0"
//
// Every section has a CRC-32, so a corrupted or truncated file is rejected with the offset of
// the section and the reason.

import { crc32 } from 'node:zlib';

export const SNAPSHOT_MAGIC = 'THPSNAP\0';
export const SNAPSHOT_VERSION = 1;

/** Per-page state byte. */
export const P_PRESENT = 1 << 0;
export const P_SWAPPED = 1 << 1;
/** pagemap bit 56: mapped exclusively (by one process). */
export const P_EXCLUSIVE = 1 << 2;
/** The shared zero page (KPF_ZERO_PAGE) or the huge zero folio. */
export const P_ZERO = 1 << 3;
/** kpageflags: KPF_ANON, KPF_THP, KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL. */
export const P_ANON = 1 << 4;
export const P_THP = 1 << 5;
export const P_HEAD = 1 << 6;
export const P_TAIL = 1 << 7;

/** Second byte of a present page. */
/** The PFN after this one is a compound tail (thpmaps: the folio runs on past a run's end). */
export const X_NEXT_TAIL = 1 << 0;
/** pagemap bit 61: a file page or shared anonymous memory. */
export const X_FILE = 1 << 1;

export interface SmapsFields {
  Rss: number;
  Anonymous: number;
  AnonHugePages: number;
  ShmemPmdMapped: number;
  FilePmdMapped: number;
  Swap: number;
}

export interface SnapshotVma {
  start: number;
  end: number;
  /** "rw-p" */
  perms: string;
  offset: number;
  /** "fd:01" */
  dev: string;
  inode: number;
  name: string;
  /** smaps VmFlags, e.g. ["rd", "wr", "mr", "mw", "me", "ac", "hg"]. */
  vmFlags: string[];
  smaps: SmapsFields;
}

export interface SnapshotHeader {
  format: 'thpsim-snapshot';
  pid: number;
  comm: string;
  pageSize: number;
  pmdSize: number;
  /** Whether pagemap gave PFNs (root) and kpageflags was readable: only then are orders known. */
  pfns: boolean;
  kpageflags: boolean;
  /** Where it came from: "live" (/proc) or "model" (a simulated process). */
  source: 'live' | 'model';
  vmas: SnapshotVma[];
  /** The THP settings at capture time (relative sysfs paths), where they were readable. */
  sysfs?: Record<string, string>;
  /**
   * Mappings above the user address space (the vsyscall page), listed but not read: their
   * addresses do not fit a double, so they are kept as the smaps text "start-end".
   */
  kernelVmas?: KernelVma[];
}

export interface KernelVma {
  range: string;
  perms: string;
  offset: number;
  dev: string;
  inode: number;
  name: string;
}

export interface Snapshot {
  header: SnapshotHeader;
  /** Per VMA: one state byte per page. */
  state: Uint8Array[];
  /** Per VMA: the X_* byte per page (0 where not present; empty when no page is present). */
  extra: Uint8Array[];
  /**
   * Per VMA: the PFN per page (-1 unknown or not present; empty when no page is present).
   * Float64 to hold 52-bit PFNs.
   */
  pfn: Float64Array[];
}

export class SnapshotError extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`at offset ${offset}: ${reason}`);
  }
}

class Writer {
  private buf = Buffer.alloc(1 << 16);
  len = 0;
  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = Buffer.alloc(size);
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }
  u8(v: number): void {
    this.grow(1);
    this.buf[this.len++] = v;
  }
  u32(v: number): void {
    this.grow(4);
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
  }
  bytes(b: Uint8Array): void {
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** Unsigned LEB128 of a safe integer. */
  varint(v: number): void {
    while (v >= 0x80) {
      this.u8((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.u8(v);
  }
  result(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}
function unzigzag(v: number): number {
  return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
}

/** Encode one VMA's pages. */
export function encodePages(
  state: Uint8Array,
  extra: Uint8Array,
  pfn: Float64Array,
  withPfns: boolean,
): Buffer {
  const w = new Writer();
  let prev = -1;
  for (let i = 0; i < state.length; i++) {
    w.u8(state[i]);
    if (state[i] === 0) {
      // A run of pages with nothing mapped: its length after the first.
      let j = i + 1;
      while (j < state.length && state[j] === 0) j++;
      w.varint(j - i - 1);
      i = j - 1;
      continue;
    }
    if (!(state[i] & P_PRESENT)) continue;
    w.u8(extra[i]);
    if (withPfns) {
      const p = pfn[i] < 0 ? 0 : pfn[i];
      w.varint(zigzag(p - prev - 1));
      prev = p;
    }
  }
  return w.result();
}

function section(w: Writer, data: Uint8Array): void {
  w.u32(data.length);
  w.bytes(data);
  w.u32(crc32(data));
}

export function encodeSnapshot(s: Snapshot): Buffer {
  const w = new Writer();
  w.bytes(Buffer.from(SNAPSHOT_MAGIC, 'latin1'));
  w.u32(SNAPSHOT_VERSION);
  section(w, Buffer.from(JSON.stringify(s.header), 'utf8'));
  s.header.vmas.forEach((_, i) =>
    section(w, encodePages(s.state[i], s.extra[i], s.pfn[i], s.header.pfns)),
  );
  w.bytes(Buffer.from('END\0', 'latin1'));
  return w.result();
}

function isVma(v: unknown): v is SnapshotVma {
  if (!v || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  const sm = o.smaps as Record<string, unknown> | undefined;
  return (
    Number.isSafeInteger(o.start) &&
    Number.isSafeInteger(o.end) &&
    (o.start as number) < (o.end as number) &&
    typeof o.perms === 'string' &&
    /^[r-][w-][x-][ps]$/.test(o.perms) &&
    Number.isSafeInteger(o.offset) &&
    typeof o.dev === 'string' &&
    Number.isSafeInteger(o.inode) &&
    typeof o.name === 'string' &&
    Array.isArray(o.vmFlags) &&
    o.vmFlags.every((f) => typeof f === 'string') &&
    !!sm &&
    ['Rss', 'Anonymous', 'AnonHugePages', 'ShmemPmdMapped', 'FilePmdMapped', 'Swap'].every(
      (k) => typeof sm[k] === 'number' && (sm[k] as number) >= 0,
    )
  );
}

/** At most this many pages per snapshot (64 TiB of 4K pages would not fit in memory anyway). */
export const MAX_SNAPSHOT_PAGES = 2 ** 31;

export function decodeSnapshot(buf: Uint8Array): Snapshot {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  const need = (n: number, what: string) => {
    if (off + n > b.length)
      throw new SnapshotError(off, `truncated: ${what} needs ${n} bytes, ${b.length - off} left`);
  };
  need(8, 'the magic');
  if (b.toString('latin1', 0, 8) !== SNAPSHOT_MAGIC)
    throw new SnapshotError(0, 'not a thpsim snapshot (bad magic)');
  off = 8;
  need(4, 'the version');
  const version = b.readUInt32LE(off);
  if (version !== SNAPSHOT_VERSION)
    throw new SnapshotError(
      off,
      `unsupported version ${version} (this thpsim reads version ${SNAPSHOT_VERSION})`,
    );
  off += 4;
  const readSection = (what: string): Buffer => {
    const at = off;
    need(4, `the length of ${what}`);
    const n = b.readUInt32LE(off);
    off += 4;
    need(n + 4, what);
    const data = b.subarray(off, off + n);
    off += n;
    const crc = b.readUInt32LE(off);
    if (crc32(data) !== crc) throw new SnapshotError(at, `${what}: checksum mismatch (corrupted)`);
    off += 4;
    return data;
  };
  const headerAt = off;
  const hb = readSection('the header');
  let header: SnapshotHeader;
  try {
    header = JSON.parse(hb.toString('utf8')) as SnapshotHeader;
  } catch {
    throw new SnapshotError(headerAt, 'the header is not JSON');
  }
  if (
    !header ||
    header.format !== 'thpsim-snapshot' ||
    !Number.isSafeInteger(header.pid) ||
    typeof header.comm !== 'string' ||
    ![4096, 16384, 65536].includes(header.pageSize) ||
    !Number.isSafeInteger(header.pmdSize) ||
    header.pmdSize % header.pageSize !== 0 ||
    typeof header.pfns !== 'boolean' ||
    typeof header.kpageflags !== 'boolean' ||
    (header.source !== 'live' && header.source !== 'model') ||
    !Array.isArray(header.vmas) ||
    (header.sysfs !== undefined &&
      (typeof header.sysfs !== 'object' ||
        header.sysfs === null ||
        Object.values(header.sysfs).some((v) => typeof v !== 'string'))) ||
    (header.kernelVmas !== undefined &&
      (!Array.isArray(header.kernelVmas) ||
        !header.kernelVmas.every(
          (k) =>
            k !== null &&
            typeof k === 'object' &&
            typeof k.range === 'string' &&
            /^[0-9a-f]{1,16}-[0-9a-f]{1,16}$/.test(k.range) &&
            typeof k.perms === 'string' &&
            /^[r-][w-][x-][ps]$/.test(k.perms) &&
            Number.isSafeInteger(k.offset) &&
            typeof k.dev === 'string' &&
            /^[0-9a-f]+:[0-9a-f]+$/.test(k.dev) &&
            Number.isSafeInteger(k.inode) &&
            typeof k.name === 'string',
        )))
  )
    throw new SnapshotError(headerAt, 'the header lacks a field or has a bad value');
  let total = 0;
  header.vmas.forEach((v, i) => {
    if (!isVma(v))
      throw new SnapshotError(headerAt, `the header's vma ${i} lacks a field or has a bad value`);
    if (v.start % header.pageSize || v.end % header.pageSize)
      throw new SnapshotError(headerAt, `vma ${i} is not page aligned`);
    total += (v.end - v.start) / header.pageSize;
  });
  if (total > MAX_SNAPSHOT_PAGES) throw new SnapshotError(headerAt, `${total} pages: too many`);
  const state: Uint8Array[] = [];
  const extra: Uint8Array[] = [];
  const pfn: Float64Array[] = [];
  header.vmas.forEach((v, i) => {
    const at = off;
    const data = readSection(`the pages of vma ${i}`);
    const n = (v.end - v.start) / header.pageSize;
    const st = new Uint8Array(n);
    // Allocated at the first present page: a VMA with nothing present costs a byte per page.
    let ex: Uint8Array | null = null;
    let pf: Float64Array | null = null;
    let p = 0;
    let prev = -1;
    const varint = (j: number, what: string): number => {
      let v2 = 0;
      let mul = 1;
      for (let k = 0; ; k++) {
        if (p >= data.length || k > 8)
          throw new SnapshotError(at, `the pages of vma ${i}: bad ${what} at page ${j}`);
        const byte = data[p++];
        v2 += (byte & 0x7f) * mul;
        mul *= 128;
        if (!(byte & 0x80)) return v2;
      }
    };
    for (let j = 0; j < n; j++) {
      if (p >= data.length)
        throw new SnapshotError(at, `the pages of vma ${i}: ends at page ${j} of ${n}`);
      const s = data[p++];
      st[j] = s;
      if (s === 0) {
        const more = varint(j, 'run length');
        if (j + more >= n)
          throw new SnapshotError(at, `the pages of vma ${i}: a run at page ${j} passes the end`);
        j += more;
        continue;
      }
      if (!(s & P_PRESENT)) {
        if (s & (P_ANON | P_THP | P_HEAD | P_TAIL | P_ZERO))
          throw new SnapshotError(
            at,
            `the pages of vma ${i}: page ${j} has page flags but is not present`,
          );
        continue;
      }
      if (s & P_SWAPPED)
        throw new SnapshotError(at, `the pages of vma ${i}: page ${j} is both present and swapped`);
      if (p >= data.length)
        throw new SnapshotError(at, `the pages of vma ${i}: ends inside page ${j}`);
      ex ??= new Uint8Array(n);
      pf ??= new Float64Array(n).fill(-1);
      ex[j] = data[p++];
      if (header.pfns) {
        const value = prev + 1 + unzigzag(varint(j, 'PFN'));
        if (!(value >= 0) || !Number.isSafeInteger(value) || value >= 2 ** 52)
          throw new SnapshotError(at, `the pages of vma ${i}: bad PFN at page ${j}`);
        pf[j] = value;
        prev = value;
      }
    }
    if (p !== data.length)
      throw new SnapshotError(at, `the pages of vma ${i}: ${data.length - p} bytes left over`);
    state.push(st);
    extra.push(ex ?? new Uint8Array(0));
    pfn.push(pf ?? new Float64Array(0));
  });
  need(4, 'the end marker');
  if (b.toString('latin1', off, off + 4) !== 'END\0')
    throw new SnapshotError(off, 'bad end marker');
  off += 4;
  if (off !== b.length)
    throw new SnapshotError(off, `${b.length - off} bytes after the end marker`);
  return { header, state, extra, pfn };
}
