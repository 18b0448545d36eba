// A trace as a sweep input: replayed with the readers' defaults under a cell's settings.

import { damonOps, parseDamonJson, parseDamonPerfScript } from '../workload/damon.ts';
import { parseJsonlTrace } from '../workload/jsonl.ts';
import { parseLackey } from '../workload/lackey.ts';
import { fileLines } from '../workload/lines.ts';
import { type ReplayOp, type ReplayHeader, type ReplayResult, replay } from '../workload/replay.ts';
import type { CellSettings } from './cell.ts';

/** Trace formats a sweep takes (as `thpsim replay --format`). */
export const SWEEP_TRACE_FORMATS = ['jsonl', 'lackey', 'damon-perf', 'damon-json'] as const;

/** Replay a trace file in `format` under the settings. */
export function runTraceFile(file: string, format: string, st: CellSettings): ReplayResult {
  const pageSize = 4096;
  const ops = (onHeader: (h: ReplayHeader) => void): Iterable<ReplayOp> => {
    switch (format) {
      case 'jsonl':
        return parseJsonlTrace(fileLines(file), onHeader);
      case 'lackey':
        return parseLackey(fileLines(file), { pageSize });
      case 'damon-perf':
        return damonOps(parseDamonPerfScript(fileLines(file)), { write: true, pageSize });
      case 'damon-json':
        return damonOps(parseDamonJson(file), { write: true, pageSize });
      default:
        throw new Error(`unknown trace format ${JSON.stringify(format)}`);
    }
  };
  return replay(ops, {
    source: file,
    format,
    header: st.profile ? { profile: st.profile } : {},
    ...(st.policy ? { policy: st.policy } : {}),
    sysfs: st.knobs,
  });
}
