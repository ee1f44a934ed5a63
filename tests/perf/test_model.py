from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch_geometric")
import torch  # noqa: E402

from opgraph.perf.baselines import (  # noqa: E402
    AnalyticalBaseline,
    DefaultBaseline,
    LightGBMBaseline,
    RandomBaseline,
)
from opgraph.perf.errors import CheckpointError, PerfError  # noqa: E402
from opgraph.perf.evaluate import compare  # noqa: E402
from opgraph.perf.model import CostModel, ModelConfig, hinge_loss, k_hop_nodes, listmle_loss  # noqa: E402


def _learnable_layout(make_layout_record, seed):
    """Runtime = sum over nodes of an NHWC cost that a node feature decides: learnable across graphs."""
    rec = make_layout_record(f"g{seed}", n=14, nc=4, c=12, seed=seed)
    from opgraph.perf.layout import decode_configs

    ch = decode_configs(rec.config_matrix())
    feat = np.zeros_like(rec.node_feat)
    feat[:, 50] = np.random.default_rng(seed).integers(0, 2, rec.n_nodes)
    w = np.where(feat[rec.node_config_ids, 50] > 0.5, 3.0, -2.0)
    rt = (1000 + 100 * ch @ w).astype(np.int64)
    return replace(rec, node_feat=feat, node_opcode=np.full(rec.n_nodes, 26), config_runtime=rt)


@pytest.fixture(scope="module")
def layout_data(make_layout):
    return [_learnable_layout(make_layout, s) for s in range(6)]


def test_losses_prefer_the_true_order():
    rt = torch.tensor([1.0, 2.0, 3.0, 4.0])
    good, bad = rt.clone(), -rt
    assert listmle_loss(good, rt) < listmle_loss(bad, rt)
    assert hinge_loss(good, rt) < hinge_loss(bad, rt)


def test_k_hop():
    edges = np.array([[i + 1, i] for i in range(9)])
    assert k_hop_nodes(10, edges, np.array([5]), 2).tolist() == [3, 4, 5, 6, 7]


def test_train_predict_save_load(tmp_path, layout_data, make_tile):
    m = CostModel(ModelConfig(kind="layout", epochs=2, hidden=16, layers=2, k_hop=2, seed=1))
    m.fit(layout_data[:4], layout_data[4:])
    assert len(m.history) == 2 and "valid_tau" in m.history[0]
    p = m.predict(layout_data[5])
    assert p.shape == (12,) and np.isfinite(p).all()
    path = m.save(tmp_path / "m.pt")
    m2 = CostModel.load(path)
    np.testing.assert_allclose(m2.predict(layout_data[5]), p, rtol=1e-5, atol=1e-6)
    assert "trained 2 epochs" in repr(m2)
    with pytest.raises(PerfError, match="tile graph given to a layout model"):
        m.predict(make_tile())


def test_checkpoint_errors(tmp_path, layout_data):
    m = CostModel(ModelConfig(kind="layout", epochs=1, hidden=8, layers=1)).fit(layout_data[:2])
    path = m.save(tmp_path / "m.pt")
    ck = torch.load(path, weights_only=False)
    ck["feature_version"] = 999
    torch.save(ck, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="feature version 999"):
        CostModel.load(tmp_path / "old.pt")
    (tmp_path / "junk.pt").write_bytes(b"nope")
    with pytest.raises(CheckpointError, match="not a readable"):
        CostModel.load(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        CostModel.load(tmp_path / "missing.pt")


def test_propagated_layout_option(layout_data):
    m = CostModel(ModelConfig(kind="layout", epochs=1, hidden=8, layers=1, propagate_layout=True))
    m.fit(layout_data[:2])
    p = m.prepare(layout_data[0])
    assert p.fmt.shape == (12, p.n) and int(p.fmt.max()) <= 2
    assert m.predict(layout_data[0]).shape == (12,)


@pytest.mark.parametrize("join", ["early", "late"])
def test_tile_model_trains(join, make_tile):
    recs = [make_tile(f"t{i}", seed=i) for i in range(3)]
    m = CostModel(ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, join=join, loss="hinge", mse_weight=0.1))
    m.fit(recs)
    assert m.predict(recs[0]).shape == (7,)


def test_gnn_learns_a_learnable_space(layout_data):
    m = CostModel(ModelConfig(kind="layout", epochs=60, hidden=32, layers=2, configs_per_step=12, seed=0))
    comp = compare({"gnn": m, "random": RandomBaseline()}, layout_data[:4], layout_data[4:])
    assert comp.scores["gnn"].mean("kendall_tau") > 0.5
    assert "| gnn |" in comp.to_markdown()
    assert "<td>gnn</td>" in comp._repr_html_()


