// What the viewer's /api/data returns (shared by the server side and the page).

import type { CompareResult } from '../report/compare.ts';
import type { AnyRun } from '../report/metrics.ts';
import type { CheckTrace } from '../report/model.ts';

export interface ViewData {
  /** The names of what is shown (file names, the scenario). */
  title: string;
  run?: AnyRun;
  compare?: CompareResult;
  check?: CheckTrace;
}
