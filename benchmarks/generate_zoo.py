#!/usr/bin/env python3
"""Generate a zoo of small, really trained model trees with ground truth (MoTHer-style).

    python3 benchmarks/generate_zoo.py --size small  --out samples/zoo-small
    python3 benchmarks/generate_zoo.py --size medium            # -> benchmarks/zoo/medium
    python3 benchmarks/generate_zoo.py --size large --device cuda --jobs 4

Splits (see benchmarks/ZOO.md): ft, lora_fixed, lora_varying (ViT-like image classifiers
on the UCI digits bundled with scikit-learn), llm (Llama-like byte-level decoder, one child
with an extended vocabulary), pretrain_chain (continued pre-training chains). Every model
is an HF-style directory (config.json + model.safetensors or shards); OUT/truth.json holds
the ground truth and OUT/stats.json reference kurtosis statistics.

Deterministic: each model's seed is derived from (--seed, model id), all random numbers are
drawn on the CPU from per-model generators, torch runs single-threaded with deterministic
algorithms, so reruns on the same machine give the same bytes whatever --jobs is.
"""
import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the repository
os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")  # and out of the spawned workers
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from zoo_lib import spec as zspec  # noqa: E402
from zoo_lib import stats as zstats  # noqa: E402
from zoo_lib import worker  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_one(m, out, device, arch_cfg, recipe):
    t = time.time()
    res = worker.build(m, out, device, arch_cfg, recipe)
    res["seconds"] = time.time() - t
    return res


def _costs(models, spec):
    """Rough relative cost of each model and of the longest chain of work below it."""
    per_step = {"vit": 1.0, "llama": 1.4}
    own = {m["id"]: m["steps"] * per_step[m["arch"]] + 1.0 for m in models}
    kids = {}
    for m in models:
        for p in m["parents"]:
            kids.setdefault(p, []).append(m["id"])
    crit = {}
    for m in reversed(models):  # children come after parents in plan order
        crit[m["id"]] = own[m["id"]] + max([crit[c] for c in kids.get(m["id"], [])] or [0])
    return crit


def _regime_fields(m, recipes):
    """truth.json per-model regime fields (see ZOO.md): `regime` (how the model was made from
    its parent(s); 'pretrain' for roots), `regimes` (that plus the family's initialisation and
    pre-training length tags, and a fan's recipe regime), `init`, `pretrain_length`, `parents`,
    and the copy details."""
    tags = [m["regime"]]
    if m["regime"] == "fan":
        tags.append(m["fan_recipe_regime"])
    tags += ["init_" + m["init"], "pretrain_" + m["pretrain_length"]]
    e = {"regime": m["regime"], "regimes": tags, "init": zspec.INIT_NAMES[m["init"]],
         "pretrain_length": m["pretrain_length"], "parents": list(m["parents"])}
    if m["recipe"]:
        r = recipes[m["recipe"]]
        e["optimizer"] = r.get("opt", "adamw")
        e["weight_decay"] = r["wd"]
    if m.get("singleton"):
        e["singleton"] = True
    if m["kind"] == "merge":
        e["merge_weights"] = list(m["merge_weights"])
    if m["kind"] == "quantized":
        e["quantization"] = {"format": m["op"], "block": 32, "along": "last dimension",
                             "scale": "absmax/127, stored FP16" if m["op"] == "q8_0" else
                             "max/-8 (max: the signed value of largest magnitude), stored FP16",
                             "rounding": "round half away from zero" if m["op"] == "q8_0" else
                             "min(15, trunc(x/d + 8.5)) - 8",
                             "tensors": "2-D with last dimension a multiple of 32; others kept",
                             "stored_as": m["dtype"]}
    if m["kind"] == "duplicate":
        e["duplicate"] = m["duplicate"]
    return e


