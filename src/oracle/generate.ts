// Scenarios the oracle tests generate: the mTHP fault path (per-order `enabled` settings x VMA
// sizes and alignments x write patterns) and a seeded differential fuzzer (a few PMDs with
// random writes, reads, MADV_DONTNEED holes and fork-shared pages, then MADV_COLLAPSE or a
// khugepaged pass under random max_ptes_* values). A fuzz case that differs is cut down to a
// minimal scenario that still differs and saved as YAML.

import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Rng } from '../mm/rng.ts';
import type { ScenarioInput } from '../scenario/schema.ts';

type EventInput = ScenarioInput['timeline'][number];

const KB = 1024;
const MB = 1024 * KB;
const GB = 1024 * MB;
export const ANON_SIZES_KB = [16, 32, 64, 128, 256, 512, 1024, 2048];

/** Every anonymous size `never` except the ones given (values: always, madvise, inherit). */
function sizes(on: Record<number, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kb of ANON_SIZES_KB) out[`hugepages-${kb}kB/enabled`] = on[kb] ?? 'never';
  return out;
}

export interface FaultCase {
  name: string;
  scenario: ScenarioInput;
  /** Some order is `always`: other processes fault such folios too, so counters move. */
  always: boolean;
}

const FAULT_SETTINGS: Array<{
  name: string;
  enabled: string;
  on: Record<number, string>;
  advise: boolean;
}> = [
  { name: '64K-madvise', enabled: 'madvise', on: { 64: 'madvise' }, advise: true },
  {
    name: '16K+64K+256K+PMD',
    enabled: 'madvise',
    on: { 16: 'madvise', 64: 'madvise', 256: 'madvise', 2048: 'inherit' },
    advise: true,
  },
  {
    name: '32K+128K+1M',
    enabled: 'madvise',
    on: { 32: 'madvise', 128: 'inherit', 1024: 'madvise' },
    advise: true,
  },
  {
    name: '64K-not-advised',
    enabled: 'madvise',
    on: { 64: 'madvise', 2048: 'inherit' },
    advise: false,
  },
  {
    name: 'all-sizes',
    enabled: 'madvise',
    on: Object.fromEntries(ANON_SIZES_KB.map((kb) => [kb, 'madvise'])),
    advise: true,
  },
  { name: '64K-always', enabled: 'never', on: { 64: 'always' }, advise: false },
];

const FAULT_VMAS: Array<{ name: string; size: number; at: number }> = [
  { name: '2M-aligned', size: 2 * MB, at: 0 },
  { name: '2M+256K-at-64K', size: 2 * MB + 256 * KB, at: 64 * KB },
  { name: '1M+12K-at-12K', size: MB + 12 * KB, at: 12 * KB },
  { name: '3M-at-1M', size: 3 * MB, at: MB },
  { name: '96K-at-32K', size: 96 * KB, at: 32 * KB },
];

const PATTERNS: Array<{ name: string; pattern?: unknown }> = [
  { name: 'all' },
  { name: 'every-3', pattern: { every: 3 } },
  { name: 'random-30', pattern: { random: 0.3, seed: 7 } },
];

/** The fault-path cases: every setting with every VMA, the pattern rotating. */
export function faultCases(): FaultCase[] {
  const out: FaultCase[] = [];
  let n = 0;
  for (const st of FAULT_SETTINGS)
    for (const v of FAULT_VMAS) {
      const p = PATTERNS[n++ % PATTERNS.length];
      const timeline: EventInput[] = [
        { op: 'mmap', proc: 'p', vma: 'area', size: v.size, addr: GB + v.at },
      ];
      if (st.advise) timeline.push({ op: 'madvise', proc: 'p', vma: 'area', advice: 'hugepage' });
      timeline.push(
        p.pattern
          ? ({ op: 'write', proc: 'p', vma: 'area', pattern: p.pattern } as EventInput)
          : { op: 'write', proc: 'p', vma: 'area' },
        { op: 'report', label: 'after the faults' },
      );
      const name = `fault-${st.name}-${v.name}-${p.name}`;
      out.push({
        name,
        always: Object.values(st.on).includes('always') || st.enabled === 'always',
        scenario: {
          version: 1,
          name,
          description: `mTHP fault orders: ${st.name}, VMA ${v.name}, writes ${p.name}`,
          ram: '64MiB',
          sysfs: { enabled: st.enabled, defrag: 'madvise', ...sizes(st.on) },
          processes: [{ name: 'p' }],
          timeline,
        },
      });
    }
  return out;
}

