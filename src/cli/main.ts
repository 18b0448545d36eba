// Entry point of the `thpsim` command (bin/thpsim.js runs its compiled form, dist/cli/main.js).

import { runCli } from './program.ts';

// A closed pipe (thpsim ... | head) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

process.exitCode = await runCli(process.argv);
