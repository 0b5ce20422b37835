"""The blocked SVD (native/pairwise/svd.cc) against numpy.linalg.svd (LAPACK) on the cases rank
decisions meet: prints, per case, the largest |s - s_numpy| in units of eps x sigma_max
(eps = 2^-52), for the blocked method and for the Jacobi reference. With SVD_TRUTH=1, also
against the exact values (mpmath at 32 digits) for the cases up to 64 x 64: the error of
numpy itself, of the blocked method and of the Jacobi.
Usage: bash native/tools/svd_check.sh accuracy   (builds the harness, then runs this).
Env: SVD_QUICK=1 (sizes up to 256 only), SVD_TRUTH=1."""
import os
import subprocess
import sys
import tempfile

import numpy as np

EPS = 2.0 ** -52
HARNESS = sys.argv[1] if len(sys.argv) > 1 else "/tmp/svd_check"
QUICK = os.environ.get("SVD_QUICK") == "1"
TRUTH = os.environ.get("SVD_TRUTH") == "1"


def exact_values(a):
    import mpmath

    mpmath.mp.dps = 32
    s = mpmath.svd_r(mpmath.matrix(a.tolist()), compute_uv=False)
    return np.sort(np.array([float(x) for x in s]))[::-1]


def orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def with_values(rng, m, n, s):
    k = min(m, n)
    u = orthogonal(rng, m)[:, :k]
    v = orthogonal(rng, n)[:, :k]
    return (u * s) @ v.T


def bf16(x):
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16  # round to nearest even
    return b.astype(np.uint32).view(np.float32).astype(np.float64)


def lora_difference(rng, n, r, store):
    """Wi - Wj of a parent and its merged-LoRA child (rank r), both stored in `store`."""
    w = 0.02 * rng.standard_normal((n, n))
    ba = rng.standard_normal((n, r)) @ rng.standard_normal((r, n))
    child = w + 0.05 * np.linalg.norm(w) / np.linalg.norm(ba) * ba
    if store == "f64":
        return child - w
    if store == "f32":
        return child.astype(np.float32).astype(np.float64) - w.astype(np.float32).astype(np.float64)
    return bf16(child) - bf16(w)


def cases():
    rng = np.random.default_rng(16)
    sizes = [1, 2, 3, 7, 64, 128, 256] + ([] if QUICK else [512, 1024])
    for n in sizes:
        yield f"gaussian {n} x {n}", rng.standard_normal((n, n))
    for m, n in [(300, 100), (100, 300), (1000, 30), (30, 1000), (1, 50), (50, 1), (129, 127)]:
        yield f"gaussian {m} x {n}", rng.standard_normal((m, n))
    for n in [64, 200] + ([] if QUICK else [512]):
        yield f"graded values 1..1e-15, {n} x {n}", with_values(rng, n, n, np.logspace(0, -15, n))
    yield "graded values 1..1e-15, 300 x 120", with_values(rng, 300, 120, np.logspace(0, -15, 120))
    n = 128
    d1, d2 = np.logspace(0, -8, n), np.logspace(0, -7, n)
    yield "graded rows and columns (D1 G D2, 1..1e-15), 128 x 128", (d1[:, None] * rng.standard_normal((n, n))) * d2[None, :]
    yield "geometric 2^-i, 64 x 64 (i = 0..63)", with_values(rng, 64, 64, 2.0 ** -np.arange(64))
    for n, r, store in [(128, 2, "f64"), (128, 16, "f32"), (128, 64, "f32"), (256, 8, "bf16"), (256, 64, "f32"), (64, 24, "bf16")]:
        yield f"merged-LoRA difference rank {r} ({store} storage), {n} x {n}", lora_difference(rng, n, r, store)
    k = 64
    psi, omega = rng.standard_normal((128, k)), rng.standard_normal((128, k))
    yield f"sketch Psi^T (Wi - Wj) Omega, rank 16 f32, {k} x {k}", psi.T @ lora_difference(rng, 128, 16, "f32") @ omega
    yield "repeated values (1 x 40, 0.5 x 40, 1e-3 x 48), 128 x 128", with_values(rng, 128, 128, np.r_[np.ones(40), 0.5 * np.ones(40), 1e-3 * np.ones(48)])
    yield "identity 100 x 100", np.eye(100)
    yield "all ones 90 x 90 (rank 1)", np.ones((90, 90))
    yield "rank 1 outer product 200 x 150", np.outer(rng.standard_normal(200), rng.standard_normal(150))
    yield "zero 50 x 50", np.zeros((50, 50))
    yield "1 x 1", np.array([[-3.5]])
    yield "zero 1 x 1", np.zeros((1, 1))
    yield "upper bidiagonal with tiny superdiagonal, 100 x 100", np.diag(rng.standard_normal(100)) + np.diag(1e-12 * rng.standard_normal(99), 1)
    yield "zero diagonal entries (Kahan-style), 60 x 60", np.triu(rng.standard_normal((60, 60))) * (np.arange(60) % 3 != 0)[:, None]
    yield "huge scale 1e300, 64 x 64", 1e300 * rng.standard_normal((64, 64))
    yield "tiny scale 1e-300, 64 x 64", 1e-300 * rng.standard_normal((64, 64))


def run(a, jacobi, tmp):
    m, n = a.shape
    fin, fout = os.path.join(tmp, "a.bin"), os.path.join(tmp, "s.bin")
    np.ascontiguousarray(a, dtype="<f8").tofile(fin)
    cmd = [HARNESS, "values", fin, fout, str(m), str(n)] + (["--jacobi"] if jacobi else [])
    subprocess.run(cmd, check=True)
    return np.fromfile(fout, dtype="<f8")


def main():
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        head = f"{'case':66s} {'blocked':>9s} {'jacobi':>9s}"
        if TRUTH:
            head += f" | {'numpy':>9s} {'blocked':>9s} {'jacobi':>9s} vs exact"
        print(head + "   (max |s - s_ref| / (eps sigma_max))")
        for name, a in cases():
            ref = np.linalg.svd(a, compute_uv=False)
            smax = ref[0] if ref.size else 0.0
            unit = EPS * smax if smax > 0 else 1.0
            out, got = [], []
            for jac in (False, True):
                if jac and min(a.shape) > 512:
                    out.append(float("nan"))
                    got.append(None)
                    continue
                s = run(a, jac, tmp)
                assert s.shape == ref.shape, (name, s.shape, ref.shape)
                got.append(s)
                out.append(float(np.max(np.abs(s - ref)) / unit) if ref.size else 0.0)
            worst = max(worst, out[0])
            line = f"{name:66s} {out[0]:9.2f} {out[1]:9.2f}"
            if TRUTH and max(a.shape) <= 64 and smax > 0 and np.isfinite(a).all() and np.abs(a).max() < 1e200 and np.abs(a).max() > 1e-200:
                ex = exact_values(a)
                errs = [np.max(np.abs(v - ex)) / (EPS * ex[0]) for v in (ref, got[0], got[1])]
                line += f" | {errs[0]:9.2f} {errs[1]:9.2f} {errs[2]:9.2f}"
            print(line)
    print(f"worst (blocked): {worst:.2f} eps sigma_max")


main()
