"""Ranking metrics of TpuGraphs and its Kaggle competition.

Every function takes ``pred`` (a predicted cost: lower means faster) and ``runtime`` (the measured runtime of the
same configs) for one graph.

* :func:`kendall_tau`: ``scipy.stats.kendalltau`` (tau-b, handles ties), as in ``layout_evaluate.py``.
* :func:`slowdown_at_k`: ``(min runtime among the model's top-k - best runtime) / best runtime`` (layout K = 1, 10,
  100; tile "top-K error", K = 1, 5, 10).
* :func:`ordered_pair_accuracy`: fraction of config pairs with different runtimes that ``pred`` orders correctly.
* :func:`kaggle_tile_score`: ``2 - min(top-5 runtimes) / min(all runtimes)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LAYOUT_KS = (1, 10, 100)
TILE_KS = (1, 5, 10)


def _check(pred: Any, runtime: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    r = np.asarray(runtime, dtype=np.float64).reshape(-1)
    if p.shape != r.shape:
        raise ValueError(f"pred has {p.size} values but runtime has {r.size}")
    if p.size == 0:
        raise ValueError("pred and runtime are empty")
    return p, r


def kendall_tau(pred: Any, runtime: Any) -> float:
    """Kendall's tau-b between predicted cost and runtime (1 = same order); 0 when undefined (constant input)."""
    from scipy.stats import kendalltau

    p, r = _check(pred, runtime)
    if p.size < 2:
        return 0.0
    tau = kendalltau(p, r).statistic
    return 0.0 if not np.isfinite(tau) else float(tau)


def top_k_indices(pred: Any, k: int) -> np.ndarray:
    """Indices of the ``k`` configs with the lowest predicted cost (ties broken by index)."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    return np.argsort(p, kind="stable")[: max(1, min(k, p.size))]


def slowdown_at_k(pred: Any, runtime: Any, k: int) -> float:
    """``(min runtime over the model's top-k - true best) / true best`` (0 = the best config is in the top k)."""
    p, r = _check(pred, runtime)
    best = r.min()
    chosen = r[top_k_indices(p, k)].min()
    return float((chosen - best) / best) if best > 0 else float(chosen - best)


def ordered_pair_accuracy(pred: Any, runtime: Any) -> float:
    """Fraction of pairs (i, j) with ``runtime_i < runtime_j`` for which ``pred_i < pred_j`` (ties in pred: 1/2)."""
    p, r = _check(pred, runtime)
    dr = r[:, None] - r[None, :]
    dp = p[:, None] - p[None, :]
    mask = dr < 0
    total = int(mask.sum())
    if total == 0:
        return 0.5
    good = (dp[mask] < 0).sum() + 0.5 * (dp[mask] == 0).sum()
    return float(good / total)


def kaggle_tile_score(pred: Any, runtime: Any) -> float:
    """Kaggle tile score ``2 - min(runtime of the top-5 predictions) / min(runtime)`` (1 is perfect)."""
    p, r = _check(pred, runtime)
    return float(2.0 - r[top_k_indices(p, 5)].min() / r.min())


def inter_round_tau(rounds: Any) -> float:
    """Mean Kendall tau between every pair of measuring rounds of ``rounds[c, R]``: the ceiling for any model."""
    a = np.asarray(rounds, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 2:
        return float("nan")
    taus = [kendall_tau(a[:, i], a[:, j]) for i in range(a.shape[1]) for j in range(i + 1, a.shape[1])]
    return float(np.mean(taus))


@dataclass(frozen=True)
class GraphScore:
    """Metrics of one model on one graph."""

    graph: str
    kendall_tau: float
    opa: float
    slowdown: dict[int, float]
    kaggle_tile: float
    n_configs: int
    ceiling_tau: float = float("nan")


def score_graph(name: str, pred: Any, runtime: Any, kind: str, *, ceiling_tau: float = float("nan")) -> GraphScore:
    """All metrics for one graph; ``kind`` picks the K values (layout 1/10/100, tile 1/5/10)."""
    ks = LAYOUT_KS if kind == "layout" else TILE_KS
    p, r = _check(pred, runtime)
    return GraphScore(
        graph=name,
        kendall_tau=kendall_tau(p, r),
        opa=ordered_pair_accuracy(p, r),
        slowdown={k: slowdown_at_k(p, r, k) for k in ks},
        kaggle_tile=kaggle_tile_score(p, r),
        n_configs=int(p.size),
        ceiling_tau=ceiling_tau,
    )


@dataclass(frozen=True)
class CollectionScore:
    """Metrics of one model averaged over the graphs of a collection (the paper's per-collection average)."""

    model: str
    kind: str
    graphs: list[GraphScore] = field(default_factory=list)

    def mean(self, attr: str) -> float:
        """Mean of a per-graph metric (``"kendall_tau"``, ``"opa"``, ``"kaggle_tile"``, ``"ceiling_tau"``)."""
        vals = [getattr(g, attr) for g in self.graphs]
        vals = [v for v in vals if np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    def mean_slowdown(self, k: int) -> float:
        """Mean slowdown@k over graphs."""
        return float(np.mean([g.slowdown[k] for g in self.graphs])) if self.graphs else float("nan")

    @property
    def ks(self) -> Sequence[int]:
        """The K values of this collection kind."""
        return LAYOUT_KS if self.kind == "layout" else TILE_KS

    def summary(self) -> dict[str, float]:
        """Flat dict of the collection averages."""
        out = {
            "kendall_tau": self.mean("kendall_tau"),
            "opa": self.mean("opa"),
            "ceiling_tau": self.mean("ceiling_tau"),
        }
        for k in self.ks:
            out[f"slowdown@{k}"] = self.mean_slowdown(k)
        if self.kind == "tile":
            out["kaggle_tile"] = self.mean("kaggle_tile")
        return out

    def __repr__(self) -> str:
        s = self.summary()
        body = ", ".join(f"{k}={v:.3f}" for k, v in s.items())
        return f"CollectionScore({self.model!r}, {self.kind}, {len(self.graphs)} graphs: {body})"
