// The shape of a timeline op's handler: it acts on the session and returns the event's record.

import type { EventRecord } from '../run-result.ts';
import type { EventOf, TimelineEvent } from '../schema.ts';
import type { ScenarioSession } from './session.ts';

export type OpName = TimelineEvent['op'];

/** Run one timeline event; `rec` has the index, op and source already. */
export type OpHandler<K extends OpName> = (
  ss: ScenarioSession,
  e: EventOf<K>,
  i: number,
  rec: EventRecord,
) => EventRecord;

/** A handler for every op (run.ts merges the families into one). */
export type OpHandlers = { [K in OpName]: OpHandler<K> };
