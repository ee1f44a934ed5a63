"""Capture a PyTorch model with ``torch.export`` and import its ATen graph as an opgraph :class:`Graph`.

Real model code (Hugging Face ``transformers``, timm, torchvision-style networks) branches on shapes, calls
``int()`` on sizes and builds masks: :func:`torch.fx.symbolic_trace` cannot follow it, ``torch.export`` can.
:func:`from_export` maps the exported ATen ops onto the core op table with the same conventions as
:func:`~opgraph.graph.from_fx`, so that both importers give the same graph for a model both can capture:

* the op of a leaf module's main call (``aten.conv2d`` inside an ``nn.Conv2d``) carries the module path as
  ``attrs["target"]``, the class as ``attrs["module_type"]`` and the module's hyper-parameters;
* parameters, buffers and lifted constants are not nodes (they are hidden inside module calls in ``from_fx``);
  ``keep_params=True`` makes them ``param`` nodes;
* every node has ``meta["shape"]``/``["dtype"]``/``["stride"]`` from the fake tensor in ``node.meta["val"]``,
  ``meta["module_path"]``/``["module_type"]`` from ``nn_module_stack`` and ``meta["source"]`` (the innermost line of
  model code outside torch).

:func:`from_module` is the entry point the systems use: symbolic tracing first (fast, and the graphs of the datasets
collected so far), ``torch.export`` when tracing fails, and one :class:`TraceError` naming the submodule and the
Python line when neither can capture the model. torch is imported lazily.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import operator
import os
import re
import sysconfig
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opgraph.graph.errors import TraceError
from opgraph.graph.fx_import import _canonical, _failing_module, _jsonable_arg, from_fx, module_attrs, module_op
from opgraph.graph.ir import Graph, Node
from opgraph.graph.ops import unmapped_counts

log = logging.getLogger(__name__)

#: ATen overload packet name -> canonical op, where the name differs from the op table's (the rest go through the
#: same name table as ``from_fx``).
ATEN_OPS: dict[str, str] = {
    "addmm": "linear",
    "mm": "matmul",
    "baddbmm": "bmm",
    "_native_batch_norm_legit_no_training": "batch_norm",
    "_native_batch_norm_legit": "batch_norm",
    "native_batch_norm": "batch_norm",
    "native_layer_norm": "layer_norm",
    "native_group_norm": "group_norm",
    "_softmax": "softmax",
    "_log_softmax": "log_softmax",
    "_unsafe_view": "view",
    "clone": "copy",
    "t": "transpose",
    "max_pool2d_with_indices": "max_pool2d",
    "_adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "constant_pad_nd": "pad",
    "upsample_nearest2d": "interpolate",
    "upsample_bilinear2d": "interpolate",
    "_to_copy": "convert",
    "to": "convert",
    "type_as": "convert",
    "rsub": "sub",
    "native_dropout": "dropout",
    "_scaled_dot_product_flash_attention_for_cpu": "scaled_dot_product_attention",
    "_scaled_dot_product_efficient_attention": "scaled_dot_product_attention",
    "_scaled_dot_product_flash_attention": "scaled_dot_product_attention",
    "alias": "identity",
    "lift_fresh_copy": "copy",
    "detach": "identity",
    "detach_": "identity",
    "_grouped_mm": "grouped_mm",
    "sym_size": "size",  # a symbolic size read under dynamic_shapes
    "sym_numel": "size",
    "grouped_mm_fallback": "grouped_mm",  # transformers' mixture-of-experts custom op (torch._grouped_mm's fallback)
    "numpy_T": "transpose",
    "reshape_as": "reshape",
    "view_as": "view",
    "expand_as": "expand",
    "expand_copy": "expand",
    "slice_copy": "slice",
    "select_copy": "select",
    "unsqueeze_copy": "unsqueeze",
    "squeeze_copy": "squeeze",
    "view_copy": "view",
    "permute_copy": "permute",
    "__and__": "and",
    "__or__": "or",
    "__xor__": "xor",
    "bitwise_and": "and",
    "bitwise_or": "or",
    "bitwise_xor": "xor",
    "bitwise_not": "not",
    "_weight_norm": "weight_norm",
    "_weight_norm_interface": "weight_norm",
    "clamp_min": "clamp",
    "clamp_max": "clamp",
    "fft_fftn": "fft",
    "fft_fft": "fft",
    "fft_rfft": "fft",
    "fft_ifft": "fft",
    "fft_irfft": "fft",
    "_fft_r2c": "fft",
    "_fft_c2c": "fft",
    "_fft_c2r": "fft",
    "masked_fill_": "masked_fill",
    "index_put_": "index_put",
    "fill_": "fill",
    "zero_": "zeros_like",
}

#: ``aten.max.other`` / ``aten.min.other`` are the elementwise maximum / minimum of two tensors (the other overloads
#: of max / min are reductions).
_BINARY_OVERLOADS = {("max", "other"): "maximum", ("min", "other"): "minimum"}

#: Convolution overloads (their hyper-parameters are read from the call's arguments).
_CONV_PACKETS = frozenset({"conv1d", "conv2d", "conv3d", "convolution", "_convolution", "conv_transpose2d"})

#: Higher-order ops that only wrap a region of ATen calls in a grad mode or autocast setting (``with torch.no_grad()``
#: inside ``forward``): :func:`from_export` imports the region's calls in place of the wrapper.
_INLINE_HOPS = frozenset({"wrap_with_set_grad_enabled", "wrap_with_autocast"})

#: Side-effect-only nodes of an exported graph (shape asserts), dropped.
_DROP_PREFIXES = ("_assert", "sym_constrain_range", "_check")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is an optional extra
        raise TraceError("torch.export needs PyTorch: pip install 'opgraph[torch]'") from exc
    return torch


@functools.cache
def _skip_dirs() -> tuple[str, ...]:
    """Folders whose frames are not the model's code: torch, opgraph and the standard library."""
    torch = _torch()
    dirs = [os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__))]
    dirs += [sysconfig.get_paths()["stdlib"]]
    return tuple(os.path.realpath(d) + os.sep for d in dirs)