def test_baselines_shapes_and_default(layout_data, tile_record, make_tile):
    rec = layout_data[0]
    assert DefaultBaseline().predict(rec).argmin() == 0
    assert AnalyticalBaseline().predict(rec).shape == (12,)
    assert AnalyticalBaseline().predict(tile_record).shape == (7,)
    lg = LightGBMBaseline(n_estimators=20).fit(layout_data[:4])
    assert lg.predict(layout_data[5]).shape == (12,)
    lt = LightGBMBaseline(n_estimators=10).fit([make_tile(f"t{i}", seed=i) for i in range(3)])
    assert lt.predict(tile_record).shape == (7,)


def _learnable_tiles(make_tile, n_graphs=8, c=16):
    """Runtime = |log2(tj) - 3|: the best tile has tj = 8 in every kernel, whatever the node features."""
    recs = []
    for i in range(n_graphs):
        rec = make_tile(f"lt{i}", c=c, seed=100 + i)
        rng = np.random.default_rng(i)
        cf = np.zeros((c, 24), dtype=np.float32)
        cf[:, :3] = 2.0 ** rng.integers(0, 8, (c, 3))
        cf[:, 6], cf[:, 7] = cf[:, :3].sum(1), cf[:, :3].prod(1)
        rt = 1000 * (1 + np.abs(np.log2(cf[:, 1]) - 3)) + rng.integers(0, 50, c)
        recs.append(replace(rec, config_feat=cf, config_runtime=rt.astype(np.int64)))
    return recs


def test_tile_config_normalisation_is_fitted_and_saved(tmp_path, make_tile):
    recs = _learnable_tiles(make_tile, 3, 8)
    m = CostModel(ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, join="both", cfg_norm=True, cfg_layers=3))
    m.fit(recs)
    z = np.concatenate([r.config_matrix() for r in recs]).astype(np.float64)
    z = np.sign(z) * np.log1p(np.abs(z))
    np.testing.assert_allclose(m.net.cfg_mean.numpy(), z.mean(0), rtol=1e-5, atol=1e-5)
    assert float(m.net.cfg_std[1]) == pytest.approx(z[:, 1].std(), rel=1e-5)
    assert float(m.net.cfg_std[3]) == 1.0  # a constant column is not divided by 0
    assert sum(isinstance(x, torch.nn.Linear) for x in m.net.cfg_proj) == 3
    path = m.save(tmp_path / "t.pt")
    np.testing.assert_allclose(CostModel.load(path).predict(recs[0]), m.predict(recs[0]), rtol=1e-5, atol=1e-6)


def test_tile_early_stopping_holds_out_training_graphs_only(make_tile):
    recs = _learnable_tiles(make_tile, 5, 8)
    m = CostModel(ModelConfig(kind="tile", epochs=3, hidden=8, layers=1, early_stop_frac=0.2))
    seen = []
    orig = m.prepare
    m.prepare = lambda r: seen.append(r.name) or orig(r)  # type: ignore[method-assign]
    m.fit(recs)
    assert len(m.history) == 3 and "valid_tau" in m.history[0] and "valid_kaggle" in m.history[0]
    assert set(seen) == {r.name for r in recs}  # 4 fitted + 1 validation graph, nothing else
    with pytest.raises(PerfError, match="early_stop_frac"):
        ModelConfig(kind="tile", early_stop_frac=1.0)
    with pytest.raises(PerfError, match="join"):
        ModelConfig(kind="tile", join="middle")


def test_tile_ensemble_saves_and_loads_every_member(tmp_path, make_tile):
    recs = _learnable_tiles(make_tile, 3, 8)
    m = CostModel(ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, join="late", cfg_norm=True, ensemble=3))
    m.fit(recs)
    assert len(m.members) == 2 and m.config.ensemble == 3
    p = m.predict(recs[0])
    assert p.shape == (8,) and abs(p.mean()) < 1e-9  # mean of standardised member costs
    m2 = CostModel.load(m.save(tmp_path / "e.pt"))
    assert len(m2.members) == 2
    np.testing.assert_allclose(m2.predict(recs[0]), p, rtol=1e-5, atol=1e-6)


def test_tile_model_finds_the_best_tile_on_unseen_kernels(make_tile):
    from opgraph.perf.metrics import kendall_tau, slowdown_at_k

    recs = _learnable_tiles(make_tile, 8, 16)
    cfg = ModelConfig(
        kind="tile",
        epochs=30,
        hidden=16,
        layers=1,
        join="late",
        cfg_norm=True,
        cfg_layers=3,
        graphs_per_step=1,
        lr=5e-3,
    )
    m = CostModel(cfg).fit(recs[:6])
    for r in recs[6:]:
        assert slowdown_at_k(m.predict(r), r.target_runtime(), 5) < 0.1
        assert kendall_tau(m.predict(r), r.target_runtime()) > 0.5
