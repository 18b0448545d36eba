// Properties as data (always / sometimes / eventually): a case's own properties are judged with the
// model's, a `sometimes` that never holds makes the verification vacuous (a failure, exit 1), one
// that holds is reported with the schedule that first reached it, and text and --json show both.
import { describe, expect, it } from 'vitest';
import { R5_KERNEL } from '../../src/check/cases/r05.ts';
import {
  type CheckCase,
  MODEL_PROPERTIES,
  PROPERTIES,
  always,
  eventually,
  explore,
  sometimes,
} from '../../src/check/index.ts';
import { holding, stepWhile } from '../../src/check/windows.ts';
import { runChecks } from '../../src/cli/check-command.ts';
import { L_PMD_LOCK } from '../../src/mm/step.ts';

/** R5's kernel form (NUMA hinting T0, MADV_DONTNEED T1) with these properties of its own. */
function r5(own: CheckCase['own'], extra: Partial<CheckCase> = {}): CheckCase {
  return { ...R5_KERNEL, id: 'R5-test', own, ...extra };
}

/** The zap ran while NUMA hinting held the PMD lock (change_huge_pmd's window). */
const WINDOW = stepWhile(
  'zap-while-numa-holds-pmd-lock',
  'MADV_DONTNEED took a step while NUMA hinting held the PMD lock',
  1,
  holding(0, L_PMD_LOCK),
);

function cli(cases: CheckCase[], json = false) {
  let out = '';
  const status = runChecks(
    { out: (s) => (out += s), err: (s) => (out += s), color: false },
    cases,
    { json },
  );
  return { status, out };
}

describe('properties as data', () => {
  it('the model defines its properties as always-properties with a name and a text', () => {
    expect(MODEL_PROPERTIES.map((p) => p.name)).toEqual([...PROPERTIES]);
    for (const p of MODEL_PROPERTIES) {
      expect(p.kind).toBe('always');
      expect(p.text.length).toBeGreaterThan(10);
    }
  });

  it('a sometimes that holds is reached, with a schedule that reaches it again', () => {
    const c = r5([WINDOW]);
    const r = explore(c);
    expect(r.verdict).toBe('verified');
    expect(r.ok).toBe(true);
    const s = r.sometimes[0];
    expect(s).toMatchObject({ name: WINDOW.name, text: WINDOW.text, reached: true });
    // The last step of the schedule is T1's, and replaying the schedule reaches the window.
    expect(s.schedule!.at(-1)).toBe(1);
    expect(explore(c, { replay: s.schedule! }).sometimes[0].reached).toBe(true);
  });

  it('a sometimes that can never hold makes the verification vacuous', () => {
    const r = explore(r5([sometimes('never', 'a condition that never holds', () => false)]));
    expect(r.verdict).toBe('vacuous');
    expect(r.ok).toBe(false);
    expect(r.counterexample).toBeUndefined();
    expect(r.sometimes).toEqual([
      { name: 'never', text: 'a condition that never holds', reached: false },
    ]);
  });

  it('a window the bounds cannot reach is vacuous too (no preemption: no zap inside the lock)', () => {
    const r = explore(r5([WINDOW], { maxPreemptions: 0 }));
    expect(r.verdict).toBe('vacuous');
    expect(r.sometimes[0].reached).toBe(false);
    // ... and with one preemption it is reached.
    expect(explore(r5([WINDOW], { maxPreemptions: 1 })).sometimes[0].reached).toBe(true);
  });

  it("a case's own always and eventually are checked with the model's", () => {
    const a = explore(
      r5([
        always(
          'no-zap',
          'MADV_DONTNEED never runs',
          (v) => v.at === 'end' || v.thread !== 1,
          (v) => `T1 ran ${v.fn}`,
        ),
      ]),
    );
    expect(a.verdict).toBe('counterexample');
    expect(a.counterexample).toMatchObject({
      property: 'no-zap',
      text: 'MADV_DONTNEED never runs',
    });
    expect(a.counterexample!.message).toMatch(/^T1 ran /);
    const never = explore(r5([eventually('never-e', 'something that never happens', () => false)]));
    expect(never.counterexample?.property).toBe('never-e');
    expect(never.counterexample?.message).toMatch(/ended without: something that never happens/);
    const ends = explore(r5([eventually('ends', 'every thread finishes', (v) => v.at === 'end')]));
    expect(ends.verdict).toBe('verified');
  });

  it('a property defined twice is refused', () => {
    expect(() => explore(r5([WINDOW, WINDOW]))).toThrow(/defined twice/);
  });

  it('text and --json show the sometimes reached; a vacuous case exits 1', () => {
    const ok = cli([r5([WINDOW])]);
    expect(ok.status).toBe(0);
    expect(ok.out).toMatch(
      /sometimes "zap-while-numa-holds-pmd-lock" reached: MADV_DONTNEED took a step while NUMA hinting held the PMD lock \(first by: thpsim check R5-test --replay \S+\)/,
    );
    const doc = JSON.parse(cli([r5([WINDOW])], true).out);
    expect(doc.verdict).toBe('verified');
    expect(doc.sometimes).toEqual([
      {
        name: WINDOW.name,
        text: WINDOW.text,
        reached: true,
        schedule: expect.stringMatching(/^\d+x\d+/),
      },
    ]);
    const vac = cli([r5([WINDOW], { maxPreemptions: 0 })]);
    expect(vac.status).toBe(1);
    expect(vac.out).toMatch(/^vacuous: no counterexample, but a race window was never reached/m);
    expect(vac.out).toContain('sometimes "zap-while-numa-holds-pmd-lock" NOT reached');
    const vj = JSON.parse(cli([r5([WINDOW], { maxPreemptions: 0 })], true).out);
    expect(vj).toMatchObject({ verdict: 'vacuous', ok: false, asExpected: false });
    expect(vj.sometimes[0].reached).toBe(false);
  });
});
