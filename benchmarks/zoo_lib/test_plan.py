"""Checks of the zoo generator's planning and of its quantisers (no training, a few seconds):

    /usr/bin/python3 -m pytest -q benchmarks/zoo_lib/test_plan.py
    /usr/bin/python3 benchmarks/zoo_lib/test_plan.py          # the same without pytest
"""
import collections
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from zoo_lib import quant, spec  # noqa: E402

EDGE_REGIMES = ["ft_adamw", "ft_adamw_wd", "ft_sgd", "fan", "lora_fixed", "lora_varying", "continued_pretrain",
                "quantized_q8_0", "quantized_q4_0", "converted_f16", "converted_bf16", "duplicate", "merge"]
FAMILY_TAGS = ["init_hf", "init_torch", "pretrain_long", "pretrain_short"]
TRAINED = ("finetune", "lora", "continued_pretrain")


def _edges(models):
    return [(p, m) for m in models for p in m["parents"]]


def _counts(models):
    by = {m["id"]: m for m in models}
    reg = collections.Counter(m["regime"] for _, m in _edges(models))
    tags = collections.Counter()
    for _, m in _edges(models):
        if m["kind"] in TRAINED:
            tags["init_" + m["init"]] += 1
            tags["pretrain_" + m["pretrain_length"]] += 1
    return by, reg, tags


def test_plan_is_deterministic_and_topological():
    for size in spec.SIZES:
        a = spec.plan(size, 0)[0]
        b = spec.plan(size, 0)[0]
        assert a == b
        assert spec.plan(size, 1)[0] != a  # the seed matters
        seen = set()
        for m in a:
            assert m["id"] not in seen
            assert all(p in seen for p in m["parents"]), m["id"]
            seen.add(m["id"])
        assert len({m["seed"] for m in a}) == len(a)


def test_every_split_has_two_independent_runs_and_a_singleton():
    for size in spec.SIZES:
        models = spec.plan(size, 0)[0]
        for split in spec.SPLITS:
            ms = [m for m in models if m["split"] == split]
            roots = [m for m in ms if not m["parents"]]
            with_kids = {p for m in ms for p in m["parents"]}
            fams = [r for r in roots if r["id"] in with_kids]
            singles = [r for r in roots if r["id"] not in with_kids]
            archs = collections.Counter(r["arch"] for r in fams)
            assert max(archs.values()) >= 2, (size, split)
            assert singles and all(s.get("singleton") for s in singles), (size, split)
            assert len({r["family"] for r in roots}) == len(roots)


def test_small_has_every_regime_and_medium_twelve_edges_each():
    for size, least in (("small", 1), ("medium", 12)):
        _, reg, tags = _counts(spec.plan(size, 0)[0])
        for r in EDGE_REGIMES:
            assert reg[r] >= least, (size, r, reg[r])
        for t in FAMILY_TAGS:
            assert tags[t] >= least, (size, t, tags[t])


def test_copies_and_merges():
    for size in spec.SIZES:
        models = spec.plan(size, 0)[0]
        by = {m["id"]: m for m in models}
        children = collections.Counter(p for m in models for p in m["parents"])
        ops = collections.Counter()
        for m in models:
            if m["kind"] in ("quantized", "converted", "duplicate", "merge"):
                assert children[m["id"]] == 0, "copies are leaves"
                assert m["steps"] == 0 and m["arch"] == "vit"
                ops[m["op"]] += 1
            if m["kind"] == "merge":
                p1, p2 = (by[p] for p in m["parents"])
                assert p1["id"] != p2["id"] and p1["parents"] == p2["parents"], "siblings"
                assert p1["family"] == p2["family"] == m["family"]
                assert abs(sum(m["merge_weights"]) - 1) < 1e-12
                heavy = m["parents"][0] if m["merge_weights"][0] >= m["merge_weights"][1] else m["parents"][1]
                assert m["parent"] == heavy
            elif m["parents"]:
                assert m["parent"] == m["parents"][0] and len(m["parents"]) == 1
            if m["kind"] == "converted":
                assert by[m["parent"]]["dtype"] == "F32" and m["dtype"] in ("F16", "BF16")
            if m["kind"] == "duplicate":
                assert m["dtype"] == by[m["parent"]]["dtype"]
            if m["regime"] == "fan":
                sib = [x for x in models if x["parents"] == m["parents"] and x["regime"] == "fan"]
                assert len(sib) >= 4 and len({(x["task"], x["recipe"]) for x in sib}) == 1
        assert ops["dup_bytes"] and ops["dup_values"], size
        merges = [m for m in models if m["kind"] == "merge"]
        assert {0.5} < {w for m in merges for w in m["merge_weights"]}, "equal and unequal merges"


def _f16(x):
    return np.float32(np.float16(x))


def test_q8_0_matches_the_reference_loop():
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((4, 64)) * 0.05).astype(np.float32)
    a[0, :32] = 0.0  # an all-zero block
    a[1, 5] = 0.3    # an outlier
    got = quant.q8_0(a)
    flat = a.reshape(-1, 32)
    for b, blk in enumerate(flat):
        amax = max(abs(float(v)) for v in blk)
        d = np.float32(np.float32(amax) / np.float32(127))
        inv = np.float32(1) / d if d else np.float32(0)
        for j, v in enumerate(blk):
            x = float(np.float32(v * inv))
            q = int(np.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)  # roundf
            assert -127 <= q <= 127
            assert got.reshape(-1, 32)[b, j] == np.float32(q * _f16(d)), (b, j)
    assert np.all(got[0, :32] == 0)
    assert np.max(np.abs(got - a)) <= np.max(np.abs(a)) / 127


def test_q4_0_matches_the_reference_loop():
    rng = np.random.default_rng(2)
    a = (rng.standard_normal((2, 96)) * 0.05).astype(np.float32)
    got = quant.q4_0(a).reshape(-1, 32)
    for b, blk in enumerate(a.reshape(-1, 32)):
        amax, mx = 0.0, 0.0
        for v in blk:
            if amax < abs(float(v)):
                amax, mx = abs(float(v)), float(v)
        d = np.float32(np.float32(mx) / np.float32(-8))
        inv = np.float32(1) / d if d else np.float32(0)
        for j, v in enumerate(blk):
            q = min(15, int(np.float32(np.float32(v * inv) + np.float32(8.5))))
            assert 0 <= q <= 15
            assert got[b, j] == np.float32((q - 8) * _f16(d)), (b, j)
        # the value of largest magnitude comes back up to the FP16 rounding of its scale
        k = int(np.argmax(np.abs(blk)))
        assert got[b, k] == np.float32(-8 * _f16(d))


def test_quantize_state_keeps_what_ggml_keeps():
    st = {"w": np.ones((8, 64), np.float32) * 0.1, "b": np.ones(64, np.float32) * 0.123,
          "odd": np.ones((4, 48), np.float32) * 0.1, "conv": np.ones((32, 1, 2, 2), np.float32) * 0.1}
    out, done = quant.quantize_state(st, "q4_0")
    assert done == ["w"]
    for k in ("b", "odd", "conv"):
        assert out[k] is st[k]


def test_bf16_reader_roundtrip():
    # the reader decodes BF16 by shifting: 0x3f80 -> 1.0
    from zoo_lib import safetensors_io
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        safetensors_io._write_file(p, [("t", (2,), "BF16", struct.pack("<2H", 0x3F80, 0xC000))], {"format": "pt"})
        t, _ = safetensors_io.read_file(p)
        assert list(t["t"]) == [1.0, -2.0]


if __name__ == "__main__":
    n = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            n += 1
    print("%d passed, 0 failed" % n)
