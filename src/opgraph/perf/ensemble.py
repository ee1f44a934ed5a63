"""Averaged cost-model ensembles: the mean of the members' per-graph standardised costs.

Each member's predicted costs on one graph are standardised over that graph's configurations (mean 0, standard
deviation 1) and the standardised costs are averaged, so members with different units (a GNN score, LightGBM's
log runtime, the analytical model's seconds) weigh the same. This is the ``GNN + LightGBM`` and ``GNN +
analytical`` of the held-out benchmark (``benchmarks/perf/heldout.py``) and the ``gnn+lightgbm`` / ``gnn+analytical``
model types of ``opgraph perf train`` (saved as one checkpoint by :func:`opgraph.perf.model.save_ranker`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: ``--model-type`` of each ensemble and its members' candidate names, in order.
ENSEMBLES = {
    "gnn+lightgbm": ("GNN", "LightGBM"),
    "gnn+analytical": ("GNN", "analytical"),
}


def standardise(cost: Any) -> np.ndarray:
    """Costs of one graph's configs standardised over the graph (mean 0, std 1; a constant vector gives zeros)."""
    c = np.asarray(cost, dtype=np.float64)
    return (c - c.mean()) / max(float(c.std()), 1e-12)


def ensemble_name(members: Sequence[str]) -> str:
    """The candidate name of an ensemble (``"GNN + LightGBM"``)."""
    return " + ".join(members)


class RankAverage:
    """Mean of the per-graph standardised costs of already fitted models (lower = faster, like every ranker).

    Attributes:
        members: The fitted models (each with ``predict(record)``).
        names: Their candidate names (``"GNN"``, ``"LightGBM"``, ``"analytical"``), saved in the checkpoint.
        selection: The validation scores that chose it (``opgraph perf train``), empty otherwise.
    """

    def __init__(self, members: list[Any], names: Sequence[str] | None = None) -> None:
        self.members = list(members)
        self.names = list(names) if names is not None else [type(m).__name__ for m in members]
        self.selection: dict[str, Any] = {}

    @property
    def kind(self) -> str:
        """The space of the first member that knows it (``"layout"`` or ``"tile"``), else ``""``."""
        for m in self.members:
            k = getattr(getattr(m, "config", None), "kind", None) or getattr(m, "kind", None)
            if k:
                return str(k)
        return ""

    def fit(self, train: list[Any]) -> RankAverage:
        """The members are fitted already (by the caller, e.g. a held-out fold); nothing to do."""
        return self

    def predict(self, rec: Any) -> np.ndarray:
        """Mean over the members of their standardised costs of ``rec``'s configs."""
        return np.mean([standardise(m.predict(rec)) for m in self.members], axis=0)

    def __repr__(self) -> str:
        return f"RankAverage({ensemble_name(self.names)})"
