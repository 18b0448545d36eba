// The knob space `thpsim tune` searches: THP sysfs files (transparent_hugepage/...) and the
// mTHP collapse policy. `--space knob=v1,v2` (or a range, `knob=0..511` or `knob=0..511:8`)
// declares one dimension; every value is checked by the model's own sysfs store functions
// (sysfsWrite), so a value the kernel would refuse is refused here, with the kernel's reason.

import { COLLAPSE_POLICIES, type CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { GeometryName } from '../mm/geometry.ts';
import type { ProfileName } from '../mm/profile.ts';
import { sysfsRelPath } from '../scenario/run.ts';
import { Machine } from '../sim/machine.ts';

/** Short knob names for the sysfs files tune knows by heart. */
export const KNOB_PATHS: Readonly<Record<string, string>> = {
  enabled: 'enabled',
  defrag: 'defrag',
  shrink_underused: 'shrink_underused',
  max_ptes_none: 'khugepaged/max_ptes_none',
  max_ptes_swap: 'khugepaged/max_ptes_swap',
  max_ptes_shared: 'khugepaged/max_ptes_shared',
  pages_to_scan: 'khugepaged/pages_to_scan',
  scan_sleep_millisecs: 'khugepaged/scan_sleep_millisecs',
};

/** The knob that selects the collapse design (not a sysfs file). */
export const POLICY_KNOB = 'policy';

/** One dimension of the space. */
export interface Knob {
  /** As the user wrote it ("max_ptes_none", "enabled-64kB", "hugepages-64kB/enabled"). */
  name: string;
  /** The sysfs path relative to transparent_hugepage/, or null for the collapse policy. */
  path: string | null;
  values: string[];
  /** Whether the values are numbers (ordered; the search steps along them). */
  numeric: boolean;
}

export type Space = Knob[];

export class SpaceError extends Error {}

/** The sysfs path of a knob name: a short name, enabled-<size>, or a path itself. */
export function knobPath(name: string): string | null {
  if (name === POLICY_KNOB) return null;
  if (KNOB_PATHS[name]) return KNOB_PATHS[name];
  const m = /^enabled-(\d+kB)$/.exec(name);
  if (m) return `hugepages-${m[1]}/enabled`;
  return sysfsRelPath(name);
}

/** Values of `a..b` or `a..b:step` (inclusive), or a comma-separated list. */
function parseValues(knob: string, text: string): string[] {
  const r = /^(\d+)\.\.(\d+)(?::(\d+))?$/.exec(text.trim());
  if (r) {
    const [a, b, step] = [Number(r[1]), Number(r[2]), Number(r[3] ?? 1)];
    if (b < a || step < 1) throw new SpaceError(`--space ${knob}: empty range ${text}`);
    if ((b - a) / step + 1 > 100_000)
      throw new SpaceError(`--space ${knob}: range ${text} has more than 100000 values`);
    const out: string[] = [];
    for (let x = a; x <= b; x += step) out.push(String(x));
    if (out.at(-1) !== String(b)) out.push(String(b));
    return out;
  }
  const vs = text.split(',').map((v) => v.trim());
  if (vs.some((v) => v === '')) throw new SpaceError(`--space ${knob}: empty value in "${text}"`);
  return [...new Set(vs)];
}

/** Parse one `--space knob=values`. */
export function parseKnob(spec: string): Knob {
  const m = /^([^=\s]+)=(.+)$/.exec(spec);
  if (!m)
    throw new SpaceError(
      `--space: expected knob=v1,v2,... or knob=A..B, got ${JSON.stringify(spec)}`,
    );
  const values = parseValues(m[1], m[2]);
  return {
    name: m[1],
    path: knobPath(m[1]),
    values,
    numeric: values.every((v) => /^\d+$/.test(v)),
  };
}

export interface SpaceContext {
  profile?: ProfileName;
  geometry?: GeometryName;
}

/** Check every value of every knob against the model's sysfs (and the policy names). */
export function checkSpace(space: Space, ctx: SpaceContext = {}): void {
  const seen = new Set<string>();
  for (const k of space) {
    const key = k.path ?? POLICY_KNOB;
    if (seen.has(key)) throw new SpaceError(`--space ${k.name}: given twice`);
    seen.add(key);
    if (k.path === null) {
      for (const v of k.values)
        if (!(COLLAPSE_POLICIES as readonly string[]).includes(v))
          throw new SpaceError(
            `--space policy: "${v}" is not a collapse policy (${COLLAPSE_POLICIES.join(', ')})`,
          );
      continue;
    }
    const m = new Machine({ ...ctx, ramBytes: 64 * 1024 * 1024 });
    for (const v of k.values) {
      try {
        m.sysfsWrite(k.path, v);
      } catch (e) {
        throw new SpaceError(`--space ${k.name}=${v}: ${(e as Error).message}`);
      }
    }
  }
}

/** The policy and sysfs writes of one point (value indices, one per knob). */
export function settingsOf(
  space: Space,
  point: readonly number[],
): { policy?: CollapsePolicy; knobs: Array<[string, string]>; named: Record<string, string> } {
  let policy: CollapsePolicy | undefined;
  const knobs: Array<[string, string]> = [];
  const named: Record<string, string> = {};
  space.forEach((k, i) => {
    const v = k.values[point[i]];
    named[k.name] = v;
    if (k.path === null) policy = v as CollapsePolicy;
    else knobs.push([k.path, v]);
  });
  return { ...(policy ? { policy } : {}), knobs, named };
}

/** The number of points of the full grid. */
export function gridSize(space: Space): number {
  return space.reduce((n, k) => n * k.values.length, 1);
}

/** The value a knob has before tuning: the selected word or the number the file shows. */
export function shownValue(text: string): string {
  const sel = /\[([^\]]+)\]/.exec(text);
  return (sel ? sel[1] : text).trim();
}

/** Each knob's baseline value: the target's own setting, else the model's default. */
export function baselineOf(
  space: Space,
  ctx: SpaceContext & { policy?: string; sysfs?: Record<string, string | number> },
): string[] {
  const m = new Machine({ ...ctx, ramBytes: 64 * 1024 * 1024 });
  for (const [p, v] of Object.entries(ctx.sysfs ?? {})) {
    try {
      m.sysfsWrite(sysfsRelPath(p), String(v));
    } catch {
      // the run itself reports a bad header value
    }
  }
  return space.map((k) =>
    k.path === null ? (ctx.policy ?? 'v19') : shownValue(m.sysfsRead(k.path)),
  );
}

/** How far a point is from the baseline: per knob 0..1 (numbers by range, words 0 or 1), summed. */
export function distanceFromBaseline(
  space: Space,
  point: readonly number[],
  base: readonly string[],
): number {
  let d = 0;
  space.forEach((k, i) => {
    const v = k.values[point[i]];
    if (k.numeric && /^\d+$/.test(base[i])) {
      const nums = k.values.map(Number);
      const range = Math.max(...nums) - Math.min(...nums) || 1;
      d += Math.min(1, Math.abs(Number(v) - Number(base[i])) / range);
    } else d += v === base[i] ? 0 : 1;
  });
  return d;
}
