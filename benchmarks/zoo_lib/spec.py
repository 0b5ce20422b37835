"""What each zoo size contains: architectures, recipes, tree shapes. Planning is pure and
deterministic: the same (size, seed, overrides) always gives the same list of models."""
import copy
import hashlib
import random

from .data import IMAGE_TASKS

SPLITS = ["ft", "lora_fixed", "lora_varying", "llm", "pretrain_chain"]

# Training recipes. Pre-training: long, warmup + cosine, weight decay (ViT/DeiT and
# Llama-2 style). Fine-tuning: what transformers.Trainer does by default (AdamW with
# weight_decay=0, linear decay, no warmup). Continued pre-training: constant learning rate
# after warmup, like the Stable Diffusion v1-x runs it mimics.
RECIPES = {
    "vit_pretrain": dict(lr=1e-3, wd=0.05, betas=(0.9, 0.999), schedule="cosine", warmup=0.05,
                         final_frac=0.0, batch=64, noise=0.1, shifts=True, clip=1.0),
    "vit_finetune": dict(lr=2e-4, wd=0.0, betas=(0.9, 0.999), schedule="linear", warmup=0.0,
                         final_frac=0.0, batch=32, noise=0.0, shifts=True, clip=1.0),
    "vit_lora": dict(lr=2e-4, wd=0.0, betas=(0.9, 0.999), schedule="linear", warmup=0.0,
                     final_frac=0.0, batch=32, noise=0.0, shifts=True, clip=1.0),
    "llm_pretrain": dict(lr=2e-3, wd=0.1, betas=(0.9, 0.95), schedule="cosine", warmup=0.05,
                         final_frac=0.1, batch=16, seq=64, clip=1.0),
    "llm_finetune": dict(lr=1e-4, wd=0.0, betas=(0.9, 0.999), schedule="linear", warmup=0.0,
                         final_frac=0.0, batch=16, seq=64, clip=1.0),
    "chain_pretrain": dict(lr=2e-3, wd=0.1, betas=(0.9, 0.95), schedule="constant", warmup=0.05,
                           final_frac=1.0, batch=16, seq=64, clip=1.0),
    "chain_continue": dict(lr=2e-3, wd=0.1, betas=(0.9, 0.95), schedule="constant", warmup=0.0,
                           final_frac=1.0, batch=16, seq=64, clip=1.0),
}

VIT_BASE = dict(image_size=8, patch_size=2, num_channels=1, layer_norm_eps=1e-12,
                initializer_range=0.02, hidden_act="gelu", qkv_bias=True)
LLAMA_BASE = dict(rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.02,
                  hidden_act="silu", max_position_embeddings=256)

# LLM family templates: (task, [grandchildren tasks]) per child.
LLM_TREES = {
    "small": [("code_ext", ["code_ext_a"]), ("docs", []), ("code", [])],
    "medium": [("code_ext", ["code_ext_a", "docs_ext"]), ("docs", ["legal"]), ("code", []), ("legal", [])],
    "large": [("code_ext", ["code_ext_a", "docs_ext"]), ("docs", ["legal"]), ("code", ["code_a"]),
              ("legal", [])],
}
# Continued pre-training chains: parent index per version (v1 is the root). Linear for
# small; Stable-Diffusion-like v1 -> v2 -> {v3, v4}, v4 -> v5 otherwise.
CHAIN_SHAPES = {"small": [None, 0, 1, 2], "medium": [None, 0, 1, 1, 3], "large": [None, 0, 1, 1, 3, 4]}

SIZES = {
    "small": dict(
        vit=dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64),
        llama=dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
        families={"ft": 2, "lora_fixed": 1, "lora_varying": 1, "llm": 1, "pretrain_chain": 1},
        vit_children=(2, 2), vit_grandchildren=(1, 1),
        vit_pretrain_steps=2000, vit_finetune_steps=300, vit_lora_steps=300,
        llm_pretrain_steps=2000, llm_finetune_steps=300,
        chain_root_steps=1500, chain_steps=750,
        lora_fixed_rank=4, lora_ranks=[2, 4, 8],
    ),
    "medium": dict(
        vit=dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128),
        llama=dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=172),
        families={"ft": 3, "lora_fixed": 3, "lora_varying": 3, "llm": 2, "pretrain_chain": 2},
        vit_children=(3, 3), vit_grandchildren=(1, 3),
        vit_pretrain_steps=4000, vit_finetune_steps=400, vit_lora_steps=400,
        llm_pretrain_steps=4000, llm_finetune_steps=400,
        chain_root_steps=3000, chain_steps=1500,
        lora_fixed_rank=8, lora_ranks=[2, 4, 8, 16],
    ),
    "large": dict(
        vit=dict(hidden_size=128, num_hidden_layers=6, num_attention_heads=4, intermediate_size=256),
        llama=dict(hidden_size=128, num_hidden_layers=6, num_attention_heads=4, intermediate_size=344),
        families={"ft": 5, "lora_fixed": 5, "lora_varying": 5, "llm": 3, "pretrain_chain": 3},
        vit_children=(4, 4), vit_grandchildren=(2, 4),
        vit_pretrain_steps=8000, vit_finetune_steps=600, vit_lora_steps=600,
        llm_pretrain_steps=8000, llm_finetune_steps=600,
        chain_root_steps=6000, chain_steps=3000,
        lora_fixed_rank=8, lora_ranks=[2, 4, 8, 16],
    ),
}

