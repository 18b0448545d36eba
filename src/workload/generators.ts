// Built-in workload generators: seeded, parameterised scenarios that look like real programs.
// Each one builds an ordinary scenario (the format of src/scenario/schema.ts), so everything
// that runs a scenario runs a workload: `thpsim run workload:stride`, `thpsim compare
// workload:redis-3phase --policies v19,v10-scaled`, `thpsim workload stride --emit`.
//
// Sources (shared/spec/anchors-workloads-metrics.md): stride is Meta's THP-shrinker test
// (section 2.6), redis-3phase HawkEye's Redis scenario (1.2), frag-50/frag-100 Quicksilver's
// fragmentation presets (1.3), sparse-heap Ingens' sparse_access micro-benchmark (1.1).

import { Rng } from '../mm/rng.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import { formatSize, parseSize } from '../scenario/size.ts';

export type ParamKind = 'size' | 'int' | 'fraction' | 'string';

export interface ParamSpec {
  name: string;
  kind: ParamKind;
  default: string | number;
  doc: string;
}

export type ParamValues = Record<string, string | number>;

export interface Generator {
  name: string;
  summary: string;
  /** What the workload shows and what to look for in its result. */
  doc: string;
  params: ParamSpec[];
  build(p: ParamValues): ScenarioInput;
}

export class WorkloadError extends Error {}

type Ev = ScenarioInput['timeline'][number];

const SEED: ParamSpec = { name: 'seed', kind: 'int', default: 1, doc: 'random seed' };
const RAM = (d: string): ParamSpec => ({
  name: 'ram',
  kind: 'size',
  default: d,
  doc: 'physical memory',
});
const ENABLED = (d: string): ParamSpec => ({
  name: 'enabled',
  kind: 'string',
  default: d,
  doc: 'transparent_hugepage/enabled',
});
const MAX_PTES_NONE: ParamSpec = {
  name: 'max_ptes_none',
  kind: 'string',
  default: 'NR-1',
  doc: 'khugepaged/max_ptes_none (also the underused-THP shrinker threshold)',
};
const MTHP: ParamSpec = {
  name: 'mthp',
  kind: 'string',
  default: '',
  doc: 'mTHP sizes set to "always", e.g. "64kB,512kB" (empty: none)',
};

const n = (v: string | number): number => Number(v);
const str = (v: string | number): string => String(v);

function mthpSysfs(list: string | number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of String(list)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (!/^\d+kB$/.test(s)) throw new WorkloadError(`mthp: expected sizes like "64kB", got "${s}"`);
    out[`hugepages-${s}/enabled`] = 'always';
  }
  return out;
}

function header(
  name: string,
  description: string,
  p: ParamValues,
  sysfs: Record<string, string | number>,
): Omit<ScenarioInput, 'processes' | 'timeline'> {
  return {
    version: 1,
    name,
    description,
    ram: formatSize(n(p.ram)),
    seed: n(p.seed),
    sysfs,
  };
}

const stride: Generator = {
  name: 'stride',
  summary: "Meta's THP-shrinker test: 40M touched at a 50K stride inside a 20M memory.max",
  doc:
    'stress --vm 1 --vm-bytes 40M --vm-stride 50K in a cgroup with memory.max=20M and no swap ' +
    '(the "mm: split underused THPs" cover letter). With enabled=always every touch faults a ' +
    'PMD THP of which 40 or 41 of 512 pages are ever written. Without the underused shrinker ' +
    '(max_ptes_none 511) the cgroup fills with THPs and the OOM killer fires; with it, a THP ' +
    'with more zero-filled pages than max_ptes_none is split under memcg reclaim, and the ' +
    'process survives for max_ptes_none <= 470.',
  params: [
    { name: 'memory_max', kind: 'size', default: '20MiB', doc: 'the cgroup memory.max' },
    { name: 'bytes', kind: 'size', default: '40MiB', doc: 'stress --vm-bytes' },
    { name: 'stride', kind: 'size', default: '50KiB', doc: 'stress --vm-stride' },
    { name: 'rounds', kind: 'int', default: 1, doc: 'malloc/touch/free rounds (stress loops)' },
    MAX_PTES_NONE,
    {
      name: 'shrink_underused',
      kind: 'string',
      default: '1',
      doc: 'transparent_hugepage/shrink_underused',
    },
    ENABLED('always'),
    RAM('256MiB'),
    SEED,
  ],
  build(p) {
    const timeline: Ev[] = [];
    for (let r = 0; r < n(p.rounds); r++) {
      timeline.push(
        { op: 'mmap', proc: 'stress', vma: 'buf', size: n(p.bytes), align: '1pmd' },
        { op: 'write', proc: 'stress', vma: 'buf', stride: n(p.stride) },
        { op: 'munmap', proc: 'stress', vma: 'buf' },
      );
    }
    timeline.splice(timeline.length - 1, 0, { op: 'report', label: 'touched' });
    return {
      ...header('stride', stride.summary, p, {
        enabled: str(p.enabled),
        shrink_underused: str(p.shrink_underused),
        'khugepaged/max_ptes_none': str(p.max_ptes_none),
      }),
      processes: [{ name: 'stress', memory_max: n(p.memory_max) }],
      timeline,
    };
  },
};

