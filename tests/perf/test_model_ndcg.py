"""LambdaRank on NDCG@k (``loss="lambda_ndcg"``) and hints joined into the config embedding (``hint_join``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch_geometric")
import torch  # noqa: E402

from opgraph.perf.errors import PerfError  # noqa: E402
from opgraph.perf.model import CostModel, ModelConfig, lambda_ndcg_loss  # noqa: E402


def _ndcg_weight_by_hand(cost: list[float], rt: list[float], k: int) -> np.ndarray:
    """Pair weights |dGain| |dDiscount| / IDCG@k of LambdaRank, from the definition, loop by loop."""
    lr = np.log(rt)
    gain = lr.max() - lr
    pos = np.empty(len(cost))
    pos[np.argsort(cost)] = np.arange(len(cost))
    disc = [1 / np.log2(2 + p) if p < k else 0.0 for p in pos]
    ideal = sorted(gain, reverse=True)[:k]
    idcg = sum(g / np.log2(2 + i) for i, g in enumerate(ideal))
    w = np.zeros((len(cost), len(cost)))
    for i in range(len(cost)):
        for j in range(len(cost)):
            if rt[i] < rt[j]:
                w[i, j] = abs(gain[i] - gain[j]) * abs(disc[i] - disc[j]) / idcg
    return w


def test_lambda_ndcg_matches_its_definition():
    rt = [3.0, 1.0, 8.0, 2.0, 5.0, 1.5]
    cost = [0.2, 0.9, -0.4, 0.1, 1.3, -1.0]
    w = _ndcg_weight_by_hand(cost, rt, 3)
    c = np.asarray(cost)
    pair = np.log1p(np.exp(c[:, None] - c[None, :]))
    want = (w * pair).sum() / w.sum()
    got = lambda_ndcg_loss(torch.tensor(cost, dtype=torch.float64), torch.log(torch.tensor(rt, dtype=torch.float64)), 3)
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_lambda_ndcg_ignores_mistakes_below_the_cut_off():
    rt = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    good = torch.log(rt)  # the true order
    bottom = good.clone()
    bottom[[4, 5]] = bottom[[5, 4]]  # two configs predicted below the top 3 swapped
    top = good.clone()
    top[[0, 3]] = top[[3, 0]]  # the fastest config predicted fourth
    k3 = [float(lambda_ndcg_loss(c, torch.log(rt), 3)) for c in (good, bottom, top)]
    # the swapped pair itself weighs 0 (both below the top 3); it counts only through its pairs with the top 3,
    # so it costs far less than moving the fastest config out of the top 3
    assert _ndcg_weight_by_hand(bottom.tolist(), rt.tolist(), 3)[4, 5] == 0.0
    assert _ndcg_weight_by_hand(bottom.tolist(), rt.tolist(), 6)[4, 5] > 0.0
    assert k3[2] - k3[0] > 20 * abs(k3[1] - k3[0])
    # gradients flow to the costs
    c = top.clone().requires_grad_(True)
    lambda_ndcg_loss(c, torch.log(rt), 3).backward()
    assert c.grad is not None and float(c.grad[3]) < 0 < float(c.grad[0])  # descent lowers the fastest, raises the 4th


def test_models_train_save_and_load_with_lambda_ndcg(tmp_path, make_tile):
    recs = [make_tile(f"t{i}", seed=i) for i in range(3)]
    m = CostModel(ModelConfig(kind="tile", epochs=2, hidden=8, layers=1, join="late", loss="lambda_ndcg", top_k=3))
    m.fit(recs)
    p = m.predict(recs[0])
    assert p.shape == (7,) and np.isfinite(p).all() and m.history[-1]["loss"] > 0
    m2 = CostModel.load(m.save(tmp_path / "m.pt"))
    assert (m2.config.loss, m2.config.top_k) == ("lambda_ndcg", 3)
    np.testing.assert_allclose(m2.predict(recs[0]), p, rtol=1e-5, atol=1e-6)


def _tile_cfg(**over):
    base = dict(kind="tile", epochs=1, hidden=8, layers=1, join="late", cfg_norm=True, hints=True)
    return ModelConfig(**{**base, **over})


def test_hint_join_config_puts_the_hints_into_the_config_embedding(tmp_path, make_tile):
    recs = [make_tile(f"h{i}", seed=i) for i in range(3)]
    pooled = CostModel(_tile_cfg()).fit(recs)
    joined = CostModel(_tile_cfg(hint_join="config", interact=True)).fit(recs)
    h = 8  # the head reads mean, max, config (and with interact the graph x config product); no separate hint slot
    assert pooled.net.head[0].in_features == 4 * h
    assert joined.net.head[0].in_features == 4 * h and joined.config.interact
    p = joined.predict(recs[0])
    # the hints drive the prediction through the config embedding: zeroing the hint MLP changes it
    with torch.no_grad():
        for prm in joined.net.hint_mlp.parameters():
            prm.zero_()
    assert float(np.abs(joined.predict(recs[0]) - p).max()) > 1e-6
    m = CostModel(_tile_cfg(hint_join="config")).fit(recs)
    m2 = CostModel.load(m.save(tmp_path / "j.pt"))
    assert m2.config.hint_join == "config"
    np.testing.assert_allclose(m2.predict(recs[1]), m.predict(recs[1]), atol=1e-6)


def test_hint_join_is_checked_and_old_checkpoints_join_pooled(tmp_path, make_tile):
    with pytest.raises(PerfError, match="hint_join"):
        ModelConfig(kind="tile", hint_join="nodes")
    with pytest.raises(PerfError, match="hint_join"):
        ModelConfig(kind="layout", hints=True, hint_join="config")
    with pytest.raises(PerfError, match="hint_join"):
        ModelConfig(kind="tile", join="early", hints=True, hint_join="config")
    recs = [make_tile(f"o{i}", seed=i) for i in range(2)]
    m = CostModel(replace(_tile_cfg(), hint_join="pooled")).fit(recs)
    ck = torch.load(m.save(tmp_path / "m.pt"), weights_only=True)
    del ck["config"]["hint_join"]  # written before the option existed
    torch.save(ck, tmp_path / "old.pt")
    old = CostModel.load(tmp_path / "old.pt")
    assert old.config.hint_join == "pooled"
    np.testing.assert_allclose(old.predict(recs[0]), m.predict(recs[0]), atol=1e-6)


def test_global_hint_norm_keeps_each_kernels_level(tmp_path, make_tile):
    recs = [make_tile(f"g{i}", seed=i) for i in range(3)]
    with pytest.raises(PerfError, match="hint_norm"):
        ModelConfig(kind="tile", hints=True, hint_norm="kernel")
    m = CostModel(_tile_cfg(hint_norm="global")).fit(recs)
    side = m.prepare(recs[0]).side.numpy()
    raw = CostModel._hints(recs[0], replace(m.config, hint_norm="train")).numpy()  # centred per graph
    # not centred: the graph's own level stays, and centring it gives the per-graph hints back
    assert float(np.abs(side.mean(0)).max()) > 1e-3
    np.testing.assert_allclose(side - side.mean(0), raw, atol=1e-5)
    # the training mean and std are fitted and saved with the weights
    allside = np.concatenate([m.prepare(r).side.numpy() for r in recs])
    np.testing.assert_allclose(m.net.hint_mean.numpy(), allside.mean(0), rtol=1e-4, atol=1e-5)
    m2 = CostModel.load(m.save(tmp_path / "g.pt"))
    assert m2.config.hint_norm == "global"
    np.testing.assert_allclose(m2.net.hint_mean.numpy(), m.net.hint_mean.numpy())
    np.testing.assert_allclose(m2.predict(recs[2]), m.predict(recs[2]), atol=1e-6)


def test_fast_sampling_draws_the_fast_configs_more_often(make_tile):
    from opgraph.perf.model import _sample_configs

    rank = np.random.default_rng(3).permutation(32)
    # 0: the uniform draw of before, number for number
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(_sample_configs(a, rank, 16, 0.0), b.choice(32, size=16, replace=False))
    rng = np.random.default_rng(0)
    counts = np.zeros(32)
    for _ in range(400):
        idx = _sample_configs(rng, rank, 16, 0.25)
        assert len(set(idx.tolist())) == 16
        counts[idx] += 1
    by_rank = counts[np.argsort(rank)]  # how often the fastest, second fastest ... config was drawn
    assert by_rank[:4].min() > 0.9 * 400 and by_rank[-4:].max() < 0.35 * 400
    with pytest.raises(PerfError, match="fast_sampling"):
        ModelConfig(fast_sampling=-1.0)
    recs = [make_tile(f"f{i}", seed=i) for i in range(2)]
    m = CostModel(_tile_cfg(hints=False, configs_per_step=4, fast_sampling=0.25)).fit(recs)
    assert np.isfinite(m.predict(recs[0])).all()


def test_ndcg_weight_adds_the_lambda_ndcg_term(make_tile, monkeypatch):
    import opgraph.perf.model as pm

    with pytest.raises(PerfError, match="ndcg_weight"):
        ModelConfig(ndcg_weight=-0.5)
    calls = []
    real = pm.lambda_ndcg_loss

    def spy(cost, log_runtime, k):
        calls.append(k)
        return real(cost, log_runtime, k)

    monkeypatch.setattr(pm, "lambda_ndcg_loss", spy)
    recs = [make_tile(f"n{i}", seed=i) for i in range(2)]
    CostModel(_tile_cfg(epochs=1)).fit(recs)
    assert calls == []
    m = CostModel(_tile_cfg(epochs=1, ndcg_weight=0.5, top_k=4)).fit(recs)
    assert calls and set(calls) == {4} and m.config.loss == "listmle"