FT_TASKS = sorted(t for t in IMAGE_TASKS if t != "digits10")


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
        for fam in range(spec["families"][split]):
            rng = random.Random(derive_seed(seed, split, fam))
            fam_name = "%s-%d" % (split, fam)
            if split in ("ft", "lora_fixed", "lora_varying"):
                fam_models = _plan_vit_family(split, fam_name, fam, rng, spec)
            elif split == "llm":
                fam_models = _plan_llm_family(fam_name, fam, spec, size)
            else:
                fam_models = _plan_chain(fam_name, fam, spec, size)
            base = len(split_models)
            for m in fam_models:  # family-local parent indices -> split-wide
                if m["parent_ix"] is not None:
                    m["parent_ix"] += base
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
            m["parent"] = None if m["parent_ix"] is None else split_models[m["parent_ix"]]["id"]
            m["seed"] = derive_seed(seed, m["id"])
        models += split_models
    for m in models:
        del m["parent_ix"]
    return models, spec, recipes


def _add(lst, **kw):
    kw.setdefault("rank", None)
    kw.setdefault("shards", 1)
    lst.append(kw)
    return len(lst) - 1


def _plan_vit_family(split, fam_name, fam, rng, spec):
    out = []
    lora = split != "ft"
    nc = rng.randint(*spec["vit_children"])
    # LoRA bases are published in BF16 (children start from exactly those values and are
    # stored F32, so child - parent keeps its low rank); full fine-tuning roots are F32.
    root = _add(out, split=split, family=fam_name, parent_ix=None, kind="pretrain", arch="vit",
                task="digits10", recipe="vit_pretrain", steps=spec["vit_pretrain_steps"],
                dtype="BF16" if lora else "F32")
    tasks = rng.sample(FT_TASKS, nc)
    dtypes = ["F32", "BF16", "F32", "F16"]
    k = 0

    def child(parent, task):
        nonlocal k
        kw = dict(split=split, family=fam_name, parent_ix=parent, arch="vit", task=task)
        if lora:
            r = spec["lora_fixed_rank"] if split == "lora_fixed" else rng.choice(spec["lora_ranks"])
            kw.update(kind="lora", recipe="vit_lora", steps=spec["vit_lora_steps"], rank=r, alpha=2 * r,
                      dtype="F32")  # LoRA children stay F32: rounding would hide the rank
        else:
            kw.update(kind="finetune", recipe="vit_finetune", steps=spec["vit_finetune_steps"],
                      dtype=dtypes[(k + fam) % len(dtypes)])
        k += 1
        return _add(out, **kw)

    for t in tasks:
        c = child(root, t)
        for _ in range(rng.randint(*spec["vit_grandchildren"])):
            child(c, rng.choice([x for x in FT_TASKS if x != t]))
    return out


def _plan_llm_family(fam_name, fam, spec, size):
    out = []
    root = _add(out, split="llm", family=fam_name, parent_ix=None, kind="pretrain", arch="llama",
                task="pretrain_mix", recipe="llm_pretrain", steps=spec["llm_pretrain_steps"],
                dtype="BF16", shards=2 + fam % 2)
    dtypes = ["BF16", "F16", "BF16", "F32"]  # mostly half precision, as LLMs are published
    k = 0
    for task, grand in LLM_TREES[size]:
        c = _add(out, split="llm", family=fam_name, parent_ix=root, kind="finetune", arch="llama",
                 task=task, recipe="llm_finetune", steps=spec["llm_finetune_steps"],
                 dtype=dtypes[(k + fam) % len(dtypes)])
        k += 1
        for g in grand:
            _add(out, split="llm", family=fam_name, parent_ix=c, kind="finetune", arch="llama",
                 task=g, recipe="llm_finetune", steps=spec["llm_finetune_steps"],
                 dtype=dtypes[(k + fam) % len(dtypes)])
            k += 1
    return out


def _plan_chain(fam_name, fam, spec, size):
    out = []
    shape = CHAIN_SHAPES[size]
    dtypes = ["F16", "BF16", "F16", "F32"]
    depth = []
    for v, p in enumerate(shape):
        d = 0 if p is None else depth[p] + 1
        depth.append(d)
        stage = "chain_%d" % min(d + 1, 3)
        if p is None:
            _add(out, split="pretrain_chain", family=fam_name, parent_ix=None, kind="pretrain",
                 arch="llama", task=stage, recipe="chain_pretrain", steps=spec["chain_root_steps"],
                 dtype="BF16", shards=2 + fam % 2, version="v1")
        else:
            _add(out, split="pretrain_chain", family=fam_name, parent_ix=p, kind="continued_pretrain",
                 arch="llama", task=stage, recipe="chain_continue", steps=spec["chain_steps"],
                 dtype=dtypes[(v - 1 + fam) % len(dtypes)], version="v%d" % (v + 1))
    return out
