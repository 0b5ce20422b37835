#!/usr/bin/python3
"""Independent reference dequantiser for the GGUF (ggml) block types, in numpy.

Written from the format description (ggml's docs/gguf.md, the block structs of ggml-common.h
and the reference dequantisation in ggml-quants.c), not from mother's C++: each type is
described as where its fields lie in a block and how a value is formed from them, and numpy
evaluates that on all blocks at once. A value is the formula evaluated in float64 (every
product of a scale and an integer quant is exact, so only the "+ min" of the types with a
minimum rounds, once).

    /usr/bin/python3 test/helpers/gguf_reference.py decode TYPE IN.bin OUT.bin
    /usr/bin/python3 test/helpers/gguf_reference.py batch MANIFEST.json

IN.bin holds whole blocks; OUT.bin receives the float64 values, little-endian. A manifest is
a JSON list of {"type", "input", "output"}.
"""
import json
import sys

import numpy as np

# type: (elements per block, bytes per block)
LAYOUT = {
    'Q8_0': (32, 34), 'Q4_0': (32, 18), 'Q4_1': (32, 20), 'Q5_0': (32, 22), 'Q5_1': (32, 24),
    'Q2_K': (256, 84), 'Q3_K': (256, 110), 'Q4_K': (256, 144), 'Q5_K': (256, 176), 'Q6_K': (256, 210),
    'MXFP4': (32, 17),
}

# FP4 E2M1 (OCP microscaling): sign bit 3, exponent bits 1-2 (bias 1), mantissa bit 0; exponent 0
# is subnormal (0 or 0.5).
def e2m1(code):
    sign = np.where(code & 8, -1.0, 1.0)
    e = (code >> 1) & 3
    m = code & 1
    mag = np.where(e == 0, 0.5 * m, (1.0 + 0.5 * m) * np.exp2(e.astype(np.float64) - 1))
    return sign * mag


def f16(blocks, start):
    """The f16 at byte `start` of every block, as a float64 column."""
    return blocks[:, start:start + 2].copy().view('<f2').astype(np.float64)


def i64(a):
    return a.astype(np.int64)


