"""Evaluate models and baselines side by side on held-out graphs, next to the measured noise ceiling.

* :func:`compare`: fit every model on some graphs, score it on others.
* :func:`family_of` / :func:`leave_one_family_out` / :func:`compare_families`: hold out whole architecture
  families (train on the others, test on one never seen; every family held out once).
* :func:`choose_model`: pick the better of several fitted models on validation graphs (``opgraph perf train``).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.perf.metrics import CollectionScore, inter_round_tau, score_graph
from opgraph.perf.tpugraphs import GraphRecord

log = logging.getLogger(__name__)


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


def per_graph_metrics(score: CollectionScore) -> dict[str, dict[str, float]]:
    """Every metric of every graph, as the held-out significance table pairs them (:mod:`opgraph.perf.significance`).

    Returns:
        metric (``"kendall_tau"``, ``"opa"``, ``"slowdown@K"``, tile also ``"kaggle_tile"``) -> graph name -> value.
    """
    out: dict[str, dict[str, float]] = {
        "kendall_tau": {g.graph: g.kendall_tau for g in score.graphs},
        "opa": {g.graph: g.opa for g in score.graphs},
    }
    for k in score.ks:
        out[f"slowdown@{k}"] = {g.graph: g.slowdown[k] for g in score.graphs}
    if score.kind == "tile":
        out["kaggle_tile"] = {g.graph: g.kaggle_tile for g in score.graphs}
    return out


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
        """JSON-able summary (per model: collection averages, per-graph tau and every per-graph metric)."""
        return {
            name: {
                "summary": sc.summary(),
                "fit_s": self.fit_s.get(name, 0.0),
                "per_graph_tau": {g.graph: g.kendall_tau for g in sc.graphs},
                "per_graph_ceiling": {g.graph: g.ceiling_tau for g in sc.graphs},
                "per_graph": per_graph_metrics(sc),
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


_HF_NAME = re.compile(r"^hf_([a-z0-9]+)_")


def family_of(rec: GraphRecord, families: Mapping[str, str] | None = None) -> str:
    """The architecture family of a graph.

    Looked up in this order: ``families[rec.name]``; ``measure_meta["family"]``; ``measure_meta["zoo"]["family"]``
    (layout graphs of :func:`~opgraph.perf.collect.collect_layout`); the ``hf_<family>_`` prefix of real-zoo names;
    else the name up to its first ``_`` (seeded zoo graphs ``resnet_s3``).

    Args:
        rec: The graph.
        families: Optional graph name -> family map (e.g. the ``families.json`` of a dataset).

    Returns:
        The family name.
    """
    if families and rec.name in families:
        return str(families[rec.name])
    meta = rec.measure_meta or {}
    if meta.get("family"):
        return str(meta["family"])
    zoo = meta.get("zoo")
    if isinstance(zoo, dict) and zoo.get("family"):
        return str(zoo["family"])
    m = _HF_NAME.match(rec.name)
    if m:
        return m.group(1)
    return rec.name.split("_", 1)[0]


def leave_one_family_out(
    records: Sequence[GraphRecord],
    families: Mapping[str, str] | None = None,
    *,
    min_train: int = 1,
) -> Iterator[tuple[str, list[GraphRecord], list[GraphRecord]]]:
    """Yield ``(family, train, test)`` once per family: test = that family's graphs, train = all other graphs.

    Families are visited in sorted order; every graph is in exactly one test split.

    Args:
        records: Graphs of one kind.
        families: Optional graph name -> family map (see :func:`family_of`).
        min_train: Skip a family whose complement has fewer training graphs than this.

    Raises:
        ValueError: Fewer than two families (nothing to hold out against).
    """
    fam = [family_of(r, families) for r in records]
    names = sorted(set(fam))
    if len(names) < 2:
        raise ValueError(f"leave_one_family_out needs graphs of at least two families, got {names}")
    for f in names:
        test = [r for r, g in zip(records, fam) if g == f]
        train = [r for r, g in zip(records, fam) if g != f]
        if len(train) >= min_train:
            yield f, train, test


def compare_families(
    models: Mapping[str, Any],
    records: Sequence[GraphRecord],
    families: Mapping[str, str] | None = None,
    *,
    progress: bool = False,
) -> dict[str, Comparison]:
    """Leave-one-family-out :func:`compare`: family -> comparison of every model trained without that family.

    Args:
        models: name -> a factory ``() -> model`` with ``fit``/``predict`` (a fresh model per fold, e.g. a class).
        records: Graphs of one kind.
        families: Optional graph name -> family map.
        progress: Show a tqdm bar over families.
    """
    from tqdm.auto import tqdm

    out: dict[str, Comparison] = {}
    folds = list(leave_one_family_out(records, families))
    for fam, train, test in tqdm(folds, disable=not progress, desc="families"):
        fold = {name: factory() for name, factory in models.items()}
        out[fam] = compare(fold, train, test)
    return out


#: ``--select-by`` rules of :func:`choose_model` / ``opgraph perf train``.
SELECT_BY = ("rank", "tau", "slowdown")
#: The rule ``perf train`` uses unless told otherwise (chosen by the replay in docs/perf.md, "Which model").
DEFAULT_SELECT_BY = "rank"


def selection_metrics(kind: str) -> tuple[str, str, str]:
    """The validation metrics the ``rank`` rule averages: tau, slowdown@1, slowdown@5 (tile) / @10 (layout)."""
    return ("kendall_tau", "slowdown@1", "slowdown@5" if kind == "tile" else "slowdown@10")


def _as_summary(sc: Any) -> dict[str, float]:
    return dict(sc.summary()) if hasattr(sc, "summary") else {k: float(v) for k, v in dict(sc).items()}


def selection_table(scores: Mapping[str, Any], kind: str) -> dict[str, dict[str, float]]:
    """Every candidate's validation metrics, its rank on each of :func:`selection_metrics` and their mean.

    Args:
        scores: candidate name -> :class:`CollectionScore` (or its ``summary()`` dict) on the same validation graphs.
        kind: ``"layout"`` or ``"tile"``.

    Returns:
        name -> ``{"kendall_tau", "opa", "slowdown@K"..., "rank kendall_tau", "rank slowdown@1", "rank slowdown@K",
        "mean rank"}``; ranks start at 1 (best), equal values share their mean rank, a NaN ranks last.
    """
    from scipy.stats import rankdata

    summ = {n: _as_summary(sc) for n, sc in scores.items()}
    names = list(summ)
    table: dict[str, dict[str, float]] = {n: {k: float(v) for k, v in summ[n].items()} for n in names}
    metrics = selection_metrics(kind)
    for m in metrics:
        vals = np.array([summ[n].get(m, math.nan) for n in names], dtype=np.float64)
        key = -vals if m == "kendall_tau" else vals  # rank 1 = the best
        key = np.where(np.isnan(key), np.inf, key)
        for n, r in zip(names, rankdata(key, method="average")):
            table[n][f"rank {m}"] = float(r)
    for n in names:
        table[n]["mean rank"] = float(np.mean([table[n][f"rank {m}"] for m in metrics]))
    return table


def choose_model(
    scores: Mapping[str, Any],
    *,
    slowdown_k: int | None = None,
    select_by: str = "tau",
    kind: str | None = None,
) -> str:
    """The best model on validation scores, by one of three documented rules.

    * ``"tau"``: highest mean Kendall tau; ties (within 1e-9) broken by lower slowdown@K.
    * ``"slowdown"``: lowest slowdown@K; ties by lower slowdown@1, then higher tau.
    * ``"rank"``: each candidate is ranked on tau, slowdown@1 and slowdown@K (:func:`selection_table`); the lowest
      mean rank wins, ties broken by higher tau, then lower slowdown@K. A model that wins tau but is worst at the
      top of the ranking does not win this way.

    Args:
        scores: model name -> :class:`CollectionScore` (or its ``summary()`` dict) on the same validation graphs.
        slowdown_k: The K of slowdown@K (default: 10 layout / 5 tile).
        select_by: ``"tau"``, ``"slowdown"`` or ``"rank"``.
        kind: ``"layout"`` or ``"tile"`` (default: the first score's ``kind``; needed for summary dicts).

    Returns:
        The winning name (the first one listed among exact ties).
    """
    if not scores:
        raise ValueError("choose_model: no scores")
    if select_by not in SELECT_BY:
        raise ValueError(f"select_by must be one of {', '.join(SELECT_BY)}; got {select_by!r}")
    first = next(iter(scores.values()))
    kind = kind or getattr(first, "kind", None) or "tile"
    k = slowdown_k if slowdown_k is not None else (5 if kind == "tile" else 10)
    summ = {n: _as_summary(sc) for n, sc in scores.items()}

    def num(v: float, worst: float) -> float:
        return worst if math.isnan(v) else round(v, 9)

    def tau(n: str) -> float:
        return -num(summ[n]["kendall_tau"], -math.inf)  # negated: lower is better everywhere below

    def slow(n: str, kk: int) -> float:
        return num(summ[n].get(f"slowdown@{kk}", math.nan), math.inf)

    order = {n: i for i, n in enumerate(summ)}
    if select_by == "tau":
        return min(summ, key=lambda n: (tau(n), slow(n, k), order[n]))
    if select_by == "slowdown":
        return min(summ, key=lambda n: (slow(n, k), slow(n, 1), tau(n), order[n]))
    table = selection_table(summ, kind)
    return min(summ, key=lambda n: (round(table[n]["mean rank"], 9), tau(n), slow(n, k), order[n]))


def selection_reason(select_by: str, kind: str) -> str:
    """One line naming the rule (saved in the checkpoint's ``selection["rule"]``)."""
    k = 5 if kind == "tile" else 10
    return {
        "tau": f"highest validation Kendall tau (ties: lower slowdown@{k})",
        "slowdown": f"lowest validation slowdown@{k} (ties: slowdown@1, then tau)",
        "rank": f"lowest mean rank over validation tau, slowdown@1 and slowdown@{k} (ties: higher tau)",
    }[select_by]


#: ``--model-type`` values of ``opgraph perf train`` and the candidate names they train.
MODEL_TYPES = {
    "gnn": ("GNN",),
    "lightgbm": ("LightGBM",),
    "lightgbm-fit": ("LightGBM + tile-fit",),
    "metaschedule-xgb": ("MetaSchedule XGBoost",),
    "gnn+lightgbm": ("GNN + LightGBM",),
    "gnn+analytical": ("GNN + analytical",),
}


def train_and_choose(
    config: Any,
    train: Sequence[GraphRecord],
    valid: Sequence[GraphRecord],
    *,
    model_type: str = "auto",
    seed: int = 0,
    progress: bool = False,
    ms_cache: str | Path | None = None,
    select_by: str = DEFAULT_SELECT_BY,
) -> tuple[str, Any, dict[str, Any]]:
    """Train the candidates and keep the best one on the validation graphs (``opgraph perf train``).

    ``auto`` trains the GNN and LightGBM and, on tile graphs, MetaSchedule's XGBoost (when TVM and xgboost are
    installed and the graphs carry their kernel specs; otherwise it is skipped and ``selection["skipped"]`` says
    why), and scores beside them the averaged ensembles ``GNN + LightGBM`` and (layout) ``GNN + analytical``
    (:class:`~opgraph.perf.ensemble.RankAverage` of the same fitted members: no extra training); the winner on
    the validation graphs is picked by ``select_by`` (:func:`choose_model`; default: the lowest mean rank over tau,
    slowdown@1 and slowdown@5 / @10).

    Args:
        config: The GNN's :class:`~opgraph.perf.model.ModelConfig`.
        train: Training graphs.
        valid: Validation graphs (whole graphs); with ``model_type="auto"`` and none, the GNN is kept unscored.
        model_type: ``"auto"``, ``"gnn"``, ``"lightgbm"``, ``"lightgbm-fit"`` (tile: LightGBM with the tile-fit
            columns, ``LightGBMBaseline(features="tile+fit")``; not an ``auto`` candidate: as ``tune_tile``'s prior
            it lost in the replay, docs/perf.md), ``"metaschedule-xgb"``, ``"gnn+lightgbm"`` or
            ``"gnn+analytical"`` (layout).
        seed: Seed of LightGBM and XGBoost.
        progress: Show the GNN's epoch bar.
        ms_cache: Folder of MetaSchedule's per-kernel feature cache (:func:`~opgraph.perf.baselines.
            metaschedule_features`), or None for a memory cache only.
        select_by: ``"rank"``, ``"tau"`` or ``"slowdown"``: the rule of :func:`choose_model`.

    Returns:
        ``(chosen name, fitted model, selection)``; the name is ``"GNN"``, ``"LightGBM"``, ``"LightGBM +
        tile-fit"``, ``"MetaSchedule XGBoost"``, ``"GNN + LightGBM"`` or ``"GNN + analytical"`` (save any of them with
        :func:`~opgraph.perf.model.save_ranker`); ``selection`` (saved in the checkpoint) holds ``model_type``,
        ``chosen``, ``reason``, ``select_by`` and its ``rule``, the validation graph names, each candidate's
        validation summary (``valid_scores``), the selection ``table`` (:func:`selection_table`: every candidate's
        metrics, ranks and mean rank) and ``skipped`` (candidate -> why it was not trained).
    """
    from opgraph.perf.baselines import (
        AnalyticalBaseline,
        LightGBMBaseline,
        MetaScheduleBaseline,
        metaschedule_xgb_unavailable,
    )
    from opgraph.perf.ensemble import ENSEMBLES, RankAverage, ensemble_name
    from opgraph.perf.errors import PerfError
    from opgraph.perf.model import CostModel

    if select_by not in SELECT_BY:
        raise PerfError(f"--select-by must be one of {', '.join(SELECT_BY)}; got {select_by!r}")
    if model_type != "auto" and model_type not in MODEL_TYPES:
        raise PerfError(f"--model-type must be auto, {', '.join(MODEL_TYPES)}; got {model_type!r}")
    skipped: dict[str, str] = {}
    kind = train[0].kind if train else ""
    if model_type == "auto":
        names: tuple[str, ...] = ("GNN", "LightGBM")
        if kind == "tile":
            why = metaschedule_xgb_unavailable(list(train) + list(valid))
            if why is None:
                names += ("MetaSchedule XGBoost",)
            else:
                skipped["MetaSchedule XGBoost"] = why
                log.warning("MetaSchedule XGBoost skipped: %s", why)
        # the averaged ensembles that won on held-out families (docs/perf.md); members are trained once
        names += ("GNN + LightGBM",) + (("GNN + analytical",) if kind == "layout" else ())
    else:
        names = MODEL_TYPES[model_type]
        if model_type == "lightgbm-fit" and train and train[0].kind != "tile":
            raise PerfError(
                f"--model-type lightgbm-fit: tile collections only, got {train[0].kind} graphs; use lightgbm"
            )
        if model_type == "gnn+analytical" and kind == "tile":
            raise PerfError(
                "--model-type gnn+analytical: layout collections only (on tile graphs it lost to GNN + LightGBM "
                "on held-out families, docs/perf.md); use gnn+lightgbm"
            )
        if model_type == "metaschedule-xgb":
            why = metaschedule_xgb_unavailable(list(train) + list(valid))
            if why is not None:
                raise PerfError(f"--model-type metaschedule-xgb: cannot train it: {why}")
    fitted: dict[str, Any] = {}
    ensembles = {ensemble_name(ms): ms for ms in ENSEMBLES.values()}
    to_fit = [m for n in names for m in ensembles.get(n, (n,))]
    for name in dict.fromkeys(to_fit):
        if name == "GNN":
            fitted[name] = CostModel(config).fit(list(train), list(valid) or None, progress=progress)
        elif name == "LightGBM":
            fitted[name] = LightGBMBaseline(seed=seed).fit(list(train))
        elif name == "LightGBM + tile-fit":
            fitted[name] = LightGBMBaseline(seed=seed, features="tile+fit").fit(list(train))
        elif name == "analytical":
            fitted[name] = AnalyticalBaseline().fit(list(train))
        else:
            fitted[name] = MetaScheduleBaseline("xgb", seed=seed, cache_dir=ms_cache).fit(list(train))
    for name in names:
        if name in ensembles:
            fitted[name] = RankAverage([fitted[m] for m in ensembles[name]], ensembles[name])
    fitted = {n: fitted[n] for n in names}  # the candidates only (an ensemble-only member is not one)
    scores = {n: evaluate_model(n, m, valid) for n, m in fitted.items()} if valid else {}
    if len(fitted) == 1:
        chosen, reason = names[0], f"--model-type {model_type}"
    elif not scores:
        chosen, reason = "GNN", "no validation graphs, so nothing to compare: the GNN is kept"
    else:
        chosen = choose_model(scores, select_by=select_by, kind=kind)
        t = selection_table(scores, kind)
        reason = f"{selection_reason(select_by, kind)}: " + ", ".join(
            f"{n} tau {v['kendall_tau']:.3f} / mean rank {v['mean rank']:.2f}" for n, v in t.items()
        )
    selection: dict[str, Any] = {
        "model_type": model_type,
        "chosen": chosen,
        "reason": reason,
        "select_by": select_by,
        "rule": selection_reason(select_by, kind or "tile"),
        "valid_graphs": [r.name for r in valid],
        "valid_scores": {n: sc.summary() for n, sc in scores.items()},
        "table": selection_table(scores, kind) if scores else {},
        "skipped": skipped,
    }
    model = fitted[chosen]
    model.selection = selection
    return chosen, model, selection
