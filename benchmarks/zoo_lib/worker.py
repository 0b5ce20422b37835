"""Train and save one model of the zoo (runs in a worker process)."""
import json
import os
import shutil

import numpy as np
import torch

from . import data, models, quant, safetensors_io, train

COPY_KINDS = ("quantized", "converted", "duplicate", "merge")
_DTYPE_TORCH_NAME = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}

_CACHE = {}

# LLM tasks: (sources with mixture weights, extra tokens)
TEXT_TASKS = {
    "pretrain_mix": ({"legal": 1.0, "docs": 2.0, "code_a": 1.0}, False),
    "code": ({"code_b": 1.0}, False),
    "code_a": ({"code_a": 1.0}, False),
    "docs": ({"docs": 1.0}, False),
    "legal": ({"legal": 1.0}, False),
    "code_ext": ({"code_b": 1.0}, True),
    "code_ext_a": ({"code_a": 1.0}, True),
    "docs_ext": ({"docs": 1.0}, True),
    # continued pre-training stages: each one adds data
    "chain_1": ({"legal": 1.0, "docs": 1.0}, False),
    "chain_2": ({"legal": 1.0, "docs": 1.0, "code_a": 1.0}, False),
    "chain_3": ({"legal": 1.0, "docs": 1.0, "code_a": 1.0, "code_b": 1.0}, False),
}


def setup_torch(device):
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(1)
    if not _CACHE.get("interop_set"):
        # may only be called once per process, before any parallel work
        _CACHE["interop_set"] = True
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    torch.use_deterministic_algorithms(True)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def _digits():
    if "digits" not in _CACHE:
        _CACHE["digits"] = data.load_digits()
    return _CACHE["digits"]


def _tokens(name, ext):
    key = ("tok", name, ext)
    if key not in _CACHE:
        if "corpora" not in _CACHE:
            _CACHE["corpora"] = data.text_corpora()
        ids = data.tokenize(_CACHE["corpora"][name], data.CODE_TOKENS if ext else ())
        _CACHE[key] = data.split_tokens(ids)
    return _CACHE[key]


def data_digest():
    """Digests of the data sources (for truth.json)."""
    if "corpora" not in _CACHE:
        _CACHE["corpora"] = data.text_corpora()
    return {"digits_sha256": _digits()[2], "text": data.corpus_digest(_CACHE["corpora"])}


# ---------------------------------------------------------------------------- configs
def vit_config(cfg, dtype):
    n = cfg["num_labels"]
    labels = {str(i): "LABEL_%d" % i for i in range(n)}
    out = {
        "architectures": ["ViTForImageClassification"],
        "model_type": "vit",
        "attention_probs_dropout_prob": 0.0,
        "hidden_dropout_prob": 0.0,
        "encoder_stride": cfg["patch_size"],
        "id2label": labels,
        "label2id": {v: int(k) for k, v in labels.items()},
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
    }
    for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "hidden_act", "image_size", "patch_size", "num_channels", "layer_norm_eps",
              "initializer_range", "qkv_bias"):
        out[k] = cfg[k]
    return out


def llama_config(cfg, dtype):
    out = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "attention_bias": False,
        "num_key_value_heads": cfg["num_attention_heads"],
        "pretraining_tp": 1,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "use_cache": True,
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
    }
    for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "hidden_act", "vocab_size", "rms_norm_eps", "rope_theta", "initializer_range",
              "max_position_embeddings"):
        out[k] = cfg[k]
    return out


def _internal_cfg(hf):
    if hf["model_type"] == "vit":
        cfg = {k: hf[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                  "intermediate_size", "hidden_act", "image_size", "patch_size",
                                  "num_channels", "layer_norm_eps", "initializer_range", "qkv_bias")}
        cfg["num_labels"] = len(hf["id2label"])
        return cfg
    return {k: hf[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                               "intermediate_size", "hidden_act", "vocab_size", "rms_norm_eps",
                               "rope_theta", "initializer_range", "max_position_embeddings")}


def _load(model_dir, device):
    with open(os.path.join(model_dir, "config.json")) as f:
        hf = json.load(f)
    cfg = _internal_cfg(hf)
    model = (models.ViTForImageClassification if hf["model_type"] == "vit" else models.LlamaForCausalLM)(cfg)
    state = {k: torch.from_numpy(v.copy()) for k, v in safetensors_io.load_model(model_dir).items()}
    model.load_state_dict(state, strict=True)  # weights as published: bf16/f16 upcast to f32
    return model.to(device)


