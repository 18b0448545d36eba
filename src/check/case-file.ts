// Checker cases as files: a world (one PMD range, as the built-in cases use), the threads (each
// a walker by name with its arguments), the properties and bounds, and what is expected. Every
// mistake is a ScenarioError naming the file and the field.
//
//   version: 1
//   kind: check
//   name: my-race
//   world: { shared: true, written: [0, 1, 256], bugs: [no-full-pmd-check] }
//   threads:
//     - { walker: collapse, at: 0, order: 4 }
//     - { walker: fault, page: 300 }
//   properties: [transient-none]
//   expect: [transient-none]

import { INPUT_LIMITS, readBoundedText } from '../workload/read-bounded.ts';
import { z } from 'zod';
import { COLLAPSE_POLICIES, type CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { KernelBug } from '../mm/kernel.ts';
import { doMadvise } from '../mm/madvise.ts';
import { doMunmap } from '../mm/mmap.ts';
import { ScenarioError, fileErrorText, firstIssue, zodIssueMessage } from '../scenario/errors.ts';
import { parseText } from '../scenario/load.ts';
import { changeHugePmdNuma } from '../walkers/numa-hinting.ts';
import { gupSlow } from '../walkers/gup-slow.ts';
import { mincoreWalk } from '../walkers/mincore.ts';
import { oomReap } from '../walkers/oom-reaper.ts';
import { migrateFolio } from '../walkers/rmap-walk.ts';
import { uffdCopy } from '../walkers/uffd.ts';
import { khugepagedCollapse, pmdWorld, vpnBase } from './cases/common.ts';
import type { CheckCase, ThreadSpec } from './explore.ts';
import { gupWrite } from './gup-user.ts';
import { PROPERTIES, type PropertyName } from './properties.ts';
import { tlbUserWrite } from './world.ts';

/** Every bug switch a file may turn on (KernelBug, as a runtime list). */
export const KERNEL_BUGS = [
  'no-full-pmd-check',
  'early-anon-vma-unlock',
  'no-ipi-sync',
  'no-gup-recheck',
  'copy-before-flush',
  'pte-level-isolate-before-clear',
  'pt-reclaim-no-rcu',
  'numa-pmd-via-none',
  'pmd-clear-bad',
  'no-psc-flush',
  'retract-no-i-mmap-lock',
  'retract-no-guard-recheck',
  'pmd-install-no-recheck',
  'set-pte-without-ptl',
  'collapse-no-vma-write-lock',
  'pt-reclaim-pmd-lock-under-ptl',
  'walk-without-mmap-lock',
  'migration-restore-populates',
  'no-stable-check',
  'move-ptes-no-rmap-lock',
  'anon-vma-under-vma-lock',
  'gup-fast-reread-pmd',
  'rounds-no-freeze-flush',
  'rounds-no-verify',
  'rounds-abort-restores-foreign',
  'rounds-free-old-table-now',
] as const satisfies readonly KernelBug[];

const page = z.number().int().min(0).max(511);
const vma = z.enum(['A', 'B']).optional();

/** The walkers a thread may run; pages are indices from the start of the PMD range. */
const ThreadSchema = z.discriminatedUnion('walker', [
  z.strictObject({
    walker: z.literal('collapse'),
    at: page,
    order: z.number().int().min(2).max(9),
    name: z.string().optional(),
  }),
  z.strictObject({ walker: z.literal('fault'), page, vma, name: z.string().optional() }),
  z.strictObject({ walker: z.literal('migrate'), page, name: z.string().optional() }),
  z.strictObject({
    walker: z.literal('dontneed'),
    from: page,
    to: z.number().int().min(1).max(512),
    vma,
    name: z.string().optional(),
  }),
  z.strictObject({ walker: z.literal('gup-fast'), page, name: z.string().optional() }),
  z.strictObject({ walker: z.literal('gup-slow'), page, name: z.string().optional() }),
  z.strictObject({ walker: z.literal('munmap'), vma, name: z.string().optional() }),
  z.strictObject({ walker: z.literal('numa-hinting'), page, name: z.string().optional() }),
  z.strictObject({ walker: z.literal('mincore'), name: z.string().optional() }),
  z.strictObject({ walker: z.literal('uffd-copy'), page, name: z.string().optional() }),
  z.strictObject({ walker: z.literal('oom-reaper'), name: z.string().optional() }),
]);
type ThreadInput = z.infer<typeof ThreadSchema>;

const property = z.enum(PROPERTIES as unknown as [PropertyName, ...PropertyName[]]);

export const CaseFileSchema = z.strictObject({
  version: z.literal(1),
  kind: z.literal('check'),
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected a name like "my-race"' }),
  description: z.string().optional(),
  world: z.strictObject({
    shared: z.boolean().default(false),
    written: z.array(page).max(512).default([]),
    policy: z
      .enum(COLLAPSE_POLICIES as unknown as [CollapsePolicy, ...CollapsePolicy[]])
      .optional(),
    geometry: z.enum(['x86-64-4k', 'arm64-4k']).optional(),
    pmd: z.boolean().optional(),
    thp: z.boolean().optional(),
    bugs: z.array(z.enum(KERNEL_BUGS)).default([]),
  }),
  threads: z.array(ThreadSchema).min(1).max(6),
  properties: z.array(property).min(1).optional(),
  max_preemptions: z.number().int().min(0).max(6).optional(),
  max_steps: z.number().int().min(10).max(100_000).optional(),
  expect: z.union([z.literal('verified'), z.array(property).min(1)]),
});
export type CaseFile = z.infer<typeof CaseFileSchema>;

function threadSpec(t: ThreadInput, i: number): ThreadSpec {
  const name = t.name ?? `${t.walker}${'page' in t ? ` [${t.page}]` : ''} #${i}`;
  switch (t.walker) {
    case 'collapse':
      return { name, vma: 'A', run: (w) => khugepagedCollapse(w, t.at, t.order) };
    case 'fault':
      return {
        name,
        vma: t.vma ?? (t.page < 256 ? 'A' : 'B'),
        run: (w, cpu) => tlbUserWrite(w, cpu, w.mms.p, vpnBase(w) + t.page),
      };
    case 'migrate':
      return { name, run: (w) => migrateFolio(w.k, w.pfns[`page${t.page}`]) };
    case 'dontneed':
      return {
        name,
        vma: t.vma,
        run: (w) => doMadvise(w.k, w.mms.p, vpnBase(w) + t.from, vpnBase(w) + t.to, 'dontneed'),
      };
    case 'gup-fast':
      return { name, run: (w, cpu) => gupWrite(w, cpu, w.mms.p, vpnBase(w) + t.page) };
    case 'gup-slow':
      return { name, run: (w) => gupSlow(w.k, w.mms.p, vpnBase(w) + t.page, true) };
    case 'munmap':
      return {
        name,
        vma: t.vma ?? 'A',
        run: (w) => {
          const v = w.vmas[t.vma ?? 'A'];
          return doMunmap(w.k, w.mms.p, v.start, v.end);
        },
      };
    case 'numa-hinting':
      return { name, run: (w) => changeHugePmdNuma(w.k, w.mms.p, vpnBase(w) + t.page) };
    case 'mincore':
      return { name, run: (w) => mincoreWalk(w.k, w.mms.p, vpnBase(w), vpnBase(w) + 512) };
    case 'uffd-copy':
      return { name, run: (w) => uffdCopy(w.k, w.mms.p, vpnBase(w) + t.page, 7) };
    case 'oom-reaper':
      return { name, run: (w) => oomReap(w.k, w.mms.p) };
  }
}

/** A validated case file as a CheckCase. */
export function caseFromInput(data: unknown, source: string): CheckCase {
  const r = CaseFileSchema.safeParse(data);
  if (!r.success) {
    const { field, detail } = zodIssueMessage(
      firstIssue(r.error.issues, data),
      CaseFileSchema,
      data,
    );
    throw new ScenarioError(source, field, detail);
  }
  const f = r.data;
  f.threads.forEach((t, i) => {
    if (t.walker === 'migrate' && !f.world.written.includes(t.page))
      throw new ScenarioError(
        source,
        `threads[${i}].page`,
        `page ${t.page} is not written in world.written, so there is no folio to migrate`,
      );
    if ((t.walker === 'fault' || t.walker === 'dontneed') && t.vma === 'B' && !f.world.shared)
      throw new ScenarioError(source, `threads[${i}].vma`, 'VMA B exists only with world.shared');
  });
  return {
    id: f.name,
    title: f.description ?? f.name,
    description: f.description ?? `${f.name} (from ${source})`,
    setup: () =>
      pmdWorld({
        shared: f.world.shared,
        written: f.world.written,
        bugs: f.world.bugs,
        ...(f.world.policy ? { policy: f.world.policy } : {}),
        ...(f.world.geometry ? { geometry: f.world.geometry } : {}),
        ...(f.world.pmd !== undefined ? { pmd: f.world.pmd } : {}),
        ...(f.world.thp !== undefined ? { thp: f.world.thp } : {}),
      }),
    threads: f.threads.map(threadSpec),
    ...(f.properties ? { properties: f.properties } : {}),
    ...(f.max_preemptions !== undefined ? { maxPreemptions: f.max_preemptions } : {}),
    ...(f.max_steps !== undefined ? { maxSteps: f.max_steps } : {}),
    expect: f.expect,
    rules: [],
  };
}

/** Read a case file (YAML or JSON). */
export function loadCaseFile(path: string): CheckCase {
  let text: string;
  try {
    text = readBoundedText(path, INPUT_LIMITS.scenario);
  } catch (e) {
    throw new ScenarioError(path, '', `cannot read: ${fileErrorText(e)}`);
  }
  return caseFromInput(parseText(text, path), path);
}
