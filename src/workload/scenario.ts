// Workload generators as scenarios: "workload:NAME[:k=v,...]" wherever a scenario file goes.

import { ScenarioError } from '../scenario/errors.ts';
import { validateScenario } from '../scenario/load.ts';
import type { ResolveOptions } from '../scenario/resolve.ts';
import type { Scenario } from '../scenario/schema.ts';
import { WorkloadError, generate, parseWorkloadRef } from './generators.ts';

/** The validated scenario of a workload reference, or null when arg is not one. */
export function workloadScenario(arg: string, opts: ResolveOptions = {}): Scenario | null {
  let ref;
  try {
    ref = parseWorkloadRef(arg);
  } catch (e) {
    if (e instanceof WorkloadError) throw new ScenarioError(arg, '', e.message);
    throw e;
  }
  if (!ref) return null;
  return buildWorkload(ref.name, ref.params, arg, opts);
}

/** Generate and validate; a bad parameter is a ScenarioError naming the workload. */
export function buildWorkload(
  name: string,
  params: Record<string, string>,
  source = `workload:${name}`,
  opts: ResolveOptions = {},
): Scenario {
  let input;
  try {
    input = generate(name, params);
  } catch (e) {
    if (e instanceof WorkloadError) throw new ScenarioError(source, '', e.message);
    throw e;
  }
  return validateScenario(input, source, opts);
}
