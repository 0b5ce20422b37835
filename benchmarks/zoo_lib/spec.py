"""What each zoo size contains: architectures, recipes, training regimes, tree shapes.
Planning is pure and deterministic: the same (size, seed, overrides) always gives the same
list of models."""
import copy
import hashlib
import random

from .data import IMAGE_TASKS

SPLITS = ["ft", "lora_fixed", "lora_varying", "llm", "pretrain_chain", "copies"]

# Training recipes. Pre-training: long, warmup + cosine, weight decay (ViT/DeiT and
# Llama-2 style). Fine-tuning: what transformers.Trainer does by default (AdamW with
# weight_decay=0, linear decay, no warmup); the `_wd` variants add decoupled weight decay
# 0.1 (Llama-2's fine-tuning value); `vit_sgd` is the ViT paper's fine-tuning recipe (SGD,
# momentum 0.9, no weight decay, warmup + cosine, gradient clipping at 1). Continued
# pre-training: constant learning rate after warmup, like the Stable Diffusion v1-x runs.
RECIPES = {
    "vit_pretrain": dict(opt="adamw", lr=1e-3, wd=0.05, betas=(0.9, 0.999), schedule="cosine", warmup=0.05,
                         final_frac=0.0, batch=64, noise=0.1, shifts=True, clip=1.0),
    "vit_finetune": dict(opt="adamw", lr=2e-4, wd=0.0, betas=(0.9, 0.999), schedule="linear", warmup=0.0,
                         final_frac=0.0, batch=32, noise=0.0, shifts=True, clip=1.0),
    "vit_finetune_wd": dict(opt="adamw", lr=2e-4, wd=0.1, betas=(0.9, 0.999), schedule="linear", warmup=0.0,
                            final_frac=0.0, batch=32, noise=0.0, shifts=True, clip=1.0),
    "vit_sgd": dict(opt="sgd", lr=0.01, momentum=0.9, wd=0.0, betas=(0.9, 0.999), schedule="cosine",
                    warmup=0.05, final_frac=0.0, batch=32, noise=0.0, shifts=True, clip=1.0),
    "vit_lora": dict(opt="adamw", lr=2e-4, wd=0.0, betas=(0.9, 0.999), schedule="linear", warmup=0.0,
                     final_frac=0.0, batch=32, noise=0.0, shifts=True, clip=1.0),
    "llm_pretrain": dict(opt="adamw", lr=2e-3, wd=0.1, betas=(0.9, 0.95), schedule="cosine", warmup=0.05,
                         final_frac=0.1, batch=16, seq=64, clip=1.0),
    "llm_finetune": dict(opt="adamw", lr=1e-4, wd=0.0, betas=(0.9, 0.999), schedule="linear", warmup=0.0,
                         final_frac=0.0, batch=16, seq=64, clip=1.0),
    "llm_finetune_wd": dict(opt="adamw", lr=1e-4, wd=0.1, betas=(0.9, 0.999), schedule="linear", warmup=0.0,
                            final_frac=0.0, batch=16, seq=64, clip=1.0),
    "chain_pretrain": dict(opt="adamw", lr=2e-3, wd=0.1, betas=(0.9, 0.95), schedule="constant", warmup=0.05,
                           final_frac=1.0, batch=16, seq=64, clip=1.0),
    "chain_continue": dict(opt="adamw", lr=2e-3, wd=0.1, betas=(0.9, 0.95), schedule="constant", warmup=0.0,
                           final_frac=1.0, batch=16, seq=64, clip=1.0),
}

# The regime of a fine-tuning recipe (the tag an edge gets from how its child was trained).
RECIPE_REGIME = {"vit_finetune": "ft_adamw", "vit_finetune_wd": "ft_adamw_wd", "vit_sgd": "ft_sgd",
                 "llm_finetune": "ft_adamw", "llm_finetune_wd": "ft_adamw_wd"}
# How each model kind relates to its parent(s) (truth.json edge_info.relation).
KIND_RELATION = {"finetune": "finetune", "continued_pretrain": "finetune", "lora": "adapter",
                 "quantized": "quantized", "converted": "converted", "duplicate": "duplicate",
                 "merge": "merge"}
INIT_NAMES = {"hf": "hf_normal", "torch": "torch_default"}

VIT_BASE = dict(image_size=8, patch_size=2, num_channels=1, layer_norm_eps=1e-12,
                initializer_range=0.02, hidden_act="gelu", qkv_bias=True)
LLAMA_BASE = dict(rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.02,
                  hidden_act="silu", max_position_embeddings=256)

