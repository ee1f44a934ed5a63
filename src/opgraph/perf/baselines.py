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
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from opgraph.perf.errors import require
from opgraph.perf.features import COL_GROUPS, COL_SHAPE, COL_WINDOW, conv_flops
from opgraph.perf.tpugraphs import GraphRecord

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
        info = LayoutGraphInfo(rec)
        ch = _choices(rec)
        out = np.zeros(len(ch))
        compute = np.maximum(info.flops / PEAK_FLOPS, (info.in_bytes + info.out_bytes[info.cfg]) / BANDWIDTH_BPS)
        reorder = (info.in_bytes + info.out_bytes[info.cfg]) / BANDWIDTH_BPS
        for c, choice in enumerate(ch):
            _, convert = info.propagate(choice)
            conv_cost = np.sum(convert * 2 * info.in_bytes) / BANDWIDTH_BPS
            # oneDNN reorders NCHW activations to its blocked format and back; NHWC is consumed directly
            nchw_penalty = np.sum((choice == 0) * reorder)
            # depthwise convolutions are memory-bound and vectorise over channels only in NHWC
            dw = np.sum((choice == 0) * info.depthwise * compute)
            out[c] = compute.sum() + conv_cost + nchw_penalty + 0.5 * dw
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

    @staticmethod
    def features(rec: GraphRecord) -> np.ndarray:
        """Row features of every config of ``rec``."""
        return layout_row_features(rec) if rec.kind == "layout" else tile_row_features(rec)

    def fit(self, train: list[GraphRecord]) -> LightGBMBaseline:
        """Fit ``LGBMRanker`` with relevance = 30 for the fastest config of a graph down to 0 for the slowest."""
        lgb = require("lightgbm", "perf")
        xs, ys, groups = [], [], []
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
