"""MetaSchedule's XGBoost as a ``perf train`` model: public-API equivalence, selection, checkpoint round trip."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

HAS_TVM = importlib.util.find_spec("tvm") is not None and importlib.util.find_spec("xgboost") is not None
needs_tvm = pytest.mark.skipif(not HAS_TVM, reason="needs apache-tvm and xgboost (extras 'tvm' and 'perf')")

#: Small kernels of three kinds; runtimes come from :func:`_measure`, a deterministic stand-in for a timer.
KERNELS = [
    ("matmul", (32, 32, 32), "bias_relu"),
    ("matmul", (16, 64, 32), "none"),
    ("batch_matmul", (2, 16, 32, 16), "none"),
    ("matmul", (64, 16, 16), "bias"),
    ("matmul", (32, 16, 64), "bias_relu"),
    ("batch_matmul", (2, 32, 16, 32), "none"),
]


def _measure(rec):
    """Runtime (ns) per config: TVM-free cache model of the tile plus a per-kernel offset (a tiny 'measure')."""
    from opgraph.perf.tile import analytical_tile_cost

    cost = analytical_tile_cost(rec)
    return np.maximum(1e9 * cost / max(float(cost.min()), 1e-30) / 1e3, 1).astype(np.int64)


def _record(i: int, n_tiles: int = 9):
    from opgraph.perf.tile import KernelSpec, candidate_record, tile_space

    op, dims, epi = KERNELS[i]
    spec = KernelSpec(op, dims, epi)
    space = tile_space(spec)
    pick = np.random.default_rng(i).choice(len(space), size=min(n_tiles, len(space)), replace=False)
    rec = candidate_record(spec, [None, *[space[int(j)] for j in sorted(pick)]])
    rt = _measure(rec)
    return dataclasses.replace(
        rec,
        config_runtime=rt,
        config_runtime_normalizers=np.full(len(rt), int(rt[0]), dtype=np.int64),
        measure_meta={**rec.measure_meta, "reference_config": 0},
    )


@pytest.fixture(scope="module")
def records():
    if not HAS_TVM:
        pytest.skip("needs apache-tvm and xgboost (extras 'tvm' and 'perf')")
    return [_record(i) for i in range(len(KERNELS))]


@needs_tvm
def test_training_equals_tvm_public_xgbmodel(records):
    """``PackSumXGB`` (xgboost's public API) gives the scores of ``XGBModel.update`` / ``predict`` (TVM's public)."""
    import tvm
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.cost_model.xgb_model import XGBConfig, XGBModel

    from opgraph.perf.baselines import (
        _kernel_of,
        _run_secs,
        _without_tensor_intrinsics,
        fit_metaschedule_xgb,
        metaschedule_features,
    )
    from opgraph.perf.tile import _te_func, schedule

    train, test = records[:3], records[3]
    public = XGBModel(config=XGBConfig(seed=0, nthread=1), num_warmup_samples=0, adaptive_training=False)

    def context_and_candidates(rec):
        spec = _kernel_of(rec)
        func, _ = _te_func(spec)
        with _without_tensor_intrinsics():
            ctx = ms.TuneContext(
                mod=tvm.IRModule({"main": func}),
                target=tvm.target.Target({"kind": "llvm", "num-cores": 1}),
                num_threads=1,
            )
        args = ms.arg_info.ArgInfo.from_prim_func(func)
        cf = rec.config_matrix()
        tiles = [None] + [(int(cf[i, 0]), int(cf[i, 1]), int(cf[i, 2])) for i in range(1, rec.n_configs)]
        return ctx, [ms.MeasureCandidate(tvm.s_tir.Schedule(schedule(spec, t)), args) for t in tiles]

    for rec in train:  # one update per kernel; adaptive_training=False retrains on everything each time
        ctx, cands = context_and_candidates(rec)
        results = [ms.runner.RunnerResult(run_secs=[float(s)], error_msg=None) for s in _run_secs(rec)]
        public.update(ctx, cands, results)
    ctx, cands = context_and_candidates(test)
    want = public.predict(ctx, cands)

    groups = []
    for rec in train:
        f = metaschedule_features(rec)
        groups.append((f.group, f.features, _run_secs(rec)))
    ours = fit_metaschedule_xgb(groups, seed=0)
    got = ours.predict(metaschedule_features(test).features)
    assert ours.n_rounds == public.booster.num_boosted_rounds()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert np.ptp(got) > 0  # it ranks, not a constant


def _tiny_gnn():
    from opgraph.perf.model import ModelConfig

    return ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, op_dim=4, join="late")


@needs_tvm
def test_auto_keeps_the_best_of_three_and_the_checkpoint_round_trips(tmp_path, records):
    pytest.importorskip("torch_geometric")
    pytest.importorskip("lightgbm")
    from opgraph.perf import baselines
    from opgraph.perf.errors import CheckpointError
    from opgraph.perf.evaluate import evaluate_model, train_and_choose
    from opgraph.perf.model import CostModel, load_ranker, save_metaschedule_xgb

    baselines._MS_FEATURES.clear()  # so that every kernel's features go through the disk cache
    train, valid = records[:4], records[4:]
    chosen, model, sel = train_and_choose(_tiny_gnn(), train, valid, model_type="auto", ms_cache=tmp_path / "ms")
    taus = {n: s["kendall_tau"] for n, s in sel["valid_scores"].items()}
    assert set(taus) == {"GNN", "LightGBM", "MetaSchedule XGBoost", "GNN + LightGBM"} and sel["skipped"] == {}
    best = max(taus.values())
    assert taus[chosen] == best  # the highest validation tau is kept
    assert len(list((tmp_path / "ms").glob("*.npz"))) == len(records)  # features cached per kernel
    assert taus["MetaSchedule XGBoost"] > 0.1  # better than chance from 4 kernels of 10 configs

    _, xgbm, sel2 = train_and_choose(_tiny_gnn(), train, valid, model_type="metaschedule-xgb")
    assert sel2["chosen"] == "MetaSchedule XGBoost" and list(sel2["valid_scores"]) == ["MetaSchedule XGBoost"]
    path = save_metaschedule_xgb(xgbm, tmp_path / "x.pt", selection=sel2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ms", "x.pt"]  # one file, no temporary left beside it
    back = load_ranker(path)
    assert back.kind == "tile" and back.selection["chosen"] == "MetaSchedule XGBoost"
    for rec in valid:  # the loaded model ranks exactly as the one that was saved
        np.testing.assert_array_equal(back.predict(rec), xgbm.predict(rec))
    assert evaluate_model("x", back, valid).mean("kendall_tau") == pytest.approx(taus["MetaSchedule XGBoost"])
    with pytest.raises(CheckpointError, match="metaschedule-xgb model, not a GNN"):
        CostModel.load(path)


@needs_tvm
def test_damaged_or_missing_checkpoint_is_one_line_naming_the_path(tmp_path, records):
    import io
    import zipfile

    from opgraph.perf.baselines import MetaScheduleBaseline
    from opgraph.perf.errors import CheckpointError
    from opgraph.perf.model import XGB_BOOSTER, XGB_META, load_ranker, save_metaschedule_xgb

    m = MetaScheduleBaseline("xgb").fit(records[:2])
    path = save_metaschedule_xgb(m, tmp_path / "x.pt")
    good = path.read_bytes()

    def rewrite(members):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for k, v in members.items():
                zf.writestr(k, v)
        path.write_bytes(buf.getvalue())

    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    cases = {
        "no such checkpoint": lambda: path.unlink(),
        "damaged": lambda: path.write_bytes(good[:-60] + bytes(60 * [7])),
        f"no {XGB_BOOSTER}": lambda: rewrite({XGB_META: members[XGB_META]}),
        "not an XGBoost model": lambda: rewrite({**members, XGB_BOOSTER: b"{not ubjson"}),
        "not valid JSON": lambda: rewrite({**members, XGB_META: b"{"}),
        "feature version": lambda: rewrite(
            {**members, XGB_META: members[XGB_META].replace(b'"feature_version": ', b'"feature_version": 9')}
        ),
    }
    for want, damage in cases.items():
        path.write_bytes(good)
        damage()
        with pytest.raises(CheckpointError) as err:
            load_ranker(path)
        line = str(err.value)
        assert want in line and str(path) in line and "\n" not in line, line
    path.write_bytes(good)
    assert load_ranker(path).predict(records[2]).shape == (records[2].n_configs,)


@needs_tvm
def test_skipped_without_kernel_specs_and_explicit_type_fails_with_the_reason(records):
    pytest.importorskip("torch_geometric")
    pytest.importorskip("lightgbm")
    from opgraph.perf.errors import PerfError
    from opgraph.perf.evaluate import train_and_choose

    bare = [dataclasses.replace(r, measure_meta={}) for r in records]  # like the official TpuGraphs tile data
    chosen, _, sel = train_and_choose(_tiny_gnn(), bare[:4], bare[4:], model_type="auto")
    assert set(sel["valid_scores"]) == {"GNN", "LightGBM", "GNN + LightGBM"}
    assert chosen in ("GNN", "LightGBM", "GNN + LightGBM")
    assert "measure_meta['kernel']" in sel["skipped"]["MetaSchedule XGBoost"]
    with pytest.raises(PerfError, match="metaschedule-xgb: cannot train it: 6 of 6 graphs"):
        train_and_choose(_tiny_gnn(), bare[:4], bare[4:], model_type="metaschedule-xgb")


@needs_tvm
def test_cli_train_keeps_xgboost_when_it_wins_then_rank_and_eval_load_it(tmp_path, records, monkeypatch):
    """The other candidates are made to rank backwards: auto must keep and save XGBoost, rank/eval must load it."""
    pytest.importorskip("torch_geometric")
    pytest.importorskip("lightgbm")
    import json
    import zipfile

    from click.testing import CliRunner

    from opgraph.perf.baselines import LightGBMBaseline
    from opgraph.perf.cli import group
    from opgraph.perf.model import XGB_META, CostModel
    from opgraph.perf.tpugraphs import save_graph

    data = tmp_path / "data"
    for r in records:
        save_graph(r, data / f"{r.name}.npz")
    backwards = lambda self, rec, *a, **kw: -np.asarray(rec.target_runtime(), dtype=np.float64)  # noqa: E731
    monkeypatch.setattr(LightGBMBaseline, "predict", backwards)
    monkeypatch.setattr(CostModel, "predict", backwards)
    out = tmp_path / "m.pt"
    args = ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--hidden", "8", "--valid-frac", "0.34"]
    res = CliRunner().invoke(group, [*args, "--ms-cache", str(data / "ms")])
    assert res.exit_code != 0 and "--ms-cache" in str(res.exception) and "outside --data" in str(res.exception)
    res = CliRunner().invoke(group, [*args, "--ms-cache", str(tmp_path / "ms")])
    assert res.exit_code == 0, res.output
    assert "kept MetaSchedule XGBoost" in res.output and "* MetaSchedule XGBoost" in res.output  # the table
    with zipfile.ZipFile(out) as zf:  # XGBoost's UBJSON + our JSON, no pickle
        meta = json.loads(zf.read(XGB_META))
        assert (
            sorted(zf.namelist()) == ["booster.ubj", XGB_META] and meta["selection"]["chosen"] == "MetaSchedule XGBoost"
        )
    monkeypatch.undo()

    res = CliRunner().invoke(group, ["rank", "--model", str(out), "--top", "3", str(data / f"{records[0].name}.npz")])
    assert res.exit_code == 0, res.output
    assert "Kendall tau against the measured runtimes" in res.output
    res = CliRunner().invoke(group, ["eval", "--model", str(out), "--data", str(data), "--no-baselines"])
    assert res.exit_code == 0 and "MetaSchedule XGBoost" in res.output, res.output

    bare = tmp_path / "bare"
    for r in records:
        save_graph(dataclasses.replace(r, measure_meta={"reference_config": 0}), bare / f"{r.name}.npz")
    res = CliRunner().invoke(group, [*args[:2], str(bare), *args[3:], "--model-type", "lightgbm"])
    assert res.exit_code == 0 and "skipped" not in res.output, res.output
    res = CliRunner().invoke(group, [*args[:2], str(bare), *args[3:]])
    assert res.exit_code == 0 and "skipped MetaSchedule XGBoost: 6 of 6 graphs" in res.output, res.output


@needs_tvm
def test_tune_tile_ranks_with_the_loaded_model(tmp_path, records):
    """``tune_tile`` measures the loaded XGBoost model's top candidate first (a busy-loop runner, no timing)."""
    from opgraph.perf.baselines import MetaScheduleBaseline
    from opgraph.perf.measure import MeasureSettings
    from opgraph.perf.model import load_ranker, save_metaschedule_xgb
    from opgraph.perf.tile import KernelSpec, candidate_record
    from opgraph.perf.tune import tune_tile

    class Runner:
        compile_s = 0.0

        def thunk(self, tile):
            return lambda: sum(range(100))

    ranker = load_ranker(save_metaschedule_xgb(MetaScheduleBaseline("xgb").fit(records[:4]), tmp_path / "x.pt"))
    spec = KernelSpec("matmul", (32, 32, 16), "bias_relu")
    cands = [(4, 8, 4), (8, 8, 8), (8, 16, 4), (16, 16, 16), (2, 4, 2), (32, 32, 16), (1, 1, 1), (4, 4, 4)]
    fast = MeasureSettings(rounds=2, reps=1, warmup=1)
    res = tune_tile(spec, ranker, candidates=cands, runner=Runner(), settings=fast, race_rounds=2, search="screen")
    cost = ranker.predict(candidate_record(spec, [None, *cands]))
    assert res.n_measured == 2 and tuple(res.measured[1].choice) == cands[int(np.argmin(cost[1:]))]


