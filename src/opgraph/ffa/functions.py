"""Autograd functions whose input gradient uses a separate feedback weight.

Each function takes ``(x, weight, weight_feedback, bias, ...)``. The forward pass is the ordinary layer. In the
backward pass the weight (and bias) gradient is the ordinary local one (error times presynaptic activity), but the
gradient handed to the layer's *input* is computed with ``weight_feedback`` instead of ``weight``:

* back-propagation: ``weight_feedback`` is ``weight`` itself (exact gradient);
* feedback alignment (FA): a fixed random tensor of the same shape;
* feedback-feedforward alignment (FFA): the twin layer's trained weight in the other network.

``weight_feedback`` never receives a gradient (it is treated as a constant).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch.nn import grad as nn_grad

__all__ = ["Conv2dFB", "ConvTranspose2dFB", "LinearFB", "conv2d_fb", "conv_transpose2d_fb", "linear_fb"]


class LinearFB(torch.autograd.Function):
    """``y = x Wᵀ + b`` with ``dL/dx = dL/dy · W_feedback`` (``W_feedback`` has the shape of ``W``)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, weight_fb: torch.Tensor, bias: Any) -> Any:
        """Run the layer; save the input and the feedback weight."""
        ctx.save_for_backward(x, weight_fb)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:  # noqa: D102
        x, weight_fb = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ weight_fb.to(grad_out.dtype)
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        if ctx.needs_input_grad[1]:
            grad_w = g2.t() @ x.reshape(-1, x.shape[-1])
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_b = g2.sum(0)
        return grad_x, grad_w, None, grad_b


class Conv2dFB(torch.autograd.Function):
    """2-D convolution whose input gradient is the transposed convolution with ``W_feedback``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        weight_fb: torch.Tensor,
        bias: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        groups: int,
    ) -> Any:
        """Run the layer; save the input and the feedback weight."""
        ctx.save_for_backward(x, weight_fb)
        ctx.conf = (stride, padding, dilation, groups)
        ctx.weight_shape = weight.shape
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:  # noqa: D102
        x, weight_fb = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = nn_grad.conv2d_input(x.shape, weight_fb, grad_out, stride, padding, dilation, groups)
        if ctx.needs_input_grad[1]:
            grad_w = nn_grad.conv2d_weight(x, ctx.weight_shape, grad_out, stride, padding, dilation, groups)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, None, grad_b, None, None, None, None


class ConvTranspose2dFB(torch.autograd.Function):
    """Transposed 2-D convolution whose input gradient is the convolution with ``W_feedback``.

    Weights have the ``ConvTranspose2d`` layout ``(in_channels, out_channels, kH, kW)``, which is the layout of the
    mirrored ``Conv2d`` weight ``(out_channels_F, in_channels_F, kH, kW)``; only ``groups == 1`` is supported.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        weight_fb: torch.Tensor,
        bias: Any,
        stride: Any,
        padding: Any,
        output_padding: Any,
        dilation: Any,
    ) -> Any:
        """Run the layer; save the input and the feedback weight."""
        ctx.save_for_backward(x, weight_fb)
        ctx.conf = (stride, padding, dilation)
        ctx.weight_shape = weight.shape
        ctx.has_bias = bias is not None
        return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, 1, dilation)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:  # noqa: D102
        x, weight_fb = ctx.saved_tensors
        stride, padding, dilation = ctx.conf
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv2d(grad_out, weight_fb, None, stride, padding, dilation, 1)
        if ctx.needs_input_grad[1]:
            # conv_transpose2d(x, W) is the input-gradient of conv2d(., W) at grad_output x, so its weight
            # gradient is conv2d's weight gradient with the roles of input and output exchanged.
            grad_w = nn_grad.conv2d_weight(grad_out, ctx.weight_shape, x, stride, padding, dilation, 1)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, None, grad_b, None, None, None, None


def linear_fb(x: torch.Tensor, weight: torch.Tensor, weight_fb: torch.Tensor, bias: Any = None) -> torch.Tensor:
    """Functional form of :class:`LinearFB` (``weight_fb`` is detached)."""
    return LinearFB.apply(x, weight, weight_fb.detach(), bias)  # type: ignore[no-any-return]


def conv2d_fb(
    x: torch.Tensor,
    weight: torch.Tensor,
    weight_fb: torch.Tensor,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Functional form of :class:`Conv2dFB` (``weight_fb`` is detached)."""
    return Conv2dFB.apply(x, weight, weight_fb.detach(), bias, stride, padding, dilation, groups)  # type: ignore[no-any-return]


def conv_transpose2d_fb(
    x: torch.Tensor,
    weight: torch.Tensor,
    weight_fb: torch.Tensor,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
) -> torch.Tensor:
    """Functional form of :class:`ConvTranspose2dFB` (``weight_fb`` is detached)."""
    return ConvTranspose2dFB.apply(  # type: ignore[no-any-return]
        x, weight, weight_fb.detach(), bias, stride, padding, output_padding, dilation
    )
