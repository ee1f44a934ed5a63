"""benchmarks/perf/heldout.py: ``seed_summary`` and ``--into-main`` (``ensemble_into_main``) on hand-made predictions.

Two held-out families of one tile graph each, three configs per graph, so every metric is computed by hand:

* ``fa``: graph ``gA``, runtimes ``[1, 2, 3]``, noise ceiling 0.5;
* ``fb``: graph ``gB``, runtimes ``[3, 1, 2]``, noise ceiling 1.0.

With three configs, Kendall tau is (concordant - discordant) / 3 pairs, slowdown@5 and @10 are 0 (the top 5 holds
every config), and the Kaggle tile score is 1.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from opgraph._base.jsonio import read_json, write_json

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "heldout.py"
RUNTIMES = {"gA": [1, 2, 3], "gB": [3, 1, 2]}
CEILING = {"gA": 0.5, "gB": 1.0}
FAMILY = {"gA": "fa", "gB": "fb"}


@pytest.fixture(scope="module")
def ho():
    spec = importlib.util.spec_from_file_location("perf_heldout_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["perf_heldout_bench"] = mod
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop("perf_heldout_bench", None)


def _record(name: str):
    from opgraph.perf.tpugraphs import TILE_CONFIG_DIM, GraphRecord

    rng = np.random.default_rng(len(name))
    c = len(RUNTIMES[name])
    feat = np.zeros((c, TILE_CONFIG_DIM), dtype=np.float32)
    feat[:, 0] = np.arange(1, c + 1)  # distinct configs (not merged as duplicates)
    return GraphRecord(
        name=name,
        kind="tile",
        node_feat=rng.random((4, 140)).astype(np.float32),
        node_opcode=rng.integers(1, 120, 4),
        edge_index=np.array([[1, 0], [2, 1], [3, 2]], dtype=np.int64),
        config_runtime=np.asarray(RUNTIMES[name], dtype=np.int64),
        config_feat=feat,
        measure_meta={"tau_between_rounds": CEILING[name]},
    )


def _seed(path: Path, preds: dict[str, list[float]], cpu_s: float) -> None:
    write_json(path, {"preds": preds, "config": {"loss": "x"}, "epochs": 7, "cpu_s": cpu_s})


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """(data, preds) folders: the records, and the seeds' and baselines' predictions as ``seeds`` writes them."""
    from opgraph.perf.tpugraphs import save_graph

    data, preds = tmp_path / "data", tmp_path / "preds"
    for g in RUNTIMES:
        save_graph(_record(g), data / "tile" / f"{g}.npz")
    write_json(data / "families.json", FAMILY)
    v = preds / "tile" / "v_one"  # the slug of "V one"
    _seed(v / "fa" / "seed0.json", {"gA": [1, 2, 3]}, 1.0)  # tau 1
    _seed(v / "fa" / "seed1.json", {"gA": [3, 2, 1]}, 2.0)  # tau -1
    _seed(v / "fa" / "seed2.json", {"gA": [1, 3, 2]}, 100.0)  # fb has 2 seeds: not counted by seed_summary
    _seed(v / "fb" / "seed0.json", {"gB": [3, 1, 2]}, 4.0)  # tau 1
    _seed(v / "fb" / "seed1.json", {"gB": [1, 2, 3]}, 8.0)  # tau -1/3
    _seed(preds / "tile" / "v_two" / "fa" / "seed0.json", {"gA": [3, 1, 2]}, 16.0)  # tau -1/3, one family
    (preds / "tile" / "aaa" / "fa").mkdir(parents=True)  # a variant without predictions: skipped
    _seed(preds / "tile" / "extra" / "fb" / "seed0.json", {"gB": [3, 1, 2]}, 0.5)  # not in names: listed last
    base = preds / "tile" / "_baselines"
    write_json(
        base / "fa" / "baselines.json", {"preds": {"LightGBM": {"gA": [1, 2, 3]}, "analytical": {"gA": [3, 2, 1]}}}
    )
    write_json(
        base / "fb" / "baselines.json", {"preds": {"LightGBM": {"gB": [2, 1, 3]}, "analytical": {"gB": [1, 3, 2]}}}
    )
    return data, preds


def test_seed_summary_hand_computed(ho, tree) -> None:
    data, preds = tree
    out = ho.seed_summary("tile", preds, data, ("V two", "V one"))
    assert list(out) == ["V two", "V one", "extra"]
    a = out["V one"]
    assert a["seeds"] == 2 and a["families"] == ["fa", "fb"] and a["epochs"] == 7 and a["config"] == {"loss": "x"}
    assert a["cpu_s"] == pytest.approx(1 + 2 + 4 + 8)  # seed2 of fa is not counted
    ps = a["per_seed"]
    assert ps[0]["fa"]["kendall_tau"] == pytest.approx(1) and ps[0]["fb"]["kendall_tau"] == pytest.approx(1)
    assert ps[1]["fa"]["kendall_tau"] == pytest.approx(-1) and ps[1]["fb"]["kendall_tau"] == pytest.approx(-1 / 3)
    assert ps[1]["fa"]["opa"] == pytest.approx(0) and ps[1]["fb"]["opa"] == pytest.approx(1 / 3)
    assert ps[1]["fa"]["slowdown@1"] == pytest.approx(2) and ps[1]["fb"]["slowdown@1"] == pytest.approx(2)
    assert ps[0]["fa"]["ceiling_tau"] == 0.5 and ps[0]["fb"]["ceiling_tau"] == 1.0
    # means over families per seed: tau 1 and -2/3; opa 1 and 1/6; slowdown@1 0 and 2
    assert a["seed_mean"]["kendall_tau"] == pytest.approx(1 / 6)
    assert a["seed_sd"]["kendall_tau"] == pytest.approx(math.sqrt(50) / 6)  # ddof 1: deviations +-5/6
    assert a["seed_mean"]["opa"] == pytest.approx(7 / 12)
    assert a["seed_mean"]["slowdown@1"] == pytest.approx(1) and a["seed_sd"]["slowdown@1"] == pytest.approx(
        math.sqrt(2)
    )
    assert a["seed_mean"]["slowdown@5"] == 0 and a["seed_mean"]["kaggle_tile"] == pytest.approx(1)
    assert a["seed_mean"]["ceiling_tau"] == pytest.approx(0.75)
    # ensemble = mean of standardised seeds: fa [0, 0, 0] (all tied), fb [0, -s/2, s/2] (order 1 < 0 < 2)
    ens = a["ensemble"]
    assert ens["fa"]["kendall_tau"] == 0 and ens["fa"]["opa"] == pytest.approx(0.5)
    assert ens["fa"]["slowdown@1"] == 0  # ties go to the first config, the fastest here
    assert ens["fb"]["kendall_tau"] == pytest.approx(1 / 3) and ens["fb"]["opa"] == pytest.approx(2 / 3)
    assert ens["fb"]["slowdown@1"] == 0
    # ensemble + baseline: fa's ensemble is constant, so the sum orders as the baseline does
    plus = a["ensemble_plus"]
    assert plus["LightGBM"]["fa"]["kendall_tau"] == pytest.approx(1)
    assert plus["analytical"]["fa"]["kendall_tau"] == pytest.approx(-1)
    assert plus["LightGBM"]["fb"]["kendall_tau"] == pytest.approx(1 / 3)  # [0, -2s, 2s]
    assert plus["analytical"]["fb"]["kendall_tau"] == pytest.approx(-1 / 3)  # [-s, 0, s]
    # one seed, one family: no spread; the ensemble is that seed
    b = out["V two"]
    assert b["seeds"] == 1 and b["families"] == ["fa"] and math.isnan(b["seed_sd"]["kendall_tau"])
    assert b["seed_mean"]["kendall_tau"] == pytest.approx(-1 / 3) == b["ensemble"]["fa"]["kendall_tau"]
    assert b["ensemble_plus"]["LightGBM"]["fa"]["kendall_tau"] == pytest.approx(1 / 3)  # [s, -s, 0] + [-s, 0, s]
    assert out["extra"]["seed_mean"]["kendall_tau"] == pytest.approx(1)


def test_seed_summary_drops_a_baseline_missing_for_a_family(ho, tree) -> None:
    data, preds = tree
    (preds / "tile" / "_baselines" / "fb" / "baselines.json").unlink()
    a = ho.seed_summary("tile", preds, data, ("V one",))["V one"]
    assert a["ensemble_plus"] == {}  # only fa has baselines: not every family, so not reported
    assert a["ensemble"]["fb"]["kendall_tau"] == pytest.approx(1 / 3)


def _models(tau: float) -> dict:
    s = {"kendall_tau": tau, "opa": 0.5, "ceiling_tau": 0.5, "slowdown@1": 0.1, "slowdown@5": 0.0}
    s.update({"slowdown@10": 0.0, "kaggle_tile": 1.0})
    return {"summary": s, "fit_s": 9.0}


def _families() -> dict:
    fam = {"graphs": 1, "nodes_median": 4, "configs_median": 3, "collect_s": 60.0}
    return {
        f: {**fam, "models": {"GNN": _models(-0.9), "GNN with hints": _models(-0.8), "LightGBM": _models(0.25)}}
        for f in ("fa", "fb", "fc")
    }


def test_ensemble_into_main_replaces_the_gnn_columns(ho, tree) -> None:
    data, preds = tree
    res = {"families": _families(), "seed_ablations": {"V one": {"seeds": 2}}}
    done = ho.ensemble_into_main("tile", res, preds, data, "V one")
    assert done == ["fa", "fb"] and res["gnn_from_seeds"] == {"variant": "V one", "families": ["fa", "fb"]}
    fa, fb, fc = (res["families"][f]["models"] for f in ("fa", "fb", "fc"))
    assert list(fa) == ["GNN", "GNN + LightGBM", "GNN + analytical", "LightGBM"]  # "GNN with hints" is gone
    assert fa["LightGBM"]["summary"]["kendall_tau"] == 0.25  # other models are kept as they were
    assert fa["GNN"]["summary"]["kendall_tau"] == 0 and fa["GNN"]["per_graph_tau"] == {"gA": 0.0}
    assert fa["GNN"]["fit_s"] == pytest.approx(1 + 2) and fa["GNN + LightGBM"]["fit_s"] == 0
    assert fa["GNN + LightGBM"]["summary"]["kendall_tau"] == pytest.approx(1)
    assert fa["GNN + analytical"]["summary"]["kendall_tau"] == pytest.approx(-1)
    assert fb["GNN"]["summary"]["kendall_tau"] == pytest.approx(1 / 3)
    assert fb["GNN"]["per_graph_ceiling"] == {"gB": 1.0} and fb["GNN"]["summary"]["ceiling_tau"] == 1.0
    assert fb["GNN + analytical"]["summary"]["kendall_tau"] == pytest.approx(-1 / 3)
    assert fc["GNN"]["summary"]["kendall_tau"] == -0.9 and "GNN with hints" in fc  # no predictions: untouched


def test_ensemble_into_main_without_a_seed_count_uses_every_seed(ho, tree) -> None:
    data, preds = tree
    res = {"families": _families()}
    ho.ensemble_into_main("tile", res, preds, data, "V one")
    fa = res["families"]["fa"]["models"]["GNN"]
    # three seeds of fa: the mean of the standardised [1,2,3], [3,2,1], [1,3,2] is s/3 * [-1, 1, 0]: tau 1/3
    assert fa["summary"]["kendall_tau"] == pytest.approx(1 / 3) and fa["fit_s"] == pytest.approx(103)


def test_seedsum_into_main_command(ho, tree, tmp_path, monkeypatch) -> None:
    """``heldout.py seedsum --into-main VARIANT``: the JSON gets the seed ablations and the GNN columns, the page
    its tables."""
    data, preds = tree
    js, doc = tmp_path / "r.json", tmp_path / "perf.md"
    write_json(js, {"tile": {"families": _families()}, "command": "evaluate ..."})
    doc.write_text("# perf\n\nkept text\n")
    argv = ["heldout.py", "seedsum", "--spaces", "tile", "--data", str(data), "--preds", str(preds)]
    argv += ["--variants", "V one;V two", "--into-main", "V one", "--json", str(js), "--doc", str(doc)]
    monkeypatch.setattr(sys, "argv", argv)
    ho.main()
    res = dict(read_json(js))["tile"]
    assert list(res["seed_ablations"]) == ["V one", "V two", "extra"]
    assert res["gnn_from_seeds"]["families"] == ["fa", "fb"]
    assert res["families"]["fb"]["models"]["GNN"]["summary"]["kendall_tau"] == pytest.approx(1 / 3)
    text = doc.read_text()
    assert "kept text" in text and "GNN variants over seeds (tile)" in text
    tau_row = next(line for line in text.splitlines() if line.startswith("| fb |"))
    assert "0.333" in tau_row and "-0.900" not in tau_row
    assert "| V one | 2 x 7 | 2 |" in text


def test_variants_parse_a_single_name_with_commas_whole(ho):
    name = "lambda loss + analytical terms per-graph standardised, joined late + residual"
    assert ho.parse_variants(name) == (name,)
    assert ho.parse_variants(name + ";") == (name,)
    assert ho.parse_variants("a;b, c") == ("a", "b, c")
    assert ho.parse_variants("a,b") == ("a", "b")
    assert ho.parse_variants("") == ()
