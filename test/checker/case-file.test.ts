// Checker case files: the example reproduces the built-in case, a kernel form verifies, and bad
// files are rejected with the file and field named, never a crash.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { caseFromInput, loadCaseFile } from '../../src/check/case-file.ts';
import { explore } from '../../src/check/index.ts';
import { ScenarioError } from '../../src/scenario/errors.ts';
import { parseText } from '../../src/scenario/load.ts';
import { oneLineError, thpsim } from '../support/cli.ts';

const base = {
  version: 1,
  kind: 'check',
  name: 'x',
  world: { shared: true, written: [0, 1, 2, 3, 256] },
  threads: [
    { walker: 'collapse', at: 0, order: 2 },
    { walker: 'fault', page: 300 },
  ],
  expect: 'verified',
};

describe('checker case files', () => {
  it('the example finds the transient none the built-in R1-v5-fault finds', () => {
    const c = loadCaseFile(
      join(import.meta.dirname, '..', '..', 'examples', 'check', 'r1-v5-fault.yaml'),
    );
    const r = explore(c);
    expect(r.counterexample?.property).toBe('transient-none');
    expect(r.counterexample?.message).toMatch(
      /fault in B \(handle_mm_fault\) saw pmd\[0x[0-9a-f]+\] none/,
    );
  });

  it('the same race without the bugs is verified (the collapse refuses the shared table)', () => {
    const r = explore(caseFromInput(base, 'x.yaml'));
    expect(r.ok).toBe(true);
    expect(r.executions).toBeGreaterThan(1);
  });

  it('names the file and field of a mistake', () => {
    const bad = (patch: object, field: RegExp) => {
      const e = (() => {
        try {
          caseFromInput({ ...base, ...patch }, 'f.yaml');
        } catch (err) {
          return err;
        }
        return null;
      })();
      expect(e).toBeInstanceOf(ScenarioError);
      expect((e as Error).message).toMatch(field);
    };
    bad({ threads: [{ walker: 'teleport' }] }, /^f\.yaml: threads\[0\]/);
    bad({ world: { bugs: ['no-such-bug'] } }, /^f\.yaml: world\.bugs\[0\]/);
    bad({ threads: [{ walker: 'fault', page: 600 }] }, /threads\[0\]\.page/);
    bad({ threads: [{ walker: 'migrate', page: 9 }] }, /threads\[0\]\.page: page 9 is not written/);
    bad(
      { world: { shared: false }, threads: [{ walker: 'fault', page: 3, vma: 'B' }] },
      /threads\[0\]\.vma: no VMA "B" in the world \(it has A\)/,
    );
    bad({ version: 2 }, /^f\.yaml: version/);
  });

  it('an alias to no anchor is a YAML error, not a crash', () => {
    expect(() => parseText('*-\n', 'a.yaml')).toThrow(ScenarioError);
    expect(() => parseText('*-\n', 'a.yaml')).toThrow(/a\.yaml: YAML error: Unresolved alias/);
  });

  it('never crashes on arbitrary input: accepted, or a ScenarioError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (text) => {
          try {
            caseFromInput(parseText(text, 'fuzz.yaml'), 'fuzz.yaml');
          } catch (e) {
            expect(e).toBeInstanceOf(ScenarioError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('thpsim check takes a file; a broken one is one line with exit status 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thpsim-case-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'version: 1\nkind: check\nname: b\nworld: {}\nthreads: [{ walker: fault }]\nexpect: verified\n',
    );
    expect(oneLineError(thpsim(['check', bad]), 2)).toMatch(
      /bad\.yaml: threads\[0\]\.page: required field is missing/,
    );
    expect(oneLineError(thpsim(['check', join(dir, 'none.yaml')]), 2)).toMatch(/cannot read/);
    const r = thpsim(['check', 'examples/check/r1-v5-fault.yaml']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('"transient-none" violated');
    // The replay hint names the file, which is what reruns it.
    expect(r.stdout).toMatch(/replay: thpsim check examples\/check\/r1-v5-fault\.yaml --replay \S+/);
  });
});
