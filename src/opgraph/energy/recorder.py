"""Record an eager PyTorch run as an :class:`opgraph.graph.Graph` of aten ops.

A :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every aten op after autograd and
decomposition; global module hooks keep a module-path stack. Each op becomes a node with its dataflow inputs,
shapes, dtypes, strides, alias/mutation info, the user's call site (first frame outside torch), the module
path and a layout-independent fingerprint of its output. Outputs are kept (up to a memory cap) so regions can
be replayed; a tensor about to be mutated in place is copied first so its recorded value stays right.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opgraph.energy import settings as settings_mod
from opgraph.energy.errors import EnergyError
from opgraph.energy.fingerprint import Fingerprint, fingerprint
from opgraph.graph import Graph, Node
from opgraph.graph.io import atomic_open, atomic_write

log = logging.getLogger(__name__)

#: Default cap on the bytes of op outputs kept for replay (beyond it: fingerprints are taken eagerly and the
#: run is marked not replayable, so regions are measured by re-running the callable instead).
SNAPSHOT_LIMIT_BYTES = 512 * 2**20

_THIS_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIP_FILES = {
    os.path.join(_THIS_DIR, name)
    for name in ("recorder.py", "replay.py", "api.py", "differ.py", "profiler.py", "settings.py")
}
_VIEW_OPS_NO_COST = {"aten::detach", "aten::lift_fresh", "aten::alias"}

#: Copy-like ops the redundant-op rule applies to (output equal to input is the whole point of them).
COPY_OPS = frozenset(
    {
        "aten::clone",
        "aten::contiguous",
        "aten::_to_copy",
        "aten::copy",
        "aten::copy_",
        "aten::repeat_interleave",
        "aten::repeat",
        "aten::to",
        "aten::mul",
        "aten::add",
        "aten::div",
        "aten::sub",
        "aten::cat",
        "aten::expand_copy",
        "aten::index_select",
        "aten::permute_copy",
    }
)


def _torch_dir() -> str:
    import torch

    return os.path.dirname(os.path.abspath(torch.__file__))


@dataclass
class Configured:
    """A callable with the settings it must run under (e.g. ``num_threads``, ``default_dtype``).

    Make one with :func:`configured`. The settings are applied around every call and show up in the
    recording's settings snapshot, so config bisection can find them.
    """

    fn: Callable[..., Any]
    settings: dict[str, Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` with the settings applied."""
        with settings_mod.applied(self.settings):
            return self.fn(*args, **kwargs)


def configured(fn: Callable[..., Any], **settings: Any) -> Configured:
    """Wrap ``fn`` so it runs with ``settings`` (snapshot keys such as ``num_threads=2``)."""
    for key in settings:
        if not settings_mod.applicable(key):
            raise EnergyError(
                f"configured(): setting {key!r} cannot be applied in-process; "
                "use one of: " + ", ".join(k.name for k in settings_mod.knobs() if k.set is not None)
            )
    return Configured(fn, dict(settings))


# ----------------------------------------------------------------------------------------------------------
# argument encoding (JSON-able, so a saved run can be replayed after loading)


def _encode_leaf(x: Any, node_of: Callable[[Any], int]) -> Any:
    import torch

    if isinstance(x, torch.Tensor):
        return ["t", node_of(x)]
    if isinstance(x, torch.dtype):
        return ["dtype", str(x).replace("torch.", "")]
    if isinstance(x, torch.device):
        return ["device", str(x)]
    if isinstance(x, torch.memory_format):
        return ["memory_format", str(x).replace("torch.", "")]
    if isinstance(x, torch.layout):
        return ["layout", str(x).replace("torch.", "")]
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return ["v", x]
    if isinstance(x, float):
        return ["v", x] if math.isfinite(x) else ["float", repr(x)]
    if isinstance(x, complex):
        return ["complex", [x.real, x.imag]]
    return ["repr", repr(x)]


def decode_leaf(leaf: Any, value_of: Callable[[int], Any]) -> Any:
    """Turn an encoded argument leaf back into a Python/torch value (tensors through ``value_of``)."""
    import torch

    tag, payload = leaf
    if tag == "t":
        return value_of(int(payload))
    if tag == "v":
        return payload
    if tag == "float":
        return float(payload)
    if tag == "complex":
        return complex(payload[0], payload[1])
    if tag in ("dtype", "memory_format", "layout"):
        return getattr(torch, payload)
    if tag == "device":
        return torch.device(payload)
    raise EnergyError(f"cannot replay an argument recorded only as {payload!r}")


