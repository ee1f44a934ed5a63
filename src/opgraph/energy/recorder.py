"""Record an eager PyTorch run as an :class:`opgraph.graph.Graph` of aten ops.

A :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every aten op after autograd and
decomposition; global module hooks keep a module-path stack. Each op becomes a node with its dataflow inputs,
shapes, dtypes, strides, alias/mutation info, the user's call site (first frame outside torch), the module
path and a layout-independent fingerprint of its output. Outputs are kept (up to a memory cap) so regions can
be replayed; a tensor about to be mutated in place is copied first so its recorded value stays right.
A second call of the callable, the timing pass, only times each op (nothing kept, no frame walk, no module
hooks); when it runs the same ops in the same order, the run's timings come from it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opgraph.energy import settings as settings_mod
from opgraph.energy.errors import EnergyError, seconds_field
from opgraph.energy.fingerprint import Fingerprint, fingerprint
from opgraph.graph import Graph, Node

log = logging.getLogger(__name__)

#: Default cap on the bytes of op outputs kept for replay (beyond it: fingerprints are taken eagerly and the
#: run is marked not replayable, so regions are measured by re-running the callable instead).
SNAPSHOT_LIMIT_BYTES = 512 * 2**20
#: Cap on the parameters, buffers and gradients copied so a training step can be undone (or the snapshot limit
#: where that is larger); beyond it changes are detected but not restored, with a warning.
STATE_LIMIT_BYTES = 2 * 2**30

_THIS_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIP_FILES = {
    os.path.join(_THIS_DIR, name)
    for name in ("recorder.py", "replay.py", "api.py", "differ.py", "profiler.py", "settings.py")
}
_VIEW_OPS_NO_COST = {"aten::detach", "aten::lift_fresh", "aten::alias"}
#: Ops the recording call may run where a plain call does not (see :meth:`_Recorder.apply_timings`).
_RECORDING_ONLY = frozenset({"aten::new_empty_strided", "aten::copy_", "aten::clone", "aten::empty_like"})
#: Ops that are run but not recorded (annotations that take opaque handles and do no tensor work).
_UNRECORDED = frozenset({"profiler::_record_function_enter_new", "profiler::_record_function_exit"})

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


#: Frame kinds of the call-site walk: the user's code, a library's model code (whose innermost lines are kept
#: beside the user's line), and plumbing that is skipped (torch internals, the standard library, this package's
#: recording machinery).
_USER, _LIBRARY, _SKIP = 0, 1, 2
#: How many library frames (innermost first) an op keeps in ``meta["lib_stack"]``.
LIB_STACK_DEPTH = 3
#: Model code inside torch, relative to torch's folder: a frame there is a library frame; every other frame
#: under torch (``_ops.py``, ``utils/``, ``overrides.py``, ``autograd/``, ``_tensor.py``, ...) is plumbing.
_TORCH_MODEL_CODE = ("nn/", "functional.py", "optim/")
#: Plumbing inside those folders (module call machinery, not a model's code).
_TORCH_PLUMBING = ("nn/modules/module.py", "nn/utils/_", "nn/parallel/", "optim/optimizer.py")


def frame_kind(filename: str, torch_dir: str, libraries: Sequence[str], stdlib: Sequence[str]) -> int:
    """Whether a frame in ``filename`` is the user's code, a library's model code or plumbing.

    Args:
        filename: A code object's ``co_filename``.
        torch_dir: torch's package folder.
        libraries: Folders of installed packages (site-packages); files there other than torch are library code
            (but files in a ``utils/`` folder, such as decorators, are plumbing), except this package (its case
            suite is user code, its recorder plumbing).
        stdlib: Folders of the standard library (plumbing such as ``contextlib``).

    Returns:
        ``_USER``, ``_LIBRARY`` or ``_SKIP``.
    """
    if filename in _SKIP_FILES or filename.startswith("<frozen"):
        return _SKIP
    if filename.startswith(torch_dir):
        rel = filename[len(torch_dir) :].lstrip(os.sep).replace(os.sep, "/")
        if rel.startswith(_TORCH_MODEL_CODE) and not rel.startswith(_TORCH_PLUMBING):
            return _LIBRARY
        return _SKIP
    if filename.startswith(_OPGRAPH_DIR):
        return _USER
    if any(filename.startswith(d) for d in libraries):  # a library's helpers (decorators, wrappers) are plumbing
        return _SKIP if f"{os.sep}utils{os.sep}" in filename else _LIBRARY
    if any(filename.startswith(d) for d in stdlib):
        return _SKIP
    return _USER


_OPGRAPH_DIR = os.path.dirname(_THIS_DIR) + os.sep


def _frame_classifier() -> Callable[[str], int]:
    """:func:`frame_kind` bound to this interpreter's torch, site-packages and standard-library folders."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    libraries = {paths.get("purelib", ""), paths.get("platlib", "")}
    with contextlib.suppress(AttributeError):  # virtualenvs of old may lack these
        libraries.update(site.getsitepackages())
    with contextlib.suppress(AttributeError):
        libraries.add(site.getusersitepackages())
    libs = tuple(os.path.abspath(d) + os.sep for d in libraries if d)
    stdlib = tuple(os.path.abspath(d) + os.sep for d in {paths.get("stdlib", ""), paths.get("platstdlib", "")} if d)
    torch_dir = _torch_dir()

    def classify(filename: str) -> int:
        return frame_kind(filename, torch_dir, libs, stdlib)

    return classify


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
        wall_s: Wall time of the timed call, seconds: the timing pass of :func:`record` (ops only timed), or
            the recording call where there was none (``graph.meta["timing"]`` says which).
        cpu_s: Process CPU time of the same call, seconds.
        fn: The recorded callable (absent for a loaded run).
        inputs: The arguments it was called with (copies).
        kwargs: Its keyword arguments (copies).
        outputs: The tensors it returned.
        grads: ``(name, gradient)`` of every parameter with a gradient after the recording call (its ``.grad``
            at the end, or the value after its last accumulation where the step set it to None), compared
            between the two sides of a diff.
        state: The parameters, gradients and optimizer states the callable can change (see :class:`StepState`).
    """

    graph: Graph
    settings: dict[str, Any]
    values: dict[int, Any] = field(default_factory=dict, repr=False)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    fn: Callable[..., Any] | None = field(default=None, repr=False)
    inputs: tuple[Any, ...] = field(default=(), repr=False)
    kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    outputs: tuple[Any, ...] = field(default=(), repr=False)
    grads: tuple[tuple[str, Any], ...] = field(default=(), repr=False)
    state: StepState | None = field(default=None, repr=False)

    @property
    def stateful(self) -> bool:
        """Whether the callable changes parameters, buffers, gradients or optimizer state (a training step)."""
        return self.state is not None and self.state.stateful

    def restore(self) -> None:
        """Put the modules and optimizers the callable changes back as they were before the recording."""
        if self.stateful and self.state is not None:
            self.state.restore()

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

        The two files appear together or not at all: they are written into a temporary folder that replaces
        ``path`` in one step (:func:`opgraph._base.fileio.atomic_dir`; a concurrent save to the same folder is
        refused), and ``graph.json`` records the SHA-256 of ``values.pt``, which :func:`load` checks.

        Returns:
            The directory.
        """
        import hashlib
        import io

        import torch

        from opgraph._base.fileio import atomic_dir
        from opgraph._base.jsonio import dumps

        out = Path(path)
        buf = io.BytesIO()
        outs = []
        for o in self.outputs:
            outs.append(o.detach().cpu() if isinstance(o, torch.Tensor) else o)
        torch.save({"values": {k: v.detach().cpu() for k, v in self.values.items()}, "outputs": outs}, buf)
        blob = buf.getvalue()
        data = {
            "format": "opgraph.energy.run/1",
            "graph": self.graph.to_dict(),
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "values_sha256": hashlib.sha256(blob).hexdigest(),
        }
        with atomic_dir(out, owned=RUN_FILES) as tmp:
            (tmp / "values.pt").write_bytes(blob)
            (tmp / "graph.json").write_text(dumps(data, indent=None), encoding="utf-8")
        return out


