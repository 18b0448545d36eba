// Address-space map: every VMA of every process with its PMD ranges coloured by the largest folio
// order mapping them; a click on a PMD shows its PTEs (present, none, swap, zero page, shared,
// young) and the folios they belong to.

import { useMemo, useState } from 'preact/hooks';
import type { AnyRun } from '../../report/metrics.ts';
import {
  COLOR_NONE,
  type PmdMap,
  PTE_NONE,
  PTE_OTHER,
  PTE_PRESENT,
  PTE_SHARED,
  PTE_SHARED_YOUNG,
  PTE_SWAP,
  PTE_YOUNG,
  PTE_ZERO,
  hexAddr,
  orderColor,
  orderLabel,
} from '../../report/model.ts';

const PTE_STATES: Record<string, { name: string; fill?: string }> = {
  [PTE_NONE]: { name: 'none', fill: '#f4f4f4' },
  [PTE_PRESENT]: { name: 'present' },
  [PTE_YOUNG]: { name: 'present, young' },
  [PTE_SHARED]: { name: 'present, shared' },
  [PTE_SHARED_YOUNG]: { name: 'present, shared, young' },
  [PTE_ZERO]: { name: 'zero page', fill: '#ffffff' },
  [PTE_SWAP]: { name: 'swap', fill: '#6a3d9a' },
  [PTE_OTHER]: { name: 'migration or marker', fill: '#000000' },
};

function stateName(c: string): string {
  return PTE_STATES[c]?.name ?? 'unknown';
}

export function MapView({ run }: { run: AnyRun }) {
  const m = run.metrics!;
  const pageKb = m.pageKb;
  const [mapIdx, setMapIdx] = useState(m.maps.length - 1);
  const map = m.maps[Math.min(mapIdx, m.maps.length - 1)];
  const [sel, setSel] = useState<{ v: number; p: number } | null>(null);
  const used = useMemo(() => {
    const s = new Set<number>();
    for (const v of map.vmas) for (const p of v.pmds) s.add(p.order);
    return [...s].sort((a, b) => b - a);
  }, [map]);
  const pmd = sel ? map.vmas[sel.v]?.pmds[sel.p] : undefined;
  return (
    <div>
      <div class="flex">
        <label>
          Snapshot{' '}
          <select
            data-testid="map-select"
            value={mapIdx}
            onChange={(e) => {
              setMapIdx(Number((e.target as HTMLSelectElement).value));
              setSel(null);
            }}
          >
            {m.maps.map((x, i) => (
              <option key={i} value={i}>
                {x.label} (t={x.t} ms)
              </option>
            ))}
          </select>
        </label>
        <span class="muted">
          One cell per PMD range ({orderLabel(m.pmdOrder, pageKb)}); colour: the largest folio order
          mapping a page of it. Click a cell for its PTEs.
        </span>
      </div>
      <div class="legend" data-testid="map-legend">
        {used.map((o) => (
          <span key={o}>
            <i class="swatch" style={{ background: orderColor(o, m.pmdOrder) }} />
            {o < 0 ? 'not mapped' : orderLabel(o, pageKb)}
          </span>
        ))}
      </div>
      {map.vmas.map((v, vi) => (
        <div class="vma-row" key={vi} data-testid="vma">
          <div class="vma-label">
            <b>
              {v.proc}/{v.name}
            </b>{' '}
            {v.kind}
            <br />
            {hexAddr(v.start)}-{hexAddr(v.end)}
            <br />
            <span class="muted">{v.flags}</span>
          </div>
          <div class="pmds">
            {v.pmds.map((p, pi) => (
              <button
                key={pi}
                class={`pmd${sel && sel.v === vi && sel.p === pi ? ' selected' : ''}`}
                style={{ background: orderColor(p.order, m.pmdOrder) }}
                title={`${hexAddr(p.addr)}: ${p.order < 0 ? 'nothing mapped' : orderLabel(p.order, pageKb)}${p.huge ? ' (PMD-mapped)' : ''}`}
                data-testid="pmd-cell"
                data-order={p.order}
                data-addr={hexAddr(p.addr)}
                onClick={() => setSel({ v: vi, p: pi })}
              />
            ))}
          </div>
        </div>
      ))}
      {pmd && (
        <PteGrid pmd={pmd} pmdOrder={m.pmdOrder} pageKb={pageKb} pageBytes={run.config.pageSize} />
      )}
    </div>
  );
}

