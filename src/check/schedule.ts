// Schedules as short strings: the thread of each step, runs folded ("0x13.1x4.0x9" is thread 0
// for 13 steps, thread 1 for 4, thread 0 for 9). `thpsim check CASE --replay STRING` re-runs one.

export function encodeSchedule(schedule: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < schedule.length;) {
    let j = i;
    while (j < schedule.length && schedule[j] === schedule[i]) j++;
    parts.push(`${schedule[i]}x${j - i}`);
    i = j;
  }
  return parts.join('.');
}

/** The schedule, or an error message naming the bad part. */
export function decodeSchedule(s: string, threads: number): number[] | string {
  const out: number[] = [];
  if (s.trim() === '') return out;
  const parts = s.trim().split('.');
  for (const [i, p] of parts.entries()) {
    const m = /^(\d+)x(\d+)$/.exec(p);
    if (!m) return `part ${i + 1} "${p}": expected THREADxSTEPS, e.g. 0x13`;
    const t = Number(m[1]);
    const n = Number(m[2]);
    if (t >= threads)
      return `part ${i + 1} "${p}": thread ${t} does not exist (${threads} threads)`;
    if (n < 1 || n > 100_000) return `part ${i + 1} "${p}": steps must be 1..100000`;
    for (let k = 0; k < n; k++) out.push(t);
  }
  return out;
}
