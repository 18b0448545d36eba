// The thpsim event trace: JSON Lines, one event per line, read as a stream.
//
//   {"format":"thpsim-trace","version":1,"ram":"1GiB"}          optional header, line 1 only
//   {"op":"mmap","proc":"app","vma":"heap","size":"64MiB","align":"2MiB"}
//   {"op":"write","proc":"app","vma":"heap","offset":"1MiB","length":"64KiB"}
//   {"op":"touch","proc":"app","vma":"heap","stride":"64KiB"}
//   {"op":"madvise","proc":"app","vma":"heap","advice":"hugepage"}
//   {"op":"fork","proc":"app","child":"worker"}
//   {"op":"munmap","proc":"app","vma":"heap","offset":0,"length":"2MiB"}
//   {"op":"sleep","ms":10000}
//   {"op":"exit","proc":"worker"}
//
// Sizes are bytes or strings with a binary unit ("64KiB"). A process exists from its first
// mmap (or its fork). Blank lines and lines starting with # are skipped.

import { z } from 'zod';
import { GEOMETRY_NAMES } from '../mm/geometry.ts';
import { PROFILE_NAMES } from '../mm/profile.ts';
import { parseSize } from '../scenario/size.ts';
import { InputError, type LineSource } from './lines.ts';
import type { ReplayHeader, ReplayOp } from './replay.ts';

const size = z.union([z.number(), z.string()]).transform((v, ctx): number => {
  try {
    return parseSize(v);
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: `expected a size like "2MiB", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
});
const name = z.string().min(1).max(200);
/** The longest sleep one event may ask for (a day). */
export const MAX_SLEEP_MS = 86_400_000;
const range = { offset: size.optional(), length: size.optional() };

const Event = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('mmap'),
    proc: name,
    vma: name,
    size,
    addr: size.optional(),
    align: size.optional(),
  }),
  z.strictObject({ op: z.literal('munmap'), proc: name, vma: name, ...range }),
  z.strictObject({
    op: z.literal('touch'),
    proc: name,
    vma: name,
    ...range,
    stride: size.optional(),
  }),
  z.strictObject({
    op: z.literal('write'),
    proc: name,
    vma: name,
    ...range,
    stride: size.optional(),
  }),
  z.strictObject({
    op: z.literal('madvise'),
    proc: name,
    vma: name,
    advice: z.enum(['hugepage', 'nohugepage', 'dontneed', 'free', 'pageout', 'collapse']),
    ...range,
  }),
  z.strictObject({ op: z.literal('fork'), proc: name, child: name }),
  z.strictObject({ op: z.literal('exit'), proc: name }),
  // At most a day of simulated time per event: khugepaged runs through all of it.
  z.strictObject({ op: z.literal('sleep'), ms: z.number().nonnegative().max(MAX_SLEEP_MS) }),
]);

const Header = z.strictObject({
  format: z.literal('thpsim-trace'),
  version: z.literal(1),
  ram: size.optional(),
  swap: size.optional(),
  geometry: z.enum(GEOMETRY_NAMES).optional(),
  profile: z.enum(PROFILE_NAMES).optional(),
  seed: z.number().int().optional(),
  sysfs: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
});

function issue(e: z.ZodError): string {
  const i = e.issues[0];
  const path = i.path.length ? `${i.path.join('.')}: ` : '';
  return `${path}${i.message}`;
}

/** Parse a trace into replay operations, one line at a time; the header goes to onHeader. */
export function* parseJsonlTrace(
  src: LineSource,
  onHeader: (h: ReplayHeader) => void = () => {},
): Generator<ReplayOp> {
  let lineNo = 0;
  let events = 0;
  for (const line of src) {
    lineNo++;
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    let data: unknown;
    try {
      data = JSON.parse(t);
    } catch (e) {
      throw new InputError(src.name, lineNo, `not JSON: ${(e as Error).message.split('\n')[0]}`);
    }
    if (data !== null && typeof data === 'object' && 'format' in data) {
      if (events > 0 || lineNo > 1)
        throw new InputError(src.name, lineNo, 'the header must be the first line');
      const h = Header.safeParse(data);
      if (!h.success) throw new InputError(src.name, lineNo, `bad header: ${issue(h.error)}`);
      onHeader({
        ...(h.data.ram !== undefined ? { ram: h.data.ram } : {}),
        ...(h.data.swap !== undefined ? { swap: h.data.swap } : {}),
        ...(h.data.geometry ? { geometry: h.data.geometry } : {}),
        ...(h.data.profile ? { profile: h.data.profile } : {}),
        ...(h.data.seed !== undefined ? { seed: h.data.seed } : {}),
        sysfs: Object.entries(h.data.sysfs ?? {}).map(
          ([k, v]) => [k, String(v)] as [string, string],
        ),
      });
      continue;
    }
    const r = Event.safeParse(data);
    if (!r.success) throw new InputError(src.name, lineNo, issue(r.error));
    events++;
    const e = r.data;
    const at = { line: lineNo };
    switch (e.op) {
      case 'mmap':
        yield {
          op: 'mmap',
          proc: e.proc,
          vma: e.vma,
          size: e.size,
          addr: e.addr,
          align: e.align,
          ...at,
        };
        break;
      case 'munmap':
        yield { op: 'munmap', proc: e.proc, vma: e.vma, offset: e.offset, length: e.length, ...at };
        break;
      case 'touch':
      case 'write':
        yield {
          op: 'access',
          proc: e.proc,
          vma: e.vma,
          offset: e.offset,
          length: e.length,
          stride: e.stride,
          write: e.op === 'write',
          ...at,
        };
        break;
      case 'madvise':
        yield {
          op: 'madvise',
          proc: e.proc,
          vma: e.vma,
          advice: e.advice,
          offset: e.offset,
          length: e.length,
          ...at,
        };
        break;
      case 'fork':
        yield { op: 'fork', proc: e.proc, child: e.child, ...at };
        break;
      case 'exit':
        yield { op: 'exit', proc: e.proc, ...at };
        break;
      case 'sleep':
        yield { op: 'sleep', ms: e.ms, ...at };
        break;
    }
  }
  // As lackey and DAMON do: a trace without one event is a mistake, not an empty workload.
  if (events === 0) throw new InputError(src.name, 0, 'no events in the trace');
}
