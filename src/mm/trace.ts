// Tracepoints: named events with the kernel tracepoints' fields, stamped with simulated time.
// Nothing is recorded unless a consumer is attached (Kernel.traceSink).

export interface TraceEvent {
  /** Simulated time in milliseconds. */
  t: number;
  name: string;
  fields: Record<string, number | string | boolean>;
}

export type TraceSink = (e: TraceEvent) => void;
