// Inputs that used to end in an internal error, unbounded work or a wrong success (issue 16):
// RAM sizes the model cannot hold, run results with mistyped metrics, DAMON records with bad
// numbers, trailing bytes or a region the size of the address space, an empty JSON Lines trace,
// and MADV_COLLAPSE on a range outside its VMA.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Kernel } from '../src/mm/kernel.ts';
import { runWithMetrics } from '../src/report/collect.ts';
import { parseResult } from '../src/report/input.ts';
import { renderRunReport } from '../src/report/report-text.ts';
import { allPlots } from '../src/report/plots.ts';
import { loadScenario } from '../src/scenario/load.ts';
import { parseSize } from '../src/scenario/size.ts';
import { damonOps, parseDamonJson } from '../src/workload/damon.ts';
import { replay } from '../src/workload/replay.ts';
import { oneLineError, ROOT, thpsim } from './support/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'thpsim-i16-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function file(name: string, text: string | Buffer): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

const MMAP = '{"op":"mmap","proc":"a","vma":"h","size":"4MiB"}\n';

describe('RAM sizes the model cannot hold are refused with a reason', () => {
  it('the kernel refuses too small and too large sizes with the reason', () => {
    for (const ram of [0, 1, 4096, 9007199254740991, 2 ** 44])
      expect(() => new Kernel({ ramBytes: ram })).toThrow(
        /^ram: .* (too small|more than the model can hold)/,
      );
    expect(() => new Kernel({ ramBytes: 0 })).toThrow(/too small: the model needs at least 2/);
    expect(() => new Kernel({ ramBytes: 2 ** 44 })).toThrow(
      /more than the model can hold: at most 8TiB/,
    );
  });

  it('sizes take PiB and EiB; beyond what is counted exactly they are refused with a reason', () => {
    expect(parseSize('1PiB')).toBe(2 ** 50);
    expect(parseSize('2p')).toBe(2 ** 51);
    expect(() => parseSize('1EiB')).toThrow(/more than 8PiB, the largest size/);
  });

  it.each([
    ['a trace header "ram":"0MiB"', ['replay', 'HEADER0'], /ram: 0 bytes is too small/],
    ['--ram 1', ['replay', '--ram', '1', 'OK'], /--ram: 1 bytes is too small/],
    [
      '--ram 9007199254740991',
      ['replay', '--ram', '9007199254740991', 'OK'],
      /--ram: .* is more than the model can hold/,
    ],
    ['--ram 1EiB', ['replay', '--ram', '1EiB', 'OK'], /--ram: expected a size/],
  ])('replay with %s: one line, no internal error', (_what, args, msg) => {
    const header0 = file('h0.jsonl', '{"format":"thpsim-trace","version":1,"ram":"0MiB"}\n' + MMAP);
    const ok = file('ok.jsonl', MMAP);
    const argv = args.map((a) => (a === 'HEADER0' ? header0 : a === 'OK' ? ok : a));
    const line = oneLineError(thpsim(argv), 2);
    expect(line).not.toMatch(/internal error/);
    expect(line).toMatch(msg);
  });

  it('a scenario with ram: 9007199254740991 names the file and the reason', () => {
    const s = file(
      'big.yaml',
      'version: 1\nname: big\nram: 9007199254740991\nprocesses: [{name: a}]\ntimeline:\n  - { op: mmap, proc: a, vma: h, size: 2MiB }\n',
    );
    const line = oneLineError(thpsim(['run', s]), 2);
    expect(line).toMatch(/big\.yaml: .*more than the model can hold/);
  });
});

