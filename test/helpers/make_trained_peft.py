#!/usr/bin/python3
"""Writes really trained models and PEFT LoRA adapters for the choice of an adapter's base by
its weights (test/adapter_base.test.ts).

    /usr/bin/python3 test/helpers/make_trained_peft.py OUT_DIR

Three Llama-like byte-level decoders (benchmarks/zoo_lib/models.py, hidden 64, 2 layers, 4
heads), each pre-trained from its own initialisation (seeds 1, 2, 3) for 300 AdamW steps on the
Zen of Python (the stdlib's `this`): alpha, beta, gamma; alpha-ft, alpha fine-tuned in full for
100 steps on the text upper-cased (so alpha's family has two models). Then, on alpha and on
beta, a peft-style LoRA (r 4, alpha 8, q_proj and v_proj; A kaiming-uniform, B zeros; the base
frozen) trained for 150 steps on the text reversed: lora-on-alpha, lora-on-beta, saved as
adapter_config.json + adapter_model.safetensors with base_model_name_or_path
"someone/elsewhere" (in no set). Single thread, seeded: the same bytes on every run.
"""
import codecs
import contextlib
import io
import json
import os
import struct
import sys

import torch

with contextlib.redirect_stdout(io.StringIO()):
    import this  # noqa: E402  (prints the Zen on import; its text is this.s, rot13)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'benchmarks'))
from zoo_lib import models  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

CFG = dict(vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
           rms_norm_eps=1e-5, rope_theta=10000.0)
TEXT = codecs.decode(this.s, 'rot13')


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
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, CFG['vocab_size']), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss)


def save_model(out, name, model):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, 'model.safetensors'), dict(model.state_dict()))
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump({'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', **CFG}, f)


def pretrained(seed):
    gen = torch.Generator().manual_seed(seed)
    m = models.LlamaForCausalLM(CFG)
    models.init_llama_(m, gen)
    train(m, list(m.parameters()), TEXT, 300, 3e-3, gen)
    return m


def lora(out, name, base, seed):
    gen = torch.Generator().manual_seed(seed)
    m = models.LlamaForCausalLM(CFG)
    m.load_state_dict(base.state_dict())
    for p in m.parameters():
        p.requires_grad_(False)
    mods = {}
    for i, layer in enumerate(m.model.layers):
        att = layer.self_attn
        att.q_proj = models.LoRALinear(att.q_proj, 4, 8, gen)
        att.v_proj = models.LoRALinear(att.v_proj, 4, 8, gen)
        mods[f'model.layers.{i}.self_attn.q_proj'] = att.q_proj
        mods[f'model.layers.{i}.self_attn.v_proj'] = att.v_proj
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
                   'target_modules': ['q_proj', 'v_proj'], 'task_type': 'CAUSAL_LM'}, f)


def main():
    out = sys.argv[1]
    alpha, beta, gamma = pretrained(1), pretrained(2), pretrained(3)
    save_model(out, 'alpha', alpha)
    save_model(out, 'beta', beta)
    save_model(out, 'gamma', gamma)
    ft = models.LlamaForCausalLM(CFG)
    ft.load_state_dict(alpha.state_dict())
    train(ft, list(ft.parameters()), TEXT.upper(), 100, 1e-3, torch.Generator().manual_seed(4))
    save_model(out, 'alpha-ft', ft)
    lora(out, 'lora-on-alpha', alpha, 5)
    lora(out, 'lora-on-beta', beta, 6)


if __name__ == '__main__':
    main()
