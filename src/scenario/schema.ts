// The scenario format, version 1: a header (kernel profile, geometry, RAM, swap, seed, sysfs
// writes), the processes that exist at the start, and a timeline of events. Every object is
// strict: an unknown field is an error, so a typo never silently does nothing.
//
// Sizes and counts may be expressions over the geometry (expr.ts): "4pmd", "(NR/2) pages",
// "NR - 1". The schema parses them; resolve.ts evaluates them for one geometry and one variant
// (kernel-selftest files declare contexts, memory types and other matrix dimensions), unrolls
// `repeat` and drops events whose `when` does not match.

import { z } from 'zod';
import { GEOMETRY_NAMES, type GeometryName } from '../mm/geometry.ts';
import { COLLAPSE_POLICIES, type CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import { PROFILE_NAMES, type ProfileName } from '../mm/profile.ts';
import { Expr, ExprError, type ExprConstraints, type ExprKind, parseExprNode } from './expr.ts';
import { SIZE_HINT, describeValue, formatSize, parseSize } from './size.ts';

export const SCENARIO_VERSION = 1;

export const PROTS = ['none', 'r', 'rw', 'rx', 'rwx'] as const;
export const ADVICES = [
  'hugepage',
  'nohugepage',
  'dontneed',
  'free',
  'pageout',
  'collapse',
] as const;
export const MADVISE_RESULTS = ['ok', 'EINVAL', 'ENOMEM', 'EBUSY', 'EAGAIN'] as const;
export const THP_DISABLE = ['none', 'all', 'except-advised'] as const;
/**
 * The kernel selftest's collapse contexts (khugepaged.c: khugepaged_context, madvise_context;
 * mthp_khugepaged: the mTHP collapse context of kernel-selftests.md section 3).
 */
export const CONTEXTS = ['khugepaged', 'madvise', 'mthp_khugepaged'] as const;
/** The selftest's memory types: private anonymous, a regular file (read-only), shmem (memfd). */
export const MEM_TYPES = ['anon', 'file', 'shmem'] as const;
export const COLLAPSE_EXPECT = ['collapsed', 'not_collapsed'] as const;

export type MadviseResult = (typeof MADVISE_RESULTS)[number];
export type ContextName = (typeof CONTEXTS)[number];
export type MemType = (typeof MEM_TYPES)[number];
export type CollapseExpect = (typeof COLLAPSE_EXPECT)[number];

/** Names a sysfs value may use to count as an expression ("NR/2"); anything else is a string. */
const SYSFS_EXPR_NAMES = new Set(['NR', 'PAGE', 'PMD']);

const EXPR_HINT = /[()*/%+]|\b(nr|pmds?|pages?)\b|[0-9]\s*-|-\s*[0-9(]/i;

function exprField(kind: ExprKind, opts: ExprConstraints = {}) {
  const hint = kind === 'size' ? SIZE_HINT : 'a whole number or an expression like "NR/2"';
  return z.unknown().transform((v, ctx): Expr => {
    const bad = (detail?: string) => {
      ctx.addIssue({
        code: 'custom',
        message: `expected ${hint}, got ${describeValue(v)}${detail ? ` (${detail})` : ''}`,
      });
      return z.NEVER;
    };
    if (v === undefined) {
      ctx.addIssue({ code: 'custom', message: `required field is missing (expected ${hint})` });
      return z.NEVER;
    }
    let e: Expr;
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < 0) return bad();
      e = new Expr(v, { k: 'num', v }, kind, opts);
    } else if (typeof v === 'string') {
      try {
        e = new Expr(v, parseExprNode(v), kind, opts);
      } catch (err) {
        if (!(err instanceof ExprError)) throw err;
        return bad(EXPR_HINT.test(v) ? err.message : undefined);
      }
    } else return bad();
    // A constant (no NR, PAGE, PMD or loop variable) is checked now.
    if (e.names.size === 0) {
      const problem = checkExprValue(e, new Map());
      if (problem) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
    }
    return e;
  });
}

/** Evaluate and apply the field's constraints; the error message, or undefined if fine. */
export function checkExprValue(e: Expr, env: Parameters<Expr['evaluate']>[0]): string | undefined {
  const hint = e.kind === 'size' ? SIZE_HINT : 'a whole number or an expression like "NR/2"';
  const shown = describeValue(e.src);
  let n: number;
  try {
    n = e.evaluate(env);
  } catch (err) {
    if (!(err instanceof ExprError)) throw err;
    return `expected ${hint}, got ${shown}${e.literal && e.kind === 'size' ? '' : ` (${err.message})`}`;
  }
  const value =
    e.names.size > 0 ? ` (= ${e.kind === 'size' && n >= 0 ? formatSize(n) : String(n)})` : '';
  if (n < 0) return `expected ${hint}, got ${shown}${value}`;
  if (e.constraints.positive && n === 0)
    return e.kind === 'size'
      ? `expected a size greater than 0, got ${shown}${value}`
      : `expected a number > 0, got ${shown}${value}`;
  if (e.constraints.powerOfTwo && (n === 0 || 2 ** Math.round(Math.log2(n)) !== n))
    return `expected a power of two like "2MiB", got ${shown}${value}`;
  return undefined;
}