const redis3: Generator = {
  name: 'redis-3phase',
  summary: "HawkEye's Redis test, scaled down: insert small values, delete 80%, insert large ones",
  doc:
    'Phase 1 fills a heap with small (one-page) values, phase 2 frees a random 80% of them ' +
    '(the allocator gives the pages back with MADV_DONTNEED) and lets khugepaged run, phase 3 ' +
    'allocates large values as separate PMD-sized mappings. The cgroup limit holds the large ' +
    'values only if the freed memory really went back: khugepaged re-collapsing the sparse heap ' +
    '(max_ptes_none high) brings the bloat back and ends in OOM, as HawkEye reports for Linux.',
  params: [
    { name: 'memory_max', kind: 'size', default: '64MiB', doc: 'the cgroup memory.max' },
    { name: 'heap', kind: 'size', default: '48MiB', doc: 'memory of small values in phase 1' },
    { name: 'value', kind: 'size', default: '4KiB', doc: 'size of a small value' },
    { name: 'delete', kind: 'fraction', default: 0.8, doc: 'fraction deleted in phase 2' },
    { name: 'large', kind: 'int', default: 12, doc: 'large values inserted in phase 3' },
    { name: 'large_size', kind: 'size', default: '2MiB', doc: 'size of a large value' },
    { name: 'sleep_ms', kind: 'int', default: 60000, doc: 'time for khugepaged after phase 2' },
    MAX_PTES_NONE,
    ENABLED('always'),
    MTHP,
    RAM('512MiB'),
    SEED,
  ],
  build(p) {
    const rng = new Rng(n(p.seed));
    const value = n(p.value);
    const values = Math.floor(n(p.heap) / value);
    const timeline: Ev[] = [
      { op: 'mmap', proc: 'redis', vma: 'heap', size: values * value, align: '1pmd' },
      { op: 'write', proc: 'redis', vma: 'heap' },
      { op: 'report', label: 'phase1-inserted' },
    ];
    // Phase 2: free a random subset; runs of freed values become one madvise each.
    let runStart = -1;
    for (let i = 0; i <= values; i++) {
      const del = i < values && rng.next() < n(p.delete);
      if (del && runStart < 0) runStart = i;
      if (!del && runStart >= 0) {
        timeline.push({
          op: 'madvise',
          proc: 'redis',
          vma: 'heap',
          offset: runStart * value,
          length: (i - runStart) * value,
          advice: 'dontneed',
        });
        runStart = -1;
      }
    }
    timeline.push({ op: 'sleep', ms: n(p.sleep_ms) }, { op: 'report', label: 'phase2-deleted' });
    for (let i = 0; i < n(p.large); i++)
      timeline.push(
        { op: 'mmap', proc: 'redis', vma: `large${i}`, size: n(p.large_size), align: '1pmd' },
        { op: 'write', proc: 'redis', vma: `large${i}` },
      );
    timeline.push({ op: 'report', label: 'phase3-large' });
    return {
      ...header('redis-3phase', redis3.summary, p, {
        enabled: str(p.enabled),
        'khugepaged/max_ptes_none': str(p.max_ptes_none),
        ...mthpSysfs(p.mthp),
      }),
      processes: [{ name: 'redis', memory_max: n(p.memory_max) }],
      timeline,
    };
  },
};

