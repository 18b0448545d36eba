#!/usr/bin/env node
// Entry point: run the compiled CLI (dist/, built by `npm ci` through the `prepare` script) with
// plain node, so start-up pays for no TypeScript compiler.
import { existsSync } from 'node:fs';

const main = new globalThis.URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'thpsim: the compiled CLI (dist/cli/main.js) is missing: run `npm run build` (npm ci does it)\n',
  );
  process.exit(1);
}
await import(main.href);
