// thpsim tune: the knob space checked by the model's sysfs, the Pareto front and the
// recommendation, and the documented oracles found: stride survives iff max_ptes_none <= 470
// with shrink_underused=1 (the "split underused THPs" cover letter), redis-3phase runs out of
// memory at max_ptes_none=511 and not at 409 (HawkEye).

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inputOf } from '../src/sweep/cell.ts';
import type { TuneObjectives } from '../src/tune/objectives.ts';
import { type TunePoint, paretoFront, parsePreference, rank } from '../src/tune/pareto.ts';
import { SpaceError, baselineOf, checkSpace, parseKnob } from '../src/tune/space.ts';
import { type TuneResult, tune } from '../src/tune/tune.ts';
import { buildWorkload } from '../src/workload/scenario.ts';
import { oneLineError, thpsim } from './support/cli.ts';

async function tuneWorkload(
  name: string,
  specs: string[],
  extra: { budget?: number; seed?: number; prefer?: string } = {},
): Promise<TuneResult> {
  const s = buildWorkload(name, {});
  const space = specs.map(parseKnob);
  checkSpace(space);
  const prefer = extra.prefer ?? 'coverage';
  return tune(
    {
      kind: 'scenario',
      source: `workload:${name}`,
      name,
      input: inputOf('scenario', JSON.stringify(s)),
      baseline: baselineOf(space, { sysfs: s.sysfs ?? {}, policy: s.collapse_policy }),
    },
    {
      space,
      ...(extra.budget !== undefined ? { budget: extra.budget } : {}),
      seed: extra.seed ?? 1,
      prefer: parsePreference(prefer),
      preferText: prefer,
      sweep: { jobs: 1 },
    },
  );
}

const feasible = (r: TuneResult) =>
  r.points
    .filter((p) => !p.objectives.oom)
    .map((p) => `${p.settings.max_ptes_none}/${p.settings.shrink_underused}`)
    .sort();
const recommended = (r: TuneResult) => r.points.find((p) => p.index === r.recommended)!.settings;