describe('report on a run result whose metrics have the wrong types', () => {
  const run = JSON.parse(
    JSON.stringify(runWithMetrics(loadScenario(join(ROOT, 'examples/mthp-creep.yaml')))),
  ) as Record<string, unknown> & { metrics: Record<string, unknown> };

  it('the valid result passes', () => {
    expect(parseResult(JSON.stringify(run), false).kind).toBe('run');
  });

  it('metrics.collapseCosts: 1000000000 is a clear schema error', () => {
    const bad = { ...run, metrics: { ...run.metrics, collapseCosts: 1_000_000_000 } };
    expect(() => parseResult(JSON.stringify(bad), false)).toThrow(
      /not a valid run result: metrics\.collapseCosts: /,
    );
  });

  // Every field of metrics (and one level below) replaced by a value of the wrong type: either
  // the schema refuses it, or the report and the plots still render.
  const wrong: unknown[] = [1e9, 'x', null, [], {}, true];
  const paths: string[][] = [];
  for (const [k, v] of Object.entries(run.metrics)) {
    paths.push([k]);
    if (Array.isArray(v) && v.length > 0 && v[0] && typeof v[0] === 'object')
      for (const k2 of Object.keys(v[0] as object)) paths.push([k, '0', k2]);
    else if (v && typeof v === 'object' && !Array.isArray(v))
      for (const k2 of Object.keys(v)) paths.push([k, k2]);
  }
  it(`${paths.length} fields x ${wrong.length} wrong values: refused or rendered, never a TypeError`, () => {
    for (const path of paths)
      for (const w of wrong) {
        const copy = JSON.parse(JSON.stringify(run)) as Record<string, unknown>;
        let o = copy.metrics as Record<string, unknown>;
        for (const p of path.slice(0, -1)) o = o[p] as Record<string, unknown>;
        o[path[path.length - 1]] = w;
        let input;
        try {
          input = parseResult(JSON.stringify(copy), false);
        } catch (e) {
          expect((e as Error).message, path.join('.')).toMatch(/^not a valid run result: /);
          continue;
        }
        if (input.kind !== 'run') continue;
        expect(() => renderRunReport(input.run, { color: false }), path.join('.')).not.toThrow();
        expect(() => allPlots(input.run), path.join('.')).not.toThrow();
      }
  });
});

describe('DAMON json_compressed', () => {
  const doc = (start: unknown) =>
    JSON.stringify([
      {
        target_id: 0,
        snapshots: [
          {
            start_time: '0',
            end_time: '100000000',
            regions: [{ start, end: '140,000,000,000,000', nr_accesses: { samples: 5 } }],
          },
        ],
      },
    ]);

  it.each([' ', '', '1 2', '0x10'])('"start": %j is refused, not read as 0', (start) => {
    expect(() => parseDamonJson('r.json', Buffer.from(doc(start)))).toThrow(
      /region 0 start: expected a whole number/,
    );
  });

  it('bytes after the end of the zlib stream are refused', () => {
    const z = deflateSync(doc('139,000,000,000,000'));
    expect(parseDamonJson('r', z)).toHaveLength(1);
    expect(() => parseDamonJson('r', Buffer.concat([z, Buffer.from('garbage')]))).toThrow(
      /7 bytes after the end of the zlib stream/,
    );
  });

  it('a region of 127 TiB (0-139673965645824) fails fast with a clear error', () => {
    const text = doc('0').replace('140,000,000,000,000', '139673965645824');
    const snaps = parseDamonJson('huge.json', Buffer.from(text));
    const t0 = performance.now();
    expect(() =>
      replay(() => damonOps(snaps), { source: 'huge.json', format: 'damon-json' }),
    ).toThrow(/region 0x0-0x7f08611b5000 \(.*\) is larger than the machine's RAM \(4GiB\)/);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe('accepted but wrong', () => {
  it('replay of an empty JSON Lines file fails as lackey and DAMON do', () => {
    const empty = file('empty.jsonl', '');
    expect(oneLineError(thpsim(['replay', empty]), 2)).toMatch(/empty\.jsonl: no events/);
    const headerOnly = file('header.jsonl', '{"format":"thpsim-trace","version":1}\n\n# x\n');
    expect(oneLineError(thpsim(['replay', headerOnly]), 2)).toMatch(/no events/);
  });

  it('collapse --offset 100MiB on a 12 MiB VMA says the range is outside the VMA', () => {
    const line = oneLineError(
      thpsim([
        'collapse',
        'khugepaged-timeline',
        '--proc',
        'app',
        '--vma',
        'heap',
        '--offset',
        '100MiB',
      ]),
      2,
    );
    expect(line).toMatch(/outside vma "heap" \(12MiB\).*ENOMEM/);
  });
});
