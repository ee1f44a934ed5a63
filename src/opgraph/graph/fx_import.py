"""Import a torch.fx graph (with shapes and dtypes from ShapeProp) into an opgraph :class:`Graph`.

torch is imported lazily, inside :func:`from_fx`, so the core works without it.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from opgraph.graph.errors import TraceError
from opgraph.graph.ir import Graph, Node
from opgraph.graph.ops import register_unmapped, unmapped_counts

#: torch module class name -> canonical op.
MODULE_OPS: dict[str, str] = {
    "Conv1d": "conv1d",
    "Conv2d": "conv2d",
    "Conv3d": "conv3d",
    "ConvTranspose2d": "conv_transpose2d",
    "Linear": "linear",
    "ReLU": "relu",
    "ReLU6": "hardtanh",
    "Hardtanh": "hardtanh",
    "GELU": "gelu",
    "SiLU": "silu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "BatchNorm1d": "batch_norm",
    "BatchNorm2d": "batch_norm",
    "LayerNorm": "layer_norm",
    "GroupNorm": "group_norm",
    "MaxPool2d": "max_pool2d",
    "AvgPool2d": "avg_pool2d",
    "AdaptiveAvgPool2d": "adaptive_avg_pool2d",
    "Flatten": "flatten",
    "Dropout": "dropout",
    "Identity": "identity",
    "Embedding": "embedding",
    "Upsample": "interpolate",
}

#: function / method name -> canonical op.
FUNCTION_OPS: dict[str, str] = {
    "add": "add",
    "iadd": "add",
    "sub": "sub",
    "isub": "sub",
    "mul": "mul",
    "imul": "mul",
    "truediv": "div",
    "div": "div",
    "pow": "pow",
    "neg": "neg",
    "abs": "abs",
    "matmul": "matmul",
    "bmm": "bmm",
    "mm": "matmul",
    "conv2d": "conv2d",
    "conv_transpose2d": "conv_transpose2d",
    "linear": "linear",
    "relu": "relu",
    "relu_": "relu",
    "relu6": "hardtanh",
    "hardtanh": "hardtanh",
    "hardtanh_": "hardtanh",
    "gelu": "gelu",
    "silu": "silu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "exp": "exp",
    "log": "log",
    "sqrt": "sqrt",
    "rsqrt": "rsqrt",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "batch_norm": "batch_norm",
    "layer_norm": "layer_norm",
    "max_pool2d": "max_pool2d",
    "avg_pool2d": "avg_pool2d",
    "adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "reshape": "reshape",
    "view": "view",
    "flatten": "flatten",
    "permute": "permute",
    "transpose": "transpose",
    "cat": "cat",
    "concat": "cat",
    "stack": "stack",
    "getitem": "getitem",
    "dropout": "dropout",
    "mean": "mean",
    "sum": "sum",
    "amax": "amax",
    "pad": "pad",
    "contiguous": "contiguous",
    "interpolate": "interpolate",
    "scaled_dot_product_attention": "scaled_dot_product_attention",
    "maximum": "maximum",
    "minimum": "minimum",
    "sin": "sin",
    "cos": "cos",
}

_MODULE_ATTRS = (
    "min_val",
    "max_val",
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "output_padding",
    "in_features",
    "out_features",
    "num_features",
    "eps",
    "momentum",
    "affine",
    "normalized_shape",
    "num_groups",
    "p",
    "dim",
    "start_dim",
    "end_dim",
    "output_size",
    "num_embeddings",
    "embedding_dim",
    "scale_factor",
    "mode",
    "negative_slope",
    "approximate",
)


def module_op(sub: Any) -> str | None:
    """The canonical op of a module's call (``nn.Conv2d`` and its subclasses -> ``conv2d``), or None if unknown."""
    for cls in type(sub).__mro__:
        if cls.__name__ in MODULE_OPS:
            return MODULE_OPS[cls.__name__]
    return None