# LLM family templates: (task, [grandchildren tasks]) per child.
LLM_TREES = {
    "small": [("code_ext", ["code_ext_a"]), ("docs", []), ("code", [])],
    "small_b": [("docs", ["legal"]), ("code", [])],
    "small_c": [("docs", []), ("code", [])],
    "medium": [("code_ext", ["code_ext_a", "docs_ext"]), ("docs", ["legal"]), ("code", []), ("legal", [])],
    "large": [("code_ext", ["code_ext_a", "docs_ext"]), ("docs", ["legal"]), ("code", ["code_a"]),
              ("legal", [])],
}
# Continued pre-training chains: parent index per version (v1 is the root). Linear, or
# Stable-Diffusion-like v1 -> v2 -> {v3, v4}, v4 -> v5 (-> v6).
CHAIN_SHAPES = {"line3": [None, 0, 1, 2], "line2": [None, 0, 1], "sd5": [None, 0, 1, 1, 3],
                "sd6": [None, 0, 1, 1, 3, 4]}


def _ft(init="hf", length="long", recipe="vit_finetune", children=2, gc=(1, 1), fan=0, fan_recipe=None,
        root_dtype="F32", dtypes=("F32", "BF16", "F32", "F16")):
    return dict(kind="vit_ft", init=init, length=length, recipe=recipe, children=children, gc=gc,
                fan=fan, fan_recipe=fan_recipe or recipe, root_dtype=root_dtype, dtypes=list(dtypes))


# the committed small sample is kept small: half-precision storage wherever the regime allows
_HALF = dict(root_dtype="BF16", dtypes=("BF16", "F16"))


def _lora(init="hf", length="long", children=2, gc=(1, 1)):
    return dict(kind="vit_lora", init=init, length=length, children=children, gc=gc)


def _llm(init="hf", length="long", recipe="llm_finetune", tree="small", dtypes=("BF16", "F16", "BF16", "F32")):
    return dict(kind="llm", init=init, length=length, recipe=recipe, tree=tree, dtypes=list(dtypes))


def _chain(shape):
    return dict(kind="chain", init="hf", length="long", shape=shape)


def _single(arch, init="hf", length="long", recipe=None, dtype=None):
    return dict(kind="singleton", arch=arch, init=init, length=length, recipe=recipe, dtype=dtype)


def _copies(init="hf", length="long", children=3, gc=(0, 0), ops="all", dtypes=None, root_dtype="F32"):
    return dict(kind="copies", init=init, length=length, children=children, gc=gc, ops=ops, dtypes=dtypes,
                root_dtype=root_dtype)


# Copy operations of the copies split, on the trained non-root models c0, c1, ... (children
# first, then grandchildren): (op, target(s), detail).
#   q8_0 / q4_0: ggml-style blockwise quantisation, dequantised and stored in `detail`;
#   f16 / bf16: dtype copies ('converted'); dup_bytes: byte-identical files; dup_values:
#   the same values re-written as another file layout; merge: (p1, p2, w1): w1*p1+(1-w1)*p2.
COPY_OPS = {
    "small_a": [("q8_0", "c0", "F32"), ("q4_0", "c1", "F16"), ("f16", "c2", None), ("bf16", "c0", None),
                ("dup_bytes", "c1", None), ("dup_values", "c1", None), ("merge", ("c0", "c1"), (0.5, "F32")),
                ("merge", ("c1", "c2"), (0.3, "BF16"))],
    "small_b": [("q8_0", "c1", "F16"), ("q4_0", "c0", "F16"), ("merge", ("c0", "c1"), (0.5, "F16"))],
}

