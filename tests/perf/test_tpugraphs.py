from __future__ import annotations

import json

import numpy as np
import pytest

from opgraph.perf.errors import SchemaError
from opgraph.perf.tpugraphs import (
    LazyConfigFeat,
    TpuGraphsDataset,
    find_collections,
    load_graph,
    load_records,
    save_graph,
)


def _official_layout(path, *, edges_t=False, int32=True, drop=None, bad=None):
    """A file as the official release writes it (README dtypes), optionally broken."""
    rng = np.random.default_rng(1)
    n, nc, c = 10, 2, 5
    arr = {
        "node_feat": rng.random((n, 140)).astype(np.float32),
        "node_opcode": rng.integers(0, 120, n).astype(np.uint8),
        "edge_index": np.array([[i + 1, i] for i in range(n - 1)], dtype=np.int32 if int32 else np.int64),
        "node_config_ids": np.array([2, 7], dtype=np.int32),
        "node_config_feat": rng.integers(-1, 6, (c, nc, 18)).astype(np.float32),
        "config_runtime": rng.integers(10**6, 10**7, c).astype(np.int32),
        "node_splits": np.array([[0, 5]], dtype=np.int64),
    }
    if edges_t:
        arr["edge_index"] = arr["edge_index"].T.copy()
    if drop:
        del arr[drop]
    if bad:
        arr[bad[0]] = bad[1]
    np.savez(path, **arr)
    return arr


def test_official_layout_file_reads_with_any_int_dtype_and_transposed_edges(tmp_path):
    arr = _official_layout(tmp_path / "a.npz", edges_t=True)
    rec = load_graph(tmp_path / "a.npz")
    assert rec.kind == "layout" and rec.n_nodes == 10 and rec.n_configs == 5
    assert rec.edge_index.shape == (9, 2) and rec.edge_index.dtype == np.int64
    assert np.array_equal(rec.edge_index[:, 0], np.arange(1, 10))
    assert isinstance(rec.node_config_feat, LazyConfigFeat)
    np.testing.assert_array_equal(rec.node_config_feat[[3, 1]], arr["node_config_feat"][[3, 1]])
    np.testing.assert_array_equal(np.asarray(rec.node_config_feat), arr["node_config_feat"])
    np.testing.assert_array_equal(rec.node_splits, [0, 5])


def test_lazy_rows_from_compressed_member(tmp_path, make_layout):
    rec = make_layout(c=9)
    save_graph(rec, tmp_path / "g.npz", compress=True)
    lazy = load_graph(tmp_path / "g.npz").node_config_feat
    full = rec.config_matrix()
    np.testing.assert_array_equal(lazy[4], full[4])
    np.testing.assert_array_equal(lazy[2:6], full[2:6])
    np.testing.assert_array_equal(lazy[np.array([8, 0, 3])], full[[8, 0, 3]])


@pytest.mark.parametrize(
    ("drop", "bad", "match"),
    [
        ("node_feat", None, "node_feat"),
        ("config_runtime", None, "config_runtime"),
        (None, ("node_feat", np.zeros((10, 139), np.float32)), r"node_feat.*\(n, 140\)"),
        (None, ("node_config_feat", np.zeros((5, 3, 18), np.float32)), r"node_config_feat.*\(c, 2, 18\)"),
        (None, ("config_runtime", np.zeros(4, np.int64)), r"config_runtime.*\(5,\)"),
        (None, ("edge_index", np.zeros((9, 3), np.int64)), "edge_index"),
        (None, ("edge_index", np.array([[1, 99]], np.int64)), "edge_index"),
        (None, ("edge_index", np.array([[1, 10]], np.int64)), "edge_index"),  # n = 10 nodes: ids 0..9
        (None, ("edge_index", np.array([[10, 1]], np.int64)), "edge_index"),
        (None, ("edge_index", np.array([[-1, 1]], np.int64)), "edge_index"),
        (None, ("node_config_ids", np.array([2, 10], np.int32)), "node_config_ids"),
        (None, ("node_config_ids", np.array([-1, 2], np.int32)), "node_config_ids"),
    ],
)
def test_missing_or_misshaped_key_names_it(tmp_path, drop, bad, match):
    _official_layout(tmp_path / "b.npz", drop=drop, bad=bad)
    with pytest.raises(SchemaError, match=match):
        load_graph(tmp_path / "b.npz")


def test_edges_and_configurable_nodes_up_to_the_last_node_are_valid(tmp_path):
    _official_layout(tmp_path / "e.npz", bad=("edge_index", np.array([[9, 0], [0, 9]], np.int64)))
    rec = load_graph(tmp_path / "e.npz")
    assert rec.edge_index.tolist() == [[9, 0], [0, 9]]
    _official_layout(tmp_path / "f.npz", bad=("node_config_ids", np.array([0, 9], np.int32)))
    assert load_graph(tmp_path / "f.npz").node_config_ids.tolist() == [0, 9]


def test_unlabelled_test_file_allowed_when_asked(tmp_path):
    _official_layout(tmp_path / "c.npz", drop="config_runtime")
    rec = load_graph(tmp_path / "c.npz", require_runtime=False)
    assert not rec.has_runtimes
    with pytest.raises(SchemaError, match="config_runtime"):
        rec.target_runtime()


