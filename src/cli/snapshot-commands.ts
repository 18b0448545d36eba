// thpsim snapshot, thpmaps and whatif (src/snapshot/).

import { MAX_SLEEP_MS } from '../workload/jsonl.ts';
import { readFileSync, readdirSync } from 'node:fs';
import { INPUT_LIMITS, readBounded } from '../workload/read-bounded.ts';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { COLLAPSE_POLICIES, type CollapsePolicy } from '../khugepaged/mthp/thresholds.ts';
import { PROFILE_NAMES, type ProfileName } from '../mm/profile.ts';
import { runScenarioSession } from '../scenario/run.ts';
import { formatKb, parseSize } from '../scenario/size.ts';
import { CaptureError, captureLive, captureModel } from '../snapshot/capture.ts';
import {
  type Snapshot,
  SnapshotError,
  decodeSnapshot,
  encodeSnapshot,
} from '../snapshot/format.ts';
import { ThpmapsError, renderThpmaps, thpmaps, thpmapsJson } from '../snapshot/thpmaps.ts';
import { WhatifError, type WhatifResult, whatif } from '../snapshot/whatif.ts';
import { scenarioFor } from './commands.ts';
import { CliError, type Io, json, UnavailableError, writeFileAtomic } from './io.ts';
import { parseSets } from './replay-command.ts';

function parsePid(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) <= 0 || !Number.isSafeInteger(Number(v)))
    throw new CliError(`--pid: expected a process id, got ${JSON.stringify(v)}`);
  return Number(v);
}

function live(pid: number): Snapshot {
  try {
    return captureLive(pid);
  } catch (e) {
    if (e instanceof CaptureError)
      throw e.unavailable
        ? new UnavailableError(e.message, { cause: e })
        : new CliError(e.message, { cause: e });
    throw e;
  }
}

/** Read and decode a snapshot file of at most `limit` bytes; every failure is a CliError. */
export function readSnapshot(file: string, limit: number = INPUT_LIMITS.snapshot): Snapshot {
  let bytes: Buffer;
  try {
    bytes = readBounded(file, limit);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      `${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`,
    );
  }
  try {
    return decodeSnapshot(bytes);
  } catch (e) {
    if (e instanceof SnapshotError)
      throw new CliError(`${file}: corrupted or truncated snapshot: ${e.message}`, { cause: e });
    throw e;
  }
}

/** A simulated process: run a scenario and capture one of its processes. */
function simulated(arg: string, proc: string | undefined): Snapshot {
  const { scenario, source } = scenarioFor(arg, {});
  const session = runScenarioSession(scenario, { source });
  const k = session.machine.kernel;
  const mms = [...k.mms.values()].filter((mm) => !mm.exiting);
  const mm = proc === undefined ? mms[0] : mms.find((x) => x.name === proc);
  if (!mm)
    throw new CliError(
      `${arg}: no live process ${proc === undefined ? 'at the end' : `"${proc}"`} (processes: ${mms.map((x) => x.name).join(', ') || 'none'})`,
    );
  return captureModel(session.machine, mm);
}

/** Every process in /proc, by pid. */
function allPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => pid !== process.pid)
    .sort((a, b) => a - b);
}

/** The pids in cgroup.procs of a cgroup directory and of every cgroup below it. */
function cgroupPids(dir: string): number[] {
  const pids = new Set<number>();
  const walk = (d: string) => {
    let text: string;
    try {
      text = readFileSync(join(d, 'cgroup.procs'), 'utf8');
    } catch (e) {
      throw new CliError(
        `--cgroup: cannot read ${join(d, 'cgroup.procs')}: ${(e as Error).message}`,
      );
    }
    for (const l of text.split('\n')) if (/^\d+$/.test(l.trim())) pids.add(Number(l.trim()));
    for (const ent of readdirSync(d, { withFileTypes: true }))
      if (ent.isDirectory()) walk(join(d, ent.name));
  };
  walk(dir);
  return [...pids].sort((a, b) => a - b);
}

function sizes(list: readonly string[] = []): number[] {
  return list.map((v) => {
    try {
      return parseSize(/^\d+$/.test(v) ? v : v.replace(/^(\d+)([KMG])$/i, '$1$2iB'));
    } catch {
      throw new CliError(`--cont: expected a size like 64K, got ${JSON.stringify(v)}`);
    }
  });
}

