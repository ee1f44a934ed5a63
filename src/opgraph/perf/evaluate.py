"""Evaluate models and baselines side by side on held-out graphs, next to the measured noise ceiling."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph.perf.metrics import CollectionScore, inter_round_tau, score_graph
from opgraph.perf.tpugraphs import GraphRecord


def ceiling_tau(rec: GraphRecord) -> float:
    """The graph's inter-round Kendall tau (from ``config_runtime_rounds``, else ``measure_meta``), or NaN."""
    if rec.config_runtime_rounds is not None and np.asarray(rec.config_runtime_rounds).shape[1] >= 2:
        return inter_round_tau(rec.config_runtime_rounds)
    v = rec.measure_meta.get("tau_between_rounds")
    return float(v) if v is not None else float("nan")


def evaluate_model(name: str, model: Any, records: Sequence[GraphRecord]) -> CollectionScore:
    """Score ``model.predict`` on every record (all of one kind)."""
    if not records:
        raise ValueError("evaluate_model: no records")
    kind = records[0].kind
    graphs = [
        score_graph(r.name, model.predict(r), r.target_runtime(), kind, ceiling_tau=ceiling_tau(r)) for r in records
    ]
    return CollectionScore(name, kind, graphs)


@dataclass
class Comparison:
    """Scores of several models on the same held-out graphs.

    Attributes:
        kind: ``"layout"`` or ``"tile"``.
        scores: model name -> collection score.
        fit_s: model name -> training time in seconds.
    """

    kind: str
    scores: dict[str, CollectionScore] = field(default_factory=dict)
    fit_s: dict[str, float] = field(default_factory=dict)

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Columns and rows (one per model, plus the noise ceiling) for a report table."""
        ks = next(iter(self.scores.values())).ks if self.scores else ()
        cols = ["model", "Kendall tau", "OPA"] + [f"slowdown@{k}" for k in ks]
        if self.kind == "tile":
            cols.append("Kaggle tile score")
        cols.append("fit s")
        rows: list[list[Any]] = []
        for name, sc in self.scores.items():
            s = sc.summary()
            row = [name, round(s["kendall_tau"], 3), round(s["opa"], 3)]
            row += [round(s[f"slowdown@{k}"], 4) for k in ks]
            if self.kind == "tile":
                row.append(round(s["kaggle_tile"], 4))
            row.append(round(self.fit_s.get(name, 0.0), 1))
            rows.append(row)
        if self.scores:
            ceil = next(iter(self.scores.values())).mean("ceiling_tau")
            if not math.isnan(ceil):
                rows.append(
                    ["noise ceiling (tau between rounds)", round(ceil, 3), "", *[""] * len(ks)]
                    + [""] * (len(cols) - 3 - len(ks))
                )
        return cols, rows

    def to_markdown(self) -> str:
        """The table as GitHub markdown."""
        cols, rows = self.table()
        out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        import html

        cols, rows = self.table()
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
        return f"<table><caption>{self.kind}</caption><tr>{head}</tr>{body}</table>"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (per model: collection averages and per-graph tau)."""
        return {
            name: {
                "summary": sc.summary(),
                "fit_s": self.fit_s.get(name, 0.0),
                "per_graph_tau": {g.graph: g.kendall_tau for g in sc.graphs},
                "per_graph_ceiling": {g.graph: g.ceiling_tau for g in sc.graphs},
            }
            for name, sc in self.scores.items()
        }

    def __repr__(self) -> str:
        return f"Comparison({self.kind})\n" + self.to_markdown()


def compare(
    models: dict[str, Any],
    train: Sequence[GraphRecord],
    test: Sequence[GraphRecord],
    *,
    fit: bool = True,
) -> Comparison:
    """Fit each model on ``train`` (unless ``fit`` is False) and score it on ``test``.

    Args:
        models: name -> object with ``fit(records)`` and ``predict(record)``.
        train: Training graphs.
        test: Held-out graphs (whole graphs never seen in training).
        fit: Call ``fit`` first.

    Returns:
        A :class:`Comparison`.
    """
    kind = test[0].kind
    comp = Comparison(kind)
    for name, m in models.items():
        t0 = time.perf_counter()
        if fit:
            m.fit(list(train))
        comp.fit_s[name] = time.perf_counter() - t0
        comp.scores[name] = evaluate_model(name, m, test)
    return comp