# ---------------------------------------------------------------------------- build
def build(m, out_root, device, arch_cfg, recipe):
    """Train model `m` (a plan entry), save it under out_root/m['id'], return its summary."""
    setup_torch(device)
    if m["kind"] in COPY_KINDS:
        return build_copy(m, out_root, device)
    gen = torch.Generator().manual_seed(m["seed"])
    if m["parent"] is None:
        if m["arch"] == "vit":
            model = models.ViTForImageClassification(dict(arch_cfg, num_labels=10))
            if m["init"] == "torch":
                models.init_torch_default_(model, gen)
            else:
                models.init_vit_(model, gen)
        else:
            model = models.LlamaForCausalLM(dict(arch_cfg, vocab_size=256))
            if m["init"] == "torch":
                models.init_torch_default_(model, gen)
            else:
                models.init_llama_(model, gen)
        model = model.to(device)
    else:
        model = _load(os.path.join(out_root, m["parent"]), device)

    if m["arch"] == "vit":
        loss, metric, metric_name = _train_vit(model, m, recipe, gen, device)
        hf = vit_config(model.cfg, m["dtype"])
    else:
        loss, metric, metric_name = _train_llama(model, m, recipe, gen, device)
        hf = llama_config(model.cfg, m["dtype"])

    state = {k: v for k, v in model.state_dict().items()}
    out_dir = os.path.join(out_root, m["id"])
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(json.dumps(hf, indent=2, sort_keys=True) + "\n")
    if m["arch"] == "llama" and "ext" in m["task"]:
        with open(os.path.join(out_dir, "added_tokens.json"), "w") as f:
            f.write(json.dumps({t: 256 + i for i, t in enumerate(data.CODE_TOKENS)}, indent=2,
                               sort_keys=True) + "\n")
    files = safetensors_io.save_model(state, out_dir, m["dtype"], shards=m["shards"])
    return {
        "id": m["id"],
        "params": int(sum(v.numel() for v in state.values())),
        "final_loss": round(loss, 6),
        "eval_metric": round(metric, 6),
        "eval_metric_name": metric_name,
        "files": files,
    }


def _train_vit(model, m, r, gen, device):
    x, y, _ = _digits()
    tx, ty, ex, ey, n = data.image_task(x, y, m["task"])
    if model.cfg["num_labels"] != n:
        # from_pretrained(..., num_labels=n, ignore_mismatched_sizes=True)
        models.new_classifier(model, n, gen)
    params = list(model.parameters())
    lora_mods = []
    if m["kind"] == "lora":
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in model.vit.encoder.layer:
            att = layer.attention.attention
            att.query = models.LoRALinear(att.query, m["rank"], m["alpha"], gen)
            att.value = models.LoRALinear(att.value, m["rank"], m["alpha"], gen)
            lora_mods += [att.query, att.value]
        for p in model.classifier.parameters():  # peft modules_to_save=["classifier"]
            p.requires_grad_(True)
        params = [p for p in model.parameters() if p.requires_grad]
    xs = data.shifted_copies(tx) if r["shifts"] else tx.unsqueeze(0)
    bf = train.image_batches(xs, ty, r["batch"], r["noise"], device)
    loss = train.run(model, params, bf, train.image_loss, m["steps"], r["lr"], r["wd"], r["betas"],
                     r["schedule"], int(m["steps"] * r["warmup"]), r["clip"], gen, r["final_frac"],
                     opt=r.get("opt", "adamw"), momentum=r.get("momentum", 0.0))
    if lora_mods:
        for layer in model.vit.encoder.layer:
            att = layer.attention.attention
            att.query = att.query.merged()
            att.value = att.value.merged()
    acc = train.image_accuracy(model, ex, ey, device)
    return loss, acc, "accuracy"


