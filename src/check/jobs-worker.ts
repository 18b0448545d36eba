// A worker process of `thpsim check --jobs N` (bin/check-worker.js starts it): it builds the
// case once, then explores the prefix units the parent sends, one at a time, and sends back
// what each found.

import { loadCaseFile } from './case-file.ts';
import { caseById } from './cases/index.ts';
import type { CheckCase } from './explore.ts';
import './index.ts';
import { type CaseRef, type PrefixUnit, type UnitOptions, exploreUnit } from './jobs.ts';
import { Runner } from './explore.ts';

let runner: Runner | null = null;
let maxExecutions = 200_000;

type Message =
  | { type: 'init'; ref: CaseRef; options: UnitOptions }
  | { type: 'unit'; index: number; unit: PrefixUnit };

process.on('message', (m: Message) => {
  if (m.type === 'init') {
    const c: CheckCase | undefined = 'id' in m.ref ? caseById(m.ref.id) : loadCaseFile(m.ref.file);
    if (!c) throw new Error(`check worker: no case ${JSON.stringify(m.ref)}`);
    runner = new Runner(c, m.options);
    maxExecutions = m.options.maxExecutions ?? maxExecutions;
    return;
  }
  try {
    const result = exploreUnit(runner!, m.unit, maxExecutions);
    process.send!({ index: m.index, result });
  } catch (e) {
    process.send!({ index: m.index, error: e instanceof Error ? e.message : String(e) });
  }
});
// Exit with the parent.
process.on('disconnect', () => process.exit(0));
