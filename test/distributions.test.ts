// The distributions of the relatedness test against values computed once with mpmath at 50
// digits (scipy's t.isf is less accurate than these in the far tail, so mpmath is the reference).
import { logGamma, normalLog10Sf, normalQuantile, normalSf, studentLog10Sf, studentSf, studentUpperQuantile } from '../lib/method/distributions';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

describe('distributions', () => {
  test('normal upper tail, on the log scale far beyond underflow', () => {
    const want: [number, number][] = [
      [-3, -0.00058664931379006669], [0, -0.3010299956639812], [1, -0.7995455414919705], [1.96, -1.6020965578878513],
      [5, -6.5426456723906545], [10, -23.118053405486076], [40, -349.43700645934584], [100, -2173.8715428690344],
    ];
    for (const [z, l] of want) expect(rel(normalLog10Sf(z), l)).toBeLessThan(1e-13);
    expect(rel(normalSf(1.96), 10 ** -1.6020965578878513)).toBeLessThan(1e-13);
    expect(normalSf(40)).toBe(0); // underflows; the log does not
    expect(normalSf(-Infinity)).toBe(1);
    expect(Number.isNaN(normalSf(NaN))).toBe(true);
  });

  test('normal quantile', () => {
    const want: [number, number][] = [[1e-6, -4.753424308822899], [0.01, -2.3263478740408411], [0.9, 1.2815515655446006], [0.5, 0]];
    for (const [p, z] of want) expect(Math.abs(normalQuantile(p) - z)).toBeLessThan(1e-13 * Math.max(1, Math.abs(z)));
    // round trip in the far tail
    const z = normalQuantile(1e-300);
    expect(Math.abs(normalLog10Sf(-z) + 300)).toBeLessThan(1e-10);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(() => normalQuantile(1.5)).toThrow(/probability/);
  });

  test("Student's t upper tail", () => {
    const want: [number, number, number][] = [
      [0, 3, -0.3010299956639812], [1, 1, -0.60205999132796239], [2.5, 3, -1.3579974872519643], [-2, 5, -0.022719939526773137],
      [50, 3, -5.0550942932184082], [100, 12, -18.475532339738079], [800, 12, -29.30975570787054], [7, 100000, -11.89014219270715],
      [40, 200, -96.949090817500212],
    ];
    for (const [t, nu, l] of want) expect(rel(studentLog10Sf(t, nu), l)).toBeLessThan(1e-10);
    expect(rel(studentSf(2.5, 3), 10 ** -1.3579974872519643)).toBeLessThan(1e-12);
    // the normal limit
    expect(rel(studentLog10Sf(5, 1e8), normalLog10Sf(5))).toBeLessThan(1e-12);
    expect(studentLog10Sf(Infinity, 4)).toBe(-Infinity);
    expect(() => studentSf(1, 0)).toThrow(/degrees of freedom/);
  });

  test("Student's t quantile", () => {
    const want: [number, number, number][] = [[0.01, 1, 31.820515953773957], [1e-6, 8, 12.109834665556214], [1e-10, 100, 7.0833754814007225], [0.05, 3, 2.3533634348018238]];
    for (const [q, nu, t] of want) expect(rel(studentUpperQuantile(q, nu), t)).toBeLessThan(1e-10);
    expect(rel(studentUpperQuantile(0.95, 3), -2.3533634348018238)).toBeLessThan(1e-10);
    expect(() => studentUpperQuantile(0, 3)).toThrow(/upper-tail probability/);
  });

  test('log Gamma', () => {
    expect(Math.abs(logGamma(1))).toBeLessThan(1e-14);
    expect(rel(logGamma(0.5), 0.5 * Math.log(Math.PI))).toBeLessThan(1e-14);
    expect(rel(logGamma(10), Math.log(362880))).toBeLessThan(1e-14);
    expect(() => logGamma(0)).toThrow();
  });
});
