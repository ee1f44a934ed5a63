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
  and its tile, its per-store features extracted once (:func:`metaschedule_features`, cached) and fed to the model
  with its measured runtime.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
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
#: Width of :func:`tile_fit_features` (appended to the tile hints with ``fit=True``).
FIT_DIMS = 9


def tile_extents(rec: GraphRecord) -> np.ndarray:
    """Extents of the (i, j, k) loops of a tile record float64[3].

    From ``measure_meta["kernel"]`` when the record has it, else the largest tile of each loop among the configs
    (the default schedule, config 0 of every collection here, spans the whole loop).
    """
    k = rec.measure_meta.get("kernel") if isinstance(rec.measure_meta, dict) else None
    if k:
        from opgraph.perf.tile import KernelSpec

        spec = KernelSpec(k["op"], tuple(k["dims"]), k["epilogue"], int(k.get("stride", 1)), int(k.get("groups", 1)))
        return np.asarray(spec.loop_extents(), dtype=np.float64)
    return np.maximum(rec.config_matrix()[:, :3].astype(np.float64).max(0), 1.0)


def tile_fit_features(rec: GraphRecord) -> np.ndarray:
    """How each config's tile fits its loops float64[c, 9] (:data:`FIT_DIMS` columns).

    Per loop (i, j, k): whether the tile divides the extent, the padding waste ``ceil(e / t) t / e - 1`` and
    ``log(e / t)`` (extents from :func:`tile_extents`).

    A tile that does not divide its loop leaves a remainder that TVM guards with a condition in the inner
    (vectorised) loop; on the odd extents of ViT's attention (17 and 65 tokens) such configs run 3-20x slower than
    the default schedule, which no column of the config or the node features says directly.
    """
    e = tile_extents(rec)[None, :]
    t = np.clip(rec.config_matrix()[:, :3].astype(np.float64), 1.0, None)
    t = np.minimum(t, e)
    divides = (np.mod(e, t) == 0).astype(np.float64)
    waste = np.ceil(e / t) * t / e - 1.0
    return np.hstack([divides, waste, np.log(e / t)])


