"""Tile-space kernels extracted from real networks, as TenSet extracts tasks from real models.

Every convolution, matrix multiplication and batched matrix multiplication (two-operand einsum contractions
included) of a captured graph (``from_module`` /
``from_export``: real model code, transformer attention included) becomes a :class:`RealKernel` with its fused
epilogue: a bias (a ``Linear``/``addmm`` bias, a conv bias, or an inference batch norm folded into the conv) and the
activation that is the kernel's only consumer. Kernels are de-duplicated by shape (:func:`dedupe_kernels`): a
ResNet stage repeats the same 3x3 convolution, a transformer the same projections in every layer; ``count`` says
how often each one occurs and ``sources`` where.

Shapes follow :class:`opgraph.perf.tile.KernelSpec`: matmul ``(M, N, K)``, batch_matmul ``(B, M, N, K)``, conv2d
``(N, C, H, W, O, KH, KW)``. :meth:`RealKernel.kernel_spec` gives the :class:`KernelSpec` that the TVM templates of
:mod:`opgraph.perf.tile` can measure today (strided and grouped/depthwise convolutions with padding folded into the
input; epilogue: optional bias, then none / relu / gelu / silu / sigmoid / tanh), or None for the kernels those
templates do not express yet (dilated convolutions, unequal strides, other activations).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

log = logging.getLogger(__name__)

#: Element-wise activations fused into a kernel's epilogue when they are its only consumer.
ACTIVATIONS = frozenset({"relu", "gelu", "silu", "sigmoid", "tanh", "hardtanh", "hardswish", "hardsigmoid"})
_CONV = frozenset({"conv2d"})
_MATMUL = frozenset({"linear", "matmul", "bmm"})
_MAX_SOURCES = 8


@dataclass(frozen=True)
class RealKernel:
    """One convolution / (batched) matrix multiplication of a real model, with its fused epilogue.

    Attributes:
        op: ``"conv2d"``, ``"matmul"`` or ``"batch_matmul"``.
        dims: matmul ``(M, N, K)``; batch_matmul ``(B, M, N, K)``; conv2d ``(N, C, H, W, O, KH, KW)`` (input
            before padding).
        stride: Conv stride (1, 1 for matmuls).
        padding: Conv zero padding per side.
        dilation: Conv dilation.
        groups: Conv groups (``C`` for a depthwise conv).
        bias: A bias is added (or a batch norm folded into the conv).
        activation: The fused activation (``"none"``, ``"relu"``, ``"gelu"``, ...).
        dtype: Element type.
        count: Occurrences (after :func:`dedupe_kernels`).
        sources: ``model:module_path`` of the first occurrences.
    """

    op: str
    dims: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = False
    activation: str = "none"
    dtype: str = "float32"
    count: int = 1
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes two kernels the same computation (everything but ``count`` and ``sources``)."""
        return (
            self.op,
            self.dims,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.bias,
            self.activation,
            self.dtype,
        )

    @property
    def name(self) -> str:
        """File-safe name, e.g. ``conv2d_1x16x32x32x16x3x3_s1p1g1_bias_relu``."""
        base = f"{self.op}_{'x'.join(map(str, self.dims))}"
        if self.op == "conv2d":
            base += f"_s{self.stride[0]}p{self.padding[0]}g{self.groups}" + ("" if self.dilation == (1, 1) else "d2")
        epi = ("bias_" if self.bias else "") + self.activation
        return f"{base}_{epi}"

    def flops(self) -> float:
        """Multiply-add FLOPs of the main computation (2 per multiply-add)."""
        if self.op == "matmul":
            m, n, k = self.dims
            return 2.0 * m * n * k
        if self.op == "batch_matmul":
            b, m, n, k = self.dims
            return 2.0 * b * m * n * k
        nb, c, h, w, o, kh, kw = self.dims
        oh, ow = self.output_hw()
        return 2.0 * nb * o * oh * ow * (c // max(self.groups, 1)) * kh * kw

    def output_hw(self) -> tuple[int, int]:
        """Output height and width of a conv2d."""
        _, _, h, w, _, kh, kw = self.dims
        sizes = []
        for size, k, s, p, d in zip((h, w), (kh, kw), self.stride, self.padding, self.dilation):
            sizes.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
        return sizes[0], sizes[1]

    def kernel_spec(self) -> Any:
        """The :class:`~opgraph.perf.tile.KernelSpec` the TVM templates measure, or None if they cannot express it.

        Padding is folded into the input size; dilated convolutions, unequal strides and activations other than
        :data:`~opgraph.perf.tile.EPILOGUE_ACTIVATIONS` have no template yet.
        """
        from opgraph.perf.tile import EPILOGUE_ACTIVATIONS, KernelSpec

        if self.activation not in EPILOGUE_ACTIVATIONS:
            return None
        if self.activation == "none":
            epilogue = "bias" if self.bias else "none"
        else:
            epilogue = f"bias_{self.activation}" if self.bias else self.activation
        if self.op != "conv2d":
            return KernelSpec(self.op, self.dims, epilogue)
        if self.stride[0] != self.stride[1] or self.dilation != (1, 1):
            return None
        nb, c, h, w, o, kh, kw = self.dims
        padded = (nb, c, h + 2 * self.padding[0], w + 2 * self.padding[1], o, kh, kw)
        return KernelSpec("conv2d", padded, epilogue, self.stride[0], self.groups)


def _pair(v: Any, default: int) -> tuple[int, int]:
    if isinstance(v, bool) or v is None:
        return (default, default)
    if isinstance(v, int | float):
        return (int(v), int(v))
    vals = [int(x) for x in v if isinstance(x, int | float) and not isinstance(x, bool)]
    if not vals:
        return (default, default)
    return (vals[0], vals[1] if len(vals) > 1 else vals[0])


def _epilogue(graph: Any, users: dict[int, tuple[int, ...]], nid: int, bias: bool) -> tuple[bool, str]:
    """Follow a kernel's single-consumer chain: a folded batch norm adds a bias, an activation ends the epilogue."""
    cur = nid
    outputs = set(graph.outputs)
    for _ in range(2):
        nxt = users.get(cur, ())
        if len(nxt) != 1 or cur in outputs:
            break
        node = graph.node(nxt[0])
        if node.op == "batch_norm" and not bias:
            bias, cur = True, node.id
            continue
        if node.op == "hardtanh" and (node.attrs.get("min_val"), node.attrs.get("max_val")) == (0.0, 6.0):
            return bias, "relu6"
        if node.op in ACTIVATIONS:
            return bias, node.op
        break
    return bias, "none"


def _shape(graph: Any, nid: int) -> tuple[int, ...]:
    return tuple(int(s) for s in (graph.node(nid).meta.get("shape") or ()))


def _data_inputs(graph: Any, node: Any) -> list[int]:
    return [i for i in node.inputs if graph.node(i).op not in ("param", "const")]


def _has_bias(node: Any) -> bool:
    if isinstance(node.attrs.get("bias"), bool):
        return bool(node.attrs["bias"])
    target = str(node.attrs.get("target", ""))
    if "addmm" in target:
        return True
    args = node.attrs.get("args") or []
    return node.op == "linear" and len(args) > 2 and args[2] is not None


def _einsum_dims(graph: Any, node: Any, by_fx: dict[str, int]) -> tuple[int, ...] | None:
    """``(M, N, K)`` or ``(B, M, N, K)`` of a two-operand einsum that is a (batched) matmul, else None.

    Batch letters are in both operands and the output, contracted letters (K) in both operands only, M letters in
    the first operand and the output, N letters in the second and the output. A parameter operand is not a graph
    node: its letters' sizes come from the other operand and the output. Ellipses, repeated letters and letters
    summed within one operand are not matmuls.
    """
    args = node.attrs.get("args") or []
    if len(args) < 2 or not isinstance(args[0], str) or "->" not in args[0] or "." in args[0]:
        return None
    operands = args[1] if isinstance(args[1], list) else args[1:]
    lhs, out = args[0].replace(" ", "").split("->")
    terms = lhs.split(",")
    if len(terms) != 2 or len(operands) != 2 or any(len(set(t)) != len(t) for t in (*terms, out)):
        return None
    sizes: dict[str, int] = dict(zip(out, _shape(graph, node.id)))
    if len(sizes) != len(out):
        return None
    for term, operand in zip(terms, operands):
        nid = by_fx.get(operand[1:]) if isinstance(operand, str) and operand.startswith("%") else None
        shape = _shape(graph, nid) if nid is not None else ()
        if nid is not None and len(shape) != len(term):
            return None
        sizes.update(zip(term, shape))
    a, b, o = set(terms[0]), set(terms[1]), set(out)
    if (a | b) - o - (a & b) or o - (a | b) or not (a & b) - o or any(c not in sizes for c in a | b):
        return None  # a letter summed within one operand, an output letter from nowhere, or no contraction
    batch = math.prod(sizes[c] for c in a & b & o)
    m = math.prod(sizes[c] for c in (a - b) & o)
    n = math.prod(sizes[c] for c in (b - a) & o)
    k = math.prod(sizes[c] for c in (a & b) - o)
    return (batch, m, n, k) if batch > 1 else (m, n, k)


def extract_kernels(graph: Any, name: str = "") -> list[RealKernel]:
    """Every conv2d / matmul / batched matmul of ``graph`` with its epilogue, in graph order (not de-duplicated).

    Args:
        graph: A graph from :func:`opgraph.graph.from_module` / ``from_export`` / ``from_fx`` (shapes in meta).
        name: Model name used in ``sources``.

    Returns:
        One kernel per occurrence (``scaled_dot_product_attention`` gives its two batched matmuls).
    """
    users = graph.users()
    by_fx = {n.meta["fx_name"]: n.id for n in graph if "fx_name" in n.meta}
    out: list[RealKernel] = []
    for node in graph:
        shape = _shape(graph, node.id)
        ins = _data_inputs(graph, node)
        where = f"{name}:{node.meta.get('module_path', node.attrs.get('target', ''))}"
        dtype = str(node.meta.get("dtype", "float32"))
        if node.op in _CONV and len(shape) == 4 and ins:
            x = _shape(graph, ins[0])
            a = node.attrs
            if len(x) != 4:
                continue
            kh, kw = _pair(a.get("kernel_size"), 1)
            dil = _pair(a.get("dilation"), 1)
            pad_attr = a.get("padding")
            if pad_attr == "same":
                pad = ((dil[0] * (kh - 1)) // 2, (dil[1] * (kw - 1)) // 2)
            else:
                pad = _pair(pad_attr, 0)
            bias, act = _epilogue(graph, users, node.id, _has_bias(node))
            dims = (x[0], x[1], x[2], x[3], shape[1], kh, kw)
            k = RealKernel("conv2d", dims, _pair(a.get("stride"), 1), pad, dil, int(a.get("groups", 1) or 1))
            out.append(replace(k, bias=bias, activation=act, dtype=dtype, sources=(where,)))
        elif node.op in _MATMUL and len(shape) >= 1 and ins:
            x = _shape(graph, ins[0])
            if not x or (len(shape) < 2 and node.op != "linear"):
                continue
            kdim = x[-1]
            n = shape[-1]
            lead = shape[:-1]
            if node.op == "linear":
                m, batch = math.prod(lead) if lead else 1, 1
            else:
                m = lead[-1] if lead else 1
                batch = math.prod(lead[:-1]) if len(lead) > 1 else 1
            bias, act = _epilogue(graph, users, node.id, _has_bias(node))
            if batch > 1:
                k = RealKernel("batch_matmul", (batch, m, n, kdim))
            else:
                k = RealKernel("matmul", (m, n, kdim))
            out.append(replace(k, bias=bias, activation=act, dtype=dtype, sources=(where,)))
        elif node.op == "einsum":
            dims = _einsum_dims(graph, node, by_fx)
            if dims is not None:
                bias, act = _epilogue(graph, users, node.id, False)
                kind = "batch_matmul" if len(dims) == 4 else "matmul"
                k = RealKernel(kind, dims, bias=bias, activation=act, dtype=dtype, sources=(where,))
                out.append(k)
        elif node.op == "scaled_dot_product_attention" and len(ins) >= 3:
            q, kk, v = (_shape(graph, i) for i in ins[:3])
            if len(q) < 3 or len(kk) < 3 or len(v) < 3:
                continue
            batch = math.prod(q[:-2])
            seq_q, e, seq_k, ev = q[-2], q[-1], kk[-2], v[-1]
            out.append(RealKernel("batch_matmul", (batch, seq_q, seq_k, e), dtype=dtype, sources=(where,)))
            out.append(RealKernel("batch_matmul", (batch, seq_q, ev, seq_k), dtype=dtype, sources=(where,)))
    return out


def dedupe_kernels(kernels: Iterable[RealKernel]) -> list[RealKernel]:
    """Merge kernels of the same shape and epilogue: ``count`` sums, ``sources`` keeps the first few; first-seen order."""
    merged: dict[tuple[Any, ...], RealKernel] = {}
    for k in kernels:
        got = merged.get(k.key)
        if got is None:
            merged[k.key] = k
        else:
            srcs = (got.sources + tuple(s for s in k.sources if s not in got.sources))[:_MAX_SOURCES]
            merged[k.key] = replace(got, count=got.count + k.count, sources=srcs)
    return list(merged.values())


@dataclass(frozen=True)
class ModelKernels:
    """The kernels of one captured model.

    Attributes:
        name: Model name.
        n_nodes: Nodes of its graph.
        capture_s: Seconds to build and capture it.
        importer: ``torch.fx`` or ``torch.export``.
        kernels: Its de-duplicated kernels.
    """

    name: str
    n_nodes: int
    capture_s: float
    importer: str
    kernels: list[RealKernel]


def model_kernels(specs: Iterable[Any], *, progress: bool = True) -> list[ModelKernels]:
    """Build and capture each zoo spec (:class:`~opgraph.perf.zoo.RealSpec` or ``ZooSpec``) and extract its kernels.

    Args:
        specs: Specs with ``name`` and ``build()``.
        progress: Show a progress bar.

    Returns:
        One :class:`ModelKernels` per spec; ``dedupe_kernels(k for m in result for k in m.kernels)`` gives the
        kernel set of the whole zoo.
    """
    from tqdm.auto import tqdm

    from opgraph.perf.collect import graph_of

    specs = list(specs)
    out = []
    for spec in tqdm(specs, desc="kernels", disable=not progress):
        t0 = time.perf_counter()
        module, example = spec.build()
        graph = graph_of(module, example)
        kernels = dedupe_kernels(extract_kernels(graph, spec.name))
        dt = time.perf_counter() - t0
        out.append(ModelKernels(spec.name, len(graph), dt, str(graph.meta.get("source", "")), kernels))
        log.info("%s: %d nodes, %d distinct kernels (%.2fs)", spec.name, len(graph), len(kernels), dt)
    return out


def real_kernel_specs(models: Iterable[ModelKernels]) -> list[Any]:
    """The distinct :class:`~opgraph.perf.tile.KernelSpec` of some models' kernels that the TVM templates measure.

    Args:
        models: From :func:`model_kernels`.

    Returns:
        Kernel specs without duplicates (first-seen order), ready for :func:`opgraph.perf.tile.collect_tile`.
    """
    seen: dict[str, Any] = {}
    for m in models:
        for k in m.kernels:
            spec = k.kernel_spec()
            if spec is not None and spec.name not in seen:
                seen[spec.name] = spec
    return list(seen.values())
