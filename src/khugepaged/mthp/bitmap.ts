// mthp_present_ptes: one bit per PTE of a PMD range that passed the scan's per-PTE checks
// (occupied: present, not the zero page, a normal anon page). Words of 32 bits, SWAR popcount.

export class PteBitmap {
  readonly words: Uint32Array;
  readonly nbits: number;

  constructor(nbits: number) {
    this.nbits = nbits;
    this.words = new Uint32Array(Math.ceil(nbits / 32));
  }

  clear(): void {
    this.words.fill(0);
  }

  set(i: number): void {
    this.words[i >>> 5] |= 1 << (i & 31);
  }

  test(i: number): boolean {
    return (this.words[i >>> 5] & (1 << (i & 31))) !== 0;
  }

  /** Set bits in [start, start + n) (bitmap_weight of a range), a masked word at a time. */
  count(start: number, n: number): number {
    let total = 0;
    const end = start + n;
    for (let i = start; i < end;) {
      const bit = i & 31;
      const take = Math.min(32 - bit, end - i);
      let word = this.words[i >>> 5] >>> bit;
      if (take < 32) word &= (1 << take) - 1;
      total += popcount32(word);
      i += take;
    }
    return total;
  }
}

export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