def config_hints(rec: GraphRecord, *, fit: bool = False) -> np.ndarray:
    """Per-config hints for a learned model float64[c, HINT_DIMS[kind]]: what the analytical model and LightGBM see.

    Column 0 is the log of the analytical estimate (seconds, modelled); layout then has ``log1p`` of its three
    penalty terms over the graph's compute time and the 16 :func:`layout_row_features`; tile has the ``sign(x)
    log1p|x|`` of the 51 :func:`tile_row_features`, then with ``fit=True`` the :data:`FIT_DIMS` columns of
    :func:`tile_fit_features` (tile only). Not normalised: :class:`~opgraph.perf.model.CostModel` centres
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
        if fit:
            out = np.hstack([out, tile_fit_features(rec)])
    return out.astype(np.float64)


def tile_row_features(rec: GraphRecord) -> np.ndarray:
    """Aggregate features for tile graphs: config features, their logs, and graph size/shape summaries."""
    cf = rec.config_matrix().astype(np.float64)
    f = np.asarray(rec.node_feat, dtype=np.float64)
    g = np.array([np.log1p(rec.n_nodes), np.log1p(f[:, COL_SHAPE + 7].sum()), np.log1p(f[:, COL_SHAPE + 7].max())])
    return np.hstack([cf, np.log1p(np.abs(cf)), np.repeat(g[None], len(cf), 0)])


#: LightGBM feature sets: name -> width. ``tile+fit`` is :func:`tile_row_features` then :func:`tile_fit_features`.
LGBM_FEATURE_SETS = {"layout": 16, "tile": 51, "tile+fit": 51 + FIT_DIMS}
#: The feature set a LightGBM ranker fits per space when none is named. Tile stays ``tile``: as the prior of
#: ``tune_tile`` (``benchmarks/perf/tile_replay.py``, 22 real kernels, 16 seeds) ``tile+fit`` put 18.75 of 22
#: kernels within 5% of the best against 20.62 without the fit columns (docs/perf.md).
LGBM_DEFAULT_FEATURES = {"layout": "layout", "tile": "tile"}
_FIT_NAMES = [f"fit_{what}_{loop}" for what in ("divides", "waste", "log_extent_over_tile") for loop in "ijk"]


def lightgbm_feature_names(feature_set: str) -> list[str]:
    """Column names of a LightGBM feature set, as stored in the booster's text (``feature_names=``).

    ``tile+fit`` names its :data:`FIT_DIMS` last columns ``fit_*``; the other sets keep LightGBM's own
    ``Column_<i>`` names, so a booster saved before the feature sets existed reads as ``layout`` or ``tile``.
    """
    n = LGBM_FEATURE_SETS[feature_set]
    if feature_set == "tile+fit":
        return [f"Column_{i}" for i in range(n - FIT_DIMS)] + _FIT_NAMES
    return [f"Column_{i}" for i in range(n)]


def lightgbm_feature_set(names: list[str], kind: str) -> str:
    """The feature set of a fitted booster from its feature names (see :func:`lightgbm_feature_names`).

    Raises:
        PerfError: The names match no feature set of ``kind`` (a model from another opgraph version).
    """
    from opgraph.perf.errors import PerfError

    sets = {"layout": ["layout"], "tile": ["tile+fit", "tile"]}.get(kind, list(LGBM_FEATURE_SETS))
    for fs in sets:
        if list(names) == lightgbm_feature_names(fs):
            return fs
    raise PerfError(
        f"LightGBM model: its {len(names)} feature columns match no {kind or 'known'} feature set "
        f"({', '.join(f'{k}: {v}' for k, v in LGBM_FEATURE_SETS.items())}); retrain it with `opgraph perf train`"
    )


class LightGBMBaseline:
    """LightGBM lambdarank on aggregate features, one query per graph.

    Args:
        seed: LightGBM's ``random_state``.
        n_estimators: Boosting rounds.
        features: Feature set (a key of :data:`LGBM_FEATURE_SETS`), or None for the space's default
            (:data:`LGBM_DEFAULT_FEATURES`). ``tile+fit`` adds :func:`tile_fit_features` (does the tile divide each
            loop, padding waste, ``log(extent / tile)``) to the tile columns. The set is recorded in the booster's
            feature names, so a saved model predicts with the columns it was trained on.
    """

    name = "LightGBM lambdarank"

    def __init__(self, seed: int = 0, n_estimators: int = 200, features: str | None = None) -> None:
        from opgraph.perf.errors import PerfError

        if features is not None and features not in LGBM_FEATURE_SETS:
            raise PerfError(f"LightGBMBaseline features must be one of {sorted(LGBM_FEATURE_SETS)}, got {features!r}")
        self.seed = seed
        self.n_estimators = n_estimators
        self.feature_set = features
        self.model: Any = None
        self.selection: dict[str, Any] = {}  # how ``opgraph perf train`` chose it (see model.load_ranker)

    def _set_for(self, rec: GraphRecord) -> str:
        from opgraph.perf.errors import PerfError

        fs = self.feature_set or LGBM_DEFAULT_FEATURES[rec.kind]
        if (fs == "layout") != (rec.kind == "layout"):
            raise PerfError(
                f"LightGBM model: uses the {fs!r} feature set, record {rec.name!r} is a {rec.kind} graph; "
                f"use a {rec.kind} model"
            )
        return fs

    def features(self, rec: GraphRecord) -> np.ndarray:
        """Row features of every config of ``rec`` in this model's feature set."""
        fs = self._set_for(rec)
        if fs == "layout":
            return layout_row_features(rec)
        if fs == "tile":
            return tile_row_features(rec)
        return np.hstack([tile_row_features(rec), tile_fit_features(rec)])

    kind: str = ""

    def fit(self, train: list[GraphRecord]) -> LightGBMBaseline:
        """Fit ``LGBMRanker`` with relevance = 30 for the fastest config of a graph down to 0 for the slowest."""
        lgb = require("lightgbm", "perf")
        xs, ys, groups = [], [], []
        self.kind = train[0].kind if train else ""
        if train:
            self.feature_set = self._set_for(train[0])
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
        names = lightgbm_feature_names(self.feature_set) if self.feature_set else "auto"
        self.model.fit(np.vstack(xs), np.concatenate(ys), group=groups, feature_name=names)
        return self

    def predict(self, rec: GraphRecord) -> np.ndarray:
        """Cost = minus the ranker's relevance score."""
        booster = getattr(self.model, "booster_", self.model)
        return -np.asarray(booster.predict(self.features(rec)), dtype=np.float64)

    def to_string(self) -> str:
        """The fitted booster as LightGBM's text model format (for a checkpoint; no pickle).

        The feature set travels in it as the booster's feature names (:func:`lightgbm_feature_names`).
        """
        booster = getattr(self.model, "booster_", self.model)
        return str(booster.model_to_string())

    @classmethod
    def from_string(cls, text: str, kind: str) -> LightGBMBaseline:
        """A baseline that predicts with a booster saved by :meth:`to_string`, in the feature set it was fitted on.

        Raises:
            PerfError: The booster's feature columns match no feature set of ``kind``.
        """
        lgb = require("lightgbm", "perf")
        out = cls()
        out.model = lgb.Booster(model_str=text)  # type: ignore[attr-defined]
        out.kind = kind
        out.feature_set = lightgbm_feature_set(out.model.feature_name(), kind)
        return out


