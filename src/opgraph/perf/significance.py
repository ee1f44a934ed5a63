"""Is a held-out difference between two cost models more than noise? Paired bootstrap over graphs and families.

The held-out benchmark (``benchmarks/perf/heldout.py``) scores every model on the same graphs, each graph in one
architecture family, and reports the mean over families of each family's mean over its graphs. For two models
``a`` and ``b`` the paired difference of a metric is taken per graph (``a - b``), averaged within each family and
then over the families: the same statistic as the difference of the two table rows.

Two 95 % percentile-bootstrap intervals of that statistic:

* **graphs within families**: each family's graphs are resampled with replacement (stratified by family; the
  families are fixed): the noise of "which graphs of these families happened to be measured";
* **families**: the families are resampled with replacement, each with its graphs as they are: the noise of "which
  architecture families happened to be in the zoo" (coarse with 5-9 families, and wider).

Neither interval includes the optimism of picking the best of several models after seeing the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def higher_is_better(metric: str) -> bool:
    """True for Kendall tau, OPA and the Kaggle tile score; False for ``slowdown@K`` (lower is better)."""
    return not metric.startswith("slowdown")


@dataclass(frozen=True)
class PairedDifference:
    """A paired difference ``a - b`` of one metric over held-out graphs grouped by family.

    Attributes:
        mean: Mean over families of the per-family mean of ``a - b`` (metric units).
        ci_graphs: 95 % (``level``) bootstrap interval resampling graphs within each family.
        ci_families: The interval resampling whole families.
        wins: Families where ``a`` is better on average (by the metric's direction).
        ties: Families where the two are equal on average (within 1e-12).
        losses: Families where ``b`` is better.
        n_graphs: Graphs with both values finite.
        higher_better: The metric's direction.
    """

    mean: float
    ci_graphs: tuple[float, float]
    ci_families: tuple[float, float]
    wins: int
    ties: int
    losses: int
    n_graphs: int
    higher_better: bool

    @property
    def n_families(self) -> int:
        """Families with at least one paired graph."""
        return self.wins + self.ties + self.losses

    def verdict(self, ci: str = "graphs") -> str:
        """Which model the interval (``ci``: ``"graphs"`` or ``"families"``) favours, if it excludes 0.

        Returns:
            ``"a better"``, ``"b better"`` or ``"not resolved"`` (the interval contains 0).
        """
        lo, hi = self.ci_graphs if ci == "graphs" else self.ci_families
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 <= hi:
            return "not resolved"
        a_better = (lo > 0) == self.higher_better
        return "a better" if a_better else "b better"

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {
            "mean": self.mean,
            "ci_graphs": list(self.ci_graphs),
            "ci_families": list(self.ci_families),
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "n_graphs": self.n_graphs,
            "higher_better": self.higher_better,
        }


def paired_difference(
    a: Mapping[str, Mapping[str, float]],
    b: Mapping[str, Mapping[str, float]],
    *,
    higher_better: bool = True,
    n_boot: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Paired bootstrap of ``a - b`` over graphs nested in families.

    Args:
        a: family -> graph -> metric value of model ``a`` (e.g. Kendall tau per held-out graph).
        b: The same for model ``b``; only graphs both have (with finite values) are paired.
        higher_better: The metric's direction (wins count ``a > b`` when True, ``a < b`` when False).
        n_boot: Bootstrap resamples.
        level: Coverage of the intervals (0.95: the 2.5 % and 97.5 % percentiles).
        seed: Seed of the resampling.

    Returns:
        A :class:`PairedDifference`.

    Raises:
        ValueError: No family has a paired graph, or ``level`` is not in (0, 1).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    diffs: list[np.ndarray] = []
    for fam in sorted(set(a) & set(b)):
        ga, gb = a[fam], b[fam]
        d = [float(ga[g]) - float(gb[g]) for g in sorted(set(ga) & set(gb))]
        d = [v for v in d if math.isfinite(v)]
        if d:
            diffs.append(np.asarray(d, dtype=np.float64))
    if not diffs:
        raise ValueError("paired_difference: no family has a graph scored by both models")
    return _bootstrap(diffs, higher_better=higher_better, n_boot=n_boot, level=level, seed=seed)


def _bootstrap(
    diffs: Sequence[np.ndarray], *, higher_better: bool, n_boot: int, level: float, seed: int
) -> PairedDifference:
    rng = np.random.default_rng(seed)
    fam_means = np.array([d.mean() for d in diffs])
    # graphs within families: each family's mean over a resample of its graphs, then the mean over families
    within = np.zeros(n_boot)
    for d in diffs:
        within += d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    within /= len(diffs)
    # families: a resample of the family means
    across = fam_means[rng.integers(0, fam_means.size, size=(n_boot, fam_means.size))].mean(axis=1)
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    sign = 1.0 if higher_better else -1.0
    eps = 1e-12
    return PairedDifference(
        mean=float(fam_means.mean()),
        ci_graphs=(float(np.percentile(within, q[0])), float(np.percentile(within, q[1]))),
        ci_families=(float(np.percentile(across, q[0])), float(np.percentile(across, q[1]))),
        wins=int(np.sum(sign * fam_means > eps)),
        ties=int(np.sum(np.abs(fam_means) <= eps)),
        losses=int(np.sum(sign * fam_means < -eps)),
        n_graphs=int(sum(d.size for d in diffs)),
        higher_better=higher_better,
    )