/** A size field: bytes, a string with a unit, or an expression; resolved to bytes. */
function size(opts: ExprConstraints = {}) {
  return exprField('size', opts);
}
/** A count field: an integer or an expression like "NR/2"; resolved to a number. */
function count(opts: ExprConstraints = {}) {
  return exprField('count', opts);
}

/** A sysfs value: written as is, unless it is an expression over NR/PAGE/PMD ("NR/2"). */
const sysfsValue = z.union([z.string(), z.number()]).transform((v): string | number | Expr => {
  if (typeof v !== 'string') return v;
  try {
    const node = parseExprNode(v);
    if (node.k === 'num') return v;
    const e = new Expr(v, node, 'count');
    if ([...e.names].every((n) => SYSFS_EXPR_NAMES.has(n)) && EXPR_HINT.test(v)) return e;
  } catch {
    // not an expression: a plain value like "madvise"
  }
  return v;
});

const name = z.string().min(1);
const proc = name;
const vma = name;
const range = { offset: size().optional(), length: size({ positive: true }).optional() };
const prot = z.enum(PROTS);

/** `when`: run the event only in some variants, e.g. { context: khugepaged, mem: [anon, file] }. */
const WhenSchema = z.record(name, z.union([name, z.array(name).min(1)]));

export const PatternSchema = z.union(
  [
    z.literal('all'),
    z.strictObject({ every: count({ positive: true }) }),
    z.strictObject({
      random: z.number().gt(0).lte(1),
      seed: z.number().int().optional(),
    }),
    z.strictObject({ first: count({ positive: true }) }),
  ],
  { error: 'expected "all", {every: n}, {random: fraction, seed?} or {first: n}' },
);

const access = {
  proc,
  vma,
  ...range,
  stride: size({ positive: true }).optional(),
  pattern: PatternSchema.optional(),
};

/** smaps fields a `check` can compare (sizes; smaps prints them in kB). */
export const CHECK_FIELDS = [
  'Rss',
  'AnonHugePages',
  'ShmemPmdMapped',
  'FilePmdMapped',
  'Swap',
] as const;
export type CheckField = (typeof CHECK_FIELDS)[number];

const when = { when: WhenSchema.optional() };