# -- MetaSchedule's cost models (tile space) ----------------------------------------------------------------

#: The apache-tvm-ffi releases whose MetaSchedule feature extraction segfaults (research note perf-real §0).
_BAD_TVM_FFI = ("0.1.15",)
#: What to do when TVM fails inside a MetaSchedule baseline (the pair these baselines were run with).
_MS_FIX = (
    "use the tested pair `pip install apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post1`, "
    "or leave the MetaSchedule baselines out (benchmarks/perf/heldout.py --models / --no-mlp)"
)
#: Columns of ``PerStoreFeature()`` (XGBModel's extractor); ``extract_workload=True`` (MLPModel's) appends 8.
_MS_STORE_COLS = 164
#: Bumped when the cached feature layout changes (part of every cache file's fingerprint).
_MS_FEATURE_FORMAT = 1
_MS_FEATURES: dict[tuple[str, str], MetaScheduleFeatures] = {}


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


@dataclasses.dataclass(frozen=True)
class MetaScheduleFeatures:
    """MetaSchedule's input for every config of one tile record.

    Attributes:
        group: Structural hash of the kernel's IRModule (MetaSchedule's workload group, one per kernel).
        features: Per config, ``PerStoreFeature(extract_workload=True)`` rows ``[n_stores, 172]`` (float32); the
            first 164 columns are ``PerStoreFeature()``'s, which ``XGBModel`` uses.
    """

    group: str
    features: list[np.ndarray]


def _fingerprint(rec: GraphRecord) -> str:
    """What the features of ``rec`` depend on: TVM's version, the kernel, the configs and the default config."""
    import hashlib
    import json

    import tvm

    h = hashlib.sha1(json.dumps(rec.measure_meta.get("kernel"), sort_keys=True).encode())
    h.update(np.ascontiguousarray(rec.config_matrix(), dtype=np.float64).tobytes())
    h.update(str(int(rec.measure_meta.get("reference_config", 0))).encode())
    return f"tvm {tvm.__version__}; format {_MS_FEATURE_FORMAT}; {h.hexdigest()}"


@contextlib.contextmanager
def _without_tensor_intrinsics() -> Iterator[None]:
    """Build a ``TuneContext`` without importing ``tvm.s_tir.tensor_intrin``.

    ``TuneContext.__init__`` imports that module, which registers the tensor intrinsics of every target (CUDA,
    ARM, Hexagon, ...): 30 CPU-s, 2 min or more of wall time on a loaded machine, for each process. Per-store
    features of these plain tiled schedules never use a tensor intrinsic (checked: identical features and group
    hash with and without it), so an empty module stands in while the context is built. Nothing is replaced when
    the real module is already imported.
    """
    import sys
    import types

    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        yield
        return
    sys.modules[name] = types.ModuleType(name)
    try:
        yield
    finally:
        sys.modules.pop(name, None)


def _extract_features(rec: GraphRecord) -> MetaScheduleFeatures:
    """Rebuild every config's TVM schedule and run MetaSchedule's per-store feature extractor on it."""
    from opgraph.perf.tile import _te_func, require_tvm, schedule

    tvm = require_tvm()
    _check_tvm_ffi()
    ms = tvm.s_tir.meta_schedule
    spec = _kernel_of(rec)
    func, _ = _te_func(spec)
    with _without_tensor_intrinsics():
        ctx = ms.TuneContext(
            mod=tvm.IRModule({"main": func}), target=tvm.target.Target({"kind": "llvm", "num-cores": 1}), num_threads=1
        )
    args = ms.arg_info.ArgInfo.from_prim_func(func)
    ref = int(rec.measure_meta.get("reference_config", 0))
    cf = rec.config_matrix()
    cands = []
    for i in range(rec.n_configs):  # config ``ref`` is the default schedule; the others' tiles are columns 0-2
        tile = None if i == ref else (int(cf[i, 0]), int(cf[i, 1]), int(cf[i, 2]))
        cands.append(ms.MeasureCandidate(tvm.s_tir.Schedule(schedule(spec, tile)), args))
    extractor = ms.feature_extractor.PerStoreFeature(extract_workload=True)
    feats = [np.asarray(x.numpy(), dtype=np.float32) for x in extractor.extract_from(ctx, cands)]
    return MetaScheduleFeatures(str(ms.utils.shash2hex(ctx.mod)), feats)


