"""Replay recorded op spans in isolation and measure two of them paired and interleaved.

A region runner re-executes the region's aten ops (``torch.ops.aten.*``) on the tensors recorded as its
inputs, as a core graph run by :func:`opgraph.graph.interpret` with a rule table of aten calls (no loop of its
own); inputs that an op in the region mutates are copied before every call. :func:`paired` runs the two sides
alternately (A B, B A, shuffled) for several rounds, each side for at least the backend's window, and reports
the median per-round ratio with a bootstrap confidence interval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph.energy.backends import Backend, Sample
from opgraph.energy.errors import EnergyError
from opgraph.energy.recorder import _UNRECORDED, Run, decode_leaf, resolve_op
from opgraph.graph import Graph, Node, interpret
from opgraph.measure import median_ratio_ci


class RegionRunner:
    """A zero-argument callable that replays ``node_ids`` of ``run`` through the core interpreter.

    The region becomes a core :class:`~opgraph.graph.Graph` (:attr:`graph`): the values it reads from outside
    (recorded tensors) are its ``input`` nodes, each recorded aten op keeps its op name, encoded arguments and
    origin id, and every call runs it with :func:`opgraph.graph.interpret` and one rule table (:attr:`rules`:
    each aten op name -> "call the recorded overload with the decoded arguments", plus ``getitem`` and
    ``elide``). The interpreter frees each value after its last use, as eager execution would.

    Args:
        run: A replayable run.
        node_ids: Op node ids (execution order).
        elide: ``{node: replacement}``: skip ``node`` and use ``replacement``'s value instead (used to measure
            a region without a redundant op).
        transform: Optional function applied to every outside tensor once (e.g. a layout change for bisection).
    """

    def __init__(
        self,
        run: Run,
        node_ids: Sequence[int],
        *,
        elide: Mapping[int, int] | None = None,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        import torch
        from torch.utils._pytree import tree_flatten, tree_unflatten, treespec_loads

        if not run.replayable:
            raise EnergyError(f"run {run.name!r} kept no tensors (over the snapshot limit); re-run regions instead")
        self._tensor, self._flatten, self._unflatten = torch.Tensor, tree_flatten, tree_unflatten
        self.run = run
        self.node_ids = tuple(node_ids)
        g = run.graph
        # copies only the recording call made (a kept gradient copied into .grad): the value passes through
        elide = {
            nid: g.nodes[nid].inputs[-1]
            for nid in self.node_ids
            if g.nodes[nid].meta.get("recording_only") and g.nodes[nid].inputs
        } | dict(elide or {})
        inside = set(self.node_ids)
        nodes: list[Node] = []
        new_id: dict[int, int] = {}  # run node id -> region graph node id
        ext: list[Any] = []
        mutated: list[int] = []  # positions in ext of outside values an op of the region writes to
        #: region node id -> (op overload, argument leaves with tensors left as None, (leaf index, input position)
        #: of each tensor argument, pytree spec); see :func:`_prepared_call`
        self.calls: dict[int, tuple[Any, list[Any], tuple[tuple[int, int], ...], Any]] = {}
        self.bytes_per_call = 0.0

        def outside(src: int) -> int:
            """The region node of an outside value (an input node, made on first use)."""
            if src in new_id:
                return new_id[src]
            if src not in run.values:
                raise EnergyError(f"run {run.name!r}: value of node {src} was not kept")
            v = run.values[src]
            ext.append(transform(v) if transform is not None and isinstance(v, torch.Tensor) else v)
            nid = new_id[src] = len(nodes)
            nodes.append(Node(nid, "input", (), {"name": f"%{src}"}, {"origin": src}))
            return nid

        for rid in self.node_ids:
            n = g.nodes[rid]
            if rid in elide:
                src = elide[rid]
                ref = new_id[src] if src in inside else outside(src)
                nid = new_id[rid] = len(nodes)
                nodes.append(Node(nid, "elide", (ref,), {}, {"origin": rid}))
                continue
            if n.op == "getitem" and n.inputs[0] not in inside:
                # the producing op ran in an earlier region: its output is an outside value here
                outside(rid)
                continue
            ins = []
            for i in n.inputs:
                ref = new_id[i] if i in inside else outside(i)
                ins.append(ref)
                # an in-place op on an outside value (or on an elided copy of one) writes to a recorded tensor:
                # it gets a fresh copy on every call
                src = elide[i] if i in elide and elide[i] not in inside else i
                if n.meta.get("mutates") and src not in inside and new_id[src] not in mutated:
                    mutated.append(new_id[src])
            nid = new_id[rid] = len(nodes)
            meta = {"origin": rid, "source": n.meta.get("source", "")}
            if n.op == "getitem":
                nodes.append(Node(nid, "getitem", tuple(ins), {"index": int(n.attrs["index"])}, meta))
                continue
            nodes.append(Node(nid, n.op, tuple(ins), {"overload": n.attrs["overload"]}, meta))
            self.calls[nid] = _prepared_call(n, resolve_op(n.attrs["overload"]), treespec_loads(n.attrs["spec"]))
            self.bytes_per_call += float(n.meta.get("in_bytes", 0)) + float(n.meta.get("out_bytes", 0))
        inputs = tuple(k for k, node in enumerate(nodes) if node.op == "input")
        last = (len(nodes) - 1,) if nodes and nodes[-1].op != "input" else ()
        #: The region as a core graph (inputs: the outside values, in :attr:`ext` order).
        self.graph = Graph(tuple(nodes), inputs, last, {"name": f"{run.name} region", "origin_ids": self.node_ids})
        self.ext = ext
        self.mutated = frozenset(inputs.index(k) for k in mutated)
        rule = self._apply
        #: The rule table of :func:`opgraph.graph.interpret`: every aten op of the region, getitem and elide.
        self.rules: dict[str, Callable[..., Any]] = {node.op: rule for node in nodes if node.id in self.calls}
        self.rules["getitem"] = _getitem
        self.rules["elide"] = _elide

    def __call__(self) -> None:
        """Replay the region once (without autograd: only the recorded aten ops run)."""
        import torch

        with torch.no_grad():
            self._run()

    def _run(self) -> None:
        values = [v.clone() if k in self.mutated else v for k, v in enumerate(self.ext)]
        interpret(self.graph, values, self.rules)

    def _apply(self, node: Node, *values: Any) -> Any:
        """The rule of every aten op: call the recorded overload with its arguments decoded."""
        func, template, fills, spec = self.calls[node.id]
        vals = list(template)
        for leaf, pos in fills:
            vals[leaf] = values[pos]
        args, kwargs = self._unflatten(vals, spec)
        out = func(*args, **kwargs)
        if not isinstance(out, self._tensor):
            out, _ = self._flatten(out)
        return out


def _prepared_call(n: Node, func: Any, spec: Any) -> tuple[Any, list[Any], tuple[tuple[int, int], ...], Any]:
    """An op node's call with its constant arguments decoded once and its tensor arguments as input positions."""
    position = {nid: k for k, nid in enumerate(n.inputs)}
    template: list[Any] = []
    fills = []
    for k, leaf in enumerate(n.attrs["args"]):
        if leaf[0] == "t":
            template.append(None)
            fills.append((k, position[int(leaf[1])]))
        else:
            template.append(decode_leaf(leaf, _no_tensor))
    return func, template, tuple(fills), spec