SIZES = {
    "small": dict(
        vit=dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64),
        llama=dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
        families={
            "ft": [_ft(children=2, gc=(1, 1)),                       # the original ft family
                   _ft(recipe="vit_finetune_wd", children=2, gc=(0, 0), **_HALF),
                   _ft(recipe="vit_sgd", children=2, gc=(0, 0), **_HALF),
                   _ft(init="torch", children=2, gc=(0, 0), **_HALF),
                   _ft(length="short", children=0, fan=4, **_HALF),
                   _single("vit", length="short", dtype="BF16")],
            "lora_fixed": [_lora(children=2, gc=(1, 1)), _lora(length="short", children=1, gc=(0, 0)),
                           _single("vit", init="torch", length="short", dtype="BF16")],
            "lora_varying": [_lora(children=2, gc=(1, 1)), _lora(init="torch", children=1, gc=(0, 0)),
                             _single("vit", length="short", dtype="BF16")],
            "llm": [_llm(tree="small"), _llm(recipe="llm_finetune_wd", tree="small_c", dtypes=("F16", "BF16")),
                    _single("llama", init="torch", length="short")],
            "pretrain_chain": [_chain("line3"), _chain("line2"),
                               _single("llama", length="short", recipe="chain_pretrain")],
            "copies": [_copies(children=3, ops="small_a", dtypes=["F32", "BF16", "F32"], root_dtype="BF16"),
                       _copies(length="short", children=2, ops="small_b", dtypes=["BF16", "BF16"],
                               root_dtype="BF16"),
                       _single("vit", length="short", dtype="BF16")],
        },
        vit_pretrain_steps=2000, vit_pretrain_short_steps=500, vit_finetune_steps=300, vit_lora_steps=300,
        llm_pretrain_steps=2000, llm_pretrain_short_steps=500, llm_finetune_steps=300,
        chain_root_steps=1500, chain_steps=750,
        lora_fixed_rank=4, lora_ranks=[2, 4, 8],
    ),
    "medium": dict(
        vit=dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128),
        llama=dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=172),
        families={
            "ft": [_ft(children=3, gc=(1, 1), fan=4),
                   _ft(recipe="vit_finetune_wd", children=3, gc=(1, 1), fan=4, fan_recipe="vit_finetune_wd"),
                   _ft(recipe="vit_finetune_wd", children=3, gc=(1, 1)),
                   _ft(recipe="vit_sgd", children=3, gc=(1, 1)), _ft(recipe="vit_sgd", children=3, gc=(1, 1)),
                   _ft(init="torch", children=3, gc=(1, 1), fan=4), _ft(init="torch", children=3, gc=(1, 1)),
                   _ft(length="short", children=3, gc=(1, 1)), _ft(length="short", children=3, gc=(1, 1)),
                   _single("vit", init="torch", length="short")],
            "lora_fixed": [_lora(children=3, gc=(1, 1)), _lora(length="short", children=3, gc=(1, 1)),
                           _single("vit", length="short")],
            "lora_varying": [_lora(children=3, gc=(1, 1)), _lora(init="torch", length="short", children=3,
                                                                   gc=(1, 1)),
                             _single("vit", init="torch", length="short")],
            "llm": [_llm(tree="medium"), _llm(tree="medium"),
                    _llm(recipe="llm_finetune_wd", tree="medium"), _llm(recipe="llm_finetune_wd", tree="medium"),
                    _llm(init="torch", tree="small_b"),
                    _single("llama", init="torch", length="short")],
            "pretrain_chain": [_chain("sd5"), _chain("sd5"), _chain("sd5"),
                               _single("llama", length="short", recipe="chain_pretrain")],
            "copies": [_copies(children=3, gc=(1, 1)), _copies(length="short", children=3, gc=(1, 1)),
                       _single("vit", length="short")],
        },
        vit_pretrain_steps=2500, vit_pretrain_short_steps=600, vit_finetune_steps=300, vit_lora_steps=300,
        llm_pretrain_steps=1500, llm_pretrain_short_steps=400, llm_finetune_steps=300,
        chain_root_steps=1000, chain_steps=500,
        lora_fixed_rank=8, lora_ranks=[2, 4, 8, 16],
    ),
    "large": dict(
        vit=dict(hidden_size=128, num_hidden_layers=6, num_attention_heads=4, intermediate_size=256),
        llama=dict(hidden_size=128, num_hidden_layers=6, num_attention_heads=4, intermediate_size=344),
        families={
            "ft": [_ft(children=4, gc=(2, 4), fan=4) for _ in range(3)] +
                  [_ft(recipe="vit_finetune_wd", children=4, gc=(2, 4), fan=4, fan_recipe="vit_finetune_wd")
                   for _ in range(2)] +
                  [_ft(recipe="vit_sgd", children=4, gc=(2, 4)) for _ in range(2)] +
                  [_ft(init="torch", children=4, gc=(2, 4)) for _ in range(2)] +
                  [_ft(length="short", children=4, gc=(2, 4)) for _ in range(2)] +
                  [_single("vit", init="torch", length="short"), _single("vit")],
            "lora_fixed": [_lora(children=4, gc=(2, 4)) for _ in range(4)] +
                          [_lora(init="torch", children=4, gc=(2, 4)), _single("vit", length="short")],
            "lora_varying": [_lora(children=4, gc=(2, 4)) for _ in range(4)] +
                            [_lora(length="short", children=4, gc=(2, 4)), _single("vit", init="torch")],
            "llm": [_llm(tree="large") for _ in range(3)] +
                   [_llm(recipe="llm_finetune_wd", tree="large") for _ in range(2)] +
                   [_llm(init="torch", tree="large"), _single("llama", init="torch", length="short")],
            "pretrain_chain": [_chain("sd6") for _ in range(3)] +
                              [_single("llama", length="short", recipe="chain_pretrain")],
            "copies": [_copies(children=4, gc=(1, 2)) for _ in range(2)] +
                      [_copies(length="short", children=4, gc=(1, 2)), _single("vit", length="short")],
        },
        vit_pretrain_steps=8000, vit_pretrain_short_steps=2000, vit_finetune_steps=600, vit_lora_steps=600,
        llm_pretrain_steps=8000, llm_pretrain_short_steps=2000, llm_finetune_steps=600,
        chain_root_steps=6000, chain_steps=3000,
        lora_fixed_rank=8, lora_ranks=[2, 4, 8, 16],
    ),
}

