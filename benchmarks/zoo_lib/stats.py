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
                "llm": "self_attn.o_proj", "pretrain_chain": "self_attn.o_proj",
                "copies": "attention.output.dense"}
# MoTHer's expected kurtosis trend per kind (copies and merges: fine-tuning's, for the table)
EXPECT = {"finetune": -1, "lora": -1, "continued_pretrain": +1, "quantized": -1, "converted": -1,
          "duplicate": -1, "merge": -1}
# mother's default kurtosis layers per architecture (lib/direction.ts)
DEFAULT_KURTOSIS = {"vit": "attention.output.dense", "llama": "self_attn.o_proj"}


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
    for split in sorted({m["split"] for m in truth["models"]}, key=lambda x: (list(SPLIT_FILTER).index(x) if x in SPLIT_FILTER else 99, x)):
        ms = [m for m in truth["models"] if m["split"] == split]
        if not ms:
            continue
        f = SPLIT_FILTER.get(split, "all_square")
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

            for r in sorted(x["id"] for x in fm if x["parent"] is None):
                visit(r, 0)
            for i, d in order:
                m = byid[i]
                e = st["models"][i]
                k = e["kurtosis"][f]
                ka = e["kurtosis"]["all_square"]
                kind = m["kind"] + (" r=%d" % m["rank"] if m.get("rank") else "")
                if m.get("regime") and m["regime"] not in ("pretrain", m["kind"]):
                    kind += " (%s)" % m["regime"]
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


# ---------------------------------------------------------------------------- signals
def _square_names(w):
    return sorted(k for k, v in w.items() if _square(v) and k.endswith("weight"))


def signals(out, truth):
    """What each training regime does to the signals mother uses, measured on the saved files.
    Per edge (parent -> child, from truth.json edge_info):
      (a) the summed excess kurtosis of the architecture's default kurtosis layers
          (DEFAULT_KURTOSIS) falls from parent to child;
      (b) the summed squared Frobenius norm of the square 2-D weights grows;
      (c) for a child with siblings of the same regime under the same parent: its nearest
          sibling is nearer than its parent (distance: mean over square 2-D weights of the
          RMS of the difference, mother's default rms distance);
      (d) Pearson r of the square 2-D weights of parent and child: every tensor centred on
          its own mean, then pooled, r = sum(a*b) / sqrt(sum(a^2) * sum(b^2)).
    Independent runs: every pair of models of one architecture in different families (the
    whole zoo as one folder); their largest |r| is the null the relatedness test must clear."""
    models = truth["models"]
    byid = {m["id"]: m for m in models}
    ku, norm2, vec, sqw = {}, {}, {}, {}
    for m in models:
        w = load_model(os.path.join(out, m["id"]))
        names = _square_names(w)
        pat = DEFAULT_KURTOSIS[m["arch"]]
        ku[m["id"]] = float(sum(kurtosis(w[k].astype(np.float64).ravel()) for k in names if pat in k))
        norm2[m["id"]] = float(sum(np.sum(w[k].astype(np.float64) ** 2) for k in names))
        v = np.concatenate([(w[k].astype(np.float64) - w[k].astype(np.float64).mean()).ravel() for k in names])
        vec[m["id"]] = v / np.linalg.norm(v)
        sqw[m["id"]] = {k: w[k] for k in names}

    def dist(a, b):
        return float(np.mean([np.sqrt(np.mean((sqw[a][k].astype(np.float64) - sqw[b][k]) ** 2))
                              for k in sqw[a]]))

    def r(a, b):
        return float(np.dot(vec[a], vec[b]))

    info = truth.get("edge_info") or [{"parent": p, "child": c, "relation": "finetune",
                                       "regime": byid[c].get("regime", byid[c]["kind"]),
                                       "regimes": [byid[c].get("regime", byid[c]["kind"])]}
                                      for p, c in truth["edges"]]
    kids = {}
    for e in info:
        kids.setdefault((e["parent"], e["regime"]), []).append(e["child"])
    rows = []
    for e in info:
        p, c = e["parent"], e["child"]
        sib = [s for s in kids[(p, e["regime"])] if s != c]
        row = {"parent": p, "child": c, "regime": e["regime"], "regimes": e.get("regimes", [e["regime"]]),
               "relation": e["relation"], "arch": byid[c]["arch"], "split": byid[c]["split"],
               "kurtosis_parent": ku[p], "kurtosis_child": ku[c], "norm2_parent": norm2[p],
               "norm2_child": norm2[c], "r": r(p, c), "dist_parent": dist(p, c)}
        if sib:
            row["dist_nearest_sibling"] = min(dist(c, s) for s in sib)
        rows.append(row)
    indep = {}
    fams = {}
    for m in models:
        fams.setdefault(m["family"], []).append(m["id"])
    within = {}
    for arch in sorted({m["arch"] for m in models}):
        ids = sorted(m["id"] for m in models if m["arch"] == arch)
        X = np.stack([vec[i] for i in ids])
        G = X @ X.T
        fam = [byid[i]["family"] for i in ids]
        best, pairs = (0.0, None, None), 0
        wmin = (2.0, None, None)
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                if fam[a] != fam[b]:
                    pairs += 1
                    if abs(G[a, b]) > abs(best[0]):
                        best = (float(G[a, b]), ids[a], ids[b])
                elif G[a, b] < wmin[0]:
                    wmin = (float(G[a, b]), ids[a], ids[b])
        indep[arch] = {"pairs": pairs, "max_abs_r": abs(best[0]), "r": best[0], "between": [best[1], best[2]]}
        within[arch] = {"min_r": wmin[0], "between": [wmin[1], wmin[2]]}
    return {"definition": signals.__doc__, "edges": rows, "independent": indep, "within_family": within}


