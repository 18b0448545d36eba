// `thpsim collapse` (MADV_COLLAPSE on a range after a scenario), `thpsim run --trace`, the
// khugepaged timeline of `thpsim run`, and running kernel-selftest files from the command line.

import { oneLineError, thpsim } from './support/cli.ts';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../src/scenario/run.ts';

interface CollapseJson {
  scenario: string;
  proc: string;
  vma: string;
  addr: number;
  length: number;
  errno: string;
  clockMs: number;
  pmds: Array<{
    addr: number;
    result: string;
    none_or_zero: number;
    swap: number;
    shared: number;
    referenced: number;
  }>;
}

const PMD = 2 * 1024 * 1024;

describe('thpsim collapse', () => {
  it('prints the errno and every PMD range; exit 1 when MADV_COLLAPSE fails', () => {
    const r = thpsim(['collapse', 'khugepaged-timeline', '--proc', 'app', '--vma', 'heap']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/MADV_COLLAPSE app\/heap [0-9a-f]+-[0-9a-f]+ \(12MiB\) -> EINVAL/);
    expect(r.stdout).toContain('SCAN_PMD_MAPPED');
    expect(r.stdout).toMatch(/SCAN_NO_PTE_TABLE\s+│ no PTE table/);
    expect(r.stdout).not.toContain('\x1b[');
  });

  it('--json, a range given in PMDs: the swapped PMD is swapped in and collapsed', () => {
    const r = thpsim([
      'collapse',
      'examples/khugepaged-timeline.yaml',
      '--proc',
      'app',
      '--vma',
      'heap',
      '--offset',
      '3pmd',
      '--length',
      '1pmd',
      '--json',
    ]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as CollapseJson;
    expect(j).toMatchObject({
      scenario: 'khugepaged-timeline',
      proc: 'app',
      vma: 'heap',
      errno: 'ok',
    });
    expect(j.length).toBe(PMD);
    expect(j.clockMs).toBe(3000);
    expect(j.pmds).toEqual([
      {
        addr: j.addr,
        result: 'SCAN_SUCCEED',
        none_or_zero: 0,
        swap: 128,
        shared: 0,
        // MADV_COLLAPSE does not count referenced pages.
        referenced: -1,
      },
    ]);
  });

  it('scales with --geometry', () => {
    const j = JSON.parse(
      thpsim([
        'collapse',
        'khugepaged-timeline',
        '--geometry',
        'arm64-16k',
        '--proc',
        'app',
        '--vma',
        'heap',
        '--length',
        '2pmd',
        '--json',
      ]).stdout,
    ) as CollapseJson;
    expect(j.length).toBe(2 * 32 * 1024 * 1024);
    expect(j.pmds.map((p) => p.result)).toEqual(['SCAN_PMD_MAPPED', 'SCAN_PMD_MAPPED']);
  });

  it('bad input is a one-line error with exit status 2', () => {
    expect(
      oneLineError(
        thpsim(['collapse', 'khugepaged-timeline', '--proc', 'app', '--vma', 'stack']),
        2,
      ),
    ).toBe(
      'thpsim: examples/khugepaged-timeline.yaml: process "app" has no vma "stack" at the end of the run (known: cache, heap)',
    );
    expect(
      oneLineError(
        thpsim(['collapse', 'khugepaged-timeline', '--proc', 'ghost', '--vma', 'heap']),
        2,
      ),
    ).toMatch(/no live process "ghost" at the end of the run \(live: app, worker\)$/);
    expect(
      oneLineError(
        thpsim([
          'collapse',
          'khugepaged-timeline',
          '--proc',
          'app',
          '--vma',
          'heap',
          '--length',
          '2 megs',
        ]),
        2,
      ),
    ).toBe(
      'thpsim: --length: expected a size like "2MiB", "1pmd" or "(NR/2) pages", got "2 megs" (unknown unit "megs")',
    );
    expect(oneLineError(thpsim(['collapse', 'khugepaged-timeline', '--vma', 'heap']), 2)).toContain(
      "required option '--proc <name>' not specified",
    );
  });
});

describe('thpsim run: khugepaged timeline and trace', () => {
  it('shows per PMD range what khugepaged and MADV_COLLAPSE did, and why', () => {
    const r = thpsim(['run', 'khugepaged-timeline']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const out = r.stdout;
    expect(out).toMatch(
      /khugepaged and MADV_COLLAPSE, per PMD range \(pages_collapsed 4, full_scans \d+\)/,
    );
    for (const [result, why] of [
      ['SCAN_SUCCEED', 'collapsed'],
      ['SCAN_EXCEED_NONE_PTE', 'more empty PTEs than max_ptes_none'],
      ['SCAN_EXCEED_SWAP_PTE', 'more swap PTEs than max_ptes_swap'],
      ['SCAN_EXCEED_SHARED_PTE', 'more shared PTEs than max_ptes_shared'],
      ['SCAN_NO_PTE_TABLE', 'no PTE table'],
    ])
      expect(out).toMatch(new RegExp(`${result}\\s+│ ${why}`));
    expect(out).toMatch(/│\s+3000 │ madvise\s+│ app\/heap\+2MiB/);
    expect(out).toContain('pages_collapsed 4, full_scans');
    expect(out).not.toContain('trace (');
  });

  it('--trace prints one line per tracepoint', () => {
    const out = thpsim(['run', 'khugepaged-timeline', '--trace']).stdout;
    const lines = out.split('\n').filter((l) => /^ {2}t=\d+ /.test(l));
    expect(lines.length).toBeGreaterThan(100);
    for (const name of [
      'mm_khugepaged_scan_pmd',
      'mm_collapse_huge_page',
      'mm_collapse_huge_page_isolate',
      'mm_collapse_huge_page_swapin',
      'thpsim_pmd_result',
    ])
      expect(
        lines.some((l) => l.includes(` ${name} `)),
        name,
      ).toBe(true);
    expect(out).toMatch(
      /^ {2}t=\d+ mm_khugepaged_scan_pmd mm=1 pfn=-?\d+ referenced=\d+ none_or_zero=\d+ status=SCAN_\w+ unmapped=\d+/m,
    );
    expect(out).toMatch(/^trace \(\d+ events\)$/m);
  });

  it('--json --trace includes the trace and the attempts', () => {
    const r = JSON.parse(
      thpsim(['run', 'khugepaged-timeline', '--json', '--trace']).stdout,
    ) as RunResult;
    expect(r.trace!.length).toBeGreaterThan(100);
    expect(r.trace![0]).toMatchObject({
      t: expect.any(Number),
      name: expect.any(String),
      fields: {},
    });
    expect(r.khugepaged.pages_collapsed).toBe(4);
    expect(r.khugepaged.attempts.filter((a) => a.result === 'SCAN_SUCCEED')).toHaveLength(5);
    const plain = JSON.parse(thpsim(['run', 'khugepaged-timeline', '--json']).stdout) as RunResult;
    expect(plain.trace).toBeUndefined();
    expect(plain.reports.at(-1)!.khugepaged.pages_collapsed).toBe(4);
  });

  it('runs a kernel-selftest file in a chosen context and memory type', () => {
    const r = JSON.parse(
      thpsim([
        'run',
        'test/kernel-selftests/collapse_max_ptes_none.yaml',
        '--context',
        'madvise',
        '--geometry',
        'arm64-4k',
        '--json',
      ]).stdout,
    ) as RunResult;
    expect(r.variant).toEqual({ context: 'madvise', mem: 'anon' });
    expect(r.sysfs).toMatchObject({ enabled: 'madvise', 'khugepaged/pages_to_scan': '4096' });
    expect(r.events.find((e) => e.op === 'collapse_ctx')).toMatchObject({
      context: 'madvise',
      expected: 'collapsed',
      observed: 'collapsed',
      result: 'ok',
    });
    const text = thpsim(['run', 'test/kernel-selftests/collapse_max_ptes_none.yaml']).stdout;
    expect(text).toMatch(
      /collapse_ctx test\/area .* khugepaged context: not collapsed, as expected/,
    );
    expect(text).toMatch(/khugepaged context: collapsed, as expected/);
    expect(
      oneLineError(
        thpsim(['run', 'test/kernel-selftests/collapse_empty.yaml', '--mem', 'file']),
        2,
      ),
    ).toBe(
      'thpsim: test/kernel-selftests/collapse_empty.yaml: mem "file" is not one of this scenario\'s: anon',
    );
    expect(
      oneLineError(
        thpsim(['run', 'test/kernel-selftests/collapse_empty.yaml', '--variant', 'oops']),
        2,
      ),
    ).toBe('thpsim: --variant: expected name=value, got "oops"');
    expect(
      oneLineError(
        thpsim([
          'run',
          'test/kernel-selftests/collapse_compound_extreme.yaml',
          '--geometry',
          'arm64-64k',
        ]),
        2,
      ),
    ).toMatch(
      /skipped on this geometry: collapse_compound_extreme\(\) is skipped where the PMD is larger than 32 MiB/,
    );
    const policy = JSON.parse(
      thpsim([
        'run',
        'test/kernel-selftests/prctl_thp_disable_except_advised.yaml',
        '--variant',
        'policy=always',
        '--json',
      ]).stdout,
    ) as RunResult;
    expect(policy.variant).toEqual({ mem: 'anon', policy: 'always' });
  });
});

describe('the progress bar', () => {
  it('draws on a terminal stream only, and never with --json', async () => {
    const { PassThrough } = await import('node:stream');
    const { progressBar } = await import('../src/cli/commands.ts');
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
    let drawn = '';
    stream.on('data', (b: Buffer) => (drawn += b.toString()));
    const io = {
      out: () => {},
      err: () => {},
      color: false,
      progress: stream as unknown as NodeJS.WriteStream,
    };
    const bar = progressBar(io, true, 0);
    bar.onProgress!({ done: 0.5, total: 4, clockMs: 10 });
    bar.onProgress!({ done: 4, total: 4, clockMs: 3000 });
    bar.stop();
    expect(drawn).toMatch(/thpsim \[.*\] \d+% \| event \d\/4 \| t=\d+ ms simulated/);
    expect(progressBar(io, false, 0).onProgress).toBeUndefined();
    expect(progressBar({ ...io, progress: undefined }, true, 0).onProgress).toBeUndefined();
  });
});
