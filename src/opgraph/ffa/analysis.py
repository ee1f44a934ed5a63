"""Whole-run analyses shared by the CLI and the demo: evaluate a trained pair, compare runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from opgraph.ffa.errors import FFAError

__all__ = ["compare_runs", "evaluate_pair", "occlusion_mask"]


def occlusion_mask(shape: Sequence[int], *, fraction: float = 0.5, side: str = "bottom") -> torch.Tensor:
    """A ``(1, C, H, W)`` mask hiding a band of the image (0 = occluded): ``bottom``, ``top``, ``left``, ``right``."""
    c, h, w = shape
    m = torch.ones(1, c, h, w)
    k = int(round(fraction * (h if side in ("top", "bottom") else w)))
    if side == "bottom":
        m[..., h - k :, :] = 0
    elif side == "top":
        m[..., :k, :] = 0
    elif side == "left":
        m[..., :, :k] = 0
    elif side == "right":
        m[..., :, w - k :] = 0
    else:
        raise FFAError(f"side={side!r} must be bottom, top, left or right")
    return m


def evaluate_pair(
    pair: Any,
    data: Any,
    *,
    noise: Sequence[float] = (0.0, 0.1, 0.5, 1.0),
    iterations: int = 3,
    fgsm_eps: Sequence[float] = (0.05, 0.1, 0.2),
    n: int = 512,
    n_images: int = 8,
    inference: bool = True,
    max_steps: int = 200,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate a trained pair: metrics, robustness, and visual inference.

    ``metrics`` come from :func:`opgraph.ffa.evaluation.evaluate`, the function training reports each epoch with;
    pass the run's ``eval_batch_size`` as ``batch_size`` (BatchNorm uses batch statistics) to get its numbers.

    Returns:
        ``(numbers, figures)``: a JSON-able dict (``metrics``, ``alignment_deg``, ``robustness``, ``inference``)
        and ``{name: (matplotlib Figure, caption)}``.
    """
    from opgraph.ffa import figures
    from opgraph.ffa.evaluation import evaluate, robustness
    from opgraph.ffa.inference import denoise, imagine, inpaint

    metrics = evaluate(pair, data, batch_size=batch_size, n=None)
    rob = robustness(pair, data, noise=noise, iterations=iterations, fgsm_eps=fgsm_eps, n=n, seed=seed)
    out: dict[str, Any] = {
        "method": pair.method,
        "metrics": metrics,
        "alignment_deg": pair.alignment_deg(),
        "robustness": rob.to_dict(),
    }
    figs: dict[str, Any] = {}
    dev = next(pair.parameters()).device
    # images are processed in batches of 64 so that BatchNorm's batch statistics resemble training's
    x = torch.as_tensor(data.x_test[:64]).to(dev)
    with torch.no_grad():
        pair.eval()
        pair.sync_decoder()
        rec = pair.reconstruct(x).cpu().numpy()
    figs["reconstructions"] = (
        figures.image_grid({"input": data.x_test[:n_images], "B(F(x))": rec[:n_images]}, title="reconstructions"),
        "Test images and their reconstruction by the feedback network.",
    )
    figs["robustness"] = (
        figures.robustness_figure({str(pair.method): rob}),
        "Accuracy on noisy / FGSM images after 0-3 iterations of x <- B(F(x)) (paper Fig. 3).",
    )
    if inference:
        gen = torch.Generator().manual_seed(seed)
        noisy = (x + np.sqrt(0.5) * torch.randn(x.shape, generator=gen).to(dev)).clamp(-1, 2)
        den = denoise(pair, noisy, max_steps=max_steps, seed=seed)
        mask = occlusion_mask(pair.input_shape)
        inp = inpaint(pair, x, mask, max_steps=max_steps, seed=seed)
        figs["denoise"] = (
            figures.image_grid(
                {
                    "clean": data.x_test[:n_images],
                    "noisy (var 0.5)": noisy.cpu().numpy()[:n_images],
                    "denoised": den.images[:n_images],
                },
                title="denoising",
            ),
            "Denoising with the Kadkhodaie-Simoncelli sampler and B(F(y)) as the denoiser.",
        )
        occluded = (x * mask.to(dev)).cpu().numpy()
        figs["inpaint"] = (
            figures.image_grid(
                {"clean": data.x_test[:n_images], "occluded": occluded[:n_images], "inpainted": inp.images[:n_images]},
                title="occlusion inpainting",
            ),
            "Inpainting the bottom half; visible pixels are kept.",
        )
        from opgraph.ffa.inference import class_prototypes

        rows = {}
        imag = {}
        protos = class_prototypes(pair, data)
        n_img = 4
        r = imagine(pair, list(range(pair.n_classes)), n=n_img, prototypes=protos, max_steps=max_steps, seed=seed)
        for k in range(pair.n_classes):
            rows[f"class {k}"] = r.images[k * n_img : (k + 1) * n_img]
            imag[k] = float((r.perceived_class[-1, k * n_img : (k + 1) * n_img] == k).mean())
        figs["imagine"] = (
            figures.image_grid(rows, title="imagination (class-conditioned sampling)"),
            "Class-conditioned generation from noise (latent pulled to the class prototype), one row per class.",
        )
        x_np = data.x_test[: len(x)]
        out["inference"] = {
            "denoise_corr_before": float(np.corrcoef(noisy.cpu().numpy().ravel(), x_np.ravel())[0, 1]),
            "denoise_corr_after": float(np.corrcoef(den.images.ravel(), x_np.ravel())[0, 1]),
            "denoise_steps": den.n_steps,
            "inpaint_corr_occluded_region": float(
                np.corrcoef(
                    inp.images[:, :, mask[0, 0].numpy() == 0].ravel(), x_np[:, :, mask[0, 0].numpy() == 0].ravel()
                )[0, 1]
            ),
            "imagine_perceived_as_target": imag,
        }
    return out, figs


