import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test as fcTest } from '@fast-check/vitest';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUILTIN_SCENARIO, builtinScenario } from '../src/scenario/builtin.ts';
import { ScenarioError, formatPath } from '../src/scenario/errors.ts';
import { loadScenario, parseScenario, validateScenario } from '../src/scenario/load.ts';
import { type EventRecord, runScenario } from '../src/scenario/run.ts';
import { OPS, type Scenario } from '../src/scenario/schema.ts';
import { SizeError, formatKb, formatSize, parseSize } from '../src/scenario/size.ts';
import {
  type AccessOutcome,
  type Advice,
  Errno,
  Machine,
  type MmapArgs,
  type Mm,
  type SmapsEntry,
} from '../src/sim/machine.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

describe('size parser', () => {
  it('parses numbers and binary units', () => {
    expect(parseSize(4096)).toBe(4096);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('4K')).toBe(4 * KiB);
    expect(parseSize('4k')).toBe(4 * KiB);
    expect(parseSize('64KiB')).toBe(64 * KiB);
    expect(parseSize('2048kB')).toBe(2 * MiB);
    expect(parseSize('512MiB')).toBe(512 * MiB);
    expect(parseSize('2 MiB')).toBe(2 * MiB);
    expect(parseSize('2GiB')).toBe(2 * GiB);
    expect(parseSize('1.5GiB')).toBe(1.5 * GiB);
    expect(parseSize('1T')).toBe(1024 * GiB);
    expect(parseSize('0x200000')).toBe(2 * MiB);
    expect(parseSize('0B')).toBe(0);
  });

  it('rejects anything else with a message naming the value', () => {
    for (const bad of ['2 megs', '', 'MiB', '-1', '1.5', '0.3K', '2MiBs', '0x', '1e3', 'two']) {
      expect(() => parseSize(bad), bad).toThrow(SizeError);
    }
    for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 60, true, null, undefined, {}, []]) {
      expect(() => parseSize(bad), String(bad)).toThrow(SizeError);
    }
    expect(() => parseSize('2 megs')).toThrow(
      'expected a size like "2MiB" or a number of bytes, got "2 megs"',
    );
  });

  it('formats with the largest exact unit', () => {
    expect(formatSize(0)).toBe('0B');
    expect(formatSize(1000)).toBe('1000B');
    expect(formatSize(4096)).toBe('4KiB');
    expect(formatSize(2 * MiB)).toBe('2MiB');
    expect(formatSize(3 * GiB)).toBe('3GiB');
    expect(formatSize(1536 * KiB)).toBe('1536KiB');
    expect(formatKb(4)).toBe('4K');
    expect(formatKb(2048)).toBe('2M');
    expect(formatKb(512 * 1024)).toBe('512M');
  });

  fcTest.prop([fc.maxSafeNat()])('format then parse round-trips', (n) => {
    expect(parseSize(formatSize(n))).toBe(n);
  });

  fcTest.prop([
    fc.integer({ min: 0, max: 2 ** 20 }),
    fc.constantFrom(
      ['', 1],
      ['B', 1],
      ['K', KiB],
      ['KiB', KiB],
      ['kB', KiB],
      ['M', MiB],
      ['MiB', MiB],
      ['G', GiB],
      ['GiB', GiB],
    ),
    fc.boolean(),
  ])('a number with a unit parses to number x unit', (n, [unit, mult], space) => {
    expect(parseSize(`${n}${space && unit ? ' ' : ''}${unit}`)).toBe(n * (mult as number));
  });
});

const HEAD = `version: 1
name: t
processes:
  - name: app
timeline:
  - { op: mmap, proc: app, vma: heap, size: 2MiB }
`;

/** The one-line message for a scenario made of HEAD plus `more`. */
function errorOf(text: string, source = 'scenario.yaml'): string {
  try {
    parseScenario(text, source);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    return msg;
  }
  throw new Error('the scenario was accepted');
}