def module_attrs(sub: Any) -> dict[str, Any]:
    """A module's hyper-parameters as JSON-able attrs (``kernel_size``, ``stride``, ..., ``bias``)."""
    attrs: dict[str, Any] = {}
    for key in _MODULE_ATTRS:
        if hasattr(sub, key):
            attrs[key] = _jsonable_arg(getattr(sub, key))
    if hasattr(sub, "bias"):
        attrs["bias"] = getattr(sub, "bias", None) is not None
    return attrs


def _jsonable_arg(value: Any) -> Any:
    import torch

    if isinstance(value, torch.fx.Node):
        return f"%{value.name}"
    if isinstance(value, list | tuple):
        return [_jsonable_arg(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable_arg(v) for k, v in value.items()}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    if isinstance(value, slice):
        return {"slice": [value.start, value.stop, value.step]}
    return repr(value)


def _target_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    name = getattr(target, "__name__", None) or repr(target)
    return str(name)


def _qualified(target: Any) -> str:
    if isinstance(target, str):
        return target
    mod = getattr(target, "__module__", None)
    if target in (operator.add, operator.mul, operator.sub, operator.truediv, operator.getitem):
        mod = "operator"
    name = _target_name(target)
    return f"{mod}.{name}" if mod else name


def _canonical(name: str) -> str:
    op = FUNCTION_OPS.get(name.rstrip("_") if name not in FUNCTION_OPS else name)
    if op is None:
        op = register_unmapped(name.lower().strip("_"))
    return op


def _tensor_meta(fx_node: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    tm = fx_node.meta.get("tensor_meta")
    if tm is None:
        val = fx_node.meta.get("val")
        if val is not None and hasattr(val, "shape"):
            meta["shape"] = tuple(int(s) for s in val.shape)
            meta["dtype"] = str(val.dtype).replace("torch.", "")
        return meta
    if hasattr(tm, "shape"):
        meta["shape"] = tuple(int(s) for s in tm.shape)
        meta["dtype"] = str(tm.dtype).replace("torch.", "")
        meta["stride"] = tuple(int(s) for s in tm.stride) if tm.stride is not None else None
    elif isinstance(tm, list | tuple):
        meta["shapes"] = [tuple(int(s) for s in t.shape) for t in tm if hasattr(t, "shape")]
    return meta


def from_fx(module: Any, example_inputs: Sequence[Any], *, leaf_modules: Sequence[type] = ()) -> Graph:
    """Import a PyTorch model as a :class:`Graph` with shapes and dtypes.

    Args:
        module: An ``nn.Module`` (symbolically traced here) or a ``torch.fx.GraphModule``.
        example_inputs: Example tensors, one per ``forward`` argument, for shape propagation.
        leaf_modules: Module classes to keep as single nodes instead of tracing through them.

    Returns:
        A graph whose nodes carry ``attrs["target"]`` (module path or qualified function name),
        ``attrs["module_type"]`` and hyper-parameters for module calls, ``attrs["args"]``/``attrs["kwargs"]`` for
        function calls, and ``meta["shape"]``, ``meta["dtype"]``, ``meta["stride"]``, ``meta["fx_name"]``.

    Raises:
        TraceError: torch.fx could not trace the module, or shape propagation failed.
    """
    try:
        import torch
        from torch.fx.passes.shape_prop import ShapeProp
    except ImportError as exc:  # pragma: no cover - torch is an optional extra
        raise TraceError("from_fx needs PyTorch: pip install 'opgraph[torch]'") from exc

    if isinstance(module, torch.fx.GraphModule):
        gm = module
    elif isinstance(module, torch.nn.Module):
        leaves = tuple(leaf_modules)

        class _Tracer(torch.fx.Tracer):
            def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
                return isinstance(m, leaves) or super().is_leaf_module(m, qualname)

        try:
            graph = _Tracer().trace(module)
        except Exception as exc:
            culprit = _failing_module(exc, module)
            raise TraceError(
                f"torch.fx could not trace {type(module).__name__}{culprit}: {type(exc).__name__}: {exc}. "
                "Data-dependent control flow cannot be traced symbolically: pass that submodule's class in "
                "leaf_modules=, or export the model with torch.export"
            ) from exc
        gm = torch.fx.GraphModule(module, graph)
    else:
        raise TraceError(f"from_fx: expected an nn.Module or GraphModule, got {type(module).__name__}")

    examples = tuple(example_inputs)
    try:
        ShapeProp(gm).propagate(*examples)
    except Exception as exc:
        raise TraceError(
            f"shape propagation failed for {type(module).__name__}: {type(exc).__name__}: {exc}; "
            "check that example_inputs match forward()'s arguments"
        ) from exc

    nodes: list[Node] = []
    inputs: list[int] = []
    outputs: list[int] = []
    ids: dict[str, int] = {}
    named = dict(gm.named_modules())

    def ref_ids(args: Any) -> list[int]:
        found: list[int] = []

        def visit(n: Any) -> Any:
            found.append(ids[n.name])
            return n

        torch.fx.node.map_arg(args, visit)
        return found

    for fx_node in gm.graph.nodes:
        meta = _tensor_meta(fx_node)
        meta["fx_name"] = fx_node.name
        if fx_node.stack_trace:
            line = fx_node.stack_trace.strip().splitlines()
            meta["source"] = line[-2].strip() if len(line) >= 2 else line[-1].strip()
        attrs: dict[str, Any] = {}
        if fx_node.op == "placeholder":
            op, ins = "input", list[int]()
            attrs["name"] = fx_node.target
        elif fx_node.op == "get_attr":
            op, ins = "param", []
            attrs["target"] = fx_node.target
        elif fx_node.op == "call_module":
            sub = named[fx_node.target]
            cls = type(sub).__name__
            op = MODULE_OPS.get(cls) or _canonical(cls)
            ins = ref_ids((fx_node.args, fx_node.kwargs))
            attrs.update(target=fx_node.target, module_type=cls)
            attrs.update(module_attrs(sub))
            meta["module_path"] = fx_node.target
        elif fx_node.op in ("call_function", "call_method"):
            name = _target_name(fx_node.target)
            op = _canonical(name)
            ins = ref_ids((fx_node.args, fx_node.kwargs))
            attrs["target"] = _qualified(fx_node.target)
            attrs["args"] = _jsonable_arg(list(fx_node.args))
            attrs["kwargs"] = _jsonable_arg(dict(fx_node.kwargs))
            if op == "hardtanh":  # F.relu6(x) / F.hardtanh(x, min_val, max_val): keep the clamp bounds
                six = name.startswith("relu6")
                pos = list(fx_node.args[1:3]) if not six else []
                attrs["min_val"] = float(fx_node.kwargs.get("min_val", pos[0] if pos else (0.0 if six else -1.0)))
                attrs["max_val"] = float(
                    fx_node.kwargs.get("max_val", pos[1] if len(pos) > 1 else (6.0 if six else 1.0))
                )
            stack = fx_node.meta.get("nn_module_stack")
            if stack:
                meta["module_path"] = list(stack.values())[-1][0] if isinstance(list(stack.values())[-1], tuple) else ""
        elif fx_node.op == "output":
            outputs.extend(ref_ids(fx_node.args))
            continue
        else:  # pragma: no cover - fx has no other node kinds
            raise TraceError(f"unknown torch.fx node kind {fx_node.op!r}")
        nid = len(nodes)
        nodes.append(Node(nid, op, tuple(ins), attrs, meta))
        ids[fx_node.name] = nid
        if op == "input":
            inputs.append(nid)
    meta = {"name": type(module).__name__, "source": "torch.fx", "unmapped_ops": unmapped_counts(n.op for n in nodes)}
    return Graph(tuple(nodes), tuple(inputs), tuple(outputs), meta)


def _failing_module(exc: BaseException, root: Any) -> str:
    """Name the innermost submodule whose forward raised during tracing (`` (in features.3: Block)``)."""
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    modules = {id(m): (name, m) for name, m in root.named_modules()}
    for frame in reversed(frames):
        self_obj = frame.f_locals.get("self")
        if self_obj is not None and id(self_obj) in modules:
            name, m = modules[id(self_obj)]
            return f" (in submodule {name or '<root>'!r}: {type(m).__name__})"
    return ""
