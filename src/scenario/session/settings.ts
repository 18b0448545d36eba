// Time and settings ops: sleep (khugepaged runs meanwhile), shrink, sysfs writes and the
// selftests' push/pop of settings; and the header's processes and sysfs writes.

import { formatPath } from '../errors.ts';
import { selftestGlobalSettings, sysfsPop, sysfsPush } from '../selftest.ts';
import type { OpHandlers } from './handler.ts';
import { type ScenarioSession, errMessage, sysfsRelPath } from './session.ts';

/** Advance time; in slices when something shows progress, so a bar moves during a long sleep. */
function sleepMs(ss: ScenarioSession, ms: number, i: number): void {
  if (!ss.opts.onProgress || ms <= 0) {
    ss.machine.advance(ms);
    return;
  }
  // The same run either way: advance() is exact over any split of the interval.
  const slices = Math.min(100, ms);
  let done = 0;
  for (let k = 1; k <= slices; k++) {
    const to = Math.floor((ms * k) / slices);
    ss.machine.advance(to - done);
    done = to;
    ss.progress(i + k / slices);
  }
}

/** The header: spawn the processes, apply the selftest's global settings and the sysfs writes. */
export function applyHeader(ss: ScenarioSession): void {
  const { s, machine } = ss;
  for (const [i, p] of s.processes.entries()) {
    try {
      const ref = ss.addProc(p.name, machine.spawn(p.name));
      if (p.memory_max !== undefined) machine.memoryMax(ref.mm, p.memory_max);
    } catch (e) {
      throw ss.error(`processes[${i}]`, `spawn failed: ${errMessage(e)}`, e);
    }
  }
  if (ss.selftest) {
    for (const [rel, value] of selftestGlobalSettings(machine, ss.notes)) {
      try {
        machine.sysfsWrite(rel, value);
        ss.sysfs[rel] = value;
      } catch (e) {
        throw ss.error(
          'contexts',
          `the selftest's global setup cannot write ${rel}=${JSON.stringify(value)}: ${errMessage(e)}`,
          e,
        );
      }
    }
  }
  for (const [path, value] of Object.entries(s.sysfs ?? {})) {
    const rel = ss.orderPath(sysfsRelPath(path));
    try {
      machine.sysfsWrite(rel, String(value));
      ss.sysfs[rel] = String(value);
    } catch (e) {
      throw ss.error(
        formatPath(['sysfs', path]),
        `cannot write ${JSON.stringify(String(value))}: ${errMessage(e)}`,
        e,
      );
    }
  }
  ss.invariants('sysfs', 'the header');
}

export const settingsOps = {
  sleep(ss, e, i, rec) {
    sleepMs(ss, e.ms, i);
    return { ...rec, ms: e.ms, ...ss.khugepagedCounters() };
  },
  shrink(ss, _e, _i, rec) {
    return { ...rec, split: ss.machine.shrink() };
  },
  sysfs(ss, e, _i, rec) {
    const value = String(e.value);
    const path = ss.orderPath(sysfsRelPath(e.path));
    ss.machine.sysfsWrite(path, value);
    return { ...rec, path, result: value };
  },
  sysfs_push(ss, e, _i, rec) {
    const values = Object.fromEntries(
      Object.entries(e.values).map(([k, v]) => [ss.orderPath(sysfsRelPath(k)), String(v)]),
    );
    sysfsPush(ss.machine, ss.stack, Object.entries(values));
    return { ...rec, values };
  },
  sysfs_pop(ss, _e, i, rec) {
    if (ss.stack.length === 0) throw ss.error(ss.at(i), 'sysfs_pop without a matching sysfs_push');
    sysfsPop(ss.machine, ss.stack);
    return rec;
  },
} satisfies Partial<OpHandlers>;
