// A sweep cell: one unit of work of a sweep (one run of the one model), as plain JSON so that a
// worker thread, a child process or a BullMQ worker on another machine runs exactly the same
// thing. Inputs (scenarios, snapshots, traces) are named by content hash and stored once.

import { createHash } from 'node:crypto';
import type { CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { ProfileName } from '../mm/profile.ts';

/** What an input is: a resolved scenario, a snapshot (.snap) or an access trace. */
export type InputKind = 'scenario' | 'snapshot' | 'trace';

/** An input of a sweep, stored once by its content hash. */
export interface SweepInput {
  hash: string;
  kind: InputKind;
  /** The scenario's JSON, or the snapshot's or trace's bytes in base64. */
  text: string;
  /** For traces: the format (jsonl, lackey, damon-perf, damon-json). */
  format?: string;
}

/** The settings a cell runs under, written over the input's own. */
export interface CellSettings {
  policy?: CollapsePolicy;
  /** sysfs paths (relative to transparent_hugepage/) and values, in order. */
  knobs: Array<[string, string]>;
  profile?: ProfileName;
  /** A label carried into the result (a sweep's "name=value"). */
  label?: string;
}

/**
 * What a cell produces: a compare run (src/report/compare.ts), a workload outcome
 * (src/workload/outcome.ts) or a tune point (src/tune/objectives.ts).
 */
export type CellKind = 'compare' | 'workload' | 'tune';

export interface Cell {
  kind: CellKind;
  /** The content hash of the input (see inputOf). */
  input: string;
  inputKind: InputKind;
  settings: CellSettings;
  /** Overrides the input's seed when set. */
  seed?: number;
  /** Simulated ms khugepaged runs on a snapshot (what-if). */
  ms?: number;
}

/** The content hash that names an input: sha256 over its kind, format and text. */
export function contentHash(kind: InputKind, text: string, format = ''): string {
  return createHash('sha256').update(`${kind}\0${format}\0`).update(text).digest('hex');
}

/** An input made from its text. */
export function inputOf(kind: InputKind, text: string, format?: string): SweepInput {
  return { hash: contentHash(kind, text, format), kind, text, ...(format ? { format } : {}) };
}

/** A short human name of a cell, for progress and errors ("tune v19 max_ptes_none=470"). */
export function cellName(c: Cell): string {
  const parts: string[] = [c.kind];
  if (c.settings.label) parts.push(c.settings.label);
  if (c.settings.policy) parts.push(c.settings.policy);
  for (const [p, v] of c.settings.knobs) parts.push(`${p}=${v}`);
  return parts.join(' ');
}

/** The outcome of one cell: its result as JSON text, or the error that stopped it. */
export type CellOutcome =
  { ok: true; value: string } | { ok: false; error: string; attempts: number };
