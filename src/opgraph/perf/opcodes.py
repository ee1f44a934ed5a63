"""Opcode ids for opgraph ops in the TpuGraphs (XLA HLO) vocabulary.

Ids 1..120 are XLA's ``hlo_opcode.h`` ids (:data:`opgraph.graph.ops.HLO_OPCODES`); an opgraph op keeps the id of
the HLO op with the same meaning (``conv2d`` -> ``convolution`` = 26, ``linear``/``matmul`` -> ``dot`` = 34,
``relu`` -> ``maximum``, pooling -> ``reduce-window``, layout conversions -> ``copy``). Ops that XLA only has as
fusions of several HLO ops get ids from 121 upwards (:data:`TORCH_ONLY_OPCODES`); any other op gets
:data:`OTHER_OPCODE` (255). Ids fit in ``uint8`` as in the released TpuGraphs files.
"""

from __future__ import annotations

from opgraph.graph.ops import HLO_OPCODES

#: opgraph op name -> HLO op name where the meaning matches (beyond what ``OpInfo.hlo`` already gives).
OP_TO_HLO: dict[str, str] = {
    "input": "parameter",
    "param": "parameter",
    "const": "constant",
    "conv2d": "convolution",
    "conv1d": "convolution",
    "conv3d": "convolution",
    "conv_transpose2d": "convolution",
    "linear": "dot",
    "matmul": "dot",
    "bmm": "dot",
    "mm": "dot",
    "einsum": "dot",
    "relu": "maximum",
    "relu6": "clamp",
    "hardtanh": "clamp",
    "clamp": "clamp",
    "sigmoid": "logistic",
    "tanh": "tanh",
    "batch_norm": "batch-norm-inference",
    "max_pool2d": "reduce-window",
    "avg_pool2d": "reduce-window",
    "adaptive_avg_pool2d": "reduce-window",
    "adaptive_max_pool2d": "reduce-window",
    "reshape": "reshape",
    "view": "reshape",
    "flatten": "reshape",
    "unsqueeze": "reshape",
    "squeeze": "reshape",
    "permute": "transpose",
    "transpose": "transpose",
    "cat": "concatenate",
    "concat": "concatenate",
    "getitem": "slice",
    "chunk": "slice",
    "split": "slice",
    "dropout": "copy",
    "identity": "copy",
    "contiguous": "copy",
    "to_layout": "copy",
    "mean": "reduce",
    "sum": "reduce",
    "amax": "reduce",
    "pad": "pad",
    "expand": "broadcast",
    "repeat": "broadcast",
    "interpolate": "gather",
    "upsample": "gather",
    "embedding": "gather",
    "size": "get-dimension-size",
    "output": "tuple",
    # ATen ops that torch.export graphs of real models have (masks, positions, indexing)
    "arange": "iota",
    "slice": "slice",
    "select": "slice",
    "index": "gather",
    "index_select": "gather",
    "gather": "gather",
    "and": "and",
    "or": "or",
    "bitwise_not": "not",
    "cumsum": "reduce-window",
    "diff": "subtract",
    "new_ones": "broadcast",
    "new_zeros": "broadcast",
    "full": "broadcast",
    "full_like": "broadcast",
    "zeros": "broadcast",
    "ones": "broadcast",
    "masked_fill": "select",
    "scalar_tensor": "constant",
}

#: Ops without a single-HLO equivalent: ids above 120.
TORCH_ONLY_OPCODES: dict[str, int] = {
    "gelu": 121,
    "softmax": 122,
    "log_softmax": 123,
    "layer_norm": 124,
    "silu": 125,
    "hardswish": 126,
    "hardsigmoid": 127,
    "group_norm": 128,
    "scaled_dot_product_attention": 129,
    "multi_head_attention": 130,
    "leaky_relu": 131,
    "elu": 132,
    "mish": 133,
    "softplus": 134,
}

#: Id of every op neither in the HLO table nor in :data:`TORCH_ONLY_OPCODES`.
OTHER_OPCODE = 255


def opcode_of(op: str) -> int:
    """Return the TpuGraphs opcode id (0..255) of an opgraph op name.

    Args:
        op: Canonical opgraph op name (``"conv2d"``, ``"add"``, ...).

    Returns:
        The HLO id where one has the same meaning, else an id >= 121.
    """
    if op in OP_TO_HLO:
        return HLO_OPCODES[OP_TO_HLO[op]]
    if op in TORCH_ONLY_OPCODES:
        return TORCH_ONLY_OPCODES[op]
    from opgraph.graph import OPS

    info = OPS.get(op)
    if info is not None and info.hlo is not None:
        return int(info.hlo)
    return OTHER_OPCODE


def opcode_names() -> dict[int, str]:
    """Return id -> name for every id this module can produce (HLO names for 1..120)."""
    names = {v: k for k, v in HLO_OPCODES.items()}
    names.update({v: k for k, v in TORCH_ONLY_OPCODES.items()})
    names[OTHER_OPCODE] = "other"
    names[0] = "unknown"
    return names
