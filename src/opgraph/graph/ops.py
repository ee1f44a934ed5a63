"""The op table: every op's name, arity, whether it is elementwise, its XLA HLO opcode id and a NumPy reference.

TpuGraphs encodes each node's operation as an XLA HLO opcode id (``hlo_opcode.h`` in the TpuGraphs repository:
``abs`` = 1, ``add`` = 2, ``convolution`` = 26, ``dot`` = 34, ...). :data:`HLO_OPCODES` holds that vocabulary;
:class:`OpInfo.hlo` maps an opgraph op onto it where the meaning matches, and is ``None`` where no HLO op computes
the same thing (systems that need an id for those, such as ``opgraph.perf``, assign ids above 120).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

from opgraph.graph.errors import GraphError

#: XLA HLO opcode ids as used by TpuGraphs (0 means unknown). Ids 97 and 101 are tombstones (removed ops).
HLO_OPCODES: dict[str, int] = {
    name: i
    for i, name in enumerate(
        [
            "abs",
            "add",
            "add-dependency",
            "after-all",
            "all-reduce",
            "all-to-all",
            "atan2",
            "batch-norm-grad",
            "batch-norm-inference",
            "batch-norm-training",
            "bitcast",
            "bitcast-convert",
            "broadcast",
            "call",
            "ceil",
            "cholesky",
            "clamp",
            "collective-permute",
            "count-leading-zeros",
            "compare",
            "complex",
            "concatenate",
            "conditional",
            "constant",
            "convert",
            "convolution",
            "copy",
            "copy-done",
            "copy-start",
            "cosine",
            "custom-call",
            "divide",
            "domain",
            "dot",
            "dynamic-slice",
            "dynamic-update-slice",
            "exponential",
            "exponential-minus-one",
            "fft",
            "floor",
            "fusion",
            "gather",
            "get-dimension-size",
            "set-dimension-size",
            "get-tuple-element",
            "imag",
            "infeed",
            "iota",
            "is-finite",
            "log",
            "log-plus-one",
            "and",
            "not",
            "or",
            "xor",
            "map",
            "maximum",
            "minimum",
            "multiply",
            "negate",
            "outfeed",
            "pad",
            "parameter",
            "partition-id",
            "popcnt",
            "power",
            "real",
            "recv",
            "recv-done",
            "reduce",
            "reduce-precision",
            "reduce-window",
            "remainder",
            "replica-id",
            "reshape",
            "reverse",
            "rng",
            "rng-get-and-update-state",
            "rng-bit-generator",
            "round-nearest-afz",
            "rsqrt",
            "scatter",
            "select",
            "select-and-scatter",
            "send",
            "send-done",
            "shift-left",
            "shift-right-arithmetic",
            "shift-right-logical",
            "sign",
            "sine",
            "slice",
            "sort",
            "sqrt",
            "subtract",
            "tanh",
            "trace",
            "transpose",
            "triangular-solve",
            "tuple",
            "tuple-select",
            "while",
            "cbrt",
            "all-gather",
            "collective-permute-start",
            "collective-permute-done",
            "logistic",
            "dynamic-reshape",
            "all-reduce-start",
            "all-reduce-done",
            "reduce-scatter",
            "all-gather-start",
            "all-gather-done",
            "opt-barrier",
            "async-start",
            "async-update",
            "async-done",
            "round-nearest-even",
            "stochastic-convert",
            "tan",
        ],
        start=1,
    )
}
HLO_TOMBSTONES = frozenset({97, 101})
HLO_MAX_ID = 120


@dataclass(frozen=True)
class OpInfo:
    """What the core knows about one op.

    Attributes:
        name: Canonical op name (``"add"``, ``"conv2d"``).
        arity: Number of inputs, or ``None`` when variadic.
        elementwise: True when each output element depends only on the same element of each input.
        hlo: XLA HLO opcode id (TpuGraphs vocabulary) with the same meaning, or ``None``.
        numpy: A NumPy reference implementation taking the input values, or ``None``.
    """

    name: str
    arity: int | None
    elementwise: bool
    hlo: int | None = None
    numpy: Callable[..., Any] | None = None


OPS: dict[str, OpInfo] = {}


def register_op(info: OpInfo, *, replace: bool = False) -> OpInfo:
    """Add an op to :data:`OPS`; an existing entry is kept unless ``replace`` is true. Returns the stored entry."""
    if info.name in OPS and not replace:
        return OPS[info.name]
    OPS[info.name] = info
    return info


#: Ops that an importer met and registered on the fly (``aten.foo`` -> ``foo``: no arity, no HLO id, no NumPy
#: reference): they fell outside the core table. Importers count them in ``graph.meta["unmapped_ops"]``.
UNMAPPED_OPS: set[str] = set()


def register_unmapped(name: str) -> str:
    """Register an op an importer does not know (generic: variadic, not elementwise, no HLO id); returns ``name``.

    An op that is already in :data:`OPS` is left as it is (and not marked unmapped).
    """
    if name not in OPS:
        register_op(OpInfo(name, None, False, None, None))
        UNMAPPED_OPS.add(name)
    return name


def unmapped_counts(ops: Iterable[str]) -> dict[str, int]:
    """``{op: count}`` of the ops in ``ops`` that are outside the core table (:data:`UNMAPPED_OPS`), most first."""
    counts: dict[str, int] = {}
    for op in ops:
        if op in UNMAPPED_OPS:
            counts[op] = counts.get(op, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def op_info(name: str) -> OpInfo:
    """Return the :class:`OpInfo` of ``name`` or raise :class:`GraphError` naming the known ops."""
    try:
        return OPS[name]
    except KeyError:
        known = ", ".join(sorted(k for k, v in OPS.items() if v.elementwise))
        raise GraphError(f"unknown op {name!r}; known elementwise ops: {known}") from None


def _h(name: str) -> int:
    return HLO_OPCODES[name]


def _where(c: Any, a: Any, b: Any) -> Any:
    return np.where(c, a, b)


# (name, arity, hlo name or None, numpy implementation)
_ELEMENTWISE: list[tuple[str, int, str | None, Callable[..., Any]]] = [
    ("add", 2, "add", np.add),
    ("sub", 2, "subtract", np.subtract),
    ("mul", 2, "multiply", np.multiply),
    ("div", 2, "divide", np.true_divide),
    ("pow", 2, "power", np.power),
    ("mod", 2, "remainder", np.mod),
    ("neg", 1, "negate", np.negative),
    ("abs", 1, "abs", np.abs),
    ("lt", 2, "compare", np.less),
    ("le", 2, "compare", np.less_equal),
    ("gt", 2, "compare", np.greater),
    ("ge", 2, "compare", np.greater_equal),
    ("eq", 2, "compare", np.equal),
    ("ne", 2, "compare", np.not_equal),
    ("where", 3, "select", _where),
    ("sin", 1, "sine", np.sin),
    ("cos", 1, "cosine", np.cos),
    ("tan", 1, "tan", np.tan),
    ("arcsin", 1, None, np.arcsin),
    ("arccos", 1, None, np.arccos),
    ("arctan", 1, None, np.arctan),
    ("sinh", 1, None, np.sinh),
    ("cosh", 1, None, np.cosh),
    ("tanh", 1, "tanh", np.tanh),
    ("arcsinh", 1, None, np.arcsinh),
    ("arccosh", 1, None, np.arccosh),
    ("arctanh", 1, None, np.arctanh),
    ("exp", 1, "exponential", np.exp),
    ("exp2", 1, None, np.exp2),
    ("expm1", 1, "exponential-minus-one", np.expm1),
    ("log", 1, "log", np.log),
    ("log1p", 1, "log-plus-one", np.log1p),
    ("log2", 1, None, np.log2),
    ("log10", 1, None, np.log10),
    ("sqrt", 1, "sqrt", np.sqrt),
    ("rsqrt", 1, "rsqrt", lambda x: 1.0 / np.sqrt(x)),
    ("cbrt", 1, "cbrt", np.cbrt),
    ("square", 1, "multiply", np.square),
    ("reciprocal", 1, "divide", lambda x: 1.0 / np.asarray(x, dtype=float)),
    ("sign", 1, "sign", np.sign),
    ("floor", 1, "floor", np.floor),
    ("ceil", 1, "ceil", np.ceil),
    ("rint", 1, "round-nearest-even", np.rint),
    ("maximum", 2, "maximum", np.maximum),
    ("minimum", 2, "minimum", np.minimum),
    ("arctan2", 2, "atan2", np.arctan2),
    ("hypot", 2, None, np.hypot),
    ("erf", 1, None, scipy.special.erf),
    ("sigmoid", 1, "logistic", scipy.special.expit),
    ("relu", 1, "maximum", lambda x: np.maximum(x, 0)),
    # activations and integer/boolean ops that exported real models have (ATen names, see export_import.ATEN_OPS)
    ("softplus", 1, None, lambda x: np.logaddexp(0.0, x)),
    ("hardswish", 1, None, lambda x: x * np.clip(np.asarray(x, dtype=float) + 3.0, 0.0, 6.0) / 6.0),
    ("hardsigmoid", 1, None, lambda x: np.clip(np.asarray(x, dtype=float) / 6.0 + 0.5, 0.0, 1.0)),
    ("mish", 1, None, lambda x: x * np.tanh(np.logaddexp(0.0, x))),
    ("floor_divide", 2, "divide", np.floor_divide),
    ("and", 2, "and", np.bitwise_and),
    ("or", 2, "or", np.bitwise_or),
    ("xor", 2, "xor", np.bitwise_xor),
    ("not", 1, "not", np.invert),
    ("logical_and", 2, "and", np.logical_and),
    ("logical_or", 2, "or", np.logical_or),
    ("logical_not", 1, "not", np.logical_not),
    ("logical_xor", 2, "xor", np.logical_xor),
]

for _name, _arity, _hlo, _fn in _ELEMENTWISE:
    register_op(OpInfo(_name, _arity, True, _h(_hlo) if _hlo else None, _fn))

# Structural and tensor ops (no NumPy reference here; systems bring their own rules).
_TENSOR: list[tuple[str, int | None, bool, str | None]] = [
    ("input", 0, False, "parameter"),
    ("const", 0, False, "constant"),
    ("param", 0, False, "parameter"),
    ("output", None, False, "tuple"),
    ("identity", 1, True, "copy"),
    ("copy", 1, True, "copy"),
    ("contiguous", 1, True, "copy"),
    ("convert", 1, True, "convert"),
    ("hardtanh", 1, True, "clamp"),
    ("gelu", 1, True, None),
    ("silu", 1, True, None),
    ("dropout", 1, True, None),
    ("conv2d", None, False, "convolution"),
    ("conv1d", None, False, "convolution"),
    ("conv3d", None, False, "convolution"),
    ("conv_transpose2d", None, False, "convolution"),
    ("linear", None, False, "dot"),
    ("matmul", 2, False, "dot"),
    ("bmm", 2, False, "dot"),
    ("softmax", 1, False, None),
    ("log_softmax", 1, False, None),
    ("batch_norm", None, False, "batch-norm-inference"),
    ("layer_norm", None, False, None),
    ("group_norm", None, False, None),
    ("max_pool2d", 1, False, "reduce-window"),
    ("avg_pool2d", 1, False, "reduce-window"),
    ("adaptive_avg_pool2d", 1, False, "reduce-window"),
    ("reshape", None, False, "reshape"),
    ("view", None, False, "reshape"),
    ("flatten", None, False, "reshape"),
    ("permute", None, False, "transpose"),
    ("transpose", None, False, "transpose"),
    ("cat", None, False, "concatenate"),
    ("stack", None, False, "concatenate"),
    ("getitem", None, False, "slice"),
    ("sum", None, False, "reduce"),
    ("mean", None, False, "reduce"),
    ("amax", None, False, "reduce"),
    ("pad", None, False, "pad"),
    ("embedding", None, False, "gather"),
    ("interpolate", None, False, None),
    ("scaled_dot_product_attention", None, False, None),
    # ops of torch.export graphs of real models (ATen names; shapes come from torch's fake tensors in meta["shape"]):
    # views and broadcasts
    ("unsqueeze", 1, False, "reshape"),
    ("squeeze", 1, False, "reshape"),
    ("expand", None, False, "broadcast"),
    ("repeat", 1, False, "broadcast"),
    ("repeat_interleave", None, False, "gather"),
    ("roll", 1, False, "concatenate"),  # Swin's shifted windows; XLA lowers a roll to two slices and a concatenate
    # slicing, indexing and splitting
    ("slice", 1, False, "slice"),
    ("select", 1, False, "slice"),
    ("chunk", 1, False, "slice"),
    ("split", 1, False, "slice"),
    ("split_with_sizes", 1, False, "slice"),
    ("tensor_split", None, False, "slice"),
    ("index", None, False, "gather"),
    ("index_select", 2, False, "gather"),
    ("gather", 2, False, "gather"),
    ("index_put", None, False, "scatter"),
    ("scatter", None, False, "scatter"),
    ("masked_fill", None, True, "select"),
    # tensor factories (positions, masks)
    ("arange", None, False, "iota"),
    ("full", 0, False, "broadcast"),
    ("eye", 0, False, "iota"),  # XLA builds an identity matrix from two iotas and a compare
    ("zeros", 0, False, "broadcast"),
    ("ones", 0, False, "broadcast"),
    ("empty", 0, False, "broadcast"),
    ("full_like", 1, True, "broadcast"),
    ("zeros_like", 1, True, "broadcast"),
    ("ones_like", 1, True, "broadcast"),
    ("empty_like", 1, True, "broadcast"),
    ("new_full", 1, False, "broadcast"),
    ("new_zeros", 1, False, "broadcast"),
    ("new_ones", 1, False, "broadcast"),
    ("new_empty", 1, False, "broadcast"),
    ("fill", None, True, "broadcast"),
    ("scalar_tensor", 0, False, "constant"),
    ("size", 1, False, "get-dimension-size"),  # aten.sym_size: a dynamic dimension read as a value
    # reductions, scans, sorting
    ("amin", None, False, "reduce"),
    ("max", None, False, "reduce"),
    ("min", None, False, "reduce"),
    ("argmax", None, False, "reduce"),
    ("argmin", None, False, "reduce"),
    ("prod", None, False, "reduce"),
    ("var", None, False, "reduce"),
    ("linalg_vector_norm", None, False, "reduce"),
    ("cumsum", None, False, "reduce-window"),
    ("diff", None, False, "subtract"),
    ("sort", None, False, "sort"),
    ("topk", None, False, "sort"),
    ("histc", None, False, None),
    # contractions, pooling, norms, spectral
    ("einsum", None, False, "dot"),
    ("grouped_mm", None, False, "dot"),  # one matmul per expert group of rows (mixture-of-experts layers)
    ("adaptive_avg_pool1d", 1, False, "reduce-window"),
    ("avg_pool1d", 1, False, "reduce-window"),
    ("max_pool1d", 1, False, "reduce-window"),
    ("adaptive_max_pool2d", 1, False, "reduce-window"),
    ("weight_norm", 2, False, None),
    ("clamp", None, True, "clamp"),
    ("fft", None, False, "fft"),
    ("real", 1, True, "real"),
]
for _name, _arity2, _ew, _hlo in _TENSOR:
    register_op(OpInfo(_name, _arity2, _ew, _h(_hlo) if _hlo else None, None))


def numpy_rules() -> dict[str, Callable[..., Any]]:
    """A rule table for :func:`opgraph.graph.interpret` that evaluates every op with a NumPy reference.

    Returns:
        ``{op: rule}`` where ``rule(node, *values)`` applies the op's NumPy implementation.
    """

    def make(fn: Callable[..., Any]) -> Callable[..., Any]:
        def rule(node: Any, *args: Any) -> Any:
            return fn(*args)

        return rule

    rules = {name: make(info.numpy) for name, info in OPS.items() if info.numpy is not None}
    rules["identity"] = make(lambda x: x)

    def hardtanh(node: Any, x: Any) -> Any:  # ReLU6 is hardtanh(x, 0, 6); the bounds are node attributes
        return np.clip(x, node.attrs.get("min_val", -1.0), node.attrs.get("max_val", 1.0))

    rules["hardtanh"] = hardtanh
    return rules
