"""The TpuGraphs reader and writer at its bounds (issue 13: schema checks that a one-character change must break).

Every expectation is written out by hand from the schema in the module docstring: shapes, the valid id ranges
``0..n-1``, positive runtimes, which keys are written, and the averages of merged duplicate configs.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import numpy as np
import pytest

from opgraph.perf.errors import SchemaError
from opgraph.perf.tpugraphs import (
    GraphRecord,
    LazyConfigFeat,
    TpuGraphsDataset,
    collection_dir,
    find_collections,
    load_graph,
    load_or_build,
    load_records,
    save_graph,
)


def _layout(n=6, nc=2, c=5, seed=0, **changes):
    rng = np.random.default_rng(seed)
    arrays = dict(
        name="g",
        kind="layout",
        node_feat=rng.random((n, 140)).astype(np.float32),
        node_opcode=rng.integers(1, 120, n),
        edge_index=np.array([[i + 1, i] for i in range(n - 1)], dtype=np.int64).reshape(-1, 2),
        config_runtime=np.arange(1, c + 1, dtype=np.int64) * 1000,
        node_config_ids=np.arange(nc, dtype=np.int64),
        node_config_feat=rng.integers(0, 5, (c, nc, 18)).astype(np.float32),
        node_splits=np.array([0], dtype=np.int64),
    )
    arrays.update(changes)
    return arrays


def _tile(n=4, c=3, seed=0, **changes):
    rng = np.random.default_rng(seed)
    arrays = dict(
        name="t",
        kind="tile",
        node_feat=rng.random((n, 140)).astype(np.float32),
        node_opcode=rng.integers(1, 120, n),
        edge_index=np.array([[i + 1, i] for i in range(n - 1)], dtype=np.int64).reshape(-1, 2),
        config_runtime=np.array([3000, 4000, 6000][:c], dtype=np.int64),
        config_feat=rng.integers(1, 9, (c, 24)).astype(np.float32),
        config_runtime_normalizers=np.full(c, 2000, dtype=np.int64),
    )
    arrays.update(changes)
    return arrays


def _npz(path: Path, arrays: dict, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in arrays.items() if k not in ("name", "kind")}, **kw)
    return path


# ---------------------------------------------------------------- validate: every key at its bound


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"kind": "tiles"}, "kind must be"),
        ({"node_feat": np.zeros((6, 139), np.float32)}, r"node_feat.*\(n, 140\)"),
        ({"node_feat": np.zeros(140, np.float32)}, r"node_feat.*\(n, 140\)"),
        ({"node_feat": np.zeros((0, 140), np.float32), "node_opcode": np.zeros(0, np.int64)}, "no rows"),
        ({"node_opcode": np.ones(5, np.int64)}, r"node_opcode.*\(6,\)"),
        ({"edge_index": np.zeros((3, 3), np.int64)}, r"edge_index.*\(m, 2\)"),
        ({"edge_index": np.zeros(4, np.int64)}, r"edge_index.*\(m, 2\)"),
        ({"node_config_ids": None}, "lacks key 'node_config_ids' or 'node_config_feat'"),
        ({"node_config_feat": None}, "lacks key 'node_config_ids' or 'node_config_feat'"),
        ({"node_config_feat": np.zeros((5, 2, 17), np.float32)}, r"node_config_feat.*\(c, 2, 18\)"),
        ({"node_config_feat": np.zeros((5, 3, 18), np.float32)}, r"node_config_feat.*\(c, 2, 18\)"),
        ({"node_config_feat": np.zeros((5, 36), np.float32)}, r"node_config_feat.*\(c, 2, 18\)"),
        ({"node_config_ids": np.array([0, 6])}, "outside 0..5"),
        ({"node_config_ids": np.array([-1, 5])}, "outside 0..5"),
        ({"node_config_feat": np.zeros((0, 2, 18), np.float32), "config_runtime": None}, "no configurations"),
        ({"config_runtime": np.ones(4, np.int64)}, r"config_runtime.*\(5,\)"),
        ({"config_runtime_normalizers": np.ones(6, np.int64)}, r"config_runtime_normalizers.*\(5,\)"),
        ({"config_runtime_std": np.ones(4)}, r"config_runtime_std.*\(5,\)"),
        ({"config_runtime": np.array([5, 4, 0, 2, 1])}, "'config_runtime' holds 0 "),
        ({"config_runtime": np.array([5, -3, 3, 2, 1])}, "'config_runtime' holds -3 "),
        ({"config_runtime_normalizers": np.array([7, 7, 7, 0, 7])}, "'config_runtime_normalizers' holds 0 "),
        ({"config_runtime_rounds": np.ones(5, np.int64)}, r"config_runtime_rounds.*\(5, rounds\)"),
        ({"config_runtime_rounds": np.ones((4, 2), np.int64)}, r"config_runtime_rounds.*\(5, rounds\)"),
    ],
)
def test_layout_record_refused_at_each_bound(changes, needle):
    arrays = _layout()
    arrays.update(changes)
    with pytest.raises(SchemaError, match=needle):
        GraphRecord(**arrays)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"node_feat": np.full((4, 140), np.nan, np.float32)}, "node_feat' holds NaN"),
        ({"config_feat": None}, "lacks key 'config_feat'"),
        ({"config_feat": np.zeros((3, 23), np.float32)}, r"config_feat.*\(c, 24\)"),
        ({"config_feat": np.zeros(24, np.float32)}, r"config_feat.*\(c, 24\)"),
        (
            {"config_feat": np.zeros((0, 24), np.float32), "config_runtime": None, "config_runtime_normalizers": None},
            "no configurations",
        ),
    ],
)
def test_tile_record_refused_at_each_bound(changes, needle):
    arrays = _tile()
    arrays.update(changes)
    with pytest.raises(SchemaError, match=needle):
        GraphRecord(**arrays)


def test_one_nan_among_finite_values_is_refused_everywhere():
    nf = np.ones((4, 140), np.float32)
    nf[2, 7] = np.nan
    with pytest.raises(SchemaError, match="node_feat' holds NaN"):
        GraphRecord(**_tile(node_feat=nf))
    cf = np.ones((3, 24), np.float32)
    cf[1, 0] = np.inf
    with pytest.raises(SchemaError, match="config_feat' holds NaN"):
        GraphRecord(**_tile(config_feat=cf))
    ncf = np.ones((5, 2, 18), np.float32)
    ncf[4, 1, 17] = -np.inf
    with pytest.raises(SchemaError, match="node_config_feat' holds NaN"):
        GraphRecord(**_layout(node_config_feat=ncf))


def test_valid_records_at_the_edges_of_the_bounds():
    # ids 0 and n-1, one node, no configurable nodes, one config, a runtime of 1 ns: all valid
    rec = GraphRecord(**_layout(node_config_ids=np.array([0, 5])))
    assert rec.node_config_ids.tolist() == [0, 5]
    none = GraphRecord(**_layout(nc=0, node_config_ids=np.zeros(0, np.int64)))
    assert none.n_configs == 5 and none.node_config_feat.shape == (5, 0, 18)
    one = GraphRecord(**_layout(n=1, nc=1, c=1, edge_index=np.zeros((0, 2), np.int64), config_runtime=np.array([1])))
    assert (one.n_nodes, one.n_configs) == (1, 1)
    assert GraphRecord(**_tile(config_runtime=np.array([1, 1, 1]))).n_configs == 3


def test_errors_name_the_file_when_there_is_one(tmp_path):
    arrays = _layout(node_opcode=np.ones(5, np.int64))
    with pytest.raises(SchemaError, match="^g: key 'node_opcode'"):
        GraphRecord(**arrays)
    path = _npz(tmp_path / "deep" / "g.npz", arrays)
    with pytest.raises(SchemaError) as err:
        load_graph(path)
    assert str(err.value).startswith(f"{path}: key 'node_opcode'")


def test_record_is_frozen_and_compared_by_identity():
    rec = GraphRecord(**_tile())
    with pytest.raises(FrozenInstanceError):
        rec.name = "other"  # type: ignore[misc]
    twin = replace(rec)
    assert rec == rec and rec != twin and len({rec, twin}) == 2


# ---------------------------------------------------------------- target runtime, repr, arrays


def test_target_runtime_divides_tile_runtimes_by_their_normalizers_only():
    tile = GraphRecord(**_tile(config_runtime_normalizers=np.array([1, 2, 3])))
    np.testing.assert_array_equal(tile.target_runtime(), [3000.0, 2000.0, 2000.0])
    assert tile.target_runtime().dtype == np.float64
    raw = GraphRecord(**_tile(config_runtime_normalizers=None))
    np.testing.assert_array_equal(raw.target_runtime(), [3000.0, 4000.0, 6000.0])
    lay = GraphRecord(**_layout(config_runtime_normalizers=np.full(5, 7)))
    np.testing.assert_array_equal(lay.target_runtime(), [1000.0, 2000.0, 3000.0, 4000.0, 5000.0])


def test_sizes_and_repr():
    tile = GraphRecord(**_tile())
    assert (tile.n_nodes, tile.n_configs) == (4, 3)
    assert repr(tile) == "GraphRecord('t', tile, 4 nodes, 3 edges, 3 configs, runtime 1.5..3 (normalised))"
    lay = GraphRecord(**_layout(n=7, nc=3, c=4))
    assert (lay.n_nodes, lay.n_configs) == (7, 4)
    assert repr(lay) == "GraphRecord('g', layout, 7 nodes, 6 edges, 3 configurable, 4 configs, runtime 1000..4000)"
    bare = GraphRecord(**_layout(config_runtime=None))
    assert repr(bare) == "GraphRecord('g', layout, 6 nodes, 5 edges, 2 configurable, 5 configs)"


def test_to_arrays_writes_exactly_the_schema():
    tile = GraphRecord(**_tile(measure_meta={"z": 1, "a": [2, 3]}))
    arr = tile.to_arrays()
    assert sorted(arr) == sorted(
        [
            "node_feat",
            "node_opcode",
            "edge_index",
            "config_runtime",
            "config_feat",
            "config_runtime_normalizers",
            "measure_meta",
        ]
    )
    assert arr["node_opcode"].dtype == np.uint8 and arr["edge_index"].dtype == np.int64
    assert arr["config_runtime"].dtype == np.int64 and arr["config_feat"].dtype == np.float32
    assert str(arr["measure_meta"]) == '{"a": [2, 3], "z": 1}'
    bare = GraphRecord(**_tile(config_runtime=None, config_runtime_normalizers=None)).to_arrays()
    assert sorted(bare) == ["config_feat", "edge_index", "node_feat", "node_opcode"]

    lay = GraphRecord(
        **_layout(
            node_splits=None,
            config_runtime_normalizers=np.full(5, 3),
            config_runtime_std=np.full(5, 0.5),
            config_runtime_rounds=np.ones((5, 2), np.int64),
        )
    )
    arr = lay.to_arrays()
    assert sorted(arr) == sorted(
        [
            "node_feat",
            "node_opcode",
            "edge_index",
            "config_runtime",
            "node_config_ids",
            "node_config_feat",
            "node_splits",
            "config_runtime_normalizers",
            "config_runtime_std",
            "config_runtime_rounds",
        ]
    )
    assert arr["node_splits"].tolist() == [[0]]
    assert arr["config_runtime_std"].dtype == np.float64 and arr["config_runtime_rounds"].shape == (5, 2)
    splits = GraphRecord(**_layout(node_splits=np.array([0, 3]))).to_arrays()["node_splits"]
    assert splits.tolist() == [[0, 3]]


def test_save_compresses_by_default_and_refuses_opcodes_past_uint8(tmp_path):
    path = save_graph(GraphRecord(**_tile()), tmp_path / "t.npz")
    with zipfile.ZipFile(path) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    save_graph(GraphRecord(**_tile(node_opcode=np.array([0, 255, 3, 4]))), tmp_path / "ok.npz")
    assert load_graph(tmp_path / "ok.npz").node_opcode.tolist() == [0, 255, 3, 4]
    for bad in ([1, 256, 3, 4], [300, 1, 1, 1]):
        with pytest.raises(SchemaError, match="uint8"):
            save_graph(GraphRecord(**_tile(node_opcode=np.array(bad))), tmp_path / "bad.npz")


# ---------------------------------------------------------------- deduplicate


def test_deduplicate_averages_every_per_config_array():
    feats = np.zeros((4, 24), np.float32)
    feats[1] = 1.0  # configs 0, 2 and 3 are the same; config 1 differs
    rec = GraphRecord(
        **_tile(
            c=4,
            config_feat=feats,
            config_runtime=np.array([100, 500, 201, 300]),
            config_runtime_normalizers=np.array([10, 20, 12, 14]),
            config_runtime_std=np.array([1.0, 9.0, 2.0, 4.0]),
            config_runtime_rounds=np.array([[100, 102], [500, 500], [201, 199], [300, 303]]),
        )
    )
    d = rec.deduplicate()
    assert d.n_configs == 2
    np.testing.assert_array_equal(d.config_feat, feats[[0, 1]])
    np.testing.assert_array_equal(d.config_runtime, [200, 500])  # (100 + 201 + 300) / 3 = 200.33 -> 200
    assert d.config_runtime.dtype == np.int64
    np.testing.assert_array_equal(d.config_runtime_normalizers, [12, 20])
    np.testing.assert_allclose(d.config_runtime_std, [7.0 / 3.0, 9.0])
    np.testing.assert_array_equal(d.config_runtime_rounds, [[200, 201], [500, 500]])
    assert d.config_runtime_rounds.dtype == np.int64
    assert rec.deduplicate().config_runtime.tolist() == [200, 500]
    unique = GraphRecord(**_tile())
    assert unique.deduplicate() is unique


def test_deduplicate_keeps_first_occurrence_order():
    ncf = np.zeros((4, 2, 18), np.float32)
    ncf[0, 0, 0] = 2.0
    ncf[2, 0, 0] = 2.0  # configs 1 and 3 are all-zero, 0 and 2 equal: first occurrences are 0 then 1
    d = GraphRecord(**_layout(c=4, node_config_feat=ncf, config_runtime=np.array([10, 20, 30, 41]))).deduplicate()
    np.testing.assert_array_equal(d.config_runtime, [20, 30])  # (10+30)/2, (20+41)/2 = 30.5 -> 30 (round half even)
    np.testing.assert_array_equal(np.asarray(d.node_config_feat)[:, 0, 0], [2.0, 0.0])


# ---------------------------------------------------------------- reading files


def test_edges_of_either_orientation_and_integer_valued_floats(tmp_path):
    rec = load_graph(_npz(tmp_path / "a.npz", _layout(edge_index=np.array([[1, 2, 3], [0, 1, 2]]))))
    assert rec.edge_index.tolist() == [[1, 0], [2, 1], [3, 2]]
    square = load_graph(_npz(tmp_path / "b.npz", _layout(edge_index=np.array([[1, 0], [2, 1]]))))
    assert square.edge_index.tolist() == [[1, 0], [2, 1]]  # (2, 2) is read as rows [consumer, producer]
    empty = load_graph(_npz(tmp_path / "c.npz", _layout(edge_index=np.zeros((0,), np.int64))))
    assert empty.edge_index.shape == (0, 2)
    floats = load_graph(_npz(tmp_path / "d.npz", _layout(edge_index=np.array([[1.0, 0.0], [5.0, 4.0]]))))
    assert floats.edge_index.tolist() == [[1, 0], [5, 4]] and floats.edge_index.dtype == np.int64
    flags = load_graph(_npz(tmp_path / "e.npz", _layout(edge_index=np.array([[True, False]]))))
    assert flags.edge_index.tolist() == [[1, 0]]


@pytest.mark.parametrize(
    ("edges", "needle"),
    [
        (np.array([[1.5, 0.0]]), "integers"),
        (np.array([[1.0, np.inf]]), "integers"),
        (np.array([[1.0, np.nan]]), "integers"),
        (np.zeros((2, 3, 2), np.int64), r"\(m, 2\) or \(2, m\)"),
        (np.zeros((3, 4), np.int64), r"\(m, 2\) or \(2, m\)"),
        (np.zeros(4, np.int64), r"\(m, 2\) or \(2, m\)"),
        (np.array([[6, 0]]), "refers to node"),
        (np.array([[1, -1]]), "refers to node"),
    ],
)
def test_bad_edges_refused(tmp_path, edges, needle):
    with pytest.raises(SchemaError, match=needle):
        load_graph(_npz(tmp_path / "x.npz", _layout(edge_index=edges)))


def test_integer_keys_stored_as_floats_or_as_a_row(tmp_path):
    rec = load_graph(
        _npz(tmp_path / "a.npz", _layout(config_runtime=np.array([[1000.0, 2000.0, 3000.0, 4000.0, 5000.0]])))
    )
    assert rec.config_runtime.tolist() == [1000, 2000, 3000, 4000, 5000] and rec.config_runtime.dtype == np.int64
    with pytest.raises(SchemaError, match="'config_runtime' must hold integers"):
        load_graph(_npz(tmp_path / "b.npz", _layout(config_runtime=np.array([1000.5, 2, 3, 4, 5]))))
    with pytest.raises(SchemaError, match="'node_opcode' must hold integers"):
        load_graph(_npz(tmp_path / "c.npz", _layout(node_opcode=np.zeros(6, np.float32) + 0.5)))


def test_opgraph_keys_are_read_back(tmp_path):
    arrays = _layout(
        config_runtime_std=np.array([0.5, 1.5, 2.5, 3.5, 4.5]),
        config_runtime_rounds=np.arange(10).reshape(5, 2) + 1,
        config_runtime_normalizers=np.full(5, 9),
    )
    path = _npz(tmp_path / "a.npz", arrays, measure_meta=np.array(json.dumps({"cpu": "x", "n": 2})))
    rec = load_graph(path)
    assert rec.config_runtime_std.tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert rec.config_runtime_rounds.shape == (5, 2) and rec.config_runtime_rounds[4, 1] == 10
    assert rec.config_runtime_normalizers.tolist() == [9] * 5
    assert rec.measure_meta == {"cpu": "x", "n": 2}
    assert rec.node_splits.tolist() == [0]
    plain = load_graph(_npz(tmp_path / "b.npz", _layout()))
    assert plain.config_runtime_std is None and plain.config_runtime_rounds is None and plain.measure_meta == {}
    with pytest.raises(SchemaError, match="measure_meta' is not valid JSON"):
        load_graph(_npz(tmp_path / "c.npz", _layout(), measure_meta=np.array("{oops")))


def test_keys_that_decide_the_kind_and_the_missing_ones(tmp_path):
    arrays = _layout()
    del arrays["node_config_feat"]
    with pytest.raises(SchemaError, match=r"layout file lacks key\(s\) \['node_config_feat'\]"):
        load_graph(_npz(tmp_path / "a.npz", arrays))
    arrays = _layout()
    del arrays["node_config_ids"]
    with pytest.raises(SchemaError, match=r"layout file lacks key\(s\) \['node_config_ids'\]"):
        load_graph(_npz(tmp_path / "b.npz", arrays))
    arrays = _tile()
    del arrays["edge_index"]
    with pytest.raises(SchemaError, match=r"tile file lacks key\(s\) \['edge_index'\]"):
        load_graph(_npz(tmp_path / "c.npz", arrays))
    tile = load_graph(_npz(tmp_path / "d.npz", _tile()))
    assert tile.kind == "tile" and tile.config_feat.dtype == np.float32 and tile.config_feat.shape == (3, 24)
    with pytest.raises(SchemaError, match=r"node_feat.*\(n, 140\)"):
        load_graph(_npz(tmp_path / "e.npz", _tile(node_feat=np.zeros(140, np.float32))))


def test_not_a_file_a_single_array_and_pickled_members_are_refused(tmp_path):
    with pytest.raises(SchemaError, match="no such npz file"):
        load_graph(tmp_path / "none.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(SchemaError, match="single array"):
        load_graph(tmp_path / "single.npz")
    arrays = _tile()
    arrays["node_feat"] = arrays["node_feat"].astype(object)  # valid numbers, but only readable by unpickling
    with pytest.raises(SchemaError, match="cannot be read"):
        load_graph(_npz(tmp_path / "pickled.npz", arrays))


def test_load_defaults_are_lazy_and_labelled(tmp_path):
    path = _npz(tmp_path / "a.npz", _layout())
    assert isinstance(load_graph(path).node_config_feat, LazyConfigFeat)
    eager = load_graph(path, lazy=False).node_config_feat
    assert isinstance(eager, np.ndarray) and eager.dtype == np.float32


# ---------------------------------------------------------------- LazyConfigFeat


@pytest.fixture
def lazy_and_full(tmp_path):
    arrays = _layout(c=6, nc=3)
    arrays["node_config_feat"] = np.arange(6 * 3 * 18, dtype=np.float32).reshape(6, 3, 18)
    lazy = load_graph(_npz(tmp_path / "a.npz", arrays)).node_config_feat
    return lazy, arrays["node_config_feat"]


def test_lazy_indexing_matches_numpy(lazy_and_full):
    lazy, full = lazy_and_full
    assert (len(lazy), lazy.ndim, lazy.shape, lazy.dtype) == (6, 3, (6, 3, 18), np.float32)
    np.testing.assert_array_equal(lazy[0], full[0])
    np.testing.assert_array_equal(lazy[5], full[5])
    np.testing.assert_array_equal(lazy[np.int32(-6)], full[0])
    np.testing.assert_array_equal(lazy[1:5:2], full[1:5:2])
    np.testing.assert_array_equal(lazy[::-1], full[::-1])
    np.testing.assert_array_equal(lazy[2, 1], full[2, 1])
    np.testing.assert_array_equal(lazy[2, 1, 3], full[2, 1, 3])
    np.testing.assert_array_equal(lazy[[4, 0], 2], full[[4, 0], 2])
    np.testing.assert_array_equal(lazy[1:3, :, 0], full[1:3, :, 0])
    mask = np.array([True, False, False, True, True, False])
    np.testing.assert_array_equal(lazy[mask], full[mask])
    np.testing.assert_array_equal(lazy[np.array([[5, 1], [0, 0]])], full[np.array([[5, 1], [0, 0]])])
    np.testing.assert_array_equal(lazy[np.zeros(0, np.int64)], full[np.zeros(0, np.int64)])
    np.testing.assert_array_equal(np.asarray(lazy), full)
    assert np.asarray(lazy, dtype=np.float64).dtype == np.float64
    assert repr(lazy) == "LazyConfigFeat(a.npz, shape=(6, 3, 18), dtype=float32)"


def test_lazy_refuses_bad_indices(lazy_and_full):
    lazy, _ = lazy_and_full
    for bad, first in ((6, 6), (-7, -7), ([0, 6], 6), ([-7, 0], -7), ([2, 9, -8], 9)):
        with pytest.raises(IndexError, match=f"index {first} is out of bounds"):
            lazy[bad]
    with pytest.raises(IndexError, match="boolean index"):
        lazy[np.ones(5, bool)]
    with pytest.raises(IndexError, match="must be integers"):
        lazy[np.array([1.0])]


def test_lazy_reads_numeric_members_and_refuses_nan_rows(tmp_path):
    arrays = _layout(c=3)
    arrays["node_config_feat"] = np.arange(3 * 2 * 18, dtype=np.int16).reshape(3, 2, 18)
    lazy = LazyConfigFeat(_npz(tmp_path / "i.npz", arrays))
    assert lazy.dtype == np.int16 and lazy[2].tolist() == arrays["node_config_feat"][2].tolist()
    bad = np.zeros((3, 2, 18), np.float32)
    bad[1, 0, 0] = np.nan
    path = _npz(tmp_path / "n.npz", _layout(c=3, node_config_feat=bad))
    lazy = LazyConfigFeat(path)
    assert lazy[0].tolist() == bad[0].tolist() and lazy[[2, 0]].shape == (2, 2, 18)
    with pytest.raises(SchemaError, match="NaN or inf"):
        lazy[1]
    with pytest.raises(SchemaError, match="NaN or inf"):
        np.asarray(lazy)
    path = _npz(tmp_path / "s.npz", _layout(c=3, node_config_feat=np.array(["x"] * 108).reshape(3, 2, 18)))
    with pytest.raises(SchemaError, match="numeric"):
        LazyConfigFeat(path)


# ---------------------------------------------------------------- datasets and trees


def test_collection_dirs_and_which_are_found(tmp_path):
    assert collection_dir(tmp_path, "tile", "xla", "default", "valid") == tmp_path / "tile" / "xla" / "valid"
    assert collection_dir(tmp_path, "layout", "nlp", "random", "test") == tmp_path / "layout/nlp/random/test"
    with pytest.raises(SchemaError, match="kind must be"):
        collection_dir(tmp_path, "tiles")
    save_graph(GraphRecord(**_tile()), tmp_path / "tile/xla/train/t.npz")
    (tmp_path / "tile/xla/valid").mkdir(parents=True)  # empty: not a collection
    (tmp_path / "layout/nlp/random/test").mkdir(parents=True)
    (tmp_path / "layout/nlp/random/test/notes.txt").write_text("x")
    save_graph(GraphRecord(**_layout()), tmp_path / "layout/xla/default/valid/g.npz")
    assert find_collections(tmp_path) == [("tile", "xla", "-", "train"), ("layout", "xla", "default", "valid")]
    with pytest.raises(SchemaError, match="collections found: none"):
        TpuGraphsDataset(tmp_path / "empty", "tile")
    with pytest.raises(SchemaError, match="no .npz files"):
        TpuGraphsDataset.from_dir(tmp_path / "tile/xla/valid")
    with pytest.raises(SchemaError, match="not a directory"):
        TpuGraphsDataset.from_dir(tmp_path / "tile/xla/train/t.npz")


def test_dataset_access_order_kinds_splits_and_defaults(tmp_path):
    d = tmp_path / "layout/xla/default"
    ncf = np.zeros((5, 2, 18), np.float32)  # five identical configs
    for i in range(3):
        save_graph(GraphRecord(**_layout(seed=i, node_config_feat=ncf)), d / "train" / f"g{i}.npz")
    ds = TpuGraphsDataset(tmp_path, "layout", "xla", "default", "train")
    assert [ds[i].name for i in (-1, -3, 0)] == ["g2", "g0", "g0"] and ds[-1] is ds[2]
    assert isinstance(ds[0].node_config_feat, LazyConfigFeat) and ds[0].n_configs == 5  # lazy, not deduplicated
    assert TpuGraphsDataset(tmp_path, "layout", "xla", "default", "train", deduplicate=True)[0].n_configs == 1
    assert [r.name for r in ds] == ["g0", "g1", "g2"]
    assert repr(ds).endswith("3 graphs)")
    # the test split is unlabelled: files without runtimes load there
    save_graph(GraphRecord(**_layout(config_runtime=None)), d / "test" / "u.npz")
    assert not TpuGraphsDataset(tmp_path, "layout", "xla", "default", "test")[0].has_runtimes
    # a tile file in a layout collection is refused; from_dir takes any kind
    save_graph(GraphRecord(**_tile()), d / "valid" / "t.npz")
    with pytest.raises(SchemaError, match="a tile file in a layout collection"):
        TpuGraphsDataset(tmp_path, "layout", "xla", "default", "valid")[0]
    any_kind = TpuGraphsDataset.from_dir(d / "valid")
    assert any_kind[0].kind == "tile" and isinstance(load_graph(d / "train/g0.npz").node_config_feat, LazyConfigFeat)
    assert TpuGraphsDataset.from_dir(d / "train")[0].n_configs == 5
    with pytest.raises(SchemaError, match="config_runtime"):
        TpuGraphsDataset.from_dir(d / "test")[0]


def test_load_records_prefers_the_top_level_and_deduplicates(tmp_path):
    ncf = np.zeros((5, 2, 18), np.float32)
    save_graph(GraphRecord(**_layout(node_config_feat=ncf)), tmp_path / "top.npz")
    save_graph(GraphRecord(**_layout()), tmp_path / "sub" / "nested.npz")
    recs = load_records(tmp_path)
    assert [r.name for r in recs] == ["top"] and recs[0].n_configs == 1
    assert isinstance(load_records(tmp_path, deduplicate=False)[0].node_config_feat, LazyConfigFeat)
    assert [r.name for r in load_records(tmp_path / "sub")] == ["nested"]
    assert [r.name for r in load_records(tmp_path / "top.npz")] == ["top"]
    with pytest.raises(SchemaError, match="no such file"):
        load_records(tmp_path / "nothing")
    (tmp_path / "void").mkdir()
    with pytest.raises(SchemaError, match="no .npz files"):
        load_records(tmp_path / "void")
    save_graph(GraphRecord(**_layout(config_runtime=None)), tmp_path / "unl" / "u.npz")
    with pytest.raises(SchemaError, match="config_runtime"):
        load_records(tmp_path / "unl")


def test_load_or_build_builds_once(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return GraphRecord(**_tile(measure_meta={"k": 1}))

    first = load_or_build(tmp_path / "t.npz", build)
    second = load_or_build(tmp_path / "t.npz", build)
    assert (first["skipped"], second["skipped"], len(calls)) == (False, True, 1)
    assert first["meta"] == second["meta"] == {"k": 1} and second["name"] == "t"


def test_lazy_reads_any_member_and_names_the_first_bad_index(tmp_path, lazy_and_full):
    lazy, _ = lazy_and_full
    # -6 is the first row (valid); 9 is the first index out of bounds
    with pytest.raises(IndexError, match="index 9 is out of bounds"):
        lazy[[-6, 9]]
    with pytest.raises(IndexError, match="index -7 is out of bounds"):
        lazy[[5, -7]]
    # a 2-D member (tile config features): one row is one config of 24 values
    arrays = _tile(c=3)
    arrays["config_feat"] = np.arange(72, dtype=np.float32).reshape(3, 24)
    flat = LazyConfigFeat(_npz(tmp_path / "t.npz", arrays), key="config_feat")
    assert flat.shape == (3, 24) and flat.ndim == 2
    np.testing.assert_array_equal(flat[2], arrays["config_feat"][2])
    np.testing.assert_array_equal(flat[[1, 0]], arrays["config_feat"][[1, 0]])
    one = _tile(c=3)
    runtime = LazyConfigFeat(_npz(tmp_path / "r.npz", one), key="config_runtime")
    assert runtime.shape == (3,) and runtime[1] == 4000 and runtime[[2, 0]].tolist() == [6000, 3000]


def test_pyg_view_defaults_and_negative_indices(tmp_path):
    d = tmp_path / "layout/xla/default/train"
    for i in range(3):
        save_graph(GraphRecord(**_layout(seed=i, c=6)), d / f"g{i}.npz")
    ds = TpuGraphsDataset(tmp_path, "layout", "xla", "default", "train")
    one = ds.to_pyg(configs=1)  # one config per graph is allowed
    assert one.configs == 1 and one.seed == 0
    with pytest.raises(SchemaError, match="configs=0"):
        ds.to_pyg(configs=0)
    pytest.importorskip("torch_geometric")
    import torch

    view = ds.to_pyg(configs=4)
    assert torch.equal(view[-1].y, view[2].y) and torch.equal(view[-3].y, view[0].y)
    assert torch.equal(view[1].y, ds.to_pyg(configs=4, seed=0)[1].y)
    rng = np.random.default_rng([0, 1])
    idx = np.sort(rng.choice(6, 4, replace=False))
    expected = ds[1].target_runtime()[idx].astype(np.float32)
    assert view[1].y.tolist() == expected.tolist() and one[1].y.shape == (1,)
