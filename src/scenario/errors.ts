// One clear, one-line message per bad scenario: "<source>: <field path>: <what was expected>".

import { z } from 'zod';
import { closest } from './did-you-mean.ts';
import { describeValue } from './size.ts';

export type PathKey = string | number;

/** A scenario that cannot be loaded, validated or run. `message` is the full one-line text. */
export class ScenarioError extends Error {
  constructor(
    readonly source: string,
    /** Field path like "timeline[3].size" ('' for the whole file). */
    readonly field: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${field ? field + ': ' : ''}${detail}`, options);
    this.name = 'ScenarioError';
  }
}

/** ["timeline", 3, "size"] -> "timeline[3].size"; keys that are not identifiers are quoted. */
export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(k)}]`;
  }
  return out;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
};

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return describeValue(v);
}

function list(values: readonly unknown[]): string {
  return values.map((v) => (typeof v === 'string' ? v : describeValue(v))).join(', ');
}

/** Walk a schema along a path (following the data through unions) to the object schema there. */
function schemaAt(
  schema: z.ZodType,
  path: readonly PathKey[],
  data: unknown,
): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  let d: unknown = data;
  const unwrap = () => {
    while (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
    if (s instanceof z.ZodDiscriminatedUnion) {
      const disc = (s.def as { discriminator: string }).discriminator;
      const val = (d as Record<string, unknown> | undefined)?.[disc];
      s = (s.options as z.ZodType[]).find(
        (o) =>
          o instanceof z.ZodObject &&
          (o.shape[disc] as z.ZodLiteral | undefined)?.def.values.includes(val as never),
      );
    } else if (s instanceof z.ZodUnion) {
      const objs = (s.options as z.ZodType[]).filter((o) => o instanceof z.ZodObject);
      const keys = d && typeof d === 'object' ? Object.keys(d) : [];
      s = objs.find((o) => keys.some((k) => k in (o as z.ZodObject).shape)) ?? objs[0];
    }
  };
  unwrap();
  for (const k of path) {
    if (s instanceof z.ZodObject && typeof k === 'string') s = s.shape[k] as z.ZodType | undefined;
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else if (s instanceof z.ZodRecord) s = s.valueType as z.ZodType;
    else return undefined;
    d = (d as Record<PathKey, unknown> | undefined)?.[k];
    unwrap();
  }
  return s;
}

function valueAt(data: unknown, path: readonly PathKey[]): unknown {
  let d = data;
  for (const k of path) d = (d as Record<PathKey, unknown> | undefined)?.[k];
  return d;
}

