// Sweeps on BullMQ against a real redis-server and real worker processes (`thpsim worker`):
// results byte-identical to the local run, a worker killed mid-job loses nothing (BullMQ's
// stalled-job check hands the job to another worker), and a bad job is reported with its error
// after two attempts. Also: the local pool over worker threads equals the serial run.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cell, type SweepInput, inputOf } from '../src/sweep/cell.ts';
import { connectRedis, inputKey, runOnQueue } from '../src/sweep/queue.ts';
import { runLocal } from '../src/sweep/sweep.ts';
import { buildWorkload } from '../src/workload/scenario.ts';
import { ROOT } from './support/cli.ts';
import { type TestRedis, testRedis } from './support/redis.ts';

let redis: TestRedis;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  redis = await testRedis();
});

afterAll(() => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  redis?.stop();
});

/** A `thpsim worker` process; resolves when it is ready. Its stderr lines are collected. */
function startWorker(): Promise<{ proc: ChildProcess; log: string[] }> {
  const proc = spawn(
    'node',
    [
      join(ROOT, 'bin/thpsim.js'),
      'worker',
      '--queue',
      redis.url,
      '--jobs',
      '1',
      '--lock-ms',
      '2000',
      '--stalled-ms',
      '500',
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  workers.push(proc);
  const log: string[] = [];
  return new Promise((resolve, reject) => {
    let buf = '';
    proc.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        log.push(l);
        if (l.startsWith('worker: ready')) resolve({ proc, log });
      }
    });
    proc.once('exit', (code) => reject(new Error(`worker exited (${code}): ${log.join(' | ')}`)));
  });
}

function stop(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

function tuneCells(input: SweepInput, values: string[]): Cell[] {
  return values.map((v) => ({
    kind: 'tune',
    input: input.hash,
    inputKind: 'scenario',
    settings: { knobs: [['khugepaged/max_ptes_none', v]] },
  }));
}

const stride = inputOf('scenario', JSON.stringify(buildWorkload('stride', {})));
const values = (outs: Awaited<ReturnType<typeof runLocal>>) =>
  outs.map((o) => (o.ok ? o.value : `error: ${o.error}`));

describe('sweeps on BullMQ with two worker processes', () => {
  it('equal the local run byte for byte; each input is stored once', async () => {
    const cells = [
      ...tuneCells(stride, ['0', '256', '409', '470', '471', '511']),
      ...(['v19', 'v10-scaled'] as const).map((policy): Cell => ({
        kind: 'compare',
        input: stride.hash,
        inputKind: 'scenario',
        settings: { policy, knobs: [['khugepaged/max_ptes_none', '470']] },
      })),
    ];
    const local = values(await runLocal(cells, [stride], { jobs: 1 }));
    const [a, b] = await Promise.all([startWorker(), startWorker()]);
    const seen: number[] = [];
    const queued = await runOnQueue(redis.url, cells, [stride], {
      onProgress: (p) => seen.push(p.done),
    });
    expect(values(queued)).toEqual(local);
    expect(seen.at(-1)).toBe(cells.length);
    const r = await connectRedis(redis.url);
    expect(JSON.parse((await r.get(inputKey(stride.hash)))!)).toEqual(stride);
    r.disconnect();
    const done = [...a.log, ...b.log].filter((l) => / done in /.test(l));
    expect(done).toHaveLength(cells.length);
    await Promise.all([stop(a.proc), stop(b.proc)]);
  }, 180_000);

  it('a worker killed mid-job loses nothing: the stalled job runs on the other worker', async () => {
    const redis3 = inputOf('scenario', JSON.stringify(buildWorkload('redis-3phase', {})));
    const cells = tuneCells(redis3, ['409', '511']);
    const local = values(await runLocal(cells, [redis3], { jobs: 1 }));
    const victim = await startWorker();
    let killed = false;
    const survivorReady = new Promise<{ proc: ChildProcess; log: string[] }>((resolve) => {
      const run = runOnQueue(redis.url, cells, [redis3], {
        onProgress: (p) => {
          if (!killed && p.inFlight > 0) {
            killed = true;
            victim.proc.kill('SIGKILL');
            resolve(startWorker());
          }
        },
      });
      void run.then((outs) => (result = outs));
    });
    let result: Awaited<ReturnType<typeof runOnQueue>> | undefined;
    const survivor = await survivorReady;
    for (let i = 0; i < 1200 && !result; i++) await new Promise((r) => setTimeout(r, 100));
    expect(killed).toBe(true);
    expect(victim.log.filter((l) => / done in /.test(l))).toHaveLength(0);
    expect(values(result!)).toEqual(local);
    expect(survivor.log.filter((l) => / done in /.test(l))).toHaveLength(cells.length);
    await stop(survivor.proc);
  }, 240_000);

  it('a job that fails twice is reported with its error; the others complete', async () => {
    const w = await startWorker();
    const cells = [...tuneCells(stride, ['470']), ...tuneCells(stride, ['lots'])];
    const outs = await runOnQueue(redis.url, cells, [stride]);
    expect(outs[0].ok).toBe(true);
    expect(outs[1]).toMatchObject({ ok: false, attempts: 2 });
    expect(!outs[1].ok && outs[1].error).toMatch(/max_ptes_none/);
    await stop(w.proc);
  }, 120_000);
});

describe('the local pool', () => {
  it('worker threads give the serial results, in cell order', async () => {
    const cells = tuneCells(stride, ['0', '470', '471', '511']);
    const serial = values(await runLocal(cells, [stride], { jobs: 1 }));
    expect(values(await runLocal(cells, [stride], { jobs: 2 }))).toEqual(serial);
    const bad = await runLocal(tuneCells(stride, ['lots']), [stride], { jobs: 2 });
    expect(bad[0]).toMatchObject({ ok: false });
  }, 120_000);
});
