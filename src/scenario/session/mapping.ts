// Mapping ops: mmap, munmap, mprotect, mremap, fork, exit, prctl, files, and the selftests'
// setup_area. They keep the session's named VMAs (and tracked page contents) in step.

import type { EventOf } from '../schema.ts';
import type { MemType } from '../schema.ts';
import { BASE_ADDR } from '../selftest.ts';
import { forget } from './contents.ts';
import type { OpHandlers } from './handler.ts';
import {
  type ProcRef,
  type ScenarioSession,
  type VmaKind,
  type VmaRef,
  rangeOf,
} from './session.ts';

/** mmap a VMA and name it in the process (the kind follows the file or MAP_SHARED). */
export function mapVma(
  ss: ScenarioSession,
  p: ProcRef,
  name: string,
  a: {
    size: number;
    addr?: number;
    align?: number;
    prot?: EventOf<'mmap'>['prot'];
    shared?: boolean;
    file?: string;
    offset?: number;
  },
): VmaRef {
  const start = ss.machine.mmap(p.mm, {
    lengthBytes: a.size,
    addrBytes: a.addr,
    alignBytes: a.align,
    prot: a.prot,
    shared: a.shared,
    ...(a.file !== undefined ? { file: a.file } : {}),
    ...(a.offset !== undefined ? { offsetBytes: a.offset } : {}),
    name,
  });
  let kind: VmaKind = 'anon';
  let object: string | undefined;
  if (a.file !== undefined) {
    kind = ss.files.get(a.file)?.tmpfs ? 'shmem' : 'file';
    object = `file:${a.file}`;
  } else if (a.shared) {
    kind = 'shmem';
    object = `shm#${++ss.shmSeq}`;
  }
  const ref: VmaRef = {
    start,
    length: a.size,
    kind,
    shared: a.shared ?? false,
    ...(object !== undefined ? { object } : {}),
    pgoff: a.offset ?? 0,
  };
  p.vmas.set(name, ref);
  return ref;
}

/** The pages move with the mapping; what lies past a shrunk end is gone. */
function moveShadow(ss: ScenarioSession, p: ProcRef, v: VmaRef, start: number, newSize: number) {
  const ps = ss.ps;
  const moved = new Map<number, number>();
  const first = v.start / ps;
  const keep = Math.min(v.length, newSize) / ps;
  for (const [page, val] of p.shadow) {
    if (page >= first && page < first + v.length / ps) {
      if (page - first < keep) moved.set(start / ps + (page - first), val);
      p.shadow.delete(page);
    }
  }
  for (const [page, val] of moved) p.shadow.set(page, val);
}

/** The selftests' anon, file_setup_area and shmem_setup_area. */
const setupArea: OpHandlers['setup_area'] = (ss, e, i, rec) => {
  const p = ss.procOf(e.proc, i);
  const mem: MemType = e.mem ?? (ss.variant.mem as MemType | undefined) ?? 'anon';
  const size = e.pmds * ss.geo.pmdSize;
  const addr = e.addr ?? BASE_ADDR;
  let file: string | undefined;
  let v: VmaRef;
  if (mem === 'anon') v = mapVma(ss, p, e.vma, { size, addr });
  else {
    // A fresh file of the area's size.
    file = `${e.vma}.${mem === 'shmem' ? 'memfd' : 'file'}.${++ss.fileSeq}`;
    ss.machine.createFile(file, size, { tmpfs: mem === 'shmem' });
    ss.files.set(file, { tmpfs: mem === 'shmem' });
    if (mem === 'file') {
      v = mapVma(ss, p, e.vma, { size, addr, prot: 'rx', file });
      ss.machine.dropCaches();
    } else v = mapVma(ss, p, e.vma, { size, addr, prot: 'rw', shared: true, file });
  }
  return {
    ...rec,
    proc: e.proc,
    vma: e.vma,
    addr: v.start,
    length: size,
    mem,
    ...(file !== undefined ? { file } : {}),
  };
};

export const mappingOps = {
  mmap(ss, e, i, rec) {
    const v = mapVma(ss, ss.procOf(e.proc, i), e.vma, e);
    return {
      ...rec,
      proc: e.proc,
      vma: e.vma,
      addr: v.start,
      length: e.size,
      ...(e.file !== undefined ? { file: e.file } : {}),
    };
  },
  munmap(ss, e, i, rec) {
    const p = ss.procOf(e.proc, i);
    const v = ss.vmaOf(p, e.vma, i);
    const r = rangeOf(v, e);
    ss.machine.munmap(p.mm, r.addr, r.length);
    forget(ss, p, r.addr, r.length, 'zero');
    const end = Math.min(v.start + v.length, r.addr + r.length);
    if (r.addr <= v.start && end >= v.start + v.length) p.vmas.delete(e.vma);
    else if (r.addr <= v.start) {
      // The named range now starts after the hole.
      v.length -= end - v.start;
      v.pgoff += end - v.start;
      v.start = end;
    } else if (end >= v.start + v.length) v.length = r.addr - v.start;
    return { ...rec, proc: e.proc, vma: e.vma, ...r };
  },
  mprotect(ss, e, i, rec) {
    const p = ss.procOf(e.proc, i);
    const r = rangeOf(ss.vmaOf(p, e.vma, i), e);
    ss.machine.mprotect(p.mm, r.addr, r.length, e.prot);
    return { ...rec, proc: e.proc, vma: e.vma, ...r, result: e.prot };
  },
  mremap(ss, e, i, rec) {
    const p = ss.procOf(e.proc, i);
    const v = ss.vmaOf(p, e.vma, i);
    const start = ss.machine.mremap(p.mm, v.start, v.length, e.newSize, e.to);
    if (ss.tracking) moveShadow(ss, p, v, start, e.newSize);
    v.start = start;
    v.length = e.newSize;
    return { ...rec, proc: e.proc, vma: e.vma, addr: start, length: e.newSize };
  },
  fork(ss, e, i, rec) {
    const p = ss.procOf(e.proc, i);
    const ref = ss.addProc(e.child, ss.machine.fork(p.mm, e.child));
    for (const [k, v] of p.vmas) ref.vmas.set(k, { ...v });
    if (ss.tracking) for (const [k, v] of p.shadow) ref.shadow.set(k, v);
    return { ...rec, proc: e.proc, child: e.child };
  },
  exit(ss, e, i, rec) {
    const p = ss.procOf(e.proc, i);
    ss.machine.exit(p.mm);
    p.exited = true;
    p.shadow.clear();
    return { ...rec, proc: e.proc };
  },
  prctl(ss, e, i, rec) {
    const p = ss.procOf(e.proc, i);
    ss.machine.prctlThpDisable(p.mm, e.thp_disable);
    return { ...rec, proc: e.proc, result: e.thp_disable };
  },
  create_file(ss, e, _i, rec) {
    ss.machine.createFile(e.name, e.size, { tmpfs: e.tmpfs ?? false });
    ss.files.set(e.name, { tmpfs: e.tmpfs ?? false });
    return { ...rec, file: e.name, length: e.size };
  },
  drop_caches(ss, _e, _i, rec) {
    ss.machine.dropCaches();
    return rec;
  },
  setup_area: setupArea,
} satisfies Partial<OpHandlers>;