export const EVENT_SCHEMAS = {
  mmap: z.strictObject({
    op: z.literal('mmap'),
    proc,
    vma,
    size: size({ positive: true }),
    addr: size().optional(),
    align: size({ powerOfTwo: true }).optional(),
    prot: prot.optional(),
    shared: z.boolean().optional(),
    /** A file made by create_file; `offset` is the offset into it. */
    file: name.optional(),
    offset: size().optional(),
    ...when,
  }),
  munmap: z.strictObject({ op: z.literal('munmap'), proc, vma, ...range, ...when }),
  mprotect: z.strictObject({ op: z.literal('mprotect'), proc, vma, ...range, prot, ...when }),
  mremap: z.strictObject({
    op: z.literal('mremap'),
    proc,
    vma,
    newSize: size({ positive: true }),
    to: size().optional(),
    ...when,
  }),
  touch: z.strictObject({ op: z.literal('touch'), ...access, ...when }),
  write: z.strictObject({ op: z.literal('write'), ...access, ...when }),
  madvise: z.strictObject({
    op: z.literal('madvise'),
    proc,
    vma,
    ...range,
    advice: z.enum(ADVICES),
    expect: z.enum(MADVISE_RESULTS).optional(),
    ...when,
  }),
  fork: z.strictObject({ op: z.literal('fork'), proc, child: name, ...when }),
  exit: z.strictObject({ op: z.literal('exit'), proc, ...when }),
  prctl: z.strictObject({
    op: z.literal('prctl'),
    proc,
    thp_disable: z.enum(THP_DISABLE),
    ...when,
  }),
  swapout: z.strictObject({ op: z.literal('swapout'), proc, vma, ...range, ...when }),
  sleep: z.strictObject({ op: z.literal('sleep'), ms: z.number().int().nonnegative(), ...when }),
  shrink: z.strictObject({ op: z.literal('shrink'), ...when }),
  sysfs: z.strictObject({
    op: z.literal('sysfs'),
    path: z.string().min(1),
    value: sysfsValue,
    ...when,
  }),
  report: z.strictObject({
    op: z.literal('report'),
    label: z.string().min(1).optional(),
    ...when,
  }),
  // ---- added for khugepaged and the kernel selftests ----
  create_file: z.strictObject({
    op: z.literal('create_file'),
    name,
    size: size({ positive: true }),
    tmpfs: z.boolean().optional(),
    ...when,
  }),
  drop_caches: z.strictObject({ op: z.literal('drop_caches'), ...when }),
  populate: z.strictObject({
    op: z.literal('populate'),
    proc,
    vma,
    ...range,
    mode: z.enum(['read', 'write']),
    ...when,
  }),
  setup_area: z.strictObject({
    op: z.literal('setup_area'),
    proc,
    vma,
    pmds: count({ positive: true }),
    mem: z.enum(MEM_TYPES).optional(),
    addr: size().optional(),
    ...when,
  }),
  fault: z.strictObject({ op: z.literal('fault'), proc, vma, ...range, ...when }),
  wait_khugepaged: z.strictObject({
    op: z.literal('wait_khugepaged'),
    scans: count().optional(),
    max_ms: count().optional(),
    until_collapsed: z.strictObject({ proc, vma, pmds: count().optional() }).optional(),
    on_timeout: z.enum(['fail', 'continue']).optional(),
    ...when,
  }),
  collapse: z.strictObject({
    op: z.literal('collapse'),
    proc,
    vma,
    ...range,
    expect: z.enum(MADVISE_RESULTS).optional(),
    retry_eagain: z.boolean().optional(),
    ...when,
  }),
  check: z.strictObject({
    op: z.literal('check'),
    proc,
    vma,
    ...range,
    Rss: size().optional(),
    AnonHugePages: size().optional(),
    ShmemPmdMapped: size().optional(),
    FilePmdMapped: size().optional(),
    Swap: size().optional(),
    huge: count().optional(),
    /** Mapped bytes per folio order in the range (smaps byOrder), e.g. { 4: "16pmd/..." }. */
    orders: z
      .record(z.string().regex(/^[0-9]+$/, { error: 'expected a folio order' }), size())
      .optional(),
    /** Per-size stats by order (hugepages-<size>kB/stats), e.g. { 4: { collapse_alloc: NR/16 } }. */
    stats: z
      .record(
        z.string().regex(/^[0-9]+$/, { error: 'expected a folio order' }),
        z.record(z.string().min(1), count()),
      )
      .optional(),
    intact: z.boolean().optional(),
    label: z.string().min(1).optional(),
    ...when,
  }),
  collapse_ctx: z.strictObject({
    op: z.literal('collapse_ctx'),
    proc,
    vma,
    offset: size().optional(),
    pmds: count({ positive: true }).optional(),
    /** mthp_khugepaged: the collapse order c (default 4) and the order-c folios expected. */
    order: count({ positive: true }).optional(),
    folios: count().optional(),
    expect: z.union([
      z.enum(COLLAPSE_EXPECT),
      z.strictObject({
        khugepaged: z.enum(COLLAPSE_EXPECT),
        madvise: z.enum(COLLAPSE_EXPECT),
        mthp_khugepaged: z.enum(COLLAPSE_EXPECT).optional(),
      }),
    ]),
    precheck: z.boolean().optional(),
    label: z.string().min(1).optional(),
    ...when,
  }),
  sysfs_push: z.strictObject({
    op: z.literal('sysfs_push'),
    values: z.record(z.string().min(1), sysfsValue),
    ...when,
  }),
  sysfs_pop: z.strictObject({ op: z.literal('sysfs_pop'), ...when }),
  repeat: z.strictObject({
    op: z.literal('repeat'),
    count: count(),
    var: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected a name like "i"' })
      .optional(),
    do: z.array(z.unknown()),
    ...when,
  }),
} as const;

export type Op = keyof typeof EVENT_SCHEMAS;
export const OPS = Object.keys(EVENT_SCHEMAS) as Op[];

export const EventSchema = z.discriminatedUnion('op', [
  EVENT_SCHEMAS.mmap,
  EVENT_SCHEMAS.munmap,
  EVENT_SCHEMAS.mprotect,
  EVENT_SCHEMAS.mremap,
  EVENT_SCHEMAS.touch,
  EVENT_SCHEMAS.write,
  EVENT_SCHEMAS.madvise,
  EVENT_SCHEMAS.fork,
  EVENT_SCHEMAS.exit,
  EVENT_SCHEMAS.prctl,
  EVENT_SCHEMAS.swapout,
  EVENT_SCHEMAS.sleep,
  EVENT_SCHEMAS.shrink,
  EVENT_SCHEMAS.sysfs,
  EVENT_SCHEMAS.report,
  EVENT_SCHEMAS.create_file,
  EVENT_SCHEMAS.drop_caches,
  EVENT_SCHEMAS.populate,
  EVENT_SCHEMAS.setup_area,
  EVENT_SCHEMAS.fault,
  EVENT_SCHEMAS.wait_khugepaged,
  EVENT_SCHEMAS.collapse,
  EVENT_SCHEMAS.check,
  EVENT_SCHEMAS.collapse_ctx,
  EVENT_SCHEMAS.sysfs_push,
  EVENT_SCHEMAS.sysfs_pop,
  EVENT_SCHEMAS.repeat,
]);

