"""Tiny ViT and Llama models whose state_dict names match Hugging Face transformers'
ViTForImageClassification and LlamaForCausalLM, initialised like transformers does
(normal / truncated normal with std = initializer_range = 0.02, zero biases, unit norms)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _attend(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d) + mask) v for (b, h, t, d) tensors."""
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s + mask
    return torch.softmax(s, dim=-1) @ v


# ---------------------------------------------------------------------------- ViT
class _Proj(nn.Module):
    def __init__(self, c, h, p):
        super().__init__()
        self.projection = nn.Conv2d(c, h, kernel_size=p, stride=p)

    def forward(self, x):
        return self.projection(x).flatten(2).transpose(1, 2)


class ViTEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, p = cfg["hidden_size"], cfg["patch_size"]
        n = (cfg["image_size"] // p) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, h))
        self.patch_embeddings = _Proj(cfg["num_channels"], h, p)
        self.position_embeddings = nn.Parameter(torch.zeros(1, n + 1, h))

    def forward(self, x):
        e = self.patch_embeddings(x)
        cls = self.cls_token.expand(e.shape[0], -1, -1)
        return torch.cat([cls, e], dim=1) + self.position_embeddings


class ViTSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.query = nn.Linear(h, h, bias=True)
        self.key = nn.Linear(h, h, bias=True)
        self.value = nn.Linear(h, h, bias=True)

    def forward(self, x):
        b, t, h = x.shape
        d = h // self.nh
        q = self.query(x).view(b, t, self.nh, d).transpose(1, 2)
        k = self.key(x).view(b, t, self.nh, d).transpose(1, 2)
        v = self.value(x).view(b, t, self.nh, d).transpose(1, 2)
        return _attend(q, k, v).transpose(1, 2).reshape(b, t, h)


class _Dense(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.dense = nn.Linear(i, o)


class ViTAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = ViTSelfAttention(cfg)
        self.output = _Dense(cfg["hidden_size"], cfg["hidden_size"])

    def forward(self, x):
        return self.output.dense(self.attention(x))


class ViTLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, i, eps = cfg["hidden_size"], cfg["intermediate_size"], cfg["layer_norm_eps"]
        self.attention = ViTAttention(cfg)
        self.intermediate = _Dense(h, i)
        self.output = _Dense(i, h)
        self.layernorm_before = nn.LayerNorm(h, eps=eps)
        self.layernorm_after = nn.LayerNorm(h, eps=eps)

    def forward(self, x):
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output.dense(F.gelu(self.intermediate.dense(self.layernorm_after(x))))


class _Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList([ViTLayer(cfg) for _ in range(cfg["num_hidden_layers"])])


class ViTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = ViTEmbeddings(cfg)
        self.encoder = _Encoder(cfg)
        self.layernorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, x):
        x = self.embeddings(x)
        for layer in self.encoder.layer:
            x = layer(x)
        return self.layernorm(x)


class ViTForImageClassification(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.vit = ViTModel(cfg)
        self.classifier = nn.Linear(cfg["hidden_size"], cfg["num_labels"])

    def forward(self, x):
        return self.classifier(self.vit(x)[:, 0])


def init_vit_(model, gen, std=0.02):
    """transformers ViTPreTrainedModel._init_weights: trunc_normal(std) for Linear/Conv2d
    weights, position_embeddings and cls_token; zero biases; LayerNorm weight 1 bias 0."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            _trunc_normal_(m.weight, std, gen)
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.LayerNorm):
            m.weight.data.fill_(1.0)
            m.bias.data.zero_()
        elif isinstance(m, ViTEmbeddings):
            _trunc_normal_(m.position_embeddings, std, gen)
            _trunc_normal_(m.cls_token, std, gen)


def new_classifier(model, num_labels, gen, std=0.02):
    """Replace the classification head (what from_pretrained(..., num_labels=k,
    ignore_mismatched_sizes=True) does): fresh trunc_normal weight, zero bias."""
    h = model.cfg["hidden_size"]
    dev = model.classifier.weight.device
    head = nn.Linear(h, num_labels)
    _trunc_normal_(head.weight, std, gen)
    head.bias.data.zero_()
    model.classifier = head.to(dev)
    model.cfg = dict(model.cfg, num_labels=num_labels)


def _trunc_normal_(p, std, gen):
    # nn.init.trunc_normal_ has no generator argument in older torch: sample on CPU with
    # our generator and resample the (practically never hit) values outside [-2, 2].
    with torch.no_grad():
        t = torch.randn(p.shape, generator=gen) * std
        bad = t.abs() > 2.0
        while bool(bad.any()):
            t[bad] = torch.randn(int(bad.sum()), generator=gen) * std
            bad = t.abs() > 2.0
        p.data.copy_(t.to(p.device))


# ---------------------------------------------------------------------------- Llama
class LlamaRMSNorm(nn.Module):
    def __init__(self, h, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(h))
        self.eps = eps

    def forward(self, x):
        v = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(v + self.eps))


def _rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.d = h // self.nh
        self.q_proj = nn.Linear(h, h, bias=False)
        self.k_proj = nn.Linear(h, h, bias=False)
        self.v_proj = nn.Linear(h, h, bias=False)
        self.o_proj = nn.Linear(h, h, bias=False)
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, self.d, 2).float() / self.d))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, x, mask):
        b, t, h = x.shape
        q = self.q_proj(x).view(b, t, self.nh, self.d).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.nh, self.d).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.nh, self.d).transpose(1, 2)
        pos = torch.arange(t, device=x.device, dtype=torch.float32)
        fr = torch.outer(pos, self.inv_freq)
        emb = torch.cat((fr, fr), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        return self.o_proj(_attend(q, k, v, mask).transpose(1, 2).reshape(b, t, h))


class LlamaMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = LlamaRMSNorm(h, eps)
        self.post_attention_layernorm = LlamaRMSNorm(h, eps)

    def forward(self, x, mask):
        x = x + self.self_attn(self.input_layernorm(x), mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = LlamaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, ids):
        t = ids.shape[1]
        mask = torch.full((t, t), float("-inf"), device=ids.device).triu(1)
        # one-hot product instead of an index lookup: identical values, and a backward pass
        # that is a plain matrix product (deterministic on CUDA too)
        w = self.embed_tokens.weight
        x = F.one_hot(ids, w.shape[0]).to(w.dtype) @ w
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)

    def forward(self, ids):
        return self.lm_head(self.model(ids))


def init_llama_(model, gen, std=0.02):
    """transformers LlamaPreTrainedModel._init_weights: normal(0, std) for Linear and
    Embedding weights, RMSNorm weights 1."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.data.copy_((torch.randn(m.weight.shape, generator=gen) * std).to(m.weight.device))
            elif isinstance(m, LlamaRMSNorm):
                m.weight.data.fill_(1.0)


def resize_token_embeddings(model, new_vocab, gen):
    """Grow embed_tokens and lm_head to `new_vocab` rows the way transformers'
    resize_token_embeddings(mean_resizing=True) does: new rows drawn from a normal with the
    old rows' mean and 1e-9 times their covariance (practically the mean)."""
    with torch.no_grad():
        dev = model.lm_head.weight.device
        for get, setter in (
            (lambda: model.model.embed_tokens.weight, "emb"),
            (lambda: model.lm_head.weight, "head"),
        ):
            old = get().detach().to("cpu", torch.float64)
            n, h = old.shape
            mean = old.mean(0)
            cov = (old - mean).T @ (old - mean) / n
            L = torch.linalg.cholesky(cov * 1e-9 + torch.eye(h, dtype=torch.float64) * 1e-12)
            z = torch.randn((new_vocab - n, h), generator=gen, dtype=torch.float64)
            new = torch.cat([old, mean + z @ L.T]).float().to(dev)
            if setter == "emb":
                e = nn.Embedding(new_vocab, h).to(dev)
                e.weight.data.copy_(new)
                model.model.embed_tokens = e
            else:
                l = nn.Linear(h, new_vocab, bias=False).to(dev)
                l.weight.data.copy_(new)
                model.lm_head = l
        model.cfg = dict(model.cfg, vocab_size=new_vocab)


# ---------------------------------------------------------------------------- LoRA
class LoRALinear(nn.Module):
    """peft-style LoRA around a frozen nn.Linear: y = base(x) + (x A^T B^T) * alpha / r,
    A (r, in) kaiming-uniform(a=sqrt(5)), B (out, r) zeros."""

    def __init__(self, base, r, alpha, gen):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.scaling = r, alpha / r
        fan_in = base.in_features
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) bound
        a = (torch.rand((r, fan_in), generator=gen) * 2 - 1) * bound
        self.lora_A = nn.Parameter(a.to(base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=base.weight.device))

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def merged(self):
        """An nn.Linear with W + (B @ A) * alpha / r (peft merge_and_unload)."""
        with torch.no_grad():
            lin = self.base
            lin.weight.data += (self.lora_B @ self.lora_A) * self.scaling
            for p in lin.parameters():
                p.requires_grad_(True)
            return lin


# ---------------------------------------------------------------------------- PyTorch defaults
def _uniform_(p, bound, gen):
    with torch.no_grad():
        p.data.copy_(((torch.rand(p.shape, generator=gen) * 2 - 1) * bound).to(p.device))


def init_torch_default_(model, gen):
    """What the modules' own reset_parameters() give (no transformers _init_weights):
    nn.Linear / nn.Conv2d weight kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), +1/sqrt(fan_in)),
    bias U(-1/sqrt(fan_in), +1/sqrt(fan_in)); nn.Embedding normal(0, 1); LayerNorm / RMSNorm
    weight 1, bias 0; the ViT CLS token and position embeddings as transformers' ViTEmbeddings
    constructor draws them, torch.randn (normal(0, 1)). Drawn from our generator, in module
    order, so the same seed gives the same weights on every device."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                _uniform_(m.weight, bound, gen)
                if m.bias is not None:
                    _uniform_(m.bias, bound, gen)
            elif isinstance(m, nn.Embedding):
                m.weight.data.copy_(torch.randn(m.weight.shape, generator=gen).to(m.weight.device))
            elif isinstance(m, (nn.LayerNorm, LlamaRMSNorm)):
                m.weight.data.fill_(1.0)
                if getattr(m, "bias", None) is not None:
                    m.bias.data.zero_()
            elif isinstance(m, ViTEmbeddings):
                m.cls_token.data.copy_(torch.randn(m.cls_token.shape, generator=gen).to(m.cls_token.device))
                m.position_embeddings.data.copy_(
                    torch.randn(m.position_embeddings.shape, generator=gen).to(m.position_embeddings.device))
