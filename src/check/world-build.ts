// Check worlds from a description: one process, one PMD-aligned range holding several VMAs
// (anonymous, file or shmem) that share its PTE table, pages populated as small pages, mTHPs or
// a PMD THP, swap entries, and the mTHP sizes khugepaged and faults may use afterwards. Case
// files and the matrix build their worlds here; the built-in cases use pmdWorld (cases/common.ts).

import type { CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { KernelBug } from '../mm/bugs.ts';
import { levelIndex, pmdTableOf } from '../mm/pagewalk.ts';
import { E_SWAP, E_TABLE, PMD } from '../mm/pgtable.ts';
import { Machine } from '../sim/machine.ts';
import { translate } from './properties.ts';
import type { VmaKind, WorldInfo } from './walkers/types.ts';
import { type CheckWorld, newWorld } from './world.ts';

const MiB = 1 << 20;

export interface VmaSpec {
  name: string;
  kind: VmaKind;
  /** Pages [from, to) of the PMD range. */
  from: number;
  to: number;
  /** Default: 'r' for a file (a read-only mapping khugepaged may collapse), else 'rw'. */
  prot?: 'r' | 'rw';
  advice?: 'hugepage' | 'nohugepage';
}

export type Populate =
  | { as: 'small'; pages: readonly number[] }
  | { as: 'mthp'; at: number; order: number }
  | { as: 'pmd' };

export interface WorldSpec {
  vmas: readonly VmaSpec[];
  populate?: readonly Populate[];
  /** Pages (populated small anonymous pages) swapped out before the threads start. */
  swap?: readonly number[];
  /** mTHP orders enabled after the setup, for khugepaged and faults (default [4]: 64K). */
  orders?: readonly number[];
  geometry?: 'x86-64-4k' | 'arm64-4k';
  policy?: CollapsePolicy;
  bugs?: readonly KernelBug[];
}

/** A world description that cannot be built; `field` says where (e.g. "vmas[1]"). */
export class WorldSpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the threads' fields are checked against, from the description alone. */
export function worldInfo(s: WorldSpec): WorldInfo {
  const populated = new Set<number>();
  const pmdMapped = new Set<number>();
  for (const p of s.populate ?? []) {
    if (p.as === 'small') for (const i of p.pages) populated.add(i);
    else if (p.as === 'mthp') for (let i = p.at; i < p.at + (1 << p.order); i++) populated.add(i);
    else
      for (let i = 0; i < 512; i++) {
        populated.add(i);
        pmdMapped.add(i);
      }
  }
  for (const i of s.swap ?? []) populated.delete(i);
  return { vmas: s.vmas, populated, pmdMapped };
}

function sizeDir(m: Machine, order: number): string {
  return `hugepages-${(m.kernel.geo.pageSize << order) / 1024}kB/enabled`;
}

function checkLayout(s: WorldSpec): void {
  const names = new Set<string>();
  const sorted = [...s.vmas].map((v, i) => ({ v, i })).sort((a, b) => a.v.from - b.v.from);
  sorted.forEach(({ v, i }, j) => {
    if (names.has(v.name))
      throw new WorldSpecError(`vmas[${i}].name`, `VMA ${v.name} is named twice`);
    names.add(v.name);
    if (v.to <= v.from)
      throw new WorldSpecError(
        `vmas[${i}].to`,
        `expected a page after from (${v.from}), got ${v.to}`,
      );
    const prev = sorted[j - 1]?.v;
    if (prev && v.from < prev.to)
      throw new WorldSpecError(`vmas[${i}].from`, `VMA ${v.name} overlaps VMA ${prev.name}`);
  });
}

function mapVmas(m: Machine, s: WorldSpec, w: CheckWorld, base: number): void {
  const ps = m.kernel.geo.pageSize;
  const mm = w.mms.p;
  s.vmas.forEach((v, i) => {
    const addrBytes = (base + v.from) * ps;
    const lengthBytes = (v.to - v.from) * ps;
    const prot = v.prot ?? (v.kind === 'file' ? 'r' : 'rw');
    if (v.kind === 'anon') m.mmap(mm, { addrBytes, lengthBytes, prot, name: v.name });
    else {
      const file = `${v.kind}-${v.name}`;
      m.createFile(file, 2 * MiB, { tmpfs: v.kind === 'shmem' });
      m.mmap(mm, {
        addrBytes,
        lengthBytes,
        prot,
        file,
        offsetBytes: v.from * ps,
        shared: v.kind === 'shmem',
      });
    }
    if (v.advice) m.madvise(mm, addrBytes, lengthBytes, v.advice);
    const vma = mm.findVma(base + v.from);
    if (!vma || vma.start !== base + v.from || vma.end !== base + v.to)
      throw new WorldSpecError(
        `vmas[${i}]`,
        `VMA ${v.name} merges with its neighbour (same kind and flags): leave a page between them or give one an advice`,
      );
    w.vmas[v.name] = vma;
  });
}

function populate(m: Machine, s: WorldSpec, w: CheckWorld, base: number): void {
  const k = m.kernel;
  const ps = k.geo.pageSize;
  const mm = w.mms.p;
  const kindOf = (i: number) => s.vmas.find((v) => i >= v.from && i < v.to);
  (s.populate ?? []).forEach((p, j) => {
    const field = `populate[${j}]`;
    const pages = p.as === 'small' ? p.pages : p.as === 'mthp' ? [p.at] : [0];
    for (const i of pages) {
      const v = kindOf(i);
      if (!v) throw new WorldSpecError(field, `no VMA maps page ${i}`);
      if (p.as !== 'small' && v.kind !== 'anon')
        throw new WorldSpecError(
          field,
          `${p.as} folios in a ${v.kind} VMA are not yet modelled in case files (anon only)`,
        );
      if (p.as === 'mthp') {
        if (p.at % (1 << p.order) || p.at + (1 << p.order) > v.to)
          throw new WorldSpecError(
            field,
            `an order-${p.order} mTHP at page ${p.at} is not aligned inside VMA ${v.name}`,
          );
        m.sysfsWrite(sizeDir(m, p.order), 'always');
      }
      if (p.as === 'pmd') {
        if (v.from !== 0 || v.to !== 512)
          throw new WorldSpecError(
            field,
            `a PMD THP needs a VMA spanning the PMD range; ${v.name} does not`,
          );
        m.sysfsWrite('enabled', 'always');
      }
      m.access(mm, (base + i) * ps, v.kind !== 'file');
      if (p.as === 'mthp') m.sysfsWrite(sizeDir(m, p.order), 'never');
      if (p.as === 'pmd') m.sysfsWrite('enabled', 'never');
      const pfn = translate(k, mm.id, base + i);
      const want = p.as === 'small' ? 1 : p.as === 'mthp' ? 1 << p.order : 512;
      if (pfn < 0 || k.folios.nrPagesOf(k.folios.headOf(pfn)) !== want)
        throw new WorldSpecError(
          field,
          `the fault at page ${i} did not map a ${want}-page folio (the model chose otherwise)`,
        );
    }
  });
}

function swapOut(m: Machine, s: WorldSpec, w: CheckWorld, base: number): void {
  const k = m.kernel;
  const mm = w.mms.p;
  (s.swap ?? []).forEach((i, j) => {
    m.madvise(mm, (base + i) * k.geo.pageSize, k.geo.pageSize, 'pageout');
    const pmdT = pmdTableOf(k, mm, base + i);
    const pmdI = levelIndex(k, base + i, PMD);
    const ok =
      pmdT !== 0 &&
      k.pt.pmd.type(pmdT, pmdI) === E_TABLE &&
      k.pt.pte.type(k.pt.pmd.getVal(pmdT, pmdI), (base + i) % k.geo.ptrsPerPte) === E_SWAP;
    if (!ok)
      throw new WorldSpecError(
        `swap[${j}]`,
        `page ${i} did not go to swap (it must be a populated small anonymous page)`,
      );
  });
}

/** Build the world a description says; throws WorldSpecError naming the field. */
export function buildWorld(s: WorldSpec): CheckWorld {
  checkLayout(s);
  const m = new Machine({
    ramBytes: 8 * MiB,
    swapBytes: s.swap?.length ? MiB : 0,
    strictLocks: true,
    geometry: s.geometry ?? 'x86-64-4k',
    collapsePolicy: s.policy ?? 'v19',
  });
  m.sysfsWrite('enabled', 'never');
  const mm = m.spawn('p');
  const ps = m.kernel.geo.pageSize;
  // Find a free PMD-aligned range, then map the VMAs into it.
  const baseBytes = m.mmap(mm, { lengthBytes: 2 * MiB, alignBytes: 2 * MiB });
  m.munmap(mm, baseBytes, 2 * MiB);
  const base = baseBytes / ps;
  const w = newWorld(m);
  w.mms.p = mm;
  mapVmas(m, s, w, base);
  populate(m, s, w, base);
  swapOut(m, s, w, base);
  for (const o of s.orders ?? [4]) m.sysfsWrite(sizeDir(m, o), 'always');
  for (const b of s.bugs ?? []) w.k.bugs.add(b);
  const k = w.k;
  const info = worldInfo(s);
  for (const i of info.populated) {
    const pfn = translate(k, mm.id, base + i);
    if (pfn < 0) continue;
    w.pfns[`page${i}`] = pfn;
    const v = s.vmas.find((x) => i >= x.from && i < x.to)!;
    if (v.kind !== 'file') w.expected.set(`${mm.id}:${base + i}`, k.folios.data[pfn]);
  }
  return w;
}
