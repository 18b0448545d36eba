// Compile src/ to JavaScript in dist/ (tsc -p tsconfig.build.json), so bin/thpsim.js runs with
// plain node. `npm ci` runs this as the `prepare` script; the CLI tests run it with --if-stale.
//
//   node scripts/build.js             build
//   node scripts/build.js --if-stale  build only if the sources changed since the last build
//
// Type errors do not stop the build (--noCheck): `npm test` and CI type-check separately, and
// an install must not fail on them. The new tree is written beside dist/ and renamed into place,
// so a reader never sees half of one.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const STAMP = join(DIST, '.source-hash');
const SKIP = join(ROOT, 'src', 'web', 'app');

function sourcesUnder(dir, out) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== SKIP) sourcesUnder(p, out);
    } else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** A hash of everything the build reads: the sources, the tsconfigs and this script. */
function sourceHash() {
  const h = createHash('sha256');
  const files = sourcesUnder(join(ROOT, 'src'), []).sort();
  files.push(
    ...['tsconfig.json', 'tsconfig.build.json', 'scripts/build.js'].map((f) => join(ROOT, f)),
  );
  for (const f of files) {
    h.update(relative(ROOT, f));
    h.update('\0');
    h.update(readFileSync(f));
  }
  return h.digest('hex');
}

const LOCK = `${DIST}.lock`;

/** Serialise builds of one tree (two test runs at once); a lock older than 10 minutes is stale. */
function lock() {
  for (;;) {
    try {
      mkdirSync(LOCK);
      return;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 600_000)
          rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // removed meanwhile
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
}

const hash = sourceHash();
const ifStale = process.argv.includes('--if-stale');
const fresh = () => existsSync(STAMP) && readFileSync(STAMP, 'utf8') === hash;
if (ifStale && fresh()) process.exit(0);
lock();
process.on('exit', () => rmSync(LOCK, { recursive: true, force: true }));
if (ifStale && fresh()) process.exit(0);

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const tmp = `${DIST}.${process.pid}.tmp`;
const old = `${DIST}.${process.pid}.old`;
rmSync(tmp, { recursive: true, force: true });
try {
  execFileSync(
    process.execPath,
    [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--noCheck', '--outDir', tmp],
    { stdio: 'inherit' },
  );
} catch {
  rmSync(tmp, { recursive: true, force: true });
  console.error('thpsim build: tsc failed');
  process.exit(1);
}
writeFileSync(join(tmp, '.source-hash'), hash);
if (existsSync(DIST)) renameSync(DIST, old);
renameSync(tmp, DIST);
rmSync(old, { recursive: true, force: true });