def test_not_a_graph_file(tmp_path):
    np.savez(tmp_path / "x.npz", foo=np.zeros(3))
    with pytest.raises(SchemaError, match="config_feat"):
        load_graph(tmp_path / "x.npz")
    (tmp_path / "y.npz").write_text("garbage")
    with pytest.raises(SchemaError, match="not a readable npz"):
        load_graph(tmp_path / "y.npz")


def test_roundtrip_tile_with_extra_keys(tmp_path, make_tile):
    rec = make_tile()
    from dataclasses import replace

    rec = replace(
        rec,
        config_runtime_std=np.arange(7, dtype=np.float64),
        config_runtime_rounds=np.ones((7, 2), dtype=np.int64),
        measure_meta={"cpu": "x", "tau_between_rounds": 0.9},
    )
    save_graph(rec, tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz") as z:
        assert z["node_opcode"].dtype == np.uint8
        assert z["edge_index"].shape == (4, 2)
        assert json.loads(str(z["measure_meta"]))["cpu"] == "x"
    back = load_graph(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.config_feat, rec.config_feat)
    np.testing.assert_allclose(back.target_runtime(), rec.config_runtime / 2000)
    assert back.measure_meta["tau_between_rounds"] == 0.9
    assert back.config_runtime_rounds.shape == (7, 2)


def test_deduplicate_averages_runtimes(layout_record):
    from dataclasses import replace

    from opgraph.perf.layout import encode_configs

    ch = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0], [1, 0, 0]])
    rec = replace(
        layout_record,
        node_config_feat=encode_configs(ch),
        config_runtime=np.array([100, 200, 300, 400]),
        config_runtime_std=None,
    )
    d = rec.deduplicate()
    assert d.n_configs == 3
    np.testing.assert_array_equal(d.config_runtime, [200, 200, 400])


def test_dataset_tree(tmp_path, make_layout, make_tile):
    for split in ("train", "valid"):
        for i in range(2):
            save_graph(make_layout(f"g{i}", seed=i), tmp_path / "layout/xla/random" / split / f"g{i}.npz")
    save_graph(make_tile("t0"), tmp_path / "tile/xla/train/t0.npz")
    assert ("layout", "xla", "random", "valid") in find_collections(tmp_path)
    ds = TpuGraphsDataset(tmp_path, "layout", "xla", "random", "valid")
    assert len(ds) == 2 and ds.names == ["g0", "g1"] and ds[1].name == "g1"
    assert TpuGraphsDataset(tmp_path, "tile", split="train")[0].kind == "tile"
    with pytest.raises(SchemaError, match="collections found"):
        TpuGraphsDataset(tmp_path, "layout", "nlp", "default", "train")
    assert len(load_records(tmp_path / "layout")) == 4


def test_dataset_yields_pyg_data_with_transforms_and_batches(tmp_path, make_layout, make_tile):
    pytest.importorskip("torch_geometric")
    import torch
    from torch_geometric.loader import DataLoader

    for i in range(3):
        save_graph(
            make_layout(f"g{i}", n=10 + i, nc=3, c=6 + i, seed=i), tmp_path / f"layout/xla/default/train/g{i}.npz"
        )
    ds = TpuGraphsDataset(tmp_path, "layout", "xla", "default", "train")
    rec, data = ds[1], ds.to_pyg()[1]
    assert data.num_nodes == rec.n_nodes == 11 and data.name == "g1"
    assert torch.equal(data.x, torch.from_numpy(rec.node_feat))
    assert torch.equal(data.op, torch.from_numpy(rec.node_opcode.astype(np.int64)))
    # PyG edges run producer -> consumer; the npz rows are [consumer, producer]
    assert torch.equal(data.edge_index, torch.from_numpy(rec.edge_index[:, ::-1].T.copy()))
    assert torch.equal(data.y, torch.from_numpy(rec.target_runtime().astype(np.float32)))
    assert data.node_config_feat.shape == (3, 7, 18)
    assert torch.equal(data.node_config_feat[:, 2], torch.from_numpy(rec.config_matrix()[2]))

    def mark(d):
        d.marked = torch.tensor([d.num_nodes])
        return d

    view = ds.to_pyg(mark, configs=5, seed=1)
    assert [int(d.marked) for d in view] == [10, 11, 12]
    assert all(d.y.shape == (5,) for d in view)
    assert torch.equal(view[2].y, ds.to_pyg(configs=5, seed=1)[2].y)  # the same sample on every access
    batch = next(iter(DataLoader(view, batch_size=3)))
    assert batch.num_graphs == 3 and batch.node_config_feat.shape == (9, 5, 18)
    # the configurable-node ids are shifted by each graph's node offset, like edge_index
    assert batch.config_node_index.tolist() == [
        int(v) + off for off, d in zip((0, 10, 21), view) for v in d.config_node_index
    ]

    tile = make_tile("t0")
    td = tile.to_pyg()
    assert td.config_feat.shape == (7, 24)
    assert torch.allclose(td.y, torch.from_numpy(tile.target_runtime().astype(np.float32)))
    with pytest.raises(SchemaError, match="configs"):
        ds.to_pyg(configs=0)
