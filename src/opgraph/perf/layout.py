"""The layout configuration space on PyTorch (CPU): NCHW or channels-last per convolution.

A configuration gives every configurable node (each ``Conv2d`` / ``ConvTranspose2d`` module call) a memory format.
:func:`wrap_layout` swaps those modules for :class:`LayoutConv` wrappers that convert their input to the chosen
format (a copy when the producer's format differs: the conversion cost of TpuGraphs' layout configs) and hold
their weight in that format. Other ops keep whatever format reaches them.

The 18 config columns of a configurable node are TpuGraphs' minor-to-major orders of its output, input and kernel
(6 each, padded with -1): NCHW = [3,2,1,0,-1,-1], channels-last (NHWC) = [1,3,2,0,-1,-1].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from opgraph.perf.tpugraphs import LAYOUT_CONFIG_DIM

log = logging.getLogger(__name__)

NCHW = 0
NHWC = 1
LAYOUT_NAMES = ("NCHW", "NHWC")
_M2M = {NCHW: [3, 2, 1, 0, -1, -1], NHWC: [1, 3, 2, 0, -1, -1]}
CONFIGURABLE_OPS = ("conv2d", "conv_transpose2d")


def layout_config_row(choice: int) -> np.ndarray:
    """The 18 config columns (output, input, kernel minor-to-major) of one node set to ``choice``."""
    return np.asarray(_M2M[int(choice)] * 3, dtype=np.float32)


def encode_configs(choices: np.ndarray) -> np.ndarray:
    """``choices[c, nc]`` in {0 (NCHW), 1 (NHWC)} -> ``node_config_feat`` float32[c, nc, 18]."""
    choices = np.asarray(choices, dtype=np.int64)
    table = np.stack([layout_config_row(0), layout_config_row(1)])
    return table[choices].reshape(choices.shape + (LAYOUT_CONFIG_DIM,))


def decode_configs(node_config_feat: Any) -> np.ndarray:
    """Inverse of :func:`encode_configs`: 1 where a node's output minor-to-major starts with the channel dim (1)."""
    f = np.asarray(node_config_feat)
    return (f[..., 0] == 1).astype(np.int64)


def configurable_nodes(graph: Any) -> list[int]:
    """Ids of the graph's configurable nodes: module calls of Conv2d / ConvTranspose2d with a 4-d output."""
    out = []
    for node in graph:
        module_call = "target" in node.attrs and "module_type" in node.attrs
        if node.op in CONFIGURABLE_OPS and module_call and len(node.meta.get("shape") or ()) == 4:
            out.append(node.id)
    return out


def sample_configs(n_nodes: int, n_configs: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct layout choices int64[c, n_nodes]: row 0 all-NCHW (default), row 1 all-NHWC, then random rows.

    Each random row draws its own NHWC probability so that the sample covers mostly-NCHW to mostly-NHWC configs.
    Returns fewer rows when the space (2**n_nodes) is smaller than ``n_configs``.
    """
    space = 2**n_nodes if n_nodes < 62 else np.inf
    target = int(min(n_configs, space))
    rows = [np.zeros(n_nodes, dtype=np.int64)]
    if target > 1:
        rows.append(np.ones(n_nodes, dtype=np.int64))
    seen = {r.tobytes() for r in rows}
    if space <= 4 * target:
        rest = [np.array([(k >> j) & 1 for j in range(n_nodes)], dtype=np.int64) for k in range(int(space))]
        rng.shuffle(rest)
        for r in rest:
            if len(rows) >= target:
                break
            if r.tobytes() not in seen:
                seen.add(r.tobytes())
                rows.append(r)
    tries = 0
    while len(rows) < target and tries < 100 * target:
        tries += 1
        p = rng.uniform(0.1, 0.9)
        r = (rng.random(n_nodes) < p).astype(np.int64)
        if r.tobytes() not in seen:
            seen.add(r.tobytes())
            rows.append(r)
    return np.stack(rows)


def _layout_conv_class() -> type:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class LayoutConv(nn.Module):
        """A Conv2d/ConvTranspose2d that runs in a selectable memory format (``channels_last`` attribute)."""

        def __init__(self, conv: nn.Module) -> None:
            super().__init__()
            self.conv = conv
            self.transposed = isinstance(conv, nn.ConvTranspose2d)
            w = conv.weight.detach()
            self.register_buffer("w_nchw", w.contiguous(), persistent=False)
            self.register_buffer("w_nhwc", w.contiguous(memory_format=torch.channels_last), persistent=False)
            self.channels_last = False

        def __getattr__(self, name: str) -> Any:
            # model code reads the convolution's hyper-parameters (HF MobileNetV2 pads from conv.stride / kernel_size)
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(super().__getattr__("conv"), name)

        def forward(self, x: Any) -> Any:
            c = self.conv
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
                w = self.w_nhwc
            else:
                x = x.contiguous()
                w = self.w_nchw
            if self.transposed:
                return F.conv_transpose2d(x, w, c.bias, c.stride, c.padding, c.output_padding, c.groups, c.dilation)
            if isinstance(c.padding, str):
                return F.conv2d(x, w, c.bias, c.stride, c.padding, c.dilation, c.groups)
            return F.conv2d(x, w, c.bias, c.stride, c.padding, c.dilation, c.groups)

    return LayoutConv


@dataclass
class LayoutModel:
    """A model whose configurable convolutions can be switched between NCHW and channels-last.

    Attributes:
        module: The wrapped module (convolutions replaced by ``LayoutConv``).
        targets: Module path of each configurable node, in config-column order.
        example_inputs: Inputs to run the model on.
    """

    module: Any
    targets: list[str]
    example_inputs: tuple[Any, ...]

    def set_config(self, choices: Any) -> None:
        """Set each configurable node's format (0 = NCHW, 1 = NHWC)."""
        ch = np.asarray(choices).reshape(-1)
        for t, c in zip(self.targets, ch):
            self.module.get_submodule(t).channels_last = bool(c)

    def run(self) -> Any:
        """One forward pass without autograd."""
        import torch

        with torch.inference_mode():
            return self.module(*self.example_inputs)


def wrap_layout(module: Any, example_inputs: tuple[Any, ...], targets: list[str], *, copy: bool = True) -> LayoutModel:
    """Wrap the convolutions at module paths ``targets`` of a deep copy of ``module`` (the original is untouched).

    Args:
        module: An ``nn.Module`` in eval mode.
        example_inputs: Its example inputs.
        targets: Module paths (``attrs["target"]`` of the configurable graph nodes), without duplicates.
        copy: False wraps ``module`` itself (in place; used to re-apply a saved layout).

    Returns:
        A :class:`LayoutModel` (all NCHW).
    """
    import copy as copy_

    cls = _layout_conv_class()
    mod = copy_.deepcopy(module) if copy else module
    uniq = list(dict.fromkeys(targets))
    for t in uniq:
        parent_path, _, attr = t.rpartition(".")
        parent = mod.get_submodule(parent_path) if parent_path else mod
        setattr(parent, attr, cls(getattr(parent, attr)))
    lm = LayoutModel(mod, uniq, tuple(example_inputs))
    return lm
