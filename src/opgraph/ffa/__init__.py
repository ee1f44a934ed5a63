"""Feedback-Feedforward Alignment (Toosi & Issa, NeurIPS 2023).

A feedforward network F (classification) and its mirrored feedback network B (reconstruction) are trained
together, each using the other's weights as its credit-assignment path, so that B becomes a generative pathway
(denoising, inpainting, imagination) for free.

Example:
    >>> from opgraph import ffa
    >>> enc = ffa.models.asym_resnet10(in_channels=1, n_classes=10, width=16)
    >>> pair = ffa.mirror(enc)
    >>> res = ffa.train(pair, ffa.data.load("digits"), method="ffa", epochs=2, seed=0)  # doctest: +SKIP

torch is imported when a function or submodule that needs it is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "METHODS",
    "Pair",
    "TrainResult",
    "data",
    "denoise",
    "evaluate",
    "hallucinate",
    "imagine",
    "inpaint",
    "load_run",
    "mirror",
    "models",
    "robustness",
    "train",
    "train_many",
]

_LAZY = {
    "models": ("opgraph.ffa.models", None),
    "data": ("opgraph.ffa.data", None),
    "mirror": ("opgraph.ffa.mirroring", "mirror"),
    "Pair": ("opgraph.ffa.mirroring", "Pair"),
    "METHODS": ("opgraph.ffa.mirroring", "METHODS"),
    "train": ("opgraph.ffa.training", "train"),
    "train_many": ("opgraph.ffa.training", "train_many"),
    "load_run": ("opgraph.ffa.training", "load_run"),
    "TrainResult": ("opgraph.ffa.training", "TrainResult"),
    "evaluate": ("opgraph.ffa.evaluation", "evaluate"),
    "robustness": ("opgraph.ffa.evaluation", "robustness"),
    "denoise": ("opgraph.ffa.inference", "denoise"),
    "inpaint": ("opgraph.ffa.inference", "inpaint"),
    "imagine": ("opgraph.ffa.inference", "imagine"),
    "hallucinate": ("opgraph.ffa.inference", "hallucinate"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod_name, attr = _LAZY[name]
        mod = importlib.import_module(mod_name)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'opgraph.ffa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
