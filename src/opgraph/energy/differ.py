"""Differential energy debugging: record, match, measure, decide and diagnose (``opgraph.energy.diff``)."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from opgraph.energy import settings as settings_mod
from opgraph.energy.backends import Backend, select
from opgraph.energy.errors import EnergyError, OutputMismatchError
from opgraph.energy.fingerprint import TOLERANCES, equivalent, fingerprint, max_relative_error
from opgraph.energy.matcher import FREE_OPS, Match, Region, match, name_shape_table, op_counts
from opgraph.energy.recorder import Configured, Run, configured, record
from opgraph.energy.replay import NOTHING, PairResult, RegionRunner, paired, rerun_regions
from opgraph.energy.result import DiffReport, Finding, RegionResult

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 1.10
#: Agreement of outputs for "waste" (paper: <= 1% element-wise relative difference).
AGREE_RTOL = 1e-2
#: Lower CI bound a provably redundant op must cost (region with it / region without it).
REDUNDANT_THRESHOLD = 1.03
#: A flagged region must account for at least this fraction of the costly side's total.
MIN_SHARE = 0.01
#: A region pair stops after ``min_rounds`` when its cost is below MIN_SHARE / SHARE_MARGIN of a lower bound of
#: each side's total (the margin covers the change of its mean cost over the rounds it skips).
SHARE_MARGIN = 2.0
#: The cheaper side counts as slower (trade-off, not waste) when it is > 1% slower with 95% confidence.
SLOWER_TOLERANCE = 1.01
#: Upper bound of the calibrated threshold (a very noisy A-vs-A run must not switch detection off).
MAX_THRESHOLD = 1.25


def _device_of(run: Run) -> str:
    for n in run.graph.nodes:
        dev = n.meta.get("device", "cpu")
        if str(dev).startswith("cuda"):
            return "cuda"
    return "cpu"


#: Element-wise agreement required by the ``precision`` gate (max |a - b| / max |b|, position by position).
PRECISION_RTOL = 0.1
#: Canonicalisations a caller may declare for the output check (see :func:`check_outputs`).
CANONICALIZE = ("flatten", "sort")


def _canonical(t: Any, how: str | Callable[[Any], Any] | None) -> Any:
    """``t`` put in the declared canonical form (None: as it is)."""
    import torch

    if how is None:
        return t
    if callable(how):
        out = how(t)
        if not isinstance(out, torch.Tensor):
            raise EnergyError(f"diff(canonicalize=...): the callable returned {type(out).__name__}, not a tensor")
        return out
    flat = t.detach().reshape(-1)
    if how == "flatten":
        return flat
    if flat.is_complex():  # order-free comparison of complex values: by real part when imaginary parts vanish
        scale = max(float(flat.abs().max().item()) if flat.numel() else 0.0, 1e-30)
        imag = float(flat.imag.abs().max().item()) if flat.numel() else 0.0  # empty: sorted as an empty real
        flat = flat.real if imag <= 1e-6 * scale else flat.abs()
    return flat.sort().values


def check_outputs(run_a: Run, run_b: Run, canonicalize: str | Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Compare the two runs' outputs position by position (and by fingerprint, for the matching tolerance).

    For training steps the parameters' gradients are compared as well (in parameter order), as they are.

    Outputs must have equal shapes and agree element by element at the same positions: ascending against
    descending order, a transpose or a flattened copy do not agree. Where the order or layout legitimately
    differs, declare a canonicalisation: ``"flatten"`` (compare in row-major order, shapes may differ),
    ``"sort"`` (compare the sorted values: order-free; complex values by real part or modulus) or a callable
    applied to every output tensor.

    Returns:
        ``strict``/``precision``: fingerprints equivalent at that preset and the element-wise error within
        :data:`AGREE_RTOL` / :data:`PRECISION_RTOL`; ``max_rel_error``: the worst element-wise error;
        ``agree`` (= ``strict``); ``canonicalize``; ``shape_mismatch`` (indices; parameter gradients follow
        the outputs) where shapes differ; ``grads_compared``: parameter gradients compared (training steps).
    """
    if canonicalize is not None and not callable(canonicalize) and canonicalize not in CANONICALIZE:
        raise EnergyError(
            f"diff(canonicalize={canonicalize!r}): use None, {', '.join(map(repr, CANONICALIZE))} or a callable"
        )
    label = canonicalize if canonicalize is None or isinstance(canonicalize, str) else "callable"
    if len(run_a.outputs) != len(run_b.outputs):
        return {
            "n_outputs": (len(run_a.outputs), len(run_b.outputs)),
            "strict": False,
            "precision": False,
            "max_rel_error": math.inf,
            "agree": False,
            "canonicalize": label,
        }
    fp_strict = fp_precision = True
    worst = 0.0
    shape_mismatch = []
    pairs = [(x, y, canonicalize) for x, y in zip(run_a.outputs, run_b.outputs)]
    grads: dict[str, Any] = {}
    if run_a.grads or run_b.grads:
        if len(run_a.grads) == len(run_b.grads):  # parameter gradients, position by position, as they are
            pairs += [(ga, gb, None) for (_na, ga), (_nb, gb) in zip(run_a.grads, run_b.grads)]
            grads = {"grads_compared": len(run_a.grads)}
        else:
            grads = {"grads_compared": 0, "grads": [len(run_a.grads), len(run_b.grads)]}
    for k, (x, y, canon) in enumerate(pairs):
        fx, fy = fingerprint(x), fingerprint(y)
        fp_strict &= equivalent(fx, fy, TOLERANCES["strict"])
        fp_precision &= equivalent(fx, fy, TOLERANCES["precision"])
        cx, cy = _canonical(x, canon), _canonical(y, canon)
        if tuple(cx.shape) != tuple(cy.shape):
            shape_mismatch.append(k)
            worst = math.inf
            continue
        worst = max(worst, max_relative_error(cx, cy))
    strict = fp_strict and worst <= AGREE_RTOL
    out = {
        "strict": bool(strict),
        "precision": bool(fp_precision and worst <= PRECISION_RTOL),
        "max_rel_error": worst,
        "agree": bool(strict),
        "canonicalize": label,
    }
    if shape_mismatch:
        out["shape_mismatch"] = shape_mismatch
    out.update(grads)
    if grads.get("grads_compared") == 0:  # one side's parameters got gradients the other's did not
        out["strict"] = out["precision"] = out["agree"] = False
    return out


