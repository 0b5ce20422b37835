#!/usr/bin/env python3
"""Writes the tensors of a safetensors file as a PyTorch checkpoint with torch.save itself
(the ZIP layout, ZIP64 past 4 GiB), for the benchmarks of the PyTorch reader: the same bytes
in both formats. The tensors are views of a memory map of the source, so memory stays small.

    /usr/bin/python3 benchmarks/torch_checkpoint.py SRC.safetensors OUT.bin
"""
import collections
import json
import os
import struct
import sys
import warnings

import numpy as np
import torch

src, out = sys.argv[1], sys.argv[2]
with open(src, 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    header = json.loads(f.read(n))
header.pop('__metadata__', None)
mm = np.memmap(src, dtype=np.uint8, mode='r')
base = 8 + n
as_numpy = {'F64': np.float64, 'F32': np.float32, 'F16': np.float16, 'BF16': np.int16}
sd = collections.OrderedDict()
with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # "the given NumPy array is not writable": it is only read
    for name, t in sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0]):
        b, e = t['data_offsets']
        x = torch.from_numpy(mm[base + b:base + e].view(as_numpy[t['dtype']]).reshape(t['shape']))
        sd[name] = x.view(torch.bfloat16) if t['dtype'] == 'BF16' else x
torch.save(sd, out + '.tmp')
os.replace(out + '.tmp', out)