def _cache_file(cache_dir: Path, rec: GraphRecord) -> Path:
    return cache_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", rec.name) + ".npz")


def _load_cached(path: Path, fingerprint: str) -> MetaScheduleFeatures | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return None
            rows, sizes = z["rows"], z["sizes"]
            group = str(z["group"])
    except (OSError, KeyError, ValueError) as exc:
        log.warning("MetaSchedule feature cache %s unreadable (%s): extracting again", path, exc)
        return None
    return MetaScheduleFeatures(group, list(np.split(rows, np.cumsum(sizes)[:-1])))


def _save_cached(path: Path, fingerprint: str, f: MetaScheduleFeatures) -> None:
    from opgraph._base.fileio import atomic_open

    sizes = np.array([len(x) for x in f.features], dtype=np.int64)
    rows = np.concatenate(f.features) if f.features else np.zeros((0, _MS_STORE_COLS + 8), np.float32)
    with atomic_open(path, "wb") as fh:
        np.savez(fh, rows=rows, sizes=sizes, group=np.array(f.group), fingerprint=np.array(fingerprint))


def metaschedule_features(rec: GraphRecord, cache_dir: str | Path | None = None) -> MetaScheduleFeatures:
    """MetaSchedule's per-store features of every config of a tile record, cached.

    The features of a kernel's configs do not depend on what a model is trained on, so they are computed once per
    process (memory cache) and, with ``cache_dir``, once per dataset: ``cache_dir/<record name>.npz`` holds them
    with a fingerprint (TVM version, kernel, configs); a stale or unreadable file is recomputed and replaced.

    Args:
        rec: A tile record of :func:`opgraph.perf.tile.collect_tile` (``measure_meta["kernel"]`` and tile columns).
        cache_dir: Folder for the per-record feature files, or None for the memory cache only.

    Returns:
        The record's :class:`MetaScheduleFeatures`.
    """
    from opgraph.perf.tile import require_tvm

    require_tvm()
    fp = _fingerprint(rec)
    key = (rec.name, fp)
    if key in _MS_FEATURES:
        return _MS_FEATURES[key]
    path = _cache_file(Path(cache_dir), rec) if cache_dir is not None else None
    f = _load_cached(path, fp) if path is not None and path.exists() else None
    if f is None:
        f = _extract_features(rec)
        if path is not None:
            _save_cached(path, fp, f)
    _MS_FEATURES[key] = f
    return f


def _run_secs(rec: GraphRecord) -> np.ndarray:
    """Measured runtime per config in seconds, float32 as MetaSchedule keeps its costs."""
    return (np.asarray(rec.config_runtime, dtype=np.float64) / 1e9).astype(np.float32)


@contextlib.contextmanager
def _mlp_fixes() -> Iterator[None]:
    """Two TVM 0.27 MLP-trainer bugs, patched while it runs.

    * ``StepLR(..., verbose=True)``: torch 2.x removed that keyword; it is dropped.
    * ``SegmentSumMLP.forward`` ends in ``.squeeze()``, which turns the prediction of a batch of one candidate
      into a 0-d tensor; ``lambda_rank_loss`` then fails with ``IndexError: too many indices`` (a training set of
      ``128 k + 1`` candidates has such a last batch). The prediction is kept 1-d.
    """
    import torch
    from tvm.s_tir.meta_schedule.cost_model import mlp_model

    orig_lr = torch.optim.lr_scheduler.StepLR
    orig_fwd = mlp_model.SegmentSumMLP.forward

    def step_lr(*a: Any, verbose: Any = None, **kw: Any) -> Any:
        return orig_lr(*a, **kw)

    def forward(self: Any, segment_sizes: Any, features: Any) -> Any:
        return orig_fwd(self, segment_sizes, features).reshape(-1)

    torch.optim.lr_scheduler.StepLR = step_lr  # type: ignore[misc, assignment]
    mlp_model.SegmentSumMLP.forward = forward  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.optim.lr_scheduler.StepLR = orig_lr  # type: ignore[misc]
        mlp_model.SegmentSumMLP.forward = orig_fwd  # type: ignore[method-assign]


