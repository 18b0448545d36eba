// A leaf helper (no dependencies beyond node:fs), so the CLI's start-up path can use it without
// loading the scenario schema.

import { statSync } from 'node:fs';

/** Whether path names a directory (checked before a name-based guess, so the message is right). */
export function isDirectory(path: string): boolean {
  if (path === '-') return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
