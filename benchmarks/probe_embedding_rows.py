"""Probe: do identical token-embedding rows tell a Llama family's tree where the distances do not?

A fine-tune moves only the embedding rows of the tokens its data uses (and, with weight decay,
shrinks the others by (1 - lr wd) per step, below BF16's resolution for short runs), so two
models share bit-identical rows (compared at the coarser of their two dtypes) for every token
unused along the path between them. Per family of the `llm` split this prints, for every
model, its true parent, the members sharing the most identical rows with it, and the member
nearest by embedding RMS; then the maximum spanning tree on the identical-row counts (ties
broken by the smaller RMS) against the truth, undirected.

    /usr/bin/python3 benchmarks/probe_embedding_rows.py /work/zoo/medium

Measured 2026-12-01 on the medium zoo (benchmarks/RESULTS.md, Direction): the maximum spanning
tree gets 27 of 31 undirected edges (the misses include the children of the
extended-vocabulary models, which share no identical row with anyone); mother's trees on the
same families, from the distances: 24 of 31.
Not used by mother yet.
"""
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import networkx as nx  # noqa: E402
import torch  # noqa: E402

from zoo_lib.safetensors_io import load_model  # noqa: E402

EMBED = "model.embed_tokens.weight"


def coarse(x, dtype):
    if dtype == "BF16":
        return x.to(torch.bfloat16).float()
    if dtype == "F16":
        return x.to(torch.float16).float()
    return x


def main(zoo):
    truth = json.load(open(os.path.join(zoo, "truth.json")))
    ms = {m["id"]: m for m in truth["models"]}
    fams = {}
    for m in truth["models"]:
        if m["split"] == "llm" and m.get("arch") == "llama":
            fams.setdefault(m["family"], []).append(m["id"])
    total = right = 0
    for name, fam in sorted(fams.items()):
        if len(fam) < 2:
            continue
        w = {}
        for f in fam:
            st = load_model(os.path.join(zoo, f))
            st = st[0] if isinstance(st, tuple) else st
            w[f] = torch.from_numpy(st[EMBED].astype("float32"))

        def compare(a, b):
            x, y = w[a], w[b]
            n = min(x.shape[0], y.shape[0])
            ds = {ms[a]["dtype"], ms[b]["dtype"]}
            d = "BF16" if "BF16" in ds else "F16" if "F16" in ds else "F32"
            same = int((coarse(x[:n], d) == coarse(y[:n], d)).all(1).sum().item())
            rms = float(((x[:n] - y[:n]) ** 2).mean().sqrt().item())
            return same, rms

        pairs = {frozenset((a, b)): compare(a, b) for a, b in itertools.combinations(fam, 2)}
        for c in fam:
            if not ms[c]["parents"]:
                continue
            others = [o for o in fam if o != c]
            same = {o: pairs[frozenset((c, o))][0] for o in others}
            best = max(same.values())
            nearest = min(others, key=lambda o: pairs[frozenset((c, o))][1])
            print("%s parent %s | most identical rows (%d): %s | nearest by rms: %s"
                  % (c, ms[c]["parents"][0], best, ",".join(o for o in others if same[o] == best), nearest))
        g = nx.Graph()
        for key, (same, rms) in pairs.items():
            a, b = sorted(key)
            g.add_edge(a, b, weight=same - rms / (1.0 + rms))
        tree = {frozenset(e) for e in nx.maximum_spanning_tree(g).edges()}
        want = {frozenset((c, ms[c]["parents"][0])) for c in fam if ms[c]["parents"]}
        print("%s: %d / %d undirected edges" % (name, len(tree & want), len(want)))
        total += len(want)
        right += len(tree & want)
    print("maximum spanning tree on identical rows: %d / %d undirected edges" % (right, total))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/zoo/medium")