def _no_tensor(nid: int) -> Any:
    raise EnergyError(f"argument leaf names node {nid} as a constant")


def _getitem(node: Node, value: Any) -> Any:
    return value[node.attrs["index"]]


def _elide(_node: Node, value: Any) -> Any:
    return value


def _is_tensor(x: Any) -> bool:
    import torch

    return isinstance(x, torch.Tensor)


class _Nothing:
    bytes_per_call = 0.0

    def __call__(self) -> None:
        return None


NOTHING = _Nothing()


@dataclass
class PairResult:
    """Paired, interleaved measurement of two callables.

    Attributes:
        ratio: Median over rounds of ``cost_a / cost_b``.
        ci: 95% bootstrap interval of that median.
        rounds_ratio: Per-round ratios.
        a: Mean per-call sample of A (cost, wall, CPU, energy).
        b: Mean per-call sample of B.
        reps: Calls per window for A and B.
    """

    ratio: float
    ci: tuple[float, float]
    rounds_ratio: list[float]
    a: Sample
    b: Sample
    reps: tuple[int, int]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "ratio": _finite(self.ratio),
            "ci": [_finite(self.ci[0]), _finite(self.ci[1])],
            "rounds_ratio": [_finite(r) for r in self.rounds_ratio],
            "a": vars(self.a) | {"cost": self.a.cost},
            "b": vars(self.b) | {"cost": self.b.cost},
            "reps": list(self.reps),
            **self.extra,
        }


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def median_ci(ratios: Sequence[float], *, seed: int = 0, n_boot: int = 2000) -> tuple[float, tuple[float, float]]:
    """Median of ``ratios`` (on a log scale) and its 95% percentile-bootstrap interval.

    A thin adapter over the shared :func:`opgraph.measure.median_ratio_ci` (``scipy.stats.bootstrap``), keeping the
    conventions the differ relies on: no usable ratio gives ``inf`` and one ratio a point interval.
    """
    ci = median_ratio_ci(ratios, n_resamples=n_boot, seed=seed)
    if ci.n == 0:
        return math.inf, (math.inf, math.inf)
    if ci.n == 1:
        return ci.median, (ci.median, ci.median)
    return ci.median, (ci.low, ci.high)


