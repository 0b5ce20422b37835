"""Offline, deterministic datasets.

Images: scikit-learn's bundled UCI handwritten digits (1797 8x8 images, read straight from
sklearn/datasets/data/digits.csv.gz; sklearn itself is not imported).
Text: byte-level corpora built from files that ship with the Python interpreter that runs
this script (standard-library sources, the pydoc topic texts) and with Debian base-files
(/usr/share/common-licenses), all read in sorted path order.
"""
import gzip
import hashlib
import importlib.util
import os
import re

import numpy as np
import torch

# ---------------------------------------------------------------------------- digits
_DIGITS_CANDIDATES = [
    "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz",
]


def find_digits():
    spec = importlib.util.find_spec("sklearn")
    cands = []
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            cands.append(os.path.join(loc, "datasets", "data", "digits.csv.gz"))
    cands += _DIGITS_CANDIDATES
    env = os.environ.get("ZOO_DIGITS_CSV")
    if env:
        cands.insert(0, env)
    for c in cands:
        if os.path.exists(c):
            return c
    raise SystemExit(
        "digits.csv.gz not found: install scikit-learn (Debian: apt-get install python3-sklearn) "
        "or point ZOO_DIGITS_CSV at a copy of sklearn/datasets/data/digits.csv.gz")


def load_digits():
    """-> images float32 (N, 1, 8, 8) scaled to [-1, 1] (HF image-processor mean/std 0.5),
    labels int64 (N,), sha256 of the source file."""
    path = find_digits()
    raw = open(path, "rb").read()
    arr = np.loadtxt(gzip.decompress(raw).decode("ascii").splitlines(), delimiter=",")
    x = arr[:, :64].astype(np.float32).reshape(-1, 1, 8, 8) / 16.0
    y = arr[:, 64].astype(np.int64)
    return torch.from_numpy((x - 0.5) / 0.5), torch.from_numpy(y), hashlib.sha256(raw).hexdigest()


# Fine-tuning tasks on digits, VTAB-style: different label spaces and input domains.
# name -> (label map over the 10 digits (None = drop the image), input transform)
_PRIMES = {2, 3, 5, 7}
_LOOPS = {0, 6, 8, 9}
IMAGE_TASKS = {
    "digits10": ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], None),
    "parity": ([d % 2 for d in range(10)], None),
    "low5": ([0, 1, 2, 3, 4] + [None] * 5, None),
    "high5": ([None] * 5 + [0, 1, 2, 3, 4], None),
    "gt4": ([int(d > 4) for d in range(10)], None),
    "mod3": ([d % 3 for d in range(10)], None),
    "prime": ([int(d in _PRIMES) for d in range(10)], None),
    "loops": ([int(d in _LOOPS) for d in range(10)], None),
    "rot90": ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "rot90"),
    "flip": ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "flip"),
    "invert": ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "invert"),
    "blur": ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "blur"),
    "even5": ([0, None, 1, None, 2, None, 3, None, 4, None], None),
    "odd5": ([None, 0, None, 1, None, 2, None, 3, None, 4], None),
    "rot90_parity": ([d % 2 for d in range(10)], "rot90"),
    "invert_low5": ([0, 1, 2, 3, 4] + [None] * 5, "invert"),
}


def _transform(x, kind):
    if kind is None:
        return x
    if kind == "rot90":
        return torch.rot90(x, 1, dims=(2, 3))
    if kind == "flip":
        return torch.flip(x, dims=(3,))
    if kind == "invert":
        return -x
    if kind == "blur":
        k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
        return torch.nn.functional.conv2d(x, k.view(1, 1, 3, 3), padding=1)
    raise ValueError(kind)


