"""Built-in suite of (wasteful A, efficient B) pairs modelled on Magneton's cases, reproducible on CPU.

Every pair computes the same function. Lines that cause the waste carry a ``# CULPRIT`` comment; a finding
localises a case when the costly side's call sites include one of them. ``category`` and ``knob`` are the
expected diagnosis. ``kind`` is ``"waste"``, ``"control"`` (nothing may be flagged) or ``"tradeoff"`` (may be
flagged, must never be called waste). ``gpu`` marks the subset that is meaningful with the NVML backend.

Sizes are small (a few ms per side on one CPU thread) so the whole suite runs in about a minute.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opgraph.energy.recorder import configured


@dataclass(frozen=True)
class Case:
    """One pair of the suite.

    Attributes:
        id: Short name.
        modelled_on: The Magneton case (issue id) it imitates.
        kind: ``"waste"``, ``"control"`` or ``"tradeoff"``.
        category: Expected category of the top finding (None for controls / trade-offs).
        knob: Expected culprit setting for misconfiguration cases.
        build: ``build(device) -> (a, b, inputs, inputs_b)`` (``inputs_b`` None: same inputs).
        description: One line.
        gpu: In the GPU subset.
        canonicalize: Declared canonical form of the outputs for the output check (``"sort"``: the two sides
            return the same values in different orders), None to compare position by position.
        requires: A module the case needs (e.g. ``"transformers"``); the suite skips the case without it.
        culprit_sites: Culprits in a library's own source, as ``"file.py:function"`` (real-library cases).
    """

    id: str
    modelled_on: str
    kind: str
    category: str | None
    knob: str | None
    build: Callable[[str], tuple[Any, Any, Any, Any]]
    description: str
    gpu: bool = False
    canonicalize: str | None = None
    requires: str | None = None
    culprit_sites: tuple[str, ...] = ()

    def culprit_lines(self) -> set[int]:
        """Line numbers (in this file) marked ``# CULPRIT`` inside the case's build function."""
        lines, start = inspect.getsourcelines(self.build)
        return {start + k for k, text in enumerate(lines) if "# CULPRIT" in text}


def _gen(device: str, seed: int = 0) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.device(device)


# ----------------------------------------------------------------------------------------------------------
# API misuse


def _gelu(device: str) -> tuple[Any, Any, Any, Any]:
    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    d, n = (256, 256) if dev.type == "cpu" else (1024, 16384)
    fc1 = torch.nn.Linear(d, 4 * d).to(dev)
    fc2 = torch.nn.Linear(4 * d, d).to(dev)

    def a(x: Any) -> Any:
        h = fc1(x)
        g = 0.5 * h * (1.0 + torch.tanh(0.7978845608 * (h + 0.044715 * torch.pow(h, 3))))  # CULPRIT
        return fc2(g)

    def b(x: Any) -> Any:
        return fc2(F.gelu(fc1(x), approximate="tanh"))

    return a, b, (torch.randn(n, d, device=dev),), None


def _attention(device: str) -> tuple[Any, Any, Any, Any]:
    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    shape = (2, 4, 256, 32) if dev.type == "cpu" else (8, 16, 2048, 64)
    q, k, v = (torch.randn(*shape, device=dev) for _ in range(3))

    def a(q: Any, k: Any, v: Any) -> Any:
        scores = q @ k.transpose(-2, -1).contiguous() / math.sqrt(q.shape[-1])  # CULPRIT
        probs = torch.softmax(scores, dim=-1)  # CULPRIT
        return (probs @ v).contiguous()  # CULPRIT

    def b(q: Any, k: Any, v: Any) -> Any:
        return F.scaled_dot_product_attention(q, k, v)

    return a, b, (q, k, v), None


def _cross_entropy(device: str) -> tuple[Any, Any, Any, Any]:
    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    logits = torch.randn(8, 128, 512, device=dev)
    target = torch.randint(0, 512, (8, 128), device=dev)

    def a(logits: Any, target: Any) -> Any:
        return F.cross_entropy(logits.permute(0, 2, 1), target, reduction="none")  # CULPRIT

    def b(logits: Any, target: Any) -> Any:
        return F.cross_entropy(logits.reshape(-1, 512), target.reshape(-1), reduction="none").view(8, 128)

    return a, b, (logits, target), None


