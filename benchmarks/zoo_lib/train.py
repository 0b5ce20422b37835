"""Training loops (deterministic: per-model torch.Generator for init, data order and
augmentation noise; all random numbers drawn on the CPU so every device sees the same)."""
import math

import torch
import torch.nn.functional as F


def lr_at(step, steps, peak, warmup, schedule, final_frac=0.0):
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    if schedule == "cosine":
        return peak * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * p)))
    if schedule == "linear":  # transformers' default get_linear_schedule_with_warmup
        return peak * max(0.0, 1.0 - p)
    if schedule == "constant":
        return peak
    raise ValueError(schedule)


def make_optimizer(model, params, lr, wd, betas, opt="adamw", momentum=0.0):
    """AdamW (decoupled weight decay) or SGD with momentum (coupled L2 weight decay, as
    torch.optim.SGD does it); weight decay (if any) only on >= 2-D weights, as common
    trainers configure it."""
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if opt == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if opt != "adamw":
        raise ValueError(opt)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8)


def run(model, params, batch_fn, loss_fn, steps, lr, wd, betas, schedule, warmup, clip, gen,
        final_frac=0.0, hook=None, opt="adamw", momentum=0.0):
    """Generic loop. batch_fn(gen) -> batch on device; loss_fn(model, batch) -> scalar.
    Returns the mean training loss over the last 10% of steps."""
    opt = make_optimizer(model, params, lr, wd, betas, opt, momentum)
    trainable = [p for g in opt.param_groups for p in g["params"]]
    model.train()
    tail, tail_n = 0.0, max(1, steps // 10)
    for step in range(steps):
        cur = lr_at(step, steps, lr, warmup, schedule, final_frac)
        for g in opt.param_groups:
            g["lr"] = cur
        batch = batch_fn(gen)
        loss = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(trainable, clip)
        opt.step()
        if step >= steps - tail_n:
            tail += float(loss.detach())
        if hook is not None:
            hook(step, model)
    model.eval()
    return tail / tail_n


# ---------------------------------------------------------------------------- images
def image_batches(x_shift, y, batch, noise, device):
    """x_shift: (9, N, 1, 8, 8) translated copies (or (1, N, ...) for no translation)."""
    n = y.shape[0]

    def fn(gen):
        idx = torch.randint(0, n, (batch,), generator=gen)
        sh = torch.randint(0, x_shift.shape[0], (batch,), generator=gen)
        xb = x_shift[sh, idx]
        if noise:
            xb = xb + noise * torch.randn(xb.shape, generator=gen)
        return xb.to(device), y[idx].to(device)

    return fn


def cross_entropy(logits, target):
    """Mean cross-entropy through a dense one-hot product: same value as F.cross_entropy,
    but deterministic on every device (nll_loss backward scatters on CUDA)."""
    logp = F.log_softmax(logits, dim=-1)
    return -(logp * F.one_hot(target, logits.shape[-1]).to(logp.dtype)).sum(-1).mean()


def image_loss(model, batch):
    xb, yb = batch
    return cross_entropy(model(xb), yb)


@torch.no_grad()
def image_accuracy(model, x, y, device, bs=512):
    model.eval()
    hit = 0
    for i in range(0, len(y), bs):
        hit += int((model(x[i:i + bs].to(device)).argmax(-1).cpu() == y[i:i + bs]).sum())
    return hit / max(1, len(y))


# ---------------------------------------------------------------------------- text
def text_batches(sources, weights, batch, seq, device):
    """Random windows of seq+1 tokens; each row's source is drawn with the given weights."""
    w = torch.tensor(weights, dtype=torch.float64)
    lens = [s.shape[0] - seq - 1 for s in sources]

    def fn(gen):
        src = torch.multinomial(w, batch, replacement=True, generator=gen)
        u = torch.rand(batch, generator=gen, dtype=torch.float64)
        rows = []
        for i in range(batch):
            s = int(src[i])
            off = int(u[i] * lens[s])
            rows.append(sources[s][off:off + seq + 1])
        return torch.stack(rows).to(device)

    return fn


def lm_loss(model, batch):
    logits = model(batch[:, :-1])
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


@torch.no_grad()
def lm_eval_loss(model, ids, seq, device, max_windows=64):
    """Mean next-token loss (nats/token) over up to max_windows evenly spaced windows."""
    model.eval()
    n = ids.shape[0] - seq - 1
    k = max(1, min(max_windows, n // (seq + 1)))
    offs = torch.linspace(0, n - 1, k).long()
    ar = torch.arange(seq + 1)
    b = ids[offs[:, None] + ar[None, :]].to(device)
    return float(lm_loss(model, b))
