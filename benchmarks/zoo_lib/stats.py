"""Reference statistics of a generated zoo, computed on the saved weights with scipy:
per model, the sum over square 2-D weight matrices whose name contains a filter of the
excess kurtosis (Fisher, biased: scipy.stats.kurtosis defaults) of the flattened weights,
evaluated in float64."""
import os

import numpy as np
from scipy.stats import kurtosis

from .safetensors_io import load_model

FILTERS = {
    "vit": {"attention.output.dense": "attention.output.dense", "value": "attention.attention.value",
            "all_square": ""},
    "llama": {"self_attn.o_proj": "self_attn.o_proj", "all_square": ""},
}
# The filter MoTHer's reference uses for each split (the chain gets two columns).
SPLIT_FILTER = {"ft": "attention.output.dense", "lora_fixed": "value", "lora_varying": "value",
                "llm": "self_attn.o_proj", "pretrain_chain": "self_attn.o_proj"}
EXPECT = {"finetune": -1, "lora": -1, "continued_pretrain": +1}


def _square(w):
    return w.ndim == 2 and w.shape[0] == w.shape[1]


def compute(out, truth):
    weights = {}
    res = {"definition": "sum over square 2-D weights whose name contains the filter of "
                         "scipy.stats.kurtosis(w.ravel().astype(float64)) (Fisher, biased)",
           "models": {}}
    for m in truth["models"]:
        w = load_model(os.path.join(out, m["id"]))
        weights[m["id"]] = w
        ku = {}
        for key, pat in FILTERS[m["arch"]].items():
            ku[key] = float(sum(kurtosis(v.astype(np.float64).ravel()) for k, v in sorted(w.items())
                                if _square(v) and pat in k and k.endswith("weight")))
        entry = {"kurtosis": {k: round(v, 6) for k, v in ku.items()}}
        if m["parent"]:
            p = _parent_weights(weights, out, m["parent"])
            sq = [k for k in sorted(w) if _square(w[k]) and k in p and p[k].shape == w[k].shape]
            diff = [w[k].astype(np.float64) - p[k].astype(np.float64) for k in sq]
            entry["rms_delta_square"] = round(float(np.sqrt(np.mean([np.mean(d * d) for d in diff]))), 8)
            entry["rel_delta_square"] = round(float(
                np.sqrt(sum(np.sum(d * d) for d in diff) /
                        sum(np.sum(p[k].astype(np.float64) ** 2) for k in sq))), 6)
            if m["kind"] == "lora":
                ranks = [_num_rank(d) for k, d in zip(sq, diff) if "attention.attention.value" in k]
                entry["max_rank_delta_value"] = int(max(ranks))
        res["models"][m["id"]] = entry
    return res


def _parent_weights(cache, out, pid):
    if pid not in cache:
        cache[pid] = load_model(os.path.join(out, pid))
    return cache[pid]


def _num_rank(d, rel=1e-4):
    s = np.linalg.svd(d, compute_uv=False)
    return int(np.sum(s > rel * s[0])) if s[0] > 0 else 0


def report(truth, st):
    """Markdown table: per split, every model with its filtered kurtosis and the change from
    its parent; a summary line counts edges whose sign matches MoTHer's expectation."""
    lines = []
    byid = {m["id"]: m for m in truth["models"]}
    for split in ["ft", "lora_fixed", "lora_varying", "llm", "pretrain_chain"]:
        ms = [m for m in truth["models"] if m["split"] == split]
        if not ms:
            continue
        f = SPLIT_FILTER[split]
        lines.append("")
        lines.append("### %s (filter `%s`)" % (split, f))
        lines.append("")
        lines.append("| model | parent | kind | task | dtype | kurtosis | change vs parent | all square | change | rel. delta |")
        lines.append("|---|---|---|---|---|---:|---:|---:|---:|---:|")
        good = [0, 0]
        good_all = [0, 0]
        for fam in sorted({m["family"] for m in ms}):
            fm = [m for m in ms if m["family"] == fam]
            # depth-first order from the root
            order = []

            def visit(i, d):
                order.append((i, d))
                for c in sorted(x["id"] for x in fm if x["parent"] == i):
                    visit(c, d + 1)

            for r in [x["id"] for x in fm if x["parent"] is None]:
                visit(r, 0)
            for i, d in order:
                m = byid[i]
                e = st["models"][i]
                k = e["kurtosis"][f]
                ka = e["kurtosis"]["all_square"]
                kind = m["kind"] + (" r=%d" % m["rank"] if m.get("rank") else "")
                if m["parent"]:
                    pk = st["models"][m["parent"]]["kurtosis"]
                    dk, da = k - pk[f], ka - pk["all_square"]
                    sgn = EXPECT[m["kind"]]
                    ok = "ok" if dk * sgn > 0 else "**wrong**"
                    oka = "ok" if da * sgn > 0 else "wrong"
                    good[0] += dk * sgn > 0
                    good[1] += 1
                    good_all[0] += da * sgn > 0
                    good_all[1] += 1
                    lines.append("| %s%s | %s | %s | %s | %s | %.3f | %+.3f %s | %.3f | %+.3f %s | %.3f |" % (
                        "&nbsp;&nbsp;" * d, i, m["parent"], kind, m["task"], m["dtype"], k, dk, ok, ka, da, oka,
                        e["rel_delta_square"]))
                else:
                    lines.append("| %s | - | %s | %s | %s | %.3f | | %.3f | | |" % (
                        i, kind, m["task"], m["dtype"], k, ka))
        lines.append("")
        lines.append("Edges whose kurtosis moves the expected way (%s): %d/%d with `%s`, %d/%d with all square weights." % (
            "down for fine-tuning" if split != "pretrain_chain" else "up for continued pre-training",
            good[0], good[1], f, good_all[0], good_all[1]))
    return "\n".join(lines)