def _layernorm_channels(device: str) -> tuple[Any, Any, Any, Any]:
    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    w = torch.randn(64, device=dev)
    bias = torch.randn(64, device=dev)
    x = torch.randn(8, 64, 32, 32, device=dev)

    # On CPU the multi-pass channel normalisation is the wasteful side; one fused layer_norm kernel on a
    # channels-last copy is cheaper (pytorch-76012 was about the same pair, measured on GPU).
    def a(x: Any) -> Any:
        mean = x.mean(1, keepdim=True)  # CULPRIT
        var = x.var(1, keepdim=True, unbiased=False)  # CULPRIT
        return (x - mean) * torch.rsqrt(var + 1e-5) * w[:, None, None] + bias[:, None, None]  # CULPRIT

    def b(x: Any) -> Any:
        return F.layer_norm(x.permute(0, 2, 3, 1), (64,), w, bias, 1e-5).permute(0, 3, 1, 2)

    return a, b, (x,), None


def _topk(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    x = torch.randn(64, 2048, device=dev)

    def a(x: Any) -> Any:
        return x.sort(dim=-1, descending=True).values[:, :8]  # CULPRIT

    def b(x: Any) -> Any:
        return torch.topk(x, 8, dim=-1).values

    return a, b, (x,), None


def _stft(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    n_fft, hop = 256, 64
    win = torch.hann_window(n_fft, device=dev)
    k = torch.arange(n_fft // 2 + 1, device=dev)[:, None]
    n = torch.arange(n_fft, device=dev)[None, :]
    cos_m = torch.cos(2 * math.pi * k * n / n_fft).T.contiguous()
    sin_m = torch.sin(2 * math.pi * k * n / n_fft).T.contiguous()
    sig = torch.randn(4, 16384, device=dev)

    def a(s: Any) -> Any:
        frames = s.unfold(-1, n_fft, hop) * win  # CULPRIT
        re, im = frames @ cos_m, frames @ sin_m  # CULPRIT
        return torch.sqrt(re * re + im * im).mT  # CULPRIT  (.mT: torch.stft's (freq, frame) order, a view)

    def b(s: Any) -> Any:
        return torch.stft(s, n_fft, hop, window=win, center=False, return_complex=True).abs()

    return a, b, (sig,), None


def _eig(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    s = torch.randn(128, 128, dtype=torch.float64)
    s = (s + s.T).to(dev)

    def a(m: Any) -> Any:
        return torch.linalg.eigvals(m)  # CULPRIT

    def b(m: Any) -> Any:
        return torch.linalg.eigvalsh(m)

    return a, b, (s,), None


# ----------------------------------------------------------------------------------------------------------
# redundant


def _repeat_kv(device: str) -> tuple[Any, Any, Any, Any]:
    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    q, k, v = (torch.randn(4, 16, 32, 64, device=dev) for _ in range(3))
    n_rep = 1

    def a(q: Any, k: Any, v: Any) -> Any:
        k = k.repeat_interleave(n_rep, dim=1)  # CULPRIT
        v = v.repeat_interleave(n_rep, dim=1)  # CULPRIT
        return F.scaled_dot_product_attention(q, k, v)

    def b(q: Any, k: Any, v: Any) -> Any:
        return F.scaled_dot_product_attention(q, k, v)

    return a, b, (q, k, v), None


def _concat_split(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    blocks = torch.nn.ModuleList(torch.nn.Linear(128, 128) for _ in range(4)).to(dev)
    enc = torch.randn(4, 64, 128, device=dev)
    hid = torch.randn(4, 256, 128, device=dev)

    def a(enc: Any, hid: Any) -> Any:
        for blk in blocks:
            h = torch.cat([enc, hid], dim=1)  # CULPRIT
            h = torch.relu(blk(h))
            enc, hid = h.split([64, 256], dim=1)  # CULPRIT
        return hid

    def b(enc: Any, hid: Any) -> Any:
        h = torch.cat([enc, hid], dim=1)
        for blk in blocks:
            h = torch.relu(blk(h))
        return h[:, 64:]

    return a, b, (enc, hid), None


def _lm_head(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    lm_head = torch.nn.Linear(128, 4096, bias=False).to(dev)
    h = torch.randn(4, 128, 128, device=dev)

    def a(h: Any) -> Any:
        return lm_head(h)[:, -1]  # CULPRIT

    def b(h: Any) -> Any:
        return lm_head(h[:, -1])

    return a, b, (h,), None


def _expm_branches(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    m = (0.1 * torch.randn(96, 96, device=dev)).contiguous()
    eye = torch.eye(96, device=dev)

    def taylor(x: Any, order: int) -> Any:
        out, term = eye.clone(), eye
        for k in range(1, order + 1):
            term = term @ x / k  # CULPRIT
            out = out + term  # CULPRIT
        return out

    def a(x: Any) -> Any:
        norm = torch.linalg.matrix_norm(x, ord=1)
        lo, mid, hi = taylor(x, 4), taylor(x, 8), taylor(x, 16)  # CULPRIT
        return torch.where(norm < 0.5, lo, torch.where(norm < 2.0, mid, hi))  # CULPRIT

    def b(x: Any) -> Any:
        norm = float(torch.linalg.matrix_norm(x, ord=1))
        return taylor(x, 4) if norm < 0.5 else taylor(x, 8) if norm < 2.0 else taylor(x, 16)

    return a, b, (m,), None


def _count_nonzero(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    mask = torch.rand(2048, 1024, device=dev) > 0.5

    def a(mask: Any) -> Any:
        return (mask != 0).to(torch.int64).sum()  # CULPRIT

    def b(mask: Any) -> Any:
        return mask.sum()

    return a, b, (mask,), None


def _kv_recompute(device: str) -> tuple[Any, Any, Any, Any]:
    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    wk = torch.nn.Linear(256, 256).to(dev)
    wv = torch.nn.Linear(256, 256).to(dev)
    toks = torch.randn(1, 196, 256, device=dev)
    steps = 4

    def a(toks: Any) -> Any:
        outs = []
        for t in range(192, 192 + steps):
            prefix = toks[:, : t + 1]
            k, v = wk(prefix), wv(prefix)  # CULPRIT
            outs.append(F.scaled_dot_product_attention(toks[:, t : t + 1], k, v))
        return torch.cat(outs, dim=1)

    def b(toks: Any) -> Any:
        k_cache, v_cache = wk(toks[:, :192]), wv(toks[:, :192])
        outs = []
        for t in range(192, 192 + steps):
            cur = toks[:, t : t + 1]
            k_cache = torch.cat([k_cache, wk(cur)], dim=1)
            v_cache = torch.cat([v_cache, wv(cur)], dim=1)
            outs.append(F.scaled_dot_product_attention(cur, k_cache, v_cache))
        return torch.cat(outs, dim=1)

    return a, b, (toks,), None


# ----------------------------------------------------------------------------------------------------------
# misconfiguration


def _float64(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    d, n = (256, 512) if dev.type == "cpu" else (2048, 8192)
    w32 = [torch.randn(d, d, device=dev) / math.sqrt(d) for _ in range(3)]
    w64 = [w.double() for w in w32]

    def mlp(x: Any) -> Any:
        dt = torch.get_default_dtype()
        ws = w64 if dt == torch.float64 else w32
        h = x.to(dt)
        for w in ws:
            h = torch.tanh(h @ w)  # CULPRIT
        return h

    a = configured(mlp, default_dtype="float64")
    b = configured(mlp, default_dtype="float32")
    return a, b, (torch.randn(n, d, device=dev),), None


def _threads(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)

    def chain(y: Any) -> Any:
        for _ in range(6):
            y = y * 1.0001 + 0.1  # CULPRIT
        return y

    a = configured(chain, num_threads=2)
    b = configured(chain, num_threads=1)
    return a, b, (torch.randn(200_000, device=dev),), None


def _conv_layout(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    conv_a = torch.nn.Conv2d(64, 64, 3, padding=1, groups=64).to(dev)
    conv_b = torch.nn.Conv2d(64, 64, 3, padding=1, groups=64).to(dev)
    conv_b.load_state_dict(conv_a.state_dict())
    conv_b = conv_b.to(memory_format=torch.channels_last)
    x = torch.randn(4, 64, 32, 32, device=dev)

    def a(x: Any) -> Any:
        return conv_a(x)  # CULPRIT

    def b(x: Any) -> Any:
        return conv_b(x)

    return a, b, (x,), (x.contiguous(memory_format=torch.channels_last),)


def _tf32(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    d = 2048 if dev.type == "cpu" else 8192
    w = [torch.randn(d, d, device=dev) / math.sqrt(d) for _ in range(4)]

    def mlp(x: Any) -> Any:
        for m in w:
            x = torch.relu(x @ m)  # CULPRIT
        return x

    a = configured(mlp, **{"cuda.matmul.allow_tf32": False, "float32_matmul_precision": "highest"})
    b = configured(mlp, **{"cuda.matmul.allow_tf32": True, "float32_matmul_precision": "high"})
    return a, b, (torch.randn(d, d, device=dev),), None


# ----------------------------------------------------------------------------------------------------------
# controls and trade-off


def _identical(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    d, n = (256, 128) if dev.type == "cpu" else (1024, 8192)
    fc1 = torch.nn.Linear(d, 2 * d).to(dev)
    fc2 = torch.nn.Linear(2 * d, d).to(dev)

    def block(x: Any) -> Any:
        return x + fc2(torch.relu(fc1(torch.layer_norm(x, (d,)))))

    return block, block, (torch.randn(n, d, device=dev),), None


def _addmm(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    d, n = (1024, 256) if dev.type == "cpu" else (4096, 8192)
    w = torch.randn(d, d, device=dev) / math.sqrt(d)
    bias = torch.randn(d, device=dev)

    def a(x: Any) -> Any:
        return torch.addmm(bias, x, w)

    def b(x: Any) -> Any:
        return torch.mm(x, w) + bias

    return a, b, (torch.randn(n, d, device=dev),), None


def _lowrank(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    u, v = torch.randn(512, 16, device=dev), torch.randn(16, 512, device=dev)
    w = (u @ v) / 16 + 0.015 * torch.randn(512, 512, device=dev)
    uu, s, vv = torch.linalg.svd(w)
    left = (uu[:, :16] * s[:16]).contiguous()
    right = vv[:16].contiguous()

    def a(x: Any) -> Any:
        return x @ w

    def b(x: Any) -> Any:
        return (x @ left) @ right

    return a, b, (torch.randn(512, 512, device=dev),), None


# ----------------------------------------------------------------------------------------------------------
# training steps (forward, loss, backward, optimizer step; parameters and optimizer state are restored
# between every measured call, so each side always starts from the same weights)


def _mlp(width: int, depth: int, d_in: int, d_out: int) -> Any:
    import torch

    layers: list[Any] = []
    d = d_in
    for _ in range(depth):
        layers += [torch.nn.Linear(d, width), torch.nn.ReLU()]
        d = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(d, d_out))


def _train_loss(device: str) -> tuple[Any, Any, Any, Any]:
    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    model = _mlp(128, 2, 64, 512).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(256, 64, device=dev), torch.randint(0, 512, (256,), device=dev)

    def a(x: Any, y: Any) -> Any:
        opt.zero_grad()
        logits = model(x)
        logp = torch.log(torch.softmax(logits, dim=-1))  # CULPRIT  (two passes where log_softmax is one)
        loss = -(F.one_hot(y, logits.shape[-1]) * logp).sum(-1).mean()  # CULPRIT  (a dense one-hot target)
        loss.backward()
        opt.step()
        return loss.detach()

    def b(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return a, b, (x, y), None


def _train_optimizer(device: str) -> tuple[Any, Any, Any, Any]:
    import copy

    import torch

    dev = _gen(device)
    model_a = _mlp(32, 12, 32, 8).to(dev)  # 26 small tensors: per-tensor optimizer ops dominate
    model_b = copy.deepcopy(model_a)
    opt_a = torch.optim.Adam(model_a.parameters(), lr=1e-3, foreach=False)
    opt_b = torch.optim.Adam(model_b.parameters(), lr=1e-3, foreach=True)
    x, y = torch.randn(16, 32, device=dev), torch.randn(16, 8, device=dev)

    def a(x: Any, y: Any) -> Any:
        opt_a.zero_grad()
        loss = torch.nn.functional.mse_loss(model_a(x), y)
        loss.backward()
        opt_a.step()  # CULPRIT
        return loss.detach()

    def b(x: Any, y: Any) -> Any:
        opt_b.zero_grad()
        loss = torch.nn.functional.mse_loss(model_b(x), y)
        loss.backward()
        opt_b.step()
        return loss.detach()

    return a, b, (x, y), None


def _train_accum_clone(device: str) -> tuple[Any, Any, Any, Any]:
    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    model = _mlp(256, 2, 64, 64).to(dev)
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    x, y = torch.randn(2, 8, 64, device=dev), torch.randn(2, 8, 64, device=dev)

    def a(x: Any, y: Any) -> Any:
        opt.zero_grad()
        acc = [torch.zeros_like(p) for p in params]
        total = 0.0
        for xb, yb in zip(x, y):
            loss = F.mse_loss(model(xb), yb) / x.shape[0]
            loss.backward()
            for s, p in zip(acc, params):
                s.add_(p.grad.clone())  # CULPRIT
                p.grad = None  # CULPRIT
            total = total + loss.detach()
        for s, p in zip(acc, params):
            p.grad = s
        opt.step()
        return total

    def b(x: Any, y: Any) -> Any:
        opt.zero_grad()
        total = 0.0
        for xb, yb in zip(x, y):
            loss = F.mse_loss(model(xb), yb) / x.shape[0]
            loss.backward()
            total = total + loss.detach()
        opt.step()
        return total

    return a, b, (x, y), None


def _train_zero_grad(device: str) -> tuple[Any, Any, Any, Any]:
    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    model = _mlp(512, 3, 64, 64).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(8, 64, device=dev), torch.randn(8, 64, device=dev)
    model(x).sum().backward()  # gradients exist before the step, as in the middle of training

    def a(x: Any, y: Any) -> Any:
        opt.zero_grad(set_to_none=False)  # CULPRIT
        loss = F.mse_loss(model(x), y)
        loss.backward()  # CULPRIT  (adds into the zeroed .grad instead of taking the new gradient over)
        opt.step()
        return loss.detach()

    def b(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return a, b, (x, y), None


def _train_double_backward(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    model = _mlp(64, 2, 16, 1).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(8, 16, device=dev)

    def a(x: Any) -> Any:  # gradient penalty, one autograd.grad per sample
        opt.zero_grad()
        x = x.detach().requires_grad_(True)
        y = model(x).squeeze(-1)
        rows = [torch.autograd.grad(y[i], x, create_graph=True)[0][i] for i in range(x.shape[0])]  # CULPRIT
        penalty = ((torch.stack(rows).norm(dim=-1) - 1) ** 2).mean()
        penalty.backward()
        opt.step()
        return penalty.detach()

    def b(x: Any) -> Any:
        opt.zero_grad()
        x = x.detach().requires_grad_(True)
        y = model(x).squeeze(-1)
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        penalty = ((g.norm(dim=-1) - 1) ** 2).mean()
        penalty.backward()
        opt.step()
        return penalty.detach()

    return a, b, (x,), None


def _train_bf16(device: str) -> tuple[Any, Any, Any, Any]:
    import copy

    import torch
    import torch.nn.functional as F

    dev = _gen(device)
    model_a = _mlp(256, 2, 256, 256).to(dev)
    model_b = copy.deepcopy(model_a)
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.01)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.01)
    x, y = torch.randn(256, 256, device=dev), torch.randn(256, 256, device=dev)

    def a(x: Any, y: Any) -> Any:
        opt_a.zero_grad()
        loss = F.mse_loss(model_a(x), y)
        loss.backward()
        opt_a.step()
        return loss.detach()

    def b(x: Any, y: Any) -> Any:
        opt_b.zero_grad()
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            loss = F.mse_loss(model_b(x).float(), y)
        loss.backward()
        opt_b.step()
        return loss.detach()

    return a, b, (x, y), None


# ----------------------------------------------------------------------------------------------------------
# real libraries (transformers models from configs with random weights, nothing downloaded; torch.nn)


def _hf_attention(arch: str) -> Callable[[str], tuple[Any, Any, Any, Any]]:
    def build(device: str) -> tuple[Any, Any, Any, Any]:
        import copy

        import torch
        import transformers

        dev = _gen(device)
        if arch == "llama":
            cfg = transformers.LlamaConfig(
                vocab_size=1000,
                hidden_size=128,
                intermediate_size=256,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=4,
                max_position_embeddings=256,
            )
            cls = transformers.LlamaModel
        else:
            cfg = transformers.GPT2Config(
                vocab_size=1000, n_embd=128, n_layer=2, n_head=4, n_positions=256, bos_token_id=0, eos_token_id=0
            )
            cls = transformers.GPT2Model
        models = []
        for impl in ("eager", "sdpa"):
            c = copy.deepcopy(cfg)
            c._attn_implementation = impl
            models.append(cls(c).to(dev).eval())
        models[1].load_state_dict(models[0].state_dict())
        eager, sdpa = models

        def a(ids: Any) -> Any:
            with torch.no_grad():
                return eager(ids).last_hidden_state

        def b(ids: Any) -> Any:
            with torch.no_grad():
                return sdpa(ids).last_hidden_state

        return a, b, (torch.randint(0, 1000, (2, 128), device=dev),), None

    build.__name__ = f"_hf_attention_{arch}"
    return build


def _encoder_slow_path(device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    dev = _gen(device)
    layer = torch.nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True).to(dev).eval()

    def a(x: Any) -> Any:
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            with torch.no_grad():
                return layer(x)  # CULPRIT  (the slow path: separate projections, attention, norms)
        finally:
            torch.backends.mha.set_fastpath_enabled(True)

    def b(x: Any) -> Any:
        with torch.no_grad():
            return layer(x)

    return a, b, (torch.randn(4, 64, 128, device=dev),), None


CASES: dict[str, Case] = {
    c.id: c
    for c in [
        Case("gelu-unfused", "hf-39073", "waste", "api_misuse", None, _gelu, "tanh-GELU as 8 ops vs F.gelu", True),
        Case(
            "attn-naive",
            "vllm-20174 / hf-39072",
            "waste",
            "api_misuse",
            None,
            _attention,
            "QK^T, softmax, PV with copies vs SDPA",
            True,
        ),
        Case(
            "ce-permuted",
            "pytorch-141822",
            "waste",
            "api_misuse",
            None,
            _cross_entropy,
            "cross_entropy on a (N, C, L) permuted view vs flat (N*L, C)",
        ),
        Case(
            "ln-channels-first",
            "pytorch-76012",
            "waste",
            "api_misuse",
            None,
            _layernorm_channels,
            "channel normalisation by mean/var passes vs one layer_norm",
        ),
        Case("topk-by-sort", "sglang-5128", "waste", "api_misuse", None, _topk, "full sort then slice vs topk"),
        Case("stft-by-unfold", "jax-28614", "waste", "api_misuse", None, _stft, "framing + DFT matmuls vs torch.stft"),
        Case(
            "eig-general",
            "hf-34570",
            "waste",
            "api_misuse",
            None,
            _eig,
            "eigvals on a symmetric matrix vs eigvalsh (unordered complex vs ascending real: compared sorted)",
            canonicalize="sort",
        ),
        Case(
            "repeat-kv-noop",
            "megatron-543",
            "waste",
            "redundant",
            None,
            _repeat_kv,
            "repeat_interleave(1) on K and V before SDPA",
        ),
        Case(
            "concat-split-per-block",
            "diffusers-12131",
            "waste",
            "redundant",
            None,
            _concat_split,
            "cat/split of encoder and hidden states in every block",
        ),
        Case(
            "lmhead-all-tokens",
            "hf-38977",
            "waste",
            "redundant",
            None,
            _lm_head,
            "LM head on every token, then take the last",
        ),
        Case(
            "expm-all-branches",
            "jax-9239 / jax-5647",
            "waste",
            "redundant",
            None,
            _expm_branches,
            "compute every series branch, then select one",
        ),
        Case(
            "count-nonzero-copy",
            "tf-60772",
            "waste",
            "redundant",
            None,
            _count_nonzero,
            "ne + int64 copy of a bool mask before sum",
        ),
        Case(
            "kv-recompute",
            "decode without KV cache",
            "waste",
            "redundant",
            None,
            _kv_recompute,
            "recompute K and V of the whole prefix every step",
        ),
        Case(
            "dtype-f64",
            "sd-279 / hf-14450 / pytorch-153195",
            "waste",
            "misconfig",
            "default_dtype",
            _float64,
            "the same MLP under default dtype float64",
            True,
        ),
        Case(
            "threads-oversub",
            "pytorch-28224",
            "waste",
            "misconfig",
            "num_threads",
            _threads,
            "small element-wise ops with 2 intra-op threads",
        ),
        Case(
            "conv-layout",
            "pytorch-157334",
            "waste",
            "misconfig",
            "memory_format",
            _conv_layout,
            "depthwise conv2d in NCHW vs channels_last",
        ),
        Case(
            "tf32-off",
            "hf-14450 / sd-279",
            "waste",
            "misconfig",
            "cuda.matmul.allow_tf32",
            _tf32,
            "fp32 matmuls without TF32 (GPU only; no effect on CPU)",
            True,
        ),
        Case("control-identical", "-", "control", None, None, _identical, "A vs A", True),
        Case(
            "control-addmm",
            "pytorch-141210",
            "control",
            None,
            None,
            _addmm,
            "addmm vs mm + add (no CPU difference)",
            True,
        ),
        Case("tradeoff-lowrank", "-", "tradeoff", None, None, _lowrank, "rank-16 approximation: cheaper but ~2-4% off"),
        Case(
            "train-loss-manual",
            "pytorch-141822 (training)",
            "waste",
            "api_misuse",
            None,
            _train_loss,
            "training step: log(softmax) times a one-hot target vs F.cross_entropy",
        ),
        Case(
            "train-optim-unfused",
            "optimizer foreach/fused",
            "waste",
            "api_misuse",
            None,
            _train_optimizer,
            "training step: Adam(foreach=False) vs Adam(foreach=True) on 26 small tensors",
        ),
        Case(
            "train-accum-clone",
            "gradient accumulation",
            "waste",
            "redundant",
            None,
            _train_accum_clone,
            "training step: 2 micro-batches accumulated through a cloned .grad vs autograd's own accumulation",
        ),
        Case(
            "train-zero-grad-keep",
            "zero_grad(set_to_none)",
            "waste",
            "redundant",
            None,
            _train_zero_grad,
            "training step: zero_grad(set_to_none=False) (zero_ + add_ per parameter) vs the default",
        ),
        Case(
            "train-double-backward",
            "gradient penalty",
            "waste",
            "redundant",
            None,
            _train_double_backward,
            "training step: gradient penalty with one autograd.grad per sample vs one batched call",
        ),
        Case(
            "hf-llama-eager-attn",
            "hf-39072 (transformers)",
            "waste",
            "api_misuse",
            None,
            _hf_attention("llama"),
            "transformers LlamaModel (2 layers, 2x128 tokens): attn_implementation eager vs sdpa",
            requires="transformers",
            culprit_sites=(
                "modeling_llama.py:eager_attention_forward",
                "masking_utils.py:sdpa_mask",
                "masking_utils.py:eager_mask",
                "masking_utils.py:causal_mask_function",
            ),
        ),
        Case(
            "hf-gpt2-eager-attn",
            "hf-39072 (transformers)",
            "waste",
            "api_misuse",
            None,
            _hf_attention("gpt2"),
            "transformers GPT2Model (2 layers, 2x128 tokens): attn_implementation eager vs sdpa",
            requires="transformers",
            culprit_sites=(
                "modeling_gpt2.py:eager_attention_forward",
                "masking_utils.py:sdpa_mask",
                "masking_utils.py:eager_mask",
                "masking_utils.py:causal_mask_function",
            ),
        ),
        Case(
            "nn-encoder-slow-path",
            "torch.nn fast path",
            "waste",
            "api_misuse",
            None,
            _encoder_slow_path,
            "nn.TransformerEncoderLayer in eval: fast path disabled vs enabled",
        ),
        Case(
            "tradeoff-train-bf16",
            "mixed precision",
            "tradeoff",
            None,
            None,
            _train_bf16,
            "training step: fp32 vs CPU bfloat16 autocast (outputs differ: never waste)",
        ),
    ]
}

#: Cases that only make sense on a GPU (skipped on CPU).
GPU_ONLY = frozenset({"tf32-off"})

# Real-library pairs (transformers, torch.nn) live in cases_real.py; ids already above are kept.
from opgraph.energy.cases_real import real_cases  # noqa: E402  (cases_real imports Case from here lazily)

for _cid, _case in real_cases().items():
    CASES.setdefault(_cid, _case)