def image_task(x, y, task):
    """-> (train_x, train_y, eval_x, eval_y, num_labels). Every 6th image is held out."""
    lab, tf = IMAGE_TASKS[task]
    keep = torch.tensor([lab[int(v)] is not None for v in y])
    idx = torch.arange(len(y))
    newy = torch.tensor([lab[int(v)] if lab[int(v)] is not None else -1 for v in y])
    xt = _transform(x, tf)
    tr = keep & (idx % 6 != 0)
    ev = keep & (idx % 6 == 0)
    n = max(v for v in lab if v is not None) + 1
    return xt[tr], newy[tr], xt[ev], newy[ev], n


def shifted_copies(x):
    """All 9 one-pixel translations of every image: (9, N, 1, 8, 8), zero(-1)-padded."""
    p = torch.nn.functional.pad(x, (1, 1, 1, 1), value=-1.0)
    return torch.stack([p[:, :, i:i + 8, j:j + 8] for i in range(3) for j in range(3)])


# ---------------------------------------------------------------------------- text
def _stdlib_dir():
    return os.path.dirname(os.__file__)


def _read_files(paths):
    out = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                out.append(f.read())
        except OSError:
            pass
    return b"\n\n".join(out)


def text_corpora():
    """name -> bytes. Sorted paths, deduplicated by real path."""
    std = _stdlib_dir()
    py = sorted(os.path.join(std, f) for f in os.listdir(std) if f.endswith(".py"))
    half = len(py) // 2
    lic_dir = "/usr/share/common-licenses"
    lic = []
    if os.path.isdir(lic_dir):
        seen = set()
        for f in sorted(os.listdir(lic_dir)):
            rp = os.path.realpath(os.path.join(lic_dir, f))
            if os.path.isfile(rp) and rp not in seen:
                seen.add(rp)
                lic.append(rp)
    # pydoc topic texts: the Python language reference as plain English prose
    try:
        from pydoc_data import topics as _t
        docs = "\n\n".join(_t.topics[k] for k in sorted(_t.topics)).encode("utf-8")
    except Exception:  # pragma: no cover - stripped Python installs
        docs = b""
    if not lic:  # fall back on the interpreter's own licence text
        lic_txt = _read_files([os.path.join(std, "LICENSE.txt")])
    else:
        lic_txt = _read_files(lic)
    corp = {
        "code_a": _read_files(py[:half]),   # stdlib modules a..m-ish
        "code_b": _read_files(py[half:]),   # the rest
        "legal": lic_txt,                   # software licences (legal English)
        "docs": docs,                       # Python language reference (technical English)
    }
    if not docs:
        corp["docs"] = corp["legal"]
    return corp


def corpus_digest(corp):
    return {k: {"bytes": len(v), "sha256": hashlib.sha256(v).hexdigest()} for k, v in sorted(corp.items())}


# Extra tokens for the vocabulary-extended code model (16 like CodeLlama's 32016 - 32000):
# frequent Python source strings, so the new rows are actually trained.
CODE_TOKENS = [
    "        ", "    ", "self.", "def ", "return ", "import ", "from ", "None",
    "raise ", "elif ", "else:", "class ", " in ", "for ", "if ", "\n\n",
]


def tokenize(data, extra_tokens=()):
    """Byte-level ids (0..255); with extra_tokens, exact matches (longest first) become ids
    256, 257, ... in the given order (HF added-tokens style). -> int64 tensor."""
    if not extra_tokens:
        return torch.from_numpy(np.frombuffer(data, dtype=np.uint8).astype(np.int64))
    toks = [t.encode("utf-8") for t in extra_tokens]
    ids = {t: 256 + i for i, t in enumerate(toks)}
    pat = re.compile(b"(" + b"|".join(re.escape(t) for t in sorted(toks, key=lambda t: (-len(t), t))) + b")")
    parts = pat.split(data)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(np.array([ids[part]], dtype=np.int64))
        elif part:
            out.append(np.frombuffer(part, dtype=np.uint8).astype(np.int64))
    return torch.from_numpy(np.concatenate(out))


def split_tokens(ids, eval_frac=0.05):
    n = len(ids)
    cut = int(n * (1 - eval_frac))
    return ids[:cut], ids[cut:]
