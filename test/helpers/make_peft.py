#!/usr/bin/python3
"""Writes a small set of models with PEFT LoRA adapters, and the dense float64 reference of
each adapter's difference to its base, for test/adapter.test.ts.

    /usr/bin/python3 test/helpers/make_peft.py OUT_DIR

OUT_DIR/base, ft (base fine-tuned densely), indep (independently initialised), each a
safetensors model with config.json (LlamaForCausalLM-shaped, hidden 32); adapters:
  lora-named   base_model_name_or_path "org/base", r 4, alpha 8, q_proj/v_proj/down_proj,
               rank_pattern {down_proj: 2}, alpha_pattern {v_proj: 3}; F32
  lora-rslora  base_model_name_or_path "someone/not-here", use_rslora, r 3, alpha 6,
               q_proj/o_proj; BF16 A and F16 B; saved as adapter_model.bin (torch.save)
  lora-wide    hidden 48 (fits no model in the set)
OUT_DIR/reference.json: per adapter, per module the float64 dW = scaling B @ A:
{frobenius, rank, rms, numel, shape}, plus the dense RMS distance to the base over the base's
square 2-D tensors (mean of RMS(dW), zero where untouched) and the summed rank over them.
The safetensors writer is written here (no safetensors package needed).
"""
import json
import os
import struct
import sys

import torch

torch.set_num_threads(1)

HIDDEN, INTER, VOCAB, LAYERS = 32, 48, 64, 2
DT = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16'}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        b = t.view(torch.int16).numpy().tobytes() if t.dtype in (torch.float16, torch.bfloat16) else t.numpy().tobytes()
        header[name] = {'dtype': DT[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def llama(gen, hidden=HIDDEN):
    w = {'model.embed_tokens.weight': torch.randn(VOCAB, hidden, generator=gen) * 0.1}
    for i in range(LAYERS):
        p = f'model.layers.{i}.'
        for m in ('q_proj', 'k_proj', 'v_proj', 'o_proj'):
            w[p + f'self_attn.{m}.weight'] = torch.randn(hidden, hidden, generator=gen) * 0.1
        w[p + 'mlp.gate_proj.weight'] = torch.randn(INTER, hidden, generator=gen) * 0.1
        w[p + 'mlp.up_proj.weight'] = torch.randn(INTER, hidden, generator=gen) * 0.1
        w[p + 'mlp.down_proj.weight'] = torch.randn(hidden, INTER, generator=gen) * 0.1
        w[p + 'input_layernorm.weight'] = torch.ones(hidden)
        w[p + 'post_attention_layernorm.weight'] = torch.ones(hidden)
    w['model.norm.weight'] = torch.ones(hidden)
    w['lm_head.weight'] = torch.randn(VOCAB, hidden, generator=gen) * 0.1
    return w


def save_model(d, w):
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, 'model.safetensors'), w)
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump({'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'hidden_size': w['model.norm.weight'].shape[0]}, f)


def adapter(out, name, base, cfg, modules, gen, dtypes=(torch.float32, torch.float32), fmt='safetensors'):
    """modules: list of (module path, r); A random, B random (as after training)."""
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    tensors, ref = {}, {}
    for mod, r in modules:
        wname = mod + '.weight'
        o, i = base[wname].shape
        A = (torch.randn(r, i, generator=gen) * 0.2).to(dtypes[0])
        B = (torch.randn(o, r, generator=gen) * 0.05).to(dtypes[1])
        tensors[f'base_model.model.{mod}.lora_A.weight'] = A
        tensors[f'base_model.model.{mod}.lora_B.weight'] = B
        short = mod.split('.')[-1]
        alpha = cfg.get('alpha_pattern', {}).get(short, cfg['lora_alpha'])
        scaling = alpha / (r ** 0.5 if cfg.get('use_rslora') else r)
        dW = scaling * (B.double() @ A.double())
        ref[wname] = {'frobenius': float(torch.linalg.norm(dW)), 'rank': int(torch.linalg.matrix_rank(dW)),
                      'rms': float(dW.pow(2).mean().sqrt()), 'sv': [float(x) for x in torch.linalg.svdvals(dW)[:r]], 'numel': dW.numel(), 'shape': list(dW.shape), 'r': r, 'scaling': scaling}
    if fmt == 'safetensors':
        write_safetensors(os.path.join(d, 'adapter_model.safetensors'), tensors)
    else:
        torch.save(tensors, os.path.join(d, 'adapter_model.bin'))
    with open(os.path.join(d, 'adapter_config.json'), 'w') as f:
        json.dump(cfg, f)
    # dense reference over the base's square 2-D tensors
    squares = [k for k, t in base.items() if t.dim() == 2 and t.shape[0] == t.shape[1]]
    rms = sum(ref[k]['rms'] if k in ref else 0.0 for k in squares) / len(squares)
    rank = sum(ref[k]['rank'] if k in ref else 0 for k in squares)
    total = float(sum(v['frobenius'] ** 2 for v in ref.values()) ** 0.5)
    return {'modules': ref, 'squareRms': rms, 'squareRank': rank, 'frobenius': total}


def main():
    out = sys.argv[1]
    gen = torch.Generator().manual_seed(7)
    base = llama(gen)
    save_model(os.path.join(out, 'base'), base)
    ft = {k: (v + torch.randn(v.shape, generator=gen) * 0.02 if v.dim() == 2 else v.clone()) for k, v in base.items()}
    save_model(os.path.join(out, 'ft'), ft)
    save_model(os.path.join(out, 'indep'), llama(gen))
    refs = {}
    lp = 'model.layers.{}.'
    refs['lora-named'] = adapter(out, 'lora-named', base, {
        'peft_type': 'LORA', 'base_model_name_or_path': 'org/base', 'r': 4, 'lora_alpha': 8, 'use_rslora': False,
        'target_modules': ['q_proj', 'v_proj', 'down_proj'], 'rank_pattern': {'down_proj': 2}, 'alpha_pattern': {'v_proj': 3},
        'fan_in_fan_out': False, 'task_type': 'CAUSAL_LM'},
        [(lp.format(i) + m, 2 if m.endswith('down_proj') else 4) for i in range(LAYERS) for m in ('self_attn.q_proj', 'self_attn.v_proj', 'mlp.down_proj')], gen)
    refs['lora-rslora'] = adapter(out, 'lora-rslora', base, {
        'peft_type': 'LORA', 'base_model_name_or_path': 'someone/not-here', 'r': 3, 'lora_alpha': 6, 'use_rslora': True,
        'target_modules': ['q_proj', 'o_proj'], 'task_type': 'CAUSAL_LM'},
        [(lp.format(i) + m, 3) for i in range(LAYERS) for m in ('self_attn.q_proj', 'self_attn.o_proj')], gen,
        dtypes=(torch.bfloat16, torch.float16), fmt='bin')
    wide = llama(torch.Generator().manual_seed(99), hidden=48)
    refs['lora-wide'] = adapter(out, 'lora-wide', wide, {
        'peft_type': 'LORA', 'base_model_name_or_path': 'org/wide', 'r': 2, 'lora_alpha': 2, 'target_modules': ['q_proj']},
        [(lp.format(i) + 'self_attn.q_proj', 2) for i in range(LAYERS)], gen)
    with open(os.path.join(out, 'reference.json'), 'w') as f:
        json.dump(refs, f, indent=1)


if __name__ == '__main__':
    main()
