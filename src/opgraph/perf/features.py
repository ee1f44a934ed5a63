"""TpuGraphs node features (140 columns), opcodes and edges from an opgraph :class:`~opgraph.graph.Graph`.

Graphs come from :func:`opgraph.graph.from_fx` (torch.fx + ShapeProp). Columns follow TpuGraphs' ``featurizers.h``
(research note §1.2):

=========  ==========================================================================================
0          is_root (the node is a graph output)
1          element_size_in_bits (0, as in the release)
2-20       one-hot element type (f32 = 13, bf16 = 15, s64 = 7, pred = 3)
21-28      shape dims 0..5, sum, product
29         tuple_shapes_size
30         parameter_number (graph inputs first, then parameters/constants)
31-36      ``dimensions`` (permute order, reduce/softmax/cat dims)
37-92      window size / stride / padding low / padding high / dilation / base dilation / reversal, each as
           dims 0..5, sum, product (reversal: dims, true count, false count)
93-106     convolution dimension numbers for logical NCHW / OIHW (unused spatial slots -1)
107, 108   feature_group_count, batch_group_count
109-120    slice start / stride / limit (dims 0 and 1, sum, product)
121-124    dynamic slice sizes (0)
125-132    pad edge low / high (dims 0 and 1, sum, product)
133        is_stable (0)
134-139    layout minor_to_major 0..5 from the tensor's strides, padded with -1
=========  ==========================================================================================

Edges are ``[consumer, producer]`` rows, as in the released files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opgraph.perf.opcodes import opcode_of
from opgraph.perf.tpugraphs import NODE_FEAT_DIM

DTYPE_COLUMN = {
    "bool": 3,
    "int8": 4,
    "int16": 5,
    "int32": 6,
    "int64": 7,
    "uint8": 8,
    "float16": 12,
    "float32": 13,
    "float64": 14,
    "bfloat16": 15,
    "complex64": 16,
    "complex128": 17,
}
COL_SHAPE = 21
COL_PARAM = 30
COL_DIMS = 31
COL_WINDOW = 37
COL_CONV_DIMS = 93
COL_GROUPS = 107
COL_SLICE = 109
COL_PAD = 125
COL_LAYOUT = 134

CONV_OPS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose2d"})
POOL_OPS = frozenset({"max_pool2d", "avg_pool2d"})


def _ints(v: Any, n: int, default: int) -> list[int]:
    """Expand an int or sequence to ``n`` ints (``kernel_size=3`` -> [3, 3])."""
    if v is None or isinstance(v, str):
        return [default] * n
    if isinstance(v, int | float):
        return [int(v)] * n
    vals = [int(x) for x in v if isinstance(x, int | float)]
    return (vals + [default] * n)[:n] if vals else [default] * n


def _dims_block(vals: list[int]) -> list[float]:
    """6 dims (0-padded), sum, product: the 8-column blocks of featurizers.h."""
    v = list(vals)[:6]
    prod = float(np.prod(v)) if v else 0.0
    return [float(x) for x in v] + [0.0] * (6 - len(v)) + [float(sum(v)), prod]


def minor_to_major(shape: tuple[int, ...], stride: tuple[int, ...] | None) -> list[int]:
    """Minor-to-major dim order of a strided tensor (NCHW contiguous -> [3,2,1,0], channels_last -> [1,3,2,0])."""
    r = len(shape)
    if stride is None or len(stride) != r:
        return list(range(r - 1, -1, -1))
    # sort by stride ascending; ties (size-1 dims) broken so that later dims are more minor
    return [int(d) for d in sorted(range(r), key=lambda d: (stride[d], -d))]


def _collect_ints(obj: Any) -> list[int]:
    out: list[int] = []
    if isinstance(obj, bool):
        return out
    if isinstance(obj, int):
        return [obj]
    if isinstance(obj, list | tuple):
        for x in obj:
            out += _collect_ints(x)
    return out


def node_features(graph: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute ``(node_feat f32[n,140], node_opcode int64[n], edge_index int64[m,2])`` for a graph.

    Args:
        graph: An :class:`opgraph.graph.Graph`, typically from :func:`opgraph.graph.from_fx`.

    Returns:
        The three TpuGraphs arrays.
    """
    n = len(graph)
    feat = np.zeros((n, NODE_FEAT_DIM), dtype=np.float32)
    opcode = np.zeros(n, dtype=np.int64)
    outputs = set(graph.outputs)
    edges: list[tuple[int, int]] = []
    param_no = 0
    for node in graph:
        i = node.id
        row = feat[i]
        opcode[i] = opcode_of(node.op)
        a = node.attrs
        shape = tuple(node.meta.get("shape") or ())
        row[0] = 1.0 if i in outputs else 0.0
        if "shape" in node.meta:
            row[DTYPE_COLUMN.get(str(node.meta.get("dtype", "float32")), 2)] = 1.0
        elif "shapes" in node.meta:
            row[18] = 1.0  # tuple
            row[29] = len(node.meta["shapes"])
        else:
            row[2] = 1.0
        row[COL_SHAPE : COL_SHAPE + 8] = _dims_block(list(shape))
        if node.op in ("input", "param", "const"):
            row[COL_PARAM] = param_no
            param_no += 1
        # dimensions
        dims: list[int] = []
        if node.op in ("permute", "transpose", "mean", "sum", "amax", "softmax", "log_softmax", "cat", "flatten"):
            args = a.get("args", [])
            dims = _collect_ints(args[1:] if isinstance(args, list) else [])
            kw = a.get("kwargs", {}) or {}
            dims += _collect_ints(kw.get("dim", [])) + _collect_ints(kw.get("dims", []))
            for key in ("dim", "start_dim"):
                if isinstance(a.get(key), int):
                    dims.append(int(a[key]))
            rank = max(len(shape), 1)
            dims = [d % rank if d < 0 else d for d in dims]
        for j, d in enumerate(dims[:6]):
            row[COL_DIMS + j] = d
        # windows
        spatial = max(len(shape) - 2, 1)
        if node.op in CONV_OPS or node.op in POOL_OPS:
            k = _ints(a.get("kernel_size", (_collect_ints(a.get("args", [])[1:2]) or [1])[0]), spatial, 1)
            s = _ints(a.get("stride"), spatial, 1 if node.op in CONV_OPS else k[0])
            p = _ints(a.get("padding"), spatial, 0)
            dil = _ints(a.get("dilation"), spatial, 1)
            base = s if node.op == "conv_transpose2d" else [1] * spatial
            if node.op == "conv_transpose2d":
                s = [1] * spatial
            blocks = [k, s, p, p, dil, base]
            for b, vals in enumerate(blocks):
                row[COL_WINDOW + 8 * b : COL_WINDOW + 8 * b + 8] = _dims_block(vals)
            row[COL_WINDOW + 48 : COL_WINDOW + 56] = [0] * spatial + [0] * (6 - spatial) + [0, spatial]
        elif node.op == "adaptive_avg_pool2d" and len(node.inputs) == 1:
            src = graph.node(node.inputs[0]).meta.get("shape") or ()
            if len(src) == 4 and len(shape) == 4:
                k = [max(1, src[2] // max(shape[2], 1)), max(1, src[3] // max(shape[3], 1))]
                for b, vals in enumerate([k, k, [0, 0], [0, 0], [1, 1], [1, 1]]):
                    row[COL_WINDOW + 8 * b : COL_WINDOW + 8 * b + 8] = _dims_block(vals)
        if node.op in CONV_OPS:
            sp = list(range(2, 2 + spatial)) + [-1] * (4 - spatial)
            row[COL_CONV_DIMS : COL_CONV_DIMS + 14] = [0, 1, *sp, 1, 0, *sp, 0, 1]
            row[COL_GROUPS] = float(a.get("groups", 1) or 1)
            row[COL_GROUPS + 1] = 1.0
        if node.op == "pad":
            pads = _collect_ints((a.get("args") or [None, []])[1:2])
            lo = pads[0::2][:2]
            hi = pads[1::2][:2]
            row[COL_PAD : COL_PAD + 4] = lo + [0] * (2 - len(lo)) + [sum(lo), float(np.prod(lo)) if lo else 0]
            row[COL_PAD + 4 : COL_PAD + 8] = hi + [0] * (2 - len(hi)) + [sum(hi), float(np.prod(hi)) if hi else 0]
        if shape:
            m2m = minor_to_major(shape, node.meta.get("stride"))[:6]
            row[COL_LAYOUT : COL_LAYOUT + 6] = m2m + [-1] * (6 - len(m2m))
        else:
            row[COL_LAYOUT : COL_LAYOUT + 6] = -1
        for u in node.inputs:
            edges.append((i, int(u)))
    edge_index = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return feat, opcode, edge_index


def conv_flops(node_feat: np.ndarray, edge_index: np.ndarray, node: int) -> float:
    """Multiply-add FLOPs of a convolution node from its features (2 * out elements * window * in_ch/groups)."""
    out_elems = float(node_feat[node, COL_SHAPE + 7])
    window = float(node_feat[node, COL_WINDOW + 7]) or 1.0
    groups = float(node_feat[node, COL_GROUPS]) or 1.0
    producers = edge_index[edge_index[:, 0] == node, 1]
    cin = float(node_feat[producers[0], COL_SHAPE + 1]) if len(producers) else 1.0
    return 2.0 * out_elems * window * max(cin / groups, 1.0)
