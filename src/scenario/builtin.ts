// The scenario `thpsim run` runs without an argument: a small, realistic tour of anonymous THP.

import { validateScenario } from './load.ts';
import type { ResolveOptions } from './resolve.ts';
import type { Scenario, ScenarioInput } from './schema.ts';

export const BUILTIN_SOURCE = '<builtin>';

export const BUILTIN_SCENARIO: ScenarioInput = {
  version: 1,
  name: 'default',
  description:
    'A 16MiB MADV_HUGEPAGE heap faulted as PMD THPs, a partial MADV_DONTNEED that leaves one THP ' +
    'partially mapped, a fork with COW writes in the child, and a sparse region of 64K mTHPs paged out to swap.',
  profile: 'linux-7.2',
  geometry: 'x86-64-4k',
  ram: '1GiB',
  swap: '256MiB',
  seed: 1,
  sysfs: {
    // PMD THPs only where MADV_HUGEPAGE asks for them; 64K mTHPs everywhere.
    enabled: 'madvise',
    'hugepages-64kB/enabled': 'always',
  },
  processes: [{ name: 'app' }],
  timeline: [
    { op: 'mmap', proc: 'app', vma: 'heap', size: '16MiB', align: '2MiB' },
    { op: 'madvise', proc: 'app', vma: 'heap', advice: 'hugepage', expect: 'ok' },
    // Eight PMD-sized write faults: eight 2MiB THPs.
    { op: 'write', proc: 'app', vma: 'heap' },
    // Zap 512KiB inside the third THP: its PMD is split and the folio is partially mapped.
    {
      op: 'madvise',
      proc: 'app',
      vma: 'heap',
      offset: '5MiB',
      length: '512KiB',
      advice: 'dontneed',
    },
    // The child shares every folio; its writes break COW one base page at a time.
    { op: 'fork', proc: 'app', child: 'worker' },
    { op: 'write', proc: 'worker', vma: 'heap', length: '64KiB' },
    // A sparse region without MADV_HUGEPAGE: one write every 256KiB faults in 64K mTHPs.
    { op: 'mmap', proc: 'app', vma: 'sparse', size: '8MiB' },
    { op: 'write', proc: 'app', vma: 'sparse', pattern: { every: 64 } },
    // MADV_PAGEOUT: the sparse region goes to swap.
    { op: 'swapout', proc: 'app', vma: 'sparse' },
    { op: 'report', label: 'end' },
  ],
};

export function builtinScenario(opts: ResolveOptions = {}): Scenario {
  return validateScenario(BUILTIN_SCENARIO, BUILTIN_SOURCE, opts);
}