def compare_runs(run_dirs: Sequence[str | Path]) -> tuple[list[dict[str, Any]], Any, Any]:
    """Read run folders and return ``(rows, learning-curve figure, accuracy-vs-reconstruction figure)``.

    Each row: ``run``, ``method``, ``seed``, ``epochs``, ``test_acc`` / ``recon_corr`` (last epoch),
    ``best_acc`` / ``best_corr`` (max over epochs), ``align_mean_deg``, ``wall_s`` (sum of epoch times).
    """
    from opgraph.ffa import figures
    from opgraph.ffa.training import MANIFEST, verify_run

    rows, curves = [], {}
    for d in run_dirs:
        p = Path(d)
        if (p / MANIFEST).is_file():
            verify_run(p)  # a folder mixing two runs' files is refused; one without a manifest (older) is read as is
        try:
            hist = json.loads((p / "history.json").read_text())
            cfg = json.loads((p / "config.json").read_text())
        except FileNotFoundError as exc:
            raise FFAError(
                f"{p} is not a run folder (no history.json/config.json); give folders written by "
                "`opgraph ffa train --out`"
            ) from exc
        if not hist:
            continue
        last = hist[-1]
        label = f"{cfg['method']} s{cfg['seed']} ({p.name})"
        curves[label] = hist
        rows.append(
            {
                "run": str(p),
                "method": cfg["method"],
                "seed": cfg["seed"],
                "epochs": last["epoch"],
                "test_acc": last["test_acc"],
                "recon_corr": last["recon_corr"],
                "best_acc": max(h["test_acc"] for h in hist),
                "best_corr": max(h["recon_corr"] for h in hist),
                "align_mean_deg": last["align_mean_deg"],
                "wall_s": sum(h["epoch_s"] for h in hist),
            }
        )
    if not rows:
        raise FFAError("no runs with at least one epoch were given")
    return rows, figures.learning_curves(curves), figures.accuracy_vs_reconstruction(rows)
