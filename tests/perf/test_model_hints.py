"""The GNN uses the graph structure, and its late-joined analytical / hand-feature hints (ModelConfig.hints)."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch_geometric")
import torch  # noqa: E402

from opgraph.perf.baselines import FIT_DIMS, HINT_DIMS, AnalyticalBaseline, config_hints  # noqa: E402
from opgraph.perf.errors import CheckpointError  # noqa: E402
from opgraph.perf.metrics import kendall_tau  # noqa: E402
from opgraph.perf.model import CostModel, ModelConfig  # noqa: E402


def _structural_layout(make_layout, seed: int):
    """Runtime depends on a flag of each configurable node's *producer*: only message passing can see it.

    Chain graph (edges ``[i + 1, i]``: node i feeds node i + 1); the configurable nodes 2, 6, 10, 14 carry no
    information themselves; channels-last at a configurable node costs +3 when its producer is flagged, -2 otherwise.
    """
    from opgraph.perf.layout import decode_configs, encode_configs

    rng = np.random.default_rng(seed)
    rec = make_layout(f"s{seed}", n=16, nc=4, c=16, seed=seed)
    ids = np.array([2, 6, 10, 14], dtype=np.int64)
    choices = rng.integers(0, 2, (16, 4))
    feat = np.zeros_like(rec.node_feat)
    flag = rng.integers(0, 2, 4)
    flag[0], flag[1] = 0, 1  # both kinds in every graph
    feat[ids - 1, 50] = flag
    rec = replace(rec, node_feat=feat, node_opcode=np.full(16, 26), node_config_ids=ids)
    rec = replace(rec, node_config_feat=encode_configs(choices))
    ch = decode_configs(rec.config_matrix())
    w = np.where(flag > 0, 3.0, -2.0)
    return replace(rec, config_runtime=(1000 + 100 * ch @ w).astype(np.int64))


def test_gnn_fits_a_target_that_needs_the_graph_structure(make_layout):
    recs = [_structural_layout(make_layout, s) for s in range(8)]
    m = CostModel(ModelConfig(kind="layout", epochs=40, hidden=32, layers=2, configs_per_step=16, seed=0))
    m.fit(recs[:6])
    taus = [kendall_tau(m.predict(r), r.target_runtime()) for r in recs[6:]]
    assert np.mean(taus) > 0.6, taus
    # the same trained network without the edges cannot tell the producers apart
    blind = [replace(r, edge_index=np.zeros((0, 2), dtype=np.int64)) for r in recs[6:]]
    taus_blind = [kendall_tau(m.predict(r), r.target_runtime()) for r in blind]
    assert np.mean(taus_blind) < np.mean(taus) - 0.3, (taus, taus_blind)


def test_config_hints_shapes_and_analytical_column(layout_record, tile_record):
    for rec in (layout_record, tile_record):
        h = config_hints(rec)
        assert h.shape == (rec.n_configs, HINT_DIMS[rec.kind]) and np.isfinite(h).all()
        np.testing.assert_allclose(h[:, 0], np.log(AnalyticalBaseline().predict(rec)))


def test_hints_are_fitted_saved_and_drive_the_prediction(tmp_path, make_layout, monkeypatch):
    """Random runtimes that nothing in the graph explains; one hint column carries their *reverse* order."""
    import opgraph.perf.baselines as bl

    def fake_hints(rec):
        rng = np.random.default_rng(zlib.crc32(rec.name.encode()))
        h = 0.1 * rng.normal(size=(rec.n_configs, HINT_DIMS["layout"]))
        h[:, 3] = -np.log(rec.target_runtime())  # not column 0: no residual shortcut, the MLP must learn it
        return h

    monkeypatch.setattr(bl, "config_hints", fake_hints)
    recs = []
    for s in range(8):
        rec = make_layout(f"r{s}", n=14, nc=4, c=12, seed=s)
        rt = np.random.default_rng(s + 50).permutation(12) * 100 + 1000
        recs.append(replace(rec, config_runtime=rt.astype(np.int64)))
    cfg = ModelConfig(
        kind="layout",
        loss="listmle",
        epochs=30,
        hidden=16,
        layers=1,
        configs_per_step=12,
        graphs_per_step=1,
        lr=5e-3,
        hints=True,
        hint_set="all",
        hint_norm="train",
    )
    m = CostModel(cfg).fit(recs[:6])
    std = m.net.hint_std.numpy()
    assert std.shape == (HINT_DIMS["layout"],) and not np.allclose(std, 1.0)
    taus = [kendall_tau(m.predict(r), r.target_runtime()) for r in recs[6:]]
    assert np.mean(taus) > 0.7, taus
    m2 = CostModel.load(m.save(tmp_path / "h.pt"))
    assert m2.config.hints
    np.testing.assert_allclose(m2.predict(recs[7]), m.predict(recs[7]), rtol=1e-5, atol=1e-6)
    # the same network with the hints shuffled across configs loses the order: the prediction depends on them
    perm = np.random.default_rng(0).permutation(12)
    monkeypatch.setattr(bl, "config_hints", lambda rec: fake_hints(rec)[perm])
    shuffled = [kendall_tau(m.predict(r), r.target_runtime()) for r in recs[6:]]
    assert np.mean(shuffled) < np.mean(taus) - 0.4, (taus, shuffled)
    # without hints the same recipe cannot rank these configs
    plain = CostModel(replace(cfg, hints=False)).fit(recs[:6])
    assert np.mean([kendall_tau(plain.predict(r), r.target_runtime()) for r in recs[6:]]) < np.mean(taus) - 0.4


def test_tile_hints_with_an_ensemble(tmp_path, make_tile):
    recs = [make_tile(f"t{i}", seed=i) for i in range(4)]
    cfg = ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, join="late", cfg_norm=True, ensemble=2, hints=True)
    m = CostModel(cfg).fit(recs)
    # tile hints carry the tile-fit columns by default
    assert all(mm.net.hint_std.shape == (HINT_DIMS["tile"] + FIT_DIMS,) for mm in [m, *m.members])
    np.testing.assert_allclose(
        CostModel.load(m.save(tmp_path / "t.pt")).predict(recs[0]), m.predict(recs[0]), atol=1e-6
    )


def test_old_checkpoints_load_and_newer_ones_fail_in_one_line(tmp_path, make_layout):
    m = CostModel(ModelConfig(kind="layout", epochs=1, hidden=8, layers=1)).fit([make_layout("o", seed=3)])
    path = m.save(tmp_path / "m.pt")
    ck = torch.load(path, weights_only=True)
    del ck["config"]["hints"]  # a checkpoint written before the option existed
    torch.save(ck, tmp_path / "old.pt")
    assert not CostModel.load(tmp_path / "old.pt").config.hints
    ck["config"]["warp_drive"] = True
    torch.save(ck, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="warp_drive are unknown to this opgraph") as e:
        CostModel.load(tmp_path / "new.pt")
    assert "\n" not in str(e.value)


def test_analytical_hint_set_reads_only_the_analytical_columns(make_layout, make_tile):
    from opgraph.perf.errors import PerfError

    rec = make_layout("h", seed=4)
    m = CostModel(ModelConfig(kind="layout", epochs=1, hidden=8, layers=1, hints=True, hint_set="analytical"))
    m.fit([rec])
    assert m.net.hint_std.shape == (4,) and m.prepare(rec).side.shape == (rec.n_configs, 4)
    t = CostModel(ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, hints=True, hint_set="analytical"))
    t.fit([make_tile("h", seed=4)])
    assert t.net.hint_std.shape == (1,)
    with pytest.raises(PerfError, match="hint_set must be"):
        ModelConfig(hint_set="some")