def generate(args):
    models, spec, recipes = zspec.plan(args.size, args.seed, args.set)
    if args.only:
        keep = set(args.only.split(","))
        models = [m for m in models if m["split"] in keep]
    out = os.path.abspath(args.out)
    if os.path.exists(out):
        foreign = set(os.listdir(out)) - set(zspec.SPLITS) - {"truth.json", "stats.json", "signals.json"}
        if foreign and not args.force:
            sys.exit("%s holds files a zoo does not (%s); use --force to generate into it anyway"
                     % (out, ", ".join(sorted(foreign)[:5])))
        for split in zspec.SPLITS:
            shutil.rmtree(os.path.join(out, split), ignore_errors=True)
        for f in ("truth.json", "stats.json", "signals.json"):
            if os.path.exists(os.path.join(out, f)):
                os.remove(os.path.join(out, f))
    os.makedirs(out, exist_ok=True)
    by_id = {m["id"]: m for m in models}
    crit = _costs(models, spec)
    print("zoo %s: %d models, device %s, %d job(s) -> %s" % (args.size, len(models), args.device, args.jobs, out),
          flush=True)

    def task_args(m):
        return (m, out, args.device, dict(getattr(zspec, m["arch"].upper() + "_BASE"), **spec[m["arch"]]),
                recipes[m["recipe"]] if m["recipe"] else None)

    t0 = time.time()
    results = {}
    pending = {m["id"] for m in models}
    done = set()

    def ready():
        r = [i for i in pending if all(p in done for p in by_id[i]["parents"])]
        return sorted(r, key=lambda i: (-crit[i], i))

    def log(res):
        m = by_id[res["id"]]
        print("  [%6.1fs] %-22s %-18s %-19s %-13s steps %5d  loss %s  %s %.3f  (%.1fs)" % (
            time.time() - t0, m["id"], m["kind"] + ("(r=%d)" % m["rank"] if m["rank"] else ""),
            m["regime"], m["task"][:13], m["steps"],
            "%.3f" % res["final_loss"] if res["final_loss"] is not None else "  -  ",
            res["eval_metric_name"].split("_")[0], res["eval_metric"], res["seconds"]), flush=True)

    if args.jobs <= 1:
        while pending:
            i = ready()[0]
            res = _run_one(*task_args(by_id[i]))
            pending.discard(i)
            done.add(i)
            results[i] = res
            log(res)
    else:
        ctx = mp.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as ex:
            running = {}
            while pending or running:
                for i in ready():
                    if len(running) >= args.jobs:
                        break
                    running[ex.submit(_run_one, *task_args(by_id[i]))] = i
                    pending.discard(i)
                fin, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                for f in fin:
                    i = running.pop(f)
                    res = f.result()
                    done.add(i)
                    results[i] = res
                    log(res)

    worker.setup_torch("cpu")
    truth = {
        "version": 2,
        "generator": {
            "script": "benchmarks/generate_zoo.py",
            "seed": args.seed,
            "size": args.size,
            "overrides": list(args.set or []),
            "only": args.only,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "device": args.device.split(":")[0],
            "architectures": {"vit": dict(zspec.VIT_BASE, **spec["vit"]),
                              "llama": dict(zspec.LLAMA_BASE, **spec["llama"])},
            "recipes": {k: dict(v, betas=list(v["betas"])) for k, v in sorted(recipes.items())},
            "families": {split: fams for split, fams in spec["families"].items()},
            "data": worker.data_digest(),
        },
        "models": [],
        "edges": [],
        "edge_info": [],
    }
    for m in sorted(models, key=lambda m: m["id"]):
        r = results[m["id"]]
        e = {"id": m["id"], "split": m["split"], "family": m["family"], "parent": m["parent"],
             "kind": m["kind"]}
        if m["rank"]:
            e["rank"] = m["rank"]
            e["lora_alpha"] = m["alpha"]
            e["lora_targets"] = ["query", "value"]
        e.update({"dtype": m["dtype"], "params": r["params"], "steps": m["steps"],
                  "final_loss": r["final_loss"], "eval_metric": r["eval_metric"],
                  "eval_metric_name": r["eval_metric_name"], "task": m["task"], "arch": m["arch"],
                  "recipe": m["recipe"], "seed": str(m["seed"]),  # 63-bit: a string for JSON readers
                  "files": r["files"]})
        if "version" in m:
            e["version"] = m["version"]
        e.update(_regime_fields(m, recipes))
        if "quantized_tensors" in r:
            e["quantized_tensors"] = r["quantized_tensors"]
        truth["models"].append(e)
        for j, p in enumerate(m["parents"]):
            truth["edges"].append([p, m["id"]])
            info = {"parent": p, "child": m["id"], "relation": zspec.KIND_RELATION[m["kind"]],
                    "regime": m["regime"], "regimes": e["regimes"]}
            if m["kind"] == "merge":
                info["weight"] = m["merge_weights"][j]
            truth["edge_info"].append(info)
    truth["edges"].sort()
    truth["edge_info"].sort(key=lambda x: (x["parent"], x["child"]))
    # Each child once: a merge hangs under its heavier parent only (the first on equal weights).
    truth["tree_edges"] = sorted([m["parent"], m["id"]] for m in models if m["parent"])
    with open(os.path.join(out, "truth.json"), "w") as f:
        f.write(json.dumps(truth, indent=1) + "\n")
    st = zstats.compute(out, truth)
    with open(os.path.join(out, "stats.json"), "w") as f:
        f.write(json.dumps(st, indent=1) + "\n")
    sig = zstats.signals(out, truth)
    with open(os.path.join(out, "signals.json"), "w") as f:
        f.write(json.dumps(sig, indent=1) + "\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print("done: %d models, %.2f MB, %.1f s" % (len(models), total / 1e6, time.time() - t0), flush=True)
    if args.report:
        print(zstats.report(truth, st))
        print()
        print(zstats.composition_report(out, truth))
        print()
        print(zstats.signals_report(sig))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(zspec.SIZES), default="small")
    ap.add_argument("--out", help="output folder (default: samples/zoo-small for small, "
                                  "benchmarks/zoo/<size> otherwise)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="parallel worker processes (each single-threaded)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--only", help="comma-separated splits to generate (for experiments)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a size field (vit_finetune_steps=500) or a recipe field "
                         "(vit_finetune.lr=1e-3); recorded in truth.json")
    ap.add_argument("--report", action="store_true", help="print the kurtosis table at the end")
    ap.add_argument("--report-only", metavar="DIR", help="print the kurtosis table of an existing zoo")
    ap.add_argument("--signals-only", metavar="DIR",
                    help="measure and print the per-regime signal table of an existing zoo (from its files)")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    if args.signals_only:
        with open(os.path.join(args.signals_only, "truth.json")) as f:
            truth = json.load(f)
        print(zstats.composition_report(args.signals_only, truth))
        print()
        print(zstats.signals_report(zstats.signals(args.signals_only, truth)))
        return
    if args.report_only:
        with open(os.path.join(args.report_only, "truth.json")) as f:
            truth = json.load(f)
        with open(os.path.join(args.report_only, "stats.json")) as f:
            st = json.load(f)
        print(zstats.report(truth, st))
        return
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.out is None:
        args.out = os.path.join(REPO, "samples", "zoo-small") if args.size == "small" else \
            os.path.join(REPO, "benchmarks", "zoo", args.size)
    generate(args)


if __name__ == "__main__":
    main()