function renderWhatif(r: WhatifResult): string {
  const l: string[] = [];
  l.push(
    `what-if on ${r.snapshot.source} snapshot of pid ${r.snapshot.pid} (${r.snapshot.comm}): ${r.loaded.vmas} anonymous VMAs, ${r.loaded.pages} pages loaded; ${r.snapshot.ordersKnown ? 'folio orders from kpageflags' : 'folio orders unknown (no PFNs: not captured as root); PMD THPs placed from AnonHugePages, the rest as small pages'}`,
  );
  const f = Object.entries(r.loaded.folios)
    .map(([k, n]) => `${k} x${n}`)
    .join(', ');
  if (f) l.push(`large folios recreated: ${f}`);
  if (r.loaded.skipped.length)
    l.push(
      `skipped VMAs: ${r.loaded.skipped.length} (${[...new Set(r.loaded.skipped.map((s) => s.reason))].join(', ')})`,
    );
  const set = Object.entries(r.config.sysfs)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  l.push(
    `settings: ${set || 'model defaults'}; policy ${r.config.policy}, profile ${r.config.profile}; khugepaged ran ${r.config.ms} ms (${r.khugepaged.full_scans} full scans)`,
  );
  const keys = [
    ...new Set([...Object.keys(r.before.bySizeKb), ...Object.keys(r.after.bySizeKb)]),
  ].sort((a, b) => parseInt(b) - parseInt(a));
  l.push('', `${'folio size'.padEnd(12)}${'before'.padStart(14)}${'after'.padStart(14)}`);
  for (const k of keys) {
    const b = r.before.bySizeKb[k] ?? 0;
    const a = r.after.bySizeKb[k] ?? 0;
    // Shares of the anonymous memory of the same moment.
    const pc = (x: number, of: number) =>
      of > 0 ? ` ${((100 * x) / of).toFixed(0).padStart(3)}%` : '     ';
    l.push(
      `${k.padEnd(12)}${formatKb(b).padStart(9)}${pc(b, r.before.anonKb)}${formatKb(a).padStart(9)}${pc(a, r.after.anonKb)}`,
    );
  }
  l.push(
    `${'Rss'.padEnd(12)}${formatKb(r.before.rssKb).padStart(14)}${formatKb(r.after.rssKb).padStart(14)}`,
    '',
  );
  const bloat = Object.entries(r.collapses.bySize).map(
    ([k, v]) => `${k}: ${v.succeeded} collapses, bloat ${formatKb(v.bloatKb)}`,
  );
  l.push(`collapses: ${r.collapses.succeeded}${bloat.length ? ` (${bloat.join('; ')})` : ''}`);
  const res = (rec: Record<string, number>) =>
    Object.entries(rec)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '-';
  l.push(`PMD ranges scanned by result: ${res(r.collapses.pmdResults)}`);
  l.push(`collapse_huge_page results: ${res(r.collapses.collapseResults)}`);
  for (const n of r.notes) l.push(`note: ${n}`);
  return l.join('\n') + '\n';
}

