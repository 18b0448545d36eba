// World restore: the explorer builds a case's world once and puts it back before each schedule.
// Each case must explore exactly as it did when the world was rebuilt per schedule.

import { describe, expect, it } from 'vitest';
import { CASES, caseById } from '../../src/check/cases/index.ts';
import { explore } from '../../src/check/index.ts';
import { GraphSnapshot } from '../../src/check/snapshot.ts';
import { ThreadRun } from '../../src/check/thread.ts';

/** What an exploration found, without timings. */
function outcome(id: string, rebuild: boolean) {
  const r = explore(caseById(id)!, { rebuild, maxExecutions: 80 });
  return {
    ok: r.ok,
    executions: r.executions,
    events: r.events,
    maxDepth: r.maxDepth,
    property: r.counterexample?.property,
    schedule: r.counterexample?.schedule,
    steps: r.counterexample?.steps.length,
  };
}

describe('world restore', () => {
  it.each(CASES.map((c) => c.id))('%s explores as with a rebuilt world', (id) => {
    expect(outcome(id, false)).toEqual(outcome(id, true));
  });

  it('puts typed arrays, Maps, Sets, arrays and properties back, keeping identity', () => {
    const o = {
      a: new Int32Array([1, 2, 3]),
      m: new Map([[1, { x: 1 }]]),
      s: new Set([1, 2]),
      l: [1, 2],
      n: { y: 2 } as { y: number; z?: number },
    };
    const inner = o.m.get(1)!;
    const snap = new GraphSnapshot(o);
    o.a[0] = 9;
    o.a = new Int32Array(8);
    o.m.set(2, { x: 5 });
    inner.x = 7;
    o.s.delete(1);
    o.l.push(3);
    o.n.y = 4;
    o.n.z = 1;
    snap.restore();
    expect([...o.a]).toEqual([1, 2, 3]);
    expect([...o.m.keys()]).toEqual([1]);
    expect(o.m.get(1)).toBe(inner);
    expect(inner.x).toBe(1);
    expect([...o.s]).toEqual([1, 2]);
    expect(o.l).toEqual([1, 2]);
    expect(o.n).toEqual({ y: 2 });
  });

  it('a world run to the end and restored is the world setup() builds', () => {
    const c = caseById('R1-v19')!;
    const w = c.setup();
    const snap = new GraphSnapshot(w);
    const fresh = c.setup();
    const t = c.threads.map((s, i) => new ThreadRun(i, s.run(w, i)));
    for (const th of t) {
      th.advance();
      while (!th.done) th.advance(true);
    }
    expect(w.k.stats).not.toEqual(fresh.k.stats);
    snap.restore();
    expect(w.k.stats).toEqual(fresh.k.stats);
    expect(w.k.folios).toEqual(fresh.k.folios);
    expect(w.k.pt).toEqual(fresh.k.pt);
    expect(w.k.buddy).toEqual(fresh.k.buddy);
  });
});
