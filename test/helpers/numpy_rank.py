"""numpy.linalg.matrix_rank(Wi - Wj) for one tensor of several safetensors files: the
reference the rank tests compare with. Usage: numpy_rank.py TENSOR FILE... ; prints JSON
{"ranks": [[...]]} (N x N). Loads every dtype as float32 (bf16/f16 widened exactly), as a
user of numpy with torch-exported weights would, and subtracts in float32."""
import json
import struct
import sys

import numpy as np


def load(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        info = header[name]
        b, e = info["data_offsets"]
        f.seek(8 + n + b)
        raw = f.read(e - b)
    dtype = info["dtype"]
    if dtype == "F32":
        a = np.frombuffer(raw, dtype="<f4")
    elif dtype == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif dtype == "F64":
        a = np.frombuffer(raw, dtype="<f8")
    else:
        raise ValueError(f"unsupported dtype {dtype}")
    return a.reshape(info["shape"])


def main():
    name, files = sys.argv[1], sys.argv[2:]
    ws = [load(p, name) for p in files]
    n = len(ws)
    ranks = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            r = int(np.linalg.matrix_rank(ws[i] - ws[j]))
            ranks[i][j] = ranks[j][i] = r
    print(json.dumps({"ranks": ranks}))


main()