FT_TASKS = sorted(t for t in IMAGE_TASKS if t != "digits10")
# Tasks that keep the 10-label head: models fine-tuned on them have identical tensor shapes,
# so they can be merged (copies split).
TEN_LABEL_TASKS = sorted(t for t in FT_TASKS
                         if max(v for v in IMAGE_TASKS[t][0] if v is not None) == 9)


def derive_seed(*parts):
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def apply_overrides(size_spec, recipes, overrides):
    """overrides: list of "key=value"; key is a SIZES field (e.g. vit_finetune_steps) or
    recipe.field (e.g. vit_finetune.lr). Values are parsed as Python literals."""
    import ast
    size_spec, recipes = copy.deepcopy(size_spec), copy.deepcopy(recipes)
    for ov in overrides or []:
        k, v = ov.split("=", 1)
        try:
            v = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            pass
        if "." in k:
            a, b = k.split(".", 1)
            if a in recipes:
                recipes[a][b] = v
            else:
                size_spec[a][b] = v
        else:
            size_spec[k] = v
    return size_spec, recipes


def plan(size, seed, overrides=None):
    """-> (list of model dicts in topological order, size spec, recipes)."""
    spec, recipes = apply_overrides(SIZES[size], RECIPES, overrides)
    models = []
    for split in SPLITS:
        split_models = []
        for fam, fspec in enumerate(spec["families"][split]):
            rng = random.Random(derive_seed(seed, split, fam))
            fam_name = "%s-%d" % (split, fam)
            kind = fspec["kind"]
            if kind in ("vit_ft", "vit_lora"):
                fam_models = _plan_vit_family(split, fam_name, fam, rng, spec, fspec)
            elif kind == "llm":
                fam_models = _plan_llm_family(split, fam_name, fam, spec, fspec)
            elif kind == "chain":
                fam_models = _plan_chain(split, fam_name, fam, spec, fspec)
            elif kind == "copies":
                fam_models = _plan_copies(split, fam_name, fam, rng, spec, fspec)
            elif kind == "singleton":
                fam_models = [_root(split, fam_name, fam, spec, fspec, fspec["arch"], fspec.get("recipe"),
                                    dtype=fspec.get("dtype"))]
                fam_models[0]["singleton"] = True
            else:
                raise ValueError(kind)
            base = len(split_models)
            for m in fam_models:  # family-local parent indices -> split-wide
                m["parents_ix"] = [p + base for p in m["parents_ix"]]
            split_models += fam_models
        # Opaque, shuffled names within a split (m00, m01, ...): nothing in a name or in
        # the listing order gives the tree away.
        order = list(range(len(split_models)))
        random.Random(derive_seed(seed, split, "names")).shuffle(order)
        width = max(2, len(str(len(order) - 1)))
        for new, old in enumerate(order):
            split_models[old]["name"] = "m%0*d" % (width, new)
        for m in split_models:
            m["id"] = "%s/%s" % (split, m["name"])
        for m in split_models:
            m["parents"] = [split_models[p]["id"] for p in m["parents_ix"]]
            m["seed"] = derive_seed(seed, m["id"])
        for m in split_models:
            # `parent`: the one parent (for a merge the one with the larger weight, the first
            # when equal); `parents`: every parent.
            if not m["parents"]:
                m["parent"] = None
            elif m["kind"] == "merge":
                w = m["merge_weights"]
                m["parent"] = m["parents"][0] if w[0] >= w[1] else m["parents"][1]
            else:
                m["parent"] = m["parents"][0]
        models += split_models
    for m in models:
        del m["parents_ix"]
    return models, spec, recipes


