// Counterexample traces: one line per step (thread, kernel function, what it did to which lock
// or entry, the locks it holds afterwards), as text and as the JSON the viewer reads
// (format 'thpsim-check-trace').

import type { Kernel } from '../mm/kernel.ts';
import type { LockTable } from '../mm/locks.ts';
import { E_TYPE_MASK } from '../mm/pgtable.ts';
import {
  CLASS_NAMES,
  OP_ACQUIRE,
  OP_DOWNGRADE,
  OP_READ,
  OP_RELEASE,
  OP_TRYLOCK,
  OP_WRITE,
  S_IPI_SYNC,
  S_PGD_ENTRY,
  S_RCU_SYNC,
  S_PMD_ENTRY,
  S_PSC,
  S_PTE_ENTRY,
  S_PUD_ENTRY,
  S_TLB,
  evClass,
  evId,
  evOp,
} from '../mm/step.ts';
import type { CheckStep, CheckTrace } from '../report/model.ts';
import { describeEntry } from './properties.ts';

/** One step of a counterexample: the viewer's CheckStep (src/report/model.ts holds the format). */
export type TraceStep = CheckStep;

const ENTRY_KIND: Record<number, 'pgd' | 'pud' | 'pmd' | 'pte'> = {
  [S_PGD_ENTRY]: 'pgd',
  [S_PUD_ENTRY]: 'pud',
  [S_PMD_ENTRY]: 'pmd',
  [S_PTE_ENTRY]: 'pte',
};

const TYPE_NAMES = ['none', 'table', 'present', 'swap', 'migration', 'marker', 'invalid', '?'];

function entryValue(k: Kernel, cls: number, loc: number): string {
  const level = [k.pt.pgd, k.pt.pud, k.pt.pmd, k.pt.pte][cls - S_PGD_ENTRY];
  const type = level.bits[loc] & E_TYPE_MASK;
  const name = TYPE_NAMES[type];
  if (type === 0) return name;
  return `${name}(${level.val[loc]})`;
}

/** The step for event e of thread t, before the block after it runs (after-values pending). */
export function traceStep(
  k: Kernel,
  _locks: LockTable,
  index: number,
  thread: number,
  fn: string,
  e: number,
  answer: unknown,
): TraceStep {
  const cls = evClass(e);
  const op = evOp(e);
  const id = evId(e);
  const opName: TraceStep['op'] =
    (cls === S_TLB || cls === S_PSC) && op === OP_WRITE
      ? 'flush'
      : cls === S_IPI_SYNC || cls === S_RCU_SYNC
        ? 'ipi'
        : op === OP_ACQUIRE
          ? 'acquire'
          : op === OP_RELEASE
            ? 'release'
            : op === OP_TRYLOCK
              ? 'trylock'
              : op === OP_DOWNGRADE
                ? 'downgrade'
                : op === OP_READ
                  ? 'read'
                  : 'write';
  const s: TraceStep = {
    index,
    thread,
    fn,
    op: opName,
    object: `${CLASS_NAMES[cls] ?? cls}#${id}`,
    locksHeld: [],
  };
  const kind = ENTRY_KIND[cls];
  if (kind) {
    const span = kind === 'pmd' || kind === 'pte' ? describeEntry(k, cls, id) : `${kind}@${id}`;
    const m = /\[0x([0-9a-f]+)\]/.exec(span);
    const value = entryValue(k, cls, id);
    s.object = span;
    s.entry = { kind, addr: m ? parseInt(m[1], 16) : -1, before: value, after: value };
  }
  if (op === OP_TRYLOCK) s.note = answer ? 'succeeded' : 'failed';
  return s;
}

/** Fill in what the step's block left in its entry. */
export function finishStep(k: Kernel, s: TraceStep, e: number, locks: LockTable): void {
  s.locksHeld = locks.heldBy(s.thread);
  if (s.entry) s.entry.after = entryValue(k, evClass(e), evId(e));
}

/** The JSON form the viewer reads (CheckTrace, defined with the viewer's other inputs). */
export function checkTrace(
  caseId: string,
  threads: string[],
  steps: TraceStep[],
  property: string,
  message: string,
  violationStep: number,
): CheckTrace {
  return {
    format: 'thpsim-check-trace',
    version: 1,
    case: caseId,
    property,
    message,
    threads: threads.map((name, id) => ({ id, name })),
    steps,
    violation: { step: violationStep, property, message },
  };
}

/** Numbered lines: "#12  T1 collapse_huge_page   write  pmd[0x7fff...]  table(5) -> none". */
export function formatTrace(threads: string[], steps: TraceStep[], violationStep: number): string {
  const fnWidth = Math.max(...steps.map((s) => s.fn.length), 8);
  const thWidth = Math.max(...threads.map((t, i) => `T${i} ${t}`.length), 4);
  const lines = steps.map((s) => {
    const what =
      s.entry && s.entry.before !== s.entry.after
        ? `${s.entry.before} -> ${s.entry.after}`
        : s.entry
          ? s.entry.before
          : (s.note ?? '');
    const mark = s.index === violationStep ? '  <- violates' : '';
    return `#${String(s.index + 1).padEnd(4)} ${`T${s.thread} ${threads[s.thread]}`.padEnd(thWidth)}  ${s.fn.padEnd(fnWidth)}  ${s.op.padEnd(8)} ${s.object}${what ? `  ${what}` : ''}${mark}`;
  });
  return lines.join('\n');
}