def calibrate_reps(fn: Callable[[], Any], backend: Backend, target_s: float) -> int:
    """Calls needed for one window of at least ``target_s`` seconds."""
    backend.sync()
    t0 = time.perf_counter()
    fn()
    backend.sync()
    one = time.perf_counter() - t0
    if one <= 0:
        return 1000
    return int(min(max(math.ceil(target_s / one), 1), 1_000_000))


def paired(
    fa: Callable[[], Any],
    fb: Callable[[], Any],
    backend: Backend,
    *,
    rounds: int = 7,
    max_rounds: int = 15,
    window_s: float | None = None,
    decide_at: float | None = None,
    seed: int = 0,
    bytes_a: float = 0.0,
    bytes_b: float = 0.0,
    settings_a: Mapping[str, Any] | None = None,
    settings_b: Mapping[str, Any] | None = None,
    min_rounds: int | None = None,
    negligible: Callable[[float, float], bool] | None = None,
) -> PairResult:
    """Measure ``fa`` against ``fb``: shuffled A B / B A rounds, per-call cost ratio with a CI.

    Args:
        fa: Zero-argument callable of side A.
        fb: Zero-argument callable of side B.
        backend: Measurement backend.
        rounds: Rounds to start with.
        max_rounds: Rounds are added (up to this) while the CI straddles ``decide_at``.
        window_s: Per-side window (default: the backend's ``min_window_s``).
        decide_at: A ratio threshold; more rounds are spent while the CI contains it (or its inverse).
        seed: Seeds the round order and the bootstrap.
        bytes_a: Bytes moved per call of A (for the model backend).
        bytes_b: Bytes moved per call of B.
        settings_a: Settings to apply while A runs (threads, precision...).
        settings_b: Settings to apply while B runs.
        min_rounds: With ``decide_at``: stop after this many rounds (before ``rounds``) once the interval lies
            inside ``(1/decide_at, decide_at)`` (nothing to flag), or beyond it by :data:`DECIDED_MARGIN` (a flag
            whichever ratio more rounds give), or once ``negligible`` says so.
        negligible: With ``decide_at`` and ``min_rounds``: given the mean per-call costs of A and B so far
            (backend units), whether the pair is too small a share of the run to be flagged whatever its ratio;
            then no rounds are added after the first ``min_rounds``.
    """
    from opgraph.energy import settings as settings_mod

    target = window_s if window_s is not None else backend.min_window_s
    rng = np.random.default_rng(seed)
    sa, sb = dict(settings_a or {}), dict(settings_b or {})
    # a callable with a ``reset`` attribute (a training step) gets its state put back before every window
    reset_a, reset_b = getattr(fa, "reset", _no_reset), getattr(fb, "reset", _no_reset)
    with settings_mod.applied(sa):
        reset_a()
        fa()  # warm-up
        ra = calibrate_reps(fa, backend, target) if fa is not NOTHING else 1
    with settings_mod.applied(sb):
        reset_b()
        fb()
        rb = calibrate_reps(fb, backend, target) if fb is not NOTHING else 1
    samples_a: list[Sample] = []
    samples_b: list[Sample] = []

    def one_round() -> None:
        order = (0, 1) if rng.random() < 0.5 else (1, 0)
        for side in order:
            if side == 0:
                with settings_mod.applied(sa):
                    reset_a()
                    samples_a.append(backend.measure(fa, ra, bytes_per_call=bytes_a))
            else:
                with settings_mod.applied(sb):
                    reset_b()
                    samples_b.append(backend.measure(fb, rb, bytes_per_call=bytes_b))

    first = min(rounds, max(min_rounds, 2)) if decide_at is not None and min_rounds else rounds
    for _ in range(first):
        one_round()

    def ratios_of() -> list[float]:
        # idle-subtracted energy can be <= 0 for work that barely lifts power above idle: use gross energy then
        if any(s.cost <= 0 for s in samples_a + samples_b) and all(
            s.gross_j is not None for s in samples_a + samples_b
        ):
            extra["basis"] = "gross energy (idle-subtracted energy was <= 0 in some window)"
            return [_ratio(a.gross_j or 0.0, b.gross_j or 0.0) for a, b in zip(samples_a, samples_b)]
        return [_ratio(a.cost, b.cost) for a, b in zip(samples_a, samples_b)]

    extra: dict[str, Any] = {}
    ratios = ratios_of()
    med, ci = median_ci(ratios, seed=seed)
    share_known = decide_at is not None and min_rounds and negligible is not None
    if share_known and negligible(_mean(samples_a).cost, _mean(samples_b).cost):
        extra["stopped"] = "negligible share"
        decide_at, rounds = None, len(ratios)  # no more rounds: it cannot be flagged
    if decide_at is not None and min_rounds and _clearly_beyond(ci, decide_at):
        extra["stopped"] = "decided beyond the threshold"
        decide_at, rounds = None, len(ratios)
    while len(ratios) < rounds and (decide_at is None or not _clearly_within(ci, decide_at)):
        one_round()
        ratios = ratios_of()
        med, ci = median_ci(ratios, seed=seed)
    while decide_at is not None and len(ratios) < max_rounds and _straddles(ci, decide_at):
        one_round()
        one_round()
        ratios = ratios_of()
        med, ci = median_ci(ratios, seed=seed)
    reset_a()
    reset_b()
    wall_med, wall_ci = median_ci([_ratio(a.wall_s, b.wall_s) for a, b in zip(samples_a, samples_b)], seed=seed)
    extra["wall_ratio"], extra["wall_ci"] = wall_med, list(wall_ci)
    return PairResult(med, ci, ratios, _mean(samples_a), _mean(samples_b), (ra, rb), extra)


