// Collapse explainer: one PMD range at one scan. The occupancy bitmap, then each step of the
// order choice replayed with the model's own order walk (which order at which offset, occupied
// PTEs against the threshold, the attempt and its result: success, soft or hard failure), then
// the folios the collapse made. Buttons and the arrow keys step through it.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type ExplainStep, replayExplain } from '../../report/explain.ts';
import type { AnyRun } from '../../report/metrics.ts';
import { bitmapWords, hexAddr, orderColor, orderLabel } from '../../report/model.ts';
import { arrowKeys } from './keys.ts';

function describe(s: ExplainStep, pageKb: number): string {
  const where = `order ${s.order} (${orderLabel(s.order, pageKb)}) at PTE ${s.offset}`;
  if (s.kind === 'test')
    return `${where}: ${s.count} occupied, needs ${s.need}: ${s.dense ? 'dense enough, try it' : 'too sparse, skip'}`;
  const how =
    s.outcome === 'success'
      ? 'collapsed'
      : s.outcome === 'soft'
        ? 'soft failure: try smaller orders here'
        : s.outcome === 'done'
          ? 'already mapped by a large folio'
          : 'hard failure: the walk stops';
  return `${where}: collapse_huge_page → ${s.result} (${how})`;
}

export function ExplainView({ run }: { run: AnyRun }) {
  const m = run.metrics!;
  const [idx, setIdx] = useState(0);
  const x = m.explain[idx];
  const replay = useMemo(() => (x ? replayExplain(x) : null), [x]);
  const [step, setStep] = useState(0);
  const n = replay ? replay.steps.length : 0;
  useEffect(() => setStep(0), [idx]);
  useEffect(() => arrowKeys((d) => setStep((s) => Math.max(0, Math.min(n, s + d)))), [n]);
  const list = useRef<HTMLDivElement>(null);
  useEffect(() => {
    list.current?.querySelector('.current')?.scrollIntoView({ block: 'nearest' });
  }, [step, idx]);
  if (!m.explain.length || !x || !replay)
    return (
      <p data-testid="explain-empty">
        No mTHP collapse in this run: the explainer shows khugepaged's order walk, which runs when
        orders below the PMD order are enabled for collapse (see examples/mthp-creep.yaml).
      </p>
    );
  const words = bitmapWords(x.bits);
  const occupied = (i: number) => ((words[i >>> 5] >>> (i & 31)) & 1) === 1;
  const cols = x.nr <= 512 ? 32 : x.nr <= 2048 ? 64 : 128;
  const cell = x.nr <= 512 ? 14 : x.nr <= 2048 ? 9 : 5;
  const rows = Math.ceil(x.nr / cols);
  // Steps 1..n are shown; step 0 is the bitmap alone; step n shows the resulting folios.
  const cur = step > 0 ? replay.steps[step - 1] : null;
  const done = step >= n;
  const folios = replay.steps
    .slice(0, step)
    .filter(
      (s): s is Extract<ExplainStep, { kind: 'attempt' }> =>
        s.kind === 'attempt' && s.outcome === 'success',
    );
  const inRegion = (i: number) =>
    cur !== null && i >= cur.offset && i < cur.offset + (1 << cur.order);
  const folioOf = (i: number) => folios.find((f) => i >= f.offset && i < f.offset + (1 << f.order));
  return (
    <div>
      <div class="flex">
        <label>
          PMD range at a scan{' '}
          <select
            data-testid="explain-select"
            value={idx}
            onChange={(e) => setIdx(Number((e.target as HTMLSelectElement).value))}
          >
            {m.explain.map((e, i) => (
              <option key={i} value={i}>
                t={e.t} ms {e.proc}/{e.vma ?? '?'} +
                {e.vmaOffset !== undefined ? hexAddr(e.vmaOffset) : hexAddr(e.addr)} (
                {e.attempts.length} attempts)
              </option>
            ))}
          </select>
        </label>
        <span class="muted">
          policy {x.policy}, max_ptes_none {x.maxPtesNone}
          {x.madvise ? ' (MADV_COLLAPSE)' : ' (khugepaged)'}, enabled orders{' '}
          {Array.from({ length: 32 }, (_, o) => o)
            .filter((o) => x.enabled & (1 << o))
            .reverse()
            .map((o) => orderLabel(o, m.pageKb))
            .join(' ')}
          , swap PTEs {x.unmapped}
        </span>
      </div>
      {replay.diverged && (
        <p class="step hard">Replay diverged from the trace: {replay.diverged}</p>
      )}
      {replay.chunked && (
        <p class="muted">
          This policy judges density per 4-PTE chunk; only the attempts are shown as steps.
        </p>
      )}
      <div class="flex">
        <div class="panel">
          <b>Occupancy bitmap</b>{' '}
          <span class="muted">
            ({words.length * 32 >= x.nr ? x.nr : 0} PTEs, {countBits(words, x.nr)} occupied)
          </span>
          <svg width={cols * cell + 2} height={rows * cell + 2} data-testid="bitmap">
            {Array.from({ length: x.nr }, (_, i) => {
              const f = folioOf(i);
              const fill = f
                ? orderColor(f.order, x.pmdOrder)
                : occupied(i)
                  ? '#37474f'
                  : '#eceff1';
              return (
                <rect
                  key={i}
                  x={(i % cols) * cell + 1}
                  y={Math.floor(i / cols) * cell + 1}
                  width={cell - 1}
                  height={cell - 1}
                  fill={fill}
                  stroke={inRegion(i) ? '#e0a800' : 'none'}
                  stroke-width={inRegion(i) ? 2 : 0}
                  data-testid="bit"
                  data-set={occupied(i) ? 1 : 0}
                />
              );
            })}
          </svg>
          <div class="muted">
            dark: occupied PTE; light: none or zero page; yellow frame: the region of the current
            step; colour: a folio made so far
          </div>
        </div>
        <div class="panel" style={{ minWidth: '460px' }}>
          <div class="flex">
            <button data-testid="step-first" onClick={() => setStep(0)}>
              first
            </button>
            <button data-testid="step-prev" onClick={() => setStep((s) => Math.max(0, s - 1))}>
              ◀ prev
            </button>
            <button data-testid="step-next" onClick={() => setStep((s) => Math.min(n, s + 1))}>
              next ▶
            </button>
            <button data-testid="step-last" onClick={() => setStep(n)}>
              last
            </button>
            <span data-testid="step-counter">
              step {step} / {n}
            </span>
          </div>
          <p data-testid="step-text" class="mono">
            {cur
              ? describe(cur, m.pageKb)
              : 'The bitmap of the scanned PMD range. Step through the order walk with → or “next”.'}
          </p>
          <div class="steps" data-testid="steps" ref={list}>
            {replay.steps.map((s, i) => (
              <div
                key={i}
                class={`step ${s.kind === 'attempt' ? s.outcome : ''}${i === step - 1 ? ' current' : ''}`}
                data-testid="step"
                data-kind={s.kind}
                onClick={() => setStep(i + 1)}
              >
                {i + 1}. {describe(s, m.pageKb)}
              </div>
            ))}
          </div>
          {done && (
            <div data-testid="explain-result">
              <b>Result: {replay.result}</b>.{' '}
              {replay.folios.length
                ? `Folios made: ${replay.folios.map(([o, ord]) => `${orderLabel(ord, m.pageKb)} at PTE ${o}`).join(', ')}`
                : 'No folio was made.'}
            </div>
          )}
        </div>
      </div>
    </div>
  );
}

function countBits(words: Uint32Array, nr: number): number {
  let c = 0;
  for (let i = 0; i < nr; i++) c += (words[i >>> 5] >>> (i & 31)) & 1;
  return c;
}
