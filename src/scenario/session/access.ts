// Access ops: touch, write, populate, fault (faults over a range, with the page contents they
// leave), and madvise/swapout.

import { Rng } from '../../mm/rng.ts';
import { type AccessOutcome, type Advice, Errno, type Mm } from '../../sim/machine.ts';
import type { EventRecord } from '../run-result.ts';
import type { EventOf, MadviseResult, Pattern } from '../schema.ts';
import { forget, observe } from './contents.ts';
import type { OpHandlers } from './handler.ts';
import { type ProcRef, type ScenarioSession, type VmaRef, rangeOf } from './session.ts';

const OUTCOME_RANK: Record<AccessOutcome, number> = { hit: 0, fault: 1, oom: 2, sigsegv: 3 };

/**
 * Touch (read) or write [addr, addr + length) in units of `stride` bytes, all of them or by a
 * pattern; returns the worst outcome (sigsegv > oom > fault > hit) and how many accesses ran.
 */
export function access(
  ss: ScenarioSession,
  p: ProcRef,
  e: { stride?: number; pattern?: Pattern },
  write: boolean,
  addr: number,
  length: number,
  i: number,
): { outcome: AccessOutcome; accesses: number } {
  const machine = ss.machine;
  const mm = p.mm;
  const unit = e.stride ?? ss.ps;
  const units = Math.ceil(length / unit);
  const pattern: Pattern = e.pattern ?? 'all';
  const seq = function* (n: number) {
    for (let u = 0; u < n; u++) yield addr + u * unit;
  };
  if (pattern === 'all') {
    const outcome = machine.touch(mm, addr, length, write, e.stride);
    observe(ss, p, seq(units), write);
    return { outcome, accesses: units };
  }
  if ('first' in pattern) {
    const n = Math.min(pattern.first, units);
    const outcome = machine.touch(mm, addr, Math.min(n * unit, length), write, e.stride);
    observe(ss, p, seq(n), write);
    return { outcome, accesses: n };
  }
  let pick: (u: number) => boolean;
  if ('every' in pattern) {
    pick = (u) => u % pattern.every === 0;
  } else {
    const rng = new Rng(pattern.seed ?? (ss.config.seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    pick = () => rng.next() < pattern.random;
  }
  let outcome: AccessOutcome = 'hit';
  let accesses = 0;
  for (let u = 0; u < units; u++) {
    if (!pick(u)) continue;
    const r = machine.access(mm, addr + u * unit, write);
    observe(ss, p, [addr + u * unit], write);
    accesses++;
    if (OUTCOME_RANK[r] > OUTCOME_RANK[outcome]) outcome = r;
    if (r === 'sigsegv' || r === 'oom') break;
  }
  return { outcome, accesses };
}

/** ops->fault of the selftest: MADV_POPULATE_READ for a regular file, writes otherwise. */
export function fault(
  ss: ScenarioSession,
  p: ProcRef,
  v: VmaRef,
  addr: number,
  length: number,
  i: number,
) {
  const write = v.kind !== 'file';
  return {
    mode: write ? ('write' as const) : ('read' as const),
    ...access(ss, p, {}, write, addr, length, i),
  };
}

function madvise(
  ss: ScenarioSession,
  mm: Mm,
  addr: number,
  length: number,
  advice: Advice,
): MadviseResult | Errno['errno'] {
  try {
    ss.machine.madvise(mm, addr, length, advice);
    return 'ok';
  } catch (e) {
    if (e instanceof Errno) return e.errno;
    throw e;
  }
}

const touchOrWrite = (
  ss: ScenarioSession,
  e: EventOf<'touch' | 'write'>,
  i: number,
  rec: EventRecord,
): EventRecord => {
  const p = ss.procOf(e.proc, i);
  const r = rangeOf(ss.vmaOf(p, e.vma, i), e);
  return {
    ...rec,
    proc: e.proc,
    vma: e.vma,
    ...r,
    ...access(ss, p, e, e.op === 'write', r.addr, r.length, i),
  };
};

const madviseOrSwapout = (
  ss: ScenarioSession,
  e: EventOf<'madvise' | 'swapout'>,
  i: number,
  rec: EventRecord,
): EventRecord => {
  const p = ss.procOf(e.proc, i);
  const r = rangeOf(ss.vmaOf(p, e.vma, i), e);
  const advice: Advice = e.op === 'madvise' ? e.advice : 'pageout';
  const result = madvise(ss, p.mm, r.addr, r.length, advice);
  if (result === 'ok' && advice === 'dontneed') forget(ss, p, r.addr, r.length, 'zero');
  if (result === 'ok' && advice === 'free') forget(ss, p, r.addr, r.length, 'unknown');
  const expect = e.op === 'madvise' ? e.expect : undefined;
  if (expect !== undefined && expect !== result)
    throw ss.error(
      `${ss.at(i)}.expect`,
      `madvise ${advice} on ${e.proc}/${e.vma} returned ${result}, expected ${expect}`,
    );
  return {
    ...rec,
    proc: e.proc,
    vma: e.vma,
    ...r,
    advice,
    result,
    ...(expect !== undefined ? { expect } : {}),
  };
};

export const accessOps = {
  touch: touchOrWrite,
  write: touchOrWrite,
  populate(ss, e, i, rec) {
    const p = ss.procOf(e.proc, i);
    const r = rangeOf(ss.vmaOf(p, e.vma, i), e);
    return {
      ...rec,
      proc: e.proc,
      vma: e.vma,
      ...r,
      mode: e.mode,
      ...access(ss, p, {}, e.mode === 'write', r.addr, r.length, i),
    };
  },
  fault(ss, e, i, rec) {
    const p = ss.procOf(e.proc, i);
    const v = ss.vmaOf(p, e.vma, i);
    const r = rangeOf(v, e);
    return { ...rec, proc: e.proc, vma: e.vma, ...r, ...fault(ss, p, v, r.addr, r.length, i) };
  },
  madvise: madviseOrSwapout,
  swapout: madviseOrSwapout,
} satisfies Partial<OpHandlers>;
