// Benchmark of the interleaving checker (see bench/README.md): for every required case, the time
// to the first counterexample (broken variants) or to verify within the bounds (fixed ones), the
// schedules explored per second, and the reduction against naive enumeration of interleavings.
//
//   npm run bench:check          every case once, a minute or two

import Table from 'cli-table3';
import { CASES } from '../src/check/cases/index.ts';
import { explore } from '../src/check/index.ts';
import { machineInfo, writeResults } from './common.ts';

const rows = CASES.map((c) => {
  const r = explore(c);
  return {
    case: c.id,
    expected: c.expect === 'verified' ? 'verified' : 'counterexample',
    result: r.ok ? 'verified' : `counterexample (${r.counterexample!.property})`,
    seconds: r.ms / 1000,
    schedules: r.executions,
    steps: r.events,
    schedulesPerSecond: r.executions / (r.ms / 1000),
    preemptionBound: r.bounds.preemptions,
    naiveLog10: r.naiveLog10,
    exploredOverNaiveLog10: Math.log10(r.executions) - r.naiveLog10,
    incomplete: r.incomplete,
  };
});

const t = new Table({
  head: ['case', 'result', 'time', 'schedules', 'schedules/s', 'naive', 'explored / naive'],
  colAligns: ['left', 'left', 'right', 'right', 'right', 'right', 'right'],
  style: { head: [], border: [] },
});
for (const r of rows)
  t.push([
    r.case,
    r.result,
    `${r.seconds.toFixed(2)} s`,
    r.schedules.toLocaleString('en-US'),
    Math.round(r.schedulesPerSecond).toLocaleString('en-US'),
    `1e${r.naiveLog10.toFixed(1)}`,
    `1e${r.exploredOverNaiveLog10.toFixed(1)}`,
  ]);
console.log(t.toString());
const r1 = rows.find((r) => r.case === 'R1-v5')!;
const slowestFixed = Math.max(
  ...rows.filter((r) => r.expected === 'verified').map((r) => r.seconds),
);
console.log(
  `targets: R1's counterexample ${r1.seconds.toFixed(2)} s (< 1 s: ${r1.seconds < 1 ? 'met' : 'MISSED'}); slowest fixed variant ${slowestFixed.toFixed(1)} s (< 60 s: ${slowestFixed < 60 ? 'met' : 'MISSED'})`,
);
const date = new Date().toISOString();
const file = writeResults('check', 'cases', 'check-latest.json', date, {
  bench: 'thpsim-check',
  date,
  machine: machineInfo(),
  rows,
});
console.log(`results in ${file}`);
