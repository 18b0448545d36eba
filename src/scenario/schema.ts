// The scenario format, version 1: a header (kernel profile, geometry, RAM, swap, seed, sysfs
// writes), the processes that exist at the start, and a timeline of events. Every object is
// strict: an unknown field is an error, so a typo never silently does nothing.

import { z } from 'zod';
import { GEOMETRY_NAMES, type GeometryName } from '../mm/geometry.ts';
import { PROFILE_NAMES, type ProfileName } from '../mm/profile.ts';
import { SIZE_HINT, SizeError, describeValue, parseSize } from './size.ts';

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

export type MadviseResult = (typeof MADVISE_RESULTS)[number];

/** A size field: a number of bytes or a string with a binary unit; the output is bytes. */
function size(opts: { positive?: boolean; powerOfTwo?: boolean } = {}) {
  return z.unknown().transform((v, ctx): number => {
    if (v === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `required field is missing (expected ${SIZE_HINT})`,
      });
      return z.NEVER;
    }
    let n: number;
    try {
      n = parseSize(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: e instanceof SizeError ? e.message : String(e) });
      return z.NEVER;
    }
    if (opts.positive && n === 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a size greater than 0, got ${describeValue(v)}`,
      });
      return z.NEVER;
    }
    if (opts.powerOfTwo && (n === 0 || 2 ** Math.round(Math.log2(n)) !== n)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a power of two like "2MiB", got ${describeValue(v)}`,
      });
      return z.NEVER;
    }
    return n;
  });
}

const name = z.string().min(1);
const proc = name;
const vma = name;
const range = { offset: size().optional(), length: size({ positive: true }).optional() };
const prot = z.enum(PROTS);

export const PatternSchema = z.union(
  [
    z.literal('all'),
    z.strictObject({ every: z.number().int().positive() }),
    z.strictObject({
      random: z.number().gt(0).lte(1),
      seed: z.number().int().optional(),
    }),
    z.strictObject({ first: z.number().int().positive() }),
  ],
  { error: 'expected "all", {every: n}, {random: fraction, seed?} or {first: n}' },
);
export type Pattern = z.output<typeof PatternSchema>;

const access = {
  proc,
  vma,
  ...range,
  stride: size({ positive: true }).optional(),
  pattern: PatternSchema.optional(),
};

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
  }),
  munmap: z.strictObject({ op: z.literal('munmap'), proc, vma, ...range }),
  mprotect: z.strictObject({ op: z.literal('mprotect'), proc, vma, ...range, prot }),
  mremap: z.strictObject({
    op: z.literal('mremap'),
    proc,
    vma,
    newSize: size({ positive: true }),
    to: size().optional(),
  }),
  touch: z.strictObject({ op: z.literal('touch'), ...access }),
  write: z.strictObject({ op: z.literal('write'), ...access }),
  madvise: z.strictObject({
    op: z.literal('madvise'),
    proc,
    vma,
    ...range,
    advice: z.enum(ADVICES),
    expect: z.enum(MADVISE_RESULTS).optional(),
  }),
  fork: z.strictObject({ op: z.literal('fork'), proc, child: name }),
  exit: z.strictObject({ op: z.literal('exit'), proc }),
  prctl: z.strictObject({ op: z.literal('prctl'), proc, thp_disable: z.enum(THP_DISABLE) }),
  swapout: z.strictObject({ op: z.literal('swapout'), proc, vma, ...range }),
  sleep: z.strictObject({ op: z.literal('sleep'), ms: z.number().int().nonnegative() }),
  shrink: z.strictObject({ op: z.literal('shrink') }),
  sysfs: z.strictObject({
    op: z.literal('sysfs'),
    path: z.string().min(1),
    value: z.union([z.string(), z.number()]),
  }),
  report: z.strictObject({ op: z.literal('report'), label: z.string().min(1).optional() }),
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
]);

export type TimelineEvent = z.output<typeof EventSchema>;
export type EventOf<O extends Op> = Extract<TimelineEvent, { op: O }>;

export const ProcessSchema = z.strictObject({ name });

export const ScenarioSchema = z.strictObject({
  version: z.literal(SCENARIO_VERSION),
  name: z.string().min(1),
  description: z.string().optional(),
  profile: z.enum(PROFILE_NAMES as unknown as [ProfileName, ...ProfileName[]]).optional(),
  geometry: z.enum(GEOMETRY_NAMES as unknown as [GeometryName, ...GeometryName[]]).optional(),
  ram: size({ positive: true }).optional(),
  swap: size().optional(),
  seed: z.number().int().optional(),
  sysfs: z.record(z.string().min(1), z.union([z.string(), z.number()])).optional(),
  processes: z.array(ProcessSchema),
  timeline: z.array(EventSchema),
});

/** A validated scenario: sizes are numbers of bytes. */
export type Scenario = z.output<typeof ScenarioSchema>;
/** A scenario as written (sizes may be strings). */
export type ScenarioInput = z.input<typeof ScenarioSchema>;
