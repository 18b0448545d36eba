// Run one sweep cell with the one model, wherever it runs (this thread, a worker thread, a
// BullMQ worker on another host): the result is JSON text, so every transport carries the same
// bytes and a sweep's output is byte-identical however its cells were spread.

import { mkdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWithMetrics } from '../report/collect.ts';
import { type CompareVariant, applyVariant, summarise } from '../report/compare.ts';
import { runScenario } from '../scenario/run.ts';
import type { Scenario } from '../scenario/schema.ts';
import { decodeSnapshot } from '../snapshot/format.ts';
import { whatif } from '../snapshot/whatif.ts';
import { objectivesOfReplay, objectivesOfRun, objectivesOfWhatif } from '../tune/objectives.ts';
import { workloadOutcome } from '../workload/outcome.ts';
import type { Cell, SweepInput } from './cell.ts';
import { runTraceFile } from './trace-input.ts';

/** A cell's result, before it becomes JSON. */
function cellValue(cell: Cell, input: SweepInput): unknown {
  if (input.hash !== cell.input)
    throw new Error(`cell wants input ${cell.input}, got ${input.hash}`);
  const st = cell.settings;
  if (input.kind === 'scenario') {
    const base = JSON.parse(input.text) as Scenario;
    const s0: Scenario = {
      ...base,
      ...(st.profile ? { profile: st.profile } : {}),
      ...(cell.seed !== undefined ? { seed: cell.seed } : {}),
    };
    const v: CompareVariant = { policy: st.policy ?? s0.collapse_policy ?? 'v19', knobs: st.knobs };
    const s = applyVariant(s0, v);
    switch (cell.kind) {
      case 'compare': {
        const r = runScenario(s);
        return { config: r.config, run: summarise(r, v) };
      }
      case 'workload': {
        const r = runScenario(s);
        return {
          pageKb: r.config.pageSize / 1024,
          outcome: { ...workloadOutcome(r), ...(st.label ? { label: st.label } : {}) },
        };
      }
      case 'tune':
        return objectivesOfRun(runWithMetrics(s));
    }
  }
  if (cell.kind !== 'tune') throw new Error(`a ${cell.kind} cell needs a scenario input`);
  if (input.kind === 'snapshot') {
    const snap = decodeSnapshot(Buffer.from(input.text, 'base64'));
    const w = whatif(snap, {
      sets: st.knobs,
      ...(st.policy ? { policy: st.policy } : {}),
      ...(st.profile ? { profile: st.profile } : {}),
      ...(cell.ms !== undefined ? { ms: cell.ms } : {}),
    });
    return objectivesOfWhatif(w, snap.header.pageSize);
  }
  return objectivesOfReplay(runTraceFile(traceFile(input), input.format ?? 'jsonl', st));
}

/** A trace input (base64) as a file, as the trace readers read files: one per hash, made once. */
function traceFile(input: SweepInput): string {
  const dir = join(tmpdir(), 'thpsim-inputs');
  const file = join(dir, `${input.hash}.trace`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, Buffer.from(input.text, 'base64'));
    renameSync(tmp, file);
  }
  return file;
}

/** Run a cell on its input; returns the result as JSON text (throws on a bad cell or input). */
export function runCell(cell: Cell, input: SweepInput): string {
  return JSON.stringify(cellValue(cell, input));
}