@functools.lru_cache(maxsize=4096)
def _real(path: str) -> str:
    return os.path.realpath(path)


_FILE_LINE = re.compile(r'File "([^"]+)", line (\d+)(?:, in (\S+))?')


def _user_site(frames: Sequence[tuple[str, int, str]]) -> str:
    """``file.py:12 in forward`` of the innermost frame outside torch, opgraph and the standard library."""
    skip = _skip_dirs()
    for fname, line, func in reversed(list(frames)):
        if not _real(fname).startswith(skip) and not fname.startswith("<"):
            return f"{os.path.basename(fname)}:{line} in {func}"
    return ""


def _exception_site(exc: BaseException) -> str:
    """The user's Python line where an export failed: from the traceback, else from dynamo's ``from user code``."""
    frames: list[tuple[str, int, str]] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    site = _user_site(frames)
    if not site:
        found = _FILE_LINE.findall(str(exc))
        site = _user_site([(f, int(n), fn or "?") for f, n, fn in found])
    return site


def _source(stack_trace: str | None) -> str:
    """``File "...", line N, in f`` of the innermost model-code frame of an fx node's stack trace."""
    if not stack_trace:
        return ""
    found = _FILE_LINE.findall(stack_trace)
    skip = _skip_dirs()
    for fname, line, func in reversed(found):
        if not _real(fname).startswith(skip):
            return f'File "{fname}", line {line}, in {func}'
    return f'File "{found[-1][0]}", line {found[-1][1]}, in {found[-1][2]}' if found else ""