def _train_llama(model, m, r, gen, device):
    srcs, ext = TEXT_TASKS[m["task"]]
    names = sorted(srcs)
    vocab = 256 + (len(data.CODE_TOKENS) if ext else 0)
    if model.cfg["vocab_size"] < vocab:
        models.resize_token_embeddings(model, vocab, gen)
    toks = [_tokens(nm, ext) for nm in names]
    bf = train.text_batches([t[0] for t in toks], [srcs[nm] for nm in names], r["batch"], r["seq"], device)
    loss = train.run(model, list(model.parameters()), bf, train.lm_loss, m["steps"], r["lr"], r["wd"],
                     r["betas"], r["schedule"], int(m["steps"] * r["warmup"]), r["clip"], gen,
                     r["final_frac"], opt=r.get("opt", "adamw"), momentum=r.get("momentum", 0.0))
    ev = sum(train.lm_eval_loss(model, t[1], r["seq"], device) for t in toks) / len(toks)
    return loss, ev, "eval_loss_nats_per_token"


# ---------------------------------------------------------------------------- copies
def _weight_files(model_dir):
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        return shards + ["model.safetensors.index.json"]
    return ["model.safetensors"]


def build_copy(m, out_root, device):
    """A copy of a trained model, made from its saved files (no training): a ggml-style
    quantisation round trip, a dtype conversion, a duplicate, or a weighted average of two
    models of identical architecture (a merge). Same config and tensor names as the source."""
    srcs = [os.path.join(out_root, p) for p in m["parents"]]
    out_dir = os.path.join(out_root, m["id"])
    os.makedirs(out_dir, exist_ok=True)
    extra = {}
    if m["op"] == "dup_bytes":
        files = _weight_files(srcs[0])
        for fn in ["config.json"] + files + (["added_tokens.json"]
                                             if os.path.exists(os.path.join(srcs[0], "added_tokens.json")) else []):
            shutil.copyfile(os.path.join(srcs[0], fn), os.path.join(out_dir, fn))
    else:
        states = [safetensors_io.load_model(s) for s in srcs]
        state = states[0]
        if m["op"] == "merge":
            w = [np.float64(x) for x in m["merge_weights"]]
            a, b = states
            if sorted(a) != sorted(b) or any(a[k].shape != b[k].shape for k in a):
                raise ValueError("%s: merge parents differ in tensor names or shapes" % m["id"])
            state = {k: (w[0] * a[k].astype(np.float64) + w[1] * b[k].astype(np.float64)).astype(np.float32)
                     for k in a}
        elif m["op"] in quant.QUANTIZERS:
            state, done = quant.quantize_state(state, m["op"])
            extra["quantized_tensors"] = len(done)
        for s in states:  # a copy or merge keeps the architecture and tensor names of its parents
            if sorted(s) != sorted(state) or any(s[k].shape != state[k].shape for k in s):
                raise ValueError("%s: tensor names or shapes differ from a parent's" % m["id"])
        with open(os.path.join(srcs[0], "config.json")) as f:
            hf = json.load(f)
        hf["torch_dtype"] = _DTYPE_TORCH_NAME[m["dtype"]]
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            f.write(json.dumps(hf, indent=2, sort_keys=True) + "\n")
        if os.path.exists(os.path.join(srcs[0], "added_tokens.json")):
            shutil.copyfile(os.path.join(srcs[0], "added_tokens.json"), os.path.join(out_dir, "added_tokens.json"))
        files = safetensors_io.save_model({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
                                          out_dir, m["dtype"], shards=m["shards"])
    model = _load(out_dir, device)
    if m["arch"] == "vit":
        x, y, _ = _digits()
        accs = []
        for t in m["task"].split("+"):
            _, _, ex, ey, _ = data.image_task(x, y, t)
            accs.append(train.image_accuracy(model, ex, ey, device))
        metric, name = sum(accs) / len(accs), "accuracy"
    else:
        srcs_t, ext = TEXT_TASKS[m["task"]]
        toks = [_tokens(nm, ext) for nm in sorted(srcs_t)]
        metric = sum(train.lm_eval_loss(model, t[1], 64, device) for t in toks) / len(toks)
        name = "eval_loss_nats_per_token"
    res = {
        "id": m["id"],
        "params": int(sum(v.numel() for v in model.state_dict().values())),
        "final_loss": None,
        "eval_metric": round(metric, 6),
        "eval_metric_name": name,
        "files": files,
    }
    res.update(extra)
    return res
