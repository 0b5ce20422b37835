"""Minimal safetensors writer/reader (no dependency on the `safetensors` package).

Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON (padded with spaces to
a multiple of 8), then the raw little-endian tensor bytes in offset order.
"""
import json
import os
import struct

import numpy as np
import torch

DTYPE_NAMES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
_ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2}


def tensor_bytes(t, dtype):
    """Raw little-endian bytes of tensor `t` (float32, on any device) stored as `dtype`."""
    t = t.detach().to("cpu", torch.float32).contiguous()
    if dtype == "F32":
        return t.numpy().astype("<f4", copy=False).tobytes()
    if dtype == "F16":
        return t.to(torch.float16).numpy().astype("<f2", copy=False).tobytes()
    if dtype == "BF16":
        # torch's float32 -> bfloat16 cast rounds to nearest even.
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2", copy=False).tobytes()
    raise ValueError(dtype)


def _write_file(path, items, metadata):
    """items: list of (name, shape, dtype, bytes), written in the given order."""
    header = {"__metadata__": dict(metadata)}
    off = 0
    for name, shape, dtype, raw in items:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for _, _, _, raw in items:
            f.write(raw)
    os.replace(tmp, path)


def save_model(state, out_dir, dtype, shards=1, metadata=None):
    """Save an ordered dict name -> float32 tensor as model.safetensors, or as `shards`
    files model-0000k-of-0000n.safetensors + model.safetensors.index.json (HF layout).
    Tensors keep the module order across shards (like transformers' save_pretrained);
    within one file they are stored sorted by name (like the safetensors library).
    Returns the list of file names written."""
    metadata = {"format": "pt", **(metadata or {})}
    items = [(k, tuple(v.shape), dtype, tensor_bytes(v, dtype)) for k, v in state.items()]
    os.makedirs(out_dir, exist_ok=True)
    if shards <= 1:
        _write_file(os.path.join(out_dir, "model.safetensors"), sorted(items), metadata)
        return ["model.safetensors"]
    total = sum(len(it[3]) for it in items)
    target = total / shards
    groups, cur, cur_size = [], [], 0
    for it in items:
        # Greedy fill like transformers' max_shard_size: start a new shard when this
        # tensor would push the current one past the target size.
        if cur and cur_size + len(it[3]) > target and len(groups) < shards - 1:
            groups.append(cur)
            cur, cur_size = [], 0
        cur.append(it)
        cur_size += len(it[3])
    groups.append(cur)
    n = len(groups)
    names, weight_map = [], {}
    for i, g in enumerate(groups):
        fname = "model-%05d-of-%05d.safetensors" % (i + 1, n)
        _write_file(os.path.join(out_dir, fname), sorted(g), metadata)
        names.append(fname)
        for it in g:
            weight_map[it[0]] = fname
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return names + ["model.safetensors.index.json"]


def read_file(path):
    """Read one safetensors file -> (dict name -> float32 numpy array, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = data[base + b:base + e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError("unsupported dtype %s" % dt)
        out[name] = a.reshape(info["shape"])
    return out, meta


def load_model(model_dir):
    """Load a HF-style directory (single file or sharded) -> dict name -> float32 numpy."""
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fn in files:
        out.update(read_file(os.path.join(model_dir, fn))[0])
    return out