const sparseHeap: Generator = {
  name: 'sparse-heap',
  summary: 'a large heap written at a random fraction of its pages, then khugepaged',
  doc:
    'A MADV_HUGEPAGE heap (or enabled=always) where the program writes only some pages, as ' +
    "Ingens' sparse_access does. Shows the memory a collapse policy adds (bloat) against the " +
    'huge-page coverage it buys, per max_ptes_none and mTHP size.',
  params: [
    { name: 'size', kind: 'size', default: '64MiB', doc: 'heap size' },
    { name: 'density', kind: 'fraction', default: 0.1, doc: 'fraction of pages written' },
    { name: 'sleep_ms', kind: 'int', default: 120000, doc: 'time for khugepaged' },
    ENABLED('madvise'),
    MAX_PTES_NONE,
    MTHP,
    RAM('512MiB'),
    SEED,
  ],
  build(p) {
    return {
      ...header('sparse-heap', sparseHeap.summary, p, {
        enabled: str(p.enabled),
        'khugepaged/max_ptes_none': str(p.max_ptes_none),
        ...mthpSysfs(p.mthp),
      }),
      processes: [{ name: 'app' }],
      timeline: [
        { op: 'mmap', proc: 'app', vma: 'heap', size: n(p.size), align: '1pmd' },
        {
          op: 'write',
          proc: 'app',
          vma: 'heap',
          pattern: { random: n(p.density), seed: n(p.seed) },
        },
        { op: 'report', label: 'faulted' },
        { op: 'madvise', proc: 'app', vma: 'heap', advice: 'hugepage' },
        { op: 'sleep', ms: n(p.sleep_ms) },
        { op: 'report', label: 'after-khugepaged' },
      ],
    };
  },
};

const mallocChurn: Generator = {
  name: 'malloc-churn',
  summary: 'rounds of allocations of random sizes, writes, and frees of a random half',
  doc:
    'An allocator under churn: each round maps chunks of random sizes (large allocations are ' +
    'mmaps), writes a random prefix of each, frees some with munmap and trims others with ' +
    'MADV_DONTNEED, then sleeps while khugepaged runs. Shows partially mapped THPs, the deferred ' +
    'split queue and what khugepaged makes of a heap that keeps changing.',
  params: [
    { name: 'rounds', kind: 'int', default: 8, doc: 'rounds' },
    { name: 'chunks', kind: 'int', default: 16, doc: 'chunks allocated per round' },
    { name: 'min', kind: 'size', default: '64KiB', doc: 'smallest chunk' },
    { name: 'max', kind: 'size', default: '4MiB', doc: 'largest chunk' },
    { name: 'sleep_ms', kind: 'int', default: 10000, doc: 'sleep after each round' },
    ENABLED('always'),
    MAX_PTES_NONE,
    MTHP,
    RAM('1GiB'),
    SEED,
  ],
  build(p) {
    const rng = new Rng(n(p.seed));
    const page = 4096;
    const lo = Math.max(page, n(p.min));
    const hi = Math.max(lo, n(p.max));
    const timeline: Ev[] = [];
    const live: string[] = [];
    let id = 0;
    for (let r = 0; r < n(p.rounds); r++) {
      for (let c = 0; c < n(p.chunks); c++) {
        const pages = Math.ceil((lo + rng.next() * (hi - lo)) / page);
        const vma = `c${id++}`;
        const written = 1 + rng.int(pages);
        timeline.push(
          { op: 'mmap', proc: 'app', vma, size: pages * page },
          { op: 'write', proc: 'app', vma, length: written * page },
        );
        live.push(vma);
      }
      // Free a random half; trim the tail of some survivors.
      for (let i = live.length - 1; i >= 0; i--) {
        const roll = rng.next();
        if (roll < 0.5) {
          timeline.push({ op: 'munmap', proc: 'app', vma: live[i] });
          live.splice(i, 1);
        } else if (roll < 0.7) {
          timeline.push({
            op: 'madvise',
            proc: 'app',
            vma: live[i],
            offset: page,
            advice: 'dontneed',
          });
        }
      }
      timeline.push({ op: 'sleep', ms: n(p.sleep_ms) });
    }
    timeline.push({ op: 'report', label: 'end' });
    return {
      ...header('malloc-churn', mallocChurn.summary, p, {
        enabled: str(p.enabled),
        'khugepaged/max_ptes_none': str(p.max_ptes_none),
        ...mthpSysfs(p.mthp),
      }),
      processes: [{ name: 'app' }],
      timeline,
    };
  },
};

