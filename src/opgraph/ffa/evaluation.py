"""Evaluation: accuracy, reconstruction correlation, alignment, robustness to noise and FGSM through the F->B loop."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from opgraph.ffa.errors import FFAError

__all__ = ["RobustnessResult", "evaluate", "fgsm", "pearson", "robustness"]


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation over all elements of two tensors (the paper's reconstruction metric)."""
    a = a.detach().flatten().double()
    b = b.detach().flatten().double()
    a = a - a.mean()
    b = b - b.mean()
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else 0.0


def _as_xy(pair: Any, data: Any, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    dev = next(pair.parameters()).device
    if hasattr(data, "x_test"):
        x, y = data.x_test, data.y_test
    else:
        x, y = data
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y, dtype=torch.int64)
    if n is not None:
        x, y = x[:n], y[:n]
    if tuple(x.shape[1:]) != tuple(pair.input_shape):
        raise FFAError(
            f"images have shape {tuple(x.shape[1:])}, the model expects {pair.input_shape}; "
            "load the data with image_size= matching the model"
        )
    return x.to(dev), y.to(dev)


@torch.no_grad()
def evaluate(pair: Any, data: Any, *, batch_size: int = 256, n: int | None = None) -> dict[str, float]:
    """Test accuracy, reconstruction Pearson correlation and MSE of ``B(F(x))`` against the clean images.

    Args:
        pair: A :class:`~opgraph.ffa.mirror.Pair`.
        data: A :class:`~opgraph.ffa.data.Dataset` (its test split) or ``(x, y)``.
        batch_size: Evaluation batch (BatchNorm uses batch statistics, as in the paper).
        n: Use only the first ``n`` images.

    Returns:
        ``{"test_acc": %, "recon_corr": r, "recon_mse": ...}``; the correlation is computed over all pixels of
        each batch and averaged over batches weighted by their size.
    """
    x, y = _as_xy(pair, data, n)
    was = pair.training
    pair.eval()
    pair.sync_decoder()
    correct, corr_sum, mse_sum, total = 0, 0.0, 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        z = pair.F.features(xb)
        correct += int((pair.F.classify(z).argmax(1) == yb).sum())
        rec = pair.B(z)
        corr_sum += pearson(rec, xb) * len(xb)
        mse_sum += float(F.mse_loss(rec, xb)) * len(xb)
        total += len(xb)
    pair.train(was)
    return {"test_acc": 100.0 * correct / total, "recon_corr": corr_sum / total, "recon_mse": mse_sum / total}


def fgsm(pair: Any, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast-gradient-sign adversarial images ``x + eps * sign(dCE/dx)`` with F's exact (autograd) gradient.

    The attack always uses the true gradient of F (white box), whatever feedback F was trained with.
    """
    modes = [(m, m.fb_mode) for m, _ in pair.twin_layers()]
    twins = {id(m): m._twin for m, _ in modes}
    try:
        for m, _ in modes:
            m.fb_mode = "exact"
        xa = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(pair.F(xa), y)
            (g,) = torch.autograd.grad(loss, xa)
    finally:
        for m, mode in modes:
            m.fb_mode = mode
            object.__setattr__(m, "_twin", twins[id(m)])
    return (x + eps * g.sign()).detach()


@dataclass
class RobustnessResult:
    """Accuracy (%) after 0..``iterations`` passes of ``x <- B(F(x))`` on perturbed test images.

    Attributes:
        noise: Gaussian noise variances (the paper's ``sigma2``).
        noise_acc: ``(len(noise), iterations + 1)`` accuracies.
        eps: FGSM step sizes.
        fgsm_acc: ``(len(eps), iterations + 1)`` accuracies.
        iterations: Number of F->B iterations.
        method: Training method of the pair.
    """

    noise: list[float]
    noise_acc: np.ndarray
    eps: list[float] = field(default_factory=list)
    fgsm_acc: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    iterations: int = 0
    method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "noise": self.noise,
            "noise_acc": self.noise_acc.tolist(),
            "eps": self.eps,
            "fgsm_acc": self.fgsm_acc.tolist(),
            "iterations": self.iterations,
            "method": self.method,
        }

    def __repr__(self) -> str:
        rows = [f"RobustnessResult(method={self.method!r}) accuracy % after 0..{self.iterations} F->B iterations"]
        for v, accs in zip(self.noise, self.noise_acc, strict=True):
            rows.append(f"  noise var {v:<6g}: " + "  ".join(f"{a:6.2f}" for a in accs))
        for e, accs in zip(self.eps, self.fgsm_acc, strict=True):
            rows.append(f"  FGSM eps  {e:<6g}: " + "  ".join(f"{a:6.2f}" for a in accs))
        return "\n".join(rows)

    def plot(self) -> Any:
        """Figure: accuracy vs. noise (and FGSM eps), one line per iteration count."""
        from opgraph.ffa.figures import robustness_figure

        return robustness_figure({self.method or "model": self})


@torch.no_grad()
def _acc_iter(pair: Any, x: torch.Tensor, y: torch.Tensor, iterations: int, batch_size: int) -> list[float]:
    correct = [0] * (iterations + 1)
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        for it in range(iterations + 1):
            z = pair.F.features(xb)
            correct[it] += int((pair.F.classify(z).argmax(1) == yb).sum())
            if it < iterations:
                xb = pair.B(z)
    return [100.0 * c / len(x) for c in correct]


def robustness(
    pair: Any,
    data: Any,
    noise: Sequence[float] = (0.0, 0.1, 0.5, 1.0),
    iterations: int = 3,
    *,
    fgsm_eps: Sequence[float] = (),
    n: int | None = 1000,
    batch_size: int = 256,
    seed: int = 0,
) -> RobustnessResult:
    """Accuracy on noisy / adversarial test images after 0..``iterations`` passes of ``x <- B(F(x))``.

    Args:
        pair: The trained pair.
        data: A Dataset (test split) or ``(x, y)``.
        noise: Variances of additive Gaussian noise (0.1 is the training noise).
        iterations: Largest number of F->B iterations.
        fgsm_eps: FGSM step sizes (pixel units, images in [0, 1]); the attack uses F's exact gradient.
        n: Number of test images (None: all).
        batch_size: Batch size (BatchNorm uses batch statistics).
        seed: Seed of the noise.

    Returns:
        A :class:`RobustnessResult`.
    """
    if iterations < 0:
        raise FFAError(f"iterations={iterations} must be >= 0")
    x, y = _as_xy(pair, data, n)
    was = pair.training
    pair.eval()
    pair.sync_decoder()
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    rows = []
    for v in noise:
        if v < 0:
            raise FFAError(f"noise variance {v} must be >= 0")
        xn = x + math.sqrt(v) * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        rows.append(_acc_iter(pair, xn, y, iterations, batch_size))
    frows = []
    for e in fgsm_eps:
        xa = torch.cat(
            [fgsm(pair, x[i : i + batch_size], y[i : i + batch_size], e) for i in range(0, len(x), batch_size)]
        )
        frows.append(_acc_iter(pair, xa, y, iterations, batch_size))
    pair.train(was)
    return RobustnessResult(
        list(map(float, noise)),
        np.asarray(rows),
        list(map(float, fgsm_eps)),
        np.asarray(frows).reshape(len(frows), iterations + 1),
        iterations,
        pair.method,
    )