def _callsites(run: Run, ids: Any) -> list[str]:
    """Call sites of a region's ops; a backward op adds the line that ran backward after its forward line."""
    out: dict[str, None] = {}
    later: dict[str, None] = {}
    for i in ids:
        n = run.graph.nodes[i]
        if n.op in FREE_OPS:
            continue
        site = n.meta.get("callsite")
        if site:
            out[site] = None
        bw = n.meta.get("backward_callsite")
        if bw:
            later[f"{bw} (backward)"] = None
    return list(out) + [s for s in later if s not in out]


def _lib_sites(run: Run, ids: Any) -> list[str]:
    """The innermost library lines of a region's ops (``meta["lib_callsite"]``), costliest first.

    Cost is the ops' recorded time summed per line; ops that ran in no library's model code add nothing.
    """
    cost: Counter[str] = Counter()
    for i in ids:
        n = run.graph.nodes[i]
        if n.op in FREE_OPS:
            continue
        site = n.meta.get("lib_callsite")
        if site:
            cost[site] += int(n.meta.get("dur_ns", 0)) + 1  # +1: a line whose ops took no time still counts
    return [site for site, _c in cost.most_common()]


def _module_path(run: Run, ids: Any) -> str:
    paths = Counter(
        run.graph.nodes[i].meta.get("module_path", "") for i in ids if run.graph.nodes[i].op not in FREE_OPS
    )
    paths.pop("", None)
    return paths.most_common(1)[0][0] if paths else ""


def _attr_diff(run_a: Run, ra: tuple[int, ...], run_b: Run, rb: tuple[int, ...]) -> dict[str, Any]:
    """Per-op attribute differences of two regions with the same op sequence: dtype and memory format."""
    out: dict[str, Any] = {}
    na = [run_a.graph.nodes[i] for i in ra if run_a.graph.nodes[i].op not in FREE_OPS]
    nb = [run_b.graph.nodes[j] for j in rb if run_b.graph.nodes[j].op not in FREE_OPS]
    for x, y in zip(na, nb):
        if x.op != y.op:
            continue
        if x.meta.get("dtype") != y.meta.get("dtype") and "dtype" not in out:
            out["dtype"] = (x.meta.get("dtype"), y.meta.get("dtype"))
        for ia, ib in zip(x.inputs, y.inputs):
            sa, sb = run_a.graph.nodes[ia].meta, run_b.graph.nodes[ib].meta
            if len(sa.get("shape", [])) == 4 and sa.get("channels_last") != sb.get("channels_last"):
                out.setdefault("memory_format", (_fmt(sa), _fmt(sb)))
    return out


def _fmt(meta: dict[str, Any]) -> str:
    if meta.get("channels_last"):
        return "channels_last"
    return "contiguous" if meta.get("contiguous") else "strided"


def _as_run(x: Any, inputs: Any, name: str, snapshot_limit_bytes: int | None) -> Run:
    if isinstance(x, Run):
        return x
    if not callable(x):
        raise EnergyError(
            f"diff(): side {name} must be a callable, an nn.Module or a recorded Run, not {type(x).__name__}"
        )
    kwargs = {} if snapshot_limit_bytes is None else {"snapshot_limit_bytes": snapshot_limit_bytes}
    base = getattr(x.fn if isinstance(x, Configured) else x, "__name__", None) or type(x).__name__
    return record(x, inputs, name=f"{name}:{base}", **kwargs)


