// The viewer's server: builds the page with Vite (cached by a hash of its sources), then serves
// the built files and the data on 127.0.0.1 only. Every request is checked: GET or HEAD, a Host
// header naming this server (no DNS rebinding), a path that is one of the built files or
// /api/data (no traversal: nothing is looked up on disk at request time).

import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB_DIR = dirname(fileURLToPath(import.meta.url));
// The repository root, from src/web or the compiled dist/web alike; the page is built from the
// sources in src/web/app (never compiled to dist).
const ROOT = join(WEB_DIR, '..', '..');
export const APP_DIR = join(ROOT, 'src', 'web', 'app');
/** Sources the bundle is made of (a change to any of them rebuilds it). */
const SOURCE_DIRS = [APP_DIR, join(ROOT, 'src', 'report'), join(ROOT, 'src', 'khugepaged', 'mthp')];
const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'thpsim-view');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out.sort();
}

function sourceHash(): string {
  const h = createHash('sha256');
  for (const d of SOURCE_DIRS)
    for (const f of filesUnder(d)) {
      h.update(relative(ROOT, f));
      h.update(readFileSync(f));
    }
  for (const f of ['package-lock.json'])
    if (existsSync(join(ROOT, f))) h.update(readFileSync(join(ROOT, f)));
  return h.digest('hex').slice(0, 16);
}

/** Build the page (or reuse the cached build); returns the directory with index.html. */
export async function buildViewer(log: (s: string) => void = () => {}): Promise<string> {
  const out = join(CACHE_DIR, sourceHash());
  if (existsSync(join(out, 'index.html'))) return out;
  log('thpsim view: building the viewer (once per source change)...\n');
  const { build } = await import('vite');
  const preact = (await import('@preact/preset-vite')).default;
  const tmp = `${out}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  await build({
    root: APP_DIR,
    configFile: false,
    logLevel: 'error',
    base: './',
    plugins: [preact()],
    build: {
      outDir: tmp,
      emptyOutDir: true,
      chunkSizeWarningLimit: 2000,
      reportCompressedSize: false,
    },
  });
  mkdirSync(CACHE_DIR, { recursive: true });
  try {
    renameSync(tmp, out);
  } catch {
    // Another process built it at the same time: use theirs.
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}

export interface ViewServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Serve the built page and `data` (as /api/data) on 127.0.0.1:port (0: any free port). */
export async function startViewServer(dist: string, data: unknown, port = 0): Promise<ViewServer> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const f of filesUnder(dist)) {
    const rel = '/' + relative(dist, f).split(sep).join('/');
    if (statSync(f).isFile())
      files.set(rel, {
        body: readFileSync(f),
        type: TYPES[extname(f)] ?? 'application/octet-stream',
      });
  }
  const index = files.get('/index.html');
  if (!index) throw new Error(`no index.html in ${dist}`);
  files.set('/', index);
  const api = Buffer.from(JSON.stringify(data));
  let allowedHosts = new Set<string>();

  const send = (
    res: ServerResponse,
    status: number,
    body: Buffer | string,
    type: string,
    head: boolean,
  ) => {
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy':
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
    });
    res.end(head ? undefined : body);
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'method not allowed\n', 'text/plain; charset=utf-8', false);
    }
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase()))
      return send(res, 403, 'forbidden host\n', 'text/plain; charset=utf-8', head);
    const raw = req.url ?? '';
    if (!raw.startsWith('/') || raw.startsWith('//') || raw.length > 512)
      return send(res, 400, 'bad request\n', 'text/plain; charset=utf-8', head);
    const path = raw.split('?')[0];
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return send(res, 400, 'bad request\n', 'text/plain; charset=utf-8', head);
    }
    if (decoded !== path || /[\\\0]|\/\.\.?(\/|$)/.test(decoded))
      return send(res, 404, 'not found\n', 'text/plain; charset=utf-8', head);
    if (path === '/api/data') return send(res, 200, api, 'application/json', head);
    const f = files.get(path);
    if (!f) return send(res, 404, 'not found\n', 'text/plain; charset=utf-8', head);
    return send(res, 200, f.body, f.type, head);
  };

  const server = createServer(handle);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  allowedHosts = new Set([`127.0.0.1:${actual}`, `localhost:${actual}`]);
  return {
    url: `http://127.0.0.1:${actual}/`,
    port: actual,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
