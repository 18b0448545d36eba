// The kernel's THP collapse selftests (khugepaged.c, cow.c, prctl_thp_disable.c) as scenario
// files under test/kernel-selftests/, run for every context, memory type and matrix value they
// declare, on all four page-table geometries. The limits scale with HPAGE_PMD_NR, so the same
// files check the boundaries at NR = 512, 2048 and 8192. The mthp_*.yaml files are the mTHP
// collapse cases (mthp_khugepaged context, collapse order 4 on every geometry). A table of the
// results is printed.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { afterAll, describe, expect, it } from 'vitest';
import type { CollapsePolicy } from '../src/khugepaged/mthp/thresholds.ts';
import { GEOMETRY_NAMES, type GeometryName } from '../src/mm/geometry.ts';
import { loadSpec } from '../src/scenario/load.ts';
import { variantsOf } from '../src/scenario/resolve.ts';
import type { ScenarioSpec } from '../src/scenario/schema.ts';
import { type CaseResult, runCase } from '../src/scenario/selftest-run.ts';

const DIR = join(import.meta.dirname, 'kernel-selftests');
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const GEOMETRIES: GeometryName[] = ['x86-64-4k', 'arm64-4k', 'arm64-16k', 'arm64-64k'];

const specs = new Map<string, ScenarioSpec>(
  FILES.map((f) => [f, loadSpec(join('test', 'kernel-selftests', f))]),
);
const results: CaseResult[] = [];

afterAll(() => {
  const t = new Table({
    head: ['case', 'context', 'mem', 'variant', 'geometry', 'result', 'ms'],
    style: { head: [], border: [], compact: true },
  });
  for (const r of results) {
    const { context, mem, ...rest } = r.variant;
    const extra = Object.entries(rest)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const status =
      r.status === 'pass'
        ? 'pass'
        : `${r.status.toUpperCase()}: ${(r.reason ?? '').replace(/^test\/kernel-selftests\//, '')}`;
    t.push([
      r.name,
      context ?? '-',
      mem ?? '-',
      extra || '-',
      r.geometry,
      status.slice(0, 160),
      Math.round(r.ms),
    ]);
  }
  const by = (g: string, s: string) =>
    results.filter((r) => r.geometry === g && r.status === s).length;
  const summary = GEOMETRY_NAMES.map(
    (g) => `${g}: ${by(g, 'pass')} pass, ${by(g, 'fail')} fail, ${by(g, 'skip')} skip`,
  ).join('\n');
  console.log(`kernel selftests\n${t.toString()}\n${summary}`);
});

describe.each(GEOMETRIES)('kernel selftests on %s', (geometry) => {
  it.each(FILES)('%s', (file) => {
    const spec = specs.get(file)!;
    const failures: string[] = [];
    for (const variant of variantsOf(spec)) {
      const r = runCase(spec, join('test', 'kernel-selftests', file), geometry, variant, {
        now: () => performance.now(),
      });
      results.push(r);
      if (r.status === 'skip') console.log(`skip ${file} on ${geometry}: ${r.reason}`);
      if (r.status === 'fail') failures.push(`${JSON.stringify(r.variant)}: ${r.reason}`);
    }
    expect(failures).toEqual([]);
  });
});

// The mTHP cases under the other collapse designs. v11-stack and pte-level choose what v19
// chooses; v10-scaled agrees on these cases (max_ptes_none is 0 or NR-1 in all of them). v11-cap
// caps NR-1 at NR/2-1 scaled to the order, so a window with one page stays as it is there.
const MTHP_FILES = FILES.filter((f) => f.startsWith('mthp_'));
const POLICY_EXPECTED_FAILURES: Record<string, string[]> = {
  'v11-stack': [],
  'v10-scaled': [],
  'v11-cap': ['mthp_collapse_single.yaml'],
  'pte-level': [],
  rounds: [],
};

describe.each(Object.keys(POLICY_EXPECTED_FAILURES))('mTHP selftests under %s', (policy) => {
  it.each(GEOMETRIES)('on %s', (geometry) => {
    const failed = new Set<string>();
    for (const file of MTHP_FILES) {
      const spec = specs.get(file)!;
      for (const variant of variantsOf(spec)) {
        const r = runCase(spec, join('test', 'kernel-selftests', file), geometry, variant, {
          collapsePolicy: policy as CollapsePolicy,
          strictLocks: true,
        });
        if (r.status === 'fail') failed.add(file);
      }
    }
    expect([...failed].sort()).toEqual(POLICY_EXPECTED_FAILURES[policy]);
  });
});

// The rounds design (mm/collapse.c) runs every selftest, not only the mTHP ones: it replaces the
// PMD-order collapse too (shared pages are unshared by its fault-in pass, as the kernel's does).
describe('all kernel selftests under rounds', () => {
  it.each(FILES)('%s on x86-64-4k', (file) => {
    const spec = specs.get(file)!;
    const failures: string[] = [];
    for (const variant of variantsOf(spec)) {
      const r = runCase(spec, join('test', 'kernel-selftests', file), 'x86-64-4k', variant, {
        collapsePolicy: 'rounds',
        strictLocks: true,
      });
      if (r.status === 'fail') failures.push(`${JSON.stringify(r.variant)}: ${r.reason}`);
    }
    expect(failures).toEqual([]);
  });
});
