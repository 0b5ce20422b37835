#!/usr/bin/python3
"""Writes really trained GPT-2-style models and PEFT LoRA adapters with fan_in_fan_out (GPT-2's
Conv1D layers store their weight as [in, out], y = x W + b, so the adapter's dW = (B A)^T) for
the choice of an adapter's base by its weights (test/adapter_base.test.ts).

    /usr/bin/python3 test/helpers/make_trained_gpt2_peft.py OUT_DIR

Three byte-level GPT-2 decoders (n_embd 64, 2 layers, 4 heads, 64 positions, tied head; the
names and layouts of transformers' GPT2LMHeadModel), each pre-trained from its own
initialisation (normal, std 0.02; seeds 1, 2, 3) for 300 AdamW steps on the Zen of Python:
alpha, beta, gamma; alpha-ft, alpha fine-tuned in full for 100 steps on the text upper-cased.
Then, on alpha and on beta, a peft-style LoRA on c_attn (PEFT's default target for GPT-2; r 4,
lora_alpha 8, fan_in_fan_out true; lora_A [r, in] kaiming-uniform, lora_B [out, r] zeros; the
base frozen) trained for 150 steps on the text reversed: lora-on-alpha, lora-on-beta, with
base_model_name_or_path "someone/elsewhere" (in no set). Single thread, seeded.
"""
import codecs
import contextlib
import io
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

with contextlib.redirect_stdout(io.StringIO()):
    import this  # noqa: E402  (prints the Zen on import; its text is this.s, rot13)

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

CFG = dict(vocab_size=128, n_embd=64, n_layer=2, n_head=4, n_positions=64, layer_norm_epsilon=1e-5)
TEXT = codecs.decode(this.s, 'rot13')


class Conv1D(nn.Module):
    """transformers' Conv1D: weight [in, out], y = x W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class LoRAConv1D(nn.Module):
    """peft's LoRA on a Conv1D with fan_in_fan_out: y = base(x) + (x A^T B^T) s; merged W += (B A)^T s."""

    def __init__(self, base, r, alpha, gen):
        super().__init__()
        self.base = base
        n_in, n_out = base.weight.shape
        self.scaling = alpha / r
        bound = 1.0 / math.sqrt(n_in)
        self.lora_A = nn.Parameter((torch.rand((r, n_in), generator=gen) * 2 - 1) * bound)
        self.lora_B = nn.Parameter(torch.zeros(n_out, r))

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        d = CFG['n_embd']
        self.ln_1 = nn.LayerNorm(d, eps=CFG['layer_norm_epsilon'])
        self.attn = nn.Module()
        self.attn.c_attn = Conv1D(d, 3 * d)
        self.attn.c_proj = Conv1D(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=CFG['layer_norm_epsilon'])
        self.mlp = nn.Module()
        self.mlp.c_fc = Conv1D(d, 4 * d)
        self.mlp.c_proj = Conv1D(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        h = CFG['n_head']
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, h, d // h).transpose(1, 2) for z in (q, k, v))
        w = (q @ k.transpose(-1, -2)) / math.sqrt(d // h)
        w = w.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float('-inf')).softmax(-1)
        a = (w @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.attn.c_proj(a)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate='tanh'))


class GPT2(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(CFG['vocab_size'], CFG['n_embd'])
        self.transformer.wpe = nn.Embedding(CFG['n_positions'], CFG['n_embd'])
        self.transformer.h = nn.ModuleList([Block() for _ in range(CFG['n_layer'])])
        self.transformer.ln_f = nn.LayerNorm(CFG['n_embd'], eps=CFG['layer_norm_epsilon'])

    def forward(self, ids):
        t = self.transformer
        x = t.wte(ids) + t.wpe(torch.arange(ids.shape[1]))
        for blk in t.h:
            x = blk(x)
        return t.ln_f(x) @ t.wte.weight.T


def init_(model, gen, std=0.02):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bias'):
                p.zero_()
            elif '.ln_' in name:
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().float().numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def batches(text, gen, batch=16, seq=32):
    ids = torch.tensor([min(ord(c), 127) for c in text])

    def fn():
        starts = torch.randint(0, len(ids) - seq - 1, (batch,), generator=gen)
        x = torch.stack([ids[s:s + seq + 1] for s in starts.tolist()])
        return x[:, :-1], x[:, 1:]
    return fn


def train(model, params, text, steps, lr, gen):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    nxt = batches(text, gen)
    for _ in range(steps):
        x, y = nxt()
        loss = F.cross_entropy(model(x).reshape(-1, CFG['vocab_size']), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss)


def save_model(out, name, model):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, 'model.safetensors'), dict(model.state_dict()))
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump({'architectures': ['GPT2LMHeadModel'], 'model_type': 'gpt2', 'n_ctx': CFG['n_positions'], **CFG}, f)


def pretrained(seed):
    gen = torch.Generator().manual_seed(seed)
    m = GPT2()
    init_(m, gen)
    train(m, list(m.parameters()), TEXT, 300, 3e-3, gen)
    return m


def lora(out, name, base, seed):
    gen = torch.Generator().manual_seed(seed)
    m = GPT2()
    m.load_state_dict(base.state_dict())
    for p in m.parameters():
        p.requires_grad_(False)
    mods = {}
    for i, blk in enumerate(m.transformer.h):
        blk.attn.c_attn = LoRAConv1D(blk.attn.c_attn, 4, 8, gen)
        mods[f'transformer.h.{i}.attn.c_attn'] = blk.attn.c_attn
    params = [p for mod in mods.values() for p in (mod.lora_A, mod.lora_B)]
    train(m, params, TEXT[::-1], 150, 3e-3, gen)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    tensors = {}
    for k, mod in mods.items():
        tensors[f'base_model.model.{k}.lora_A.weight'] = mod.lora_A
        tensors[f'base_model.model.{k}.lora_B.weight'] = mod.lora_B
    write_safetensors(os.path.join(d, 'adapter_model.safetensors'), tensors)
    with open(os.path.join(d, 'adapter_config.json'), 'w') as f:
        json.dump({'peft_type': 'LORA', 'base_model_name_or_path': 'someone/elsewhere', 'r': 4, 'lora_alpha': 8,
                   'target_modules': ['c_attn'], 'fan_in_fan_out': True, 'task_type': 'CAUSAL_LM'}, f)


def main():
    out = sys.argv[1]
    alpha, beta, gamma = pretrained(1), pretrained(2), pretrained(3)
    save_model(out, 'alpha', alpha)
    save_model(out, 'beta', beta)
    save_model(out, 'gamma', gamma)
    ft = GPT2()
    ft.load_state_dict(alpha.state_dict())
    train(ft, list(ft.parameters()), TEXT.upper(), 100, 1e-3, torch.Generator().manual_seed(4))
    save_model(out, 'alpha-ft', ft)
    lora(out, 'lora-on-alpha', alpha, 5)
    lora(out, 'lora-on-beta', beta, 6)


if __name__ == '__main__':
    main()
