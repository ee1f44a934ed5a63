"""The paired bootstrap of held-out differences (graphs nested in families) on made-up numbers."""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.perf.significance import higher_is_better, paired_difference


def _fams(values: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {f: {f"{f}_g{i}": v for i, v in enumerate(vs)} for f, vs in values.items()}


def test_a_clear_win_is_resolved_and_counted():
    b = _fams({"x": [0.1, 0.2, 0.3], "y": [0.0, 0.1], "z": [0.3, 0.3, 0.2, 0.4]})
    a = {f: {g: v + 0.2 + 0.01 * i for i, (g, v) in enumerate(gs.items())} for f, gs in b.items()}
    d = paired_difference(a, b, higher_better=True, n_boot=2000)
    # the statistic is the mean over families of the family means (not the mean over graphs)
    want = np.mean([np.mean([0.2 + 0.01 * i for i in range(n)]) for n in (3, 2, 4)])
    assert d.mean == pytest.approx(want)
    assert 0.2 <= d.ci_graphs[0] <= d.mean <= d.ci_graphs[1] <= 0.24
    assert (d.wins, d.ties, d.losses, d.n_graphs, d.n_families) == (3, 0, 0, 9, 3)
    assert d.verdict("graphs") == "a better" and d.verdict("families") == "a better"


def test_noise_is_not_resolved_and_the_direction_counts():
    rng = np.random.default_rng(1)
    b = _fams({f: list(rng.normal(0, 1, 6)) for f in "pqrst"})
    a = _fams({f: list(rng.normal(0, 1, 6)) for f in "pqrst"})
    d = paired_difference(a, b, n_boot=2000)
    assert d.ci_graphs[0] < 0 < d.ci_graphs[1] and d.verdict() == "not resolved"
    # lower is better (slowdown): a is lower everywhere, so a wins although the difference is negative
    low = {f: {g: v - 1.0 for g, v in gs.items()} for f, gs in b.items()}
    s = paired_difference(low, b, higher_better=higher_is_better("slowdown@5"), n_boot=500)
    assert s.mean == pytest.approx(-1.0) and s.wins == 5 and s.verdict("families") == "a better"
    assert paired_difference(b, low, higher_better=False, n_boot=500).verdict() == "b better"


def test_family_resampling_is_wider_when_families_disagree():
    # every family is internally consistent (tiny within-family spread) but families disagree in sign
    a = _fams({"u": [1.0, 1.01, 0.99], "v": [-0.8, -0.81, -0.79], "w": [0.5, 0.51, 0.49], "x": [-0.2] * 3})
    b = _fams({f: [0.0] * 3 for f in "uvwx"})
    d = paired_difference(a, b, n_boot=4000)
    gw = d.ci_graphs[1] - d.ci_graphs[0]
    fw = d.ci_families[1] - d.ci_families[0]
    assert gw < 0.05 < fw and d.verdict("graphs") == "a better" and d.verdict("families") == "not resolved"
    assert (d.wins, d.losses) == (2, 2)


def test_ties_unpaired_graphs_and_errors():
    a = {"f": {"g0": 0.0, "g1": 0.0, "only_a": 5.0}, "h": {"k": float("nan")}, "solo": {"s": 1.0}}
    b = {"f": {"g0": 0.0, "g1": 0.0}, "h": {"k": 1.0}}
    d = paired_difference(a, b, higher_better=False, n_boot=100)
    assert (d.wins, d.ties, d.losses, d.n_graphs, d.mean) == (0, 1, 0, 2, 0.0)
    assert d.verdict() == "not resolved"
    with pytest.raises(ValueError, match="no family"):
        paired_difference({"f": {"g": 1.0}}, {"f": {"other": 1.0}})
    with pytest.raises(ValueError, match="level"):
        paired_difference(a, b, level=1.0)


def test_same_seed_same_interval():
    a = _fams({"x": [0.3, 0.1, 0.5], "y": [0.2, 0.4]})
    b = _fams({"x": [0.2, 0.2, 0.2], "y": [0.1, 0.1]})
    assert paired_difference(a, b, seed=3).to_dict() == paired_difference(a, b, seed=3).to_dict()


def _heldout_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "heldout.py"
    spec = importlib.util.spec_from_file_location("heldout_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _model(per_graph: dict[str, dict[str, float]]) -> dict:
    return {"summary": {k: float(np.mean(list(v.values()))) for k, v in per_graph.items()}, "per_graph": per_graph}


def test_heldout_significance_pairs_the_best_of_each_group():
    heldout = _heldout_module()
    rng = np.random.default_rng(0)
    fams = {}
    for f in ("a", "b", "c"):
        graphs = [f"{f}{i}" for i in range(4)]

        def pg(tau_shift: float, slow: float, graphs=graphs) -> dict[str, dict[str, float]]:
            noise = rng.normal(0, 0.01, len(graphs))
            return {
                "kendall_tau": {g: 0.3 + tau_shift + n for g, n in zip(graphs, noise)},
                "opa": {g: 0.6 + tau_shift / 2 for g in graphs},
                "slowdown@1": {g: slow for g in graphs},
                "slowdown@5": {g: slow / 10 for g in graphs},
            }

        fams[f] = {
            "configs_median": 8,  # slowdown@10 is not shown (K >= the configs)
            "models": {
                "GNN": _model(pg(0.0, 0.5)),
                "GNN + LightGBM": _model(pg(0.2, 0.1)),  # best GNN-containing model on every metric
                "LightGBM": _model(pg(0.1, 0.3)),  # best baseline on tau, not on slowdown
                "analytical": _model(pg(-0.1, 0.2)),  # best baseline on slowdown
                "random": _model(pg(0.5, 0.0)),  # never a baseline, even when it looks best
            },
        }
    rows = heldout.significance("tile", {"families": fams}, n_boot=500)
    by = {(r["metric"], r["comparison"]): r for r in rows}
    tau = by[("kendall_tau", "best vs best")]
    assert (tau["a"], tau["b"]) == ("GNN + LightGBM", "LightGBM") and tau["verdict_graphs"] == "a better"
    assert tau["mean"] == pytest.approx(0.1, abs=0.02) and tau["wins"] == 3
    s1 = by[("slowdown@1", "best vs best")]
    assert (s1["a"], s1["b"]) == ("GNN + LightGBM", "analytical") and s1["mean"] == pytest.approx(-0.1)
    alone = by[("kendall_tau", "GNN alone vs best baseline")]
    assert alone["a"] == "GNN" and alone["verdict_graphs"] == "b better"
    # the ensemble against its own non-GNN member; on tau it is the best-vs-best row already, so not repeated
    assert by[("slowdown@1", "what the GNN adds to its partner")]["b"] == "LightGBM"
    assert ("kendall_tau", "what the GNN adds to its partner") not in by
    assert {r["metric"] for r in rows} == {"kendall_tau", "opa", "slowdown@1", "slowdown@5"}
    lines = heldout._significance_table("tile", {"families": fams})
    assert any("GNN + LightGBM better" in line for line in lines)


def test_comparison_keeps_every_per_graph_metric(make_tile):
    from opgraph.perf.baselines import DefaultBaseline, RandomBaseline
    from opgraph.perf.evaluate import compare

    recs = [make_tile(f"t{i}", seed=i) for i in range(4)]
    d = compare({"default": DefaultBaseline(), "random": RandomBaseline()}, recs[:1], recs[1:]).to_dict()
    for m in ("default", "random"):
        pg = d[m]["per_graph"]
        assert set(pg) == {"kendall_tau", "opa", "slowdown@1", "slowdown@5", "slowdown@10", "kaggle_tile"}
        for metric, vals in pg.items():
            assert sorted(vals) == ["t1", "t2", "t3"]
            assert np.mean(list(vals.values())) == pytest.approx(d[m]["summary"][metric])
    assert d["default"]["per_graph"]["kendall_tau"] != d["random"]["per_graph"]["kendall_tau"]