/** Quicksilver's Frag: leave used pages in a share of the physical PMD-sized blocks. */
function frag(percent: 50 | 100): Generator {
  const name = `frag-${percent}`;
  const g: Generator = {
    name,
    summary: `fragment ${percent}% of the physical PMD-sized blocks, then fault a THP heap`,
    doc:
      `A fragmenter fills a share of RAM with small pages, then frees all but one page of each ` +
      `PMD-sized block in ${percent}% of the blocks (the rest it frees whole), as Quicksilver's ` +
      'Frag program prepares its Frag-50 and Frag-100 states. Then an application faults a heap ' +
      'with enabled=always: PMD faults fall back or need compaction (defrag), and khugepaged ' +
      'collapses need it too. The fragmenter stays alive and keeps its pages.',
    params: [
      { name: 'fill', kind: 'fraction', default: 0.97, doc: 'share of RAM the fragmenter uses' },
      { name: 'heap', kind: 'size', default: '160MiB', doc: 'the application heap' },
      { name: 'defrag', kind: 'string', default: 'madvise', doc: 'transparent_hugepage/defrag' },
      { name: 'sleep_ms', kind: 'int', default: 60000, doc: 'time for khugepaged afterwards' },
      ENABLED('always'),
      MTHP,
      RAM('256MiB'),
      SEED,
    ],
    build(p) {
      const pmd = 2 * 1024 * 1024;
      const blocks = Math.max(1, Math.floor((n(p.ram) * n(p.fill)) / pmd));
      const rng = new Rng(n(p.seed));
      const timeline: Ev[] = [
        { op: 'mmap', proc: 'frag', vma: 'fill', size: blocks * pmd, align: '1pmd' },
        { op: 'write', proc: 'frag', vma: 'fill' },
      ];
      const keep = Math.round((blocks * percent) / 100);
      // Which blocks keep a page: a seeded random choice of `keep` blocks.
      const order = [...Array(blocks).keys()];
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      const kept = new Set(order.slice(0, keep));
      for (let b = 0; b < blocks; b++) {
        const at = rng.int(512);
        const ranges: Array<[number, number]> = kept.has(b)
          ? [
              [0, at],
              [at + 1, 512 - at - 1],
            ]
          : [[0, 512]];
        for (const [off, len] of ranges)
          if (len > 0)
            timeline.push({
              op: 'madvise',
              proc: 'frag',
              vma: 'fill',
              offset: `${b * 512 + off} pages`,
              length: `${len} pages`,
              advice: 'dontneed',
            });
      }
      timeline.push(
        { op: 'report', label: 'fragmented' },
        { op: 'mmap', proc: 'app', vma: 'heap', size: n(p.heap), align: '1pmd' },
        { op: 'write', proc: 'app', vma: 'heap' },
        { op: 'report', label: 'faulted' },
        { op: 'madvise', proc: 'app', vma: 'heap', advice: 'hugepage' },
        { op: 'sleep', ms: n(p.sleep_ms) },
        { op: 'report', label: 'after-khugepaged' },
      );
      return {
        ...header(name, g.summary, p, {
          // The fragmenter's pages must be small ones.
          enabled: 'never',
          defrag: str(p.defrag),
          ...mthpSysfs(p.mthp),
        }),
        processes: [{ name: 'frag' }, { name: 'app' }],
        timeline: [
          ...timeline.slice(0, -6),
          { op: 'sysfs', path: 'enabled', value: str(p.enabled) },
          ...timeline.slice(-6),
        ],
      };
    },
  };
  return g;
}

