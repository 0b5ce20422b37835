// The source of a set of identical models (lib/method/duplicates.ts): the member whose weight
// files were written first, by DUPLICATE_WRITTEN_GAP_MS or more; else the first in input order.
import { duplicateSource, DUPLICATE_WRITTEN_GAP_MS } from '../lib/method/duplicates';

describe('duplicateSource', () => {
  const gap = DUPLICATE_WRITTEN_GAP_MS;
  test('the oldest member when it is older than every other by the gap', () => {
    expect(duplicateSource([2, 5], [0, 0, 5000, 0, 0, 1000])).toEqual({ source: 5, by: 'written' });
    expect(duplicateSource([5, 2, 7], [0, 0, 5000, 0, 0, 9000, 0, 5000 + gap])).toEqual({ source: 2, by: 'written' });
  });
  test('a tie within the gap with any other member: the first in input order', () => {
    expect(duplicateSource([2, 5], [0, 0, 1000 + gap - 1, 0, 0, 1000])).toEqual({ source: 2, by: 'order' });
    // two members tie as the oldest, a third is newer: still a tie
    expect(duplicateSource([7, 3, 1], [0, 100, 0, 100, 0, 0, 0, 50000])).toEqual({ source: 1, by: 'order' });
  });
  test('an unknown time (null) or a non-finite one: the first in input order', () => {
    expect(duplicateSource([4, 1], [0, null, 0, 0, 99999])).toEqual({ source: 1, by: 'order' });
    expect(duplicateSource([0, 1], [NaN, 10])).toEqual({ source: 0, by: 'order' });
  });
  test('the gap is exactly 2 s: at 2 s it decides', () => {
    expect(duplicateSource([0, 1], [gap, 0])).toEqual({ source: 1, by: 'written' });
    expect(gap).toBe(2000);
  });
});
