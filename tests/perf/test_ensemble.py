"""Averaged ensembles (GNN + LightGBM, GNN + analytical) as ``opgraph perf train`` models: choice, checkpoint."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest

from opgraph.perf.ensemble import RankAverage, standardise


def test_standardise_and_rank_average():
    np.testing.assert_allclose(standardise([1.0, 2.0, 3.0]), np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3))
    assert (standardise([5.0, 5.0]) == 0).all()  # a constant vector: zeros, no division by 0

    class Fixed:
        def __init__(self, c):
            self.c = np.asarray(c, dtype=float)

        def predict(self, rec):
            return self.c

    # units do not matter: 1000x the second member's scale weighs the same after standardising
    ens = RankAverage([Fixed([0.0, 1.0, 2.0]), Fixed([2000.0, 0.0, 1000.0])], ["a", "b"])
    np.testing.assert_allclose(ens.predict(None), (standardise([0, 1, 2]) + standardise([2, 0, 1])) / 2, atol=1e-12)


class _Fake:
    """A 'fitted' model whose costs on graph ``g`` are ``table[g.name]`` (stands in for GNN / LightGBM)."""

    def __init__(self, table):
        self.table = table
        self.kind = "tile"

    def predict(self, rec):
        return self.table[rec.name]


def _patch_members(monkeypatch, gnn_table, lgbm_table):
    import opgraph.perf.baselines as baselines
    import opgraph.perf.model as model

    class FakeGNN(_Fake):
        def __init__(self, config):
            super().__init__(gnn_table)

        def fit(self, train, valid=None, progress=False):
            return self

    class FakeLGBM(_Fake):
        def __init__(self, seed=0, features=None):
            super().__init__(lgbm_table)

        def fit(self, train):
            return self

    monkeypatch.setattr(model, "CostModel", FakeGNN)
    monkeypatch.setattr(baselines, "LightGBMBaseline", FakeLGBM)
    monkeypatch.setattr(baselines, "metaschedule_xgb_unavailable", lambda recs: "not in this test")


def _valid(make_tile, x, y):
    """Tile graphs whose runtime is x + y (two independent halves of the signal, equal spread)."""
    recs = []
    for i in range(len(x)):
        r = make_tile(f"v{i}", c=len(x[i]), seed=i)
        recs.append(replace(r, config_runtime=(1000 + 100 * (x[i] + y[i])).astype(np.int64)))
    return recs


def test_auto_keeps_the_ensemble_only_when_it_scores_best(monkeypatch, make_tile):
    from opgraph.perf.evaluate import train_and_choose
    from opgraph.perf.model import ModelConfig

    rng = np.random.default_rng(0)
    x = [rng.permutation(12).astype(float) for _ in range(3)]
    y = [rng.permutation(12).astype(float) for _ in range(3)]
    valid = _valid(make_tile, x, y)
    cfg = ModelConfig(kind="tile")
    # each member sees one half of the signal: their average sees all of it
    _patch_members(
        monkeypatch, {r.name: x[i] for i, r in enumerate(valid)}, {r.name: y[i] for i, r in enumerate(valid)}
    )
    chosen, model, sel = train_and_choose(cfg, valid, valid, model_type="auto")
    taus = {n: s["kendall_tau"] for n, s in sel["valid_scores"].items()}
    assert set(taus) == {"GNN", "LightGBM", "GNN + LightGBM"} and "GNN + analytical" not in taus  # tile
    assert taus["GNN + LightGBM"] > max(taus["GNN"], taus["LightGBM"])
    assert chosen == "GNN + LightGBM" and isinstance(model, RankAverage) and model.names == ["GNN", "LightGBM"]
    assert sel["skipped"] == {"MetaSchedule XGBoost": "not in this test"}
    # the GNN sees the whole signal, LightGBM noise: averaging only dilutes it, so the GNN alone is kept
    noise = {r.name: rng.permutation(12).astype(float) for r in valid}
    _patch_members(monkeypatch, {r.name: x[i] + y[i] for i, r in enumerate(valid)}, noise)
    chosen, model, sel = train_and_choose(cfg, valid, valid, model_type="auto")
    assert chosen == "GNN" and not isinstance(model, RankAverage)
    assert sel["valid_scores"]["GNN"]["kendall_tau"] > sel["valid_scores"]["GNN + LightGBM"]["kendall_tau"]


def test_gnn_analytical_is_layout_only(make_tile):
    from opgraph.perf.errors import PerfError
    from opgraph.perf.evaluate import train_and_choose
    from opgraph.perf.model import ModelConfig

    with pytest.raises(PerfError, match="gnn\\+analytical: layout collections only"):
        train_and_choose(ModelConfig(kind="tile"), [make_tile("t0")], [], model_type="gnn+analytical")


def test_ensembles_round_trip_through_one_checkpoint(tmp_path, make_tile, make_layout):
    pytest.importorskip("torch_geometric")
    pytest.importorskip("lightgbm")
    from opgraph.perf.evaluate import train_and_choose
    from opgraph.perf.model import ModelConfig, load_ranker, save_ranker

    tiles = [make_tile(f"t{i}", c=12, seed=i) for i in range(5)]
    cfg = ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, op_dim=4, join="late", ensemble=2)
    chosen, ens, sel = train_and_choose(cfg, tiles[:3], tiles[3:], model_type="gnn+lightgbm")
    assert chosen == "GNN + LightGBM" and sel["model_type"] == "gnn+lightgbm"
    path = save_ranker(ens, tmp_path / "ens.pt", selection=sel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens.pt"]  # one file, no temp left behind
    back = load_ranker(path)
    assert isinstance(back, RankAverage) and back.names == ["GNN", "LightGBM"] and back.kind == "tile"
    assert back.selection["chosen"] == "GNN + LightGBM" and len(back.members[0].members) == 1  # the 2nd GNN seed
    for r in tiles:
        np.testing.assert_array_equal(back.predict(r), ens.predict(r))

    lays = [make_layout(f"l{i}", n=14, nc=3, c=8, seed=i) for i in range(4)]
    lcfg = ModelConfig(kind="layout", epochs=1, hidden=8, layers=1, op_dim=4)
    chosen, ens2, sel2 = train_and_choose(lcfg, lays[:2], lays[2:], model_type="gnn+analytical")
    back2 = load_ranker(save_ranker(ens2, tmp_path / "lay.pt", selection=sel2))
    assert chosen == "GNN + analytical" and back2.names == ["GNN", "analytical"] and back2.kind == "layout"
    for r in lays:
        np.testing.assert_array_equal(back2.predict(r), ens2.predict(r))


def _write(path, obj):
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    path.write_bytes(buf.getvalue())
    return path


def test_bad_ensemble_checkpoints_give_one_line_errors(tmp_path):
    pytest.importorskip("torch")
    from opgraph.perf.errors import CheckpointError
    from opgraph.perf.model import FEATURE_VERSION, MODEL_FORMAT, load_ranker

    head = {"format": MODEL_FORMAT, "feature_version": FEATURE_VERSION, "model_type": "ensemble", "kind": "tile"}
    cases = {
        "no members": ({**head}, "ensemble checkpoint without members"),
        "foreign member": ({**head, "members": [{"model_type": "xgb"}]}, "member 0 has model_type 'xgb'"),
        "gnn without config": (
            {**head, "members": [{"model_type": "gnn", "feature_version": FEATURE_VERSION}]},
            "GNN checkpoint without 'config'",
        ),
        "old features": (
            {**head, "feature_version": -1, "members": [{"model_type": "analytical"}]},
            "feature version -1",
        ),
    }
    for name, (obj, msg) in cases.items():
        p = _write(tmp_path / f"{name}.pt", obj)
        with pytest.raises(CheckpointError, match=msg) as exc:
            load_ranker(p)
        assert "\n" not in str(exc.value) and str(p) in str(exc.value), name


FACTORY = """
import torch

