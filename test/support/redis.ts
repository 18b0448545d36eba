// A real Redis for the BullMQ tests: THPSIM_TEST_REDIS_URL when .ci/run started one, else a
// redis-server of our own on 127.0.0.1 and a free port, without persistence, stopped after.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

export interface TestRedis {
  url: string;
  stop(): void;
}

export async function testRedis(): Promise<TestRedis> {
  const given = process.env.THPSIM_TEST_REDIS_URL;
  if (given) return { url: given, stop: () => {} };
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'thpsim-redis-'));
  const pidfile = join(dir, 'redis.pid');
  execFileSync('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'yes',
    '--pidfile',
    pidfile,
    '--dir',
    dir,
  ]);
  for (let i = 0; i < 100 && !(await accepts(port)); i++)
    await new Promise((r) => setTimeout(r, 50));
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      try {
        process.kill(Number(readFileSync(pidfile, 'utf8')), 'SIGTERM');
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
