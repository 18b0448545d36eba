// Read, parse and validate a scenario file. Every failure is a ScenarioError with one line of
// text naming the file and the field (or the line and column for a syntax error).

import { INPUT_LIMITS, readBoundedText } from '../workload/read-bounded.ts';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { checkScenario } from './check.ts';
import { ScenarioError, firstIssue, isDirectory, zodIssueMessage } from './errors.ts';
import { type ResolveOptions, resolveScenario } from './resolve.ts';
import { type Scenario, ScenarioSchema, type ScenarioSpec } from './schema.ts';

export const SCENARIO_EXTENSIONS = ['.yaml', '.yml', '.json'] as const;

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** Parse the text of a file: JSON for a .json source name, YAML (a superset of JSON) otherwise. */
export function parseText(text: string, sourceName: string): unknown {
  if (extname(sourceName).toLowerCase() === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      const msg = oneLine((e as Error).message);
      const pos = /at position (\d+)/.exec(msg);
      if (pos) {
        const before = text.slice(0, Number(pos[1]));
        const line = before.split('\n').length;
        const col = Number(pos[1]) - before.lastIndexOf('\n');
        throw new ScenarioError(
          `${sourceName}:${line}:${col}`,
          '',
          `JSON syntax error: ${msg.replace(/ in JSON at position \d+.*$/, '')}`,
        );
      }
      throw new ScenarioError(sourceName, '', `JSON syntax error: ${msg}`);
    }
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const where = err.linePos
      ? `${sourceName}:${err.linePos[0].line}:${err.linePos[0].col}`
      : sourceName;
    const msg = oneLine(err.message.split(/ at line \d+, column \d+/)[0]);
    throw new ScenarioError(where, '', `YAML syntax error: ${msg}`);
  }
  try {
    return doc.toJS({ maxAliasCount: 1000 }) as unknown;
  } catch (e) {
    // An alias to no anchor, or too many aliases: the document parses but has no value.
    throw new ScenarioError(sourceName, '', `YAML error: ${oneLine((e as Error).message)}`, {
      cause: e,
    });
  }
}

/** Validate parsed data against the schema; sizes and counts stay expressions. */
export function validateSpec(data: unknown, sourceName: string): ScenarioSpec {
  const r = ScenarioSchema.safeParse(data, { reportInput: true });
  if (!r.success) {
    const { field, detail } = zodIssueMessage(
      firstIssue(r.error.issues, data),
      ScenarioSchema,
      data,
    );
    throw new ScenarioError(sourceName, field, detail);
  }
  return r.data;
}

/** Resolve a validated spec for one geometry and variant, and run the timeline checks. */
export function resolveAndCheck(
  spec: ScenarioSpec,
  sourceName: string,
  opts: ResolveOptions = {},
): Scenario {
  const s = resolveScenario(spec, sourceName, opts);
  checkScenario(s, sourceName);
  return s;
}

/** Validate parsed data against the schema and the semantic checks, for one geometry/variant. */
export function validateScenario(
  data: unknown,
  sourceName: string,
  opts: ResolveOptions = {},
): Scenario {
  return resolveAndCheck(validateSpec(data, sourceName), sourceName, opts);
}

export function parseScenario(
  text: string,
  sourceName: string,
  opts: ResolveOptions = {},
): Scenario {
  return validateScenario(parseText(text, sourceName), sourceName, opts);
}

/** Read and validate a scenario file without resolving it (for running every variant). */
export function loadSpec(path: string): ScenarioSpec {
  return validateSpec(parseText(readText(path), sourceOf(path)), sourceOf(path));
}

function sourceOf(path: string): string {
  return path === '-' ? '<stdin>' : path;
}

export function loadScenario(path: string, opts: ResolveOptions = {}): Scenario {
  return parseScenario(readText(path), sourceOf(path), opts);
}

function readText(path: string): string {
  if (isDirectory(path)) throw new ScenarioError(path, '', 'is a directory, not a scenario file');
  const ext = extname(path).toLowerCase();
  if (path !== '-' && !(SCENARIO_EXTENSIONS as readonly string[]).includes(ext))
    throw new ScenarioError(
      path,
      '',
      `unsupported file type "${ext || '(none)'}" (expected ${SCENARIO_EXTENSIONS.join(', ')})`,
    );
  let text: string;
  try {
    text = readBoundedText(path, INPUT_LIMITS.scenario);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const detail =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory, not a scenario file'
          : oneLine((e as Error).message);
    throw new ScenarioError(path, '', detail, { cause: e });
  }
  return text;
}
