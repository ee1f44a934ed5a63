"""``opgraph perf rank`` names TVM's default tile schedule (config 0 of a collected kernel) as such."""

from __future__ import annotations

import dataclasses

import pytest

from opgraph.perf.ranking import describe_config, is_default_tile
from opgraph.perf.tpugraphs import GraphRecord

# (ti, tj, tk) per config; None: TVM's default schedule, whose kernel bounds are the whole loops (1, 32, 32).
LOOPS = (1, 32, 32)
TILES = [None, (1, 8, 4), (1, 16, 32), (1, 4, 8)]


def _tile_record(make_tile, name: str, seed: int, tiles=TILES, meta: bool = True) -> GraphRecord:
    """A synthetic tile record (conftest's) whose config rows start with ``tiles`` (the default: the whole loops)."""
    rec = make_tile(name, c=len(tiles), seed=seed)
    feat = rec.config_matrix().copy()
    feat[:, :3] = [LOOPS if t is None else t for t in tiles]
    tile_list = {"tiles": [list(t) if t else None for t in tiles]} if meta else {}
    return dataclasses.replace(rec, config_feat=feat, measure_meta=tile_list)


def test_default_schedule_is_named_with_its_loops(make_tile) -> None:
    rec = _tile_record(make_tile, "k", 0)
    assert describe_config(rec, 0) == "TVM default schedule (untiled: loops 1x32x32)"
    assert describe_config(rec, 1) == "tile 1x8x4"
    assert describe_config(rec, 2) == "tile 1x16x32"
    assert [is_default_tile(rec, i) for i in range(4)] == [True, False, False, False]


def test_records_without_a_tile_list_have_no_default(make_tile) -> None:
    """The official TpuGraphs data: every config is a tile of its kernel bounds."""
    rec = _tile_record(make_tile, "k", 0, meta=False)
    assert describe_config(rec, 0) == "tile 1x32x32"
    # a tile list that does not match the configs is not trusted
    bad = dataclasses.replace(rec, measure_meta={"tiles": [None, [1, 8, 4]]})
    assert describe_config(bad, 0) == "tile 1x32x32"


def test_select_configs_keeps_the_tile_list_aligned(make_tile) -> None:
    sub = _tile_record(make_tile, "k", 0).select_configs([2, 0])
    assert sub.measure_meta["tiles"] == [[1, 16, 32], None]
    assert describe_config(sub, 0) == "tile 1x16x32"
    assert describe_config(sub, 1).startswith("TVM default schedule")


def test_candidate_record_lists_its_tiles() -> None:
    pytest.importorskip("torch")
    from opgraph.perf.tile import KernelSpec, candidate_record

    rec = candidate_record(KernelSpec("matmul", (32, 16, 8), "bias_relu"), [None, (8, 8, 4)])
    assert describe_config(rec, 0) == "TVM default schedule (untiled: loops 32x16x8)"
    assert describe_config(rec, 1) == "tile 8x8x4"


def test_rank_cli_labels_the_default_schedule(tmp_path, make_tile) -> None:
    pytest.importorskip("torch_geometric")
    from click.testing import CliRunner

    from opgraph.perf.cli import group
    from opgraph.perf.model import CostModel, ModelConfig
    from opgraph.perf.tpugraphs import save_graph

    recs = [_tile_record(make_tile, f"k{i}", seed=i) for i in range(3)]
    for r in recs:
        save_graph(r, tmp_path / "data" / f"{r.name}.npz")
    model = CostModel(ModelConfig(kind="tile", hidden=8, epochs=1)).fit(recs)
    model.save(tmp_path / "m.pt")
    res = CliRunner().invoke(
        group, ["rank", "--model", str(tmp_path / "m.pt"), "--top", "4", str(tmp_path / "data" / "k0.npz")]
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    rows = [line for line in res.output.splitlines() if "tile" in line or "default" in line]
    assert sum("TVM default schedule (untiled: loops 1x32x32)" in line for line in rows) == 1
    assert not any("tile 1x32x32" in line for line in rows)
    assert sum(f"tile {t[0]}x{t[1]}x{t[2]}" in line for line in rows for t in TILES[1:]) == 3