def test_without_tvm_auto_skips_xgboost_with_one_line_and_the_explicit_type_fails(monkeypatch, make_tile):
    """Runs whether or not TVM is installed: TVM is hidden from ``find_spec``."""
    pytest.importorskip("torch_geometric")
    pytest.importorskip("lightgbm")
    from opgraph.perf.errors import PerfError
    from opgraph.perf.evaluate import train_and_choose

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tvm" else real(name, *a))
    kernel = {"op": "matmul", "dims": [16, 16, 16], "epilogue": "none", "stride": 1, "groups": 1}
    recs = [dataclasses.replace(make_tile(f"k{i}", c=6, seed=i), measure_meta={"kernel": kernel}) for i in range(4)]
    _, _, sel = train_and_choose(_tiny_gnn(), recs[:3], recs[3:], model_type="auto")
    assert set(sel["valid_scores"]) == {"GNN", "LightGBM", "GNN + LightGBM"}
    assert sel["skipped"] == {"MetaSchedule XGBoost": "Apache TVM is not installed (`pip install 'opgraph[tvm]'`)"}
    with pytest.raises(PerfError, match=r"cannot train it: Apache TVM is not installed"):
        train_and_choose(_tiny_gnn(), recs[:3], recs[3:], model_type="metaschedule-xgb")
