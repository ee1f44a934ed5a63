"""Visual inference with the feedback loop: denoising, inpainting, hallucination and imagination.

All four use the coarse-to-fine stochastic sampler of Kadkhodaie & Simoncelli (2021), with the FFA loop
``x̂(y) = B(F(y))`` as the denoiser and residual ``f(y) = y - x̂(y)``::

    y0 ~ N(0.5 (1 - m) + m x_c, sigma0^2);  t = 1
    while sigma > sigma_L:
        h = h0 t / (1 + h0 (t - 1))
        d = (1 - m) f(y) + m (y - x_c)          # m: known-pixel mask (0 for pure sampling)
        sigma = ||d|| / sqrt(N)
        gamma = sigma sqrt((1 - beta h)^2 - (1 - h)^2)
        y = y - h d + gamma z,  z ~ N(0, I)
    return x̂(y)

Imagination of class k (the paper's class-conditioned generation; how the authors inject the class is not in
their released code) uses the class-conditioned denoiser ``B(g_k(F(y)))``, where ``g_k`` pulls the latent towards
the mean latent of class k's training images (see :func:`imagine`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from opgraph.ffa.errors import FFAError

__all__ = ["InferenceResult", "class_prototypes", "denoise", "hallucinate", "imagine", "inpaint", "ks_sample"]


@dataclass
class InferenceResult:
    """Output of the sampler.

    Attributes:
        images: Final images ``(n, C, H, W)`` (numpy, float32).
        trajectory: Snapshots of ``x̂(y)`` every ``snapshot_every`` steps, ``(k, n, C, H, W)``.
        sigma: Effective noise level per step and image ``(steps, n)``.
        perceived_class: F's class of ``y`` per step ``(steps, n)``.
        confidence: Softmax probability of that class ``(steps, n)``.
        task: ``denoise``, ``inpaint``, ``hallucinate`` or ``imagine``.
        start: Starting images ``y0`` ``(n, C, H, W)``.
    """

    images: np.ndarray
    trajectory: np.ndarray
    sigma: np.ndarray
    perceived_class: np.ndarray
    confidence: np.ndarray
    task: str
    start: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_steps(self) -> int:
        """Number of sampler steps taken."""
        return int(self.sigma.shape[0])

    def __repr__(self) -> str:
        last = self.perceived_class[-1].tolist() if self.n_steps else []
        return f"InferenceResult(task={self.task!r}, n={len(self.images)}, steps={self.n_steps}, final classes={last})"

    def save(self, path: str) -> None:
        """Save all arrays to an ``.npz`` (atomically)."""
        import io

        from opgraph._base.fileio import atomic_write

        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            images=self.images,
            trajectory=self.trajectory,
            sigma=self.sigma,
            perceived_class=self.perceived_class,
            confidence=self.confidence,
            start=self.start,
        )
        atomic_write(path, buf.getvalue())

    def plot(self, n_cols: int = 8) -> Any:
        """Grid: start images, a few trajectory snapshots and the final images."""
        from opgraph.ffa.figures import image_grid

        rows = {"start": self.start[:n_cols]}
        k = len(self.trajectory)
        for j in sorted({k // 3, (2 * k) // 3}):
            if 0 < j < k:
                rows[f"snapshot {j}"] = self.trajectory[j][:n_cols]
        rows["final"] = self.images[:n_cols]
        return image_grid(rows, title=f"{self.task} ({self.n_steps} steps)")


def _class_mask(pair: Any, latent_shape: tuple[int, ...], k: int, device: torch.device) -> torch.Tensor:
    head, nc = pair.F.head, pair.n_classes
    if not 0 <= k < nc:
        raise FFAError(f"class_index={k} is out of range 0..{nc - 1}")
    c = torch.zeros(latent_shape[1:], device=device)
    if head == "identity":
        c.view(-1)[k] = 1.0
    elif head == "avgpool":
        c[k] = 1.0
    else:
        g = latent_shape[1] // nc
        c[k * g : (k + 1) * g] = 1.0
    return c


@torch.no_grad()
def ks_sample(
    pair: Any,
    n: int,
    *,
    known: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    start: torch.Tensor | None = None,
    class_index: int | None = None,
    strength: float = 0.5,
    condition: Any = None,
    sigma0: float = 1.0,
    sigma_l: float = 0.01,
    h0: float = 0.01,
    beta: float = 0.01,
    max_steps: int = 300,
    snapshot_every: int = 10,
    seed: int = 0,
    task: str = "sample",
) -> InferenceResult:
    """Kadkhodaie-Simoncelli sampler with ``B(F(y))`` as the denoiser (see the module docstring).

    Args:
        pair: Trained pair.
        n: Number of images.
        known: Known image content ``x_c`` (inpainting), shape ``(n, C, H, W)``.
        mask: 1 where ``known`` is observed, 0 where it is to be filled in.
        start: Start from these images instead of ``N(0.5, sigma0^2)`` noise (denoising).
        class_index: Class-conditioned denoiser by latent-channel scaling (see :func:`imagine`).
        strength: Conditioning strength in [0, 1].
        condition: A function ``latent -> latent`` applied before B (overrides ``class_index``).
        sigma0: Initial noise standard deviation.
        sigma_l: Stop when every image's effective noise is below this.
        h0: Initial step size.
        beta: Noise injection control (1: none, small: much).
        max_steps: Step limit.
        snapshot_every: Keep ``x̂(y)`` every this many steps.
        seed: Seed of the sampler's noise.
        task: Label stored in the result.
    """
    dev = next(pair.parameters()).device
    shape = (n, *pair.input_shape)
    gen = torch.Generator(device=dev).manual_seed(int(seed))

    def randn() -> torch.Tensor:
        return torch.randn(shape, generator=gen, device=dev)

    was = pair.training
    pair.eval()
    pair.sync_decoder()
    m = torch.zeros(shape, device=dev) if mask is None else torch.broadcast_to(mask.to(dev).float(), shape)
    xc = torch.zeros(shape, device=dev) if known is None else known.to(dev).float()
    cmask = None
    if class_index is not None:
        z0 = pair.F.features(torch.full((2, *pair.input_shape), 0.5, device=dev))
        cmask = _class_mask(pair, tuple(z0.shape), int(class_index), dev)

    def denoise_fn(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = pair.F.features(y)
        logits = pair.F.classify(z)
        if condition is not None:
            z = condition(z)
        elif cmask is not None:
            scale = z.abs().flatten(1).mean(1).view(-1, *([1] * (z.dim() - 1)))
            z = z * (cmask + (1 - strength) * (1 - cmask)) + strength * scale * cmask
        return pair.B(z), logits

    if start is not None:
        y = start.to(dev).float().clone()
    else:
        y = 0.5 * (1 - m) + m * xc + sigma0 * randn()
    y_start = y.clone()
    n_pix = float(np.prod(pair.input_shape))
    sigmas, classes, confs, snaps = [], [], [], []
    t = 1
    while t <= max_steps:
        xhat, logits = denoise_fn(y)
        p = torch.softmax(logits, 1)
        conf, cls = p.max(1)
        f = y - xhat
        d = (1 - m) * f + m * (y - xc)
        sigma = d.flatten(1).norm(dim=1) / math.sqrt(n_pix)
        sigmas.append(sigma.cpu().numpy())
        classes.append(cls.cpu().numpy())
        confs.append(conf.cpu().numpy())
        if (t - 1) % snapshot_every == 0:
            snaps.append(xhat.cpu().numpy())
        if bool((sigma <= sigma_l).all()):
            break
        h = h0 * t / (1 + h0 * (t - 1))
        gamma = sigma * math.sqrt(max((1 - beta * h) ** 2 - (1 - h) ** 2, 0.0))
        y = y - h * d + gamma.view(-1, 1, 1, 1) * randn()
        t += 1
    final, _ = denoise_fn(y)
    if known is not None and mask is not None:
        final = m * xc + (1 - m) * final
    pair.train(was)
    return InferenceResult(
        final.cpu().numpy(),
        np.asarray(snaps),
        np.asarray(sigmas),
        np.asarray(classes),
        np.asarray(confs),
        task,
        y_start.cpu().numpy(),
    )


def _images(pair: Any, x: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
    if t.dim() == len(pair.input_shape):
        t = t.unsqueeze(0)
    if tuple(t.shape[1:]) != tuple(pair.input_shape):
        raise FFAError(f"images have shape {tuple(t.shape[1:])}, the model expects {pair.input_shape}")
    return t


def denoise(pair: Any, x_noisy: Any, *, iterations: int | None = None, **kwargs: Any) -> InferenceResult:
    """Denoise images with the feedback loop.

    Args:
        pair: Trained pair.
        x_noisy: Noisy images ``(n, C, H, W)`` (or one image).
        iterations: If given, run exactly this many plain passes ``x <- B(F(x))`` instead of the sampler.
        **kwargs: Sampler settings (:func:`ks_sample`), e.g. ``beta=1.0`` for a noise-free descent.
    """
    x = _images(pair, x_noisy)
    if iterations is None:
        return ks_sample(pair, len(x), start=x, task="denoise", **kwargs)
    dev = next(pair.parameters()).device
    was = pair.training
    pair.eval()
    pair.sync_decoder()
    y = x.to(dev)
    snaps, classes, confs = [], [], []
    with torch.no_grad():
        for _ in range(int(iterations)):
            logits = pair.F(y)
            p = torch.softmax(logits, 1)
            confs.append(p.max(1).values.cpu().numpy())
            classes.append(p.argmax(1).cpu().numpy())
            y = pair.reconstruct(y)
            snaps.append(y.cpu().numpy())
    pair.train(was)
    return InferenceResult(
        y.cpu().numpy(),
        np.asarray(snaps),
        np.zeros((len(snaps), len(x))),
        np.asarray(classes),
        np.asarray(confs),
        "denoise",
        x.numpy(),
    )


def inpaint(pair: Any, x: Any, mask: Any, **kwargs: Any) -> InferenceResult:
    """Fill in the occluded pixels (``mask == 0``) of ``x`` consistently with the visible ones (``mask == 1``)."""
    xt = _images(pair, x)
    mt = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask, dtype=torch.float32)
    try:
        torch.broadcast_to(mt, xt.shape)
    except RuntimeError as exc:
        raise FFAError(f"mask of shape {tuple(mt.shape)} does not broadcast to the images {tuple(xt.shape)}") from exc
    return ks_sample(pair, len(xt), known=xt, mask=mt, task="inpaint", **kwargs)


def hallucinate(pair: Any, n: int = 8, **kwargs: Any) -> InferenceResult:
    """Generate ``n`` images from pure noise with the unconditioned feedback loop."""
    return ks_sample(pair, n, task="hallucinate", **kwargs)


@torch.no_grad()
def class_prototypes(pair: Any, data: Any, *, n: int = 2048, batch_size: int = 256) -> torch.Tensor:
    """Mean latent of each class over (up to ``n``) training images: ``(n_classes, *latent_shape)``."""
    dev = next(pair.parameters()).device
    x = data.x_train if hasattr(data, "x_train") else data[0]
    y = data.y_train if hasattr(data, "y_train") else data[1]
    x = torch.tensor(np.array(x[:n], dtype=np.float32))
    y = torch.tensor(np.array(y[:n], dtype=np.int64))
    was = pair.training
    pair.eval()
    z = torch.cat([pair.F.features(x[i : i + batch_size].to(dev)) for i in range(0, len(x), batch_size)])
    pair.train(was)
    y = y.to(dev)
    missing = [k for k in range(pair.n_classes) if not bool((y == k).any())]
    if missing:
        raise FFAError(f"data has no training images of classes {missing}; cannot build their prototypes")
    return torch.stack([z[y == k].mean(0) for k in range(pair.n_classes)])


def imagine(
    pair: Any,
    class_index: int | Sequence[int],
    n: int = 8,
    *,
    data: Any = None,
    prototypes: torch.Tensor | None = None,
    strength: float = 0.7,
    beta: float = 0.5,
    h0: float = 0.05,
    **kwargs: Any,
) -> InferenceResult:
    """Generate ``n`` images of class ``class_index`` from noise with the class-conditioned feedback loop.

    The denoiser is ``B(g_k(F(y)))``. With ``data`` (or ``prototypes``) ``g_k(z) = (1 - strength) z + strength
    z̄_k``, where ``z̄_k`` is the mean latent of class k's training images; without, the latent units of the other
    classes are scaled by ``1 - strength`` and class k's are raised (weaker). BatchNorm uses batch statistics, so
    a batch of one class alone would be normalised towards the average class: the sampler therefore always runs
    ``n`` samples of *every* class in one batch and returns those of ``class_index``.

    The sampler settings default to ``beta=0.5`` (less injected noise than the sampler's 0.01) and ``h0=0.05``,
    which steered the class far more reliably on the paper-size model (docs/benchmarks/ffa.md).

    Args:
        pair: Trained pair.
        class_index: Class to imagine, or several classes (their images are returned one class after another).
        n: Number of images per class.
        data: Training data for the class prototypes (a Dataset or ``(x, y)``).
        prototypes: Precomputed :func:`class_prototypes` (saves recomputing them for every class).
        strength: Conditioning strength in [0, 1].
        beta: Sampler noise control (see :func:`ks_sample`).
        h0: Sampler initial step size.
        **kwargs: Other sampler settings (:func:`ks_sample`).
    """
    nc = pair.n_classes
    wanted = [int(class_index)] if isinstance(class_index, int | np.integer) else [int(k) for k in class_index]
    for k in wanted:
        if not 0 <= k < nc:
            raise FFAError(f"class_index={k} is out of range 0..{nc - 1}")
    if not 0.0 <= strength <= 1.0:
        raise FFAError(f"strength={strength} must be in [0, 1]")
    dev = next(pair.parameters()).device
    if prototypes is None and data is not None:
        prototypes = class_prototypes(pair, data)
    ks = torch.arange(nc, device=dev).repeat_interleave(int(n))
    if prototypes is not None:
        protos = prototypes.to(dev)[ks]

        def condition(z: torch.Tensor) -> torch.Tensor:
            return (1 - strength) * z + strength * protos

    else:
        z0 = pair.F.features(torch.full((2, *pair.input_shape), 0.5, device=dev)).detach()
        masks = torch.stack([_class_mask(pair, tuple(z0.shape), k, dev) for k in range(nc)])[ks]

        def condition(z: torch.Tensor) -> torch.Tensor:
            scale = z.abs().flatten(1).mean(1).view(-1, *([1] * (z.dim() - 1)))
            return z * (masks + (1 - strength) * (1 - masks)) + strength * scale * masks

    res = ks_sample(
        pair, nc * int(n), condition=condition, task=f"imagine class {class_index}", beta=beta, h0=h0, **kwargs
    )
    rows = np.concatenate([np.arange(k * int(n), (k + 1) * int(n)) for k in wanted])
    traj = res.trajectory[:, rows] if res.trajectory.ndim > 1 else res.trajectory
    return InferenceResult(
        res.images[rows],
        traj,
        res.sigma[:, rows],
        res.perceived_class[:, rows],
        res.confidence[:, rows],
        res.task,
        res.start[rows],
    )
