"""MetaSchedule's XGBoost and MLP cost models as baselines: feature cache, TVM bug work-arounds, error lines."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

HAS_TVM = importlib.util.find_spec("tvm") is not None
HAS_XGB = importlib.util.find_spec("xgboost") is not None
needs_tvm = pytest.mark.skipif(not HAS_TVM, reason="apache-tvm not installed (extra 'tvm')")


def _groups(n_groups: int, size: int, seed: int = 0) -> list[tuple[str, list[np.ndarray], np.ndarray]]:
    """Synthetic workload groups: 2 store rows of 172 features per candidate; runtime grows with column 0."""
    rng = np.random.default_rng(seed)
    out = []
    for g in range(n_groups):
        feats = [rng.random((2, 172)).astype(np.float32) for _ in range(size)]
        secs = np.array([1e-3 * (1.0 + 4.0 * f[:, 0].sum()) for f in feats], dtype=np.float32)
        out.append((f"group{g}", feats, secs))
    return out


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


@needs_tvm
def test_mlp_trains_through_a_batch_of_one_sample(monkeypatch):
    import torch
    from tvm.s_tir.meta_schedule.cost_model import mlp_model

    from opgraph.perf.baselines import fit_metaschedule_mlp, predict_metaschedule_mlp

    orig_forward = mlp_model.SegmentSumMLP.forward
    # the TVM 0.27 bug: a batch of one candidate comes out 0-d (``.squeeze()``) and the loss cannot index it
    out = mlp_model.SegmentSumMLP()(torch.tensor([2], dtype=torch.int32), torch.rand(2, 172))
    assert out.dim() == 0
    with pytest.raises(IndexError):
        mlp_model.lambda_rank_loss(out, torch.tensor(1.0))
    # 6 groups of 77: TVM holds 1 out, the other 5 give 385 = 3 * 128 + 1 candidates, a last batch of one
    groups = _groups(6, 77)
    orig = torch.optim.lr_scheduler.StepLR
    monkeypatch.setattr(torch.optim.lr_scheduler, "StepLR", lambda *a, verbose=None, **kw: orig(*a, **kw))
    bare = mlp_model.MLPModel(trainer=mlp_model.SegmentSumMLPTrainer(mlp_model.TrainerConfig(num_epoch_full=10)))
    for g, feats, secs in groups:
        bare.trainer.state.add_to_group(list(feats), secs, g)
    with pytest.raises(IndexError):  # TVM's own trainer on these groups
        bare.trainer.train_full()
    monkeypatch.undo()

    m = fit_metaschedule_mlp(groups, seed=0, epochs=10)  # the wrapper trains through it
    assert predict_metaschedule_mlp(m, groups[0][1][:1]).shape == (1,)  # and predicts a single candidate
    score = predict_metaschedule_mlp(m, groups[0][1])
    assert score.shape == (77,) and np.isfinite(score).all()
    assert mlp_model.SegmentSumMLP.forward is orig_forward  # TVM's class is left as it was


@needs_tvm
def test_mlp_needs_five_kernels_and_tvm_failures_are_one_line(monkeypatch, make_tile):
    from opgraph.perf import baselines
    from opgraph.perf.errors import PerfError

    with pytest.raises(PerfError, match=">= 5 training kernels.*got 4"):
        baselines.fit_metaschedule_mlp(_groups(4, 3))
    with pytest.raises(PerfError, match="epochs must be >= 10"):
        baselines.fit_metaschedule_mlp(_groups(5, 3), epochs=5)

    def boom(*a, **kw):
        raise RuntimeError("Check failed: (a != nullptr)\nInternalError: boom")

    monkeypatch.setattr(baselines, "metaschedule_features", boom)
    ms = baselines.MetaScheduleBaseline("mlp")
    with pytest.raises(PerfError) as err:
        ms.fit([make_tile()])
    line = str(err.value)
    assert "\n" not in line and line.startswith("MetaSchedule MLP fit: TVM failed (RuntimeError: InternalError: boom)")
    assert "apache-tvm-ffi==0.1.14.post1" in line
    with pytest.raises(PerfError, match="predict before fit"):
        ms.predict(make_tile())


@pytest.mark.skipif(not (HAS_TVM and HAS_XGB), reason="needs apache-tvm and xgboost")
def test_xgb_on_cached_features_ranks_a_held_out_group():
    from opgraph.perf.baselines import fit_metaschedule_xgb, predict_metaschedule_xgb

    groups = _groups(6, 20, seed=1)
    m = fit_metaschedule_xgb(groups[:5], seed=0)
    _, feats, secs = groups[5]
    score = predict_metaschedule_xgb(m, feats)
    assert score.shape == (20,)
    assert _tau(-score, secs) > 0.5  # higher score = faster


def _tile_record(tiles, runtimes):
    from opgraph.perf.tile import KernelSpec, candidate_record

    rec = candidate_record(KernelSpec("matmul", (32, 16, 16), "bias_relu"), tiles)
    return dataclasses.replace(
        rec,
        config_runtime=np.asarray(runtimes, dtype=np.int64),
        config_runtime_normalizers=np.full(len(tiles), 1000, dtype=np.int64),
    )


@pytest.mark.skipif(not (HAS_TVM and HAS_XGB), reason="needs apache-tvm and xgboost")
def test_features_are_extracted_once_and_cached_on_disk(tmp_path, monkeypatch):
    from opgraph.perf import baselines

    rec = _tile_record([None, (4, 4, 2), (8, 8, 4), (16, 16, 16)], [4000, 3000, 2000, 1000])
    f = baselines.metaschedule_features(rec, tmp_path)
    assert len(f.features) == 4 and all(x.shape[1] == 172 and x.dtype == np.float32 for x in f.features)
    assert not np.array_equal(f.features[1], f.features[3])  # the tiles change the TIR features
    assert list(tmp_path.glob("*.npz")) == [tmp_path / f"{rec.name}.npz"]

    def no_tvm(_rec):
        raise AssertionError("extracted again")

    monkeypatch.setattr(baselines, "_extract_features", no_tvm)
    baselines._MS_FEATURES.clear()
    back = baselines.metaschedule_features(rec, tmp_path)  # from the file, TVM not called
    assert back.group == f.group
    assert all(np.array_equal(a, b) for a, b in zip(back.features, f.features))
    other = _tile_record([None, (2, 2, 2), (8, 8, 4), (16, 16, 16)], [4000, 3000, 2000, 1000])  # same name
    with pytest.raises(AssertionError, match="extracted again"):  # other configs: the file's fingerprint differs
        baselines.metaschedule_features(other, tmp_path)
    monkeypatch.undo()

    model = baselines.MetaScheduleBaseline("xgb", cache_dir=tmp_path).fit([rec, other])
    cost = model.predict(rec)
    assert cost.shape == (4,) and np.isfinite(cost).all()