#: The files of a saved run (a folder written by :meth:`Run.save`).
RUN_FILES = ("graph.json", "values.pt")


def load(path: str | os.PathLike[str]) -> Run:
    """Load a run saved by :meth:`Run.save` (the callable is not saved; regions replay from the tensors).

    ``values.pt`` is read with ``weights_only=True`` (tensors only, never code) and must match the checksum in
    ``graph.json``; a folder whose two files come from different saves is refused.
    """
    import hashlib

    from opgraph._base.jsonio import read_json
    from opgraph._base.torchio import load_checkpoint

    src = Path(path)
    gfile = src / "graph.json"
    if not gfile.is_file():
        raise EnergyError(f"load({str(path)!r}): no graph.json there; pass a directory written by Run.save")
    data = read_json(gfile, what=f"load({str(path)!r}):", error=EnergyError)
    try:
        graph = Graph.from_dict(data["graph"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EnergyError(f"load({str(path)!r}): graph.json is not a saved run ({exc})") from exc
    values: dict[int, Any] = {}
    outputs: tuple[Any, ...] = ()
    vfile = src / "values.pt"
    want = data.get("values_sha256")
    if vfile.is_file():
        if want is not None and hashlib.sha256(vfile.read_bytes()).hexdigest() != want:
            raise EnergyError(
                f"load({str(path)!r}): values.pt does not belong to graph.json (checksum differs; the folder "
                "mixes two saves); save the run again"
            )
        blob = load_checkpoint(vfile, what=f"load({str(path)!r}): values.pt", error=EnergyError)
        if not isinstance(blob, dict) or not isinstance(blob.get("values"), dict):
            raise EnergyError(f"load({str(path)!r}): values.pt is not a saved run's tensors; save the run again")
        values = {int(k): v for k, v in blob["values"].items()}
        outputs = tuple(blob.get("outputs", ()))
    elif want is not None:
        raise EnergyError(f"load({str(path)!r}): values.pt is missing beside graph.json; save the run again")
    settings = dict(graph.meta.get("settings", {}))
    return Run(
        graph=graph,
        settings=settings,
        values=values,
        wall_s=seconds_field(data, "wall_s", f"load({str(path)!r})"),
        cpu_s=seconds_field(data, "cpu_s", f"load({str(path)!r})"),
        outputs=outputs,
    )


# ----------------------------------------------------------------------------------------------------------
# recording


def _find_modules(fn: Any, optimizers: list[Any] | None = None) -> list[tuple[str, Any]]:
    """Root modules reachable from ``fn`` (itself, its ``__self__``, closure cells, globals, Configured).

    Args:
        fn: The callable.
        optimizers: If given, the ``torch.optim.Optimizer`` objects reachable the same way are appended to it.
    """
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
        if isinstance(obj, torch.optim.Optimizer):
            if optimizers is not None:
                optimizers.append(obj)
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
                if isinstance(glb.get(var), (torch.nn.Module, torch.optim.Optimizer)):
                    visit(glb[var], var, depth + 1)
        if hasattr(obj, "func") and callable(obj.func):  # functools.partial
            visit(obj.func, name, depth + 1)

    visit(fn, "", 0)
    return roots


class StepState:
    """What a training step changes outside its arguments, saved once and put back between calls.

    Parameters and buffers of the modules reachable from the callable (values), the parameters' ``.grad``
    and the state and hyper-parameters of the optimizers reachable from it. :func:`record` saves it before the
    recording call and, when the call changed any of it (:attr:`stateful`), restores it before the timing
    pass, after it (so the user's model is left as it was), and before every whole-run window and re-run.

    Args:
        modules: Root modules (``(name, module)``).
        optimizers: Optimizers.
    """

    def __init__(self, modules: Sequence[tuple[str, Any]], optimizers: Sequence[Any]) -> None:
        tensors: dict[int, tuple[str, Any]] = {}
        for mname, mod in modules:
            prefix = f"{mname}." if mname else ""
            for pname, t in [*mod.named_parameters(), *mod.named_buffers()]:
                tensors.setdefault(id(t), (prefix + pname, t))
        for opt in optimizers:
            for group in opt.param_groups:
                for k, p in enumerate(group["params"]):
                    tensors.setdefault(id(p), (f"optimizer.param{k}", p))
        self.names = [name for name, _t in tensors.values()]
        self.tensors = [t for _name, t in tensors.values()]
        self.optimizers = list(optimizers)
        self.stateful = False
        self.saved = False
        self._saved: list[Any] = []
        self._versions: list[int] = []
        self._grads: list[Any] = []
        self._opt: list[tuple[dict[Any, dict[str, Any]], list[dict[str, Any]]]] = []

    @property
    def params(self) -> list[tuple[str, Any]]:
        """``(name, parameter)`` of every tensor that requires grad."""
        return [(n, t) for n, t in zip(self.names, self.tensors) if t.requires_grad]

    def save(self, max_bytes: float = math.inf) -> None:
        """Copy the values, gradients and optimizer states (the state every restore goes back to).

        Args:
            max_bytes: Copy nothing when the values and gradients hold more than this (e.g. inference of a large
                model: :attr:`saved` is False, changes are still detected through version counters).
        """
        self._versions = [t._version for t in self.tensors]
        size = sum(t.nbytes + (t.grad.nbytes if t.grad is not None else 0) for t in self.tensors)
        self.saved = size <= max_bytes
        if not self.saved:
            self._saved, self._grads, self._opt = [], [], []
            return
        self._saved = [t.detach().clone() for t in self.tensors]
        self._grads = [None if t.grad is None else t.grad.detach().clone() for t in self.tensors]
        self._opt = [(_copy_opt_state(opt.state), _copy_groups(opt.param_groups)) for opt in self.optimizers]

    def storages(self) -> set[int | None]:
        """Storage keys of the live tensors (values, gradients, optimizer state) a restore writes into."""
        import torch

        keys = {_storage_key(t) for t in self.tensors}
        keys |= {_storage_key(t.grad) for t in self.tensors if t.grad is not None}
        for opt in self.optimizers:
            for st in opt.state.values():
                keys |= {_storage_key(v) for v in st.values() if isinstance(v, torch.Tensor)}
        keys.discard(None)
        return keys

    def changed(self) -> bool:
        """Whether anything differs from the saved state (in-place writes, new or changed gradients, a step)."""
        import torch

        if any(t._version != v for t, v in zip(self.tensors, self._versions)):
            return True
        for t, g in zip(self.tensors, self._grads):
            if (t.grad is None) != (g is None) or (g is not None and not torch.equal(t.grad, g)):
                return True
        for opt, (state, groups) in zip(self.optimizers, self._opt):
            if len(opt.state) != len(state) or not _same(_copy_groups(opt.param_groups), groups):
                return True
            if any(not _same(dict(opt.state.get(p, {})), st) for p, st in state.items()):
                return True
        return False

    def restore(self) -> None:
        """Put the saved values, gradients and optimizer states back (in place: references stay valid)."""
        import torch

        if not self._saved:
            return
        with torch.no_grad():
            for t, v in zip(self.tensors, self._saved):
                t.copy_(v)
        for t, g in zip(self.tensors, self._grads):  # new gradient tensors: recorded ones may alias the old
            t.grad = None if g is None else g.clone()
        for opt, (state, groups) in zip(self.optimizers, self._opt):
            opt.state.clear()
            opt.state.update(_copy_opt_state(state))
            for group, saved in zip(opt.param_groups, groups):
                group.update(_copy_groups([saved])[0])


def _same(a: Any, b: Any) -> bool:
    """Equality of nested dicts/lists of tensors and plain values (tensors: same shape and values)."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _copy_opt_state(state: Mapping[Any, Mapping[str, Any]]) -> dict[Any, dict[str, Any]]:
    import copy

    import torch

    return {
        p: {k: v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v) for k, v in st.items()}
        for p, st in state.items()
    }


def _copy_groups(groups: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    import copy

    return [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in groups]


class _Recorder:
    """The state of one recording; the class made by :func:`_recorder_class` is also the dispatch mode.

    The dispatch hook (:meth:`dispatch`) does only what must happen while the op runs: it finds the calling
    frame (a code object and a line), notes the module-path tuple, times the op, and appends one raw tuple
    holding the op, its arguments and its outputs (which keeps every tensor alive, and so each tensor's
    ``id`` unique, until :meth:`finalize`). It also counts kept bytes against the snapshot cap and, before an
    in-place op, copies the kept tensors it will overwrite. :meth:`finalize` replays the raw tuples in
    order after the call: it maps each tensor argument to the node that last produced it (first-seen
    tensors become input nodes), encodes arguments, and fills in shapes, strides, bytes, call-site strings
    and module paths. The resulting graph is the same as if all of that had been done inside the call.
    """

    def __init__(self, snapshot_limit_bytes: int, keep_values: bool) -> None:
        import torch

        super().__init__()  # TorchDispatchMode's state, in the class made by _recorder_class()
        self.tensor_type = torch.Tensor
        #: Raw op tuples of the hot path not yet turned into nodes.
        self.pending: list[tuple[Any, ...]] = []
        #: Node dicts (``op``, ``inputs``, ``attrs``, ``meta``); ids equal positions.
        self.nodes: list[dict[str, Any]] = []
        self.input_ids: list[int] = []
        #: id(tensor) -> (node id, weak reference); the reference tells a live tensor from a reused id.
        self.tensor_nodes: dict[int, tuple[int, Any]] = {}
        self.values: dict[int, Any] = {}
        self.kept_order: list[int] = []
        self.indexed = 0
        self.storage_nodes: dict[int, list[int]] = {}
        self.frozen: set[int] = set()
        self.kept_bytes = 0
        self.kept_cuda_bytes = 0
        self.limit = snapshot_limit_bytes
        self.cuda_limit = _cuda_budget()
        self.keep_values = keep_values
        self.replayable = keep_values
        self.names: dict[int, str] = {}
        #: id(module) -> (its full path, its last path component).
        self.module_labels: dict[int, tuple[str, str]] = {}
        self.module_stack: tuple[str, ...] = ()
        self.torch_dir = _torch_dir()
        self.t0_ns = _now_ns()
        self.n_ext = 0
        #: id(code object) -> ``_USER``, ``_LIBRARY`` or ``_SKIP`` (see :func:`frame_kind`; ids, because hashing a
        #: code object hashes its bytecode).
        self.frame_kinds: dict[int, int] = {}
        self.classify = _frame_classifier()
        self.seen_code: list[Any] = []
        #: id(op overload) -> see :meth:`_schema_info` (ids: ``OpOverload.__hash__`` is a Python call).
        self.schema_cache: dict[int, tuple[Any, tuple[tuple[int, str, bool], ...], bool, str, str]] = {}
        self.schema_funcs: list[Any] = []
        #: Caches of :meth:`_op_node`: pytree spec -> its JSON text, site -> call-site fields, module tuple -> path.
        self.spec_texts: dict[Any, str] = {}
        self.site_fields: dict[Any, dict[str, Any]] = {}
        self.path_strings: dict[tuple[str, ...], str] = {}
        #: ``(op node id, op overload)`` per recorded aten op, in execution order (see :meth:`apply_timings`).
        self.op_order: list[tuple[int, Any]] = []
        #: autograd sequence number -> (site, module stack) of the forward op that created that autograd node
        #: (as the PyTorch profiler links backward ops to forward ops through ``sequence_nr``).
        self.forward_sites: dict[int, tuple[Any, tuple[str, ...]]] = {}
        #: The autograd node evaluated on this thread (None outside backward) and the next sequence number.
        self.current_node = torch._C._current_autograd_node
        self.peek_sequence_nr = torch._C._autograd._get_sequence_nr

    # -- the hot path (runs once per aten op, inside the recorded call) --------------------------------------
    def dispatch(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        """``__torch_dispatch__``: run one aten op and append its raw tuple.

        The common case is written out in this one function on purpose: right after a kernel the
        interpreter's caches are cold and each extra Python call or dict lookup here costs microseconds per
        op (docs/energy.md, "Recording overhead"). In-place writes, multi-output ops, CUDA tensors and the
        memory cap go to helper methods.
        """
        info = self.schema_cache.get(id(func))
        if info is None:
            info = self._schema_info(func)
        if kwargs is None:
            kwargs = {}
        if info[3] in _UNRECORDED:  # profiler annotations (e.g. an optimizer's record_function): no work
            return info[0](*args, **kwargs)
        written = self._before_write(info[1], args, kwargs) if info[1] else None
        if _FX_CONTEXT:
            site = _FX_CONTEXT[-1]
        else:
            # The user's line (the first frame outside torch, the libraries and this package) and the library
            # frames inside it (innermost first, up to LIB_STACK_DEPTH), as (code object, line); strings later.
            frame = sys._getframe(1)
            kinds = self.frame_kinds
            lib: list[tuple[Any, int]] = []
            while frame is not None:
                kind = kinds.get(id(frame.f_code))
                if kind is None:
                    kind = self._learn_frame_kind(frame.f_code)
                if kind == _USER:
                    break
                if kind == _LIBRARY and len(lib) < LIB_STACK_DEPTH:
                    lib.append((frame.f_code, frame.f_lineno))
                frame = frame.f_back
            if frame is not None:
                site = (frame.f_code, frame.f_lineno, tuple(lib))
            else:  # called from library code only (e.g. a library's thread): its outermost kept frame stands in
                site = (*lib[-1], tuple(lib)) if lib else None
        stack = self.module_stack
        node = self.current_node()
        if node is None:  # forward: the op about to get autograd node number (peek - 1) was made here
            bw = None
            self.forward_sites.setdefault(self.peek_sequence_nr() - 1, (site, stack))
        else:  # backward: attribute the op to the forward line that created the node being evaluated
            bw = (site, node.name())
            fwd = self.forward_sites.get(node._sequence_nr())
            if fwd is not None:
                site, stack = fwd
            self.forward_sites.setdefault(self.peek_sequence_nr() - 1, (site, stack))  # double backward
        start = _now_ns()
        out = info[0](*args, **kwargs)
        end = _now_ns()
        self.pending.append((func, args, kwargs, out, site, stack, start, end, written, bw))
        if not self.keep_values:  # over the memory cap: do not hold on to arguments and outputs
            self.finalize()
        elif not info[2]:  # views share their base's memory: only new tensors count against the cap
            if isinstance(out, self.tensor_type) and not out.is_cuda:
                self.kept_bytes += out.nbytes
                if self.kept_bytes > self.limit:
                    self._over_cap()
            else:
                self._count(out)
        return out

    def _learn_frame_kind(self, code: Any) -> int:
        """Classify a code object once: the user's code, a library's model code, or plumbing (see :func:`frame_kind`)."""
        kind = self.classify(code.co_filename)
        self.frame_kinds[id(code)] = kind
        self.seen_code.append(code)  # keeps the id-keyed cache valid
        return kind

    def _schema_info(self, func: Any) -> tuple[Any, tuple[tuple[int, str, bool], ...], bool, str, str]:
        """``(callable, written arguments, returns an alias, name, overload)`` of an op (cached by id).

        The callable is the op's C++ entry point (``OpOverload._op``), which is what calling the overload
        runs, minus one Python frame.
        """
        schema = func._schema
        writes = tuple(
            (i, a.name, bool(a.kwarg_only))
            for i, a in enumerate(schema.arguments)
            if a.alias_info is not None and a.alias_info.is_write
        )
        aliased = any(r.alias_info is not None for r in schema.returns)
        op = getattr(func, "_op", func)
        info = (op, writes, aliased, schema.name, f"{schema.name}.{func._overloadname}")
        self.schema_cache[id(func)] = info
        self.schema_funcs.append(func)  # keeps the id-keyed cache valid
        return info

    def _before_write(
        self, writes: tuple[tuple[int, str, bool], ...], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[Any]:
        """Prepare an in-place op: bring the nodes up to date, then copy what it will overwrite.

        Returns:
            The tensors the op writes into.
        """
        self.finalize()
        for t in _tensors(args, kwargs):  # first-seen arguments become input nodes holding the old value
            self.node_of(t)
        written = []
        for i, aname, kwarg_only in writes:
            val = kwargs.get(aname) if kwarg_only or i >= len(args) else args[i]
            if isinstance(val, self.tensor_type):
                written.append(val)
                self.freeze_storage(val)
        return written

    # -- memory: the snapshot cap and copies before in-place writes ------------------------------------------
    def _count(self, out: Any) -> None:
        """Count a (multi-output or CUDA) op's new tensors against the snapshot caps."""
        outs = out if isinstance(out, (list, tuple)) else (out,)
        for t in outs:
            if not isinstance(t, self.tensor_type):
                continue
            if t.is_cuda:  # device memory has its own, larger budget
                self.kept_cuda_bytes += t.nbytes
                if self.kept_cuda_bytes <= self.cuda_limit:
                    continue
            self.kept_bytes += t.nbytes
        if self.kept_bytes > self.limit and self.keep_values:
            self._over_cap()

    def _over_cap(self) -> None:
        """Stop keeping tensors: fingerprint what is kept, drop it, and mark the run not replayable."""
        log.warning(
            "recording kept %.0f MiB of tensors (limit %.0f MiB): switching to eager fingerprints; "
            "regions will be measured by re-running the callable",
            self.kept_bytes / 2**20,
            self.limit / 2**20,
        )
        self.finalize()
        self.finish_fingerprints()
        self.values.clear()
        self.kept_order.clear()
        self.storage_nodes.clear()
        self.keep_values = False
        self.replayable = False

    def freeze_storage(self, t: Any) -> None:
        """Copy every kept tensor sharing ``t``'s storage before ``t`` is mutated in place."""
        if not self.keep_values:
            return
        key = _storage_key(t)
        if key is None:
            return
        self._index_storages()
        for nid in self.storage_nodes.pop(key, []):
            if nid in self.values and nid not in self.frozen:
                self.values[nid] = self.values[nid].clone()
                self.frozen.add(nid)

    def _index_storages(self) -> None:
        """Add the tensors kept since the last call to the storage -> nodes index (built only when needed)."""
        order = self.kept_order
        for nid in order[self.indexed :]:
            if nid in self.frozen:
                continue
            t = self.values[nid]
            key = _storage_key(t)
            self.storage_nodes.setdefault(id(t) if key is None else key, []).append(nid)
        self.indexed = len(order)

    # -- nodes (after the call, or before an in-place op) -----------------------------------------------------
    def node_of(self, t: Any) -> int:
        """The node that last produced tensor ``t``; a tensor seen for the first time becomes an input node."""
        entry = self.tensor_nodes.get(id(t))
        if entry is not None and entry[1]() is t:
            return int(entry[0])
        name = self.names.get(id(t))
        if name is not None:
            return self.add_input(t, name, "param")
        self.n_ext += 1
        return self.add_input(t, f"const{self.n_ext}", "external")

    def add_input(self, t: Any, name: str, kind: str) -> int:
        """Add an input node for tensor ``t`` (an argument, a parameter or an outside tensor)."""
        nid = self._append(
            {"op": "input", "inputs": (), "attrs": {"name": name, "kind": kind}, "meta": _tensor_meta(t)}
        )
        self.input_ids.append(nid)
        self._add_value(nid, t)
        return nid

    def _append(self, node: dict[str, Any]) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _add_value(self, nid: int, t: Any) -> None:
        """Map ``t`` to node ``nid`` and keep it for replay (or fingerprint it now, over the memory cap)."""
        self.tensor_nodes[id(t)] = (nid, _weakref(t))
        if not self.keep_values:
            self.nodes[nid]["meta"]["fp"] = fingerprint(t).to_list()
            return
        self.values[nid] = t
        self.kept_order.append(nid)

    def finalize(self) -> None:
        """Turn the pending raw tuples into nodes, in execution order."""
        pending = self.pending
        self.pending = []
        for entry in pending:
            self._add_op(entry)

    def _add_op(self, entry: tuple[Any, ...]) -> None:
        """Add the node of one raw op tuple (and a getitem node per output of a multi-output op)."""
        func, args, kwargs, out, _site, _stack, _start, _end, written, _bw = entry
        in_ids = [self.node_of(t) for t in _tensors(args, kwargs)]
        nid = self._append(self._op_node(entry, in_ids))
        self.op_order.append((nid, func))
        if isinstance(out, self.tensor_type):
            self._add_value(nid, out)
            return
        outs = out if isinstance(out, (list, tuple)) else (out,)
        for k, o in enumerate(outs):
            if isinstance(o, self.tensor_type):
                self._add_value(self._append(_getitem_node(nid, self.nodes[nid], k, o)), o)
        for w in written or ():  # the mutated tensor now holds this op's result
            if not any(w is o for o in outs):
                self.tensor_nodes[id(w)] = (nid, _weakref(w))

    def _op_node(self, entry: tuple[Any, ...], in_ids: list[int]) -> dict[str, Any]:
        """The node dict of one raw op tuple whose tensor arguments are the nodes ``in_ids``."""
        from torch.utils._pytree import tree_flatten, treespec_dumps

        func, args, kwargs, out, site, stack, start, end, written, bw = entry
        _op, _writes, aliased, name, overload = self.schema_cache[id(func)]
        spec_text, sites, paths = self.spec_texts, self.site_fields, self.path_strings
        tensor_type = self.tensor_type
        ids = {id(t): nid for t, nid in zip(_tensors(args, kwargs), in_ids)}
        leaves, spec = tree_flatten((args, kwargs))
        enc = []
        in_bytes = 0
        for leaf in leaves:
            if isinstance(leaf, tensor_type):
                enc.append(["t", ids[id(leaf)]])
                in_bytes += leaf.nbytes
            else:
                enc.append(_encode_leaf(leaf, self.node_of))
        fx = _is_fx_site(site)
        meta = dict(_site_meta(site, sites))
        path = paths.get(stack)
        if path is None:
            path = paths[stack] = ".".join(p for p in stack if p)
        mutates = bool(written)
        meta.update(
            module_path=site[4] if fx and site[4] is not None else path,
            alias=bool(aliased and not mutates),
            mutates=mutates,
            overload=overload,
            start_ns=start - self.t0_ns,
            dur_ns=end - start,
            in_bytes=int(in_bytes),
        )
        if fx:
            meta["fx_node"] = site[5]
        if bw is not None:  # a backward op: its call site is the forward line; where backward was called
            meta["phase"] = "backward"
            meta["grad_fn"] = bw[1]
            meta["backward_callsite"] = _site_meta(bw[0], sites)["callsite"]
        if isinstance(out, tensor_type):
            meta.update(_tensor_meta(out))
            meta["out_bytes"] = meta["bytes"]
        else:
            out_leaves, _ = tree_flatten(out)
            meta["n_outputs"] = len(out_leaves)
            meta["scalar_out"] = [
                None if isinstance(o, tensor_type) else _encode_leaf(o, self.node_of) for o in out_leaves
            ]
            meta["out_bytes"] = int(sum(o.nbytes for o in out_leaves if isinstance(o, tensor_type)))
        try:
            text = spec_text.get(spec)
        except TypeError:  # an unhashable spec is just not cached
            text = None
        if text is None:
            text = treespec_dumps(spec)
            with contextlib.suppress(TypeError):
                spec_text[spec] = text
        return {
            "op": name,
            "inputs": tuple(dict.fromkeys(in_ids)),
            "attrs": {"overload": overload, "args": enc, "spec": text},
            "meta": meta,
        }

    def apply_timings(self, ops: Sequence[tuple[Any, int, int]], t0_ns: int) -> bool:
        """Replace the op timings with those of the timing pass, if it ran the same ops in the same order.

        Cost-free alias ops (``detach``, ``alias``, ``lift_fresh``) are left out of the comparison on both
        sides: keeping an output alive can add a ``detach`` (``torch.rand`` does that when its result has
        another reference), so the recording call may run one the timing pass does not. Such an op of the
        recording call gets ``dur_ns`` 0 and starts where the op before it ended. Likewise the copies autograd
        makes of a gradient the recorder keeps alive (``new_empty_strided`` + ``copy_`` where a plain call
        hands the gradient over to ``.grad``): they get ``dur_ns`` 0 and ``meta["recording_only"]``, and
        region replays skip them.

        Args:
            ops: ``(op overload, start ns, end ns)`` per aten op of the timing pass (:func:`_timing_class`).
            t0_ns: ``perf_counter_ns()`` at the start of the timing pass.

        Returns:
            Whether the timings were replaced (False: the op sequences differ, the recording call's stay).
        """
        free = _VIEW_OPS_NO_COST | _UNRECORDED
        kept = [(nid, f) for nid, f in self.op_order if f._schema.name not in free]
        timed = [op for op in ops if op[0]._schema.name not in free]
        nodes = self.nodes
        span: dict[int, tuple[int, int]] = {}
        i = j = 0
        while i < len(kept) and j < len(timed):
            if kept[i][1] is timed[j][0]:
                span[kept[i][0]] = (timed[j][1] - t0_ns, timed[j][2] - timed[j][1])
                i, j = i + 1, j + 1
                continue
            # Keeping a gradient alive makes autograd copy it into .grad instead of taking it over
            # (new_empty_strided + copy_): ops only the recording call ran, marked and skipped by replay.
            skip = next(
                (k for k in range(1, 5) if i + k < len(kept) and kept[i + k][1] is timed[j][0]),
                len(kept) - i if j == len(timed) else None,
            )
            if skip is None or any(f._schema.name not in _RECORDING_ONLY for _n, f in kept[i : i + skip]):
                return False
            for nid, _f in kept[i : i + skip]:
                nodes[nid]["meta"]["recording_only"] = True
            i += skip
        for nid, f in kept[i:]:
            if f._schema.name not in _RECORDING_ONLY:
                return False
            nodes[nid]["meta"]["recording_only"] = True
        if j != len(timed):
            return False
        last_end = 0
        for nid, _f in self.op_order:
            start, dur = span.get(nid, (last_end, 0))
            meta = nodes[nid]["meta"]
            meta["start_ns"], meta["dur_ns"] = start, dur
            last_end = start + dur
        for node in nodes:  # outputs of multi-output ops start with their op
            if node["op"] == "getitem":
                node["meta"]["start_ns"] = nodes[node["inputs"][0]]["meta"]["start_ns"]
        return True

    def finish_fingerprints(self) -> None:
        """Fingerprint the kept tensors that can be cut points or are read by copy-like ops."""
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


_now_ns = time.perf_counter_ns
_weakref = weakref.ref


def _storage_key(t: Any) -> int | None:
    """The data pointer of ``t``'s storage (None for tensors without one, e.g. sparse)."""
    try:
        return int(t.untyped_storage().data_ptr())
    except RuntimeError:
        return None


def _tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The tensors in an op's arguments, in pytree leaf order (lists, tuples and dicts are searched)."""
    import torch

    found: list[Any] = []

    def visit(seq: Any) -> None:
        for x in seq:
            if isinstance(x, torch.Tensor):
                found.append(x)
            elif isinstance(x, (list, tuple)):
                visit(x)
            elif isinstance(x, dict):
                visit(x.values())

    visit(args)
    visit(kwargs.values())
    return found


def _is_fx_site(site: Any) -> bool:
    """Whether a recorded site is an fx context tuple (six fields) rather than ``(code, line)``."""
    return site is not None and len(site) == 6


def _site_meta(site: Any, cache: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """Call-site fields of a recorded site (cached per site).

    ``callsite``/``source``/``file``/``line``/``func`` name the user's line; where the op ran inside a library's
    model code, ``lib_callsite``/``lib_file``/``lib_line``/``lib_func`` name the innermost such line and
    ``lib_stack`` its library frames, innermost first (``"file.py:LINE in func"``).
    """
    if site is None or _is_fx_site(site):
        key = site
    else:
        key = (id(site[0]), site[1], tuple((id(c), ln) for c, ln in site[2]) if len(site) > 2 else ())
    found = cache.get(key)
    if found is not None:
        return found
    lib: tuple[tuple[Any, int], ...] = ()
    if site is None:
        fields = ("<unknown>", "", 0, "")
    elif _is_fx_site(site):
        fields = site[:4]
    else:
        code, line = site[0], site[1]
        lib = site[2] if len(site) > 2 else ()
        fields = _code_fields(code, line)
    callsite, fname, line, funcname = fields
    found = {
        "callsite": callsite,
        "source": f"{os.path.basename(fname)}:{line}" if fname else "",
        "file": fname,
        "line": line,
        "func": funcname,
    }
    if lib:
        inner = _code_fields(*lib[0])
        found.update(
            lib_callsite=inner[0],
            lib_file=inner[1],
            lib_line=inner[2],
            lib_func=inner[3],
            lib_stack=[_code_fields(c, ln)[0] for c, ln in lib],
        )
    cache[key] = found
    return found


def _code_fields(code: Any, line: int) -> tuple[str, str, int, str]:
    """``("file.py:LINE in func", path, line, func)`` of a frame's code object and line."""
    return (f"{os.path.basename(code.co_filename)}:{line} in {code.co_name}", code.co_filename, line, code.co_name)


#: The library call-site fields of an op's meta (present when it ran inside a library's model code).
_LIB_FIELDS = ("lib_callsite", "lib_file", "lib_line", "lib_func", "lib_stack")


def _getitem_node(parent_id: int, parent: dict[str, Any], k: int, out: Any) -> dict[str, Any]:
    """The node dict of output ``k`` of multi-output op ``parent_id`` (call site and module path from it)."""
    pmeta = parent["meta"]
    meta = {
        key: pmeta[key]
        for key in ("callsite", "source", "file", "line", "func", "module_path", *_LIB_FIELDS)
        if key in pmeta
    }
    meta.update(alias=pmeta["alias"], mutates=False, start_ns=pmeta["start_ns"], dur_ns=0)
    meta.update(_tensor_meta(out))
    return {"op": "getitem", "inputs": (parent_id,), "attrs": {"index": k}, "meta": meta}


def _tensor_meta(t: Any) -> dict[str, Any]:
    """Shape, dtype, device, strides, contiguity and bytes of a tensor.

    A nested tensor (``torch.nested``, e.g. ``nn.TransformerEncoder``'s padding-mask fast path) has no single
    shape: its ``shape`` is its element count, ``nested_sizes`` the shapes of its components.
    """
    if t.is_nested:
        return _nested_meta(t)
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


def _nested_meta(t: Any) -> dict[str, Any]:
    """:func:`_tensor_meta` of a nested tensor (flat element count as shape, component shapes beside it)."""
    parts = t.unbind()
    return {
        "shape": [int(t.numel())],
        "nested": True,
        "nested_sizes": [list(c.shape) for c in parts],
        "dtype": str(t.dtype).replace("torch.", ""),
        "device": str(t.device),
        "contiguous": bool(t.is_contiguous()),
        "channels_last": False,
        "bytes": int(t.numel() * t.element_size()),
    }


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
    arguments as :func:`record`. An ``nn.Module`` that fx cannot trace (real model code) is captured with
    ``torch.export`` instead (``graph.meta["recorder"] == "export"``); otherwise such a callable raises
    :class:`EnergyError`.
    """
    import torch
    import torch.fx

    tracer = torch.fx.Tracer()
    tracer.record_stack_traces = True
    exported = False
    try:
        graph = tracer.trace(fn)
        gm = torch.fx.GraphModule(tracer.root, graph)
    except Exception as exc:  # noqa: BLE001  (fx raises many kinds of errors for untraceable code)
        gm = _exported_graph_module(fn, inputs, exc)  # real model code: torch.export (aten graph)
        exported = True

    class _Interp(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            site = _site_from_stack_trace(n.meta.get("stack_trace") or getattr(n, "stack_trace", None))
            module = str(n.target) if n.op == "call_module" else ""
            if exported and n.meta.get("nn_module_stack"):
                module = str(list(n.meta["nn_module_stack"].values())[-1][0])
            _FX_CONTEXT.append((*site, module, n.name))
            try:
                return super().run_node(n)
            finally:
                _FX_CONTEXT.pop()

    def run_graph(*args: Any) -> Any:
        return _Interp(gm).run(*args)

    run_graph.__name__ = getattr(fn, "__name__", type(fn).__name__)
    run = record(run_graph, inputs, **kwargs)
    run.graph.meta["recorder"] = "export" if exported else "fx"
    return run


def _exported_graph_module(fn: Any, inputs: Any, fx_exc: BaseException) -> Any:
    """``torch.export`` of an ``nn.Module`` that torch.fx cannot trace, as a runnable GraphModule."""
    import torch

    from opgraph.graph import TraceError, export_program

    name = getattr(fn, "__name__", type(fn).__name__)
    if not isinstance(fn, torch.nn.Module) or isinstance(inputs, dict):
        raise EnergyError(
            f"record_fx(): torch.fx cannot trace {name} ({fx_exc}); use record() (eager) instead"
        ) from fx_exc
    args = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    try:
        return export_program(fn, args).module()
    except TraceError as exc:
        raise EnergyError(
            f"record_fx(): neither torch.fx nor torch.export can capture {name}: {exc}; use record() (eager) instead"
        ) from exc


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


@functools.cache
def _recorder_class() -> type[_Recorder]:
    """``_Recorder`` as a ``TorchDispatchMode`` (made on first use, so importing this module needs no torch)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    return type(
        "_RecordingMode",
        (_Recorder, TorchDispatchMode),
        {"__torch_dispatch__": _Recorder.dispatch, "__module__": __name__},
    )


@functools.cache
def _timing_class() -> type:
    """The dispatch mode of the timing pass: it runs and times each aten op and keeps nothing else.

    Each op leaves ``(op overload, start ns, end ns)`` in ``mode.ops``; no argument or output is referenced,
    so the allocator reuses freed buffers as in a plain call, and there is no frame walk and no module hook
    (call sites, module paths, shapes and values come from the recording call, matched op by op).
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    class _TimingMode(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: list[tuple[Any, int, int]] = []
            self.t0_ns = _now_ns()

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            start = _now_ns()
            out = func(*args, **kwargs) if kwargs else func(*args)
            self.ops.append((func, start, _now_ns()))
            return out

    _TimingMode.__module__ = __name__
    return _TimingMode


def _rng_state() -> tuple[Any, Any]:
    """The CPU (and, where initialised, CUDA) random-number generator states."""
    import torch

    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.random.get_rng_state(), cuda


def _set_rng_state(state: tuple[Any, Any]) -> None:
    import torch

    cpu, cuda = state
    torch.random.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def _new_recorder(snapshot_limit_bytes: int, *, keep_values: bool = True) -> _Recorder:
    """A recorder that is also the dispatch mode to enter (``with rec: fn(...)``)."""
    return _recorder_class()(snapshot_limit_bytes, keep_values)


def _module_hooks(rec: _Recorder) -> tuple[Callable[..., None], Callable[..., None]]:
    """Global forward pre/post hooks that keep ``rec.module_stack`` (a tuple, so ops can share it)."""
    labels = rec.module_labels

    def pre_hook(module: Any, _inp: Any) -> None:
        label = labels.get(id(module))
        if label is None:
            name = type(module).__name__
            label = (name, name)
        rec.module_stack = (*rec.module_stack, label[1] if rec.module_stack else label[0])

    def post_hook(module: Any, _inp: Any, _out: Any) -> None:
        if rec.module_stack:
            rec.module_stack = rec.module_stack[:-1]

    return pre_hook, post_hook


def record(
    fn: Callable[..., Any],
    inputs: Any = (),
    *,
    name: str | None = None,
    snapshot_limit_bytes: int = SNAPSHOT_LIMIT_BYTES,
    warmup: bool = True,
    timing_pass: bool = True,
) -> Run:
    """Record ``fn(*inputs)`` and return the :class:`Run`.

    By default ``fn`` is called twice: the **recording call** runs under the recorder (graph, call sites,
    module paths, fingerprints, every op's arguments and outputs kept for replay), then the **timing pass**
    runs it again under a dispatch mode that only times each op and keeps nothing, with the random-number
    generators reset to their state before the recording call. When the timing pass runs the same aten ops
    in the same order (checked op by op), the run's ``wall_s``/``cpu_s`` and every op's ``start_ns``/``dur_ns``
    come from it, so keeping values alive (no buffer reuse), the frame walk and the module hooks stay out of
    the timings; otherwise (e.g. control flow that depends on the clock) the recording call's timings are kept
    and ``graph.meta["timing"]`` says so. ``graph.meta["record_wall_s"]``/``["record_cpu_s"]`` hold the
    recording call's times. Side effects of ``fn`` on state outside its inputs (module buffers, globals)
    happen once per call.

    Args:
        fn: A callable or ``nn.Module`` (wrap it with :func:`configured` to fix settings such as threads).
        inputs: A tensor, a tuple/list of positional arguments, or a dict of keyword arguments. The callable
            gets copies, so one that mutates its inputs does not change yours.
        name: Name stored in the graph (default: the callable's name).
        snapshot_limit_bytes: Cap on the op outputs kept for replay.
        warmup: Keep first-call costs out of the timings. With ``timing_pass`` the recording call already
            precedes the timed call, so no extra call is made; without it, ``fn`` is called once, unrecorded,
            before the recording call.
        timing_pass: Time the call in a separate pass (above); False: one recording call, timed while it
            records.

    Returns:
        The recorded run.
    """
    import torch
    from torch.utils._pytree import tree_flatten

    if not callable(fn):
        raise EnergyError(f"record(fn=...): expected a callable or nn.Module, got {type(fn).__name__}")
    args, kwargs = normalize_inputs(inputs)
    rname = name or getattr(fn, "__name__", None) or type(fn).__name__
    snap_settings = dict(getattr(fn, "settings", {})) if isinstance(fn, Configured) else {}
    with settings_mod.applied(snap_settings):
        snap = settings_mod.snapshot()
    optimizers: list[Any] = []
    roots = _find_modules(fn, optimizers)
    state = StepState(roots, optimizers)
    state.save(max_bytes=max(snapshot_limit_bytes, STATE_LIMIT_BYTES))
    rng = _rng_state() if timing_pass else None
    if warmup and not timing_pass:
        fn(*_clone_tree(args), **_clone_tree(kwargs))
        if state.changed():
            state.restore()
    call_args = _clone_tree(args)
    call_kwargs = _clone_tree(kwargs)
    rec = _new_recorder(snapshot_limit_bytes)
    for mname, mod in roots:
        for pname, p in mod.named_parameters():
            rec.names[id(p)] = f"{mname + '.' if mname else ''}{pname}"
        for bname, b in mod.named_buffers():
            rec.names[id(b)] = f"{mname + '.' if mname else ''}{bname}"
        for sub, m in mod.named_modules():
            full = ".".join(x for x in (mname, sub) if x) or type(m).__name__
            rec.module_labels[id(m)] = (full, full.split(".")[-1])
    flat_in, _ = tree_flatten((call_args, call_kwargs))
    originals = [t.detach().clone() for t in flat_in if isinstance(t, torch.Tensor)]
    k = 0
    for leaf in flat_in:
        if isinstance(leaf, torch.Tensor):
            rec.add_input(leaf, f"arg{k}", "arg")
            k += 1

    pre_hook, post_hook = _module_hooks(rec)

    from torch.nn.modules import module as module_mod

    grads: dict[int, Any] = {}
    params = state.params
    h1 = module_mod.register_module_forward_pre_hook(pre_hook)
    h2 = module_mod.register_module_forward_hook(post_hook)
    grad_hooks = [p.register_post_accumulate_grad_hook(_grad_keeper(grads, k)) for k, (_n, p) in enumerate(params)]
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with rec:
            result = fn(*call_args, **call_kwargs)
    finally:
        h1.remove()
        h2.remove()
        for h in grad_hooks:
            h.remove()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    for k, (_n, p) in enumerate(params):  # the final .grad where the step leaves one, else the last accumulated
        if p.grad is not None:
            grads[k] = p.grad.detach().clone()
    rec.finalize()
    state.stateful = state.changed()
    if state.stateful and not state.saved:
        log.warning(
            "%s changed parameters, buffers or gradients too large to copy (over STATE_LIMIT_BYTES): they "
            "are not restored, so later calls start from changed weights and the model is left changed",
            rname,
        )
    if state.stateful:  # a training step: keep copies of the live tensors, then undo the step
        live = state.storages()
        for nid, v in rec.values.items():
            if _storage_key(v) in live:  # parameters, buffers, gradients and views of them
                rec.values[nid] = v.detach().clone()
        state.restore()
    timer = None
    if rng is not None:
        _set_rng_state(rng)
        t_args, t_kwargs = _clone_tree(args), _clone_tree(kwargs)
        timer = _timing_class()()
        t1, c1 = time.perf_counter(), time.process_time()
        try:
            with timer:
                fn(*t_args, **t_kwargs)
        except Exception as exc:  # noqa: BLE001  (the recording is complete; keep its timings)
            log.warning("%s: the timing pass raised %r; timings are from the recording call", rname, exc)
            timer = None
        timed = (time.perf_counter() - t1, time.process_time() - c1)
        del t_args, t_kwargs
        if state.stateful:  # the user's model is left as it was
            state.restore()
    timing = "recording call"
    record_times = (wall, cpu)
    if timer is not None:
        if rec.apply_timings(timer.ops, timer.t0_ns):
            timing = "timing pass"
            wall, cpu = timed
        else:
            log.warning(
                "%s: the timing pass ran %d aten ops, the recording call %d (or in another order); "
                "timings are from the recording call",
                rname,
                len(timer.ops),
                len(rec.op_order),
            )
    out_tensors = [o for o in tree_flatten(result)[0] if isinstance(o, torch.Tensor)]
    if not out_tensors:
        raise EnergyError(f"record(): {rname} returned no tensor; return the result(s) it computes")
    out_ids = [rec.node_of(o) for o in out_tensors]
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
            "timing": timing,
            "record_wall_s": record_times[0],
            "record_cpu_s": record_times[1],
            "stateful": state.stateful,
            "state_restored": state.stateful and state.saved,
            "grads": [params[k][0] for k in sorted(grads)],
        },
    )
    return Run(
        graph=graph,
        settings=snap,
        values=rec.values if rec.replayable else {},
        wall_s=wall,
        cpu_s=cpu,
        fn=fn,
        inputs=tuple(args),
        kwargs=dict(kwargs),
        outputs=tuple(out_tensors),
        grads=tuple((params[k][0], grads[k]) for k in sorted(grads)),
        state=state,
    )


def _grad_keeper(grads: dict[int, Any], k: int) -> Callable[[Any], None]:
    """A post-accumulate-grad hook that keeps a copy of parameter ``k``'s ``.grad`` (not recorded as an op)."""
    from torch.utils._python_dispatch import _disable_current_modes

    def hook(p: Any) -> None:
        with _disable_current_modes():
            grads[k] = p.grad.detach().clone()

    return hook
