// Semantic checks that a schema cannot express: every process and VMA name an event uses must
// exist at that point of the timeline, ranges must lie inside their VMA, names must be unique,
// files must be created before they are mapped. Runs on a resolved scenario (one variant).

import { geometry as geometryOf } from '../mm/geometry.ts';
import { ScenarioError } from './errors.ts';
import { DEFAULT_GEOMETRY } from './resolve.ts';
import type { Scenario, TimelineEvent } from './schema.ts';
import { formatSize } from './size.ts';

interface VmaState {
  size: number;
  unmappedAt?: number;
}
interface ProcState {
  exitedAt?: number;
  vmas: Map<string, VmaState>;
}

/** Events whose offset/length must stay inside the named VMA (madvise may probe outside it). */
const RANGE_CHECKED = new Set([
  'munmap',
  'mprotect',
  'touch',
  'write',
  'swapout',
  'populate',
  'fault',
  'check',
]);

export function checkScenario(s: Scenario, source: string): void {
  const at = (i: number) => s.sources[i] ?? `timeline[${i}]`;
  const fail = (field: string, detail: string): never => {
    throw new ScenarioError(source, field, detail);
  };
  const pmdSize = geometryOf(s.geometry ?? DEFAULT_GEOMETRY).pmdSize;
  const procs = new Map<string, ProcState>();
  s.processes.forEach((p, i) => {
    if (procs.has(p.name)) fail(`processes[${i}].name`, `duplicate process name "${p.name}"`);
    procs.set(p.name, { vmas: new Map() });
  });
  const forkedAt = new Map<string, number>();
  s.timeline.forEach((e, i) => {
    if (e.op === 'fork' && !forkedAt.has(e.child)) forkedAt.set(e.child, i);
  });
  const files = new Map<string, number>();

  const known = () => [...procs.keys()].join(', ') || 'none';
  const getProc = (name: string, i: number, field: string): ProcState => {
    const p = procs.get(name);
    if (!p) {
      const f = forkedAt.get(name);
      if (f !== undefined)
        return fail(field, `process "${name}" does not exist yet (it is forked at ${at(f)})`);
      return fail(field, `unknown process "${name}" (known: ${known()})`);
    }
    if (p.exitedAt !== undefined)
      fail(field, `process "${name}" has exited (at ${at(p.exitedAt)})`);
    return p;
  };
  const getVma = (p: ProcState, proc: string, vma: string, field: string): VmaState => {
    const v = p.vmas.get(vma);
    if (!v) {
      const names = [...p.vmas].filter(([, x]) => x.unmappedAt === undefined).map(([k]) => k);
      return fail(
        field,
        `unknown vma "${vma}" in process "${proc}" (known: ${names.join(', ') || 'none'})`,
      );
    }
    if (v.unmappedAt !== undefined)
      fail(field, `vma "${vma}" of process "${proc}" was unmapped at ${at(v.unmappedAt)}`);
    return v;
  };
  const newVma = (p: ProcState, e: { proc: string; vma: string }, size: number, i: number) => {
    const old = p.vmas.get(e.vma);
    if (old && old.unmappedAt === undefined)
      fail(`${at(i)}.vma`, `process "${e.proc}" already has a vma named "${e.vma}"`);
    p.vmas.set(e.vma, { size });
  };

  s.timeline.forEach((e: TimelineEvent, i) => {
    if (e.op === 'create_file') {
      if (files.has(e.name))
        fail(
          `${at(i)}.name`,
          `file "${e.name}" already exists (created at ${at(files.get(e.name)!)})`,
        );
      files.set(e.name, i);
      return;
    }
    if (e.op === 'wait_khugepaged' && e.until_collapsed) {
      const u = e.until_collapsed;
      const p = getProc(u.proc, i, `${at(i)}.until_collapsed.proc`);
      getVma(p, u.proc, u.vma, `${at(i)}.until_collapsed.vma`);
      return;
    }
    if (!('proc' in e)) return;
    const p = getProc(e.proc, i, `${at(i)}.proc`);
    if (e.op === 'mmap') {
      if (e.file !== undefined && !files.has(e.file))
        fail(
          `${at(i)}.file`,
          `unknown file "${e.file}" (create it first with create_file; known: ${[...files.keys()].join(', ') || 'none'})`,
        );
      newVma(p, e, e.size, i);
      return;
    }
    if (e.op === 'setup_area') {
      newVma(p, e, e.pmds * pmdSize, i);
      return;
    }
    if (e.op === 'fork') {
      if (procs.has(e.child)) fail(`${at(i)}.child`, `process "${e.child}" already exists`);
      const vmas = new Map<string, VmaState>();
      for (const [k, v] of p.vmas) if (v.unmappedAt === undefined) vmas.set(k, { size: v.size });
      procs.set(e.child, { vmas });
      return;
    }
    if (e.op === 'exit') {
      p.exitedAt = i;
      return;
    }
    if (e.op === 'prctl') return;

    const v = getVma(p, e.proc, e.vma, `${at(i)}.vma`);
    if (e.op === 'mremap') {
      v.size = e.newSize;
      return;
    }
    const offset = e.offset ?? 0;
    const length = 'length' in e ? e.length : undefined;
    if (RANGE_CHECKED.has(e.op)) {
      if (offset >= v.size)
        fail(
          `${at(i)}.offset`,
          `offset ${formatSize(offset)} is outside vma "${e.vma}" (${formatSize(v.size)})`,
        );
      if (length !== undefined && offset + length > v.size)
        fail(
          `${at(i)}.length`,
          `offset ${formatSize(offset)} + length ${formatSize(length)} goes past the end of vma "${e.vma}" (${formatSize(v.size)})`,
        );
    }
    if (e.op === 'collapse_ctx' && e.pmds !== undefined && offset + e.pmds * pmdSize > v.size)
      fail(
        `${at(i)}.pmds`,
        `${e.pmds} PMDs from offset ${formatSize(offset)} go past the end of vma "${e.vma}" (${formatSize(v.size)})`,
      );
    if (e.op === 'munmap') {
      const end = length === undefined ? v.size : Math.min(v.size, offset + length);
      if (offset === 0 && end >= v.size) v.unmappedAt = i;
      else if (offset === 0)
        v.size -= end; // the named range now starts after the hole
      else if (end >= v.size) v.size = offset;
    }
  });
}