def _add(lst, **kw):
    kw.setdefault("rank", None)
    kw.setdefault("shards", 1)
    kw.setdefault("parents_ix", [])
    lst.append(kw)
    return len(lst) - 1


def _root(split, fam_name, fam, spec, f, arch, recipe=None, dtype=None, shards=1, task=None):
    """A pre-trained root (or singleton) with the family's initialisation and length."""
    short = f["length"] == "short"
    if arch == "vit":
        recipe = recipe or "vit_pretrain"
        steps = spec["vit_pretrain_short_steps" if short else "vit_pretrain_steps"]
        task = task or "digits10"
        dtype = dtype or "F32"
    elif recipe == "chain_pretrain":
        steps = spec["llm_pretrain_short_steps"] if short else spec["chain_root_steps"]
        task = task or "chain_1"
        dtype = dtype or "BF16"
    else:
        recipe = recipe or "llm_pretrain"
        steps = spec["llm_pretrain_short_steps" if short else "llm_pretrain_steps"]
        task = task or "pretrain_mix"
        dtype = dtype or "BF16"
    return dict(split=split, family=fam_name, parents_ix=[], kind="pretrain", arch=arch, task=task,
                recipe=recipe, steps=steps, dtype=dtype, rank=None, shards=shards, regime="pretrain",
                init=f["init"], pretrain_length=f["length"])


def _tags(m, f):
    m["init"] = f["init"]
    m["pretrain_length"] = f["length"]
    return m


def _plan_vit_family(split, fam_name, fam, rng, spec, f):
    out = []
    lora = f["kind"] == "vit_lora"
    # LoRA bases are published in BF16 (children start from exactly those values and are
    # stored F32, so child - parent keeps its low rank); full fine-tuning roots are F32.
    out.append(_root(split, fam_name, fam, spec, f, "vit", dtype="BF16" if lora else f["root_dtype"]))
    root = 0
    nc = f["children"]
    tasks = rng.sample(FT_TASKS, nc)
    dtypes = f.get("dtypes")
    k = 0

    def child(parent, task, recipe=None, regime=None):
        nonlocal k
        kw = dict(split=split, family=fam_name, parents_ix=[parent], arch="vit", task=task)
        if lora:
            r = spec["lora_fixed_rank"] if split == "lora_fixed" else rng.choice(spec["lora_ranks"])
            kw.update(kind="lora", recipe="vit_lora", steps=spec["vit_lora_steps"], rank=r, alpha=2 * r,
                      dtype="F32", regime=split)  # LoRA children stay F32: rounding would hide the rank
        else:
            recipe = recipe or f["recipe"]
            kw.update(kind="finetune", recipe=recipe, steps=spec["vit_finetune_steps"],
                      dtype=dtypes[(k + fam) % len(dtypes)], regime=regime or RECIPE_REGIME[recipe])
        k += 1
        return _add(out, **_tags(kw, f))

    for t in tasks:
        c = child(root, t)
        for _ in range(rng.randint(*f["gc"])):
            child(c, rng.choice([x for x in FT_TASKS if x != t]))
    if f.get("fan"):
        # A fan: f["fan"] children of the root, same recipe and same data, different seeds.
        t = rng.choice(FT_TASKS)
        for _ in range(f["fan"]):
            i = child(root, t, recipe=f["fan_recipe"], regime="fan")
            out[i]["fan_recipe_regime"] = RECIPE_REGIME[f["fan_recipe"]]
    return out


def _plan_llm_family(split, fam_name, fam, spec, f):
    out = [_root(split, fam_name, fam, spec, f, "llama", shards=2 + fam % 2)]
    dtypes = f["dtypes"]  # mostly half precision, as LLMs are published
    k = 0
    regime = RECIPE_REGIME[f["recipe"]]
    for task, grand in LLM_TREES[f["tree"]]:
        c = _add(out, **_tags(dict(split=split, family=fam_name, parents_ix=[0], kind="finetune", arch="llama",
                                   task=task, recipe=f["recipe"], steps=spec["llm_finetune_steps"],
                                   dtype=dtypes[(k + fam) % len(dtypes)], regime=regime), f))
        k += 1
        for g in grand:
            _add(out, **_tags(dict(split=split, family=fam_name, parents_ix=[c], kind="finetune", arch="llama",
                                   task=g, recipe=f["recipe"], steps=spec["llm_finetune_steps"],
                                   dtype=dtypes[(k + fam) % len(dtypes)], regime=regime), f))
            k += 1
    return out


