// The walker registry: every walker registered once (nothing of the three lists it replaced is
// lost), every one reachable from a case file and run from it, and `thpsim check --walkers`.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadCaseFile } from '../../src/check/case-file.ts';
import { UNMODELLED, WALKERS, explore } from '../../src/check/index.ts';
import { stepName } from '../../src/check/names.ts';
import { worldInfo, type WorldSpec } from '../../src/check/world-build.ts';
import { KERNEL_BUGS } from '../../src/mm/bugs.ts';
import { thpsim } from '../support/cli.ts';

/** The modules src/check/index.ts used to register wholesale. */
const OLD_MODULES = [
  '../../src/khugepaged/collapse-anon.ts',
  '../../src/khugepaged/collapse-file.ts',
  '../../src/mm/fault.ts',
  '../../src/mm/madvise.ts',
  '../../src/mm/pagewalk.ts',
  '../../src/mm/vma-ops.ts',
  '../../src/mm/mmap.ts',
  '../../src/mm/zap.ts',
  '../../src/walkers/gup-fast.ts',
  '../../src/walkers/gup-slow.ts',
  '../../src/walkers/guard.ts',
  '../../src/walkers/mincore.ts',
  '../../src/walkers/numa-hinting.ts',
  '../../src/walkers/oom-reaper.ts',
  '../../src/walkers/uffd.ts',
  '../../src/walkers/rmap-walk.ts',
  '../../src/check/world.ts',
];

/** names.ts's old table of kernel names that differ from the model's in more than case. */
const OLD_NAMES: Record<string, string> = {
  collapseHugePage: 'collapse_huge_page',
  faultUser: 'do_user_addr_fault',
  handleMmFault: 'handle_mm_fault',
  hwAccess: 'hw_walk',
  userAccess: 'user_access',
  pteAlloc: 'pmd_install',
  pmdAlloc: 'pmd_alloc',
  zapRange: 'unmap_page_range',
  doMadvise: 'do_madvise',
  gupFast: 'gup_fast',
  rmapWalkAnon: 'rmap_walk_anon',
  migrateFolio: 'migrate_pages',
  vmaStartWrite: 'vma_start_write',
  mmapWriteUnlock: 'mmap_write_unlock',
  tlbUserWrite: 'user_write',
  gupSlow: 'get_user_pages',
  uffdCopy: 'mfill_atomic_copy',
  changeHugePmdNuma: 'change_huge_pmd',
  mincoreWalk: 'mincore_walk',
  guardInstall: 'madvise_guard_install',
  oomReap: 'oom_reap_task_mm',
  retractPageTables: 'retract_page_tables',
  pteOffsetMapLock: 'pte_offset_map_lock',
  doMunmap: 'do_munmap',
  unmapRegion: 'unmap_region',
};

/** The old case-file switch's walkers and the vocabulary. */
const OLD_CASE_WALKERS = [
  'collapse',
  'fault',
  'migrate',
  'dontneed',
  'gup-fast',
  'gup-slow',
  'munmap',
  'numa-hinting',
  'mincore',
  'uffd-copy',
  'oom-reaper',
];
const VOCABULARY = [
  'fault',
  'gup-fast',
  'gup-slow',
  'hw-walk',
  'rmap-walk',
  'migrate',
  'split-pmd',
  'collapse',
  'madvise-collapse',
  'retract',
  'munmap',
  'dontneed',
  'mremap',
  'mprotect',
  'numa-hinting',
  'fork',
  'uffd-copy',
  'guard-install',
  'oom-reaper',
  'try-to-unmap',
];

const names = WALKERS.map((w) => w.name);

describe('the walker registry', () => {
  it('names every step function the old module list named, with the old kernel names', async () => {
    for (const path of OLD_MODULES) {
      const mod = (await import(path)) as Record<string, unknown>;
      for (const [fn, v] of Object.entries(mod)) {
        if (typeof v !== 'function' || v.constructor.name !== 'GeneratorFunction') continue;
        const gen = (v as () => object).call(null);
        const n = stepName(gen);
        expect(n, `${path} ${fn}`).toBeDefined();
        if (OLD_NAMES[fn]) expect(n, fn).toBe(OLD_NAMES[fn]);
      }
    }
  });

  it('registers each walker once, with the old case-file walkers and the whole vocabulary', () => {
    expect(new Set(names).size).toBe(names.length);
    for (const n of [...OLD_CASE_WALKERS, ...VOCABULARY]) expect(names, n).toContain(n);
    for (const u of UNMODELLED) expect(u.reason).toMatch(/not yet modelled|only/);
  });

  it('lists the bug switches from the type (no list of its own to drift)', () => {
    expect(KERNEL_BUGS).toContain('no-full-pmd-check');
    expect(KERNEL_BUGS).toContain('gup-fast-reread-pmd');
    expect(new Set(KERNEL_BUGS).size).toBe(KERNEL_BUGS.length);
  });
});

