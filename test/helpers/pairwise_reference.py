#!/usr/bin/python3
"""Independent reference for the pairwise pass (test/pairwise_gram.test.ts).

Reads a case file (JSON: the models' decoded float64 tensors as raw little-endian files, and
the plan) and prints, per tensor and pair i < j, over the positions the pair compares (the
rows both have, both values finite):
  count, skipped, sumSq          sum (a - b)^2, exactly rounded
  meanA, meanB, varA, varB       means (exactly rounded sums / n) and population variances
  oneMinusR                      1 - r from variances accurate to about 1e-16, in 40-digit decimals
  scale                          var(a - b) / (2 sa sb) + (sa - sb)^2 / (2 sa sb): what 1 - r's
                                 error is measured against (its two terms' size)
  rShift1, rShift2, nShift       numpy float64 Pearson r of a[p] with b[p + R], b[p + 2R] over
                                 the sampled positions (windows of 1024, every 8th window; p + 2R
                                 inside the shared rows; all three values finite)

Exactness: differences and squares are carried as exact sums of floats (TwoSum, Veltkamp /
Dekker TwoProduct, vectorised in numpy) and summed with math.fsum (exactly rounded).
"""
import json
import math
import sys
from decimal import Decimal, getcontext

import numpy as np

getcontext().prec = 40
SPLIT = 134217729.0  # 2^27 + 1
WINDOW, EVERY = 1024, 8


def two_sum(a, b):
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def split(a):
    c = SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a, b):
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def sq_pieces(terms):
    """Floats whose sum is exactly sum (t0 + t1 + ...)^2 over elements."""
    pieces = []
    terms = [t for t in terms if np.any(t)]  # exact differences leave all-zero error terms
    k = len(terms)
    for i in range(k):
        for j in range(i, k):
            p, e = two_prod(terms[i], terms[j])
            if i != j:
                p, e = 2 * p, 2 * e
            pieces.append(p)
            pieces.append(e)
    if not pieces:
        return np.zeros(0)
    out = np.concatenate(pieces)
    return out[out != 0]


def exact_sum_sq(terms):
    """sum (t0 + t1 + ...)^2 over elements, exactly rounded; terms: arrays whose elementwise sum is exact."""
    return math.fsum(sq_pieces(terms).tolist())


def m2_about_mean(x):
    """(mean, sum (x - mean)^2, the exact pieces of sum (x - c)^2, n (m - c)^2) of float64 values:
    c the rounded mean; mean and m2 accurate to about 1e-16 relative."""
    n = x.size
    mean = math.fsum(x.tolist()) / n
    s, e = two_sum(x, np.full_like(x, -mean))
    # sum (x - c)^2 = m2 + n (m - c)^2 with c the rounded mean; m - c = (sum (x - c)) / n
    dev = math.fsum(np.concatenate([s, e]).tolist())
    pieces = sq_pieces([s, e])
    return mean + dev / n, math.fsum(pieces.tolist()) - dev * dev / n, pieces, dev * dev / n


def one_minus_r(va, vb, vd, dv):
    """1 - r = [vd - (sa - sb)^2] / (2 sa sb), sa - sb = (va - vb) / (sa + sb) with dv = va - vb."""
    if not (va > 0 and vb > 0):
        return None, None
    A, B, D = Decimal(va), Decimal(vb), Decimal(vd)
    sa, sb = A.sqrt(), B.sqrt()
    den = 2 * sa * sb
    x, y = D / den, (Decimal(dv) / (sa + sb)) ** 2 / den
    return float(x - y), float(x + y)


def pair_stats(a, b, cache, ka, kb):
    ok = np.isfinite(a) & np.isfinite(b)
    mask = hash(ok.tobytes())
    a, b = a[ok], b[ok]
    n = a.size
    out = {'count': n, 'skipped': int(ok.size - n)}
    s, e = two_sum(a, -b)  # d = s + e exactly
    out['sumSq'] = exact_sum_sq([s, e])
    if n == 0:
        out.update(meanA=None, meanB=None, varA=None, varB=None, oneMinusR=None, scale=None)
        return out
    # a model's moments over the same positions are the same for every pair: cached
    ma, m2a, pa, ca = cache[(ka, a.size, mask)] if (ka, a.size, mask) in cache else cache.setdefault((ka, a.size, mask), m2_about_mean(a))
    mb, m2b, pb, cb = cache[(kb, b.size, mask)] if (kb, b.size, mask) in cache else cache.setdefault((kb, b.size, mask), m2_about_mean(b))
    # va - vb from one exactly rounded sum (for near-identical tensors it is far smaller than either)
    dm2 = math.fsum(np.concatenate([pa, -pb]).tolist()) - (ca - cb)
    sd = math.fsum(np.concatenate([s, e]).tolist())
    md = sd / n
    t1, t2 = two_sum(s, np.full_like(s, -md))  # d - md = t1 + t2 + e exactly
    dev = math.fsum(np.concatenate([t1, t2, e]).tolist())
    m2d = exact_sum_sq([t1, t2, e]) - dev * dev / n
    va, vb, vd = m2a / n, m2b / n, m2d / n
    omr, scale = one_minus_r(va, vb, vd, dm2 / n)
    out.update(meanA=ma, meanB=mb, varA=va, varB=vb, oneMinusR=omr, scale=scale)
    return out


def shift_stats(a, b, n_shared, R):
    """The sampled positions of the shifted null and numpy's r over them."""
    lim = n_shared - 2 * R
    if lim <= 0:
        return {'nShift': 0, 'rShift1': None, 'rShift2': None}
    starts = np.arange(0, lim, WINDOW * EVERY)
    p = np.concatenate([np.arange(s0, min(s0 + WINDOW, lim)) for s0 in starts]) if starts.size else np.zeros(0, int)
    x, y1, y2 = a[p], b[p + R], b[p + 2 * R]
    ok = np.isfinite(x) & np.isfinite(y1) & np.isfinite(y2)
    x, y1, y2 = x[ok], y1[ok], y2[ok]
    out = {'nShift': int(x.size)}

    def r(u, v):
        if u.size == 0 or np.var(u) == 0 or np.var(v) == 0:
            return None
        return float(np.corrcoef(u, v)[0, 1])

    out['rShift1'] = r(x, y1)
    out['rShift2'] = r(x, y2)
    return out


def reference(case):
    n = case['n']
    result = []
    for t in case['tensors']:
        R = t['rowElems']
        xs = [np.fromfile(f, dtype='<f8') if f else None for f in t['files']]
        pairs = []
        cache = {}
        for i in range(n):
            for j in range(i + 1, n):
                if xs[i] is None or xs[j] is None:
                    pairs.append(None)
                    continue
                shared = min(t['rows'][i], t['rows'][j]) * R
                st = pair_stats(xs[i][:shared], xs[j][:shared], cache, i, j)
                st.update(shift_stats(xs[i], xs[j], shared, R))
                pairs.append(st)
        result.append({'name': t['name'], 'pairs': pairs})
    return result


def main():
    """One case file: its result; several: a list of their results."""
    results = [reference(json.load(open(f))) for f in sys.argv[1:]]
    json.dump(results[0] if len(sys.argv) == 2 else results, sys.stdout)


if __name__ == '__main__':
    main()
