"""The GNN's late-joined priors: per-graph standardised hints (hint_norm), tile-fit hints, the estimate-only set."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch_geometric")
import torch  # noqa: E402

from opgraph.perf import baselines as bl  # noqa: E402
from opgraph.perf.baselines import FIT_DIMS, HINT_DIMS, config_hints, tile_extents, tile_fit_features  # noqa: E402
from opgraph.perf.errors import PerfError  # noqa: E402
from opgraph.perf.model import CostModel, ModelConfig, hint_dim  # noqa: E402
from opgraph.perf.tile import KernelSpec, tile_config_row  # noqa: E402

TILES = [None, (16, 1, 16), (4, 2, 4), (1, 16, 8)]


def _odd_bmm(make_tile, with_meta: bool = True):
    """A ViT-like batched matmul (17 tokens) under four tile configs (config 0 = the default schedule)."""
    spec = KernelSpec("batch_matmul", (2, 17, 17, 16), "none", 1, 1)
    rec = make_tile("bmm17", c=len(TILES), seed=1)
    meta = {"kernel": {"op": "batch_matmul", "dims": [2, 17, 17, 16], "epilogue": "none"}} if with_meta else {}
    return replace(rec, config_feat=np.stack([tile_config_row(spec, t) for t in TILES]), measure_meta=meta)


def test_tile_fit_features_flag_tiles_that_leave_a_remainder(make_tile):
    rec = _odd_bmm(make_tile)
    np.testing.assert_array_equal(tile_extents(rec), [17, 17, 16])
    # without the kernel meta the extents come from the default schedule's row (the largest tile of each loop)
    np.testing.assert_array_equal(tile_extents(_odd_bmm(make_tile, with_meta=False)), [17, 17, 16])
    f = tile_fit_features(rec)
    assert f.shape == (len(TILES), FIT_DIMS)
    divides, waste, ratio = f[:, :3], f[:, 3:6], f[:, 6:]
    np.testing.assert_array_equal(divides, [[1, 1, 1], [0, 1, 1], [0, 0, 1], [1, 0, 1]])
    # 17 split by 16: two blocks of 16 cover 32 of which 15 are padding
    np.testing.assert_allclose(waste[1], [15 / 17, 0, 0])
    np.testing.assert_allclose(waste[2], [20 / 17 - 1, 18 / 17 - 1, 0])
    np.testing.assert_allclose(ratio[0], 0.0)
    np.testing.assert_allclose(ratio[3], np.log([17.0, 17 / 16, 2.0]))
    h = config_hints(rec, fit=True)
    assert h.shape == (len(TILES), HINT_DIMS["tile"] + FIT_DIMS)
    np.testing.assert_array_equal(h[:, : HINT_DIMS["tile"]], config_hints(rec))


def test_graph_norm_puts_every_graph_on_the_same_scale(make_layout, monkeypatch):
    rec = make_layout("n", seed=5, c=10)
    base = np.random.default_rng(0).normal(size=(rec.n_configs, HINT_DIMS["layout"]))
    monkeypatch.setattr(bl, "config_hints", lambda r: base)
    cfg = ModelConfig(kind="layout", epochs=1, hidden=8, layers=1, hints=True, hint_set="all", hint_norm="graph")
    side = CostModel(cfg).prepare(rec).side.numpy()
    np.testing.assert_allclose(side.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(side.std(0), 1.0, atol=1e-5)
    # an affine change of one graph's hints (a bigger graph: larger, more spread estimates) does not change them
    monkeypatch.setattr(bl, "config_hints", lambda r: 7.0 * base + 3.0)
    np.testing.assert_allclose(CostModel(cfg).prepare(rec).side.numpy(), side, atol=1e-5)
    # the training-set scaling keeps the graph's own spread
    side_train = CostModel(replace(cfg, hint_norm="train")).prepare(rec).side.numpy()
    np.testing.assert_allclose(side_train.std(0), 7.0 * base.std(0), rtol=1e-5)


def test_estimate_set_reads_only_the_analytical_estimate(make_layout):
    rec = make_layout("e", seed=6)
    cfg = ModelConfig(kind="layout", epochs=1, hidden=8, layers=1, hints=True, hint_set="estimate", hint_norm="graph")
    m = CostModel(cfg).fit([rec])
    side = m.prepare(rec).side.numpy()
    assert hint_dim(cfg) == 1 and side.shape == (rec.n_configs, 1) and m.net.hint_std.shape == (1,)
    est = config_hints(rec)[:, 0]
    np.testing.assert_allclose(side[:, 0], (est - est.mean()) / est.std(), atol=1e-5)


def test_tile_fit_hints_train_save_and_load(tmp_path, make_tile):
    recs = [_odd_bmm(make_tile)] + [replace(make_tile(f"t{i}", seed=i), measure_meta={}) for i in range(3)]
    cfg = ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, join="late", cfg_norm=True, hints=True)
    m = CostModel(replace(cfg, fit_hints=True, hint_norm="graph")).fit(recs)
    assert m.net.hint_std.shape == (HINT_DIMS["tile"] + FIT_DIMS,)
    m2 = CostModel.load(m.save(tmp_path / "fit.pt"))
    assert m2.config.fit_hints and m2.config.hint_norm == "graph"
    np.testing.assert_allclose(m2.predict(recs[0]), m.predict(recs[0]), atol=1e-6)


def test_residual_false_keeps_the_analytical_estimate_an_input_only(make_tile):
    recs = [make_tile(f"r{i}", seed=i) for i in range(2)]
    cfg = ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, join="late", cfg_norm=True, hints=True)
    for residual in (True, False):
        m = CostModel(replace(cfg, residual=residual)).fit(recs)
        before = m.predict(recs[0])
        with torch.no_grad():
            m.net.hint_gain.add_(50.0)
        moved = float(np.abs(m.predict(recs[0]) - before).max())
        assert (moved > 1.0) if residual else (moved == 0.0), (residual, moved)


def test_space_defaults_of_the_hints():
    lay, tile = ModelConfig(kind="layout", hints=True), ModelConfig(kind="tile", hints=True)
    assert (lay.hint_set, lay.hint_norm) == ("analytical", "graph")
    assert (tile.hint_set, tile.hint_norm) == ("all", "train")
    assert hint_dim(lay) == 4
    assert ModelConfig(kind="layout", hint_set="all", hint_norm="train").hint_set == "all"


def test_tile_fit_hints_are_the_tile_default_only():
    assert ModelConfig(kind="tile").fit_hints and not ModelConfig(kind="layout").fit_hints
    assert not ModelConfig(kind="tile").residual and ModelConfig(kind="layout").residual
    assert not ModelConfig(kind="tile", fit_hints=False).fit_hints
    assert hint_dim(ModelConfig(kind="tile", hints=True)) == HINT_DIMS["tile"] + FIT_DIMS


def test_checkpoints_from_before_the_options_load_as_they_were_trained(tmp_path, make_tile):
    recs = [make_tile(f"o{i}", seed=i) for i in range(2)]
    # an old tile model: 52 hint columns and the residual (tile-fit columns and no residual are the tile default)
    cfg = ModelConfig(
        kind="tile",
        epochs=1,
        hidden=8,
        layers=1,
        join="late",
        cfg_norm=True,
        hints=True,
        fit_hints=False,
        residual=True,
    )
    m = CostModel(cfg).fit(recs)
    ck = torch.load(m.save(tmp_path / "m.pt"), weights_only=True)
    for key in ("hint_set", "hint_norm", "fit_hints", "residual"):  # written before the options existed
        del ck["config"][key]
    torch.save(ck, tmp_path / "old.pt")
    old = CostModel.load(tmp_path / "old.pt")
    # whatever the defaults are now, an old checkpoint keeps the 52 training-scaled hint columns it was trained on
    assert (old.config.hint_set, old.config.hint_norm, old.config.fit_hints, old.config.residual) == (
        "all",
        "train",
        False,
        True,
    )
    np.testing.assert_allclose(old.predict(recs[0]), m.predict(recs[0]), atol=1e-6)


def test_bad_prior_options_fail_in_one_line():
    with pytest.raises(PerfError, match="hint_norm must be 'train', 'graph' or 'global'"):
        ModelConfig(hint_norm="kernel")
    with pytest.raises(PerfError, match="fit_hints is a tile option"):
        ModelConfig(kind="layout", fit_hints=True)
    with pytest.raises(PerfError, match="hint_set must be one of all, analytical, estimate"):
        ModelConfig(hint_set="some")