describe('tune finds the documented oracles', () => {
  it('stride: feasible exactly where max_ptes_none <= 470 and shrink_underused=1', async () => {
    const r = await tuneWorkload('stride', [
      'max_ptes_none=0,256,409,470,471,511',
      'shrink_underused=0,1',
    ]);
    expect(r.search).toMatchObject({ method: 'grid', grid: 12, evaluated: 12 });
    expect(feasible(r)).toEqual(['0/1', '256/1', '409/1', '470/1']);
    // Equal objectives on the feasible side: the tie goes to the least change from 511.
    expect(recommended(r)).toEqual({ max_ptes_none: '470', shrink_underused: '1' });
    expect(r.apply).toEqual([
      'echo 470 > /sys/kernel/mm/transparent_hugepage/khugepaged/max_ptes_none',
      'echo 1 > /sys/kernel/mm/transparent_hugepage/shrink_underused',
    ]);
    expect(r.front).toContain(r.recommended);
    for (const i of r.front) expect(r.points[i].objectives.oom).toBe(false);
  });

  it('stride: a budget of 30 over max_ptes_none=0..511 finds the boundary 470, the same for a seed', async () => {
    const specs = ['max_ptes_none=0..511', 'shrink_underused=0,1'];
    const a = await tuneWorkload('stride', specs, { budget: 30, seed: 1 });
    expect(a.search).toMatchObject({ method: 'evolutionary+pattern', grid: 1024, evaluated: 30 });
    expect(recommended(a)).toEqual({ max_ptes_none: '470', shrink_underused: '1' });
    // 471 with the shrinker is the first OOM: the search looked right past the boundary.
    const at471 = a.points.find(
      (p) => p.settings.max_ptes_none === '471' && p.settings.shrink_underused === '1',
    );
    if (at471) expect(at471.objectives.oom).toBe(true);
    const b = await tuneWorkload('stride', specs, { budget: 30, seed: 1 });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('redis-3phase: OOM at max_ptes_none=511, not at 409; 409 recommended for coverage', async () => {
    const r = await tuneWorkload('redis-3phase', ['max_ptes_none=0,409,511']);
    const by = Object.fromEntries(r.points.map((p) => [p.settings.max_ptes_none, p.objectives]));
    expect(by['511'].oom).toBe(true);
    expect(by['409'].oom).toBe(false);
    expect(by['0'].oom).toBe(false);
    expect(by['409'].hugePct).toBeGreaterThan(by['0'].hugePct);
    expect(recommended(r)).toEqual({ max_ptes_none: '409' });
    // For memory, the setting that collapses nothing sparse wins.
    const m = await tuneWorkload('redis-3phase', ['max_ptes_none=0,409,511'], { prefer: 'memory' });
    expect(recommended(m)).toEqual({ max_ptes_none: '0' });
    expect(by['0'].bloatKb).toBeLessThan(by['409'].bloatKb);
  });
});

describe('the space and the preference', () => {
  it('checks values with the model sysfs store functions', () => {
    expect(() => checkSpace([parseKnob('max_ptes_none=0,512')])).toThrow(
      /max_ptes_none=512: .*EINVAL|max_ptes_none=512: .*range|max_ptes_none=512/,
    );
    expect(() => checkSpace([parseKnob('enabled=always,sometimes')])).toThrow(SpaceError);
    expect(() => checkSpace([parseKnob('policy=v19,v99')])).toThrow(
      /"v99" is not a collapse policy/,
    );
    expect(() => parseKnob('max_ptes_none')).toThrow(/expected knob=v1,v2/);
    expect(parseKnob('max_ptes_none=0..16:8').values).toEqual(['0', '8', '16']);
    expect(parseKnob('enabled-64kB=never,always').path).toBe('hugepages-64kB/enabled');
    expect(() => checkSpace([parseKnob('enabled-64kB=never,always')])).not.toThrow();
    expect(() => parsePreference('speed')).toThrow(/--prefer: expected coverage, memory, balanced/);
    expect(parsePreference('coverage=2,bloat=1')).toEqual({
      kind: 'weights',
      weights: { coverage: 2, bloat: 1 },
    });
  });

  it('the front keeps the non-dominated feasible points; the preference picks among them', () => {
    const o = (hugePct: number, bloatKb: number, oom = false): TuneObjectives => ({
      oom,
      oomEvent: null,
      rssKb: 0,
      anonKb: 0,
      hugeKb: 0,
      hugePct,
      coverage: [],
      bloatKb,
      collapses: 0,
      khugepagedUs: 0,
      tlbReachKb: 0,
      tlbSource: 'model',
    });
    const pts: TunePoint[] = [o(90, 100), o(50, 0), o(40, 10), o(99, 0, true), o(90, 50)].map(
      (objectives, index) => ({
        index,
        point: [index],
        settings: { x: String(index) },
        objectives,
        distance: 0,
      }),
    );
    expect(paretoFront(pts).map((p) => p.index)).toEqual([1, 4]);
    expect(rank(pts, { kind: 'coverage' })[0].index).toBe(4);
    expect(rank(pts, { kind: 'memory' })[0].index).toBe(1);
    expect(rank(pts, { kind: 'coverage' }).at(-1)!.index).toBe(3);
  });
});

describe('thpsim tune', () => {
  it('prints the front, the recommendation and the sysfs writes; writes JSON and the plot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thpsim-tune-'));
    const r = thpsim([
      'tune',
      'workload:stride',
      '--space',
      'max_ptes_none=409,471',
      '--prefer',
      'coverage',
      '--jobs',
      '1',
      '-o',
      join(dir, 'tune.json'),
      '--plot',
      join(dir, 'front.svg'),
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('recommended: max_ptes_none=409');
    expect(r.stdout).toContain(
      'echo 409 > /sys/kernel/mm/transparent_hugepage/khugepaged/max_ptes_none',
    );
    expect(r.stdout).toMatch(/memcg OOM \(infeasible\): 1 settings, e\.g\. max_ptes_none=471/);
    const j = JSON.parse(readFileSync(join(dir, 'tune.json'), 'utf8')) as TuneResult;
    expect(j.format).toBe('thpsim-tune');
    expect(readFileSync(join(dir, 'front.svg'), 'utf8')).toMatch(/^<svg[^>]*xmlns=/);
  });

  it('bad input is one line', () => {
    expect(
      oneLineError(thpsim(['tune', 'workload:stride', '--space', 'max_ptes_none=0,600'])),
    ).toMatch(/--space max_ptes_none=600: .*max_ptes_none/);
    expect(oneLineError(thpsim(['tune', 'workload:stride', '--prefer', 'speed']))).toMatch(
      /--prefer/,
    );
    expect(oneLineError(thpsim(['tune', 'workload:stride', '--queue', 'http://x']))).toMatch(
      /--queue: expected a redis:\/\//,
    );
  });
});
