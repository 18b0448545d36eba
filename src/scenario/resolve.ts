// Resolve a validated scenario for one geometry and one variant: evaluate every size and count
// expression (NR, PAGE, PMD and loop variables), unroll `repeat`, and drop the events whose
// `when` does not match the variant. The result has plain numbers, as version 1 always had.

import { type GeometryName, geometry as geometryOf } from '../mm/geometry.ts';
import { maxPagecacheOrder } from '../mm/settings.ts';
import { ScenarioError, firstIssue, formatPath, zodIssueMessage } from './errors.ts';
import { Expr, type Value, geometryEnv, isUnit } from './expr.ts';
import {
  EventSchema,
  type Scenario,
  type ScenarioSpec,
  type SpecEvent,
  type TimelineEvent,
  type Variant,
  checkExprValue,
} from './schema.ts';

export const DEFAULT_GEOMETRY: GeometryName = 'x86-64-4k';

/** Timeline events after unrolling; a guard against a repeat count that is far too large. */
const MAX_EVENTS = 1_000_000;
/** Loop iterations in all: an empty body adds no events, but still costs a step per iteration. */
const MAX_ITERATIONS = 1_000_000;

export interface ResolveOptions {
  /** Overrides the header's geometry. */
  geometry?: GeometryName;
  /** The variant to run; dimensions not given take their first value. */
  variant?: Variant;
}

export interface VariantDim {
  name: string;
  values: string[];
}

/** The variant dimensions a scenario declares: context, mem, then its matrix, in order. */
export function variantDims(spec: Pick<ScenarioSpec, 'contexts' | 'mem' | 'matrix'>): VariantDim[] {
  const dims: VariantDim[] = [];
  if (spec.contexts) dims.push({ name: 'context', values: [...spec.contexts] });
  if (spec.mem !== undefined)
    dims.push({ name: 'mem', values: Array.isArray(spec.mem) ? [...spec.mem] : [spec.mem] });
  for (const [name, values] of Object.entries(spec.matrix ?? {})) dims.push({ name, values });
  return dims;
}

/** Every variant of a scenario (the cartesian product of its dimensions); [{}] for none. */
export function variantsOf(spec: Pick<ScenarioSpec, 'contexts' | 'mem' | 'matrix'>): Variant[] {
  let out: Variant[] = [{}];
  for (const d of variantDims(spec))
    out = out.flatMap((v) => d.values.map((x) => ({ ...v, [d.name]: x })));
  return out;
}

/** "context=madvise mem=anon". */
export function describeVariant(v: Variant): string {
  return Object.entries(v)
    .map(([k, x]) => `${k}=${x}`)
    .join(' ');
}

