// Checker cases as files: a world, the threads (each a walker of the registry by name with its
// fields), the properties and bounds, and what is expected. Every mistake is a ScenarioError
// naming the file and the field.
//
//   version: 1
//   kind: check
//   name: my-race
//   world:
//     vmas: [{ name: A, kind: anon, from: 0, to: 256 }, { name: B, kind: shmem, from: 256, to: 512 }]
//     populate: [{ as: small, pages: [0, 1, 256] }, { as: mthp, at: 16, order: 4 }]
//     bugs: [no-full-pmd-check]
//   threads:
//     - { walker: collapse, at: 0, order: 4 }
//     - { walker: fault, page: 300 }
//   properties: [transient-none]
//   expect: [transient-none]
//
// The first form of world (`shared`, `written`, `thp`, `pmd`: VMA A, and B above page 256 when
// shared) is still read; it builds the built-in cases' world (cases/common.ts).

import { INPUT_LIMITS, readBoundedText } from '../workload/read-bounded.ts';
import { z } from 'zod';
import { COLLAPSE_POLICIES, type CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import { KERNEL_BUGS, type KernelBug } from '../mm/bugs.ts';
import { closest } from '../scenario/did-you-mean.ts';
import { ScenarioError, fileErrorText, firstIssue, zodIssueMessage } from '../scenario/errors.ts';
import { parseText } from '../scenario/load.ts';
import { pmdWorld } from './cases/common.ts';
import type { CheckCase, ThreadSpec } from './explore.ts';
import { PROPERTIES, type PropertyName } from './properties.ts';
import { type WorldSpec, WorldSpecError, buildWorld, worldInfo } from './world-build.ts';
import { RANGE_PAGES, page, rangeBase, vmaName } from './walkers/fields.ts';
import { WALKERS, WALKER_NAMES, walkerByName } from './walkers/registry.ts';
import { WalkerArgError, type WalkerThread, type WorldInfo } from './walkers/types.ts';
import type { CheckWorld } from './world.ts';

export { KERNEL_BUGS };

function enumOf<T extends string>(values: readonly T[]) {
  return z.enum(values as unknown as [T, ...T[]]);
}

/** One thread: a walker of the registry, its own fields, and an optional thread name. */
const ThreadSchema = z.discriminatedUnion(
  'walker',
  WALKERS.map((w) =>
    w.args.extend({ walker: z.literal(w.name), name: z.string().min(1).optional() }),
  ) as unknown as [z.ZodObject, ...z.ZodObject[]],
);

const VmaSchema = z.strictObject({
  name: vmaName,
  kind: z.enum(['anon', 'file', 'shmem']),
  from: page,
  to: z.number().int().min(1).max(RANGE_PAGES),
  prot: z.enum(['r', 'rw']).optional(),
  advice: z.enum(['hugepage', 'nohugepage']).optional(),
});

const PopulateSchema = z.discriminatedUnion('as', [
  z.strictObject({ as: z.literal('small'), pages: z.array(page).min(1).max(RANGE_PAGES) }),
  z.strictObject({ as: z.literal('mthp'), at: page, order: z.number().int().min(2).max(8) }),
  z.strictObject({ as: z.literal('pmd') }),
]);

const property = enumOf<PropertyName>(PROPERTIES);

export const CaseFileSchema = z.strictObject({
  version: z.literal(1),
  kind: z.literal('check'),
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected a name like "my-race"' }),
  description: z.string().optional(),
  world: z.strictObject({
    // The first form: VMA A, and B above page 256 when shared; pages written as small pages.
    shared: z.boolean().optional(),
    written: z.array(page).max(RANGE_PAGES).optional(),
    pmd: z.boolean().optional(),
    thp: z.boolean().optional(),
    // The general form.
    vmas: z.array(VmaSchema).min(1).max(8).optional(),
    populate: z.array(PopulateSchema).max(16).optional(),
    swap: z.array(page).max(16).optional(),
    orders: z.array(z.number().int().min(2).max(9)).max(8).optional(),
    policy: enumOf<CollapsePolicy>(COLLAPSE_POLICIES).optional(),
    geometry: z.enum(['x86-64-4k', 'arm64-4k']).optional(),
    bugs: z.array(enumOf<KernelBug>(KERNEL_BUGS)).default([]),
  }),
  threads: z.array(ThreadSchema).min(1).max(6),
  properties: z.array(property).min(1).optional(),
  max_preemptions: z.number().int().min(0).max(6).optional(),
  max_steps: z.number().int().min(10).max(100_000).optional(),
  expect: z.union([z.literal('verified'), z.array(property).min(1)]),
});
export type CaseFile = z.infer<typeof CaseFileSchema>;
type WorldInput = CaseFile['world'];

const OLD_FIELDS = ['shared', 'written', 'pmd', 'thp'] as const;
const NEW_FIELDS = ['vmas', 'populate', 'swap', 'orders'] as const;

/** The world's layout, for the threads' checks, and how to build it with a collapse design. */
function world(
  source: string,
  f: WorldInput,
): { info: WorldInfo; setup: (policy: CollapsePolicy | undefined) => () => CheckWorld } {
  const old = OLD_FIELDS.find((k) => f[k] !== undefined);
  const gen = NEW_FIELDS.find((k) => f[k] !== undefined);
  if (old && gen)
    throw new ScenarioError(
      source,
      `world.${old}`,
      `the first form (shared, written, pmd, thp) does not mix with ${gen}; describe the VMAs with vmas`,
    );
  const common = (policy: CollapsePolicy | undefined) => ({
    bugs: f.bugs,
    ...(policy ? { policy } : {}),
    ...(f.geometry ? { geometry: f.geometry } : {}),
  });
  if (!gen) {
    const shared = f.shared ?? false;
    const written = f.written ?? [];
    const vmas = shared
      ? [
          { name: 'A', kind: 'anon' as const, from: 0, to: 256 },
          { name: 'B', kind: 'anon' as const, from: 256, to: RANGE_PAGES },
        ]
      : [{ name: 'A', kind: 'anon' as const, from: 0, to: RANGE_PAGES }];
    // With thp and one VMA spanning the range, the first write faults in a PMD THP.
    const huge = f.thp === true && !shared && written.length > 0;
    const all = Array.from({ length: RANGE_PAGES }, (_, i) => i);
    const info: WorldInfo = {
      vmas,
      populated: new Set(huge ? all : written),
      pmdMapped: new Set(huge ? all : []),
    };
    const setup = (policy: CollapsePolicy | undefined) => () =>
      pmdWorld({
        shared,
        written,
        ...common(policy),
        ...(f.pmd !== undefined ? { pmd: f.pmd } : {}),
        ...(f.thp !== undefined ? { thp: f.thp } : {}),
      });
    return { info, setup };
  }
  if (!f.vmas)
    throw new ScenarioError(
      source,
      'world.vmas',
      'required field is missing (expected a list of VMAs: name, kind, from, to)',
    );
  const spec = (policy: CollapsePolicy | undefined): WorldSpec => ({
    vmas: f.vmas!,
    ...(f.populate ? { populate: f.populate } : {}),
    ...(f.swap ? { swap: f.swap } : {}),
    ...(f.orders ? { orders: f.orders } : {}),
    ...common(policy),
  });
  const build = (s: WorldSpec): CheckWorld => {
    try {
      return buildWorld(s);
    } catch (e) {
      if (e instanceof WorldSpecError)
        throw new ScenarioError(source, `world.${e.field}`, e.message);
      throw e;
    }
  };
  return {
    info: worldInfo(spec(undefined)),
    setup: (policy) => {
      const s = spec(policy);
      // Built once now, so that a world the model cannot make is reported with the file.
      build(s);
      return () => build(s);
    },
  };
}

/** An unknown walker or bug name, with the closest known one. */
function checkNames(data: unknown, source: string): void {
  const d = data as { threads?: unknown; world?: { bugs?: unknown } } | null;
  if (!d || typeof d !== 'object') return;
  const named = (
    list: unknown,
    field: (i: number) => string,
    known: readonly string[],
    what: string,
    pick: (x: unknown) => unknown,
  ) => {
    if (!Array.isArray(list)) return;
    list.forEach((x: unknown, i) => {
      const n = pick(x);
      if (typeof n !== 'string' || known.includes(n)) return;
      const c = closest(n, known);
      throw new ScenarioError(
        source,
        field(i),
        `unknown ${what} "${n}"${c ? `, did you mean "${c}"?` : ''} (expected one of: ${known.join(', ')})`,
      );
    });
  };
  named(
    d.threads,
    (i) => `threads[${i}].walker`,
    WALKER_NAMES,
    'walker',
    (x) => (x && typeof x === 'object' ? (x as { walker?: unknown }).walker : undefined),
  );
  if (d.world && typeof d.world === 'object')
    named(
      d.world.bugs,
      (i) => `world.bugs[${i}]`,
      KERNEL_BUGS,
      'bug switch',
      (x) => x,
    );
}

/** The thread of one case-file entry, run on the world (its discards noted as it starts). */
function threadSpec(t: WalkerThread, name: string | undefined, i: number): ThreadSpec {
  return {
    name: name ?? `${t.label} #${i}`,
    ...(t.vma !== undefined ? { vma: t.vma } : {}),
    run: (w, cpu) => {
      if (t.discards) {
        const b = rangeBase(w);
        w.discards.push([w.mms.p.id, b + t.discards[0], b + t.discards[1]]);
      }
      return t.run(w, cpu);
    },
  };
}

/** A validated case file as a CheckCase. */
export function caseFromInput(data: unknown, source: string): CheckCase {
  checkNames(data, source);
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
  const w = world(source, f.world);
  let policy: CollapsePolicy | undefined = f.world.policy;
  const threads = f.threads.map((t, i) => {
    const { walker, name, ...args } = t as { walker: string; name?: string };
    let wt: WalkerThread;
    try {
      wt = walkerByName(walker)!.thread(args, w.info);
    } catch (e) {
      if (e instanceof WalkerArgError)
        throw new ScenarioError(source, `threads[${i}].${e.field}`, e.message);
      throw e;
    }
    if (wt.policy !== undefined) {
      if (policy !== undefined && policy !== wt.policy)
        throw new ScenarioError(
          source,
          `threads[${i}].policy`,
          `collapse design ${wt.policy} differs from the world's ${policy} (one kernel runs one design)`,
        );
      policy = wt.policy;
    }
    return threadSpec(wt, name, i);
  });
  return {
    id: f.name,
    title: f.description ?? f.name,
    description: f.description ?? `${f.name} (from ${source})`,
    setup: w.setup(policy),
    threads,
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