const forkServer: Generator = {
  name: 'fork-server',
  summary: 'a parent with a THP heap forks workers that share it and write parts of it',
  doc:
    'A pre-forking server: the parent faults a heap, forks N workers; each writes a random ' +
    'fraction of the shared heap (COW breaks of PMD-mapped THPs split the PMD; mTHPs are copied ' +
    'a page at a time) and some exit. Then khugepaged runs: shared pages count against ' +
    'max_ptes_shared.',
  params: [
    { name: 'children', kind: 'int', default: 8, doc: 'workers forked' },
    { name: 'heap', kind: 'size', default: '32MiB', doc: 'the parent heap' },
    { name: 'write', kind: 'fraction', default: 0.1, doc: 'fraction of the heap each writes' },
    { name: 'exit', kind: 'fraction', default: 0.5, doc: 'fraction of workers that exit' },
    { name: 'sleep_ms', kind: 'int', default: 60000, doc: 'time for khugepaged afterwards' },
    ENABLED('always'),
    MTHP,
    RAM('1GiB'),
    SEED,
  ],
  build(p) {
    const rng = new Rng(n(p.seed));
    const timeline: Ev[] = [
      { op: 'mmap', proc: 'server', vma: 'heap', size: n(p.heap), align: '1pmd' },
      { op: 'write', proc: 'server', vma: 'heap' },
    ];
    const kids = n(p.children);
    for (let c = 0; c < kids; c++) {
      const child = `worker${c}`;
      timeline.push(
        { op: 'fork', proc: 'server', child },
        {
          op: 'write',
          proc: child,
          vma: 'heap',
          pattern: { random: n(p.write), seed: rng.int(2 ** 31) },
        },
      );
    }
    timeline.push({ op: 'report', label: 'forked' });
    for (let c = 0; c < kids; c++)
      if (rng.next() < n(p.exit)) timeline.push({ op: 'exit', proc: `worker${c}` });
    timeline.push(
      { op: 'madvise', proc: 'server', vma: 'heap', advice: 'hugepage' },
      { op: 'sleep', ms: n(p.sleep_ms) },
      { op: 'report', label: 'after-khugepaged' },
    );
    return {
      ...header('fork-server', forkServer.summary, p, {
        enabled: str(p.enabled),
        ...mthpSysfs(p.mthp),
      }),
      processes: [{ name: 'server' }],
      timeline,
    };
  },
};

const manySmallVmas: Generator = {
  name: 'many-small-vmas',
  summary: 'many VMAs smaller than a PMD, faulted with small pages, then mTHP collapse',
  doc:
    'Many small anonymous mappings (thread stacks, arenas, JIT regions) that no PMD fits in, ' +
    'next to one PMD-sized arena (which registers the process with khugepaged). They are ' +
    'faulted with small pages, then MADV_HUGEPAGE and the mTHP sizes are enabled and khugepaged ' +
    'runs. On arm64 with 16K or 64K pages the PMD is 32M or 512M, so nearly all memory is in ' +
    'such VMAs: only collapse designs that need not detach the whole page table (pte-level) ' +
    'reach them.',
  params: [
    { name: 'count', kind: 'int', default: 64, doc: 'number of small VMAs' },
    { name: 'size', kind: 'size', default: '1MiB', doc: 'size of each small VMA' },
    { name: 'anchor', kind: 'int', default: 1, doc: 'PMDs in the arena VMA (0: none)' },
    { name: 'density', kind: 'fraction', default: 0.75, doc: 'fraction of pages written' },
    {
      name: 'geometry',
      kind: 'string',
      default: 'x86-64-4k',
      doc: 'x86-64-4k, arm64-4k, arm64-16k or arm64-64k',
    },
    { name: 'sleep_ms', kind: 'int', default: 60000, doc: 'time for khugepaged' },
    ENABLED('madvise'),
    { ...MTHP, default: '' },
    MAX_PTES_NONE,
    RAM('2GiB'),
    SEED,
  ],
  build(p) {
    const size = n(p.size);
    // Gaps keep the mappings from merging; every VMA starts on a 64K boundary.
    const slot = Math.ceil((size + 65536) / 65536) * 65536;
    const base = 0x4000_0000;
    const density = n(p.density);
    const timeline: Ev[] = [];
    const vmas: string[] = [];
    if (n(p.anchor) > 0) {
      timeline.push(
        { op: 'mmap', proc: 'app', vma: 'arena', size: `${n(p.anchor)}pmd`, align: '1pmd' },
        { op: 'write', proc: 'app', vma: 'arena', pattern: { random: density, seed: n(p.seed) } },
      );
      vmas.push('arena');
    }
    for (let i = 0; i < n(p.count); i++) {
      const vma = `v${i}`;
      timeline.push(
        { op: 'mmap', proc: 'app', vma, size, addr: base + i * slot },
        { op: 'write', proc: 'app', vma, pattern: { random: density, seed: n(p.seed) + i + 1 } },
      );
      vmas.push(vma);
    }
    timeline.push(
      { op: 'report', label: 'faulted' },
      { op: 'sysfs', path: 'enabled', value: str(p.enabled) },
      ...Object.entries(mthpSysfs(p.mthp)).map(([path, value]): Ev => ({
        op: 'sysfs',
        path,
        value,
      })),
      ...vmas.map((vma): Ev => ({ op: 'madvise', proc: 'app', vma, advice: 'hugepage' })),
      { op: 'sleep', ms: n(p.sleep_ms) },
      { op: 'report', label: 'after-khugepaged' },
    );
    const geometry = str(p.geometry) as NonNullable<ScenarioInput['geometry']>;
    return {
      ...header('many-small-vmas', manySmallVmas.summary, p, {
        // Faulted with small pages; the sizes are enabled afterwards.
        enabled: 'never',
        'khugepaged/max_ptes_none': str(p.max_ptes_none),
      }),
      geometry,
      processes: [{ name: 'app' }],
      timeline,
    };
  },
};

