"""``opgraph demo`` section of :mod:`opgraph.perf`: a tiny layout dataset, the GNN against the baselines."""

from __future__ import annotations

import logging
import os
import pathlib
import time
from typing import Any

import numpy as np

from opgraph.perf.tpugraphs import FEATURE_VERSION

log = logging.getLogger(__name__)


def cache_dir() -> pathlib.Path:
    """Cache of generated demo data: ``$OPGRAPH_CACHE_DIR/perf`` or ``~/.cache/opgraph/perf``."""
    root = os.environ.get("OPGRAPH_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "opgraph")
    return pathlib.Path(root) / "perf"


def demo_dataset(*, quick: bool = True, directory: pathlib.Path | None = None) -> pathlib.Path:
    """Measure (once) a small layout dataset of zoo models on this machine and return its directory.

    Args:
        quick: 12 graphs x 16 configs (about 15 s); otherwise 24 graphs x 40 configs.
        directory: Where to cache it (default :func:`cache_dir`).

    Returns:
        Directory of npz files; files already there are reused.
    """
    from opgraph.perf import zoo
    from opgraph.perf.collect import collect_layout
    from opgraph.perf.measure import MeasureSettings

    n, c = (12, 16) if quick else (24, 40)
    d = (directory or cache_dir()) / f"demo-layout-f{FEATURE_VERSION}-z{zoo.ZOO_VERSION}-{n}x{c}"
    collect_layout(
        zoo.generate(n, 2026, scale=0.75),
        d,
        n_configs=c,
        settings=MeasureSettings(rounds=2, reps=2, warmup=1),
        seed=2026,
        progress=False,
    )
    return d


def report_section(work_dir: pathlib.Path, *, quick: bool = True) -> Any:
    """Run the perf demo and return its report section.

    Builds (or reuses) a tiny layout dataset measured here, holds out whole graphs, trains the GNN cost model,
    scores it next to the analytical, LightGBM, default-config and random baselines and the noise ceiling, and
    draws the figures.

    Args:
        work_dir: Directory for the demo's files (the trained checkpoint).
        quick: Small sizes (well under a minute on 2 cores).

    Returns:
        An :class:`opgraph.report.Section`.
    """
    from opgraph.perf import plots
    from opgraph.perf.baselines import AnalyticalBaseline, DefaultBaseline, LightGBMBaseline, RandomBaseline
    from opgraph.perf.collect import split_names
    from opgraph.perf.evaluate import compare
    from opgraph.perf.layout import decode_configs
    from opgraph.perf.model import CostModel, ModelConfig
    from opgraph.perf.tpugraphs import load_records
    from opgraph.report import Figure, Section, Table

    t0 = time.perf_counter()
    work_dir = pathlib.Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    data = demo_dataset(quick=quick)
    collect_s = time.perf_counter() - t0
    recs = load_records(data)
    tr_names, te_names = split_names([r.name for r in recs], 0.25, 0)
    train = [r for r in recs if r.name in tr_names]
    test = [r for r in recs if r.name in te_names]
    gnn = CostModel(ModelConfig(kind="layout", epochs=30 if quick else 60, hidden=48 if quick else 64))
    models = {
        "GNN (SAGE, ListMLE)": gnn,
        "LightGBM lambdarank": LightGBMBaseline(n_estimators=100),
        "analytical": AnalyticalBaseline(),
        "default config": DefaultBaseline(),
        "random": RandomBaseline(),
    }
    comp = compare(models, train, test)
    gnn.save(work_dir / "perf-demo-model.pt")
    cols, rows = comp.table()
    preds = [gnn.predict(r) for r in test]
    best = int(np.argmin(preds[0]))
    choice = decode_configs(test[0].config_matrix([best]))[0]
    figs = [
        Figure.from_matplotlib(
            plots.tau_vs_ceiling(comp, models=["GNN (SAGE, ListMLE)", "LightGBM lambdarank", "analytical"]),
            "tau_vs_ceiling",
            "Kendall tau per held-out graph, next to the tau between two measuring rounds (the noise ceiling).",
        ),
        Figure.from_matplotlib(
            plots.predicted_vs_measured(test, preds),
            "predicted_vs_measured",
            "GNN cost (standardised) against measured runtime for every config of each held-out graph.",
        ),
        Figure.from_matplotlib(
            plots.draw_layout_choice(test[0], choice, title=f"{test[0].name}: layout picked by the GNN"),
            "layout_choice",
            "A held-out graph with its convolutions coloured by the layout the model ranks fastest.",
        ),
    ]
    s = comp.scores["GNN (SAGE, ListMLE)"].summary()
    meta = [r.measure_meta for r in recs]
    summary = (
        f"{len(recs)} PyTorch zoo graphs measured on this CPU ({len(train)} train, {len(test)} held out), "
        f"{recs[0].n_configs} layout configs each (NCHW or channels-last per convolution). The GNN reaches "
        f"Kendall tau {s['kendall_tau']:.2f} on held-out graphs against a noise ceiling of {s['ceiling_tau']:.2f} "
        f"(tau between two measuring rounds). Total {time.perf_counter() - t0:.0f} s, dataset cached in {data}."
    )
    return Section(
        id="perf",
        title="perf: learned performance model (TpuGraphs)",
        summary=summary,
        figures=figs,
        tables=[Table(cols, rows, "Held-out graphs: models and baselines side by side (lower slowdown is better).")],
        data={
            "comparison": comp.to_dict(),
            "dataset": str(data),
            "collect_s": collect_s,
            "median_noise": float(np.nanmedian([m.get("noise", np.nan) for m in meta])),
            "loadavg": [m.get("loadavg_start") for m in meta[:3]],
        },
        notes=[
            "Runtimes are CPU time of one thread on a shared machine (load average recorded in each file); "
            "the demo dataset is tiny, so the numbers vary from run to run.",
            "No GPU and no TPU were used: configs are PyTorch CPU memory formats, not XLA layouts.",
        ],
    )
