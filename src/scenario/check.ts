// Semantic checks that a schema cannot express: every process and VMA name an event uses must
// exist at that point of the timeline, ranges must lie inside their VMA, names must be unique.

import { ScenarioError } from './errors.ts';
import type { Scenario, TimelineEvent } from './schema.ts';
import { formatSize } from './size.ts';

interface ProcState {
  exitedAt?: number;
  vmas: Map<string, { size: number; unmappedAt?: number }>;
}

/** Events whose offset/length must stay inside the named VMA (madvise may probe outside it). */
const RANGE_CHECKED = new Set(['munmap', 'mprotect', 'touch', 'write', 'swapout']);

export function checkScenario(s: Scenario, source: string): void {
  const fail = (field: string, detail: string): never => {
    throw new ScenarioError(source, field, detail);
  };
  const procs = new Map<string, ProcState>();
  s.processes.forEach((p, i) => {
    if (procs.has(p.name)) fail(`processes[${i}].name`, `duplicate process name "${p.name}"`);
    procs.set(p.name, { vmas: new Map() });
  });
  const forkedAt = new Map<string, number>();
  s.timeline.forEach((e, i) => {
    if (e.op === 'fork' && !forkedAt.has(e.child)) forkedAt.set(e.child, i);
  });

  const known = () => [...procs.keys()].join(', ') || 'none';
  const getProc = (e: TimelineEvent & { proc: string }, i: number): ProcState => {
    const p = procs.get(e.proc);
    const field = `timeline[${i}].proc`;
    if (!p) {
      const at = forkedAt.get(e.proc);
      if (at !== undefined)
        return fail(
          field,
          `process "${e.proc}" does not exist yet (it is forked at timeline[${at}])`,
        );
      return fail(field, `unknown process "${e.proc}" (known: ${known()})`);
    }
    if (p.exitedAt !== undefined)
      fail(field, `process "${e.proc}" has exited (at timeline[${p.exitedAt}])`);
    return p;
  };

  s.timeline.forEach((e, i) => {
    if (!('proc' in e)) return;
    const p = getProc(e, i);
    if (e.op === 'mmap') {
      const old = p.vmas.get(e.vma);
      if (old && old.unmappedAt === undefined)
        fail(`timeline[${i}].vma`, `process "${e.proc}" already has a vma named "${e.vma}"`);
      p.vmas.set(e.vma, { size: e.size });
      return;
    }
    if (e.op === 'fork') {
      if (procs.has(e.child)) fail(`timeline[${i}].child`, `process "${e.child}" already exists`);
      const vmas = new Map<string, { size: number; unmappedAt?: number }>();
      for (const [k, v] of p.vmas) if (v.unmappedAt === undefined) vmas.set(k, { size: v.size });
      procs.set(e.child, { vmas });
      return;
    }
    if (e.op === 'exit') {
      p.exitedAt = i;
      return;
    }
    if (e.op === 'prctl') return;

    const v = p.vmas.get(e.vma);
    const field = `timeline[${i}].vma`;
    if (!v) {
      const names = [...p.vmas].filter(([, x]) => x.unmappedAt === undefined).map(([k]) => k);
      return fail(
        field,
        `unknown vma "${e.vma}" in process "${e.proc}" (known: ${names.join(', ') || 'none'})`,
      );
    }
    if (v.unmappedAt !== undefined)
      fail(
        field,
        `vma "${e.vma}" of process "${e.proc}" was unmapped at timeline[${v.unmappedAt}]`,
      );

    if (e.op === 'mremap') {
      v.size = e.newSize;
      return;
    }
    const offset = e.offset ?? 0;
    if (RANGE_CHECKED.has(e.op)) {
      if (offset >= v.size)
        fail(
          `timeline[${i}].offset`,
          `offset ${formatSize(offset)} is outside vma "${e.vma}" (${formatSize(v.size)})`,
        );
      if (e.length !== undefined && offset + e.length > v.size)
        fail(
          `timeline[${i}].length`,
          `offset ${formatSize(offset)} + length ${formatSize(e.length)} goes past the end of vma "${e.vma}" (${formatSize(v.size)})`,
        );
    }
    if (e.op === 'munmap' && offset === 0 && (e.length === undefined || e.length >= v.size))
      v.unmappedAt = i;
  });
}