export const GENERATORS: readonly Generator[] = [
  stride,
  redis3,
  sparseHeap,
  mallocChurn,
  frag(50),
  frag(100),
  forkServer,
  manySmallVmas,
];

export function generatorByName(name: string): Generator {
  const g = GENERATORS.find((x) => x.name === name);
  if (!g)
    throw new WorkloadError(
      `no workload named "${name}" (workloads: ${GENERATORS.map((x) => x.name).join(', ')})`,
    );
  return g;
}

function parseParam(spec: ParamSpec, raw: string | number): string | number {
  const bad = (what: string) =>
    new WorkloadError(`${spec.name}: expected ${what}, got ${JSON.stringify(raw)}`);
  switch (spec.kind) {
    case 'size':
      try {
        const v = parseSize(raw);
        if (v <= 0) throw bad('a size greater than 0');
        return v;
      } catch (e) {
        if (e instanceof WorkloadError) throw e;
        throw bad('a size like "2MiB"');
      }
    case 'int': {
      const v = Number(raw);
      if (!Number.isSafeInteger(v) || v < 0) throw bad('a whole number');
      return v;
    }
    case 'fraction': {
      const v = Number(raw);
      if (String(raw).trim() === '' || !(v >= 0 && v <= 1)) throw bad('a number from 0 to 1');
      return v;
    }
    case 'string':
      return String(raw);
  }
}

/** The parameters with defaults filled in, each parsed and checked. */
export function resolveParams(g: Generator, given: Record<string, string>): ParamValues {
  const out: ParamValues = {};
  for (const [k, v] of Object.entries(given)) {
    const spec = g.params.find((s) => s.name === k);
    if (!spec)
      throw new WorkloadError(
        `${g.name} has no parameter "${k}" (parameters: ${g.params.map((s) => s.name).join(', ')})`,
      );
    out[k] = parseParam(spec, v);
  }
  for (const s of g.params) if (!(s.name in out)) out[s.name] = parseParam(s, s.default);
  return out;
}

/** "k=v" strings to a record (later ones win). */
export function parseAssignments(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(kv);
    if (!m) throw new WorkloadError(`expected name=value, got ${JSON.stringify(kv)}`);
    out[m[1]] = m[2];
  }
  return out;
}

/** Build a workload's scenario (not yet validated). */
export function generate(name: string, params: Record<string, string> = {}): ScenarioInput {
  const g = generatorByName(name);
  return g.build(resolveParams(g, params));
}

/**
 * A scenario argument naming a workload: "workload:NAME" or "workload:NAME:k=v,k=v". Returns
 * null for anything else.
 */
export function parseWorkloadRef(
  arg: string,
): { name: string; params: Record<string, string> } | null {
  const m = /^workload:([A-Za-z0-9-]+)(?::(.*))?$/.exec(arg);
  if (!m) return null;
  const params = m[2] ? parseAssignments(m[2].split(',').filter(Boolean)) : {};
  return { name: m[1], params };
}
