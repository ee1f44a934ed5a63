"""Baselines evaluated next to the learned model: random, default config, analytical, LightGBM lambdarank.

Every baseline has ``name``, ``fit(train_records) -> self`` and ``predict(record) -> cost[c]`` (lower = faster),
like :class:`~opgraph.perf.model.CostModel`.

* :class:`RandomBaseline`: a random order (seeded by graph name).
* :class:`DefaultBaseline`: the default (reference) config first, the rest in random order; its slowdown@1 is the
  cost of not tuning at all.
* :class:`AnalyticalBaseline`: no training. Layout: sum over convolutions of a roofline time
  ``max(FLOPs / peak, bytes / bandwidth)`` + the bytes of every layout conversion / bandwidth + the reorder that an
  NCHW convolution costs oneDNN on CPU. Tile: the cache-footprint model of :mod:`opgraph.perf.tile`.
* :class:`LightGBMBaseline`: ``LGBMRanker(objective="lambdarank")`` with one query per graph on aggregate graph
  features + config summaries (fraction channels-last overall / FLOP-weighted / per conv kind, conversions).
* :class:`MetaScheduleBaseline` (tile only): TVM MetaSchedule's own learned cost models, ``XGBModel`` (XGBoost on
  per-store TIR features, pack-sum loss; what ``tune_tir`` uses) or ``MLPModel`` (segment-sum MLP, lambda-rank
  loss), trained on the same measured records: every config's schedule is rebuilt from ``measure_meta["kernel"]``
  and its tile, and fed to the model with its measured runtime.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from opgraph.perf.errors import require
from opgraph.perf.features import COL_GROUPS, COL_SHAPE, COL_WINDOW, conv_flops
from opgraph.perf.tpugraphs import GraphRecord

log = logging.getLogger(__name__)

PEAK_FLOPS = 30e9  # effective single-core fp32 FLOP/s (AVX2 FMA at ~1/3 of peak)
BANDWIDTH_BPS = 10e9  # effective single-core memory bandwidth, bytes/s


def _rng_for(rec: GraphRecord, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(rec.name.encode())])


class RandomBaseline:
    """Random order of the configs."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, train: list[GraphRecord]) -> RandomBaseline:
        """Nothing to fit."""
        return self

    def predict(self, rec: GraphRecord) -> np.ndarray:
        """Random costs."""
        return _rng_for(rec, self.seed).random(rec.n_configs)


class DefaultBaseline(RandomBaseline):
    """Default config first (``measure_meta["reference_config"]``, else 0), others in random order."""

    name = "default config"

    def predict(self, rec: GraphRecord) -> np.ndarray:
        """Cost -1 for the default config, random in [0, 1) for the rest."""
        cost = super().predict(rec)
        cost[int(rec.measure_meta.get("reference_config", 0))] = -1.0
        return cost


# -- layout helpers shared by the analytical model and LightGBM ---------------------------------------------