def _no_reset() -> None:
    return None


def _ratio(a: float, b: float) -> float:
    if b <= 0:
        return math.inf if a > 0 else 1.0
    return a / b


def _clearly_within(ci: tuple[float, float], t: float) -> bool:
    """Whether the interval lies inside ``(1/t, t)``: no flag either way, more rounds cannot change that much.

    Only this side stops early: a region that looks flagged after a few rounds gets all of them (a few
    rounds on a busy machine can put a wide interval above the threshold by chance).
    """
    return bool(1 / t < ci[0] and ci[1] < t)


#: After ``min_rounds``, a pair stops when its interval lies beyond ``threshold * DECIDED_MARGIN`` (or below the
#: inverse): the extra rounds would narrow an interval whose side of the threshold is already clear.
DECIDED_MARGIN = 1.1


def _clearly_beyond(ci: tuple[float, float], t: float) -> bool:
    """Whether the interval lies beyond ``(1/t, t)`` by the margin: flagged either way whatever more rounds say."""
    m = t * DECIDED_MARGIN
    return bool(ci[0] > m or ci[1] < 1 / m)


def _straddles(ci: tuple[float, float], t: float) -> bool:
    return (ci[0] < t <= ci[1]) or (ci[0] < 1 / t <= ci[1])


def _mean(samples: Sequence[Sample]) -> Sample:
    n = len(samples)
    energies = [s.energy_j for s in samples]
    energy = None if any(e is None for e in energies) else sum(e for e in energies if e is not None) / n
    grosses = [s.gross_j for s in samples]
    gross = None if any(g is None for g in grosses) else sum(g for g in grosses if g is not None) / n
    return Sample(sum(s.wall_s for s in samples) / n, sum(s.cpu_s for s in samples) / n, energy, samples[0].reps, gross)


