// Work bounded by the input (issue 16): a repeat with an empty body still costs a step per
// iteration, so the iterations in all are capped as the events are; `whatif --ms` is capped at a
// day of simulated time, as a trace's sleep is.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../src/scenario/load.ts';
import { runScenarioSession } from '../src/scenario/run.ts';
import { captureModel } from '../src/snapshot/capture.ts';
import { encodeSnapshot } from '../src/snapshot/format.ts';
import { oneLineError, thpsim } from './support/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thpsim-work-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const scenario = (repeat: string) =>
  `version: 1\nname: rep\nram: 64MiB\nprocesses: [{name: a}]\ntimeline:\n  - { op: mmap, proc: a, vma: h, size: 2MiB }\n  - ${repeat}\n`;

describe('repeat', () => {
  it.each([
    '{ op: repeat, count: 1e15, do: [] }',
    '{ op: repeat, count: 1000000, do: [{ op: repeat, count: 1000000, do: [] }] }',
  ])('%s is refused quickly, naming the count', (rep) => {
    const t0 = performance.now();
    expect(() => parseScenario(scenario(rep), 'rep.yaml')).toThrow(
      /rep\.yaml: timeline\[1\].*count: .*more than 1000000 iterations/,
    );
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('a repeat within the bounds still unrolls', () => {
    const s = parseScenario(
      scenario('{ op: repeat, count: 1000, do: [{ op: write, proc: a, vma: h, length: 4KiB }] }'),
      'rep.yaml',
    );
    expect(s.timeline).toHaveLength(1001);
  });
});

describe('whatif --ms', () => {
  it('more than a day of simulated time is refused with one line', () => {
    const s = parseScenario(scenario('{ op: write, proc: a, vma: h }'), 'snap.yaml');
    const session = runScenarioSession(s);
    const mm = session.machine.kernel.mmByName('a')!;
    const file = join(tmp, 'a.snap');
    writeFileSync(file, encodeSnapshot(captureModel(session.machine, mm)));
    expect(oneLineError(thpsim(['whatif', '--snapshot', file, '--ms', '1e15']))).toMatch(
      /--ms: at most 86400000 \(a day of simulated time\)/,
    );
  });
});