class LayoutGraphInfo:
    """Per-graph quantities of a layout record: producers, 4-d nodes, conv FLOPs and bytes."""

    def __init__(self, rec: GraphRecord) -> None:
        f = np.asarray(rec.node_feat)
        self.n = rec.n_nodes
        e = np.asarray(rec.edge_index).reshape(-1, 2)
        self.producers: list[list[int]] = [[] for _ in range(self.n)]
        for c, p in e:
            self.producers[int(c)].append(int(p))
        self.rank4 = (f[:, COL_SHAPE : COL_SHAPE + 6] > 0).sum(1) == 4
        self.cfg = np.asarray(rec.node_config_ids, dtype=np.int64)
        self.cfg_index = {int(v): i for i, v in enumerate(self.cfg)}
        self.out_bytes = f[:, COL_SHAPE + 7] * 4.0
        self.flops = np.array([conv_flops(f, e, int(i)) for i in self.cfg])
        self.depthwise = f[self.cfg, COL_GROUPS] > 1
        self.pointwise = (f[self.cfg, COL_WINDOW + 7] <= 1) & ~self.depthwise
        self.in_bytes = np.array(
            [self.out_bytes[self.producers[int(i)][0]] if self.producers[int(i)] else 0.0 for i in self.cfg]
        )

    def propagate(self, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Formats per node (-1 = not 4-d) and, per configurable node, whether its input needs a conversion."""
        fmt = -np.ones(self.n, dtype=np.int64)
        convert = np.zeros(len(self.cfg), dtype=bool)
        for v in range(self.n):
            ins = [fmt[u] for u in self.producers[v] if fmt[u] >= 0]
            src = ins[0] if ins else 0
            if v in self.cfg_index:
                k = self.cfg_index[v]
                fmt[v] = choice[k]
                convert[k] = bool(ins) and src != choice[k]
            elif self.rank4[v]:
                fmt[v] = src
        return fmt, convert


def _choices(rec: GraphRecord) -> np.ndarray:
    from opgraph.perf.layout import decode_configs

    return decode_configs(rec.config_matrix())


class AnalyticalBaseline:
    """Roofline + conversion-cost model (layout) or cache-footprint model (tile); no training."""

    name = "analytical"

    def fit(self, train: list[GraphRecord]) -> AnalyticalBaseline:
        """Nothing to fit."""
        return self

    def predict(self, rec: GraphRecord) -> np.ndarray:
        """Modelled runtime in seconds per config."""
        if rec.kind == "tile":
            from opgraph.perf.tile import analytical_tile_cost

            return analytical_tile_cost(rec)
        return layout_analytical_terms(rec).sum(1)


def layout_analytical_terms(rec: GraphRecord, info: LayoutGraphInfo | None = None) -> np.ndarray:
    """The four terms of the analytical layout model per config, seconds (modelled) float64[c, 4].

    Columns: roofline compute of the convolutions (the same for every config), layout conversions, the NCHW
    reorder penalty, the depthwise NCHW penalty; :class:`AnalyticalBaseline` predicts their sum.
    """
    info = info or LayoutGraphInfo(rec)
    ch = _choices(rec)
    out = np.zeros((len(ch), 4))
    compute = np.maximum(info.flops / PEAK_FLOPS, (info.in_bytes + info.out_bytes[info.cfg]) / BANDWIDTH_BPS)
    reorder = (info.in_bytes + info.out_bytes[info.cfg]) / BANDWIDTH_BPS
    for c, choice in enumerate(ch):
        _, convert = info.propagate(choice)
        conv_cost = np.sum(convert * 2 * info.in_bytes) / BANDWIDTH_BPS
        # oneDNN reorders NCHW activations to its blocked format and back; NHWC is consumed directly
        nchw_penalty = np.sum((choice == 0) * reorder)
        # depthwise convolutions are memory-bound and vectorise over channels only in NHWC
        dw = np.sum((choice == 0) * info.depthwise * compute)
        out[c] = (compute.sum(), conv_cost, nchw_penalty, 0.5 * dw)
    return out


def layout_row_features(rec: GraphRecord, info: LayoutGraphInfo | None = None) -> np.ndarray:
    """Aggregate features [c, 16] for LightGBM: graph size and FLOPs, and config summaries."""
    info = info or LayoutGraphInfo(rec)
    ch = _choices(rec)
    fl = info.flops / max(info.flops.sum(), 1.0)
    rows = []
    kxk = ~info.depthwise & ~info.pointwise
    for choice in ch:
        _, convert = info.propagate(choice)
        c = choice.astype(np.float64)

        def frac(mask: np.ndarray, c: np.ndarray = c) -> float:
            return float(c[mask].mean()) if mask.any() else -1.0

        rows.append(
            [
                np.log1p(info.n),
                np.log1p(len(info.cfg)),
                np.log1p(info.flops.sum()),
                np.log1p(info.in_bytes.sum()),
                c.mean(),
                c.sum(),
                float((fl * c).sum()),
                frac(info.depthwise),
                frac(info.pointwise),
                frac(kxk),
                c[0] if len(c) else 0.0,
                c[-1] if len(c) else 0.0,
                float(convert.sum()),
                np.log1p(float((convert * info.in_bytes).sum())),
                float(((info.in_bytes / max(info.in_bytes.sum(), 1.0)) * c).sum()),
                float(convert[info.depthwise].sum()) if info.depthwise.any() else 0.0,
            ]
        )
    return np.asarray(rows, dtype=np.float64)


#: Width of :func:`config_hints` per space.
HINT_DIMS = {"layout": 20, "tile": 52}


def config_hints(rec: GraphRecord) -> np.ndarray:
    """Per-config hints for a learned model float64[c, HINT_DIMS[kind]]: what the analytical model and LightGBM see.

    Column 0 is the log of the analytical estimate (seconds, modelled); layout then has ``log1p`` of its three
    penalty terms over the graph's compute time and the 16 :func:`layout_row_features`; tile has the ``sign(x)
    log1p|x|`` of the 51 :func:`tile_row_features`. Not normalised: :class:`~opgraph.perf.model.CostModel` centres
    them per graph and scales them with a standard deviation fitted on its training graphs.
    """
    if rec.kind == "layout":
        info = LayoutGraphInfo(rec)
        terms = layout_analytical_terms(rec, info)
        total = terms.sum(1)
        base = max(float(terms[:, 0].max()), 1e-12)
        rows = layout_row_features(rec, info)
        out = np.hstack([np.log(np.maximum(total, 1e-12))[:, None], np.log1p(terms[:, 1:] / base), rows])
    else:
        from opgraph.perf.tile import analytical_tile_cost

        est = np.log(np.maximum(analytical_tile_cost(rec), 1e-12))
        rows = tile_row_features(rec)
        out = np.hstack([est[:, None], np.sign(rows) * np.log1p(np.abs(rows))])
    return out.astype(np.float64)


def tile_row_features(rec: GraphRecord) -> np.ndarray:
    """Aggregate features for tile graphs: config features, their logs, and graph size/shape summaries."""
    cf = rec.config_matrix().astype(np.float64)
    f = np.asarray(rec.node_feat, dtype=np.float64)
    g = np.array([np.log1p(rec.n_nodes), np.log1p(f[:, COL_SHAPE + 7].sum()), np.log1p(f[:, COL_SHAPE + 7].max())])
    return np.hstack([cf, np.log1p(np.abs(cf)), np.repeat(g[None], len(cf), 0)])


class LightGBMBaseline:
    """LightGBM lambdarank on aggregate features, one query per graph."""

    name = "LightGBM lambdarank"

    def __init__(self, seed: int = 0, n_estimators: int = 200) -> None:
        self.seed = seed
        self.n_estimators = n_estimators
        self.model: Any = None
        self.selection: dict[str, Any] = {}  # how ``opgraph perf train`` chose it (see model.load_ranker)

    @staticmethod
    def features(rec: GraphRecord) -> np.ndarray:
        """Row features of every config of ``rec``."""
        return layout_row_features(rec) if rec.kind == "layout" else tile_row_features(rec)

    kind: str = ""

    def fit(self, train: list[GraphRecord]) -> LightGBMBaseline:
        """Fit ``LGBMRanker`` with relevance = 30 for the fastest config of a graph down to 0 for the slowest."""
        lgb = require("lightgbm", "perf")
        xs, ys, groups = [], [], []
        self.kind = train[0].kind if train else ""
        for r in train:
            x = self.features(r)
            rt = r.target_runtime()
            rank = np.argsort(np.argsort(rt, kind="stable"), kind="stable")
            rel = np.rint(30 * (1 - rank / max(len(rt) - 1, 1))).astype(int)
            xs.append(x)
            ys.append(rel)
            groups.append(len(rt))
        self.model = lgb.LGBMRanker(  # type: ignore[attr-defined]
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=5,
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
            label_gain=list(range(31)),
        )
        self.model.fit(np.vstack(xs), np.concatenate(ys), group=groups)
        return self

    def predict(self, rec: GraphRecord) -> np.ndarray:
        """Cost = minus the ranker's relevance score."""
        return -np.asarray(self.model.predict(self.features(rec)), dtype=np.float64)

    def to_string(self) -> str:
        """The fitted booster as LightGBM's text model format (for a checkpoint; no pickle)."""
        booster = getattr(self.model, "booster_", self.model)
        return str(booster.model_to_string())

    @classmethod
    def from_string(cls, text: str, kind: str) -> LightGBMBaseline:
        """A baseline that predicts with a booster saved by :meth:`to_string`."""
        lgb = require("lightgbm", "perf")
        out = cls()
        out.model = lgb.Booster(model_str=text)  # type: ignore[attr-defined]
        out.kind = kind
        return out


# -- MetaSchedule's cost models (tile space) ----------------------------------------------------------------

#: The apache-tvm-ffi releases whose MetaSchedule feature extraction segfaults (research note perf-real §0).
_BAD_TVM_FFI = ("0.1.15",)
_MS_CACHE: dict[tuple[str, int, bytes], tuple[Any, list[Any], list[float]]] = {}


def _check_tvm_ffi() -> None:
    from importlib.metadata import PackageNotFoundError, version

    from opgraph.perf.errors import MissingDependencyError

    try:
        import tvm_ffi

        v = str(getattr(tvm_ffi, "__version__", "") or version("apache-tvm-ffi"))
    except (ImportError, PackageNotFoundError):
        return
    if v.startswith(_BAD_TVM_FFI):
        raise MissingDependencyError(
            f"MetaSchedule's feature extractor segfaults with apache-tvm-ffi {v}; "
            "install `pip install apache-tvm-ffi==0.1.14.post1` to use the MetaSchedule baselines"
        )


def _kernel_of(rec: GraphRecord) -> Any:
    from opgraph.perf.errors import PerfError
    from opgraph.perf.tile import KernelSpec

    k = rec.measure_meta.get("kernel")
    if not k:
        raise PerfError(f"{rec.name}: no measure_meta['kernel']; the MetaSchedule baselines need collect_tile records")
    return KernelSpec(k["op"], tuple(k["dims"]), k["epilogue"], int(k.get("stride", 1)), int(k.get("groups", 1)))


def metaschedule_candidates(rec: GraphRecord) -> tuple[Any, list[Any], list[float]]:
    """``(TuneContext, MeasureCandidate per config, runtime s per config)`` of a tile record (cached per process).

    Config ``measure_meta["reference_config"]`` (0) is the default schedule; every other config's tile is read
    back from its kernel bounds (columns 0-2).
    """
    from opgraph.perf.tile import _te_func, require_tvm, schedule

    key = (rec.name, rec.n_configs, np.ascontiguousarray(rec.config_matrix()).tobytes())
    if key in _MS_CACHE:
        return _MS_CACHE[key]
    tvm = require_tvm()
    _check_tvm_ffi()
    ms = tvm.s_tir.meta_schedule
    spec = _kernel_of(rec)
    func, _ = _te_func(spec)
    target = tvm.target.Target({"kind": "llvm", "num-cores": 1})
    ctx = ms.TuneContext(mod=tvm.IRModule({"main": func}), target=target, num_threads=1)
    args = ms.arg_info.ArgInfo.from_prim_func(func)
    ref = int(rec.measure_meta.get("reference_config", 0))
    cf = rec.config_matrix()
    cands = []
    for i in range(rec.n_configs):
        tile = None if i == ref else (int(cf[i, 0]), int(cf[i, 1]), int(cf[i, 2]))
        cands.append(ms.MeasureCandidate(tvm.s_tir.Schedule(schedule(spec, tile)), args))
    secs = [float(v) for v in np.asarray(rec.config_runtime, dtype=np.float64) / 1e9] if rec.has_runtimes else []
    _MS_CACHE[key] = (ctx, cands, secs)
    return _MS_CACHE[key]


@contextlib.contextmanager
def _steplr_without_verbose() -> Iterator[None]:
    """TVM 0.27's MLP trainer passes ``verbose=True`` to ``StepLR``, a keyword torch 2.x removed: drop it."""
    import torch

    orig = torch.optim.lr_scheduler.StepLR

    def step_lr(*a: Any, verbose: Any = None, **kw: Any) -> Any:
        return orig(*a, **kw)

    torch.optim.lr_scheduler.StepLR = step_lr  # type: ignore[misc, assignment]
    try:
        yield
    finally:
        torch.optim.lr_scheduler.StepLR = orig  # type: ignore[misc]


class MetaScheduleBaseline:
    """TVM MetaSchedule's ``XGBModel`` (``model="xgb"``) or ``MLPModel`` (``model="mlp"``) on tile records.

    Fitting feeds every training kernel's configs (one ``TuneContext`` per kernel, i.e. one MetaSchedule
    workload group) with their measured runtimes and trains once on all of them; ``predict`` returns minus the
    model's score (MetaSchedule predicts a normalised throughput, higher = faster). Needs the ``tvm`` extra,
    ``xgboost`` for ``"xgb"`` (``pip install 'opgraph[perf]'``) and an ``apache-tvm-ffi`` other than 0.1.15.x.
    """

    def __init__(self, model: str = "xgb", seed: int = 0) -> None:
        from opgraph.perf.errors import PerfError

        if model not in ("xgb", "mlp"):
            raise PerfError(f"MetaScheduleBaseline model must be 'xgb' or 'mlp', got {model!r}")
        self.model_kind = model
        self.seed = seed
        self.name = "MetaSchedule XGBoost" if model == "xgb" else "MetaSchedule MLP"
        self.model: Any = None

    def fit(self, train: list[GraphRecord]) -> MetaScheduleBaseline:
        """Train on every config of every training kernel."""
        import random

        from opgraph.perf.errors import PerfError
        from opgraph.perf.tile import require_tvm

        if not train or any(r.kind != "tile" for r in train):
            raise PerfError("MetaScheduleBaseline.fit: needs tile records (kernels measured by collect_tile)")
        tvm = require_tvm()
        _check_tvm_ffi()
        ms = tvm.s_tir.meta_schedule
        groups = [metaschedule_candidates(r) for r in train]
        if self.model_kind == "xgb":
            require("xgboost", "perf")
            # adaptive training with a huge last_train_size: add every group without retraining, then train once
            from tvm.s_tir.meta_schedule.cost_model.xgb_model import XGBConfig

            m = ms.cost_model.XGBModel(
                config=XGBConfig(seed=self.seed, nthread=1), num_warmup_samples=0, adaptive_training=True
            )
            for i, (ctx, cands, secs) in enumerate(groups):
                last = i == len(groups) - 1
                m.adaptive_training = not last
                m.last_train_size = 0 if last else 1 << 60
                m.update(ctx, cands, [ms.runner.RunnerResult(run_secs=[s], error_msg=None) for s in secs])
        else:
            import torch
            from tvm.s_tir.meta_schedule.cost_model import mlp_model
            from tvm.s_tir.meta_schedule.utils import shash2hex

            random.seed(self.seed)
            torch.manual_seed(self.seed)
            m = mlp_model.MLPModel()
            results = [[ms.runner.RunnerResult(run_secs=[s], error_msg=None) for s in secs] for _, _, secs in groups]
            for (ctx, cands, _), res in zip(groups, results):
                feats, costs = mlp_model.extract_features(ctx, cands, res, m.trainer.state.extractor)
                m.trainer.state.add_to_group(feats, costs, shash2hex(ctx.mod))
            with _steplr_without_verbose():
                m.trainer.train_full()
        self.model = m
        return self

    def predict(self, rec: GraphRecord) -> np.ndarray:
        """Cost = minus MetaSchedule's predicted score."""
        ctx, cands, _ = metaschedule_candidates(rec)
        return -np.asarray(self.model.predict(ctx, cands), dtype=np.float64).reshape(-1)
