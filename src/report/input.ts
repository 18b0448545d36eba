// Reading the files `thpsim report` and `thpsim view` take: a run result (with or without
// metrics), a compare result, or a check result / CheckTrace. Validated enough that the report
// and the viewer can rely on the fields they read; anything else is one clear error.

import { z } from 'zod';
import type { CompareResult } from './compare.ts';
import type { AnyRun } from './metrics.ts';
import type { CheckTrace } from './model.ts';

const num = z.number().finite();

const int = z.number().int();
const str = z.string();
const counts = z.record(z.string(), num);

const pmdMap = z.looseObject({
  addr: num,
  order: int,
  huge: z.boolean(),
  ptes: str.optional(),
  folios: z.array(z.tuple([num, num, num, num])).optional(),
});

const tlbSchema = z.looseObject({
  model: str,
  assumptions: z.array(str),
  accesses: num,
  l1Misses: num,
  misses: num,
  missRate: num,
  baselineMisses: num,
  classes: z.array(z.looseObject({ name: str, bytes: num, accesses: num, resident: num })),
  reachBytes: num,
  baseReachBytes: num,
});

/** RunMetrics (src/report/model.ts): every field the report and the viewer read, typed. */
const metricsSchema = z.looseObject({
  format: z.literal('thpsim-metrics'),
  version: z.literal(1),
  pageKb: num.positive(),
  pmdOrder: int.min(1).max(30),
  orders: z.array(int.min(0).max(30)),
  samples: z.array(
    z.looseObject({
      t: num,
      event: int.nullable(),
      byOrderKb: counts,
      anonKb: num,
      bloatKb: num,
      freeKb: num,
      counters: counts,
    }),
  ),
  samplesDropped: num,
  creep: z.array(
    z.looseObject({
      t: num,
      proc: str,
      addr: num,
      vma: str.optional(),
      fromOrder: int,
      toOrder: int,
      sinceMs: num,
    }),
  ),
  collapseCosts: z.array(
    z.looseObject({ t: num, order: int, pages: num, copied: num, zeroed: num, us: num }),
  ),
  buddyinfo: z.array(num),
  buddyinfoByReport: z.array(z.looseObject({ label: str, t: num, free: z.array(num) })),
  tlb: tlbSchema,
  maps: z.array(
    z.looseObject({
      label: str,
      t: num,
      vmas: z.array(
        z.looseObject({
          proc: str,
          name: str,
          start: num,
          end: num,
          kind: z.enum(['anon', 'file', 'shmem']),
          flags: str,
          pmds: z.array(pmdMap),
        }),
      ),
    }),
  ),
  explain: z.array(
    z.looseObject({
      t: num,
      proc: str,
      vma: str.optional(),
      vmaOffset: num.optional(),
      addr: num,
      bits: str,
      nr: int,
      pmdOrder: int,
      enabled: num,
      unmapped: num,
      lo: num,
      hi: num,
      maxPtesNone: num,
      madvise: z.boolean(),
      policy: str,
      attempts: z.array(z.looseObject({ offset: num, order: int, result: str })),
    }),
  ),
  explainDropped: num,
});

const runSchema = z.looseObject({
  format: z.literal('thpsim-run'),
  version: z.literal(1),
  scenario: z.looseObject({ name: z.string() }),
  config: z.looseObject({ pageSize: num, pmdSize: num, geometry: z.string() }),
  events: z.array(z.looseObject({ index: num, op: z.string() })),
  collapses: z.looseObject({
    byOrder: z.record(z.string(), z.looseObject({ succeeded: num, bloatPages: num })),
  }),
  reports: z
    .array(
      z.looseObject({
        label: z.string(),
        clockMs: num,
        processes: z.array(
          z.looseObject({
            name: z.string(),
            totals: z.looseObject({ Anonymous: num, byOrder: z.record(z.string(), num) }),
          }),
        ),
        orders: z.array(z.looseObject({ order: num, size: z.string(), sizeKb: num })),
        vmstat: z.record(z.string(), num),
      }),
    )
    .min(1, 'a run result has at least one report'),
  metrics: metricsSchema.optional(),
});

const compareSchema = z.looseObject({
  format: z.literal('thpsim-compare'),
  version: z.literal(1),
  scenario: z.looseObject({ name: z.string() }),
  config: z.looseObject({ pageSize: num, pmdSize: num }),
  runs: z
    .array(
      z.looseObject({
        name: z.string(),
        bloatKb: num,
        timeline: z.array(
          z.looseObject({ label: z.string(), clockMs: num, byOrder: z.record(z.string(), num) }),
        ),
      }),
    )
    .min(1),
});

const checkStep = z.looseObject({
  index: num,
  thread: num,
  fn: z.string(),
  op: z.enum(['acquire', 'release', 'trylock', 'downgrade', 'read', 'write', 'flush', 'ipi']),
  object: z.string(),
  locksHeld: z.array(z.string()),
  entry: z
    .looseObject({
      kind: z.enum(['pgd', 'pud', 'pmd', 'pte']),
      addr: num,
      before: z.string(),
      after: z.string(),
    })
    .optional(),
  note: z.string().optional(),
});

export const checkTraceSchema = z.looseObject({
  format: z.literal('thpsim-check-trace'),
  version: z.literal(1),
  case: z.string(),
  property: z.string(),
  message: z.string(),
  threads: z.array(z.looseObject({ id: num, name: z.string() })).min(1),
  steps: z.array(checkStep),
  violation: z.looseObject({ step: num, property: z.string(), message: z.string() }),
});

export type ViewInput =
  | { kind: 'run'; run: AnyRun }
  | { kind: 'compare'; compare: CompareResult }
  | { kind: 'check'; trace: CheckTrace };

function issue(e: z.ZodError): string {
  const i = e.issues[0];
  const path = i.path.length ? i.path.map(String).join('.') + ': ' : '';
  return `${path}${i.message}`;
}

/** Parse a result file's text. Throws an Error with a one-line message on anything else. */
export function parseResult(text: string, allowCheck: boolean): ViewInput {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`, { cause: e });
  }
  const o = (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
  const format = o.format;
  const check =
    format === 'thpsim-check-trace' ? o : allowCheck && o.counterexample ? o.counterexample : null;
  if (check && allowCheck) {
    const r = checkTraceSchema.safeParse(check);
    if (!r.success) throw new Error(`not a valid check trace: ${issue(r.error)}`);
    const t = r.data as unknown as CheckTrace;
    if (t.steps.some((s) => !t.threads.some((th) => th.id === s.thread)))
      throw new Error('not a valid check trace: a step names a thread that is not listed');
    return { kind: 'check', trace: t };
  }
  if (format === 'thpsim-run') {
    const r = runSchema.safeParse(v);
    if (!r.success) throw new Error(`not a valid run result: ${issue(r.error)}`);
    return { kind: 'run', run: v as AnyRun };
  }
  if (format === 'thpsim-compare') {
    const r = compareSchema.safeParse(v);
    if (!r.success) throw new Error(`not a valid compare result: ${issue(r.error)}`);
    return { kind: 'compare', compare: v as CompareResult };
  }
  const want = allowCheck
    ? '"thpsim-run", "thpsim-compare", "thpsim-check-trace" or a check result with a counterexample'
    : '"thpsim-run" or "thpsim-compare"';
  throw new Error(
    `format is ${format === undefined ? 'missing' : JSON.stringify(format)}, expected ${want}`,
  );
}