class PackSumXGB:
    """MetaSchedule's XGBoost cost model: one tree ensemble scores each store of a candidate; the sum is its score.

    The objective is MetaSchedule's ``XGBModel`` one (``PackSum``): squared error between the per-candidate sum of
    the per-store predictions and the group-normalised throughput ``group min cost / cost``, each row weighted by
    that target, with TVM's default ``XGBConfig`` and its early stopping (50 rounds without a better training
    pack-sum RMSE, at most 10000). It is trained with xgboost's public API rather than ``XGBModel._train``; the
    result equals ``XGBModel.update``/``predict`` on the same data (``tests/perf/test_metaschedule_xgb.py``).

    Attributes:
        booster: The fitted ``xgboost.Booster``.
        n_rounds: Boosting rounds trained.
    """

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self.n_rounds = int(booster.num_boosted_rounds())

    @staticmethod
    def _pack(feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        rows = [np.ascontiguousarray(f[:, :_MS_STORE_COLS], dtype=np.float32) for f in feats]
        ids = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
        return np.concatenate(rows, axis=0), ids

    @classmethod
    def fit(
        cls,
        groups: list[tuple[str, list[np.ndarray], np.ndarray]],
        seed: int = 0,
        *,
        early_stopping_rounds: int = 50,
        max_rounds: int = 10000,
    ) -> PackSumXGB:
        """Train on workload groups ``(group hash, per-candidate store features, run seconds)``.

        Candidates without stores are dropped and groups with the same hash are merged, as ``XGBModel.update``
        does; a group's target is ``min cost / cost`` (0 where the cost is 0).
        """
        from collections import OrderedDict

        xgb = require("xgboost", "perf")
        from tvm.s_tir.meta_schedule.cost_model.xgb_model import XGBConfig

        merged: OrderedDict[str, tuple[list[np.ndarray], list[np.ndarray]]] = OrderedDict()
        for group, feats, secs in groups:
            keep = [i for i, f in enumerate(feats) if len(f)]
            fs, cs = merged.setdefault(group, ([], []))
            fs += [feats[i] for i in keep]
            cs.append(np.asarray(secs, dtype=np.float32)[keep])
        xs: list[np.ndarray] = []
        ys = []
        for fs, cs in merged.values():
            if not fs:
                continue
            costs = np.concatenate(cs)
            with np.errstate(divide="ignore", invalid="ignore"):
                ys.append(np.divide(costs.min(), costs, out=np.zeros_like(costs), where=costs != 0))
            xs += fs
        if not xs:
            from opgraph.perf.errors import PerfError

            raise PerfError("MetaSchedule XGBoost: no candidate with store features to train on")
        x, ids = cls._pack(xs)
        y = np.concatenate(ys)[ids]
        dtrain = xgb.DMatrix(data=x, label=y)  # type: ignore[attr-defined]
        dtrain.set_weight(y)
        label = dtrain.get_label()
        n = len(xs)

        def packed(pred: np.ndarray) -> np.ndarray:
            return np.bincount(ids, weights=pred, minlength=n)[ids]

        def obj(pred: np.ndarray, _d: Any) -> tuple[np.ndarray, np.ndarray]:
            grad = packed(pred) - label
            return grad * label, np.ones_like(grad) * label

        def p_rmse(pred: np.ndarray, _d: Any) -> tuple[str, float]:
            return "p-rmse", float(np.sqrt(np.square(packed(pred) - label).mean()))

        class _EarlyStop(xgb.callback.TrainingCallback):  # type: ignore[name-defined, misc]
            """Stop after ``early_stopping_rounds`` rounds without a lower training p-rmse (as TVM's callback)."""

            best_score = float("inf")
            best_iteration = 0

            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                text = model.eval_set([(dtrain, "tr")], iteration=epoch, feval=p_rmse)
                score = dict(kv.split(":") for kv in text.split()[1:])["tr-p-rmse"]
                if float(score) < self.best_score:
                    self.best_score, self.best_iteration = float(score), epoch
                    return False
                return epoch - self.best_iteration >= early_stopping_rounds

        params = XGBConfig(seed=seed, nthread=1).to_dict()
        booster = xgb.train(params, dtrain, num_boost_round=max_rounds, obj=obj, callbacks=[_EarlyStop()])  # type: ignore[attr-defined]
        return cls(booster)

    def predict(self, feats: list[np.ndarray]) -> np.ndarray:
        """Score (higher = faster) of each candidate: the sum of its stores' predictions; float64[len(feats)]."""
        import xgboost as xgb

        out = np.zeros(len(feats))
        keep = [i for i, f in enumerate(feats) if len(f)]
        if keep:
            x, ids = self._pack([feats[i] for i in keep])
            pred = self.booster.predict(xgb.DMatrix(data=x))
            out[keep] = np.bincount(ids, weights=pred, minlength=len(keep))
        return out

    def to_bytes(self) -> bytes:
        """The booster in XGBoost's UBJSON model format (no pickle)."""
        return bytes(self.booster.save_raw(raw_format="ubj"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> PackSumXGB:
        """A model from :meth:`to_bytes` output."""
        xgb = require("xgboost", "perf")
        booster = xgb.Booster()  # type: ignore[attr-defined]
        booster.load_model(bytearray(raw))
        return cls(booster)


def fit_metaschedule_xgb(groups: list[tuple[str, list[np.ndarray], np.ndarray]], seed: int = 0) -> PackSumXGB:
    """Train MetaSchedule's XGBoost cost model on pre-extracted workload groups (see :class:`PackSumXGB`)."""
    return PackSumXGB.fit(groups, seed)


def predict_metaschedule_xgb(m: PackSumXGB, feats: list[np.ndarray]) -> np.ndarray:
    """The XGBoost model's score (higher = faster) of one kernel's configs from their features."""
    return m.predict(feats)


def fit_metaschedule_mlp(
    groups: list[tuple[str, list[np.ndarray], np.ndarray]], seed: int = 0, epochs: int = 50
) -> Any:
    """Train MetaSchedule's ``MLPModel`` (``train_full``: 20% of the groups held out to pick the epoch).

    Raises:
        PerfError: Fewer than 5 workload groups (TVM's split then leaves no validation group).
    """
    import random

    import torch
    from tvm.s_tir.meta_schedule.cost_model import mlp_model

    from opgraph.perf.errors import PerfError

    if len({g for g, _, _ in groups}) < 5:
        raise PerfError(
            f"MetaSchedule MLP: needs >= 5 training kernels (TVM holds 20% of them out), got {len(groups)}; "
            "train on more kernels"
        )
    if epochs < 10:
        raise PerfError(f"MetaSchedule MLP: epochs must be >= 10 (TVM's StepLR steps every epochs // 10), got {epochs}")
    random.seed(seed)
    torch.manual_seed(seed)
    m = mlp_model.MLPModel(trainer=mlp_model.SegmentSumMLPTrainer(mlp_model.TrainerConfig(num_epoch_full=epochs)))
    for group, feats, secs in groups:
        m.trainer.state.add_to_group(list(feats), np.asarray(secs, dtype=np.float32), group)
    with _mlp_fixes():
        m.trainer.train_full()
    return m


def predict_metaschedule_mlp(m: Any, feats: list[np.ndarray]) -> np.ndarray:
    """``MLPModel``'s score (higher = faster) of one kernel's configs from their features."""
    with _mlp_fixes():
        return np.asarray(m.trainer.predict_incremental(list(feats)), dtype=np.float64).reshape(-1)


def metaschedule_xgb_unavailable(records: list[GraphRecord]) -> str | None:
    """Why MetaSchedule's XGBoost cannot be trained on ``records`` (one line), or None when it can.

    It needs tile records with the kernel spec that rebuilds each config's TIR (``measure_meta["kernel"]``, which
    :func:`opgraph.perf.tile.collect_tile` has always written; the official TpuGraphs tile data has none), Apache
    TVM with a working ``apache-tvm-ffi``, and ``xgboost``.
    """
    import importlib.util

    from opgraph.perf.errors import MissingDependencyError

    if any(r.kind != "tile" for r in records):
        return "it ranks tile configs only"
    missing = [r.name for r in records if not r.measure_meta.get("kernel")]
    if missing:
        return (
            f"{len(missing)} of {len(records)} graphs (e.g. {missing[0]}) have no measure_meta['kernel'] to rebuild "
            "their TIR from (collect them with `opgraph perf collect --space tile`)"
        )
    if importlib.util.find_spec("tvm") is None:
        return "Apache TVM is not installed (`pip install 'opgraph[tvm]'`)"
    if importlib.util.find_spec("xgboost") is None:
        return "xgboost is not installed (`pip install 'opgraph[perf]'`)"
    try:
        _check_tvm_ffi()
    except MissingDependencyError as exc:
        return str(exc)
    return None


class MetaScheduleBaseline:
    """TVM MetaSchedule's ``XGBModel`` (``model="xgb"``) or ``MLPModel`` (``model="mlp"``) on tile records.

    Every training kernel is one MetaSchedule workload group: its configs' per-store features
    (:func:`metaschedule_features`, cached per process and, with ``cache_dir``, on disk) with their measured
    runtimes; the model trains once on all groups. ``predict`` returns minus the model's score (MetaSchedule
    predicts a normalised throughput, higher = faster). Needs the ``tvm`` extra, ``xgboost`` for ``"xgb"``
    (``pip install 'opgraph[perf]'``) and an ``apache-tvm-ffi`` other than 0.1.15.x. A failure inside TVM is a
    one-line :class:`~opgraph.perf.errors.PerfError` naming the baseline and the fix.

    Args:
        model: ``"xgb"`` or ``"mlp"``.
        seed: Seed of XGBoost / of the MLP's initialisation, batches and validation split.
        cache_dir: Folder of the on-disk feature cache (one npz per record), or None.
        mlp_epochs: Epochs of the MLP's full training (TVM's default 50).
    """

    def __init__(
        self, model: str = "xgb", seed: int = 0, cache_dir: str | Path | None = None, mlp_epochs: int = 50
    ) -> None:
        from opgraph.perf.errors import PerfError

        if model not in ("xgb", "mlp"):
            raise PerfError(f"MetaScheduleBaseline model must be 'xgb' or 'mlp', got {model!r}")
        self.model_kind = model
        self.seed = seed
        self.cache_dir = cache_dir
        self.mlp_epochs = mlp_epochs
        self.name = "MetaSchedule XGBoost" if model == "xgb" else "MetaSchedule MLP"
        self.model: Any = None
        self.selection: dict[str, Any] = {}  # how ``opgraph perf train`` chose it (see model.load_ranker)

    kind = "tile"

    @contextlib.contextmanager
    def _tvm_errors(self, step: str) -> Iterator[None]:
        from opgraph.perf.errors import PerfError

        try:
            yield
        except PerfError:
            raise
        except Exception as exc:  # noqa: BLE001 - anything TVM raises becomes one actionable line
            msg = (str(exc).strip().splitlines() or [""])[-1][:200]
            raise PerfError(f"{self.name} {step}: TVM failed ({type(exc).__name__}: {msg}); {_MS_FIX}") from exc

    def fit(self, train: list[GraphRecord]) -> MetaScheduleBaseline:
        """Train on every config of every training kernel."""
        from opgraph.perf.errors import PerfError
        from opgraph.perf.tile import require_tvm

        if not train or any(r.kind != "tile" for r in train):
            raise PerfError("MetaScheduleBaseline.fit: needs tile records (kernels measured by collect_tile)")
        require_tvm()
        _check_tvm_ffi()
        if self.model_kind == "xgb":
            require("xgboost", "perf")
        with self._tvm_errors("fit"):
            groups = []
            for r in train:
                f = metaschedule_features(r, self.cache_dir)
                groups.append((f.group, f.features, _run_secs(r)))
            if self.model_kind == "xgb":
                self.model = fit_metaschedule_xgb(groups, self.seed)
            else:
                self.model = fit_metaschedule_mlp(groups, self.seed, self.mlp_epochs)
        return self

    def predict(self, rec: GraphRecord) -> np.ndarray:
        """Cost = minus MetaSchedule's predicted score."""
        from opgraph.perf.errors import PerfError

        if self.model is None:
            raise PerfError(f"{self.name}: predict before fit; call fit(train_records) first")
        with self._tvm_errors("predict"):
            feats = metaschedule_features(rec, self.cache_dir).features
            score = (predict_metaschedule_xgb if self.model_kind == "xgb" else predict_metaschedule_mlp)(
                self.model, feats
            )
        return -score.reshape(-1)