def _first_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).strip().split("\n")[:1]).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def export_program(
    module: Any,
    example_inputs: Sequence[Any],
    dynamic_shapes: Any = None,
    *,
    strict: bool | None = None,
    example_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Capture ``module`` with :func:`torch.export.export`: non-strict first, then strict (TorchDynamo).

    Non-strict export (the default of torch >= 2.9) runs the model's Python with fake tensors and is about three
    times faster; strict export is the retry because it handles some code that non-strict cannot (and vice versa).

    Args:
        module: An ``nn.Module`` (put it in eval mode: train mode records batch-norm buffer updates).
        example_inputs: Example tensors, one per positional ``forward`` argument.
        dynamic_shapes: Passed to ``torch.export.export`` (e.g. ``{"x": {0: torch.export.Dim("batch")}}``).
        strict: Only this mode (None: non-strict, then strict).
        example_kwargs: Example keyword arguments of ``forward`` (e.g. a Hugging Face model's ``attention_mask``);
            they become graph inputs after the positional ones, in this mapping's order.

    Returns:
        The ``torch.export.ExportedProgram``, with an attribute ``opgraph_capture`` = ``{"strict", "capture_s"}``.

    Raises:
        TraceError: Neither mode could capture the model; the message names the submodule and the Python line.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TraceError(f"torch.export needs an nn.Module, got {type(module).__name__}; wrap the function in one")
    args = tuple(example_inputs)
    modes = [False, True] if strict is None else [bool(strict)]
    errors: list[tuple[bool, BaseException]] = []
    for mode in modes:
        t0 = time.perf_counter()
        try:
            with _quiet_torch_logs():
                ep = torch.export.export(
                    module, args, kwargs=dict(example_kwargs or {}), dynamic_shapes=dynamic_shapes, strict=mode
                )
        except Exception as exc:  # noqa: BLE001  (export raises many kinds of errors for code it cannot follow)
            log.debug("torch.export(strict=%s) failed for %s: %s", mode, type(module).__name__, exc)
            errors.append((mode, exc))
            continue
        ep.opgraph_capture = {"strict": mode, "capture_s": time.perf_counter() - t0}
        return ep
    first = errors[0][1]
    for _, err in errors:
        specific = _non_pytree_output(err, module) or _constraint_violation(err, module)
        if specific:
            raise TraceError(specific) from err
    raise TraceError(
        f"torch.export could not capture {type(module).__name__}{_where(first, module)}: {_first_line(first)}. "
        + _fix_hint(first)
    ) from first


def _constraint_violation(exc: BaseException, module: Any) -> str:
    """The one-line error for ``dynamic_shapes`` that allow sizes the model cannot take, with torch's fix, or ""."""
    text = str(exc)
    if "Constraints violated" not in text:
        return ""
    lines = [ln.strip() for ln in text.splitlines()]
    why = next((ln.lstrip("- ") for ln in lines if ln.startswith("- ")), lines[0])
    fixes: list[str] = []
    if "Suggested fixes:" in lines:
        for ln in lines[lines.index("Suggested fixes:") + 1 :]:
            if not ln:
                break
            fixes.append(ln)
    fix = f"use {'; '.join(fixes)}" if fixes else "narrow the Dim ranges to sizes the model accepts"
    return (
        f"torch.export could not capture {type(module).__name__}: dynamic_shapes allow sizes the model cannot take "
        f"({why[:240]}); {fix}"
    )


def _data_dependent(exc: BaseException) -> bool:
    """Whether an export error comes from control flow or shapes that depend on tensor values."""
    text = f"{type(exc).__name__} {exc}".lower()
    return any(key in text for key in ("datadependent", "data-dependent", "data dependent", "guardon"))


def _fix_hint(exc: BaseException) -> str:
    """What to change: data-dependent control flow, or (the model's own error) the example inputs."""
    if _data_dependent(exc):
        return (
            "Rewrite the data-dependent control flow at that line (torch.cond, or compute it outside the model), "
            "and put the model in eval mode"
        )
    return (
        "The model's code raised this on the example inputs: check that example_inputs (and example_kwargs, e.g. "
        "an encoder-decoder's decoder_input_ids) match forward() in number, dtype and shape, and that the model "
        "is in eval mode"
    )


#: torch loggers that print graph dumps and guard warnings while a capture fails (the error says it in one line).
_NOISY_LOGGERS = (
    "torch.fx.experimental.symbolic_shapes",
    "torch._dynamo",
    "torch.export",
    "torch._export",
    "torch._subclasses.fake_tensor",  # logs the whole traceback of a shape error in a fake-tensor kernel
    "torch._guards",  # logs where a violated dynamic-shape guard was created
)


@contextlib.contextmanager
def _quiet_torch_logs() -> Iterator[None]:
    """Silence torch's guard warnings and the partial graph it prints to stderr when a capture fails (debug log)."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.level, logging.CRITICAL))
    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if buf.getvalue():
            log.debug("torch.export printed: %s", buf.getvalue())


_BAD_OUTPUT = re.compile(r"Found <class '([\w.]+)'> in output")


def _non_pytree_output(exc: BaseException, module: Any) -> str:
    """The one-line error for a ``forward`` that returns an object torch.export cannot flatten (a cache), or ""."""
    found = _BAD_OUTPUT.search(str(exc))
    if not found:
        return ""
    cls = found.group(1).rsplit(".", 1)[-1]
    site = ""
    try:
        import inspect

        fwd = inspect.unwrap(type(module).forward)  # Hugging Face decorates forward (deprecation, output checks)
        site = f", at {os.path.basename(inspect.getsourcefile(fwd) or '?')}:{inspect.getsourcelines(fwd)[1]} in forward"
    except (OSError, TypeError):
        pass
    return (
        f"torch.export could not capture {type(module).__name__} (in submodule '<root>': {type(module).__name__}"
        f"{site}): forward() returns a {cls}, which is not a tensor, tuple, list, dict or registered pytree. Return "
        "tensors only: for a Hugging Face model set use_cache=False in its config (a cache object is returned "
        "otherwise), or wrap the model in a module whose forward returns the tensors you need"
    )


def _where(exc: BaseException, module: Any) -> str:
    """`` (in submodule 'a.b': Block, at file.py:12 in forward)`` for an error raised while capturing ``module``."""
    sub = _failing_module(exc, module)  # " (in submodule 'a.b': Block)" or ""
    site = _exception_site(exc)
    if sub and site:
        return f"{sub[:-1]}, at {site})"
    if site:
        return f" (at {site})"
    return sub


def _submodule(owner: Any, target: Any) -> Any:
    """The ``torch.fx.GraphModule`` at attribute path ``target`` of ``owner``, or None (a parameter, a constant)."""
    import torch.fx

    obj = owner
    for part in str(target).split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, torch.fx.GraphModule) else None


def _dim(s: Any) -> int:
    """An int of a (possibly symbolic) size: its value, the example's hint for a SymInt, else -1."""
    if isinstance(s, int):
        return s
    hint = getattr(getattr(s, "node", None), "hint", None)
    return int(hint) if isinstance(hint, int) else -1


def _val_meta(val: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if val is None:
        return meta
    if hasattr(val, "shape") and hasattr(val, "dtype"):
        meta["shape"] = tuple(_dim(s) for s in val.shape)
        meta["dtype"] = str(val.dtype).replace("torch.", "")
        try:
            meta["stride"] = tuple(_dim(s) for s in val.stride())
        except Exception:  # noqa: BLE001  (sparse / nested tensors have no strides)
            meta["stride"] = None
    elif isinstance(val, list | tuple):
        meta["shapes"] = [tuple(_dim(s) for s in t.shape) for t in val if hasattr(t, "shape")]
    return meta


def _packet_name(target: Any) -> str:
    if target is operator.getitem:
        return "getitem"
    packet = getattr(target, "_overloadpacket", None)
    if packet is not None:
        return str(getattr(packet, "__name__", str(packet).rsplit(".", 1)[-1]))
    return str(getattr(target, "__name__", repr(target)))


def aten_op(target: Any, args: Sequence[Any] = ()) -> str:
    """The canonical op of an ATen call target (``aten.addmm.default`` -> ``linear``, ``aten.add_.Tensor`` -> ``add``)."""
    name = _packet_name(target)
    if name in ("convolution", "_convolution"):
        weight = args[1] if len(args) > 1 else None
        rank = len(getattr(weight, "meta", {}).get("val", ()).shape) if weight is not None else 4
        transposed = bool(args[6]) if len(args) > 6 and isinstance(args[6], bool) else False
        return ("conv_transpose2d" if transposed else f"conv{max(rank - 2, 1)}d") if rank else "conv2d"
    if name in ("hardtanh", "hardtanh_", "relu6", "relu6_"):
        return "hardtanh"  # ReLU6 is hardtanh(x, 0, 6): a clamp, not a ReLU
    binary = _BINARY_OVERLOADS.get((name, str(getattr(target, "_overloadname", ""))))
    if binary is not None:
        return binary
    return ATEN_OPS.get(name) or _canonical(name)


def _conv_attrs(fx_node: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters of a convolution call in the names ``nn.Conv2d`` uses (kernel size from the weight)."""
    attrs: dict[str, Any] = {}
    weight = kwargs.get("weight")
    wval = getattr(weight, "meta", {}).get("val") if weight is not None else None
    if wval is not None:
        shape = [_dim(s) for s in wval.shape]
        attrs["kernel_size"] = shape[2:]
        groups = int(kwargs.get("groups", 1) or 1)
        transposed = bool(kwargs.get("transposed", False))
        attrs["out_channels"] = shape[1] * groups if transposed else shape[0]
        attrs["in_channels"] = shape[0] if transposed else shape[1] * groups
    for key in ("stride", "padding", "dilation", "groups", "output_padding"):
        if key in kwargs:
            attrs[key] = _jsonable_arg(kwargs[key])
    attrs["bias"] = kwargs.get("bias") is not None
    return attrs


def _normalized_kwargs(fx_node: Any) -> dict[str, Any]:
    """All arguments of an ATen call by name (defaults filled in); empty when the schema cannot be matched."""
    from torch.fx.operator_schemas import normalize_function

    try:
        found = normalize_function(
            fx_node.target, tuple(fx_node.args), dict(fx_node.kwargs), normalize_to_only_use_kwargs=True
        )
    except Exception:  # noqa: BLE001  (non-ATen targets have no schema)
        return {}
    if found is None:
        return {}
    kwargs = dict(found.kwargs)
    schema = getattr(fx_node.target, "_schema", None)
    if schema is not None:  # normalize_function leaves defaults out
        for arg in schema.arguments:
            if arg.name not in kwargs and arg.has_default_value():
                kwargs[arg.name] = arg.default_value
    return kwargs


def from_export(
    module: Any,
    example_inputs: Sequence[Any] = (),
    dynamic_shapes: Any = None,
    *,
    keep_params: bool = False,
    example_kwargs: Mapping[str, Any] | None = None,
) -> Graph:
    """Capture a PyTorch model with ``torch.export`` and import it as a :class:`Graph`.

    Args:
        module: An ``nn.Module`` (captured here, see :func:`export_program`) or a ``torch.export.ExportedProgram``.
        example_inputs: Example tensors, one per positional ``forward`` argument (ignored for a program).
        dynamic_shapes: ``torch.export`` dynamic shapes; symbolic sizes are recorded with the example's value.
        keep_params: Make parameters, buffers and lifted constants ``param`` nodes (default: leave them out, as
            ``from_fx`` does inside module calls).
        example_kwargs: Example keyword arguments of ``forward`` (see :func:`export_program`).

    Returns:
        A graph with one node per ATen call (side-effect-only asserts dropped). Each node has ``attrs["target"]``
        (the module path for a leaf module's main op, else the ATen overload such as ``aten.add.Tensor``),
        ``attrs["args"]``/``attrs["kwargs"]``, module hyper-parameters where it is a module call, and ``meta``
        ``shape``/``dtype``/``stride``, ``module_path``/``module_type`` (``nn_module_stack``), ``source`` and
        ``fx_name``. ``graph.meta`` has ``source="torch.export"``, ``strict``, ``capture_s`` and ``unmapped_ops``
        (``{op: count}`` of the ATen ops that fell outside the core op table, most frequent first).

    Raises:
        TraceError: The model could not be exported (the message names the submodule and the Python line).
    """
    torch = _torch()
    t0 = time.perf_counter()
    if isinstance(module, torch.export.ExportedProgram):
        ep, root = module, None
    else:
        ep, root = export_program(module, example_inputs, dynamic_shapes, example_kwargs=example_kwargs), module
    capture = dict(getattr(ep, "opgraph_capture", {}))
    gm = ep.graph_module
    kinds: dict[str, tuple[str, str]] = {}
    for spec in ep.graph_signature.input_specs:
        name = getattr(spec.arg, "name", None)
        if name is not None:
            kinds[name] = (spec.kind.name, str(spec.target) if spec.target is not None else name)
    named = dict(root.named_modules()) if root is not None else {}

    nodes: list[Node] = []
    inputs: list[int] = []
    outputs: list[int] = []
    ids: dict[Any, int] = {}  # fx node (of the graph or of an inlined region) -> opgraph node id
    regions: dict[Any, list[Any]] = {}  # inlined higher-order op -> the fx nodes its region returns

    def ref_ids(args: Any) -> list[int]:
        found: list[int] = []

        def visit(n: Any) -> Any:
            if n in ids:
                found.append(ids[n])
            for r in regions.get(n, ()):
                if isinstance(r, torch.fx.Node) and r in ids:
                    found.append(ids[r])
            return n

        torch.fx.node.map_arg(args, visit)
        return found

    def inline(fx_node: Any, owner: Any) -> bool:
        """Import the region of a higher-order op that only wraps a subgraph (grad mode / autocast) in place."""
        if _packet_name(fx_node.target) not in _INLINE_HOPS:
            return False
        refs = [i for i, a in enumerate(fx_node.args) if isinstance(a, torch.fx.Node) and a.op == "get_attr"]
        body = _submodule(owner, fx_node.args[refs[0]].target) if refs else None
        if body is None:
            return False
        holders = [n for n in body.graph.nodes if n.op == "placeholder"]
        for holder, arg in zip(holders, fx_node.args[refs[0] + 1 :]):
            if isinstance(arg, torch.fx.Node) and arg in ids:
                ids[holder] = ids[arg]
        walk(body)
        out = next(n for n in body.graph.nodes if n.op == "output")
        results = out.args[0]
        regions[fx_node] = list(results) if isinstance(results, list | tuple) else [results]
        return True

    def walk(owner: Any) -> None:
        for fx_node in owner.graph.nodes:
            if fx_node.op == "placeholder" and owner is not gm:
                continue  # an inlined region's operand: aliased to the outer value by inline()
            if fx_node.op == "output" and owner is not gm:
                continue
            if fx_node.op == "call_function" and inline(fx_node, owner):
                continue
            if fx_node.op == "call_function" and fx_node.target is operator.getitem and fx_node.args[0] in regions:
                picked = regions[fx_node.args[0]][int(fx_node.args[1])]
                if isinstance(picked, torch.fx.Node) and picked in ids:
                    ids[fx_node] = ids[picked]
                continue
            add(fx_node, owner)

    def add(fx_node: Any, owner: Any) -> None:
        meta = _val_meta(fx_node.meta.get("val"))
        meta["fx_name"] = fx_node.name
        attrs: dict[str, Any] = {}
        if fx_node.op == "placeholder":
            kind, fqn = kinds.get(fx_node.name, ("USER_INPUT", fx_node.name))
            if kind in ("USER_INPUT", "TOKEN"):
                op = "input"
                attrs["name"] = fx_node.name
            elif keep_params:
                op = "param"
                attrs.update(target=fqn, kind=kind.lower())
            else:
                return
            ins: list[int] = []
        elif fx_node.op == "get_attr":
            if not keep_params or _submodule(owner, fx_node.target) is not None:  # a region's body is no param
                return
            op, ins = "param", []
            attrs["target"] = str(fx_node.target)
        elif fx_node.op == "call_function":
            name = _packet_name(fx_node.target)
            if name.startswith(_DROP_PREFIXES) and not fx_node.users:
                return
            op = aten_op(fx_node.target, fx_node.args)
            ins = ref_ids((fx_node.args, fx_node.kwargs))
            attrs["target"] = str(fx_node.target)
            attrs["args"] = _jsonable_arg(list(fx_node.args))
            attrs["kwargs"] = _jsonable_arg(dict(fx_node.kwargs))
            if name in _CONV_PACKETS:
                attrs.update(_conv_attrs(fx_node, _normalized_kwargs(fx_node)))
            elif op == "hardtanh":
                kw = _normalized_kwargs(fx_node)
                attrs["min_val"] = float(kw.get("min_val", 0.0 if name.startswith("relu6") else -1.0))
                attrs["max_val"] = float(kw.get("max_val", 6.0 if name.startswith("relu6") else 1.0))
            stack = fx_node.meta.get("nn_module_stack") or {}
            entries = [v for v in stack.values() if isinstance(v, tuple) and len(v) >= 2]
            if entries:
                path, cls = entries[-1][0], entries[-1][1]
                cls_name = cls.rsplit(".", 1)[-1] if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
                meta["module_path"] = str(path)
                meta["module_type"] = cls_name
                sub = named.get(str(path))
                # the leaf module's main op stands for the module call, as in from_fx
                if sub is not None and module_op(sub) == op:
                    attrs.update(module_attrs(sub))
                    attrs["target"] = str(path)
                    attrs["module_type"] = type(sub).__name__
            else:
                meta["module_path"] = ""
                meta["module_type"] = type(root).__name__ if root is not None else ""
            src = _source(fx_node.meta.get("stack_trace"))
            if src:
                meta["source"] = src
        elif fx_node.op == "output":
            outputs.extend(ref_ids(fx_node.args))
            return
        else:  # pragma: no cover - exported graphs have no call_module / call_method nodes
            raise TraceError(f"unexpected node kind {fx_node.op!r} in an exported graph")
        nid = len(nodes)
        nodes.append(Node(nid, op, tuple(ins), attrs, meta))
        ids[fx_node] = nid
        if op == "input":
            inputs.append(nid)

    walk(gm)
    name = type(root).__name__ if root is not None else "ExportedProgram"
    gmeta: dict[str, Any] = {"name": name, "source": "torch.export", **capture}
    gmeta["unmapped_ops"] = unmapped_counts(n.op for n in nodes)
    if gmeta["unmapped_ops"]:
        log.debug("%s: ATen ops outside the op table: %s", name, gmeta["unmapped_ops"])
    gmeta["import_s"] = time.perf_counter() - t0
    return Graph(tuple(nodes), tuple(inputs), tuple(outputs), gmeta)


def from_module(
    module: Any,
    example_inputs: Sequence[Any],
    dynamic_shapes: Any = None,
    *,
    prefer: str = "fx",
    example_kwargs: Mapping[str, Any] | None = None,
) -> Graph:
    """Import a user's PyTorch model: symbolic tracing first, ``torch.export`` when tracing fails.

    Symbolic tracing is the fast path (milliseconds) and gives the graphs that datasets and cost models were built
    from so far; ``from_export`` gives the same graph for the models both can capture (same ops, module paths and
    hyper-parameters) and also captures real model code. ``dynamic_shapes`` forces export.

    Args:
        module: An ``nn.Module`` in eval mode.
        example_inputs: Example tensors, one per positional ``forward`` argument.
        dynamic_shapes: ``torch.export`` dynamic shapes (export only).
        prefer: ``"fx"`` (default) or ``"export"``: which importer to try first.
        example_kwargs: Example keyword arguments of ``forward`` (export only: symbolic tracing takes positional
            inputs).

    Returns:
        The graph; ``graph.meta["source"]`` says which importer made it.

    Raises:
        TraceError: Neither importer could capture the model; one message naming the submodule and the line
            where export failed, and why symbolic tracing failed.
    """
    if prefer not in ("fx", "export"):
        raise TraceError(f"prefer must be 'fx' or 'export', got {prefer!r}")
    if prefer == "export" or dynamic_shapes is not None or example_kwargs:
        return from_export(module, example_inputs, dynamic_shapes, example_kwargs=example_kwargs)
    try:
        return from_fx(module, example_inputs)
    except TraceError as fx_exc:
        log.info("torch.fx could not trace %s, using torch.export: %s", type(module).__name__, fx_exc)
        try:
            return from_export(module, example_inputs)
        except TraceError as exp_exc:
            fx_msg = str(fx_exc).split(". Data-dependent")[0]
            raise TraceError(f"{exp_exc} (symbolic tracing failed too: {fx_msg})") from exp_exc