def resolve_op(overload: str) -> Any:
    """Return the ``torch.ops`` overload for a name such as ``"aten::mm.default"``."""
    import torch

    ns, _, rest = overload.partition("::")
    name, _, over = rest.partition(".")
    try:
        return getattr(getattr(getattr(torch.ops, ns), name), over or "default")
    except AttributeError as exc:
        raise EnergyError(f"op {overload!r} does not exist in torch {torch.__version__}") from exc


# ----------------------------------------------------------------------------------------------------------
# the recorded run


@dataclass
class Run:
    """One recorded execution: a graph of aten ops plus what is needed to replay and compare it.

    Attributes:
        graph: Nodes are aten ops (``op`` = ``"aten::mm"``), ``input`` nodes are the call's arguments,
            parameters and other outside tensors; ``getitem`` nodes pick outputs of multi-output ops.
        settings: The settings snapshot taken at the start of the call.
        values: Node id -> recorded tensor (for replay); empty when the run exceeded the memory cap.
        wall_s: Wall time of the recorded call (with recording on).
        fn: The recorded callable (absent for a loaded run).
        inputs: The arguments it was called with (copies).
    """

    graph: Graph
    settings: dict[str, Any]
    values: dict[int, Any] = field(default_factory=dict, repr=False)
    wall_s: float = 0.0
    fn: Callable[..., Any] | None = field(default=None, repr=False)
    inputs: tuple[Any, ...] = field(default=(), repr=False)
    kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    outputs: tuple[Any, ...] = field(default=(), repr=False)

    @property
    def name(self) -> str:
        """The run's name (``graph.meta["name"]``)."""
        return str(self.graph.meta.get("name", "run"))

    @property
    def replayable(self) -> bool:
        """Whether every op's inputs were kept so regions can be replayed in isolation."""
        return bool(self.graph.meta.get("replayable", False)) and bool(self.values)

    def fingerprint(self, node_id: int) -> Fingerprint | None:
        """The fingerprint of node ``node_id``'s output (None for non-tensor nodes)."""
        fp = self.graph.nodes[node_id].meta.get("fp")
        return Fingerprint.from_list(fp) if fp is not None else None

    def op_nodes(self) -> list[Node]:
        """The nodes that are aten ops (not inputs or getitems)."""
        return [n for n in self.graph.nodes if n.op not in ("input", "getitem")]

    def __repr__(self) -> str:
        ops = self.op_nodes()
        return (
            f"Run({self.name!r}: {len(ops)} aten ops, {len(self.graph.inputs)} inputs, "
            f"replayable={self.replayable}, wall={self.wall_s * 1e3:.2f} ms)"
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to directory ``path``: ``graph.json`` (graph, settings) and ``values.pt`` (tensors).

        Returns:
            The directory.
        """
        import io
        import json

        import torch

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        data = {"format": "opgraph.energy.run/1", "graph": self.graph.to_dict(), "wall_s": self.wall_s}
        atomic_write(out / "graph.json", json.dumps(data))
        buf = io.BytesIO()
        outs = []
        for o in self.outputs:
            outs.append(o.detach().cpu() if isinstance(o, torch.Tensor) else o)
        torch.save({"values": {k: v.detach().cpu() for k, v in self.values.items()}, "outputs": outs}, buf)
        with atomic_open(out / "values.pt", "wb") as fh:
            fh.write(buf.getvalue())
        return out


def load(path: str | os.PathLike[str]) -> Run:
    """Load a run saved by :meth:`Run.save` (the callable is not saved; regions replay from the tensors)."""
    import json

    import torch

    src = Path(path)
    gfile = src / "graph.json"
    if not gfile.is_file():
        raise EnergyError(f"load({str(path)!r}): no graph.json there; pass a directory written by Run.save")
    try:
        data = json.loads(gfile.read_text(encoding="utf-8"))
        graph = Graph.from_dict(data["graph"])
    except (ValueError, KeyError) as exc:
        raise EnergyError(f"load({str(path)!r}): graph.json is not a saved run ({exc})") from exc
    values: dict[int, Any] = {}
    outputs: tuple[Any, ...] = ()
    vfile = src / "values.pt"
    if vfile.is_file():
        blob = torch.load(vfile, weights_only=True)
        values = {int(k): v for k, v in blob["values"].items()}
        outputs = tuple(blob.get("outputs", ()))
    settings = dict(graph.meta.get("settings", {}))
    return Run(graph=graph, settings=settings, values=values, wall_s=float(data.get("wall_s", 0.0)), outputs=outputs)


# ----------------------------------------------------------------------------------------------------------
# recording


def _find_modules(fn: Any) -> list[tuple[str, Any]]:
    """Root modules reachable from ``fn`` (itself, its ``__self__``, closure cells, Configured)."""
    import torch

    roots: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(obj: Any, name: str, depth: int) -> None:
        if depth > 3 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, torch.nn.Module):
            roots.append((name, obj))
            return
        if isinstance(obj, Configured):
            visit(obj.fn, name, depth + 1)
            return
        self_obj = getattr(obj, "__self__", None)
        if self_obj is not None:
            visit(self_obj, name, depth + 1)
        func = getattr(obj, "__func__", obj)
        freevars = func.__code__.co_freevars if hasattr(func, "__code__") else ()
        for cell, var in zip(getattr(func, "__closure__", None) or (), freevars):
            try:
                visit(cell.cell_contents, var, depth + 1)
            except ValueError:  # empty cell
                continue
        code = getattr(func, "__code__", None)
        glb = getattr(func, "__globals__", None)
        if code is not None and isinstance(glb, dict):
            for var in code.co_names:
                if isinstance(glb.get(var), torch.nn.Module):
                    visit(glb[var], var, depth + 1)
        if hasattr(obj, "func") and callable(obj.func):  # functools.partial
            visit(obj.func, name, depth + 1)

    visit(fn, "", 0)
    return roots


class _Recorder:
    def __init__(self, snapshot_limit_bytes: int, keep_values: bool) -> None:
        from torch.utils.weak import WeakIdKeyDictionary

        self.nodes: list[dict[str, Any]] = []
        self.input_ids: list[int] = []
        self.node_of_tensor: Any = WeakIdKeyDictionary()
        self.values: dict[int, Any] = {}
        self.kept_bytes = 0
        self.kept_cuda_bytes = 0
        self.limit = snapshot_limit_bytes
        self.cuda_limit = _cuda_budget()
        self.keep_values = keep_values
        self.replayable = keep_values
        self.names: dict[int, str] = {}
        self.module_names: dict[int, str] = {}
        self.module_stack: list[str] = []
        self.storage_nodes: dict[int, list[int]] = {}
        self.frozen: set[int] = set()
        self.torch_dir = _torch_dir()
        self.t0_ns = time.perf_counter_ns()
        self.n_ext = 0
        self.internal_code: dict[Any, bool] = {}
        self.schema_cache: dict[Any, Any] = {}
        self.pending: list[tuple[int, Any, Any, Any, Any]] = []

    # -- node creation ---------------------------------------------------------------------------------------
    def _new(self, op: str, inputs: tuple[int, ...], attrs: dict[str, Any], meta: dict[str, Any]) -> int:
        nid = len(self.nodes)
        self.nodes.append({"op": op, "inputs": inputs, "attrs": attrs, "meta": meta})
        return nid

    def add_input(self, t: Any, name: str, kind: str) -> int:
        nid = self._new("input", (), {"name": name, "kind": kind}, self._tensor_meta(t))
        self.input_ids.append(nid)
        self.node_of_tensor[t] = nid
        self._keep(nid, t, count=False)
        return nid

    def node_of(self, t: Any) -> int:
        nid = self.node_of_tensor.get(t)
        if nid is not None:
            return int(nid)
        name = self.names.get(id(t))
        if name is not None:
            return self.add_input(t, name, "param")
        self.n_ext += 1
        return self.add_input(t, f"const{self.n_ext}", "external")

    @staticmethod
    def _tensor_meta(t: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "shape": list(t.shape),
            "dtype": str(t.dtype).replace("torch.", ""),
            "device": str(t.device),
        }
        try:
            meta["strides"] = list(t.stride())
            meta["contiguous"] = bool(t.is_contiguous())
            meta["channels_last"] = bool(t.dim() == 4 and t.is_contiguous(memory_format=_channels_last()))
        except RuntimeError:  # sparse / nested tensors have no strides
            pass
        meta["bytes"] = int(t.numel() * t.element_size())
        return meta

    def _keep(self, nid: int, t: Any, *, count: bool = True) -> None:
        if not self.keep_values:
            self.nodes[nid]["meta"]["fp"] = fingerprint(t).to_list()
            return
        self.values[nid] = t
        try:
            key = t.untyped_storage().data_ptr()
        except RuntimeError:
            key = id(t)
        self.storage_nodes.setdefault(key, []).append(nid)
        if count:
            nbytes = int(t.numel() * t.element_size())
            if t.device.type == "cuda":  # device memory has its own, larger budget
                self.kept_cuda_bytes += nbytes
                if self.kept_cuda_bytes <= self.cuda_limit:
                    return
            self.kept_bytes += nbytes
            if self.kept_bytes > self.limit:
                log.warning(
                    "recording kept %.0f MiB of tensors (limit %.0f MiB): switching to eager fingerprints; "
                    "regions will be measured by re-running the callable",
                    self.kept_bytes / 2**20,
                    self.limit / 2**20,
                )
                self.finish_fingerprints()
                self.values.clear()
                self.storage_nodes.clear()
                self.keep_values = False
                self.replayable = False

    def freeze_storage(self, t: Any) -> None:
        """Copy every kept tensor sharing ``t``'s storage before ``t`` is mutated in place."""
        if not self.keep_values:
            return
        try:
            key = t.untyped_storage().data_ptr()
        except RuntimeError:
            return
        for nid in self.storage_nodes.pop(key, []):
            if nid in self.values and nid not in self.frozen:
                self.values[nid] = self.values[nid].clone()
                self.frozen.add(nid)

    def finish_fingerprints(self) -> None:
        import torch

        copy_inputs = {
            i for d in self.nodes if d["op"] in COPY_OPS or d["op"].startswith("aten::_to") for i in d["inputs"]
        }
        for nid, t in self.values.items():
            node = self.nodes[nid]
            meta = node["meta"]
            # views and parameters are no cut points: fingerprint them only where the redundant-op rule looks
            skip = meta.get("alias") or node["attrs"].get("kind") in ("param", "external")
            if skip and nid not in copy_inputs:
                continue
            if "fp" not in meta and isinstance(t, torch.Tensor):
                meta["fp"] = fingerprint(t).to_list()

    # -- call sites ---------------------------------------------------------------------------------------
    def callsite(self) -> tuple[str, str, int, str]:
        frame = sys._getframe(3)
        internal = self.internal_code
        while frame is not None:
            code = frame.f_code
            skip = internal.get(code)
            if skip is None:
                fname = code.co_filename
                skip = fname.startswith(self.torch_dir) or fname in _SKIP_FILES or fname.startswith("<frozen")
                internal[code] = skip
            if not skip:
                fname = code.co_filename
                return (
                    f"{os.path.basename(fname)}:{frame.f_lineno} in {code.co_name}",
                    fname,
                    frame.f_lineno,
                    code.co_name,
                )
            frame = frame.f_back
        return ("<unknown>", "", 0, "")

    # -- the op hook ---------------------------------------------------------------------------------------
    def _schema_info(self, func: Any) -> tuple[str, str, tuple[tuple[int, str, bool], ...], bool]:
        info = self.schema_cache.get(func)
        if info is None:
            schema = func._schema
            writes = tuple(
                (i, a.name, bool(a.kwarg_only))
                for i, a in enumerate(schema.arguments)
                if a.alias_info is not None and a.alias_info.is_write
            )
            aliased = any(r.alias_info is not None for r in schema.returns)
            info = (schema.name, f"{schema.name}.{func._overloadname}", writes, aliased)
            self.schema_cache[func] = info
        return info

    def _input_ids(self, obj: Any, ids: dict[int, int]) -> None:
        import torch

        if isinstance(obj, torch.Tensor):
            if id(obj) not in ids:
                ids[id(obj)] = self.node_of(obj)
        elif isinstance(obj, (list, tuple)):
            for x in obj:
                self._input_ids(x, ids)
        elif isinstance(obj, dict):
            for x in obj.values():
                self._input_ids(x, ids)

    def on_op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run one aten op and add its node; the heavy bookkeeping is deferred to :meth:`finalize`."""
        import torch

        name, overload, writes, aliased = self._schema_info(func)
        written = []
        for i, aname, kwarg_only in writes:  # keep the old value of anything sharing a mutated storage
            val = kwargs.get(aname) if kwarg_only or i >= len(args) else args[i]
            if isinstance(val, torch.Tensor):
                written.append(val)
                self.freeze_storage(val)
        ids: dict[int, int] = {}
        self._input_ids(args, ids)
        self._input_ids(kwargs, ids)
        if _FX_CONTEXT:
            site, fname, line, funcname, fx_module, fx_node = _FX_CONTEXT[-1]
        else:
            site, fname, line, funcname = self.callsite()
            fx_module = fx_node = None
        start = time.perf_counter_ns()
        out = func(*args, **kwargs)
        end = time.perf_counter_ns()
        mutates = bool(written)
        meta: dict[str, Any] = {
            "callsite": site,
            "source": f"{os.path.basename(fname)}:{line}" if fname else "",
            "file": fname,
            "line": line,
            "func": funcname,
            "module_path": fx_module if fx_module is not None else ".".join(p for p in self.module_stack if p),
            "alias": bool(aliased and not mutates),
            "mutates": mutates,
            "overload": overload,
            "start_ns": start - self.t0_ns,
            "dur_ns": end - start,
        }
        if fx_node is not None:
            meta["fx_node"] = fx_node
        single = isinstance(out, torch.Tensor)
        nid = self._new(name, tuple(dict.fromkeys(ids.values())), {"overload": overload}, meta)
        self.pending.append((nid, args, kwargs, out, ids))
        if single:
            self.node_of_tensor[out] = nid
            self._keep(nid, out, count=not aliased)
        else:
            outs = out if isinstance(out, (list, tuple)) else (out,)
            for k, o in enumerate(outs):
                if isinstance(o, torch.Tensor):
                    gmeta = {key: meta[key] for key in ("callsite", "source", "file", "line", "func", "module_path")}
                    gmeta.update({"alias": meta["alias"], "mutates": False, "start_ns": meta["start_ns"], "dur_ns": 0})
                    gid = self._new("getitem", (nid,), {"index": k}, gmeta)
                    self.pending.append((gid, None, None, o, None))
                    self.node_of_tensor[o] = gid
                    self._keep(gid, o, count=not aliased)
            for w in written:  # the mutated tensor now holds this op's result
                if w is not None and not any(w is o for o in outs):
                    self.node_of_tensor[w] = nid
        if not self.keep_values:  # over the memory cap: do not hold on to arguments and outputs
            self.finalize()
        return out

    def finalize(self) -> None:
        """Encode arguments, shapes, strides and bytes of every node (after the call, off the timed path)."""
        import torch
        from torch.utils._pytree import tree_flatten, treespec_dumps

        dumped: dict[Any, str] = {}
        for nid, args, kwargs, out, ids in self.pending:
            d = self.nodes[nid]
            meta = d["meta"]
            if args is None:  # a getitem
                meta.update(self._tensor_meta(out))
                continue
            leaves, spec = tree_flatten((args, kwargs))
            enc = []
            in_bytes = 0
            for leaf in leaves:
                if isinstance(leaf, torch.Tensor):
                    enc.append(["t", ids[id(leaf)]])
                    in_bytes += int(leaf.numel() * leaf.element_size())
                else:
                    enc.append(_encode_leaf(leaf, self.node_of))
            key = spec
            try:
                text = dumped.get(key)
            except TypeError:
                text = None
            if text is None:
                text = treespec_dumps(spec)
                with contextlib.suppress(TypeError):  # an unhashable spec is just not cached
                    dumped[key] = text
            d["attrs"]["args"] = enc
            d["attrs"]["spec"] = text
            meta["in_bytes"] = in_bytes
            if isinstance(out, torch.Tensor):
                meta.update(self._tensor_meta(out))
                meta["out_bytes"] = meta["bytes"]
            else:
                out_leaves, _ = tree_flatten(out)
                meta["n_outputs"] = len(out_leaves)
                meta["scalar_out"] = [
                    None if isinstance(o, torch.Tensor) else _encode_leaf(o, self.node_of) for o in out_leaves
                ]
                meta["out_bytes"] = int(
                    sum(o.numel() * o.element_size() for o in out_leaves if isinstance(o, torch.Tensor))
                )
        self.pending.clear()


#: Stack of (callsite, file, line, func, module path, fx node name) set by the fx recorder's interpreter.
_FX_CONTEXT: list[tuple[str, str, int, str, str, str]] = []

_TRACE_LINE = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def _site_from_stack_trace(trace: str | None) -> tuple[str, str, int, str]:
    if not trace:
        return ("<unknown>", "", 0, "")
    torch_dir = _torch_dir()
    found = [f for f in _TRACE_LINE.findall(trace) if not f[0].startswith(torch_dir) and f[0] not in _SKIP_FILES]
    if not found:
        return ("<unknown>", "", 0, "")
    fname, line, func = found[-1]
    return (f"{os.path.basename(fname)}:{line} in {func}", fname, int(line), func)


def record_fx(fn: Any, inputs: Any = (), **kwargs: Any) -> Run:
    """Record through a ``torch.fx`` graph: trace ``fn`` symbolically, then run the graph under the recorder.

    For graph-mode users: call sites and module paths come from the fx graph (``node.stack_trace`` and
    ``nn_module_stack``/call_module targets), and every aten node gets ``meta["fx_node"]``. Takes the same
    arguments as :func:`record`; a callable fx cannot trace raises :class:`EnergyError`.
    """
    import torch
    import torch.fx

    tracer = torch.fx.Tracer()
    tracer.record_stack_traces = True
    try:
        graph = tracer.trace(fn)
    except Exception as exc:  # noqa: BLE001  (fx raises many kinds of errors for untraceable code)
        raise EnergyError(
            f"record_fx(): torch.fx cannot trace {getattr(fn, '__name__', type(fn).__name__)} ({exc}); "
            "use record() (eager) instead"
        ) from exc
    gm = torch.fx.GraphModule(tracer.root, graph)

    class _Interp(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            site = _site_from_stack_trace(n.meta.get("stack_trace") or getattr(n, "stack_trace", None))
            module = str(n.target) if n.op == "call_module" else ""
            _FX_CONTEXT.append((*site, module, n.name))
            try:
                return super().run_node(n)
            finally:
                _FX_CONTEXT.pop()

    def run_graph(*args: Any) -> Any:
        return _Interp(gm).run(*args)

    run_graph.__name__ = getattr(fn, "__name__", type(fn).__name__)
    run = record(run_graph, inputs, **kwargs)
    run.graph.meta["recorder"] = "fx"
    return run


def _cuda_budget() -> int:
    """Bytes of CUDA tensors a recording may keep: a quarter of the first GPU's memory (0 without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return 0
    return int(torch.cuda.get_device_properties(0).total_memory // 4)


def _channels_last() -> Any:
    import torch

    return torch.channels_last


def _clone_tree(x: Any) -> Any:
    import torch
    from torch.utils._pytree import tree_map

    return tree_map(lambda t: t.detach().clone() if isinstance(t, torch.Tensor) else t, x)


def normalize_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Turn ``inputs`` (a tensor, a tuple/list of arguments, or a dict of keyword arguments) into args, kwargs."""
    import torch

    if isinstance(inputs, torch.Tensor):
        return (inputs,), {}
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, Sequence) and not isinstance(inputs, str):
        return tuple(inputs), {}
    if inputs is None:
        return (), {}
    return (inputs,), {}


def record(
    fn: Callable[..., Any],
    inputs: Any = (),
    *,
    name: str | None = None,
    snapshot_limit_bytes: int = SNAPSHOT_LIMIT_BYTES,
    warmup: bool = True,
) -> Run:
    """Run ``fn(*inputs)`` once under the recorder and return the :class:`Run`.

    Args:
        fn: A callable or ``nn.Module`` (wrap it with :func:`configured` to fix settings such as threads).
        inputs: A tensor, a tuple/list of positional arguments, or a dict of keyword arguments. The callable
            gets copies, so one that mutates its inputs does not change yours.
        name: Name stored in the graph (default: the callable's name).
        snapshot_limit_bytes: Cap on the op outputs kept for replay.
        warmup: Call ``fn`` once before recording (first-call costs stay out of the timings).

    Returns:
        The recorded run.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    if not callable(fn):
        raise EnergyError(f"record(fn=...): expected a callable or nn.Module, got {type(fn).__name__}")
    args, kwargs = normalize_inputs(inputs)
    rname = name or getattr(fn, "__name__", None) or type(fn).__name__
    snap_settings = dict(getattr(fn, "settings", {})) if isinstance(fn, Configured) else {}
    with settings_mod.applied(snap_settings):
        snap = settings_mod.snapshot()
    if warmup:
        with torch.no_grad() if not torch.is_grad_enabled() else _null():
            fn(*_clone_tree(args), **_clone_tree(kwargs))
    call_args = _clone_tree(args)
    call_kwargs = _clone_tree(kwargs)
    rec = _Recorder(snapshot_limit_bytes, keep_values=True)
    for mname, mod in _find_modules(fn):
        for pname, p in mod.named_parameters():
            rec.names[id(p)] = f"{mname + '.' if mname else ''}{pname}"
        for bname, b in mod.named_buffers():
            rec.names[id(b)] = f"{mname + '.' if mname else ''}{bname}"
        for sub, m in mod.named_modules():
            rec.module_names[id(m)] = ".".join(x for x in (mname, sub) if x) or type(m).__name__
    flat_in, _ = tree_flatten((call_args, call_kwargs))
    originals = [t.detach().clone() for t in flat_in if isinstance(t, torch.Tensor)]
    k = 0
    for leaf in flat_in:
        if isinstance(leaf, torch.Tensor):
            rec.add_input(leaf, f"arg{k}", "arg")
            k += 1

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            return rec.on_op(func, args, kwargs or {})

    def pre_hook(module: Any, _inp: Any) -> None:
        rec.module_stack.append(
            rec.module_names.get(id(module), type(module).__name__).split(".")[-1]
            if rec.module_stack
            else rec.module_names.get(id(module), type(module).__name__)
        )

    def post_hook(module: Any, _inp: Any, _out: Any) -> None:
        if rec.module_stack:
            rec.module_stack.pop()

    from torch.nn.modules import module as module_mod

    h1 = module_mod.register_module_forward_pre_hook(pre_hook)
    h2 = module_mod.register_module_forward_hook(post_hook)
    t0 = time.perf_counter()
    try:
        with _Mode():
            result = fn(*call_args, **call_kwargs)
    finally:
        h1.remove()
        h2.remove()
    wall = time.perf_counter() - t0
    out_leaves, _ = tree_flatten(result)
    out_ids = []
    out_tensors = []
    for o in out_leaves:
        if isinstance(o, torch.Tensor):
            out_ids.append(rec.node_of(o))
            out_tensors.append(o)
    if not out_ids:
        raise EnergyError(f"record(): {rname} returned no tensor; return the result(s) it computes")
    rec.finalize()
    rec.finish_fingerprints()
    mutated = [
        i
        for i, (t, o) in enumerate(zip([t for t in flat_in if isinstance(t, torch.Tensor)], originals))
        if t.shape == o.shape and not torch.equal(t, o)
    ]
    if mutated:
        log.info("%s mutates its inputs %s in place; it is recorded and replayed on copies", rname, mutated)
    nodes = tuple(Node(i, d["op"], tuple(d["inputs"]), d["attrs"], d["meta"]) for i, d in enumerate(rec.nodes))
    graph = Graph(
        nodes=nodes,
        inputs=tuple(rec.input_ids),
        outputs=tuple(out_ids),
        meta={
            "name": rname,
            "settings": snap,
            "replayable": rec.replayable,
            "mutated_inputs": mutated,
            "recorder": "dispatch",
        },
    )
    return Run(
        graph=graph,
        settings=snap,
        values=rec.values if rec.replayable else {},
        wall_s=wall,
        fn=fn,
        inputs=tuple(args),
        kwargs=dict(kwargs),
        outputs=tuple(out_tensors),
    )


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
