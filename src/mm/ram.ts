// How much physical memory the model can hold. Page frame numbers are 31-bit (the folio table and
// the buddy allocator keep pfns in Int32Arrays), and the model needs the shared zero page plus at
// least one page to give out. Metadata is allocated per memory section as it is first used
// (SPARSEMEM), so a large machine costs what it maps, not what it has.

/** The most page frames the model can number (pfns fit an Int32Array). */
export const MAX_PFNS = 2 ** 31;
/** The fewest page frames: the zero page and one page to allocate. */
export const MIN_PFNS = 2;

/** A RAM size the model cannot hold; the message says why and what would fit. */
export class RamSizeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'RamSizeError';
  }
}

function fmt(bytes: number): string {
  const units: [string, number][] = [
    ['EiB', 2 ** 60],
    ['PiB', 2 ** 50],
    ['TiB', 2 ** 40],
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ];
  for (const [u, m] of units) if (bytes >= m && bytes % m === 0) return `${bytes / m}${u}`;
  return `${bytes} bytes`;
}

/** Why ramBytes cannot be modelled with pages of pageSize bytes, or null when it can. */
export function ramSizeProblem(ramBytes: number, pageSize: number): string | null {
  if (!Number.isFinite(ramBytes) || ramBytes < 0) return `${ramBytes} is not a size`;
  const pages = Math.floor(ramBytes / pageSize);
  if (pages < MIN_PFNS)
    return `${fmt(ramBytes)} is too small: the model needs at least ${MIN_PFNS} pages (${fmt(MIN_PFNS * pageSize)} with ${fmt(pageSize)} pages)`;
  if (pages > MAX_PFNS)
    return `${fmt(ramBytes)} is more than the model can hold: at most ${fmt(MAX_PFNS * pageSize)} with ${fmt(pageSize)} pages (2^31 page frames)`;
  return null;
}

/** Throw RamSizeError unless ramBytes can be modelled; returns the number of page frames. */
export function checkRamSize(ramBytes: number, pageSize: number): number {
  const why = ramSizeProblem(ramBytes, pageSize);
  if (why !== null) throw new RamSizeError(`ram: ${why}`);
  return Math.floor(ramBytes / pageSize);
}
