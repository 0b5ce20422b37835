"""The cases of test/svd.test.ts and numpy's singular values of each (numpy.linalg.svd, LAPACK).
Usage: numpy_svd.py OUTDIR ; writes OUTDIR/<i>.f64 (float64 row-major, little-endian) and
prints JSON [{name, m, n, file, values, rank}] (rank: numpy.linalg.matrix_rank, float64)."""
import json
import os
import sys

import numpy as np


def orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def with_values(rng, m, n, s):
    k = min(m, n)
    return (orthogonal(rng, m)[:, :k] * s) @ orthogonal(rng, n)[:, :k].T


def bf16(x):
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16  # round to nearest even
    return b.astype(np.uint32).view(np.float32).astype(np.float64)


def lora_difference(rng, n, r, store):
    """W_child - W_parent of a merged LoRA of rank r (child = W + B A), both stored in `store`."""
    w = 0.02 * rng.standard_normal((n, n))
    ba = rng.standard_normal((n, r)) @ rng.standard_normal((r, n))
    child = w + 0.05 * np.linalg.norm(w) / np.linalg.norm(ba) * ba
    if store == "f64":
        return child - w
    if store == "f32":
        return child.astype(np.float32).astype(np.float64) - w.astype(np.float32).astype(np.float64)
    return bf16(child) - bf16(w)


def cases():
    rng = np.random.default_rng(20161)
    for n in [1, 2, 3, 5, 8, 31, 64, 100, 128, 256]:
        yield f"gaussian {n} x {n}", rng.standard_normal((n, n))
    for m, n in [(200, 60), (60, 200), (257, 33), (1, 40), (40, 1), (129, 127)]:
        yield f"gaussian {m} x {n}", rng.standard_normal((m, n))
    yield "graded values 1..1e-15, 160 x 160", with_values(rng, 160, 160, np.logspace(0, -15, 160))
    yield "graded values 1..1e-15, 150 x 90", with_values(rng, 150, 90, np.logspace(0, -15, 90))
    n = 96
    yield "graded rows and columns, 96 x 96", (np.logspace(0, -8, n)[:, None] * rng.standard_normal((n, n))) * np.logspace(0, -7, n)[None, :]
    yield "geometric values 2^-i, 64 x 64", with_values(rng, 64, 64, 2.0 ** -np.arange(64))
    for n, r, store in [(128, 2, "f64"), (128, 24, "f64"), (64, 64, "f64"), (128, 16, "f32"), (256, 64, "f32"), (128, 8, "bf16")]:
        yield f"merged-LoRA difference, rank {r}, {store} storage, {n} x {n}", lora_difference(rng, n, r, store)
    psi, omega = rng.standard_normal((128, 64)), rng.standard_normal((128, 64))
    yield "rank sketch Psi^T (Wi - Wj) Omega, rank 16, 64 x 64", psi.T @ lora_difference(rng, 128, 16, "f64") @ omega
    yield "repeated values (1 x 30, 0.5 x 30, 1e-3 x 36), 96 x 96", with_values(rng, 96, 96, np.r_[np.ones(30), 0.5 * np.ones(30), 1e-3 * np.ones(36)])
    yield "identity 70 x 70", np.eye(70)
    yield "all ones 90 x 90", np.ones((90, 90))
    yield "zero 40 x 40", np.zeros((40, 40))
    yield "zero 1 x 1", np.zeros((1, 1))
    yield "1 x 1", np.array([[-3.25]])
    yield "triangular with zero rows, 60 x 60", np.triu(rng.standard_normal((60, 60))) * (np.arange(60) % 3 != 0)[:, None]
    yield "scale 1e300, 48 x 48", 1e300 * rng.standard_normal((48, 48))
    yield "scale 1e-300, 48 x 48", 1e-300 * rng.standard_normal((48, 48))


def main():
    out = sys.argv[1]
    manifest = []
    for i, (name, a) in enumerate(cases()):
        a = np.ascontiguousarray(a, dtype=np.float64)
        f = os.path.join(out, f"{i}.f64")
        a.astype("<f8").tofile(f)
        s = np.linalg.svd(a, compute_uv=False)
        manifest.append({"name": name, "m": a.shape[0], "n": a.shape[1], "file": f, "values": s.tolist(), "rank": int(np.linalg.matrix_rank(a))})
    print(json.dumps(manifest))


main()