def _frac(xs):
    return "%d/%d" % (sum(xs), len(xs)) if xs else "-"


def signals_report(sig):
    """Markdown: per (regime, architecture), then per family tag (initialisation and
    pre-training length, training edges only), the fractions (a)-(c) and r (d)."""
    rows = sig["edges"]
    groups = {}
    for e in rows:
        groups.setdefault((e["regime"], e["arch"]), []).append(e)
    for e in rows:
        if e["relation"] in ("finetune", "adapter"):
            for t in e["regimes"]:
                if t.startswith("init_") or t.startswith("pretrain_"):
                    groups.setdefault(("tag " + t, e["arch"]), []).append(e)
    order = ["ft_adamw", "ft_adamw_wd", "ft_sgd", "fan", "lora_fixed", "lora_varying", "continued_pretrain",
             "quantized_q8_0", "quantized_q4_0", "converted_f16", "converted_bf16", "duplicate", "merge"]

    def key(k):
        reg, arch = k
        return (reg.startswith("tag "), order.index(reg) if reg in order else 99, reg, arch)

    lines = ["| regime | arch | edges | (a) kurtosis of default layers fell | (b) square-weight norm grew "
             "| (c) nearest same-regime sibling nearer than parent | (d) r parent-child min / median |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for k in sorted(groups, key=key):
        es = groups[k]
        fell = [e["kurtosis_child"] < e["kurtosis_parent"] for e in es]
        same = sum(e["kurtosis_child"] == e["kurtosis_parent"] for e in es)
        grew = [e["norm2_child"] > e["norm2_parent"] for e in es]
        sib = [e["dist_nearest_sibling"] < e["dist_parent"] for e in es if "dist_nearest_sibling" in e]
        rs = sorted(e["r"] for e in es)
        lines.append("| %s | %s | %d | %s%s | %s | %s | %.4f / %.4f |" % (
            k[0], k[1], len(es), _frac(fell), " (%d equal)" % same if same else "", _frac(grew), _frac(sib),
            rs[0], rs[len(rs) // 2] if len(rs) % 2 else 0.5 * (rs[len(rs) // 2 - 1] + rs[len(rs) // 2])))
    lines.append("")
    for arch, d in sorted(sig["independent"].items()):
        w = sig["within_family"][arch]
        lines.append("- %s: independent pairs (different families) %d, max |r| = %.4f (%s vs %s); "
                     "lowest r between two models of one family %.4f (%s vs %s)." % (
                         arch, d["pairs"], d["max_abs_r"], d["between"][0], d["between"][1],
                         w["min_r"], w["between"][0], w["between"][1]))
    return "\n".join(lines)


def composition_report(out, truth):
    """Markdown: per split, models, families with descendants, singletons, edges per regime
    and per relation, and the bytes on disk (files only)."""
    models = truth["models"]
    info = truth.get("edge_info") or []
    lines = ["| split | models | families with descendants | singletons | edges per regime | edges per relation | MB |",
             "|---|---:|---:|---:|---|---|---:|"]
    tot = [0, 0, 0, 0]
    for split in sorted({m["split"] for m in models},
                        key=lambda x: (list(SPLIT_FILTER).index(x) if x in SPLIT_FILTER else 99, x)):
        ms = [m for m in models if m["split"] == split]
        roots = [m for m in ms if not m.get("parents", [m["parent"]] if m["parent"] else [])]
        single = [m for m in roots if m.get("singleton")]
        es = [e for e in info if e["child"].split("/")[0] == split]
        reg, rel = {}, {}
        for e in es:
            reg[e["regime"]] = reg.get(e["regime"], 0) + 1
            rel[e["relation"]] = rel.get(e["relation"], 0) + 1
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(out, split)) for f in fs)
        tot[0] += len(ms)
        tot[1] += len(roots) - len(single)
        tot[2] += len(single)
        tot[3] += size
        lines.append("| %s | %d | %d | %d | %s | %s | %.2f |" % (
            split, len(ms), len(roots) - len(single), len(single),
            ", ".join("%s %d" % kv for kv in sorted(reg.items())), ", ".join("%s %d" % kv for kv in sorted(rel.items())),
            size / 1e6))
    lines.append("| all | %d | %d | %d | %d edges | | %.2f |" % (tot[0], tot[1], tot[2], len(info), tot[3] / 1e6))
    return "\n".join(lines)