class RerunTimer:
    """Per-op wall and CPU time of a fresh call of a recorded run's callable (for runs too large to replay).

    Each call of :meth:`measure_once` runs the callable on copies of its inputs under a light dispatch mode that
    times every aten op; the i-th op executed is attributed to the i-th op node of the recording (the op
    sequence of an eager callable is deterministic for the same inputs).
    """

    def __init__(self, run: Run) -> None:
        if run.fn is None:
            raise EnergyError(f"run {run.name!r} has no callable (a loaded run): it cannot be re-run")
        self.run = run
        # ops a plain call does not run (autograd's copies of gradients the recorder kept) are not counted
        self.op_ids = [
            n.id for n in run.graph.nodes if n.op not in ("input", "getitem") and not n.meta.get("recording_only")
        ]
        self.bytes = {
            n.id: float(n.meta.get("in_bytes", 0)) + float(n.meta.get("out_bytes", 0)) for n in run.graph.nodes
        }

    def measure_once(self) -> dict[int, tuple[float, float]]:
        """``{node id: (wall_s, cpu_s)}`` of one fresh call."""
        from torch.utils._python_dispatch import TorchDispatchMode

        from opgraph.energy.recorder import _clone_tree

        out: dict[int, tuple[float, float]] = {}
        ids = self.op_ids
        counter = [0]

        class _Timer(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                if func._schema.name in _UNRECORDED:  # annotations the recording left out
                    return func(*args, **(kwargs or {}))
                c0, t0 = time.process_time(), time.perf_counter()
                res = func(*args, **(kwargs or {}))
                t1, c1 = time.perf_counter(), time.process_time()
                k = counter[0]
                if k < len(ids):
                    out[ids[k]] = (t1 - t0, c1 - c0)
                counter[0] = k + 1
                return res

        import contextlib

        import torch

        args, kwargs = _clone_tree(self.run.inputs), _clone_tree(self.run.kwargs)
        self.run.restore()
        # a training step needs autograd; a forward function runs without it (as its replay does)
        with contextlib.nullcontext() if self.run.stateful else torch.no_grad(), _Timer():
            self.run.fn(*args, **kwargs)
        self.run.restore()
        return out


def rerun_regions(
    run_a: Run,
    run_b: Run,
    regions: Sequence[tuple[Sequence[int], Sequence[int]]],
    backend: Backend,
    *,
    rounds: int = 7,
    seed: int = 0,
) -> list[PairResult]:
    """Paired per-region costs from re-running both callables ``rounds`` times (A B / B A shuffled).

    Only the ``time`` (wall) and ``model`` (CPU time and bytes) backends can attribute one call's cost to its
    ops; the model's constants are the backend's.
    """
    if backend.name not in ("time", "model"):
        raise EnergyError(f"re-run regions need the time or model backend, not {backend.name!r}")
    ta, tb = RerunTimer(run_a), RerunTimer(run_b)
    rng = np.random.default_rng(seed)
    ta.measure_once()
    tb.measure_once()
    per_a: list[dict[int, tuple[float, float]]] = []
    per_b: list[dict[int, tuple[float, float]]] = []
    for _ in range(rounds):
        order = (0, 1) if rng.random() < 0.5 else (1, 0)
        for side in order:
            (per_a if side == 0 else per_b).append((ta if side == 0 else tb).measure_once())
    consts = getattr(backend, "constants", {})

    def sample(timer: RerunTimer, times: dict[int, tuple[float, float]], ids: Sequence[int]) -> Sample:
        wall = sum(times.get(i, (0.0, 0.0))[0] for i in ids)
        cpu = sum(times.get(i, (0.0, 0.0))[1] for i in ids)
        if backend.name == "time":
            return Sample(wall, cpu, None, 1)
        nbytes = sum(timer.bytes.get(i, 0.0) for i in ids)
        energy = consts["p_core_w"] * cpu + consts["e_byte_j"] * nbytes + consts["p_static_w"] * wall
        return Sample(wall, cpu, energy, 1)

    out = []
    for ids_a, ids_b in regions:
        sa = [sample(ta, t, ids_a) for t in per_a]
        sb = [sample(tb, t, ids_b) for t in per_b]
        ratios = [_ratio(x.cost, y.cost) for x, y in zip(sa, sb)]
        med, ci = median_ci(ratios, seed=seed)
        wall_med, wall_ci = median_ci([_ratio(x.wall_s, y.wall_s) for x, y in zip(sa, sb)], seed=seed)
        out.append(
            PairResult(
                med,
                ci,
                ratios,
                _mean(sa),
                _mean(sb),
                (1, 1),
                {"wall_ratio": wall_med, "wall_ci": list(wall_ci), "method": "re-run (per-op timing)"},
            )
        )
    return out
