"""The resumable real-zoo collection job (tiny ``ci`` preset)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from opgraph.perf.collect import (  # noqa: E402
    KERNELS_FILE,
    _guarded_task,
    _GuardedTask,
    _LayoutTask,
    collect_real,
    real_layout_specs,
    real_tile_kernels,
)
from opgraph.perf.errors import PerfError  # noqa: E402
from opgraph.perf.measure import MeasureSettings  # noqa: E402
from opgraph.perf.tpugraphs import TpuGraphsDataset, load_graph, validate  # noqa: E402

FAST = MeasureSettings(rounds=2, reps=1, warmup=1)


def test_full_preset_has_200_distinct_layout_graphs_every_architecture_first():
    specs = real_layout_specs("full")
    assert len(specs) >= 200 and len({s.name for s in specs}) == len(specs)
    assert all(s.convolutional for s in specs)
    head = specs[:20]  # every family x size at scale 1, batch 1 before any variant
    assert {(s.family, s.size) for s in head} == {(s.family, s.size) for s in specs}
    assert all(s.scale == 1.0 and s.batch == 1 for s in head)
    with pytest.raises(PerfError, match="preset"):
        real_layout_specs("huge")


def test_layout_collection_resumes_and_records_the_noise_ceiling(tmp_path):
    res = collect_real(tmp_path, preset="ci", spaces=("layout",), layout_configs=3, settings=FAST, progress=False)
    rows = res["layout"]
    assert [r["status"] for r in rows] == ["measured", "measured"]
    files = sorted((tmp_path / "layout" / "real" / "random" / "train").glob("*.npz"))
    assert [f.stem for f in files] == sorted(s.name for s in real_layout_specs("ci"))
    for f in files:
        rec = load_graph(f)
        validate(rec)
        assert rec.config_runtime.shape == (3,) and rec.config_runtime_rounds.shape == (3, 2)
        assert "tau_between_rounds" in rec.measure_meta and "noise" in rec.measure_meta
        assert rec.measure_meta["zoo"]["family"] in ("resnet", "convnext")
        assert rec.measure_meta["collect_s"] > 0
    assert len(TpuGraphsDataset(tmp_path, "layout", source="real", search="random", split="train")) == 2
    before = {f: os.stat(f).st_mtime_ns for f in files}
    again = collect_real(tmp_path, preset="ci", spaces=("layout",), layout_configs=3, settings=FAST, progress=False)
    assert [r["status"] for r in again["layout"]] == ["kept", "kept"]
    assert {f: os.stat(f).st_mtime_ns for f in files} == before


def test_deadline_starts_nothing_and_a_failure_is_reported_not_raised(tmp_path):
    res = collect_real(
        tmp_path, preset="ci", spaces=("layout",), layout_configs=3, settings=FAST, deadline_unix=0.0, progress=False
    )
    assert [r["status"] for r in res["layout"]] == ["deadline", "deadline"]
    assert not list(tmp_path.rglob("*.npz"))

    @dataclass(frozen=True)
    class Broken:
        name: str = "broken"
        family: str = "resnet"

        def build(self):
            raise RuntimeError("cannot build")

    half = collect_real(
        tmp_path, preset="ci", spaces=("layout",), layout_configs=2, settings=FAST, shard=(1, 2), progress=False
    )
    assert [r["name"] for r in half["layout"]] == [real_layout_specs("ci")[1].name]
    with pytest.raises(PerfError, match="shard"):
        collect_real(tmp_path, preset="ci", spaces=("layout",), shard=(2, 2), progress=False)

    out = _guarded_task(_GuardedTask(_LayoutTask(Broken(), str(tmp_path / "broken.npz"), 3, FAST), None), 0)
    assert out["status"] == "failed" and "cannot build" in out["error"]
    assert not (tmp_path / "broken.npz").exists()


def test_dask_local_cluster_one_worker_gives_the_serial_configs(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    serial = tmp_path / "serial"
    collect_real(serial, preset="ci", spaces=("layout",), layout_configs=3, settings=FAST, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://", dashboard_address=None
        ) as cluster:
            address = cluster.scheduler_address.replace("tcp://", "dask://")
            res = collect_real(
                tmp_path / "dask",
                preset="ci",
                spaces=("layout",),
                layout_configs=3,
                settings=FAST,
                executor=address,
                progress=False,
            )
    assert [r["status"] for r in res["layout"]] == ["measured", "measured"]
    for r in res["layout"]:
        a = load_graph(r["path"])
        b = load_graph(serial / "layout" / "real" / "random" / "train" / f"{r['name']}.npz")
        assert np.array_equal(np.asarray(a.node_config_feat), np.asarray(b.node_config_feat))
        assert np.array_equal(a.node_feat, b.node_feat)


def test_tile_kernels_are_listed_once_and_measured(tmp_path):
    pytest.importorskip("tvm")
    res = collect_real(tmp_path, preset="ci", spaces=("tile",), tile_configs=3, settings=FAST, limit=2, progress=False)
    assert [r["status"] for r in res["tile"]] == ["measured", "measured"]
    listed = real_tile_kernels(tmp_path, "ci", progress=False)
    names = [k.name for k, _ in listed]
    assert len(names) == len(set(names)) >= 6
    assert all(src and ":" in src[0] for _, src in listed)  # model:module_path of each kernel
    assert [r["name"] for r in res["tile"]] == names[:2]
    for r in res["tile"]:
        rec = load_graph(r["path"])
        assert rec.kind == "tile" and rec.config_feat.shape[1] == 24
        assert rec.measure_meta["tiles"][0] is None  # row 0: TVM's default schedule, the normaliser
    (tmp_path / KERNELS_FILE).write_text('{"preset": "full", "kernels": []}')
    with pytest.raises(PerfError, match="preset 'ci'"):
        real_tile_kernels(tmp_path, "ci", progress=False)


def test_cli_collect_real(tmp_path):
    from click.testing import CliRunner

    from opgraph.perf.cli import group

    r = CliRunner().invoke(
        group,
        [
            "collect-real",
            "--out",
            str(tmp_path),
            "--preset",
            "ci",
            "--space",
            "layout",
            "--limit",
            "1",
            "--layout-configs",
            "2",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "layout: 1 measured" in r.output
    r = CliRunner().invoke(
        group,
        [
            "collect-real",
            "--out",
            str(tmp_path),
            "--preset",
            "ci",
            "--space",
            "layout",
            "--limit",
            "1",
            "--layout-configs",
            "1",
        ],
    )
    assert isinstance(r.exception, PerfError) and "--layout-configs 1 must be >= 2" in str(r.exception)
