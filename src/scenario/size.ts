// Byte sizes as scenarios write them: a number of bytes, or a string like "2MiB", "64KiB", "4K",
// "1.5GiB" or "0x200000". Every unit is binary (K = KiB = kB = 1024), as the kernel's memparse()
// and the hugepages-<size>kB directory names use them.

/** Bytes per binary unit, by lower-case name (shared with the expression language). */
export const BINARY_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  k: 2 ** 10,
  kb: 2 ** 10,
  kib: 2 ** 10,
  m: 2 ** 20,
  mb: 2 ** 20,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 2 ** 30,
  gib: 2 ** 30,
  t: 2 ** 40,
  tb: 2 ** 40,
  tib: 2 ** 40,
  p: 2 ** 50,
  pb: 2 ** 50,
  pib: 2 ** 50,
  e: 2 ** 60,
  eb: 2 ** 60,
  eib: 2 ** 60,
};

/** The units formatSize() writes, largest first. */
const FORMAT_UNITS: readonly [string, number][] = [
  ['PiB', 2 ** 50],
  ['TiB', 2 ** 40],
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10],
];

export const SIZE_HINT = 'a size like "2MiB" or a number of bytes';

export class SizeError extends Error {
  constructor(
    readonly input: unknown,
    reason?: string,
  ) {
    super(`expected ${SIZE_HINT}, got ${describeValue(input)}${reason ? ` (${reason})` : ''}`);
  }
}

/** The largest size counted exactly (2^53 - 1 bytes, just under 8 PiB). */
export const MAX_SIZE_BYTES = Number.MAX_SAFE_INTEGER;

/** A short, one-line rendering of a value for error messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? s.slice(0, 60) + '...' : s;
}

const SIZE_RE = /^([0-9]+(?:\.[0-9]+)?|\.[0-9]+) ?([a-z]*)$/i;
const HEX_RE = /^0x[0-9a-f]+$/i;

/** Parse a size into a whole, non-negative number of bytes. Throws SizeError. */
export function parseSize(input: unknown): number {
  let bytes: number;
  if (typeof input === 'number') {
    bytes = input;
  } else if (typeof input === 'string') {
    const s = input.trim();
    if (HEX_RE.test(s)) {
      bytes = Number.parseInt(s.slice(2), 16);
    } else {
      const m = SIZE_RE.exec(s);
      if (!m) throw new SizeError(input);
      const mult = m[2] === '' ? 1 : BINARY_UNITS[m[2].toLowerCase()];
      if (mult === undefined) throw new SizeError(input);
      bytes = Number(m[1]) * mult;
    }
  } else {
    throw new SizeError(input);
  }
  if (Number.isInteger(bytes) && bytes > MAX_SIZE_BYTES)
    throw new SizeError(input, 'more than 8PiB, the largest size the model counts exactly');
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new SizeError(input);
  return bytes;
}

/** The shortest exact rendering in the largest binary unit: 2097152 -> "2MiB", 1000 -> "1000B". */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`not a size: ${bytes}`);
  if (bytes === 0) return '0B';
  for (const [unit, mult] of FORMAT_UNITS) {
    if (bytes % mult === 0) return `${bytes / mult}${unit}`;
  }
  return `${bytes}B`;
}

/** A size in kB as the kernel labels folio sizes: 4 -> "4K", 2048 -> "2M", 524288 -> "512M". */
export function formatKb(kb: number): string {
  if (kb >= 1024 * 1024 && kb % (1024 * 1024) === 0) return `${kb / (1024 * 1024)}G`;
  if (kb >= 1024 && kb % 1024 === 0) return `${kb / 1024}M`;
  return `${kb}K`;
}

/** A byte address as hex, for VMA ranges. */
export function hex(addr: number): string {
  return addr.toString(16).padStart(12, '0');
}