def _whole(run: Run) -> Callable[[], Any]:
    if run.fn is None:
        return RegionRunner(run, [n.id for n in run.graph.nodes if n.op != "input"])
    fn, args, kwargs = run.fn, run.inputs, run.kwargs
    mutated = bool(run.graph.meta.get("mutated_inputs"))

    def call() -> Any:
        if mutated:
            from opgraph.energy.recorder import _clone_tree

            return fn(*_clone_tree(args), **_clone_tree(kwargs))
        return fn(*args, **kwargs)

    if run.stateful:  # a training step: parameters and optimizer state go back before every window
        call.reset = run.restore  # type: ignore[attr-defined]
    return call


def diff(
    a: Any,
    b: Any,
    inputs: Any = (),
    backend: str | Backend = "auto",
    *,
    inputs_b: Any = None,
    tolerance: str | float = "auto",
    threshold: float | None = None,
    calibrate: bool = True,
    allow_mismatch: bool = False,
    rounds: int = 7,
    max_rounds: int = 15,
    bisect: bool = True,
    seed: int = 0,
    snapshot_limit_bytes: int | None = None,
    window_s: float | None = None,
    canonicalize: str | Callable[[Any], Any] | None = None,
    screen_share: float = 0.0025,
    dedupe: bool = True,
    min_rounds: int = 4,
) -> DiffReport:
    """Compare two implementations of the same computation operator by operator.

    Args:
        a: Callable, ``nn.Module`` (or :func:`configured` wrapper) or recorded :class:`Run` of side A.
        b: The same for side B.
        inputs: Arguments for both (a tensor, a tuple/list, or a dict of keyword arguments).
        backend: ``"auto"``, ``"time"``, ``"model"``, ``"rapl"``, ``"nvml"`` or a :class:`Backend`.
        inputs_b: Separate arguments for B (default: ``inputs``).
        tolerance: ``"auto"`` (strict, or the precision preset when only that one matches the outputs),
            a preset name, or a relative tolerance.
        threshold: Ratio a region's lower CI bound must exceed (default 1.10, raised by the A-vs-A calibration).
        calibrate: Measure A's largest region against itself and raise the threshold above its noise.
        allow_mismatch: Go on when the outputs differ (otherwise :class:`OutputMismatchError`).
        rounds: Interleaved rounds per region pair (more are added while a CI straddles the threshold).
        max_rounds: Upper bound on rounds.
        bisect: Run config bisection for misconfiguration findings.
        seed: Seeds round order and bootstrap.
        snapshot_limit_bytes: Cap on recorded tensors per side.
        window_s: Per-side measurement window (default: the backend's).
        canonicalize: How outputs are put in a common form before the position-by-position output check:
            None (as they are: equal shapes, equal values at equal positions), ``"flatten"``, ``"sort"``
            (order-free, e.g. eigenvalues in different orders) or a callable applied to each output tensor.
        screen_share: Regions whose recorded time is below this fraction of their side's total on both sides
            are not replayed (a flag needs 1%: :data:`MIN_SHARE`); 0 replays every region.
        dedupe: Measure regions that repeat the same ops on the same shapes and arguments (layers, tokens)
            once and reuse the result.
        min_rounds: Rounds after which a region pair stops early when its interval already lies inside
            ``(1/threshold, threshold)`` (otherwise ``rounds``, and ``max_rounds`` while it straddles it), or
            when its cost is under half of :data:`MIN_SHARE` of the costs measured so far (largest regions
            first), too small a share to be flagged whatever its ratio. 0 turns the early stop off.

    Returns:
        A :class:`DiffReport` with ranked findings.
    """
    # min_rounds=0 is allowed: it turns the early stop off (every pair gets ``rounds``).
    for name, value, least in (("rounds", rounds, 1), ("max_rounds", max_rounds, 1), ("min_rounds", min_rounds, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise EnergyError(f"{name}={value!r}: give a whole number of rounds >= {least} (e.g. the default 7)")
    t_start = time.perf_counter()
    run_a = _as_run(a, inputs, "A", snapshot_limit_bytes)
    run_b = _as_run(b, inputs if inputs_b is None else inputs_b, "B", snapshot_limit_bytes)
    t_rec = time.perf_counter()
    out_check = check_outputs(run_a, run_b, canonicalize)
    if not out_check["precision"] and not allow_mismatch:
        what = (
            f"output shapes differ at {out_check['shape_mismatch']}"
            if out_check.get("shape_mismatch")
            else f"max element-wise relative error {out_check['max_rel_error']:.3g}"
        )
        raise OutputMismatchError(
            f"diff(): the outputs of A and B differ ({what}, compared position by position); fix the "
            "implementations, declare a canonical form (canonicalize='sort'|'flatten', --canonicalize) where "
            "order or layout legitimately differ, or pass allow_mismatch=True (--allow-mismatch)"
        )
    if tolerance == "auto":
        tolerance = "strict" if out_check["strict"] else "precision"
    m = match(run_a, run_b, tolerance=tolerance)
    t_match = time.perf_counter()
    be = select(backend, device=_device_of(run_a))
    sa, sb = dict(run_a.settings), dict(run_b.settings)
    apply_a = {k: v for k, v in sa.items() if settings_mod.applicable(k)}
    apply_b = {k: v for k, v in sb.items() if settings_mod.applicable(k)}
    replayable = run_a.replayable and run_b.replayable
    notes: list[str] = []
    if be.estimated:
        notes.append("energy is MODELLED (estimated from CPU time and bytes moved), not measured")
    if be.name == "time":
        notes.append("time-only backend: costs are wall-clock seconds, no energy is reported")
    if be.note:
        notes.append(be.note)
    if run_a.graph.meta.get("mutated_inputs") or run_b.graph.meta.get("mutated_inputs"):
        notes.append("a callable mutates its inputs: it was recorded and replayed on copies")
    kw = {"rounds": rounds, "max_rounds": max_rounds, "seed": seed, "window_s": window_s, "min_rounds": min_rounds}

    # threshold calibration: A's largest region against itself
    thr = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    calibration: dict[str, Any] = {}
    if calibrate and threshold is None and replayable:
        big = max(
            m.regions, key=lambda r: sum(run_a.graph.nodes[i].meta.get("dur_ns", 0) for i in r.a_nodes), default=None
        )
        if big is not None and big.a_nodes:
            aa = paired(
                RegionRunner(run_a, big.a_nodes),
                RegionRunner(run_a, big.a_nodes),
                be,
                settings_a=apply_a,
                settings_b=apply_a,
                **{**kw, "rounds": rounds + 4},
            )
            spread = max(aa.ci[1], 1 / aa.ci[0]) if aa.ci[0] > 0 else math.inf
            thr = min(max(DEFAULT_THRESHOLD, spread + 0.02), MAX_THRESHOLD) if math.isfinite(spread) else thr
            calibration = {"region": big.id, "ratio": aa.ratio, "ci": list(aa.ci), "threshold": thr}

    # whole-run pair
    t_cal = time.perf_counter()
    total = paired(_whole(run_a), _whole(run_b), be, settings_a=apply_a, settings_b=apply_b, decide_at=thr, **kw)

    results: list[RegionResult] = []
    rerun_ok = not replayable and run_a.fn is not None and run_b.fn is not None and be.name in ("time", "model")
    if rerun_ok:
        notes.append(
            "a run exceeded the snapshot limit: regions were measured by re-running both callables "
            "and timing every op (per-op dispatch timing)"
        )
        keep = [r for r in m.regions if _has_work(run_a, r.a_nodes) or _has_work(run_b, r.b_nodes)]
        pairs = rerun_regions(
            run_a, run_b, [(r.a_nodes, r.b_nodes) for r in keep], be, rounds=max(rounds, 7), seed=seed
        )
        results.extend(RegionResult(r, p, r.label(run_a, run_b)) for r, p in zip(keep, pairs))
    elif not replayable:
        notes.append("a run exceeded the snapshot limit: the whole runs were re-run and compared as one region")
        whole = Region(
            0,
            tuple(n.id for n in run_a.graph.nodes if n.op != "input"),
            tuple(n.id for n in run_b.graph.nodes if n.op != "input"),
            None,
            None,
            -1,
        )
        results.append(RegionResult(whole, total, whole.label(run_a, run_b)))
        m.regions = [whole]
    t_whole = time.perf_counter()
    todo = [r for r in m.regions if _has_work(run_a, r.a_nodes) or _has_work(run_b, r.b_nodes)] if replayable else []
    screened, scale = _screen(run_a, run_b, todo, screen_share)
    if len(screened) < len(todo):
        notes.append(
            f"{len(todo) - len(screened)} of {len(todo)} regions were not replayed: each took less than "
            f"{screen_share:.2%} of its side's recorded time, too little to be flagged (screen_share)"
        )
    done: dict[tuple[Any, ...], PairResult] = {}
    reused = 0
    # The largest regions first: the costs measured so far bound each side's total from below, so a pair whose
    # share of that bound stays under MIN_SHARE / SHARE_MARGIN after min_rounds cannot be flagged and stops.
    seen = [0.0, 0.0]  # per side: sum of the measured per-call costs so far
    stopped = 0

    def negligible(cost_a: float, cost_b: float) -> bool:
        if min(seen) < 0 or cost_a < 0 or cost_b < 0:  # idle-subtracted energy can be < 0: no bound then
            return False
        low_a, low_b = scale[0] * (seen[0] + cost_a), scale[1] * (seen[1] + cost_b)
        return cost_a * SHARE_MARGIN < MIN_SHARE * low_a and cost_b * SHARE_MARGIN < MIN_SHARE * low_b

    def recorded(r: Region) -> float:
        return max(
            sum(run_a.graph.nodes[i].meta.get("dur_ns", 0) for i in r.a_nodes) * scale[0],
            sum(run_b.graph.nodes[i].meta.get("dur_ns", 0) for i in r.b_nodes) * scale[1],
        )

    by_region: dict[int, RegionResult] = {}
    for r in sorted(screened, key=lambda r: -recorded(r)):
        key = _region_key(run_a, r.a_nodes, run_b, r.b_nodes) if dedupe else None
        if key is not None and key in done:  # the same ops on the same shapes (another layer or token)
            res = copy.copy(done[key])
            res.extra = {**res.extra, "reused_from_region": done[key].extra.get("region")}
            reused += 1
        else:
            fa = RegionRunner(run_a, r.a_nodes) if r.a_nodes else NOTHING
            fb = RegionRunner(run_b, r.b_nodes) if r.b_nodes else NOTHING
            res = paired(
                fa,
                fb,
                be,
                settings_a=apply_a,
                settings_b=apply_b,
                decide_at=thr,
                bytes_a=fa.bytes_per_call,
                bytes_b=fb.bytes_per_call,
                negligible=negligible if min_rounds else None,
                **kw,
            )
            res.extra["region"] = r.id
            if key is not None:
                done[key] = res
            stopped += int(res.extra.get("stopped") == "negligible share")
        seen[0] += res.a.cost if res.a.cost >= 0 else -math.inf
        seen[1] += res.b.cost if res.b.cost >= 0 else -math.inf
        by_region[id(r)] = RegionResult(r, res, r.label(run_a, run_b))
    results.extend(by_region[id(r)] for r in screened)  # back in region order
    if reused:
        notes.append(f"{reused} regions repeat another region's ops and shapes: measured once, result reused")
    t_measure = time.perf_counter()

    findings = _decide(run_a, run_b, m, results, thr, be, out_check, apply_a, apply_b, kw, scale)
    # "all regions shift": a global setting, not a local code change
    measured = [x for x in results if x.pair.a.cost + x.pair.b.cost > 0]
    flagged_dirs = Counter(f.costly_side for f in findings if f.kind == "region")
    sdiff = settings_mod.diff(sa, sb)
    global_shift = bool(
        len(measured) >= 2 and sdiff and max(flagged_dirs.values(), default=0) >= max(2, 0.5 * len(measured))
    )
    for f in findings:
        if f.kind != "region":
            continue
        if global_shift:
            f.category = "misconfig"
        if f.category == "misconfig":
            f.config_diff = {**{k: list(v) for k, v in sdiff.items()}, **f.config_diff}
    if bisect:
        cache: dict[str, list[dict[str, Any]]] = {}
        for f in findings:
            if f.category == "misconfig":
                _bisect(f, run_a, run_b, m, be, thr, kw, cache, total)
    findings = _group(findings)
    findings.sort(key=lambda f: -(f.delta_cost or 0.0))
    run_a.restore()  # whole-run windows ran training steps: leave the user's models as they were
    run_b.restore()
    t_end = time.perf_counter()
    return DiffReport(
        findings=findings,
        regions=results,
        backend=be.name,
        backend_info=be.describe(),
        threshold=thr,
        calibration=calibration,
        outputs=out_check,
        tolerance=m.tolerance,
        total=total,
        settings_diff={k: list(v) for k, v in sdiff.items()},
        notes=notes,
        run_a=run_a,
        run_b=run_b,
        match=m,
        timings={
            "record_s": t_rec - t_start,
            "match_s": t_match - t_rec,
            "measure_s": t_measure - t_match,
            "calibrate_s": t_cal - t_match,
            "whole_run_s": t_whole - t_cal,
            "regions_s": t_measure - t_whole,
            "diagnose_s": t_end - t_measure,
            "total_s": t_end - t_start,
            "regions": len(m.regions),
            "regions_replayed": len(done) if dedupe else len(screened),
            "regions_screened_out": len(todo) - len(screened),
            "regions_reused": reused,
            "regions_stopped_small": stopped,
        },
    )


_MOVE_OPS = frozenset({"aten::cat", "aten::stack", "aten::clone", "aten::copy_", "aten::_to_copy", "aten::contiguous"})


def _compute_ops(c: Counter[str]) -> Counter[str]:
    return Counter({k: v for k, v in c.items() if k not in _MOVE_OPS})


def _work_elems(run: Run, ids: tuple[int, ...]) -> int:
    total = 0
    for i in ids:
        n = run.graph.nodes[i]
        if n.op not in FREE_OPS and n.op not in _MOVE_OPS:
            total += int(math.prod(n.meta.get("shape") or [1]))
    return total


def _cheap_is_slower(p: PairResult, side: str) -> bool:
    """Whether the cheaper side is clearly slower: the 95% CI of its wall-time ratio lies above 1.01."""
    lo, hi = p.extra.get("wall_ci", [1.0, 1.0])
    if side == "a":  # B is the cheap side; B/A wall = 1 / (A/B)
        return bool(hi < 1 / SLOWER_TOLERANCE)
    return bool(lo > SLOWER_TOLERANCE)


def _group(findings: list[Finding]) -> list[Finding]:
    """Merge findings with the same costly side, category and call and library sites (a loop repeats one culprit)."""
    groups: dict[tuple[Any, ...], list[Finding]] = {}
    for f in findings:
        key = (f.costly_side, f.category, f.kind, f.verdict, tuple(f.callsites), tuple(sorted(f.lib_sites)))
        groups.setdefault(key, []).append(f)
    out = []
    for members in groups.values():
        lead = max(members, key=lambda f: f.delta_cost)
        if len(members) > 1:
            lead.regions = sorted(f.region for f in members)
            lead.delta_cost = sum(f.delta_cost for f in members)
            lead.delta_wall_s = sum(f.delta_wall_s for f in members)
            if lead.delta_energy_j is not None:
                lead.delta_energy_j = sum(f.delta_energy_j or 0.0 for f in members)
        else:
            lead.regions = [lead.region]
        out.append(lead)
    return out


def _screen(run_a: Run, run_b: Run, regions: list[Region], share: float) -> tuple[list[Region], tuple[float, float]]:
    """Regions worth replaying, and per side the factor from their recorded time to the whole run's.

    A region is left out when, on both sides, its recorded op time is below ``share`` of that side's total
    (the factor keeps the shares of the others, used by the 1% rule, relative to the whole run).
    """

    def dur(run: Run, ids: tuple[int, ...]) -> float:
        return float(sum(run.graph.nodes[i].meta.get("dur_ns", 0) for i in ids))

    tot_a = sum(dur(run_a, r.a_nodes) for r in regions) or 1.0
    tot_b = sum(dur(run_b, r.b_nodes) for r in regions) or 1.0
    keep = [
        r
        for r in regions
        if share <= 0 or dur(run_a, r.a_nodes) >= share * tot_a or dur(run_b, r.b_nodes) >= share * tot_b
    ]
    kept_a = sum(dur(run_a, r.a_nodes) for r in keep) or tot_a
    kept_b = sum(dur(run_b, r.b_nodes) for r in keep) or tot_b
    return keep, (tot_a / kept_a, tot_b / kept_b)


def _region_key(run_a: Run, ids_a: tuple[int, ...], run_b: Run, ids_b: tuple[int, ...]) -> tuple[Any, ...] | None:
    """The key of a region pair's replay cost (None: do not de-duplicate).

    Per op of both sides: the overload, the non-tensor arguments and the shapes, strides and dtypes of its
    inputs and output.
    """

    def side(run: Run, ids: tuple[int, ...]) -> tuple[Any, ...]:
        g = run.graph
        out = []
        for i in ids:
            n = g.nodes[i]
            if n.op == "getitem":
                out.append(("getitem", n.attrs.get("index")))
                continue
            args = tuple(
                json.dumps(leaf) if leaf[0] != "t" else _tensor_sig(g.nodes[leaf[1]].meta)
                for leaf in n.attrs.get("args", ())
            )
            out.append((n.attrs.get("overload", n.op), args, _tensor_sig(n.meta), bool(n.meta.get("recording_only"))))
        return tuple(out)

    if not ids_a and not ids_b:
        return None
    return side(run_a, ids_a), side(run_b, ids_b)


def _tensor_sig(meta: dict[str, Any]) -> tuple[Any, ...]:
    return (tuple(meta.get("shape") or ()), tuple(meta.get("strides") or ()), meta.get("dtype"))


def _has_work(run: Run, ids: tuple[int, ...]) -> bool:
    return any(run.graph.nodes[i].op not in FREE_OPS for i in ids)


def _decide(
    run_a: Run,
    run_b: Run,
    m: Match,
    results: list[RegionResult],
    thr: float,
    be: Backend,
    out_check: dict[str, Any],
    apply_a: dict[str, Any],
    apply_b: dict[str, Any],
    kw: dict[str, Any],
    scale: tuple[float, float] = (1.0, 1.0),
) -> list[Finding]:
    sdiff = settings_mod.diff(run_a.settings, run_b.settings)
    has_knob_diff = any(settings_mod.applicable(k) or k.startswith("env.") for k in sdiff)
    total_a = scale[0] * sum(x.pair.a.cost for x in results) or 1e-30
    total_b = scale[1] * sum(x.pair.b.cost for x in results) or 1e-30
    findings: list[Finding] = []
    for x in results:
        r, p = x.region, x.pair
        if p.ratio >= 1:
            side, ratio, ci, costly, cheap = "a", p.ratio, p.ci, p.a, p.b
            share = costly.cost / total_a
        else:
            side, ratio, ci, costly, cheap = "b", 1 / p.ratio, (1 / p.ci[1], 1 / p.ci[0]), p.b, p.a
            share = costly.cost / total_b
        x.flagged = bool(ci[0] > thr and share >= MIN_SHARE)
        if not x.flagged:
            continue
        ops_a, ops_b = op_counts(run_a.graph, r.a_nodes), op_counts(run_b.graph, r.b_nodes)
        mine, theirs = (ops_a, ops_b) if side == "a" else (ops_b, ops_a)
        cfg = _attr_diff(run_a, r.a_nodes, run_b, r.b_nodes)
        if mine == theirs:
            costly_ids, cheap_ids = (r.a_nodes, r.b_nodes) if side == "a" else (r.b_nodes, r.a_nodes)
            costly_run, cheap_run = (run_a, run_b) if side == "a" else (run_b, run_a)
            if _work_elems(costly_run, costly_ids) > 1.5 * _work_elems(cheap_run, cheap_ids):
                category = "redundant"  # the same ops on more data than needed
            elif cfg or has_knob_diff:
                category = "misconfig"
            else:
                category = "api_misuse"  # same API, fed a layout it handles badly
        elif all(mine[k] >= theirs[k] for k in theirs):
            category = "redundant"
        elif _compute_ops(mine) == _compute_ops(theirs):
            costly_ids, cheap_ids = (r.a_nodes, r.b_nodes) if side == "a" else (r.b_nodes, r.a_nodes)
            costly_run, cheap_run = (run_a, run_b) if side == "a" else (run_b, run_a)
            more = _work_elems(costly_run, costly_ids) > 1.5 * _work_elems(cheap_run, cheap_ids)
            category = "redundant" if more else "api_misuse"
        else:
            category = "api_misuse"
        if category != "misconfig":
            cfg = {}
        waste = out_check["agree"] and not _cheap_is_slower(p, side)
        findings.append(
            _finding(
                run_a, run_b, r, "region", category, side, ratio, ci, costly, cheap, be, waste, cfg, ops_a, ops_b, p
            )
        )
        if not r.a_nodes or not r.b_nodes or r.a_cut is None:
            findings[-1].op_table = name_shape_table(run_a, r.a_nodes, run_b, r.b_nodes)[:12]
    # redundant-op rule: measure each provably redundant copy by eliding it
    for x in results:
        r = x.region
        for red in r.redundant:
            run = run_a if red["side"] == "a" else run_b
            ids = r.a_nodes if red["side"] == "a" else r.b_nodes
            settings = apply_a if red["side"] == "a" else apply_b
            try:
                full = RegionRunner(run, ids)
                without = RegionRunner(run, ids, elide={red["node"]: red["source_node"]})
            except EnergyError as exc:
                log.info("cannot elide node %s: %s", red["node"], exc)
                continue
            p = paired(
                full,
                without,
                be,
                settings_a=settings,
                settings_b=settings,
                decide_at=REDUNDANT_THRESHOLD,
                bytes_a=full.bytes_per_call,
                bytes_b=without.bytes_per_call,
                **kw,
            )
            red["ratio"], red["ci"] = p.ratio, list(p.ci)
            if p.ci[0] <= REDUNDANT_THRESHOLD:
                continue
            if any(f.region == r.id and f.costly_side == red["side"] and f.category == "redundant" for f in findings):
                for f in findings:
                    if f.region == r.id:
                        f.redundant_ops.append(red)
                continue
            findings = [f for f in findings if not (f.region == r.id and f.costly_side == red["side"])]
            ids_one = (red["node"],)
            ops_a = op_counts(run_a.graph, ids_one if red["side"] == "a" else ())
            ops_b = op_counts(run_b.graph, ids_one if red["side"] == "b" else ())
            f = _finding(
                run_a,
                run_b,
                r,
                "redundant_op",
                "redundant",
                red["side"],
                p.ratio,
                p.ci,
                p.a,
                p.b,
                be,
                True,
                {},
                ops_a,
                ops_b,
                p,
            )
            site, lib = red["callsite"], [red["lib_callsite"]] if red.get("lib_callsite") else []
            if red["side"] == "a":
                f.a_callsites, f.a_lib_sites = [site], lib
                f.b_callsites, f.b_lib_sites = _callsites(run_b, r.b_nodes), _lib_sites(run_b, r.b_nodes)
            else:
                f.b_callsites, f.b_lib_sites = [site], lib
                f.a_callsites, f.a_lib_sites = _callsites(run_a, r.a_nodes), _lib_sites(run_a, r.a_nodes)
            f.redundant_ops.append(red)
            findings.append(f)
    return findings


def _finding(
    run_a: Run,
    run_b: Run,
    r: Region,
    kind: str,
    category: str,
    side: str,
    ratio: float,
    ci: tuple[float, float],
    costly: Any,
    cheap: Any,
    be: Backend,
    waste: bool,
    cfg: dict[str, Any],
    ops_a: Counter[str],
    ops_b: Counter[str],
    pair: PairResult,
) -> Finding:
    delta = costly.cost - cheap.cost
    costly_run, costly_ids = (run_a, r.a_nodes) if side == "a" else (run_b, r.b_nodes)
    return Finding(
        region=r.id,
        category=category,
        ratio=float(ratio),
        ci=(float(ci[0]), float(ci[1])),
        delta_energy_j=None if be.name == "time" else float(delta),
        a_callsites=_callsites(run_a, r.a_nodes),
        b_callsites=_callsites(run_b, r.b_nodes),
        a_lib_sites=_lib_sites(run_a, r.a_nodes),
        b_lib_sites=_lib_sites(run_b, r.b_nodes),
        module_path=_module_path(costly_run, costly_ids),
        config_diff={k: list(v) for k, v in cfg.items()},
        knob=None,
        costly_side=side,
        verdict="waste" if waste else "trade-off",
        delta_cost=float(delta),
        delta_wall_s=float(costly.wall_s - cheap.wall_s),
        unit=be.unit,
        estimated=be.estimated,
        kind=kind,
        ops_a=dict(ops_a),
        ops_b=dict(ops_b),
    )


def _bisect(
    f: Finding,
    run_a: Run,
    run_b: Run,
    m: Match,
    be: Backend,
    thr: float,
    kw: dict[str, Any],
    cache: dict[str, list[dict[str, Any]]],
    total: PairResult | None = None,
) -> None:
    """Re-run the cheap side with the costly side's value of each differing knob; keep the one that reproduces.

    Whole-run trials (settings) are cached per costly side; per-region trials (memory format, dtype) replay the
    cheap side's region with its inputs converted to the costly side's layout or dtype.
    """
    costly, cheap = (run_a, run_b) if f.costly_side == "a" else (run_b, run_a)
    trials: list[dict[str, Any]] = [dict(t) for t in cache.get(f.costly_side, [])]
    gap = math.log(max(f.ratio, 1.0 + 1e-9))
    sdiff = settings_mod.diff(costly.settings, cheap.settings)
    if cheap.fn is not None and f.costly_side not in cache:
        base_settings = {k: v for k, v in cheap.settings.items() if settings_mod.applicable(k)}
        for key, (v_costly, _v_cheap) in sdiff.items():
            if not settings_mod.applicable(key):
                continue
            trial_settings = {**base_settings, key: v_costly}
            fn = cheap.fn.fn if isinstance(cheap.fn, Configured) else cheap.fn
            try:
                p = paired(
                    _whole(
                        Run(
                            cheap.graph,
                            cheap.settings,
                            fn=configured(fn, **trial_settings),
                            inputs=cheap.inputs,
                            kwargs=cheap.kwargs,
                            state=cheap.state,
                        )
                    ),
                    _whole(cheap),
                    be,
                    settings_b=base_settings,
                    **kw,
                )
            except Exception as exc:  # noqa: BLE001  (a knob value that breaks the callable is just not it)
                trials.append({"knob": key, "error": str(exc)})
                continue
            trials.append({"knob": key, "value": v_costly, "ratio": p.ratio, "ci": list(p.ci)})
        cache[f.costly_side] = [dict(t) for t in trials]
    region = m.regions[f.region]
    cheap_ids = region.b_nodes if f.costly_side == "a" else region.a_nodes
    for key, value in f.config_diff.items():
        if key not in ("memory_format", "dtype") or not cheap.replayable or not cheap_ids:
            continue
        target = value[0] if f.costly_side == "a" else value[1]
        transform = _transform_for(key, target)
        try:
            p = paired(RegionRunner(cheap, cheap_ids, transform=transform), RegionRunner(cheap, cheap_ids), be, **kw)
        except Exception as exc:  # noqa: BLE001
            trials.append({"knob": key, "error": str(exc)})
            continue
        trials.append({"knob": key, "value": target, "ratio": p.ratio, "ci": list(p.ci)})
    f.bisection = trials
    best = None
    for t in trials:
        if "ratio" not in t or t["ci"][0] <= 1.0:
            continue
        ref = gap
        if t["knob"] not in ("memory_format", "dtype") and total is not None:
            whole = total.ratio if f.costly_side == "a" else 1 / total.ratio
            if whole > 1.0:  # a setting acts on the whole run: compare with the whole-run gap
                ref = math.log(whole)
        explained = math.log(t["ratio"]) / ref if ref > 0 else 0.0
        t["explained"] = explained
        t["setting"] = t["knob"] not in ("memory_format", "dtype")
        rank = (t["setting"], t["ratio"])
        if explained >= 0.5 and (best is None or rank > (best["setting"], best["ratio"])):
            best = t
    f.knob = best["knob"] if best is not None else None


def _transform_for(key: str, target: str) -> Callable[[Any], Any]:
    import torch

    if key == "memory_format":
        fmt = torch.channels_last if target == "channels_last" else torch.contiguous_format

        def to_format(t: Any) -> Any:
            return t.contiguous(memory_format=fmt) if t.dim() == 4 else t

        return to_format
    dt = getattr(torch, str(target))

    def to_dtype(t: Any) -> Any:
        return t.to(dt) if t.is_floating_point() else t

    return to_dtype
