// Page contents, as the selftests' validate_memory checks them: what each page last had written,
// kept only when the scenario checks `intact` (ScenarioSession.tracking).

import { hex } from '../size.ts';
import { type ProcRef, type ScenarioSession, plural } from './session.ts';

/** Record what the pages at these addresses now hold (after writes; first reads of a file). */
export function observe(
  ss: ScenarioSession,
  p: ProcRef,
  addrs: Iterable<number>,
  write: boolean,
): void {
  if (!ss.tracking) return;
  const ps = ss.ps;
  let last = -1;
  for (const a of addrs) {
    const page = Math.floor(a / ps);
    if (page === last) continue;
    last = page;
    const v = ss.vmaAt(p, page * ps);
    if (!write && (!v || v.kind !== 'file' || p.shadow.has(page))) continue;
    const val = ss.machine.readPage(p.mm, page * ps);
    if (val === null) continue;
    p.shadow.set(page, val);
    if (write && v?.shared && v.object !== undefined) {
      // The other mappings of a shared object see the write too.
      const off = page * ps - v.start + v.pgoff;
      for (const q of ss.order) {
        if (q.exited) continue;
        for (const w of q.vmas.values()) {
          if (w === v || !w.shared || w.object !== v.object) continue;
          const a2 = w.start + off - w.pgoff;
          if (a2 >= w.start && a2 < w.start + w.length) q.shadow.set(a2 / ps, val);
        }
      }
    }
  }
}

/** Forget contents in a range: 0 for anonymous memory, unknown for a private file mapping. */
export function forget(
  ss: ScenarioSession,
  p: ProcRef,
  addr: number,
  length: number,
  how: 'zero' | 'unknown',
): void {
  if (!ss.tracking) return;
  const ps = ss.ps;
  const first = Math.floor(addr / ps);
  const last = Math.ceil((addr + length) / ps);
  for (let page = first; page < last; page++) {
    const v = ss.vmaAt(p, page * ps);
    if (v?.shared) continue; // the page cache keeps shared contents
    if (how === 'zero' && v?.kind === 'anon') p.shadow.delete(page);
    else p.shadow.set(page, Number.NaN);
  }
}

/** Compare the pages of a range with what was written; returns how many were compared. */
export function intact(
  ss: ScenarioSession,
  p: ProcRef,
  addr: number,
  length: number,
  i: number,
): number {
  const ps = ss.ps;
  let compared = 0;
  let bad = 0;
  let firstBad = '';
  for (let a = addr; a < addr + length; a += ps) {
    const page = a / ps;
    let expected = p.shadow.get(page);
    const v = ss.vmaAt(p, a);
    if (expected === undefined) {
      if (!v || v.kind === 'file') continue;
      expected = 0;
    }
    if (Number.isNaN(expected)) continue;
    const actual = ss.machine.readPage(p.mm, a);
    if (actual === null) continue;
    compared++;
    if (actual !== expected) {
      if (bad++ === 0)
        firstBad = `page ${(a - addr) / ps} (${hex(a)}) reads ${actual}, last written ${expected}`;
    }
  }
  if (bad > 0)
    throw ss.error(
      `${ss.at(i)}.intact`,
      `check ${p.name}: ${bad} of ${plural(compared, 'page')} differ from what was written; first: ${firstBad}`,
    );
  return compared;
}
