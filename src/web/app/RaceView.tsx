// Race trace: an interleaving checker counterexample step by step. One column per thread; each
// step shows the function, the operation and its object, the page-table entry it changed and the
// locks the thread holds after it; the step that breaks the property is highlighted. Buttons and
// the arrow keys move the current step; the panel shows the entries and locks at that point.

import { useEffect, useState } from 'preact/hooks';
import type { CheckStep, CheckTrace } from '../../report/model.ts';
import { hexAddr } from '../../report/model.ts';
import { arrowKeys } from './keys.ts';

function Cell({ s }: { s: CheckStep }) {
  return (
    <div>
      <div class="mono">
        <b>{s.fn}</b>
      </div>
      <div>
        {s.op} <span class="mono">{s.object}</span>
      </div>
      {s.entry && (
        <div class="mono" data-testid="entry">
          {s.entry.kind}[{hexAddr(s.entry.addr)}]: {s.entry.before} → {s.entry.after}
        </div>
      )}
      {s.note && <div class="muted">{s.note}</div>}
    </div>
  );
}

export function RaceView({ trace }: { trace: CheckTrace }) {
  const n = trace.steps.length;
  const [cur, setCur] = useState(0);
  useEffect(() => arrowKeys((d) => setCur((c) => Math.max(0, Math.min(n - 1, c + d)))), [n]);
  const upto = trace.steps.slice(0, cur + 1);
  // The page-table entries as of the current step, and each thread's locks.
  const entries = new Map<string, { kind: string; addr: number; value: string; step: number }>();
  for (const s of upto)
    if (s.entry)
      entries.set(`${s.entry.kind}:${s.entry.addr}`, {
        kind: s.entry.kind,
        addr: s.entry.addr,
        value: s.entry.after,
        step: s.index,
      });
  const locks = new Map<number, string[]>();
  for (const s of upto) locks.set(s.thread, s.locksHeld);
  const current = trace.steps[cur];
  return (
    <div>
      <h2 style={{ fontSize: '15px' }}>
        {trace.case}: {trace.property}
      </h2>
      <p>{trace.message}</p>
      <p class="step hard" data-testid="violation">
        Step {trace.violation.step} breaks {trace.violation.property}: {trace.violation.message}
      </p>
      <div class="flex">
        <button data-testid="race-prev" onClick={() => setCur((c) => Math.max(0, c - 1))}>
          ◀ prev
        </button>
        <button data-testid="race-next" onClick={() => setCur((c) => Math.min(n - 1, c + 1))}>
          next ▶
        </button>
        <button
          data-testid="race-violation"
          onClick={() =>
            setCur(
              Math.max(
                0,
                trace.steps.findIndex((s) => s.index === trace.violation.step),
              ),
            )
          }
        >
          go to the violation
        </button>
        <span data-testid="race-counter">
          step {current?.index ?? '-'} ({cur + 1} / {n})
        </span>
      </div>
      <div class="flex">
        <table class="race" data-testid="race-table">
          <thead>
            <tr>
              <th>#</th>
              {trace.threads.map((t) => (
                <th key={t.id} data-testid="thread">
                  {t.name}
                </th>
              ))}
              <th>locks held after</th>
            </tr>
          </thead>
          <tbody>
            {trace.steps.map((s, i) => (
              <tr
                key={s.index}
                class={`${s.index === trace.violation.step ? 'violation' : ''}${i === cur ? ' current' : ''}`}
                data-testid="race-step"
                data-index={s.index}
                data-violation={s.index === trace.violation.step ? 1 : 0}
                onClick={() => setCur(i)}
              >
                <td>{s.index}</td>
                {trace.threads.map((t) => (
                  <td key={t.id}>{t.id === s.thread ? <Cell s={s} /> : null}</td>
                ))}
                <td class="mono">{s.locksHeld.join(', ') || '-'}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <div class="panel" style={{ minWidth: '300px' }} data-testid="race-state">
          <b>At step {current?.index}</b>
          <div>Page-table entries touched so far:</div>
          <ul class="mono">
            {[...entries.values()].map((e) => (
              <li key={`${e.kind}:${e.addr}`}>
                {e.kind}[{hexAddr(e.addr)}] = {e.value} <span class="muted">(step {e.step})</span>
              </li>
            ))}
          </ul>
          <div>Locks held:</div>
          <ul class="mono">
            {trace.threads.map((t) => (
              <li key={t.id}>
                {t.name}: {(locks.get(t.id) ?? []).join(', ') || 'none'}
              </li>
            ))}
          </ul>
        </div>
      </div>
    </div>
  );
}
