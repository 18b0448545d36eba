// docs/page-table-walkers.md is enforced: every checked rule names at least one case, every case
// it names exists and still finds its counterexample, and every broken case is named by a rule.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CASES, caseById } from '../../src/check/cases/index.ts';
import { explore } from '../../src/check/index.ts';

const DOC = readFileSync(
  join(import.meta.dirname, '..', '..', 'docs', 'page-table-walkers.md'),
  'utf8',
);
const checked = DOC.split('## Checked rules')[1].split('## Rules not yet checked')[0];
const rules = checked
  .split('\n### ')
  .slice(1)
  .map((sec) => {
    const title = sec.split('\n')[0];
    const broken = /Broken by: ([^]*?)(?:\n\n|$)/.exec(sec)?.[1] ?? '';
    return { title, cases: [...broken.matchAll(/`([^`]+)`/g)].map((m) => m[1]) };
  });

describe('docs/page-table-walkers.md', () => {
  it('has checked rules, each broken by at least one existing case', () => {
    expect(rules.length).toBeGreaterThanOrEqual(5);
    for (const r of rules) {
      expect(r.cases.length, r.title).toBeGreaterThan(0);
      for (const id of r.cases) expect(caseById(id), `${r.title}: ${id}`).toBeDefined();
    }
  });

  it('covers every numbered rule of the walker spec (1 to 21)', () => {
    const numbers = new Set(
      rules.flatMap((r) =>
        [...r.title.replace(/:.*/, '').matchAll(/\d+/g)].map((m) => Number(m[0])),
      ),
    );
    expect([...Array(21)].map((_, i) => i + 1).filter((n) => !numbers.has(n))).toEqual([]);
  });

  it('names every broken case under some rule', () => {
    const named = new Set(rules.flatMap((r) => r.cases));
    for (const c of CASES) if (c.expect !== 'verified') expect(named.has(c.id), c.id).toBe(true);
  });

  it.each(rules.flatMap((r) => r.cases.map((id) => [r.title, id] as const)))(
    '%s: %s still finds its counterexample',
    { timeout: 120_000 },
    (_rule, id) => {
      const c = caseById(id)!;
      expect(c.expect).not.toBe('verified');
      const r = explore(c);
      expect(r.ok).toBe(false);
      expect(c.expect).toContain(r.counterexample!.property);
    },
  );
});
