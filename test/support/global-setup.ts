// Vitest global setup: the CLI tests run bin/thpsim.js, which runs the compiled dist/. Build it
// first when the sources changed since the last build (a fresh clone gets it from `npm ci`).

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export default function setup(): void {
  execFileSync(
    process.execPath,
    [join(import.meta.dirname, '..', '..', 'scripts', 'build.js'), '--if-stale'],
    {
      stdio: 'inherit',
    },
  );
}
