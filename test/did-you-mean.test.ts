import { test as fcTest } from '@fast-check/vitest';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../src/scenario/did-you-mean.ts';

describe('did you mean', () => {
  it('counts a swap of two neighbours as one edit', () => {
    expect(editDistance('szie', 'size')).toBe(1);
    expect(editDistance('size', 'size')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('picks the closest candidate within a third of the name, earlier ones on a tie', () => {
    expect(closest('szie', ['op', 'proc', 'size', 'addr'])).toBe('size');
    expect(closest('Szie', ['size'])).toBe('size');
    expect(closest('colour', ['version', 'name', 'timeline'])).toBeUndefined();
    expect(closest('sise', ['size', 'side'])).toBe('size');
    expect(closest('sise', ['side', 'size'])).toBe('side');
  });

  fcTest.prop([fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 })])(
    'is a metric on the strings tested: symmetric, zero only on equal strings, at most the longer length',
    (a, b) => {
      const d = editDistance(a, b);
      expect(d).toBe(editDistance(b, a));
      expect(d === 0).toBe(a === b);
      expect(d).toBeLessThanOrEqual(Math.max(a.length, b.length));
    },
  );
});