export function registerSnapshotCommands(program: Command, io: Io): void {
  program
    .command('snapshot')
    .description(
      'snapshot a live process: its VMAs from /proc/PID/smaps and, per page, present, swapped, exclusive and zero-page state from pagemap, and (as root) the folio structure from /proc/kpageflags; written as a compact, versioned file. With --scenario, a process of the model at the end of a scenario',
    )
    .option('--pid <pid>', 'the process', parsePid)
    .option('--scenario <scenario>', 'instead: run a scenario (file, example or workload:NAME)')
    .option('--proc <name>', 'with --scenario: the process (default: the first)')
    .requiredOption('-o, --output <file>', 'the snapshot file (written atomically)')
    .addOption(new Option('--json', 'print a summary as JSON'))
    .action(
      (opts: {
        pid?: number;
        scenario?: string;
        proc?: string;
        output: string;
        json?: boolean;
      }) => {
        if ((opts.pid === undefined) === (opts.scenario === undefined))
          throw new CliError('snapshot: give either --pid or --scenario');
        const s = opts.pid !== undefined ? live(opts.pid) : simulated(opts.scenario!, opts.proc);
        const bytes = encodeSnapshot(s);
        writeFileAtomic(opts.output, bytes);
        let present = 0;
        for (const st of s.state) for (const b of st) if (b & 1) present++;
        const summary = {
          pid: s.header.pid,
          comm: s.header.comm,
          source: s.header.source,
          vmas: s.header.vmas.length,
          presentPages: present,
          pfns: s.header.pfns,
          kpageflags: s.header.kpageflags,
          bytes: bytes.length,
          file: opts.output,
        };
        io.out(
          opts.json
            ? json(summary)
            : `snapshot of ${summary.pid} (${summary.comm}): ${summary.vmas} VMAs, ${present} present pages, ${s.header.kpageflags ? 'folio orders from kpageflags' : 'folio orders unknown (not root)'}; ${bytes.length} bytes to ${opts.output}\n`,
        );
      },
    );

  program
    .command('thpmaps')
    .description(
      "the kernel's tools/mm/thpmaps report (same keys and layout) for a live process, a snapshot file, or a process of a simulated scenario",
    )
    .option('--pid <pid>', 'a live process (repeatable)', (v: string, p: number[] = []) => [
      ...p,
      parsePid(v),
    ])
    .option('--snapshot <file>', 'a snapshot file (repeatable)', (v: string, p: string[] = []) => [
      ...p,
      v,
    ])
    .option(
      '--scenario <scenario>',
      'run a scenario (file, example or workload:NAME) and report one of its processes',
    )
    .option('--proc <name>', 'with --scenario: the process (default: the first)')
    .option(
      '--cgroup <path>',
      'every process in this cgroup and the cgroups below it (cgroup.procs; v1 or v2)',
    )
    .option('--rollup', 'sum over all VMAs and processes, one block')
    .option(
      '--cont <size>',
      'also count contiguous, naturally aligned blocks of this size, e.g. 64K (repeatable)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option('--inc-empty', 'show statistics that are zero')
    .addOption(new Option('--json', 'print machine-readable JSON instead of text'))
    .action(
      (opts: {
        pid?: number[];
        snapshot?: string[];
        scenario?: string;
        proc?: string;
        cgroup?: string;
        rollup?: boolean;
        cont?: string[];
        incEmpty?: boolean;
        json?: boolean;
      }) => {
        if (opts.cgroup !== undefined && opts.pid !== undefined)
          throw new CliError('thpmaps: --pid and --cgroup exclude each other');
        const snaps: Snapshot[] = [];
        for (const pid of opts.pid ?? []) snaps.push(live(pid));
        for (const f of opts.snapshot ?? []) snaps.push(readSnapshot(f));
        if (opts.scenario) snaps.push(simulated(opts.scenario, opts.proc));
        // As thpmaps does without --pid: the cgroup's processes, or every process; ones that
        // vanish or cannot be read are left out.
        if (opts.cgroup !== undefined || (!opts.pid && !opts.snapshot && !opts.scenario))
          for (const pid of opts.cgroup !== undefined ? cgroupPids(opts.cgroup) : allPids()) {
            try {
              snaps.push(captureLive(pid));
            } catch (e) {
              if (!(e instanceof CaptureError)) throw e;
            }
          }
        const o = { rollup: opts.rollup, cont: sizes(opts.cont), incEmpty: opts.incEmpty };
        let r;
        try {
          r = thpmaps(snaps, o);
        } catch (e) {
          if (e instanceof ThpmapsError) throw new CliError(e.message, { cause: e });
          throw e;
        }
        io.out(opts.json ? json(thpmapsJson(r, o)) : renderThpmaps(r, o));
      },
    );

  program
    .command('whatif')
    .description(
      'load a snapshot into the model, apply settings, run khugepaged for a simulated time, and report coverage per folio size before and after, bloat, and failures by SCAN_* result',
    )
    .requiredOption('--snapshot <file>', 'a snapshot file (thpsim snapshot)')
    .option(
      '--set <path=value>',
      'a sysfs write, e.g. khugepaged/max_ptes_none=0 (repeatable)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .addOption(
      new Option('--policy <name>', 'mTHP collapse policy (default: v19)').choices(
        COLLAPSE_POLICIES,
      ),
    )
    .addOption(new Option('--profile <name>', 'kernel profile').choices(PROFILE_NAMES))
    .option('--ms <n>', 'simulated milliseconds khugepaged runs (default 60000)')
    .option(
      '--ram <size>',
      'physical memory of the model (default: what the snapshot needs, with room)',
    )
    .option('-o, --output <file>', 'also write the result as JSON to <file> (atomically)')
    .addOption(new Option('--json', 'print machine-readable JSON instead of text'))
    .addHelpText(
      'after',
      '\nExamples:\n  thpsim snapshot --pid 1234 -o app.snap\n  thpsim whatif --snapshot app.snap --set khugepaged/max_ptes_none=0 --set hugepages-64kB/enabled=always --policy v19\n  thpsim whatif --snapshot app.snap --set enabled=always --ms 600000 --json',
    )
    .action(
      (opts: {
        snapshot: string;
        set?: string[];
        policy?: CollapsePolicy;
        profile?: ProfileName;
        ms?: string;
        ram?: string;
        output?: string;
        json?: boolean;
      }) => {
        const s = readSnapshot(opts.snapshot);
        const ms = opts.ms === undefined ? undefined : Number(opts.ms);
        if (ms !== undefined && !(Number.isSafeInteger(ms) && ms >= 0))
          throw new CliError(
            `--ms: expected a whole number of milliseconds, got ${JSON.stringify(opts.ms)}`,
          );
        // khugepaged runs through every simulated ms: at most a day, as a trace's sleep.
        if (ms !== undefined && ms > MAX_SLEEP_MS)
          throw new CliError(
            `--ms: at most ${MAX_SLEEP_MS} (a day of simulated time), got ${JSON.stringify(opts.ms)}`,
          );
        let ram: number | undefined;
        if (opts.ram !== undefined)
          try {
            ram = parseSize(opts.ram);
          } catch {
            throw new CliError(
              `--ram: expected a size like "16GiB", got ${JSON.stringify(opts.ram)}`,
            );
          }
        let r: WhatifResult;
        try {
          r = whatif(s, {
            sets: parseSets(opts.set),
            policy: opts.policy,
            profile: opts.profile,
            ms,
            ramBytes: ram,
          });
        } catch (e) {
          if (e instanceof WhatifError) throw new CliError(e.message, { cause: e });
          throw e;
        }
        if (opts.output) writeFileAtomic(opts.output, json(r));
        io.out(opts.json ? json(r) : renderWhatif(r));
      },
    );
}
