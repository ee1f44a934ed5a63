"""Leave-one-family-out splitting and the GNN-or-LightGBM choice of ``opgraph perf train`` (synthetic records)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from opgraph.perf.evaluate import choose_model, family_of, leave_one_family_out
from opgraph.perf.metrics import CollectionScore, GraphScore


def _named(make, names, **kw):
    return [make(n, seed=i, **kw) for i, n in enumerate(names)]


def test_family_of_lookup_order(make_tile):
    r = make_tile("hf_resnet_small_x1p5")
    assert family_of(r) == "resnet"
    assert family_of(r, {"hf_resnet_small_x1p5": "cnn"}) == "cnn"
    assert family_of(replace(r, measure_meta={"zoo": {"family": "regnet"}})) == "regnet"
    assert family_of(replace(r, measure_meta={"family": "vit", "zoo": {"family": "regnet"}})) == "vit"
    assert family_of(make_tile("mobilenet_s3")) == "mobilenet"


def test_leave_one_family_out_holds_out_each_family_once(make_layout):
    names = ["hf_resnet_tiny", "hf_resnet_small", "hf_bert_tiny", "hf_gpt2_tiny", "hf_gpt2_small", "vgg_s1"]
    recs = _named(make_layout, names)
    folds = list(leave_one_family_out(recs))
    assert [f for f, _, _ in folds] == ["bert", "gpt2", "resnet", "vgg"]
    seen = []
    for fam, train, test in folds:
        assert test and all(family_of(r) == fam for r in test)
        assert all(family_of(r) != fam for r in train)
        assert len(train) + len(test) == len(recs)
        seen += [r.name for r in test]
    assert sorted(seen) == sorted(names)  # every graph tested exactly once


def test_leave_one_family_out_uses_the_map_and_needs_two_families(make_layout):
    recs = _named(make_layout, ["a", "b", "c"])
    fams = {"a": "x", "b": "y", "c": "x"}
    folds = {f: ([r.name for r in tr], [r.name for r in te]) for f, tr, te in leave_one_family_out(recs, fams)}
    assert folds == {"x": (["b"], ["a", "c"]), "y": (["a", "c"], ["b"])}
    with pytest.raises(ValueError, match="two families"):
        list(leave_one_family_out(recs, {"a": "x", "b": "x", "c": "x"}))
    assert [f for f, _, _ in leave_one_family_out(recs, fams, min_train=2)] == ["y"]


def _score(name, taus, slow5):
    g = [GraphScore(f"g{i}", t, 0.5, {1: s, 5: s, 10: s}, 1.0, 8) for i, (t, s) in enumerate(zip(taus, slow5))]
    return CollectionScore(name, "tile", g)


def test_choose_model_prefers_tau_then_slowdown():
    a, b, c = _score("a", [0.2, 0.4], [0.1, 0.1]), _score("b", [0.5, 0.3], [0.3, 0.3]), _score("c", [0.1], [0.0])
    assert choose_model({"a": a, "b": b, "c": c}) == "b"  # mean tau 0.4 beats 0.3 and 0.1
    tie = _score("t", [0.5, 0.3], [0.05, 0.05])  # same tau as b, lower slowdown@5
    assert choose_model({"b": b, "t": tie}) == "t"
    assert choose_model({"t": tie, "t2": tie}) == "t"  # exact tie: the first listed
    with pytest.raises(ValueError):
        choose_model({})


def _learnable_tile(make_tile, name, seed):
    """A tile record whose runtime is a fixed function of config column 0 (LightGBM learns it from one graph)."""
    r = make_tile(name, c=12, seed=seed)
    cf = np.asarray(r.config_feat)
    return replace(r, config_runtime=(1000 + 50 * cf[:, 0]).astype(np.int64))


def test_train_and_choose_keeps_the_better_and_round_trips(tmp_path, make_tile):
    pytest.importorskip("torch_geometric")
    pytest.importorskip("lightgbm")
    from opgraph.perf.errors import CheckpointError
    from opgraph.perf.evaluate import evaluate_model, train_and_choose
    from opgraph.perf.model import CostModel, ModelConfig, load_ranker, save_lightgbm

    train = [_learnable_tile(make_tile, f"t{i}", i) for i in range(4)]
    valid = [_learnable_tile(make_tile, f"v{i}", 10 + i) for i in range(2)]
    cfg = ModelConfig(kind="tile", epochs=1, hidden=8, layers=1, op_dim=4, join="late")
    chosen, model, sel = train_and_choose(cfg, train, valid, model_type="auto")
    taus = {n: s["kendall_tau"] for n, s in sel["valid_scores"].items()}
    assert set(taus) == {"GNN", "LightGBM", "GNN + LightGBM"} and sel["valid_graphs"] == ["v0", "v1"]
    ranks = {n: row["mean rank"] for n, row in sel["table"].items()}  # the default rule: the lowest mean rank
    assert sel["select_by"] == "rank" and ranks[chosen] == min(ranks.values())
    assert taus["LightGBM"] > 0.5  # runtime is monotone in a config column: the trees find it
    assert model.selection["chosen"] == chosen

    _, lgbm, sel2 = train_and_choose(cfg, train, valid, model_type="lightgbm")
    assert sel2["chosen"] == "LightGBM" and list(sel2["valid_scores"]) == ["LightGBM"]
    path = save_lightgbm(lgbm, tmp_path / "l.pt", selection=sel2)
    back = load_ranker(path)
    assert back.kind == "tile" and back.selection["chosen"] == "LightGBM"
    np.testing.assert_allclose(back.predict(valid[0]), lgbm.predict(valid[0]))
    assert evaluate_model("x", back, valid).mean("kendall_tau") == pytest.approx(taus["LightGBM"])
    with pytest.raises(CheckpointError, match="lightgbm model"):
        CostModel.load(path)

    chosen3, gnn, sel3 = train_and_choose(cfg, train, [], model_type="auto")
    assert chosen3 == "GNN" and sel3["valid_scores"] == {} and "no validation" in sel3["reason"]
    gnn.save(tmp_path / "g.pt")
    assert load_ranker(tmp_path / "g.pt").selection["chosen"] == "GNN"


def test_metaschedule_baseline_guards(monkeypatch, make_layout):
    import sys
    import types

    from opgraph.perf.baselines import MetaScheduleBaseline, _check_tvm_ffi
    from opgraph.perf.errors import MissingDependencyError, PerfError

    with pytest.raises(PerfError, match="'xgb' or 'mlp'"):
        MetaScheduleBaseline("lgbm")
    with pytest.raises(PerfError, match="tile records"):
        MetaScheduleBaseline("xgb").fit([make_layout()])
    monkeypatch.setitem(sys.modules, "tvm_ffi", types.SimpleNamespace(__version__="0.1.15.post2"))
    with pytest.raises(MissingDependencyError, match="0.1.14.post1"):
        _check_tvm_ffi()
    monkeypatch.setitem(sys.modules, "tvm_ffi", types.SimpleNamespace(__version__="0.1.14.post1"))
    _check_tvm_ffi()  # a release without the segfault passes


def test_compare_families_scores_each_family_on_its_own_graphs(make_tile):
    from opgraph.perf.baselines import DefaultBaseline, RandomBaseline
    from opgraph.perf.evaluate import compare_families

    recs = _named(make_tile, ["hf_vit_tiny", "hf_bert_tiny", "hf_bert_small"])
    out = compare_families({"random": RandomBaseline, "default": DefaultBaseline}, recs)
    assert list(out) == ["bert", "vit"]
    assert [g.graph for g in out["bert"].scores["random"].graphs] == ["hf_bert_tiny", "hf_bert_small"]
    assert [g.graph for g in out["vit"].scores["default"].graphs] == ["hf_vit_tiny"]


def _summary(tau, s1, s5, opa=0.5):
    return {"kendall_tau": tau, "opa": opa, "slowdown@1": s1, "slowdown@5": s5, "slowdown@10": s5 / 2}


def test_rank_rule_does_not_keep_a_tau_winner_that_is_worst_at_the_top():
    from opgraph.perf.evaluate import choose_model, selection_table

    scores = {
        "ens": _summary(0.55, 1.00, 0.20),  # best tau, worst slowdown@1 and @5 (the perf-ens run's case)
        "xgb": _summary(0.50, 0.42, 0.05),
        "lgbm": _summary(0.52, 0.60, 0.06),
    }
    assert choose_model(scores, select_by="tau", kind="tile") == "ens"
    assert choose_model(scores, select_by="rank", kind="tile") == "xgb"  # ranks: ens 1,3,3; xgb 3,1,1; lgbm 2,2,2
    assert choose_model(scores, select_by="slowdown", kind="tile") == "xgb"
    t = selection_table(scores, "tile")
    assert [t[n]["mean rank"] for n in scores] == pytest.approx([7 / 3, 5 / 3, 2.0])
    assert t["ens"]["rank kendall_tau"] == 1 and t["ens"]["rank slowdown@5"] == 3 and t["xgb"]["slowdown@1"] == 0.42


def test_rank_rule_ties_and_layout_k():
    from opgraph.perf.evaluate import choose_model, selection_metrics, selection_table

    assert selection_metrics("layout") == ("kendall_tau", "slowdown@1", "slowdown@10")
    # equal slowdowns share their mean rank; equal mean ranks are broken by tau
    a, b = _summary(0.40, 0.1, 0.02), _summary(0.45, 0.1, 0.02)
    t = selection_table({"a": a, "b": b}, "tile")
    assert t["a"]["rank slowdown@1"] == t["b"]["rank slowdown@1"] == 1.5
    assert choose_model({"a": a, "b": b}, select_by="rank", kind="tile") == "b"
    # layout looks at slowdown@10 (= s5 / 2 here), not @5; a NaN ranks last
    c = {**_summary(0.30, 0.2, 0.5), "slowdown@10": 0.0}
    d = {**_summary(0.31, 0.2, 0.0), "slowdown@10": float("nan")}
    assert choose_model({"c": c, "d": d}, select_by="slowdown", kind="layout") == "c"
    assert choose_model({"c": c, "d": d}, select_by="slowdown", kind="tile") == "d"
    with pytest.raises(ValueError, match="select_by"):
        choose_model({"c": c}, select_by="median")


def test_choose_model_rules_accept_collection_scores():
    a = _score("a", [0.6, 0.6], [0.5, 0.5])  # best tau, worst top
    b = _score("b", [0.5, 0.5], [0.0, 0.0])
    c = _score("c", [0.4, 0.4], [0.1, 0.1])
    assert choose_model({"a": a, "b": b, "c": c}) == "a"  # the default of choose_model stays tau
    assert choose_model({"a": a, "b": b, "c": c}, select_by="rank") == "b"
