// Run one kernel-selftest case file for one geometry and variant, the way test/selftests.test.ts
// and `thpsim` report them: pass, fail (with the first failure's message) or skip (with why).

import type { CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import type { GeometryName } from '../mm/geometry.ts';
import { Machine } from '../sim/machine.ts';
import { ScenarioError } from './errors.ts';
import { resolveAndCheck } from './load.ts';
import { errMessage, runScenarioSession } from './run.ts';
import type { ScenarioSpec, Variant } from './schema.ts';

export interface CaseResult {
  name: string;
  source: string;
  geometry: GeometryName;
  variant: Variant;
  status: 'pass' | 'fail' | 'skip';
  /** Why it failed or was skipped. */
  reason?: string;
  /** Wall-clock milliseconds (not part of the model; for the table only). */
  ms: number;
}

export interface CaseOptions {
  /** Real lock semantics (misuse throws) instead of counting lock depth. */
  strictLocks?: boolean;
  /** Check the model's invariants after every event (slow); they are always checked at the end. */
  checkInvariants?: boolean;
  /** Wall clock for CaseResult.ms (tests pass performance.now). */
  now?: () => number;
  /** Run under this mTHP collapse policy instead of the file's (default v19). */
  collapsePolicy?: CollapsePolicy;
}

export function runCase(
  spec: ScenarioSpec,
  source: string,
  geometry: GeometryName,
  variant: Variant,
  opts: CaseOptions = {},
): CaseResult {
  const now = opts.now ?? (() => 0);
  const t0 = now();
  const base = { name: spec.name, source, geometry, variant };
  try {
    const resolved = resolveAndCheck(spec, source, { geometry, variant });
    const s = opts.collapsePolicy
      ? { ...resolved, collapse_policy: opts.collapsePolicy }
      : resolved;
    if (s.skip) return { ...base, status: 'skip', reason: s.skip, ms: now() - t0 };
    const session = runScenarioSession(s, {
      source,
      checkInvariants: opts.checkInvariants,
      createMachine: (cfg) => new Machine({ ...cfg, strictLocks: opts.strictLocks ?? false }),
    });
    try {
      session.machine.checkInvariants();
    } catch (e) {
      throw new ScenarioError(source, '', `invariant violated at the end: ${errMessage(e)}`);
    }
    return { ...base, status: 'pass', ms: now() - t0 };
  } catch (e) {
    const reason = e instanceof ScenarioError ? e.message : `internal error: ${errMessage(e)}`;
    return { ...base, status: 'fail', reason, ms: now() - t0 };
  }
}
