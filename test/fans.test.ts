// Fans vs chains (lib/method/fans.ts) on generated weight vectors: the squared distances and the
// difference kurtosis are computed here from the vectors themselves (float64, two passes), and
// the rule must move a fan's siblings back under their parent and leave chains alone, including
// the chains whose geometry alone reads as a fan.
import { CHAIN_RATIO, FAN_MARGIN, resolveFans } from '../lib/method/fans';
import { DIFF_GAUSSIAN } from '../lib/method/difference_shape';
import { Rng } from './helpers/reference';

const DIM = 20000;

/** Laplace(0, b / sqrt 2): variance b^2, excess kurtosis 3 (every moment finite). */
function laplace(rng: Rng, b: number): number {
  let u = rng.next();
  while (u === 0) u = rng.next();
  return (rng.next() < 0.5 ? -1 : 1) * (b / Math.SQRT2) * Math.log(u);
}

/** Squared distances and the excess kurtosis of every pairwise difference (c x c, row-major). */
function evidence(v: number[][]): { S: Float64Array; K: Float64Array; c: number } {
  const c = v.length;
  const S = new Float64Array(c * c), K = new Float64Array(c * c);
  for (let a = 0; a < c; a++)
    for (let b = a + 1; b < c; b++) {
      const d = v[a].map((x, k) => x - v[b][k]);
      const mean = d.reduce((t, x) => t + x, 0) / d.length;
      let m2 = 0, m4 = 0, sq = 0;
      for (const x of d) { const y = x - mean; m2 += y * y; m4 += y ** 4; sq += x * x; }
      S[a * c + b] = S[b * c + a] = sq;
      K[a * c + b] = K[b * c + a] = (d.length * m4) / (m2 * m2) - 3;
    }
  return { S, K, c };
}

/** A parent (model 0) and k children fine-tuned with one recipe: a shared update u (std `shared`)
 *  plus each child's own part e (std 1, distributed as `own` draws). */
function fan(rng: Rng, k: number, shared: number, own: (rng: Rng) => number, sharedDraw: (rng: Rng, s: number) => number = (r, s) => s * r.normal()) {
  const p = Array.from({ length: DIM }, () => 10 * rng.normal());
  const u = Array.from({ length: DIM }, () => sharedDraw(rng, shared));
  return [p, ...Array.from({ length: k }, () => p.map((x, d) => x + u[d] + own(rng)))];
}

const ratioOf = (S: Float64Array, c: number, p: number, a: number, b: number) => (S[p * c + b] - S[p * c + a]) / S[a * c + b];

describe('resolveFans', () => {
  test('a fan of same-recipe siblings hung off its first sibling (chain or star) goes back under the parent', () => {
    const rng = new Rng(31);
    for (let t = 0; t < 3; t++) {
      const { S, K, c } = evidence(fan(rng, 4, 3, (r) => laplace(r, 1)));
      // the siblings lie nearer each other than to their parent: the nearest-parent tree hangs them off one another
      expect(S[1 * c + 2]).toBeLessThan(S[0 * c + 2]);
      // the difference to the parent is near-Gaussian (the shared Gaussian part dominates), between siblings heavy-tailed
      expect(K[0 * c + 2]).toBeLessThan(DIFF_GAUSSIAN);
      expect(K[1 * c + 2] - K[0 * c + 2]).toBeGreaterThan(FAN_MARGIN);
      for (const tree of [[-1, 0, 1, 2, 3], [-1, 0, 1, 1, 1], [-1, 0, 1, 1, 3]]) {
        const r = resolveFans(tree, S, K, c, { error: new Float64Array(c * c).fill(0.02) });
        expect(r.parent).toEqual([-1, 0, 0, 0, 0]);
        for (const mv of r.moved) {
          expect(mv.ratio).toBeLessThan(CHAIN_RATIO);
          expect(mv.kFrom - mv.kTo).toBeGreaterThan(FAN_MARGIN);
        }
      }
    }
  });

  test('a checkpoint chain (orthogonal near-Gaussian steps) stays a chain', () => {
    const rng = new Rng(32);
    const v = [Array.from({ length: DIM }, () => 10 * rng.normal())];
    for (const s of [1, 0.5, 1.5, 0.8]) v.push(v[v.length - 1].map((x) => x + s * rng.normal()));
    const { S, K, c } = evidence(v);
    const r = resolveFans([-1, 0, 1, 2, 3], S, K, c);
    expect(r.parent).toEqual([-1, 0, 1, 2, 3]);
    expect(r.moved).toEqual([]);
  });

  test('a chain whose second fine-tune undoes part of the first has the fan geometry, but its differences say chain: it stays', () => {
    const rng = new Rng(33);
    for (let t = 0; t < 3; t++) {
      const p = Array.from({ length: DIM }, () => 10 * rng.normal());
      const a = p.map((x) => x + rng.normal());
      const b = a.map((x, k) => x - 0.7 * (x - p[k]) + rng.normal()); // forgets 70 % of a's update, learns its own
      const { S, K, c } = evidence([p, a, b]);
      // the ratio alone would call it a fan
      expect(ratioOf(S, c, 0, 1, 2)).toBeLessThan(CHAIN_RATIO);
      const r = resolveFans([-1, 0, 1], S, K, c);
      expect(r.parent).toEqual([-1, 0, 1]);
    }
  });

  test('heavy-tailed differences everywhere (SGD-like updates) are no evidence: the fan is left as the tree made it', () => {
    const rng = new Rng(34);
    const { S, K, c } = evidence(fan(rng, 3, 3, (r) => laplace(r, 1), (r, s) => laplace(r, s)));
    expect(K[0 * c + 2]).toBeGreaterThan(DIFF_GAUSSIAN);
    expect(resolveFans([-1, 0, 1, 1], S, K, c).parent).toEqual([-1, 0, 1, 1]);
  });

  test('vetoes: a forbidden edge, more differing embedding rows, a gap within three standard errors, a non-finite K', () => {
    const rng = new Rng(35);
    const { S, K, c } = evidence(fan(rng, 2, 3, (r) => laplace(r, 1)));
    const tree = [-1, 0, 1];
    expect(resolveFans(tree, S, K, c).parent).toEqual([-1, 0, 0]);
    const forbidden = new Uint8Array(c * c);
    forbidden[0 * c + 2] = 1;
    expect(resolveFans(tree, S, K, c, { forbidden }).parent).toEqual(tree);
    const differing = new Float64Array(c * c);
    differing[0 * c + 2] = differing[2 * c + 0] = 10; // the parent differs from the child in 10 rows, the sibling in 0
    expect(resolveFans(tree, S, K, c, { rows: { differing, tolerance: 2 } }).parent).toEqual(tree);
    expect(resolveFans(tree, S, K, c, { rows: { differing, tolerance: 10 } }).parent).toEqual([-1, 0, 0]);
    const gap = K[1 * c + 2] - K[0 * c + 2];
    expect(resolveFans(tree, S, K, c, { error: new Float64Array(c * c).fill(gap / 3 / Math.SQRT2 * 1.01) }).parent).toEqual(tree);
    expect(resolveFans(tree, S, K, c, { error: new Float64Array(c * c).fill(gap / 3 / Math.SQRT2 * 0.99) }).parent).toEqual([-1, 0, 0]);
    const Knan = K.slice();
    Knan[1 * c + 2] = Knan[2 * c + 1] = NaN;
    expect(resolveFans(tree, S, Knan, c).parent).toEqual(tree);
  });
});
