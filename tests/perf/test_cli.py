from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch_geometric")

from opgraph.perf.cli import group  # noqa: E402
from opgraph.perf.errors import OpgraphError  # noqa: E402
from opgraph.perf.tpugraphs import save_graph  # noqa: E402

FACTORY = """
import torch

def make():
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 1))
    return m, (torch.randn(1, 3, 16, 16),)
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "net.py").write_text(FACTORY)
    return d


def _ok(result):
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_collect_train_eval_rank_tune(workdir):
    r = CliRunner()
    data = workdir / "data"
    out = _ok(
        r.invoke(
            group,
            [
                "collect",
                "--zoo",
                "3",
                "--configs",
                "4",
                "--out",
                str(data),
                "--rounds",
                "2",
                "--reps",
                "1",
                "--module",
                f"{workdir / 'net.py'}:make",
            ],
        )
    )
    assert "4 graphs" in out
    assert len(list(data.glob("*.npz"))) == 4
    model = workdir / "m.pt"
    _ok(r.invoke(group, ["train", "--data", str(data), "--out", str(model), "--epochs", "2", "--hidden", "16"]))
    assert model.is_file()
    out = _ok(r.invoke(group, ["eval", "--model", str(model), "--data", str(data), "--json", str(workdir / "e.json")]))
    assert "noise" in out and (workdir / "e.json").is_file()
    out = _ok(r.invoke(group, ["rank", "--model", str(model), str(data / "net.npz"), "--top", "3"]))
    assert "predicted fastest configs" in out and "Kendall tau" in out
    out = _ok(
        r.invoke(
            group,
            [
                "tune",
                f"{workdir / 'net.py'}:make",
                "--model",
                str(model),
                "--candidates",
                "4",
                "--measure-frac",
                "0.5",
                "--out",
                str(workdir / "tuned.json"),
            ],
        )
    )
    assert "speed-up" in out and "0:" in out
    import json

    assert set(json.loads((workdir / "tuned.json").read_text())["layout"]) == {"0", "2"}


def test_bad_inputs_raise_opgraph_errors(workdir, tmp_path, make_layout):
    r = CliRunner()
    res = r.invoke(group, ["tune", "nofile.py:make", "--model", str(tmp_path / "x.pt")])
    assert isinstance(res.exception, OpgraphError) and "no such checkpoint" in str(res.exception)
    bad = tmp_path / "bad.npz"
    np.savez(
        bad,
        node_feat=np.zeros((3, 7), np.float32),
        node_opcode=np.zeros(3),
        edge_index=np.zeros((0, 2)),
        node_config_ids=np.zeros(1),
        node_config_feat=np.zeros((2, 1, 18)),
        config_runtime=np.ones(2),
    )
    res = r.invoke(group, ["eval", "--model", str(tmp_path / "x.pt"), "--data", str(bad)])
    assert isinstance(res.exception, OpgraphError)
    res = r.invoke(group, ["collect", "--configs", "1", "--out", str(tmp_path)])
    assert res.exit_code == 2
    save_graph(make_layout(), tmp_path / "d" / "g.npz")
    res = r.invoke(group, ["tune", "nofile.py", "--model", str(tmp_path / "x.pt")])
    assert isinstance(res.exception, OpgraphError)


def test_load_factory_errors(tmp_path):
    from opgraph.perf.cli import load_factory

    with pytest.raises(OpgraphError, match="path/to/module.py:factory"):
        load_factory("nocolon")
    (tmp_path / "f.py").write_text("def g():\n    return 3\n")
    with pytest.raises(OpgraphError, match="no function 'h'"):
        load_factory(f"{tmp_path / 'f.py'}:h")
    with pytest.raises(OpgraphError, match="must return"):
        load_factory(f"{tmp_path / 'f.py'}:g")


def test_train_tile_uses_the_tile_design(tmp_path, make_tile):
    data = tmp_path / "tile"
    for i in range(4):
        save_graph(make_tile(f"t{i}", seed=i), data / f"t{i}.npz")
    r = CliRunner()
    _ok(
        r.invoke(
            group,
            ["train", "--data", str(data), "--out", str(tmp_path / "t.pt"), "--epochs", "1", "--hidden", "8"]
            + ["--model-type", "gnn"],
        )
    )
    from opgraph.perf.model import CostModel

    m = CostModel.load(tmp_path / "t.pt")
    c = m.config
    assert (c.join, c.cfg_norm, c.cfg_layers, c.ensemble, c.mse_weight, c.hints) == ("late", True, 3, 5, 0.02, True)
    assert len(m.members) == 4
    out = tmp_path / "e.pt"
    _ok(
        r.invoke(
            group,
            ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--join", "early", "--ensemble", "1"]
            + ["--model-type", "gnn", "--no-hints"],
        )
    )
    assert (CostModel.load(out).config.join, CostModel.load(out).members) == ("early", [])
    assert not CostModel.load(out).config.hints


def test_train_auto_prints_and_saves_the_selection_table(tmp_path, make_tile):
    from opgraph.perf.model import load_ranker

    data = tmp_path / "tile"
    for i in range(6):
        save_graph(make_tile(f"t{i}", seed=i), data / f"t{i}.npz")
    out = tmp_path / "auto.pt"
    res = CliRunner().invoke(
        group,
        ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--hidden", "8", "--ensemble", "1"]
        + ["--valid-frac", "0.4", "--select-by", "slowdown"],
    )
    _ok(res)
    assert "lowest validation slowdown@5" in res.output and "mean rank" in res.output
    sel = load_ranker(out).selection
    assert sel["select_by"] == "slowdown" and {"GNN", "LightGBM", "GNN + LightGBM"} <= set(sel["table"])
    best = min(sel["table"].values(), key=lambda r: r["slowdown@5"])["slowdown@5"]
    assert sel["table"][sel["chosen"]]["slowdown@5"] == best
    assert "* " + sel["chosen"] in res.output
