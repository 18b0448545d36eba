import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BalanceSink, LockTable } from '../src/mm/locks.ts';
import { L_PTE_LOCK, call, lock, runStep, trylock, unlock, type Step } from '../src/mm/step.ts';

// The engine protocol: events are numbers, sub-steps are generators run on the engine's stack.
function* leaf(x: number): Step<number> {
  yield lock(L_PTE_LOCK, x);
  yield unlock(L_PTE_LOCK, x);
  return x * 2;
}

function* thrower(): Step<number> {
  yield lock(L_PTE_LOCK, 7);
  throw new Error('boom');
}

describe('runStep', () => {
  it('returns sub-step results to the caller, by yield and by call()', () => {
    function* top(): Step<number> {
      const a = (yield leaf(3)) as number;
      const b = yield* call(leaf(4));
      const c = yield* leaf(5);
      return a + b + c;
    }
    const sink = new BalanceSink();
    expect(runStep(top(), sink)).toBe(24);
    expect(sink.depth).toBe(0);
  });

  it('unwinds an exception into the caller so its finally releases locks', () => {
    function* top(): Step<number> {
      yield lock(L_PTE_LOCK, 1);
      try {
        return (yield thrower()) as number;
      } finally {
        yield unlock(L_PTE_LOCK, 1);
      }
    }
    const locks = new LockTable();
    expect(() => runStep(top(), locks)).toThrow('boom');
    // The thrower's own lock stays held (it never released it); the caller's was released.
    expect(locks.heldBy(0)).toEqual(['acquire pte_lock#7']);
  });

  it('answers trylock through next()', () => {
    function* top(): Step<[unknown, unknown]> {
      const first = yield trylock(L_PTE_LOCK, 9);
      const second = yield trylock(L_PTE_LOCK, 9);
      return [first, second];
    }
    const locks = new LockTable();
    // The same thread asking twice would self-deadlock: the second trylock fails.
    expect(runStep(top(), locks)).toEqual([true, false]);
  });

  it('gives the same result for any mix of yield* and trampolined calls', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 1000 })), { maxLength: 30 }),
        (calls) => {
          function* top(): Step<number> {
            let sum = 0;
            for (const [tramp, x] of calls)
              sum += tramp ? ((yield leaf(x)) as number) : yield* leaf(x);
            return sum;
          }
          const sink = new BalanceSink();
          expect(runStep(top(), sink)).toBe(calls.reduce((s, [, x]) => s + 2 * x, 0));
          expect(sink.depth).toBe(0);
        },
      ),
    );
  });
});