def make():
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 1))
    return m, (torch.randn(1, 3, 16, 16),)
"""


def test_cli_trains_an_ensemble_that_rank_eval_and_tune_load(tmp_path, make_layout):
    pytest.importorskip("torch_geometric")
    from click.testing import CliRunner

    from opgraph.perf.cli import group
    from opgraph.perf.model import load_ranker
    from opgraph.perf.tpugraphs import save_graph

    data = tmp_path / "lay"
    for i in range(5):
        save_graph(make_layout(f"l{i}", n=14, nc=3, c=8, seed=i), data / f"l{i}.npz")
    r = CliRunner()
    model = tmp_path / "m.pt"
    args = ["train", "--data", str(data), "--out", str(model), "--epochs", "1", "--hidden", "8", "--ensemble", "1"]
    res = r.invoke(group, args + ["--model-type", "gnn+analytical"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "kept GNN + analytical" in res.output
    assert isinstance(load_ranker(model), RankAverage)
    res = r.invoke(group, ["eval", "--model", str(model), "--data", str(data)])
    assert res.exit_code == 0 and "GNN + analytical" in res.output, res.output + repr(res.exception)
    res = r.invoke(group, ["rank", "--model", str(model), str(data / "l0.npz"), "--top", "3"])
    assert res.exit_code == 0 and "predicted fastest configs" in res.output, res.output + repr(res.exception)
    (tmp_path / "net.py").write_text(FACTORY)
    tune = ["tune", f"{tmp_path / 'net.py'}:make", "--model", str(model), "--candidates", "4", "--measure-frac", "0.5"]
    res = r.invoke(group, tune + ["--out", str(tmp_path / "tuned.json")])
    assert res.exit_code == 0 and "speed-up" in res.output, res.output + repr(res.exception)


def test_tune_tile_ranks_with_a_loaded_ensemble(tmp_path, make_tile):
    """``tune_tile``'s prior can be an ensemble checkpoint: it measures the ensemble's top candidate first."""
    pytest.importorskip("torch_geometric")
    pytest.importorskip("lightgbm")
    pytest.importorskip("tvm")
    from opgraph.perf.evaluate import train_and_choose
    from opgraph.perf.measure import MeasureSettings
    from opgraph.perf.model import ModelConfig, load_ranker, save_ranker
    from opgraph.perf.tile import KernelSpec, candidate_record
    from opgraph.perf.tune import tune_tile

    class Runner:
        compile_s = 0.0

        def thunk(self, tile):
            return lambda: sum(range(100))

    tiles = [make_tile(f"t{i}", c=12, seed=i) for i in range(4)]
    cfg = ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, op_dim=4, join="late", ensemble=1)
    _, ens, sel = train_and_choose(cfg, tiles, [], model_type="gnn+lightgbm")
    ranker = load_ranker(save_ranker(ens, tmp_path / "ens.pt", selection=sel))
    spec = KernelSpec("matmul", (32, 32, 16), "bias_relu")
    cands = [(4, 8, 4), (8, 8, 8), (8, 16, 4), (16, 16, 16), (2, 4, 2), (32, 32, 16), (1, 1, 1), (4, 4, 4)]
    cost = ranker.predict(candidate_record(spec, [None, *cands]))
    np.testing.assert_array_equal(cost, ens.predict(candidate_record(spec, [None, *cands])))
    fast = MeasureSettings(rounds=2, reps=1, warmup=1)
    res = tune_tile(spec, ranker, candidates=cands, runner=Runner(), settings=fast, race_rounds=2, search="screen")
    assert res.n_measured == 2 and tuple(res.measured[1].choice) == cands[int(np.argmin(cost[1:]))]


def test_auto_select_by_rank_drops_a_tau_winner_that_misses_the_best(monkeypatch, make_tile):
    from opgraph.perf.errors import PerfError
    from opgraph.perf.evaluate import train_and_choose
    from opgraph.perf.model import ModelConfig

    rng = np.random.default_rng(3)
    valid, gnn, lgbm = [], {}, {}
    for i in range(4):
        perm = rng.permutation(12)  # config j has the perm[j]-th runtime; perm == 0 is the fastest
        r = make_tile(f"v{i}", c=12, seed=i)
        valid.append(replace(r, config_runtime=(1000 + 100 * perm).astype(np.int64)))
        gnn[r.name] = np.where(perm == 0, 99.0, perm).astype(float)  # right order, but the fastest ranked last
        lgbm[r.name] = np.where(perm == 0, -1.0, rng.permutation(12)).astype(float)  # finds the fastest, else noise
    _patch_members(monkeypatch, gnn, lgbm)
    cfg = ModelConfig(kind="tile")
    chosen_tau, _, sel_tau = train_and_choose(cfg, valid, valid, model_type="auto", select_by="tau")
    chosen, _, sel = train_and_choose(cfg, valid, valid, model_type="auto", select_by="rank")
    t = sel["table"]
    assert chosen_tau == "GNN" and t["GNN"]["rank kendall_tau"] == 1  # the tau winner...
    assert t["GNN"]["slowdown@1"] > 0 and t["GNN"]["rank slowdown@1"] > 1  # ...misses the fastest config
    assert chosen == "LightGBM" and t[chosen]["mean rank"] == min(v["mean rank"] for v in t.values())
    assert sel["select_by"] == "rank" and "mean rank" in sel["rule"] and sel_tau["select_by"] == "tau"
    assert set(t) == {"GNN", "LightGBM", "GNN + LightGBM"}
    with pytest.raises(PerfError, match="select-by"):
        train_and_choose(cfg, valid, valid, model_type="auto", select_by="best")