def nibbles_32(qs):
    """16 bytes -> 32 quants: element i < 16 is the low nibble of byte i, element 16 + i the high one."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def bit_planes(words, count):
    """Bit i (i < count) of a little-endian u32 per block, as columns."""
    return (words[:, None] >> np.arange(count, dtype=np.uint32)[None, :]) & 1


def two_bit_quants(qs):
    """64 bytes of 2-bit quants -> 256: element 128 h + 32 g + l is bits 2g, 2g+1 of byte 32 h + l."""
    q = qs.reshape(-1, 2, 1, 32)
    shifts = (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)
    return ((q >> shifts) & 3).reshape(-1, 256)


def k4_scales(s):
    """12 bytes of Q4_K / Q5_K scales -> (scale[8], min[8]), 6 bits each.

    Sub-blocks 0..3: low 6 bits of bytes 0..3 (scale) and 4..7 (min). Sub-blocks 4..7: the low
    and high nibbles of bytes 8..11, their bits 4..5 taken from the top 2 bits of bytes 0..3
    (scale) and 4..7 (min)."""
    s = i64(s)
    sc = np.empty((s.shape[0], 8), np.int64)
    mn = np.empty((s.shape[0], 8), np.int64)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def q3_scales(s):
    """12 bytes of Q3_K scales -> 16 signed scales: low 4 bits in the nibbles of bytes 0..7 (scale
    j < 8 in the low nibble of byte j, j >= 8 in the high nibble of byte j - 8), high 2 bits at
    bits 2 (j // 4) of byte 8 + j % 4; minus 32."""
    s = i64(s)
    low = np.concatenate([s[:, 0:8] & 0x0F, s[:, 0:8] >> 4], axis=1)
    j = np.arange(16)
    high = (s[:, 8 + j % 4] >> (2 * (j // 4))) & 3
    return (low | (high << 4)) - 32


def per_sub(values, size):
    """A per-sub-block column, repeated over the sub-block's `size` elements."""
    return np.repeat(values, size, axis=1)


def decode_blocks(kind, raw):
    elems, nbytes = LAYOUT[kind]
    b = np.frombuffer(raw, dtype=np.uint8)
    if b.size % nbytes:
        raise ValueError(f'{kind}: {b.size} bytes is not a whole number of {nbytes}-byte blocks')
    b = b.reshape(-1, nbytes)
    if kind == 'Q8_0':
        return (f16(b, 0) * b[:, 2:34].view(np.int8).astype(np.float64)).reshape(-1)
    if kind == 'Q4_0':
        q = i64(nibbles_32(b[:, 2:18]))
        return (f16(b, 0) * (q - 8)).reshape(-1)
    if kind == 'Q4_1':
        q = i64(nibbles_32(b[:, 4:20]))
        return (f16(b, 0) * q + f16(b, 2)).reshape(-1)
    if kind in ('Q5_0', 'Q5_1'):
        off = 2 if kind == 'Q5_0' else 4
        qh = b[:, off:off + 4].copy().view('<u4').reshape(-1)
        q = i64(nibbles_32(b[:, off + 4:off + 20])) | (i64(bit_planes(qh, 32)) << 4)
        if kind == 'Q5_0':
            return (f16(b, 0) * (q - 16)).reshape(-1)
        return (f16(b, 0) * q + f16(b, 2)).reshape(-1)
    if kind == 'Q2_K':
        s = i64(b[:, 0:16])
        q = i64(two_bit_quants(b[:, 16:80]))
        scale = per_sub(f16(b, 80) * (s & 0x0F), 16)
        mins = per_sub(f16(b, 82) * (s >> 4), 16)
        return (scale * q - mins).reshape(-1)
    if kind == 'Q3_K':
        low = i64(two_bit_quants(b[:, 32:96]))
        hm = i64(b[:, 0:32]).reshape(-1, 1, 1, 32)
        planes = (4 * np.arange(2).reshape(1, 2, 1, 1) + np.arange(4).reshape(1, 1, 4, 1))
        high = ((hm >> planes) & 1).reshape(-1, 256)
        q = low - 4 * (1 - high)
        scale = per_sub(f16(b, 108) * q3_scales(b[:, 96:108]), 16)
        return (scale * q).reshape(-1)
    if kind in ('Q4_K', 'Q5_K'):
        sc, mn = k4_scales(b[:, 4:16])
        qs = b[:, 16:144] if kind == 'Q4_K' else b[:, 48:176]
        qs = i64(qs).reshape(-1, 4, 1, 32)
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=2).reshape(-1, 256)  # 64 j + 32 t + l
        if kind == 'Q5_K':
            qh = i64(b[:, 16:48]).reshape(-1, 1, 1, 32)
            planes = (2 * np.arange(4).reshape(1, 4, 1, 1) + np.arange(2).reshape(1, 1, 2, 1))
            q = q | (((qh >> planes) & 1).reshape(-1, 256) << 4)
        scale = per_sub(f16(b, 0) * sc, 32)
        mins = per_sub(f16(b, 2) * mn, 32)
        return (scale * q - mins).reshape(-1)
    if kind == 'Q6_K':
        ql = i64(b[:, 0:128]).reshape(-1, 2, 2, 32)   # [h][g & 1][l]
        qh = i64(b[:, 128:192]).reshape(-1, 2, 1, 32)  # [h][l]
        low = np.concatenate([ql & 0x0F, ql >> 4], axis=2)  # g = 0, 1 low nibbles, then g = 2, 3 high
        high = (qh >> (2 * np.arange(4).reshape(1, 1, 4, 1))) & 3
        q = (low | (high << 4)).reshape(-1, 256) - 32
        scale = per_sub(f16(b, 208) * b[:, 192:208].view(np.int8).astype(np.float64), 16)
        return (scale * q).reshape(-1)
    if kind == 'MXFP4':
        # E8M0 scale 2^(e - 127) for every byte value, 0xFF too (as ggml reads it; the OCP spec
        # has NaN there); ggml stores the E2M1 values doubled and halves the scale: the same product
        q = i64(nibbles_32(b[:, 1:17]))
        scale = np.exp2(b[:, 0:1].astype(np.float64) - 127)
        return (scale * e2m1(q)).reshape(-1)
    raise ValueError(f'no reference decoder for {kind}')


def decode_file(kind, src, dst):
    with open(src, 'rb') as f:
        raw = f.read()
    with np.errstate(invalid='ignore', over='ignore'):
        y = decode_blocks(kind, raw)
    y.astype('<f8').tofile(dst)


def main(argv):
    if len(argv) == 5 and argv[1] == 'decode':
        decode_file(argv[2], argv[3], argv[4])
    elif len(argv) == 3 and argv[1] == 'batch':
        with open(argv[2]) as f:
            for job in json.load(f):
                decode_file(job['type'], job['input'], job['output'])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
