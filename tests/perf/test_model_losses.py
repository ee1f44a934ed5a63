"""Ranking losses that weigh the top of the order (top-k ListMLE, lambda) and their ModelConfig options."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch_geometric")
import torch  # noqa: E402

from opgraph.perf.errors import PerfError  # noqa: E402
from opgraph.perf.model import CostModel, ModelConfig, lambda_loss, listmle_loss  # noqa: E402


def test_top_k_listmle_ignores_the_order_below_k():
    rt = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    cost = torch.tensor([0.3, -0.2, 0.9, 0.1, 0.5])
    swapped = cost.clone()
    swapped[[3, 4]] = swapped[[4, 3]]  # swap the costs of the two slowest configs
    assert torch.isclose(listmle_loss(cost, rt, 2), listmle_loss(swapped, rt, 2))
    assert not torch.isclose(listmle_loss(cost, rt), listmle_loss(swapped, rt))
    # the first position alone is the softmax cross-entropy of the fastest config
    assert torch.isclose(listmle_loss(cost, rt, 1), torch.logsumexp(-cost, 0) + cost[0])
    assert torch.isclose(listmle_loss(cost, rt, 5), listmle_loss(cost, rt))


def test_lambda_loss_weighs_the_top_and_the_runtime_ratio():
    rt = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0])  # every neighbouring pair is 2x apart
    good = torch.log(rt)
    top = good.clone()
    top[[0, 1]] = top[[1, 0]]
    bottom = good.clone()
    bottom[[3, 4]] = bottom[[4, 3]]
    assert lambda_loss(good, rt) < lambda_loss(bottom, rt) < lambda_loss(top, rt)
    assert lambda_loss(good, rt) < lambda_loss(-good, rt)
    # a pair of nearly equal runtimes barely counts against a pair 2x apart
    near = torch.tensor([1.0, 1.001, 2.0])
    a = lambda_loss(torch.tensor([1.0, 0.0, 2.0]), near)  # swaps the near-equal pair
    b = lambda_loss(torch.tensor([0.0, 2.0, 1.0]), near)  # swaps a 2x pair
    assert a < b


def test_config_rejects_unknown_losses_and_bad_top_k():
    with pytest.raises(PerfError, match="loss"):
        ModelConfig(loss="softmax")
    with pytest.raises(PerfError, match="top_k"):
        ModelConfig(loss="listmle_top", top_k=0)


@pytest.mark.parametrize("loss", ["listmle_top", "lambda"])
def test_models_train_with_the_top_weighted_losses(tmp_path, make_tile, loss):
    recs = [make_tile(f"t{i}", seed=i) for i in range(3)]
    m = CostModel(ModelConfig(kind="tile", epochs=2, hidden=8, layers=1, join="late", loss=loss, top_k=3))
    m.fit(recs)
    p = m.predict(recs[0])
    assert p.shape == (7,) and np.isfinite(p).all()
    assert np.isfinite(m.history[-1]["loss"]) and m.history[-1]["loss"] > 0
    m2 = CostModel.load(m.save(tmp_path / "m.pt"))
    assert m2.config.loss == loss and m2.config.top_k == 3
    np.testing.assert_allclose(m2.predict(recs[0]), p, rtol=1e-5, atol=1e-6)


def test_checkpoint_without_the_new_options_still_loads(tmp_path, make_tile):
    """A checkpoint written before ``top_k`` existed loads with the default."""
    recs = [make_tile(f"t{i}", seed=i) for i in range(2)]
    m = CostModel(ModelConfig(kind="tile", epochs=1, hidden=8, layers=1)).fit(recs)
    path = m.save(tmp_path / "old.pt")
    ck = torch.load(path, weights_only=True)
    del ck["config"]["top_k"]
    torch.save(ck, path)
    m2 = CostModel.load(path)
    assert m2.config.top_k == ModelConfig().top_k
    np.testing.assert_allclose(m2.predict(recs[0]), m.predict(recs[0]), rtol=1e-5, atol=1e-6)


def test_default_loss_per_space_and_old_checkpoints_keep_theirs(tmp_path, make_tile):
    assert ModelConfig(kind="layout").loss == "listmle_top"
    assert ModelConfig(kind="layout", hints=True).loss == "lambda"  # with the analytical prior (docs/perf.md)
    assert ModelConfig(kind="tile").loss == ModelConfig(kind="tile", hints=True).loss == "listmle"
    assert ModelConfig(kind="layout", hints=True, loss="listmle_top").loss == "listmle_top"
    assert ModelConfig(kind="layout", loss="listmle").loss == "listmle"
    recs = [make_tile(f"t{i}", seed=i) for i in range(2)]
    m = CostModel(ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, loss="hinge")).fit(recs)
    assert CostModel.load(m.save(tmp_path / "h.pt")).config.loss == "hinge"