/** A cgroup's memory.max: a size, or "max" for no limit. */
const memoryMax = z.union([z.string(), z.number()]).transform((v, ctx): number => {
  if (v === 'max') return Infinity;
  try {
    return parseSize(v);
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: `expected ${SIZE_HINT} or "max", got ${describeValue(v)}`,
    });
    return z.NEVER;
  }
});

/** A process; with memory_max it runs in a memory cgroup of its own (its children join it). */
export const ProcessSchema = z.strictObject({ name, memory_max: memoryMax.optional() });

export const ScenarioSchema = z.strictObject({
  version: z.literal(SCENARIO_VERSION),
  name: z.string().min(1),
  description: z.string().optional(),
  profile: z.enum(PROFILE_NAMES as unknown as [ProfileName, ...ProfileName[]]).optional(),
  geometry: z.enum(GEOMETRY_NAMES as unknown as [GeometryName, ...GeometryName[]]).optional(),
  /** The mTHP collapse design khugepaged runs (default v19, the merged one). */
  collapse_policy: z
    .enum(COLLAPSE_POLICIES as unknown as [CollapsePolicy, ...CollapsePolicy[]])
    .optional(),
  ram: size({ positive: true }).optional(),
  swap: size().optional(),
  seed: z.number().int().optional(),
  sysfs: z.record(z.string().min(1), sysfsValue).optional(),
  /**
   * A kernel-selftest case: the collapse contexts it runs in. The runner applies the selftest's
   * global settings first and runs `collapse_ctx` as the chosen context does.
   */
  contexts: z.array(z.enum(CONTEXTS)).min(1).optional(),
  /** The memory types a selftest case runs with (setup_area, fault, check huge). */
  mem: z.union([z.enum(MEM_TYPES), z.array(z.enum(MEM_TYPES)).min(1)]).optional(),
  /** More variant dimensions, e.g. { policy: [never, madvise, always] }, selected with `when`. */
  matrix: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected a name like "policy"' }),
      z.array(z.string().min(1)).min(1),
    )
    .optional(),
  /** Why a geometry is skipped, e.g. { "pmd > 32MiB": "..." } (see resolve.ts skipReason). */
  skip_if: z
    .strictObject({ pmd_larger_than: size({ positive: true }), reason: z.string().min(1) })
    .optional(),
  processes: z.array(ProcessSchema),
  timeline: z.array(EventSchema),
});

// ---- types --------------------------------------------------------------------------------

/** A scenario as validated, before resolution: sizes and counts are still expressions. */
export type ScenarioSpec = z.output<typeof ScenarioSchema>;
export type SpecEvent = z.output<typeof EventSchema>;
/** A scenario as written (sizes may be strings). */
export type ScenarioInput = z.input<typeof ScenarioSchema>;

/** Expressions become numbers; `when` is gone (resolution applied it). */
export type Resolved<T> = T extends Expr
  ? number
  : T extends readonly (infer U)[]
    ? Resolved<U>[]
    : T extends object
      ? { [K in keyof T as K extends 'when' ? never : K]: Resolved<T[K]> }
      : T;

export type TimelineEvent = Resolved<Exclude<SpecEvent, { op: 'repeat' }>>;
export type EventOf<O extends Exclude<Op, 'repeat'>> = Extract<TimelineEvent, { op: O }>;
export type Pattern = Resolved<z.output<typeof PatternSchema>>;

/** Which context, memory type and matrix values a run uses. */
export type Variant = Record<string, string>;

/** A validated scenario for one geometry and variant: sizes are numbers of bytes. */
export type Scenario = Omit<Resolved<ScenarioSpec>, 'timeline' | 'sysfs' | 'skip_if'> & {
  sysfs?: Record<string, string | number>;
  timeline: TimelineEvent[];
  /** The selected variant (empty for a plain scenario). */
  variant: Variant;
  /** Where each timeline event came from ("timeline[3]", "timeline[5][i=2].do[1]"). */
  sources: string[];
  /** Set when the scenario declares skip_if and the geometry matches it. */
  skip?: string;
};
