#!/usr/bin/python3
"""An independent MoTHer pipeline in the style of the reference implementation: every model
loaded into RAM as float32, scipy.stats.kurtosis per layer, numpy differences per pair and
layer (numpy.linalg.matrix_rank for LoRA), scipy Ward clustering, networkx minimum spanning
arborescence. Used by the accuracy benchmark (the same method computed independently of
mother) and by the speed benchmark (the baseline mother is measured against).

Usage:
  /usr/bin/python3 benchmarks/reference_mother.py MODEL_DIR... [--metric rms|rank]
      [--layers REGEX] [--kurtosis-layers REGEX] [--direction finetune|pretrain]
      [--lambda 0.3] [--families K] [--json]
Each MODEL_DIR holds model.safetensors or model.safetensors.index.json + shards. Prints the
recovered edges (parent -> child, as the paths given) as JSON with timings.
"""
import argparse
import json
import os
import re
import struct
import sys
import time

import networkx as nx
import numpy as np
import scipy.cluster.hierarchy as sch
import scipy.stats


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4").copy()
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F64":
            a = np.frombuffer(raw, dtype="<f8").astype(np.float32)
        else:
            continue  # integer buffers
        out[name] = a.reshape(info["shape"])
    return out


def load_model(d):
    """All float tensors of a model directory (or .safetensors file), as float32."""
    if os.path.isfile(d):
        return read_safetensors(d)
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return read_safetensors(os.path.join(d, "model.safetensors"))
    index = os.path.join(d, "model.safetensors.index.json")
    with open(index) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    out = {}
    for s in shards:
        out.update(read_safetensors(os.path.join(d, s)))
    return out


def square_layers(model, pattern):
    rx = re.compile(pattern) if pattern else None
    return sorted(n for n, w in model.items() if w.ndim == 2 and w.shape[0] == w.shape[1] and (rx is None or rx.search(n)))


def peak_rss():
    """VmHWM: peak resident set of this process image (not inherited from a parent)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--metric", choices=["rms", "rank"], default="rms")
    ap.add_argument("--layers", default=None, help="regex of square layers for the distance")
    ap.add_argument("--kurtosis-layers", default=None, help="regex of square layers for the kurtosis")
    ap.add_argument("--direction", choices=["finetune", "pretrain"], default="finetune")
    ap.add_argument("--lambda", dest="lam", type=float, default=0.3)
    ap.add_argument("--families", type=int, default=1, help="number of clusters K (Ward)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    t0 = time.time()
    models = [load_model(m) for m in args.models]
    t_load = time.time() - t0
    n = len(models)

    # kurtosis: sum over the chosen square layers of the excess kurtosis (scipy default: Fisher, biased)
    klayers = square_layers(models[0], args.kurtosis_layers)
    ku = np.array([sum(float(scipy.stats.kurtosis(m[l].ravel().astype(np.float64))) for l in klayers if l in m) for m in models])

    # distances, per pair and layer, as the reference does
    dlayers = square_layers(models[0], args.layers)
    D = np.zeros((n, n))
    C = np.zeros((n, n))  # clustering distance: sum over layers of mean |diff| (or ranks)
    for i in range(n):
        for j in range(i + 1, n):
            vals, l1 = [], 0.0
            for l in dlayers:
                if l not in models[i] or l not in models[j] or models[i][l].shape != models[j][l].shape:
                    continue
                diff = models[i][l] - models[j][l]
                if args.metric == "rank":
                    vals.append(float(np.linalg.matrix_rank(diff)))
                else:
                    vals.append(float(np.sqrt(np.mean(diff.astype(np.float64) ** 2))))
                l1 += float(np.mean(np.abs(diff)))
            d = float(np.sum(vals)) if args.metric == "rank" else float(np.mean(vals))
            D[i, j] = D[j, i] = d
            C[i, j] = C[j, i] = float(np.sum(vals)) if args.metric == "rank" else l1
    t_dist = time.time() - t0 - t_load

    # clusters: Ward on the clustering distances, K given
    if n > 1 and args.families > 1:
        Z = sch.linkage(C[np.triu_indices(n, 1)], method="ward")
        labels = sch.fcluster(Z, args.families, criterion="maxclust")
    else:
        labels = np.ones(n, dtype=int)

    edges = []
    for c in sorted(set(labels)):
        idx = [i for i in range(n) if labels[i] == c]
        if len(idx) < 2:
            continue
        sub = D[np.ix_(idx, idx)]
        mean_d = sub[~np.eye(len(idx), dtype=bool)].mean()
        g = nx.DiGraph()
        for a, i in enumerate(idx):
            for b, j in enumerate(idx):
                if i == j:
                    continue
                against = ku[j] > ku[i] if args.direction == "finetune" else ku[j] < ku[i]
                g.add_edge(i, j, weight=sub[a, b] + args.lam * mean_d * (1.0 if against else 0.0))
        tree = nx.minimum_spanning_arborescence(g)
        edges += [[args.models[u], args.models[v]] for u, v in tree.edges()]
    t_total = time.time() - t0
    result = {
        "edges": sorted(edges),
        "families": [[args.models[i] for i in range(n) if labels[i] == c] for c in sorted(set(labels))],
        "kurtosis": dict(zip(args.models, ku.tolist())),
        "seconds": {"load": t_load, "distances": t_dist, "total": t_total},
        "peak_rss_bytes": peak_rss(),
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    sys.exit(main())
