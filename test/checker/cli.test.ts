// `thpsim check`: exit status 0 when verified, 1 with a counterexample (printed as numbered steps,
// with a replay string that reproduces it), 2 for bad input; --json in the viewer's format.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseResult } from '../../src/report/input.ts';
import { oneLineError, thpsim } from '../support/cli.ts';

describe('thpsim check', () => {
  it('prints a counterexample as numbered steps and exits 1; the replay string reproduces it', () => {
    const r = thpsim(['check', 'R1-v5-fault']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('counterexample: "transient-none" violated');
    expect(r.stdout).toMatch(/^#1 +T0 khugepaged collapse/m);
    expect(r.stdout).toMatch(/write +pmd\[0x[0-9a-f]+\] +table\(\d+\) -> none/);
    expect(r.stdout).toMatch(/<- violates$/m);
    const replay = /replay: thpsim check R1-v5-fault --replay (\S+)/.exec(r.stdout)![1];
    const again = thpsim(['check', 'R1-v5-fault', '--replay', replay]);
    expect(again.status).toBe(1);
    expect(again.stdout).toContain('transient-none');
  });

  it('exits 0 for a verified case and reports the search', () => {
    const r = thpsim(['check', 'pte-level-dontneed']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verified within bounds: [\d,]+ schedules, [\d,]+ steps executed/);
    expect(r.stdout).toMatch(/naive interleavings ~1e[\d.]+/);
  });

  it('--json gives the counterexample in the viewer format, -o writes it atomically', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thpsim-check-'));
    const out = join(dir, 'trace.json');
    const r = thpsim(['check', 'pte-level-copy-before-flush', '--json', '-o', out]);
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(doc);
    expect(doc.format).toBe('thpsim-check');
    expect(doc.asExpected).toBe(true);
    const t = doc.counterexample;
    expect(t.format).toBe('thpsim-check-trace');
    expect(t.property).toBe('lost-write');
    expect(t.threads.map((x: { name: string }) => x.name)).toEqual([
      'khugepaged collapse A[0..16) order 4 (pte-level)',
      'user writes A[5] twice',
    ]);
    expect(t.violation.step).toBeLessThan(t.steps.length);
    expect(t.steps.some((s: { op: string }) => s.op === 'flush')).toBe(true);
    expect(readdirSync(dir)).toEqual(['trace.json']);
    // The viewer takes it as it is.
    const parsed = parseResult(readFileSync(out, 'utf8'), true);
    expect(parsed.kind).toBe('check');
  });

  it('lists the cases; bad input exits 2 with one line', () => {
    const l = thpsim(['check', '--list', '--json']);
    expect(l.status).toBe(0);
    expect(JSON.parse(l.stdout).map((c: { id: string }) => c.id)).toContain('R1-v19');
    expect(oneLineError(thpsim(['check', 'R99']), 2)).toMatch(/no checker case "R99"/);
    expect(oneLineError(thpsim(['check', 'R1-v5', '--replay', '7x3']), 2)).toMatch(
      /thread 7 does not exist/,
    );
    expect(oneLineError(thpsim(['check']), 2)).toMatch(/name a case/);
  });
});