def _plan_chain(split, fam_name, fam, spec, f):
    out = []
    shape = CHAIN_SHAPES[f["shape"]]
    dtypes = ["F16", "BF16", "F16", "F32"]
    depth = []
    for v, p in enumerate(shape):
        d = 0 if p is None else depth[p] + 1
        depth.append(d)
        stage = "chain_%d" % min(d + 1, 3)
        if p is None:
            r = _root(split, fam_name, fam, spec, f, "llama", recipe="chain_pretrain", shards=2 + fam % 2,
                      task=stage)
            r["version"] = "v1"
            out.append(r)
        else:
            _add(out, **_tags(dict(split=split, family=fam_name, parents_ix=[p], kind="continued_pretrain",
                                   arch="llama", task=stage, recipe="chain_continue", steps=spec["chain_steps"],
                                   dtype=dtypes[(v - 1 + fam) % len(dtypes)], version="v%d" % (v + 1),
                                   regime="continued_pretrain"), f))
    return out


def _plan_copies(split, fam_name, fam, rng, spec, f):
    """A ViT family fine-tuned (AdamW, no weight decay, F32 throughout) on 10-label tasks,
    then copies of its fine-tuned models: quantised, converted, duplicated and merged."""
    out = [_root(split, fam_name, fam, spec, f, "vit", dtype=f["root_dtype"])]
    tasks = rng.sample(TEN_LABEL_TASKS, f["children"])
    kids, gkids = [], []
    dtypes = f["dtypes"]

    def ft(parent, task):
        dt = dtypes[len(kids) + len(gkids)] if dtypes else "F32"
        return _add(out, **_tags(dict(split=split, family=fam_name, parents_ix=[parent], arch="vit", task=task,
                                      kind="finetune", recipe="vit_finetune", steps=spec["vit_finetune_steps"],
                                      dtype=dt, regime="ft_adamw"), f))

    for t in tasks:
        c = ft(0, t)
        kids.append(c)
        for _ in range(rng.randint(*f["gc"])):
            gkids.append(ft(c, rng.choice([x for x in TEN_LABEL_TASKS if x != t])))
    trained = kids + gkids  # c0, c1, ...
    ops = COPY_OPS.get(f["ops"]) if f["ops"] != "all" else None
    if ops is None:
        # every trained non-root model gets each copy kind; merges of sibling pairs
        ops = []
        for j in range(len(trained)):
            c = "c%d" % j
            ops += [("q8_0", c, "F32" if j % 2 == 0 else "F16"), ("q4_0", c, "F16" if j % 2 == 0 else "F32"),
                    ("f16", c, None), ("bf16", c, None), ("dup_bytes" if j % 2 == 0 else "dup_values", c, None)]
        n = len(kids)
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
        for q, (a, b) in enumerate(pairs):
            ops.append(("merge", ("c%d" % a, "c%d" % b), (0.5 if q % 3 != 1 else 0.3, "F32")))
    ref = {"c%d" % j: ix for j, ix in enumerate(trained)}
    for op, target, detail in ops:
        if op == "merge":
            p1, p2 = ref[target[0]], ref[target[1]]
            w, dt = detail
            _add(out, **_tags(dict(split=split, family=fam_name, parents_ix=[p1, p2], arch="vit",
                                   task="%s+%s" % (out[p1]["task"], out[p2]["task"]), kind="merge",
                                   recipe=None, steps=0, dtype=dt, regime="merge",
                                   merge_weights=[w, round(1.0 - w, 6)], op="merge"), f))
            continue
        p = ref[target]
        src = out[p]
        kw = dict(split=split, family=fam_name, parents_ix=[p], arch="vit", task=src["task"], recipe=None,
                  steps=0, op=op)
        if op in ("q8_0", "q4_0"):
            kw.update(kind="quantized", dtype=detail, regime="quantized_" + op)
        elif op in ("f16", "bf16"):
            if src["dtype"] != "F32":
                raise ValueError("%s: a dtype copy needs an F32 source" % fam_name)
            kw.update(kind="converted", dtype=op.upper(), regime="converted_" + op)
        else:
            kw.update(kind="duplicate", dtype=src["dtype"], regime="duplicate",
                      duplicate=op.split("_")[1], shards=1 if op == "dup_bytes" else 2)
        _add(out, **_tags(kw, f))
    return out
