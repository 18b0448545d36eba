// Trace inputs: the JSON Lines event trace, Valgrind lackey traces (a real one of a C program
// built here) and DAMON records (the real damo samples), streaming and fuzzed.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type DamonSnapshot,
  damonOps,
  parseDamonJson,
  parseDamonPerfScript,
} from '../src/workload/damon.ts';
import { parseJsonlTrace } from '../src/workload/jsonl.ts';
import { type LackeyStats, parseLackey } from '../src/workload/lackey.ts';
import { CHUNK_BYTES, InputError, fileLines, textLines } from '../src/workload/lines.ts';
import { type ReplayOp, replay } from '../src/workload/replay.ts';
import { ROOT, oneLineError, thpsim } from './support/cli.ts';

// shared/ lies beside the checkout (in CI: beside the fresh clone).
const DAMO =
  [join(ROOT, '..', 'shared', 'data', 'damo'), '/work/shared/data/damo'].find((d) =>
    existsSync(join(d, 'perf.data.script')),
  ) ?? join(ROOT, '..', 'shared', 'data', 'damo');
const PERF = join(DAMO, 'perf.data.script');
const JSONZ = join(DAMO, 'damon.data.json_compressed');
const dir = mkdtempSync(join(tmpdir(), 'thpsim-traces-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TRACE = [
  '{"format":"thpsim-trace","version":1,"ram":"256MiB","sysfs":{"enabled":"madvise"}}',
  '# a heap, advised, written sparsely, then khugepaged',
  '{"op":"mmap","proc":"app","vma":"heap","size":"8MiB","align":"2MiB"}',
  '{"op":"madvise","proc":"app","vma":"heap","advice":"hugepage"}',
  '{"op":"write","proc":"app","vma":"heap","offset":"2MiB","length":"2MiB","stride":"8KiB"}',
  '{"op":"fork","proc":"app","child":"kid"}',
  '{"op":"touch","proc":"kid","vma":"heap","length":"4KiB"}',
  '{"op":"exit","proc":"kid"}',
  '{"op":"sleep","ms":30000}',
  '{"op":"munmap","proc":"app","vma":"heap","offset":"6MiB","length":"2MiB"}',
  '',
].join('\n');

function replayText(text: string) {
  return replay((h) => parseJsonlTrace(textLines(text, 't.jsonl'), h), {
    source: 't.jsonl',
    format: 'jsonl',
  });
}

describe('JSON Lines trace', () => {
  it('replays: header, VMAs by name, fork, exit, sleep with khugepaged', () => {
    const r = replayText(TRACE);
    expect(r.config.ramBytes).toBe(256 * 1024 * 1024);
    expect(r.config.sysfs).toEqual({ enabled: 'madvise' });
    expect(r.input.ops).toBe(8);
    // Half the pages of one PMD range written: the fault already made it a THP (madvised).
    expect(r.processes).toEqual([
      expect.objectContaining({ name: 'app', anonHugeKb: 2048, rssKb: 2048 }),
    ]);
    expect(r.clockMs).toBe(30000);
    expect(r.accesses.total).toBe(256 + 1);
  });

  it('rejects bad lines with the line number and the reason', () => {
    const bad = (line: string, re: RegExp) =>
      expect(() => replayText(`{"op":"mmap","proc":"a","vma":"h","size":4096}\n${line}\n`)).toThrow(
        re,
      );
    bad('{"op":"write","proc":"a","vma":"x"}', /t\.jsonl:2: unknown vma "x" in process "a"/);
    bad('{"op":"write","proc":"b","vma":"h"}', /t\.jsonl:2: unknown process "b"/);
    bad('{"op":"jump"}', /t\.jsonl:2: op: /);
    bad('{"op":"mmap","proc":"a","vma":"g","size":"2 megs"}', /t\.jsonl:2: size: expected a size/);
    bad('{"op":"sleep","ms":1,"extra":1}', /t\.jsonl:2: .*extra/);
    bad('not json', /t\.jsonl:2: not JSON/);
    bad('{"op":"sleep","ms":90000000}', /t\.jsonl:2: ms: /);
    bad('{"format":"thpsim-trace","version":1}', /t\.jsonl:2: the header must be the first line/);
    bad('{"op":"write","proc":"a","vma":"h","offset":8192}', /outside vma "h"/);
  });

  it('streams: the first event is replayed after one chunk of a large file is read', () => {
    const file = join(dir, 'big.jsonl');
    const lines = ['{"op":"mmap","proc":"a","vma":"h","size":"64KiB"}'];
    for (let i = 0; i < 40_000; i++)
      lines.push('{"op":"touch","proc":"a","vma":"h","length":4096}');
    writeFileSync(file, lines.join('\n') + '\n');
    const src = fileLines(file);
    const it = parseJsonlTrace(src)[Symbol.iterator]();
    expect(it.next().value).toMatchObject({ op: 'mmap' });
    expect(src.bytesRead).toBeLessThanOrEqual(CHUNK_BYTES);
    let n = 1;
    while (!it.next().done) n++;
    expect(n).toBe(40_001);
    expect(src.bytesRead).toBe(readFileSync(file).length);
  });

  it('a line longer than the limit is an error, not an unbounded buffer', () => {
    const file = join(dir, 'long.jsonl');
    writeFileSync(file, 'x'.repeat(3 * CHUNK_BYTES));
    expect(() => [...fileLines(file, CHUNK_BYTES)]).toThrow(/:1: line longer than 65536 bytes/);
  });
});

describe('lackey', () => {
  it('aggregates accesses per page per interval; writes win over reads', () => {
    const text = [
      '==1== Lackey, an example Valgrind tool',
      'I  04000000,3',
      ' L 10000000,8',
      ' S 10000ffc,8', // straddles two pages
      ' L 10000010,4',
      ' M 20000000,4',
      ' L 30000000,4',
    ].join('\n');
    const stats: LackeyStats = { lines: 0, dataAccesses: 0, intervals: 0, pagesAccessed: 0 };
    const ops = [...parseLackey(textLines(text), { intervalAccesses: 3, intervalMs: 50 }, stats)];
    const acc = ops.filter((o) => o.op === 'access') as Array<Extract<ReplayOp, { op: 'access' }>>;
    expect(acc.map((o) => [o.addr, o.write])).toEqual([
      [0x10000000, true],
      [0x10001000, true],
      [0x20000000, true],
      [0x30000000, false],
    ]);
    expect(ops.filter((o) => o.op === 'sleep')).toHaveLength(2);
    expect(stats).toEqual({ lines: 7, dataAccesses: 5, intervals: 2, pagesAccessed: 4 });
  });

  it('rejects what is not lackey output', () => {
    expect(() => [...parseLackey(textLines(' X 1000,4'))]).toThrow(/:1: not a lackey line/);
    expect(() => [...parseLackey(textLines('==1== only a banner'))]).toThrow(/no data accesses/);
    expect(() => [...parseLackey(textLines(' L ffffffffffff0000,8'))]).toThrow(
      /not a user-space address/,
    );
  });

  const valgrind = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  const cc = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  const why =
    valgrind.status !== 0 ? 'valgrind is not installed' : cc.status !== 0 ? 'no C compiler' : null;
  if (why) console.log(`skipping the real lackey trace: ${why}`);
  it.skipIf(why !== null)(
    'a real lackey trace of a small C program: its 8 MiB buffer is replayed as written pages',
    () => {
      const src = join(dir, 'prog.c');
      writeFileSync(
        src,
        `#include <stdlib.h>
int main(void) {
  size_t n = 8u << 20;
  char *p = malloc(n);
  for (size_t i = 0; i < n; i += 4096) p[i] = (char)i;
  volatile long s = 0;
  for (size_t i = 0; i < n; i += 8192) s += p[i];
  free(p);
  return 0;
}
`,
      );
      execFileSync('cc', ['-O1', '-o', join(dir, 'prog'), src]);
      const log = join(dir, 'prog.lackey');
      execFileSync('valgrind', [
        '--tool=lackey',
        '--trace-mem=yes',
        `--log-file=${log}`,
        join(dir, 'prog'),
      ]);
      const stats: LackeyStats = { lines: 0, dataAccesses: 0, intervals: 0, pagesAccessed: 0 };
      const r = replay(() => parseLackey(fileLines(log), { intervalAccesses: 10_000 }, stats), {
        source: log,
        format: 'lackey',
        header: { ram: 512 * 1024 * 1024 },
        sysfs: [['enabled', 'never']],
      });
      // 2048 pages of the buffer written, plus the program's and the loader's own pages.
      expect(stats.dataAccesses).toBeGreaterThan(3072);
      expect(r.processes[0].rssKb).toBeGreaterThanOrEqual(8 * 1024);
      expect(r.processes[0].anonHugeKb).toBe(0);
      // With THP, the same trace maps the buffer with PMD THPs.
      const thp = thpsim([
        'replay',
        log,
        '--format',
        'lackey',
        '--set',
        'enabled=always',
        '--json',
      ]);
      expect(thp.status).toBe(0);
      expect(JSON.parse(thp.stdout).processes[0].anonHugeKb).toBeGreaterThanOrEqual(6 * 1024);
    },
    60_000,
  );
});

describe('DAMON records (the real damo samples)', () => {
  const check = (snaps: DamonSnapshot[]) => {
    for (const s of snaps) {
      expect(s.regions.length).toBeGreaterThan(0);
      for (let i = 1; i < s.regions.length; i++)
        expect(s.regions[i].start).toBeGreaterThanOrEqual(s.regions[i - 1].end);
    }
  };

  it('perf script: every line belongs to a complete snapshot, regions in order', () => {
    const lines = readFileSync(PERF, 'utf8').split('\n').filter(Boolean).length;
    const snaps = [...parseDamonPerfScript(fileLines(PERF))];
    expect(snaps.reduce((a, s) => a + s.regions.length, 0)).toBe(lines);
    check(snaps);
    expect(new Set(snaps.map((s) => s.target)).size).toBe(1);
    expect(snaps.some((s) => s.regions.some((r) => r.nrAccesses > 0))).toBe(true);
  });

  it('json_compressed: 543 snapshots of one target, regions in order', () => {
    const snaps = parseDamonJson(JSONZ);
    expect(snaps).toHaveLength(543);
    check(snaps);
    const times = snaps.map((s) => s.time);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('replays as a touch pattern: hot regions are written, time advances, khugepaged runs', () => {
    for (const [name, snaps] of [
      ['perf', () => parseDamonPerfScript(fileLines(PERF))],
      ['json', () => parseDamonJson(JSONZ)],
    ] as const) {
      const stats = { snapshots: 0, regions: 0 };
      const r = replay(() => damonOps(snaps(), { maxSnapshots: 60 }, stats), {
        source: name,
        format: name,
        sysfs: [['enabled', 'always']],
      });
      expect(stats.snapshots, name).toBe(60);
      expect(r.accesses.total, name).toBeGreaterThan(1000);
      expect(r.processes[0].rssKb, name).toBeGreaterThan(1024);
      expect(r.clockMs, name).toBeGreaterThan(5000);
    }
  });

  it('a replay is deterministic', () => {
    const run = () =>
      JSON.stringify(
        replay(() => damonOps(parseDamonJson(JSONZ), { maxSnapshots: 15 }), {
          source: 'j',
          format: 'damon-json',
          sysfs: [['enabled', 'always']],
        }),
      );
    expect(run()).toBe(run());
  });

  it('a time stamp that jumps by more than a day is rejected', () => {
    const line = (t: string) =>
      `kdamond.0  4452 [000] ${t}: damon:damon_aggregated: target_id=1 nr_regions=1 4096-8192: 3`;
    const text = [line('100.5'), line('100.6'), line('90100.7')].join('\n');
    expect(() => [...damonOps(parseDamonPerfScript(textLines(text, 'jump')))]).toThrow(
      /^jump:3: snapshot time jumps by 90000 s \(more than a day\): corrupted\?$/,
    );
  });

  it('a snapshot cut short is rejected with the line of its start', () => {
    const text = readFileSync(PERF, 'utf8').split('\n').slice(0, 5).join('\n');
    expect(() => [...parseDamonPerfScript(textLines(text, 'cut'))]).toThrow(
      /cut:1: truncated: the snapshot of target \d+ has 5 of 8 regions/,
    );
  });

  it('thpsim replay reads both formats', () => {
    const r = thpsim(['replay', JSONZ, '--max-snapshots', '20', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).input.format).toBe('damon-json');
    expect(
      oneLineError(thpsim(['replay', join(dir, 'nope.script'), '--format', 'damon-perf'])),
    ).toMatch(/nope\.script: no such file/);
    writeFileSync(join(dir, 'trace.txt'), ' L 1000,4\n');
    expect(oneLineError(thpsim(['replay', join(dir, 'trace.txt')]))).toMatch(
      /cannot tell the format/,
    );
    expect(oneLineError(thpsim(['replay', join(dir, 'trace.txt'), '--format', 'jsonl']))).toMatch(
      /trace\.txt:1: not JSON/,
    );
  });
});

describe('fuzz: every parser rejects garbage with a message, never crashes or hangs', () => {
  const validText = {
    jsonl: TRACE,
    lackey: ' L 10000000,8\n S 10001000,4\nI  04000000,2\n M 20000000,4\n',
    perf: readFileSync(PERF, 'utf8').split('\n').slice(0, 24).join('\n') + '\n',
  };
  const parsers: Record<keyof typeof validText, (t: string) => unknown[]> = {
    jsonl: (t) => [...parseJsonlTrace(textLines(t, 'f'))],
    lackey: (t) => [...parseLackey(textLines(t, 'f'))],
    perf: (t) => [...parseDamonPerfScript(textLines(t, 'f'))],
  };
  const onlyInputErrors = (f: () => unknown) => {
    try {
      f();
      return true;
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      expect(e.message).toMatch(/^f(:\d+)?: \S/);
      return false;
    }
  };

  for (const [name, parse] of Object.entries(parsers)) {
    const valid = validText[name as keyof typeof validText];
    it(`${name}: random bytes are rejected`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 400 }), (bytes) => {
          const text = Buffer.from(bytes).toString('latin1');
          // Random bytes are (almost) never a valid trace; either way, only InputError escapes.
          onlyInputErrors(() => parse(text));
        }),
        { numRuns: 300 },
      );
      expect(onlyInputErrors(() => parse('\u0000\u0001garbage\n'))).toBe(false);
    });
    it(`${name}: truncated and mutated valid input never crashes`, () => {
      fc.assert(
        fc.property(
          fc.nat(valid.length),
          fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
            maxLength: 4,
          }),
          (cut, muts) => {
            const chars = [...valid.slice(0, cut)];
            for (const [i, c] of muts) if (i < chars.length) chars[i] = String.fromCharCode(c);
            onlyInputErrors(() => parse(chars.join('')));
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  it('damon json_compressed: random, truncated and mutated bytes are rejected', () => {
    const valid = readFileSync(JSONZ);
    const json = (b: Buffer) => {
      try {
        parseDamonJson('f', b);
        return true;
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        expect(e.message).toMatch(/^f: \S/);
        return false;
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect(json(Buffer.from(b))).toBe(false);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.nat(valid.length - 1), (cut) => {
        expect(json(valid.subarray(0, cut))).toBe(false);
      }),
      { numRuns: 40 },
    );
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const b = Buffer.from(valid);
        b[i] ^= x;
        json(b); // a flipped byte may still inflate to valid JSON; it must not crash
      }),
      { numRuns: 40 },
    );
  });
});