describe('scenario schema', () => {
  it('accepts a minimal scenario and converts sizes to bytes', () => {
    const s = parseScenario(
      HEAD +
        '  - { op: write, proc: app, vma: heap, offset: 64K, length: 1MiB, pattern: { every: 4 } }\n',
      's.yaml',
    );
    expect(s.timeline[0]).toMatchObject({ op: 'mmap', size: 2 * MiB });
    expect(s.timeline[1]).toMatchObject({ offset: 64 * KiB, length: MiB, pattern: { every: 4 } });
  });

  it('accepts JSON', () => {
    const s = parseScenario(
      JSON.stringify({
        version: 1,
        name: 'j',
        ram: '64MiB',
        processes: [],
        timeline: [{ op: 'shrink' }],
      }),
      'x.json',
    );
    expect(s.ram).toBe(64 * MiB);
  });

  it('names the field path of a bad size', () => {
    expect(errorOf(HEAD + '  - { op: mmap, proc: app, vma: h2, size: 2 megs }\n')).toBe(
      'scenario.yaml: timeline[1].size: expected a size like "2MiB" or a number of bytes, got "2 megs"',
    );
  });

  it('names the field path of a wrong type', () => {
    expect(errorOf(HEAD + '  - { op: exit, proc: 3 }\n')).toBe(
      'scenario.yaml: timeline[1].proc: expected a string, got 3',
    );
    expect(errorOf(HEAD.replace('timeline:\n', 'timeline: 7\nx:\n'))).toMatch(/^scenario\.yaml: /);
    expect(errorOf('version: 1\nname: t\nprocesses: []\ntimeline: {}\n')).toBe(
      'scenario.yaml: timeline: expected a list, got a mapping',
    );
  });

  it('reports an unknown op with the list of ops', () => {
    const msg = errorOf(HEAD + '  - { op: mmapp, proc: app }\n');
    expect(msg).toBe(
      `scenario.yaml: timeline[1].op: unknown op "mmapp" (expected one of: ${OPS.join(', ')})`,
    );
  });

  it('reports a missing op', () => {
    expect(errorOf(HEAD + '  - { proc: app }\n')).toMatch(
      /^scenario\.yaml: timeline\[1\]\.op: required field is missing \(expected one of: mmap, /,
    );
  });

  it('reports an unknown field with the allowed ones', () => {
    expect(errorOf(HEAD + '  - { op: exit, proc: app, foo: 1 }\n')).toBe(
      'scenario.yaml: timeline[1].foo: unknown field (expected one of: op, proc, when)',
    );
    expect(errorOf(HEAD + 'colour: blue\n')).toMatch(
      /^scenario\.yaml: colour: unknown field \(expected one of: version, name, /,
    );
    expect(
      errorOf(HEAD + '  - { op: touch, proc: app, vma: heap, pattern: { every: 2, seed: 1 } }\n'),
    ).toBe('scenario.yaml: timeline[1].pattern.seed: unknown field (expected one of: every)');
    expect(errorOf(HEAD + '  - { op: touch, proc: app, vma: heap, pattern: { evry: 2 } }\n')).toBe(
      'scenario.yaml: timeline[1].pattern: expected "all", {every: n}, {random: fraction, seed?} or {first: n}, got {"evry":2}',
    );
  });

  it('reports a misspelt required field as unknown, with the closest name', () => {
    expect(errorOf(HEAD + '  - { op: mmap, proc: app, vma: x, szie: 2MiB }\n')).toMatch(
      /^scenario\.yaml: timeline\[1\]\.szie: unknown field, did you mean "size"\? \(expected one of: op, /,
    );
    expect(errorOf(HEAD.replace('name: t', 'nmae: t'))).toMatch(
      /^scenario\.yaml: nmae: unknown field, did you mean "name"\? /,
    );
    // Far from every known name: no guess.
    expect(errorOf(HEAD + 'colour: blue\n')).not.toMatch(/did you mean/);
  });

  it('says a directory is a directory', () => {
    expect(() => loadScenario(import.meta.dirname)).toThrow(
      `${import.meta.dirname}: is a directory, not a scenario file`,
    );
  });

  it('reports a missing required field', () => {
    expect(errorOf(HEAD + '  - { op: mmap, proc: app, vma: x }\n')).toBe(
      'scenario.yaml: timeline[1].size: required field is missing (expected a size like "2MiB" or a number of bytes)',
    );
    expect(errorOf('name: t\nprocesses: []\ntimeline: []\n')).toBe(
      'scenario.yaml: version: required field is missing (expected 1)',
    );
  });

  it('reports a wrong version before anything else', () => {
    expect(errorOf('version: 2\nname: x\n')).toBe('scenario.yaml: version: expected 1, got 2');
  });

  it('reports enum values', () => {
    expect(errorOf(HEAD + '  - { op: madvise, proc: app, vma: heap, advice: huge }\n')).toBe(
      'scenario.yaml: timeline[1].advice: expected one of: hugepage, nohugepage, dontneed, free, pageout, collapse, got "huge"',
    );
    expect(errorOf(HEAD.replace('name: t', 'name: t\ngeometry: sparc'))).toMatch(
      /^scenario\.yaml: geometry: expected one of: x86-64-4k, .*got "sparc"$/,
    );
    expect(errorOf(HEAD + '  - { op: mmap, proc: app, vma: y, size: 1MiB, align: 3MiB }\n')).toBe(
      'scenario.yaml: timeline[1].align: expected a power of two like "2MiB", got "3MiB"',
    );
  });

  it('reports an unknown process', () => {
    expect(errorOf(HEAD + '  - { op: exit, proc: bob }\n')).toBe(
      'scenario.yaml: timeline[1].proc: unknown process "bob" (known: app)',
    );
  });

  it('reports a process used before its fork and after its exit', () => {
    expect(
      errorOf(HEAD + '  - { op: exit, proc: kid }\n  - { op: fork, proc: app, child: kid }\n'),
    ).toBe(
      'scenario.yaml: timeline[1].proc: process "kid" does not exist yet (it is forked at timeline[2])',
    );
    expect(errorOf(HEAD + '  - { op: exit, proc: app }\n  - { op: exit, proc: app }\n')).toBe(
      'scenario.yaml: timeline[2].proc: process "app" has exited (at timeline[1])',
    );
  });

  it('reports an unknown vma and a vma used after munmap', () => {
    expect(errorOf(HEAD + '  - { op: touch, proc: app, vma: stack }\n')).toBe(
      'scenario.yaml: timeline[1].vma: unknown vma "stack" in process "app" (known: heap)',
    );
    expect(
      errorOf(
        HEAD +
          '  - { op: munmap, proc: app, vma: heap }\n  - { op: write, proc: app, vma: heap }\n',
      ),
    ).toBe(
      'scenario.yaml: timeline[2].vma: vma "heap" of process "app" was unmapped at timeline[1]',
    );
  });

  it('lets a fork child use its parent vma names', () => {
    const s = parseScenario(
      HEAD + '  - { op: fork, proc: app, child: kid }\n  - { op: write, proc: kid, vma: heap }\n',
      's.yaml',
    );
    expect(s.timeline).toHaveLength(3);
    expect(errorOf(HEAD + '  - { op: fork, proc: app, child: app }\n')).toBe(
      'scenario.yaml: timeline[1].child: process "app" already exists',
    );
  });

  it('checks ranges against the vma size', () => {
    expect(
      errorOf(HEAD + '  - { op: touch, proc: app, vma: heap, offset: 1MiB, length: 2MiB }\n'),
    ).toBe(
      'scenario.yaml: timeline[1].length: offset 1MiB + length 2MiB goes past the end of vma "heap" (2MiB)',
    );
    // madvise may probe past the VMA (ENOMEM is a legitimate expectation).
    parseScenario(
      HEAD +
        '  - { op: madvise, proc: app, vma: heap, length: 4MiB, advice: dontneed, expect: ENOMEM }\n',
      's.yaml',
    );
  });

  it('reports duplicate names', () => {
    expect(errorOf('version: 1\nname: t\nprocesses: [{name: a}, {name: a}]\ntimeline: []\n')).toBe(
      'scenario.yaml: processes[1].name: duplicate process name "a"',
    );
    expect(errorOf(HEAD + '  - { op: mmap, proc: app, vma: heap, size: 4K }\n')).toBe(
      'scenario.yaml: timeline[1].vma: process "app" already has a vma named "heap"',
    );
  });

  it('reports a YAML syntax error with its line', () => {
    const msg = errorOf('version: 1\nname: x\nprocesses: [\ntimeline: []\n');
    expect(msg).toMatch(/^scenario\.yaml:4:\d+: YAML syntax error: /);
    expect(errorOf('version: 1\nversion: 1\n')).toMatch(
      /^scenario\.yaml:2:1: YAML syntax error: .*unique/,
    );
  });

  it('reports a JSON syntax error', () => {
    expect(errorOf('{"version": 1,}', 'x.json')).toMatch(
      /^x\.json(:\d+:\d+)?: JSON syntax error: /,
    );
  });

  it('reports a document that is not a mapping', () => {
    expect(errorOf('')).toBe('scenario.yaml: expected a mapping, got null');
    expect(errorOf('- 1\n')).toBe('scenario.yaml: expected a mapping, got a list');
  });

  it('reports a missing file', () => {
    expect(() => loadScenario('/nonexistent/s.yaml')).toThrow('/nonexistent/s.yaml: no such file');
    expect(() => loadScenario('notes.txt')).toThrow(/unsupported file type/);
  });

  it('formats paths', () => {
    expect(formatPath(['timeline', 3, 'size'])).toBe('timeline[3].size');
    expect(formatPath(['sysfs', 'hugepages-64kB/enabled'])).toBe('sysfs["hugepages-64kB/enabled"]');
    expect(formatPath([])).toBe('');
  });
});

describe('built-in scenario and examples', () => {
  it('the built-in default is valid', () => {
    const s = builtinScenario();
    expect(s.geometry).toBe('x86-64-4k');
    expect(s.ram).toBe(GiB);
    expect(s.swap).toBe(256 * MiB);
    expect(s.sysfs).toEqual({ enabled: 'madvise', 'hugepages-64kB/enabled': 'always' });
    const ops = s.timeline.map((e) => e.op);
    for (const op of ['mmap', 'madvise', 'write', 'fork', 'swapout', 'report'])
      expect(ops).toContain(op);
    expect(ops[ops.length - 1]).toBe('report');
    expect(BUILTIN_SCENARIO.version).toBe(1);
  });

  const dir = join(import.meta.dirname, '..', 'examples');
  const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));
  it('has the required examples', () => {
    for (const f of [
      'fault-orders.yaml',
      'fork-cow.yaml',
      'pageout-shrinker.yaml',
      'arm64-64k.yaml',
    ])
      expect(files).toContain(f);
  });
  it.each(files)('examples/%s is valid and documented', (f) => {
    const s = loadScenario(join(dir, f));
    expect(s.description).toBeTruthy();
  });
});

// ---- the runner, against a fake machine that records calls --------------------------------

interface FakeVma {
  start: number;
  end: number;
  name: string;
}

class FakeMachine extends Machine {
  readonly calls: string[] = [];
  private next = 0x7f0000000000;
  private readonly maps = new Map<number, FakeVma[]>();
  failMadvise?: Errno['errno'];

  constructor() {
    super({ ramBytes: 64 * MiB });
  }
  override spawn(name: string): Mm {
    this.calls.push(`spawn ${name}`);
    const mm = super.spawn(name);
    this.maps.set(mm.id, []);
    return mm;
  }
  override mmap(mm: Mm, a: MmapArgs): number {
    this.next -= a.lengthBytes + 2 * MiB;
    const start = a.addrBytes ?? this.next;
    this.calls.push(`mmap ${mm.name} ${a.name} ${a.lengthBytes} align=${a.alignBytes}`);
    this.maps.get(mm.id)!.push({ start, end: start + a.lengthBytes, name: a.name ?? '' });
    return start;
  }
  override munmap(mm: Mm, addr: number, len: number): void {
    this.calls.push(`munmap ${mm.name} ${addr.toString(16)} ${len}`);
  }
  override mremap(mm: Mm, addr: number, oldLen: number, newLen: number, to?: number): number {
    this.calls.push(`mremap ${mm.name} ${addr.toString(16)} ${oldLen} ${newLen}`);
    return to ?? addr + 64 * MiB;
  }
  override madvise(mm: Mm, addr: number, len: number, advice: Advice): void {
    this.calls.push(`madvise ${mm.name} ${addr.toString(16)} ${len} ${advice}`);
    if (this.failMadvise) throw new Errno(this.failMadvise, 'fake failure');
  }
  override access(mm: Mm, addr: number, write: boolean): AccessOutcome {
    this.calls.push(`access ${mm.name} ${addr.toString(16)} ${write ? 'w' : 'r'}`);
    return 'fault';
  }
  override touch(
    mm: Mm,
    addr: number,
    len: number,
    write: boolean,
    stride?: number,
  ): AccessOutcome {
    this.calls.push(`touch ${mm.name} ${addr.toString(16)} ${len} ${write ? 'w' : 'r'} ${stride}`);
    return 'fault';
  }
  override fork(parent: Mm, child: string): Mm {
    this.calls.push(`fork ${parent.name} ${child}`);
    const mm = super.spawn(child);
    this.maps.set(
      mm.id,
      this.maps.get(parent.id)!.map((v) => ({ ...v })),
    );
    return mm;
  }
  override exit(mm: Mm): void {
    this.calls.push(`exit ${mm.name}`);
  }
  override advance(ms: number): void {
    this.calls.push(`advance ${ms}`);
    this.kernel.clockMs += ms;
  }
  override shrink(): number {
    this.calls.push('shrink');
    return 3;
  }
  override sysfsWrite(path: string, value: string): void {
    this.calls.push(`sysfs ${path}=${value}`);
    if (path === 'bad') throw new Errno('EINVAL', 'bad file');
  }
  override smaps(mm: Mm): SmapsEntry[] {
    return this.maps.get(mm.id)!.map((v) => ({
      start: v.start,
      end: v.end,
      name: v.name,
      flags: 'rw-p',
      Size: (v.end - v.start) / 1024,
      Rss: 8,
      Anonymous: 8,
      AnonHugePages: 0,
      ShmemPmdMapped: 0,
      FilePmdMapped: 0,
      Swap: 0,
      byOrder: { 0: 8 },
    }));
  }
  override meminfo() {
    return {
      MemTotal: 65536,
      MemFree: 1,
      AnonPages: 2,
      AnonHugePages: 0,
      SwapTotal: 0,
      SwapFree: 0,
    };
  }
  override mthpStats(): Record<string, Record<string, number>> {
    return { '2048kB': { nr_anon: 1 } };
  }
  override checkInvariants(): void {}
}

function fakeRun(text: string, fake = new FakeMachine()) {
  const s: Scenario = parseScenario(text, 'fake.yaml');
  const result = runScenario(s, { source: 'fake.yaml', createMachine: () => fake });
  return { result, fake };
}

describe('runScenario (fake machine)', () => {
  it('spawns, applies sysfs in order, and tracks vma addresses by name', () => {
    const { result, fake } = fakeRun(
      `version: 1
name: r
sysfs: { enabled: madvise, /sys/kernel/mm/transparent_hugepage/defrag: never, khugepaged/max_ptes_none: 0 }
processes: [{ name: app }]
timeline:
  - { op: mmap, proc: app, vma: heap, size: 4MiB, align: 2MiB }
  - { op: madvise, proc: app, vma: heap, offset: 1MiB, length: 1MiB, advice: dontneed }
  - { op: write, proc: app, vma: heap, length: 16K }
  - { op: touch, proc: app, vma: heap, pattern: { every: 256 } }
  - { op: fork, proc: app, child: kid }
  - { op: swapout, proc: kid, vma: heap }
  - { op: sleep, ms: 100 }
  - { op: shrink }
  - { op: sysfs, path: enabled, value: never }
  - { op: exit, proc: kid }
`,
    );
    const heap = result.events[0].addr!;
    const h = (off: number) => (heap + off).toString(16);
    expect(fake.calls).toEqual([
      'spawn app',
      'sysfs enabled=madvise',
      'sysfs defrag=never',
      'sysfs khugepaged/max_ptes_none=0',
      `mmap app heap ${4 * MiB} align=${2 * MiB}`,
      `madvise app ${h(MiB)} ${MiB} dontneed`,
      `touch app ${h(0)} ${16 * KiB} w undefined`,
      `access app ${h(0)} r`,
      `access app ${h(MiB)} r`,
      `access app ${h(2 * MiB)} r`,
      `access app ${h(3 * MiB)} r`,
      'fork app kid',
      `madvise kid ${h(0)} ${4 * MiB} pageout`,
      'advance 100',
      'shrink',
      'sysfs enabled=never',
      'exit kid',
    ]);
    expect(result.sysfs).toEqual({
      enabled: 'madvise',
      defrag: 'never',
      'khugepaged/max_ptes_none': '0',
    });
    expect(result.events[3]).toMatchObject({ op: 'touch', accesses: 4, outcome: 'fault' });
    expect(result.events[5]).toMatchObject({ op: 'swapout', advice: 'pageout', result: 'ok' });
    expect(result.events[7]).toMatchObject({ op: 'shrink', split: 3 });
    // No report event: one final report, without the exited child.
    expect(result.reports).toHaveLength(1);
    expect(result.reports[0]).toMatchObject({ label: 'final', event: null, clockMs: 100 });
    expect(result.reports[0].processes.map((p) => p.name)).toEqual(['app']);
    expect(result.reports[0].processes[0].totals).toMatchObject({
      Size: 4096,
      Rss: 8,
      byOrder: { 0: 8 },
    });
    expect(result.reports[0].orders[0]).toMatchObject({
      order: 9,
      size: '2048kB',
      stats: { nr_anon: 1 },
    });
  });

  it('is deterministic, including random patterns', () => {
    const text = `version: 1
name: r
seed: 7
processes: [{ name: app }]
timeline:
  - { op: mmap, proc: app, vma: heap, size: 4MiB }
  - { op: write, proc: app, vma: heap, pattern: { random: 0.25 } }
  - { op: report, label: one }
  - { op: mremap, proc: app, vma: heap, newSize: 8MiB }
  - { op: write, proc: app, vma: heap, offset: 6MiB }
  - { op: report }
`;
    const a = fakeRun(text);
    const b = fakeRun(text);
    expect(JSON.stringify(a.result)).toBe(JSON.stringify(b.result));
    expect(a.fake.calls).toEqual(b.fake.calls);
    const n = (a.result.events[1] as EventRecord).accesses!;
    expect(n).toBeGreaterThan(150);
    expect(n).toBeLessThan(370);
    // mremap moved the VMA: later events use the new address.
    const moved = a.result.events[3].addr!;
    expect(a.result.events[4].addr).toBe(moved + 6 * MiB);
    expect(a.result.reports.map((r) => [r.label, r.event])).toEqual([
      ['one', 2],
      ['timeline[5]', 5],
    ]);
    expect(JSON.parse(JSON.stringify(a.result))).toEqual(a.result);
  });

  it('records madvise errors and checks expect', () => {
    const text = (expect: string) => `version: 1
name: r
processes: [{ name: app }]
timeline:
  - { op: mmap, proc: app, vma: heap, size: 2MiB }
  - { op: madvise, proc: app, vma: heap, advice: collapse${expect} }
`;
    const fake = new FakeMachine();
    fake.failMadvise = 'EAGAIN';
    expect(fakeRun(text(''), fake).result.events[1]).toMatchObject({ result: 'EAGAIN' });
    const fake2 = new FakeMachine();
    fake2.failMadvise = 'EINVAL';
    expect(fakeRun(text(', expect: EINVAL'), fake2).result.events[1]).toMatchObject({
      result: 'EINVAL',
      expect: 'EINVAL',
    });
    expect(() => fakeRun(text(', expect: EINVAL'))).toThrow(
      'fake.yaml: timeline[1].expect: madvise collapse on app/heap returned ok, expected EINVAL',
    );
  });

  it('reports machine errors with the event index', () => {
    const fake = new FakeMachine();
    fake.mmap = () => {
      throw new Errno('ENOMEM', 'out of address space');
    };
    expect(() =>
      fakeRun(
        'version: 1\nname: r\nprocesses: [{name: a}]\ntimeline:\n  - { op: mmap, proc: a, vma: v, size: 1G }\n',
        fake,
      ),
    ).toThrow('fake.yaml: timeline[0]: mmap a/v failed: ENOMEM: out of address space');
    expect(() =>
      fakeRun('version: 1\nname: r\nprocesses: []\ntimeline: []\nsysfs: { bad: 1 }\n'),
    ).toThrow('fake.yaml: sysfs.bad: cannot write "1": EINVAL: bad file');
  });
});

describe('validateScenario', () => {
  it('validates plain objects', () => {
    expect(() =>
      validateScenario({ version: 1, name: 'x', processes: [], timeline: [{ op: 'nap' }] }, 'obj'),
    ).toThrow(/^obj: timeline\[0\]\.op: unknown op "nap"/);
  });
});
