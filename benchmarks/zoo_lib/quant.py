"""ggml-style blockwise quantisation round trips (quantise, then dequantise to float32), as
llama.cpp's reference quantizers (quantize_row_q8_0_reference, quantize_row_q4_0_reference)
compute them, in float32:

- Q8_0: blocks of 32 consecutive values along the last dimension; d = absmax / 127;
  q = roundf(x * (1/d)) (round half away from zero), an int8 in [-127, 127]; the scale is
  stored as FP16, so the dequantised value is q * fp16(d).
- Q4_0: blocks of 32; m = the block's value of largest magnitude (the first one on ties),
  signed; d = m / -8; q = min(15, trunc(x * (1/d) + 8.5)), a nibble in [0, 15]; the value
  is (q - 8) * fp16(d). The largest-magnitude value maps to q = 0 exactly (-8 * d = m); the
  other extreme is clipped at q = 15 (7 * d).

Like llama.cpp, only 2-D weight matrices whose last dimension is a multiple of 32 are
quantised; every other tensor (biases, norms, conv kernels, position embeddings) is kept.
"""
import numpy as np

QK = 32


def quantizable(name, a):
    return a.ndim == 2 and a.shape[-1] % QK == 0


def _roundf(v):
    """C roundf in float32: round half away from zero (exact)."""
    t = np.trunc(v)
    return t + np.sign(v) * (np.abs(v - t) >= np.float32(0.5)).astype(np.float32)


def q8_0(a):
    x = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, QK)
    amax = np.abs(x).max(axis=1)
    d = amax / np.float32(127.0)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    q = _roundf(x * inv[:, None]).astype(np.float32)
    d16 = d.astype(np.float16).astype(np.float32)
    return (q * d16[:, None]).astype(np.float32).reshape(a.shape)


def q4_0(a):
    x = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, QK)
    idx = np.abs(x).argmax(axis=1)  # first maximum, like the reference's strict '<'
    mx = x[np.arange(x.shape[0]), idx]
    d = mx / np.float32(-8.0)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    v = x * inv[:, None] + np.float32(8.5)
    q = np.minimum(np.float32(15.0), np.trunc(v)).astype(np.float32)  # (int8_t) cast truncates
    d16 = d.astype(np.float16).astype(np.float32)
    return ((q - np.float32(8.0)) * d16[:, None]).astype(np.float32).reshape(a.shape)


QUANTIZERS = {"q8_0": q8_0, "q4_0": q4_0}


def quantize_state(state, fmt):
    """name -> float32 array; returns (new state, names of the quantised tensors)."""
    f = QUANTIZERS[fmt]
    out, done = {}, []
    for k, v in state.items():
        if quantizable(k, v):
            out[k] = f(v)
            done.append(k)
        else:
            out[k] = v
    return out, done
