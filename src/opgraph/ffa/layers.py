"""Layers that carry a feedback pathway: ``FBLinear``, ``FBConv2d`` and ``FBConvTranspose2d``.

They are drop-in subclasses of the ``torch.nn`` layers (same parameters, same state-dict keys) with a feedback
*mode* that says which tensor the backward pass uses for the input gradient:

========== ==========================================================================================
``exact``  ordinary autograd (back-propagation)
``fixed``  a fixed random tensor ``weight_fa`` (feedback alignment; Kaiming-uniform, ``fan_out``)
``twin``   the twin layer's ``weight`` in the other network (FFA; Kolen-Pollack), transposed for Linear
``sign``   ``sign(weight) * mean|weight|`` (sign-symmetry, uSF with a magnitude scale)
========== ==========================================================================================
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from opgraph.ffa.errors import FFAError
from opgraph.ffa.functions import conv2d_fb, conv_transpose2d_fb, linear_fb

__all__ = [
    "FBConv2d",
    "FBConvTranspose2d",
    "FBLinear",
    "FeedbackMixin",
    "FEEDBACK_MODES",
    "fixed_random_like",
    "is_fb_layer",
]

FEEDBACK_MODES = ("exact", "fixed", "twin", "sign")


def fixed_random_like(weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fixed random tensor of ``weight``'s shape, as the authors initialise feedback weights.

    Kaiming-uniform with ``mode='fan_out'`` and ReLU gain (bound ``sqrt(6 / fan_out)``, ``fan_out = shape[0] *
    kernel size``), as ``init.kaiming_uniform_(weight_feedback, a=sqrt(5), mode='fan_out', nonlinearity='relu')``
    in the authors' ``modules/customized_modules_simple.py``. Drawn on the CPU (the same numbers on every device)
    and returned next to ``weight``.
    """
    shape = tuple(weight.shape)
    fan_out = shape[0] * (math.prod(shape[2:]) if len(shape) > 2 else 1)
    bound = math.sqrt(6.0 / fan_out)
    w = torch.empty(shape, dtype=weight.dtype).uniform_(-bound, bound, generator=generator)
    return w.to(weight.device)


class FeedbackMixin:
    """Feedback-mode bookkeeping shared by the three layer types."""

    weight: nn.Parameter
    fb_mode: str
    _twin: Any

    def _init_feedback(self) -> None:
        self.fb_mode = "exact"
        object.__setattr__(self, "_twin", None)

    def set_feedback(self, mode: str, twin: nn.Module | None = None, generator: torch.Generator | None = None) -> None:
        """Choose the tensor used for the input gradient.

        Args:
            mode: One of ``exact``, ``fixed``, ``twin``, ``sign``.
            twin: The twin layer of the other network (``mode="twin"`` only); kept as a plain reference, not a
                submodule, so that it is not part of this module's state dict.
            generator: Random generator for the fixed random feedback tensor (``mode="fixed"``).
        """
        if mode not in FEEDBACK_MODES:
            raise FFAError(f"feedback mode {mode!r} is unknown; use one of {', '.join(FEEDBACK_MODES)}")
        if mode == "twin":
            if twin is None:
                raise FFAError("feedback mode 'twin' needs the twin layer (twin=...)")
            if tuple(self._twin_view(twin.weight).shape) != tuple(self.weight.shape):
                raise FFAError(
                    f"twin weight shape {tuple(twin.weight.shape)} does not mirror {tuple(self.weight.shape)}"
                )
        if mode == "fixed" and getattr(self, "weight_fa", None) is None:
            w = fixed_random_like(self.weight.detach(), generator)
            self.register_buffer("weight_fa", w)  # type: ignore[attr-defined]
        self.fb_mode = mode
        object.__setattr__(self, "_twin", twin if mode == "twin" else None)

    def _twin_view(self, w: torch.Tensor) -> torch.Tensor:
        return w

    def feedback_weight(self) -> torch.Tensor | None:
        """The tensor the backward pass uses for the input gradient (None: exact autograd)."""
        mode = self.fb_mode
        if mode == "exact":
            return None
        if mode == "fixed":
            return self.weight_fa  # type: ignore[no-any-return, attr-defined]
        if mode == "twin":
            return self._twin_view(self._twin.weight).detach()
        w = self.weight.detach()
        return torch.sign(w) * w.abs().mean()


class FBLinear(FeedbackMixin, nn.Linear):
    """``nn.Linear`` with a feedback pathway; the twin of a Linear ``(out, in)`` is a Linear ``(in, out)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self._init_feedback()

    def _twin_view(self, w: torch.Tensor) -> torch.Tensor:
        return w.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        fb = self.feedback_weight()
        if fb is None:
            return super().forward(x)
        return linear_fb(x, self.weight, fb, self.bias)


class FBConv2d(FeedbackMixin, nn.Conv2d):
    """``nn.Conv2d`` with a feedback pathway (twin: a ``ConvTranspose2d`` whose weight has the same shape)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise FFAError("FBConv2d supports padding_mode='zeros' with integer padding only")
        self._init_feedback()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        fb = self.feedback_weight()
        if fb is None:
            return super().forward(x)
        return conv2d_fb(x, self.weight, fb, self.bias, self.stride, self.padding, self.dilation, self.groups)


class FBConvTranspose2d(FeedbackMixin, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with a feedback pathway (twin: the mirrored ``Conv2d``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise FFAError("FBConvTranspose2d supports groups=1 only")
        self._init_feedback()

    def forward(self, x: torch.Tensor, output_size: Any = None) -> torch.Tensor:  # noqa: D102
        fb = self.feedback_weight()
        if fb is None:
            return super().forward(x, output_size)
        return conv_transpose2d_fb(
            x, self.weight, fb, self.bias, self.stride, self.padding, self.output_padding, self.dilation
        )


def is_fb_layer(m: nn.Module) -> bool:
    """True for the three feedback layer types."""
    return isinstance(m, FBLinear | FBConv2d | FBConvTranspose2d)


def to_fb(m: nn.Module) -> nn.Module:
    """Return a feedback-layer copy of a plain ``nn.Linear``/``nn.Conv2d`` sharing its parameters' values."""
    if is_fb_layer(m):
        return m
    new: nn.Module
    if isinstance(m, nn.Linear):
        new = FBLinear(m.in_features, m.out_features, bias=m.bias is not None)
    elif isinstance(m, nn.Conv2d):
        new = FBConv2d(
            m.in_channels,
            m.out_channels,
            m.kernel_size,
            stride=m.stride,
            padding=m.padding,
            dilation=m.dilation,
            groups=m.groups,
            bias=m.bias is not None,
            padding_mode=m.padding_mode,
        )
    else:
        raise FFAError(f"cannot give {type(m).__name__} a feedback pathway; use Linear or Conv2d")
    new.load_state_dict(m.state_dict())
    return new.to(m.weight.device, m.weight.dtype)