/** The one-line message for the first (most relevant) zod issue. */
export function zodIssueMessage(
  issue: z.core.$ZodIssue,
  schema: z.ZodType,
  data: unknown,
): { field: string; detail: string } {
  const path = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
  const input = 'input' in issue ? issue.input : valueAt(data, path);
  const field = formatPath(path);
  switch (issue.code) {
    case 'invalid_type': {
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      if (input === undefined)
        return { field, detail: `required field is missing (expected ${expected})` };
      return { field, detail: `expected ${expected}, got ${typeOf(input)}` };
    }
    case 'invalid_value': {
      const exp =
        issue.values.length === 1
          ? describeValue(issue.values[0])
          : `one of: ${list(issue.values)}`;
      if (input === undefined)
        return { field, detail: `required field is missing (expected ${exp})` };
      return { field, detail: `expected ${exp}, got ${typeOf(input)}` };
    }
    case 'unrecognized_keys': {
      const obj = schemaAt(schema, path, data);
      const allowed = obj instanceof z.ZodObject ? Object.keys(obj.shape) : [];
      const hint = allowed.length ? ` (expected one of: ${allowed.join(', ')})` : '';
      // A typo of a field that is also missing is the likeliest meaning: try those first.
      const here = valueAt(data, path) as Record<string, unknown> | undefined;
      const given = here && typeof here === 'object' ? here : {};
      const candidates = [
        ...allowed.filter((k) => !(k in given)),
        ...allowed.filter((k) => k in given),
      ];
      const mean = (k: string) => {
        const c = closest(k, candidates);
        return c === undefined ? '' : `, did you mean "${c}"?`;
      };
      if (issue.keys.length === 1)
        return {
          field: formatPath([...path, issue.keys[0]]),
          detail: `unknown field${mean(issue.keys[0])}${hint}`,
        };
      const means = issue.keys
        .map((k) => [k, closest(k, candidates)] as const)
        .filter(([, c]) => c !== undefined)
        .map(([k, c]) => `"${k}" → "${c}"`);
      return {
        field,
        detail: `unknown fields ${list(issue.keys)}${means.length ? ` (did you mean ${means.join(', ')}?)` : ''}${hint}`,
      };
    }
    case 'invalid_union': {
      if ('discriminator' in issue && issue.discriminator) {
        const options = (issue as { options?: unknown[] }).options ?? [];
        const given = (input as Record<string, unknown> | undefined)?.[issue.discriminator];
        const exp = `expected one of: ${list(options)}`;
        if (given === undefined) return { field, detail: `required field is missing (${exp})` };
        return { field, detail: `unknown ${issue.discriminator} ${describeValue(given)} (${exp})` };
      }
      if (issue.message.startsWith('expected'))
        return { field, detail: `${issue.message}, got ${describeValue(input)}` };
      // A union without its own message (e.g. string | number): report the expected types.
      const types = issue.errors
        .map((errs) => errs.find((e) => e.code === 'invalid_type' && e.path.length === 0))
        .filter((e): e is z.core.$ZodIssueInvalidType => e !== undefined)
        .map((e) => TYPE_NAMES[e.expected] ?? e.expected);
      if (types.length === issue.errors.length)
        return { field, detail: `expected ${types.join(' or ')}, got ${typeOf(input)}` };
      return { field, detail: `invalid value ${describeValue(input)}` };
    }
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const op =
        issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      if (issue.origin === 'string' && issue.code === 'too_small' && Number(bound) <= 1)
        return { field, detail: 'expected a non-empty string' };
      if (issue.origin === 'array' || issue.origin === 'string')
        return {
          field,
          detail: `expected a length ${op} ${String(bound)}, got ${describeValue(input)}`,
        };
      return {
        field,
        detail: `expected a number ${op} ${String(bound)}, got ${describeValue(input)}`,
      };
    }
    case 'custom':
      return { field, detail: issue.message };
    default:
      return {
        field,
        detail: `${issue.message}${input !== undefined ? `, got ${describeValue(input)}` : ''}`,
      };
  }
}

/**
 * Pick the issue to report: the version first (a wrong version explains everything else); then,
 * when the first issue is a missing field and the same object has an unknown one, the unknown
 * field (`szie` explains the missing `size`, not the other way round).
 */
export function firstIssue(issues: readonly z.core.$ZodIssue[], data?: unknown): z.core.$ZodIssue {
  const version = issues.find((i) => i.path.length === 1 && i.path[0] === 'version');
  if (version) return version;
  const first = issues[0];
  const path = first.path.filter((k): k is PathKey => typeof k !== 'symbol');
  if (path.length && valueAt(data, path) === undefined) {
    const parent = formatPath(path.slice(0, -1));
    const unknown = issues.find(
      (i) =>
        i.code === 'unrecognized_keys' &&
        formatPath(i.path.filter((k): k is PathKey => typeof k !== 'symbol')) === parent,
    );
    if (unknown) return unknown;
  }
  return first;
}

/** What went wrong reading a file, in words and the errno name: "no such file (ENOENT)", ... */
export function fileErrorText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const words: Record<string, string> = {
    ENOENT: 'no such file',
    EISDIR: 'is a directory',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
  };
  if (code !== undefined && code in words) return `${words[code]} (${code})`;
  return ((e as Error | undefined)?.message ?? String(e)).replace(/\s*\n\s*/g, ' ').trim();
}

export { isDirectory } from './is-directory.ts';
