// Kernel function names for trace lines: a generator object's prototype is its function's
// `prototype`, so naming a step function lets a suspended step be named. The walker registry
// (src/check/walkers/registry.ts) names every step function once.

const names = new WeakMap<object, string>();

/** Name a step function (a generator function) for traces. */
export function nameStep(fn: (...args: never[]) => unknown, name: string): void {
  const proto = (fn as { prototype?: object }).prototype;
  if (!proto) throw new Error(`nameStep: ${name} is not a generator function`);
  const had = names.get(proto);
  if (had !== undefined && had !== name)
    throw new Error(`nameStep: one step function named both ${had} and ${name}`);
  names.set(proto, name);
}

/** The registered name of a generator object, if its function was named. */
export function stepName(gen: object): string | undefined {
  return names.get(Object.getPrototypeOf(gen) as object);
}