/** "timeline[3]" + "size" -> "timeline[3].size"; keys that are not identifiers are quoted. */
function subField(field: string, key: string): string {
  const k = formatPath([key]);
  return !field ? k : k.startsWith('[') ? field + k : `${field}.${k}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Expr);
}

export function resolveScenario(
  spec: ScenarioSpec,
  source: string,
  opts: ResolveOptions = {},
): Scenario {
  const fail = (field: string, detail: string): never => {
    throw new ScenarioError(source, field, detail);
  };
  const geoName = opts.geometry ?? spec.geometry ?? DEFAULT_GEOMETRY;
  const geo = geometryOf(geoName);
  const baseEnv = geometryEnv(geo);

  // The variant.
  const dims = variantDims(spec);
  const variant: Variant = {};
  for (const [k, v] of Object.entries(opts.variant ?? {})) {
    const d = dims.find((x) => x.name === k);
    if (!d)
      fail(
        '',
        `this scenario has no variant dimension "${k}"${dims.length ? ` (it has: ${dims.map((x) => x.name).join(', ')})` : ' (it declares no contexts, mem or matrix)'}`,
      );
    if (!d!.values.includes(v))
      fail('', `${k} "${v}" is not one of this scenario's: ${d!.values.join(', ')}`);
  }
  for (const d of dims) variant[d.name] = opts.variant?.[d.name] ?? d.values[0];

  const evalAt = (e: Expr, field: string, env: ReadonlyMap<string, Value>): number => {
    const problem = checkExprValue(e, env);
    if (problem) fail(field, problem);
    return e.evaluate(env);
  };
  const deep = (v: unknown, field: string, env: ReadonlyMap<string, Value>): unknown => {
    if (v instanceof Expr) return evalAt(v, field, env);
    if (Array.isArray(v)) return v.map((x, i) => deep(x, `${field}[${i}]`, env));
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === 'when') continue;
        out[k] = deep(x, subField(field, k), env);
      }
      return out;
    }
    return v;
  };

  const matches = (when: Record<string, string | string[]> | undefined, field: string): boolean => {
    if (!when) return true;
    let ok = true;
    for (const [k, want] of Object.entries(when)) {
      const d = dims.find((x) => x.name === k);
      if (!d)
        fail(
          `${field}.when.${k}`,
          `unknown variant dimension "${k}" (${dims.length ? `this scenario has: ${dims.map((x) => x.name).join(', ')}` : 'declare contexts, mem or matrix in the header'})`,
        );
      const list = Array.isArray(want) ? want : [want];
      for (const w of list)
        if (!d!.values.includes(w))
          fail(`${field}.when.${k}`, `"${w}" is not one of: ${d!.values.join(', ')}`);
      if (!list.includes(variant[k])) ok = false;
    }
    return ok;
  };

  const timeline: TimelineEvent[] = [];
  const sources: string[] = [];
  let iterations = 0;
  const walk = (
    events: readonly SpecEvent[],
    prefix: string,
    fields: string[],
    env: ReadonlyMap<string, Value>,
  ) => {
    events.forEach((e, i) => {
      const path = fields[i] ?? `${prefix}[${i}]`;
      if (!matches(e.when as Record<string, string | string[]> | undefined, path)) return;
      if (e.op === 'repeat') {
        const n = evalAt(e.count, `${path}.count`, env);
        const varName = (e.var ?? 'i').toUpperCase();
        if (baseEnv.has(varName)) fail(`${path}.var`, `"${e.var}" is a reserved name`);
        if (isUnit(varName)) fail(`${path}.var`, `"${e.var}" is a unit, not a usable name`);
        // Validate the body once, then resolve it per iteration.
        const body: SpecEvent[] = e.do.map((raw, j) => {
          const r = EventSchema.safeParse(raw, { reportInput: true });
          if (!r.success) {
            const { field, detail } = zodIssueMessage(
              firstIssue(r.error.issues, raw),
              EventSchema,
              raw,
            );
            fail(
              field
                ? `${path}.do[${j}]${field.startsWith('[') ? '' : '.'}${field}`
                : `${path}.do[${j}]`,
              detail,
            );
          }
          return r.data!;
        });
        for (let it = 0; it < n; it++) {
          if (++iterations > MAX_ITERATIONS)
            fail(
              `${path}.count`,
              `the timeline's repeats run more than ${MAX_ITERATIONS} iterations in all (count ${n})`,
            );
          const inner = new Map(env);
          inner.set(varName, { v: it, bytes: false });
          const itPath = `${path}[${e.var ?? 'i'}=${it}]`;
          walk(
            body,
            `${itPath}.do`,
            body.map((_, j) => `${itPath}.do[${j}]`),
            inner,
          );
          if (timeline.length > MAX_EVENTS)
            fail(`${path}.count`, `the timeline unrolls to more than ${MAX_EVENTS} events`);
        }
        return;
      }
      timeline.push(deep(e, path, env) as TimelineEvent);
      sources.push(path);
    });
  };
  walk(spec.timeline, 'timeline', [], baseEnv);

  const sysfs: Record<string, string | number> | undefined = spec.sysfs
    ? Object.fromEntries(
        Object.entries(spec.sysfs).map(([k, v]) => [
          k,
          v instanceof Expr ? evalAt(v, formatPath(['sysfs', k]), baseEnv) : v,
        ]),
      )
    : undefined;

  const out: Scenario = {
    version: spec.version,
    name: spec.name,
    ...(spec.description !== undefined ? { description: spec.description } : {}),
    ...(spec.profile !== undefined ? { profile: spec.profile } : {}),
    ...(opts.geometry !== undefined || spec.geometry !== undefined ? { geometry: geoName } : {}),
    ...(spec.ram !== undefined ? { ram: evalAt(spec.ram, 'ram', baseEnv) } : {}),
    ...(spec.swap !== undefined ? { swap: evalAt(spec.swap, 'swap', baseEnv) } : {}),
    ...(spec.seed !== undefined ? { seed: spec.seed } : {}),
    ...(sysfs !== undefined ? { sysfs } : {}),
    ...(spec.contexts !== undefined ? { contexts: spec.contexts } : {}),
    ...(spec.mem !== undefined ? { mem: spec.mem } : {}),
    ...(spec.matrix !== undefined ? { matrix: spec.matrix } : {}),
    processes: spec.processes,
    timeline,
    variant,
    sources,
  };
  // MM-NEW: "skip khugepaged page cache cases without a PMD folio" (arm64 64K: the xarray
  // caps page-cache folios at order 11, below the PMD order 13).
  const mpo = maxPagecacheOrder(geo);
  if ((variant.mem === 'file' || variant.mem === 'shmem') && mpo < geo.pmdOrder)
    out.skip = `no PMD-sized page-cache folio on ${geo.name} (MAX_PAGECACHE_ORDER ${mpo} < PMD order ${geo.pmdOrder}); the mm selftests skip the ${variant.mem} cases`;
  if (spec.skip_if) {
    const limit = evalAt(spec.skip_if.pmd_larger_than, 'skip_if.pmd_larger_than', baseEnv);
    if (geo.pmdSize > limit) out.skip = spec.skip_if.reason;
  }
  return out;
}
