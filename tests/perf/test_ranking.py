from __future__ import annotations

import numpy as np
import pytest

from opgraph.perf.ranking import Ranking, describe_config, kaggle_id, submission_csv, write_submission


def test_kaggle_ids_from_the_official_tree_and_local_files(tmp_path):
    assert kaggle_id("/d/npz_all/npz/layout/xla/random/test/abc.npz", "layout") == "layout:xla:random:abc"
    assert kaggle_id("/d/npz/tile/xla/test/f00.npz", "tile") == "tile:xla:f00"
    assert kaggle_id("out/mine.npz", "layout") == "layout:local:default:mine"
    assert kaggle_id("mine.npz", "tile") == "tile:local:mine"


def test_submission_rows_tile_top5_layout_all(tmp_path):
    rk = [
        Ranking("tile:xla:b", "tile", np.array([6, 5, 4, 3, 2, 1, 0]), np.zeros(7)),
        Ranking("layout:xla:default:a", "layout", np.array([2, 0, 1]), np.zeros(3)),
    ]
    text = submission_csv(rk)
    assert text.splitlines() == ["ID,TopConfigs", "layout:xla:default:a,2;0;1", "tile:xla:b,6;5;4;3;2"]
    p = write_submission(rk, tmp_path / "sub.csv")
    assert p.read_text() == text


def test_duplicate_submission_ids_are_refused_and_nothing_is_written(tmp_path):
    from opgraph.perf.errors import PerfError

    one = Ranking(kaggle_id("a/mine.npz", "tile"), "tile", np.array([1, 0]), np.zeros(2))
    two = Ranking(kaggle_id("b/mine.npz", "tile"), "tile", np.array([0, 1]), np.zeros(2))
    with pytest.raises(PerfError, match="'tile:local:mine' would appear 2 times"):
        write_submission([one, two], tmp_path / "sub.csv")
    assert not (tmp_path / "sub.csv").exists()


def test_describe_configs(make_layout, make_tile):
    lay = make_layout(nc=3, c=4)
    from opgraph.perf.layout import decode_configs

    bits = decode_configs(lay.config_matrix())
    for i in range(4):
        d = describe_config(lay, i)
        letters = "".join("H" if b else "N" for b in bits[i])
        assert d == f"{int(bits[i].sum())}/3 NHWC {letters}"
    i = int(np.flatnonzero((bits.sum(1) > 0) & (bits.sum(1) < 3))[0])
    d = describe_config(lay, i, ["a.conv", "b.conv", "c.conv"])
    assert all((p in d) == bool(b) for p, b in zip(["a.conv", "b.conv", "c.conv"], bits[i]))
    tile = make_tile()
    row = tile.config_matrix([2])[0]
    assert describe_config(tile, 2) == f"tile {int(row[0])}x{int(row[1])}x{int(row[2])}"


def test_rank_cli_prints_configs_and_writes_the_submission(tmp_path, make_layout):
    pytest.importorskip("torch_geometric")
    from click.testing import CliRunner

    from opgraph.perf.cli import group
    from opgraph.perf.model import CostModel, ModelConfig
    from opgraph.perf.tpugraphs import save_graph

    recs = [make_layout(f"g{i}", seed=i) for i in range(3)]
    tree = tmp_path / "layout" / "xla" / "default" / "valid"
    for r in recs:
        save_graph(r, tree / f"{r.name}.npz")
    model = CostModel(ModelConfig(kind="layout", hidden=8, epochs=1)).fit(recs)
    model.save(tmp_path / "m.pt")
    (tmp_path / "net.py").write_text(
        "import torch\n\ndef make():\n"
        "    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 1))\n"
        "    return m, (torch.randn(1, 3, 8, 8),)\n"
    )
    r = CliRunner().invoke(
        group,
        [
            "rank",
            "--model",
            str(tmp_path / "m.pt"),
            "--top",
            "3",
            "--csv",
            str(tmp_path / "sub.csv"),
            "--candidates",
            "4",
            str(tmp_path / "layout"),
            f"{tmp_path / 'net.py'}:make",
        ],
    )
    assert r.exit_code == 0, r.output + repr(r.exception)
    out = r.output
    # whole headers, predicted costs and layouts, not bare indices
    assert "predicted cost" in out and "measured / best" in out and "layout" in out
    assert "layout:xla:default:g0" in out and "NHWC" in out
    assert "(all NCHW)" in out  # the factory's config 0, with module paths known
    rows = (tmp_path / "sub.csv").read_text().splitlines()
    assert rows[0] == "ID,TopConfigs" and len(rows) == 5
    ids = [row.split(",")[0] for row in rows[1:]]
    assert ids == [
        "layout:local:default:net",
        "layout:xla:default:g0",
        "layout:xla:default:g1",
        "layout:xla:default:g2",
    ]
    g0 = next(row for row in rows if row.startswith("layout:xla:default:g0"))
    assert sorted(int(i) for i in g0.split(",")[1].split(";")) == list(range(recs[0].n_configs))
    cost = model.predict(recs[0])
    assert int(g0.split(",")[1].split(";")[0]) == int(np.argmin(cost))