/** Colour of folio run i: the order's colour, lighter for every other folio so borders show. */
function folioFill(order: number, pmdOrder: number, i: number): string {
  const c = orderColor(order, pmdOrder);
  return i % 2 ? c + 'bb' : c;
}

function PteGrid(props: { pmd: PmdMap; pmdOrder: number; pageKb: number; pageBytes: number }) {
  const { pmd, pmdOrder, pageKb } = props;
  const [hover, setHover] = useState<number | null>(null);
  if (!pmd.ptes)
    return (
      <div class="panel" data-testid="pte-panel">
        PTE detail was not recorded for this PMD range (too many PTEs in the run).
      </div>
    );
  const n = pmd.ptes.length;
  const cols = n <= 512 ? 32 : n <= 2048 ? 64 : 128;
  const cell = n <= 512 ? 14 : n <= 2048 ? 9 : 5;
  const rows = Math.ceil(n / cols);
  const folioAt = new Int32Array(n).fill(-1);
  (pmd.folios ?? []).forEach(([first, count], i) => {
    for (let j = first; j < first + count; j++) folioAt[j] = i;
  });
  const counts: Record<string, number> = {};
  for (const c of pmd.ptes) counts[c] = (counts[c] ?? 0) + 1;
  const info = (i: number) => {
    const f = folioAt[i] >= 0 ? pmd.folios![folioAt[i]] : null;
    return `PTE ${i} (${hexAddr(pmd.addr + i * props.pageBytes)}): ${stateName(pmd.ptes![i])}${
      f ? `, folio pfn ${f[3]} order ${f[2]} (${orderLabel(f[2], pageKb)})` : ''
    }`;
  };
  return (
    <div class="panel" data-testid="pte-panel">
      <b>
        PMD range {hexAddr(pmd.addr)}: {pmd.huge ? 'PMD-mapped' : 'PTE-mapped'}, {n} PTEs
      </b>
      <div class="legend">
        {Object.entries(counts).map(([c, k]) => (
          <span key={c} data-testid="pte-count" data-state={stateName(c)} data-count={k}>
            {stateName(c)}: {k}
          </span>
        ))}
        <span>{(pmd.folios ?? []).length} folio run(s)</span>
      </div>
      <svg width={cols * cell + 2} height={rows * cell + 2} data-testid="pte-grid">
        {Array.from(pmd.ptes, (c, i) => {
          const f = folioAt[i] >= 0 ? pmd.folios![folioAt[i]] : null;
          const st = PTE_STATES[c];
          const fill = st?.fill ?? (f ? folioFill(f[2], pmdOrder, folioAt[i]) : COLOR_NONE);
          const x = (i % cols) * cell + 1;
          const y = Math.floor(i / cols) * cell + 1;
          const young = c === PTE_YOUNG || c === PTE_SHARED_YOUNG;
          const shared = c === PTE_SHARED || c === PTE_SHARED_YOUNG;
          return (
            <g
              key={i}
              onMouseEnter={() => setHover(i)}
              data-testid="pte-cell"
              data-state={stateName(c)}
            >
              <rect
                x={x}
                y={y}
                width={cell - 1}
                height={cell - 1}
                fill={fill}
                stroke={shared ? '#000' : c === PTE_ZERO ? '#999' : 'none'}
                stroke-width={shared ? 1 : 0.5}
              />
              {young && cell >= 9 && (
                <circle cx={x + cell / 2 - 0.5} cy={y + cell / 2 - 0.5} r={1.5} fill="#222" />
              )}
            </g>
          );
        })}
      </svg>
      <div class="mono" data-testid="pte-info">
        {hover === null ? 'Hover over a PTE.' : info(hover)}
      </div>
      <div class="muted">
        Fill: the folio's order colour (alternating shades per folio); grey: none; white: zero page;
        purple: swap; black outline: shared; dot: young.
      </div>
    </div>
  );
}