/** Worlds of the vocabulary round trip: two VMAs sharing a table, and one PMD THP. */
const WORLDS: Record<string, WorldSpec> = {
  'anon+shmem': {
    vmas: [
      { name: 'A', kind: 'anon', from: 0, to: 256 },
      { name: 'B', kind: 'shmem', from: 256, to: 512 },
    ],
    populate: [
      { as: 'small', pages: Array.from({ length: 16 }, (_, i) => i) },
      { as: 'small', pages: Array.from({ length: 16 }, (_, i) => 256 + i) },
    ],
  },
  'anon+file': {
    vmas: [
      { name: 'A', kind: 'anon', from: 0, to: 256 },
      { name: 'F', kind: 'file', from: 256, to: 512 },
    ],
    populate: [
      { as: 'small', pages: Array.from({ length: 16 }, (_, i) => i) },
      { as: 'small', pages: Array.from({ length: 16 }, (_, i) => 256 + i) },
    ],
  },
  pmd: { vmas: [{ name: 'A', kind: 'anon', from: 0, to: 512 }], populate: [{ as: 'pmd' }] },
};

describe('case files say everything the registry can', () => {
  const dir = mkdtempSync(join(tmpdir(), 'thpsim-walkers-'));
  const rows = Object.entries(WORLDS).flatMap(([wname, spec]) => {
    const info = worldInfo(spec);
    return WALKERS.flatMap((w) =>
      spec.vmas.map((v) => [wname, w.name, v.name, w.sample(info, v)] as const),
    ).filter(([, , , a]) => !('skip' in (a as object)));
  });

  it('every walker has a place to run', () => {
    for (const n of names)
      expect(
        rows.some((r) => r[1] === n),
        n,
      ).toBe(true);
  });

  it.each(rows)(
    '%s: %s on %s round-trips through a file and runs alone',
    (wname, walker, vma, args) => {
      const spec = WORLDS[wname];
      const file = join(dir, `${wname}-${walker}-${vma}.yaml`);
      const world = { ...spec, populate: spec.populate };
      writeFileSync(
        file,
        stringify({
          version: 1,
          kind: 'check',
          name: `${walker}-${vma}`,
          world,
          threads: [{ walker, ...(args as object) }],
          expect: 'verified',
        }),
      );
      const c = loadCaseFile(file);
      expect(c.threads).toHaveLength(1);
      const r = explore(c, { maxPreemptions: 0 });
      expect(r.counterexample?.message, `${walker}`).toBeUndefined();
      expect(r.ok).toBe(true);
    },
  );

  it('a bad field names the file and says what fits', () => {
    const file = join(dir, 'bad.yaml');
    const bad = (threads: unknown[], world: object = WORLDS['anon+shmem']) => {
      writeFileSync(
        file,
        stringify({ version: 1, kind: 'check', name: 'b', world, threads, expect: 'verified' }),
      );
      try {
        loadCaseFile(file);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    };
    expect(bad([{ walker: 'fualt', page: 3 }])).toMatch(
      /bad\.yaml: threads\[0\]\.walker: unknown walker "fualt", did you mean "fault"\?/,
    );
    expect(bad([{ walker: 'retract', vma: 'A' }])).toMatch(
      /threads\[0\]\.vma: retract needs a file or shmem VMA/,
    );
    expect(bad([{ walker: 'migrate', page: 300 }])).toMatch(
      /threads\[0\]\.page: page 300 is not written/,
    );
    expect(bad([{ walker: 'uffd-copy', page: 300 }])).toMatch(/not yet modelled/);
    expect(bad([{ walker: 'fault', page: 3 }], { ...WORLDS.pmd, bugs: ['no-ipi-snyc'] })).toMatch(
      /world\.bugs\[0\]: unknown bug switch "no-ipi-snyc", did you mean "no-ipi-sync"\?/,
    );
    expect(
      bad([{ walker: 'fault', page: 3 }], {
        vmas: [
          { name: 'A', kind: 'anon', from: 0, to: 256 },
          { name: 'B', kind: 'anon', from: 200, to: 512 },
        ],
      }),
    ).toMatch(/world\.vmas\[1\]\.from: VMA B overlaps VMA A/);
    expect(bad([{ walker: 'fault', page: 3 }], { shared: true, vmas: WORLDS.pmd.vmas })).toMatch(
      /world\.shared: the first form .* does not mix with vmas/,
    );
  });
});

describe('thpsim check --walkers', () => {
  it('lists the vocabulary, what is not yet modelled and the bug switches', () => {
    const t = thpsim(['check', '--walkers']);
    expect(t.status).toBe(0);
    for (const n of names) expect(t.stdout).toContain(n);
    expect(t.stdout).toContain('not yet modelled:');
    expect(t.stdout).toContain('no-full-pmd-check');
    const j = JSON.parse(thpsim(['check', '--walkers', '--json']).stdout) as {
      walkers: Array<{ name: string; kernel: string; fields: string[] }>;
      notYetModelled: unknown[];
    };
    expect(j.walkers.map((w) => w.name)).toEqual(names);
    expect(j.walkers.find((w) => w.name === 'collapse')!.fields).toEqual([
      'from',
      'at',
      'order',
      'policy',
    ]);
    expect(j.notYetModelled.length).toBe(UNMODELLED.length);
  });
});
