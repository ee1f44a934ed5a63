"""LightGBM's tile feature sets: the tile-fit columns on request, recorded in the booster, old checkpoints load."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("lightgbm")

from opgraph.perf.baselines import (  # noqa: E402
    FIT_DIMS,
    LGBM_FEATURE_SETS,
    LightGBMBaseline,
    tile_row_features,
)
from opgraph.perf.errors import PerfError  # noqa: E402
from opgraph.perf.metrics import kendall_tau  # noqa: E402

EXTENTS = (12, 17, 20, 24, 28, 40, 48, 56)


def _remainder_kernels(make_tile, n: int, seed: int, c: int = 24) -> list:
    """Kernels whose runtime is set by whether the i tile divides the i loop (extents differ between kernels).

    Config 0 is the default schedule (the tile spans every loop, so :func:`tile_extents` reads the extents from
    it); the others are random power-of-two tiles. No column of :func:`tile_row_features` says whether a tile
    divides its loop: the extent is in no row but the default's.
    """
    rng = np.random.default_rng(seed)
    out = []
    for g in range(n):
        rec = make_tile(f"rk{seed}_{g}", c=c, seed=seed * 100 + g)
        e = np.array([rng.choice(EXTENTS), rng.choice(EXTENTS), 64])
        cf = np.zeros((c, 24), dtype=np.float32)
        cf[0, :3] = e
        cf[1:, :3] = 2.0 ** rng.integers(0, 6, (c - 1, 3))
        cf[:, :3] = np.minimum(cf[:, :3], e)
        cf[:, 6], cf[:, 7] = cf[:, :3].sum(1), cf[:, :3].prod(1)
        remainder = (e[0] % cf[:, 0] != 0) | (e[1] % cf[:, 1] != 0)
        rt = 1000 + 3000 * remainder + rng.integers(0, 100, c)
        out.append(replace(rec, config_feat=cf, config_runtime=rt.astype(np.int64), measure_meta={}))
    return out


def _tau(model, recs) -> float:
    return float(np.mean([kendall_tau(model.predict(r), r.target_runtime()) for r in recs]))


def test_tile_fit_columns_rank_the_tiles_that_leave_a_remainder_last(make_tile):
    train, test = _remainder_kernels(make_tile, 12, 1), _remainder_kernels(make_tile, 4, 2)
    fit = LightGBMBaseline(n_estimators=60, features="tile+fit").fit(train)
    assert fit.feature_set == "tile+fit"
    assert fit.features(test[0]).shape == (24, LGBM_FEATURE_SETS["tile+fit"])
    plain = LightGBMBaseline(n_estimators=60).fit(train)
    assert plain.feature_set == "tile"  # the default (the tune_tile replay: tile+fit lost as its prior)
    assert plain.features(test[0]).shape == (24, LGBM_FEATURE_SETS["tile"])
    tau_fit, tau_plain = _tau(fit, test), _tau(plain, test)
    assert tau_fit > 0.4 and tau_fit > tau_plain + 0.1, (tau_fit, tau_plain)
    for r in test:  # the top pick never leaves a remainder
        assert r.target_runtime()[int(np.argmin(fit.predict(r)))] < 2000


def test_feature_set_travels_with_the_checkpoint(tmp_path, make_tile):
    pytest.importorskip("torch")
    from opgraph.perf.model import load_ranker, save_lightgbm

    train, test = _remainder_kernels(make_tile, 6, 3), _remainder_kernels(make_tile, 1, 4)
    for fs in ("tile+fit", "tile"):
        m = LightGBMBaseline(n_estimators=10, features=fs).fit(train)
        back = load_ranker(save_lightgbm(m, tmp_path / f"{fs}.pt"))
        assert back.feature_set == fs
        np.testing.assert_allclose(back.predict(test[0]), m.predict(test[0]))


def test_a_checkpoint_from_before_the_feature_sets_loads_with_its_columns(tmp_path, make_tile):
    import lightgbm as lgb

    train, test = _remainder_kernels(make_tile, 6, 5), _remainder_kernels(make_tile, 1, 6)
    # what LightGBMBaseline.fit wrote before: tile_row_features only, LightGBM's own column names
    old = lgb.LGBMRanker(objective="lambdarank", n_estimators=10, min_child_samples=2, verbose=-1)
    x = np.vstack([tile_row_features(r) for r in train])
    y = np.concatenate([np.argsort(np.argsort(-r.target_runtime())) for r in train])
    old.fit(x, y, group=[r.n_configs for r in train])
    back = LightGBMBaseline.from_string(old.booster_.model_to_string(), "tile")
    assert back.feature_set == "tile"
    np.testing.assert_allclose(back.predict(test[0]), -old.predict(tile_row_features(test[0])))


def test_feature_set_mismatches_fail_in_one_line(make_tile, make_layout):
    import lightgbm as lgb

    train = _remainder_kernels(make_tile, 4, 7)
    x = np.vstack([tile_row_features(r)[:, : 51 - FIT_DIMS + 4] for r in train])  # 46 columns: no known set
    y = np.concatenate([np.argsort(np.argsort(-r.target_runtime())) for r in train])
    odd = lgb.LGBMRanker(objective="lambdarank", n_estimators=3, min_child_samples=2, verbose=-1)
    odd.fit(x, y, group=[r.n_configs for r in train])
    with pytest.raises(PerfError, match="46 feature columns match no tile feature set") as e:
        LightGBMBaseline.from_string(odd.booster_.model_to_string(), "tile")
    assert "\n" not in str(e.value) and "perf train" in str(e.value)
    with pytest.raises(PerfError, match="features must be one of"):
        LightGBMBaseline(features="tile+extents")
    m = LightGBMBaseline(n_estimators=3, features="tile+fit").fit(train)
    with pytest.raises(PerfError, match="'tile\\+fit' feature set, record .* is a layout graph"):
        m.predict(make_layout())


def test_perf_train_model_type_lightgbm_fit(tmp_path, make_tile, make_layout):
    pytest.importorskip("torch")
    from opgraph.perf.evaluate import train_and_choose
    from opgraph.perf.model import ModelConfig, load_ranker, save_lightgbm

    train, valid = _remainder_kernels(make_tile, 6, 8), _remainder_kernels(make_tile, 2, 9)
    cfg = ModelConfig(kind="tile", epochs=1)
    chosen, m, sel = train_and_choose(cfg, train, valid, model_type="lightgbm-fit")
    assert chosen == "LightGBM + tile-fit" and m.feature_set == "tile+fit" and list(sel["valid_scores"]) == [chosen]
    assert load_ranker(save_lightgbm(m, tmp_path / "f.pt", selection=sel)).feature_set == "tile+fit"
    _, plain, _ = train_and_choose(cfg, train, valid, model_type="lightgbm")
    assert plain.feature_set == "tile"
    with pytest.raises(PerfError, match="lightgbm-fit: tile collections only"):
        train_and_choose(ModelConfig(kind="layout", epochs=1), [make_layout()], [], model_type="lightgbm-fit")