/** One random small scenario, the same for the same seed. */
export function fuzzScenario(seed: number): ScenarioInput {
  const rng = new Rng(seed >>> 0 || 1);
  const int = (n: number) => Math.floor(rng.next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const pmds = 1 + int(3);
  const pages = pmds * 512;
  const khugepaged = rng.next() < 0.5;
  const timeline: EventInput[] = [
    { op: 'mmap', proc: 'a', vma: 'area', size: `${pmds}pmd`, addr: GB },
  ];
  // Some PMDs start as THPs (written whole, then MADV_COLLAPSE).
  for (let j = 0; j < pmds; j++)
    if (rng.next() < 0.3)
      timeline.push(
        { op: 'write', proc: 'a', vma: 'area', offset: `${j}pmd`, length: '1pmd' },
        { op: 'collapse', proc: 'a', vma: 'area', offset: `${j}pmd`, length: '1pmd' },
      );
  const randomRange = () => {
    const first = int(pages);
    const len = 1 + int(Math.min(pages - first, pick([1, 8, 64, 300])));
    return { offset: `${first} pages`, length: `${len} pages` };
  };
  for (let w = 1 + int(3); w > 0; w--)
    timeline.push({
      op: rng.next() < 0.8 ? 'write' : 'touch',
      proc: 'a',
      vma: 'area',
      ...randomRange(),
      pattern: { random: pick([0.1, 0.5, 0.9, 1]), seed: int(1000) },
    });
  for (let h = int(3); h > 0; h--)
    timeline.push({ op: 'madvise', proc: 'a', vma: 'area', ...randomRange(), advice: 'dontneed' });
  let actor = 'a';
  if (rng.next() < 0.5) {
    timeline.push({ op: 'fork', proc: 'a', child: 'b' });
    const writer = pick(['a', 'b']);
    timeline.push({
      op: 'write',
      proc: writer,
      vma: 'area',
      ...randomRange(),
      pattern: { random: pick([0.2, 0.6, 1]), seed: int(1000) },
    });
    actor = pick(['a', 'b']);
  }
  if (khugepaged)
    timeline.push(
      { op: 'madvise', proc: actor, vma: 'area', advice: 'hugepage' },
      { op: 'wait_khugepaged', scans: 2 },
    );
  else timeline.push({ op: 'collapse', proc: actor, vma: 'area' });
  timeline.push({ op: 'check', proc: actor, vma: 'area', intact: true }, { op: 'report' });
  return {
    version: 1,
    name: `fuzz-${seed}`,
    description: `differential fuzz case, seed ${seed}: ${pmds} PMD(s), ${khugepaged ? 'a khugepaged pass' : 'MADV_COLLAPSE'}`,
    ram: '64MiB',
    sysfs: {
      enabled: 'madvise',
      defrag: 'madvise',
      use_zero_page: pick(['0', '1']),
      'khugepaged/defrag': '1',
      'khugepaged/scan_sleep_millisecs': '10',
      'khugepaged/alloc_sleep_millisecs': '10',
      'khugepaged/pages_to_scan': '4096',
      'khugepaged/max_ptes_none': String(pick([0, 1, 64, 256, 510, 511])),
      'khugepaged/max_ptes_shared': String(pick([0, 1, 128, 256, 511])),
      'khugepaged/max_ptes_swap': '64',
      ...sizes({ 2048: 'inherit' }),
    },
    processes: [{ name: 'a' }],
    timeline,
  };
}

/**
 * Drop timeline events one at a time while `differs` still holds (the first mmap and the last
 * two events stay), at most `budget` tries. Returns the smallest scenario found.
 */
export function minimize(
  s: ScenarioInput,
  differs: (s: ScenarioInput) => boolean,
  budget = 24,
): ScenarioInput {
  let cur = s;
  let tries = 0;
  for (let changed = true; changed && tries < budget;) {
    changed = false;
    for (let i = cur.timeline.length - 3; i >= 1 && tries < budget; i--) {
      const cand = { ...cur, timeline: cur.timeline.filter((_, j) => j !== i) };
      tries++;
      let bad: boolean;
      try {
        bad = differs(cand);
      } catch {
        bad = false; // not a valid scenario any more (a process used before its fork, ...)
      }
      if (bad) {
        cur = cand;
        changed = true;
      }
    }
  }
  return cur;
}

/** Save a scenario as YAML under dir (a temporary file, then rename); returns the path. */
export function saveFound(dir: string, s: ScenarioInput, comment: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${s.name}.yaml`);
  const tmp = join(dir, `.${s.name}.${randomBytes(4).toString('hex')}.tmp`);
  const head = comment
    .split('\n')
    .map((l) => `# ${l}`.trimEnd())
    .join('\n');
  writeFileSync(tmp, `${head}\n${stringify(s)}`, { flag: 'wx' });
  renameSync(tmp, path);
  return path;
}
