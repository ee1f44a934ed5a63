"""Figures (matplotlib, Agg): learning curves, accuracy vs. reconstruction, robustness, image grids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["accuracy_vs_reconstruction", "image_grid", "learning_curves", "robustness_figure"]

#: The paper's README numbers (MNIST, AsymResLNet10; max over epochs of the median of 5 seeds).
PAPER_MNIST = {"ffa": (98.87, 0.98), "bp": (99.47, 0.02), "fa": (97.51, 0.01)}


def _fig(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), layout="constrained")


def learning_curves(results: Mapping[str, Any]) -> Any:
    """Test accuracy, reconstruction correlation and mean alignment angle per epoch, one line per run.

    Args:
        results: ``{label: TrainResult or history list}``.
    """
    import matplotlib

    fig = _fig(12, 3.4)
    axes = fig.subplots(1, 3)
    palette = matplotlib.colormaps["tab20"].colors if len(results) > 10 else [f"C{i}" for i in range(10)]
    for i, (label, res) in enumerate(results.items()):
        hist = res.history if hasattr(res, "history") else res
        ep = [h["epoch"] for h in hist]
        c = palette[i % len(palette)]
        axes[0].plot(ep, [h["test_acc"] for h in hist], label=label, color=c)
        axes[1].plot(ep, [h["recon_corr"] for h in hist], label=label, color=c)
        axes[2].plot(ep, [h["align_mean_deg"] for h in hist], label=label, color=c)
    for ax, t in zip(axes, ("test accuracy (%)", "reconstruction Pearson r", "F vs feedback angle (deg)"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_title(t)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


def accuracy_vs_reconstruction(points: Sequence[Mapping[str, Any]], *, paper: bool = True) -> Any:
    """The paper's Fig. 2: test accuracy against reconstruction correlation, one marker per run.

    Args:
        points: Dicts with ``method``, ``test_acc`` and ``recon_corr``.
        paper: Also draw the paper's MNIST numbers (hollow markers).
    """
    fig = _fig(5, 4)
    ax = fig.subplots()
    colors: dict[str, Any] = {}
    import matplotlib

    cmap = list(matplotlib.colormaps["tab20"].colors)  # 20 distinct colours: one per run label
    for p in points:
        c = colors.setdefault(p["method"], cmap[len(colors) % len(cmap)])
        ax.scatter(
            p["recon_corr"],
            p["test_acc"],
            color=c,
            label=p["method"] if c not in ax.get_legend_handles_labels()[1] else None,
        )
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles, strict=True))
    if paper:
        for m, (acc, r) in PAPER_MNIST.items():
            ax.scatter(r, acc, facecolors="none", edgecolors=colors.get(m, "k"), s=80, marker="s")
            ax.annotate(f"paper {m}", (r, acc), fontsize=7, xytext=(4, -8), textcoords="offset points")
    ax.legend(seen.values(), seen.keys(), fontsize=8)
    ax.set_xlabel("reconstruction Pearson r")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs. reconstruction")
    ax.grid(alpha=0.3)
    return fig


def robustness_figure(results: Mapping[str, Any]) -> Any:
    """Accuracy against noise variance (and FGSM eps), one panel per kind, one line per (run, iterations)."""
    has_fgsm = any(len(r.eps) for r in results.values())
    fig = _fig(10 if has_fgsm else 5.5, 3.8)
    axes = np.atleast_1d(fig.subplots(1, 2 if has_fgsm else 1))
    for ci, (label, r) in enumerate(results.items()):
        for it in range(r.iterations + 1):
            style = ["-", "--", "-.", ":"][min(it, 3)]
            axes[0].plot(r.noise, r.noise_acc[:, it], style, color=f"C{ci}", label=f"{label} itr{it}")
            if has_fgsm and len(r.eps):
                axes[1].plot(r.eps, r.fgsm_acc[:, it], style, color=f"C{ci}", label=f"{label} itr{it}")
    axes[0].set_xlabel("Gaussian noise variance")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title("noise robustness after F->B iterations")
    axes[0].legend(fontsize=7, ncol=2)
    if has_fgsm:
        axes[1].set_xlabel("FGSM epsilon")
        axes[1].set_title("FGSM robustness")
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def image_grid(rows: Mapping[str, Any], *, title: str = "") -> Any:
    """A grid of images: one labelled row per entry (arrays ``(n, C, H, W)`` in [0, 1])."""
    rows = {k: np.asarray(v) for k, v in rows.items() if len(v)}
    n_cols = max(len(v) for v in rows.values())
    fig = _fig(1.1 * n_cols + 1, 1.15 * len(rows) + 0.4)
    axes = np.atleast_2d(fig.subplots(len(rows), n_cols, squeeze=False))
    for r, (label, imgs) in enumerate(rows.items()):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(imgs):
                img = imgs[c]
                if img.shape[0] == 1:
                    ax.imshow(np.clip(img[0], 0, 1), cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1))
        axes[r, 0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
