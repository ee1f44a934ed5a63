from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from opgraph.perf.errors import MissingDependencyError
from opgraph.perf.measure import MeasureSettings

HAS_TVM = importlib.util.find_spec("tvm") is not None


def test_missing_tvm_names_the_extra(monkeypatch):
    from opgraph.perf import tile

    monkeypatch.setitem(sys.modules, "tvm", None)
    with pytest.raises(MissingDependencyError, match=r"opgraph\[tvm\]"):
        tile.require_tvm()
    with pytest.raises(MissingDependencyError, match="apache-tvm"):
        tile.collect_tile([], "unused")


def test_kernel_specs_and_config_rows():
    from opgraph.perf.tile import KernelSpec, generate_kernels, sample_tiles, tile_config_row

    ks = generate_kernels(6, 0, scale=0.5)
    assert len({k.name for k in ks}) == 6 and {k.op for k in ks} == {"matmul", "batch_matmul", "conv2d"}
    spec = KernelSpec("matmul", (64, 32, 16))
    row = tile_config_row(spec, (8, 4, 2))
    assert row.shape == (24,)
    assert list(row[:3]) == [8, 4, 2] and row[6] == 14 and row[7] == 64  # kernel bounds, sum, product
    assert list(row[8:10]) == [8, 4] and list(row[16:18]) == [8, 2]
    tiles = sample_tiles(spec, 10, np.random.default_rng(0))
    assert tiles[0] is None and len(set(tiles)) == 10
    assert all(t[0] <= 64 and t[1] <= 32 and t[2] <= 16 for t in tiles[1:])


@pytest.mark.skipif(not HAS_TVM, reason="apache-tvm not installed (extra 'tvm')")
@pytest.mark.parametrize("op,dims", [("matmul", (32, 16, 8)), ("conv2d", (1, 4, 6, 6, 8, 3, 3))])
def test_scheduled_kernel_is_correct(op, dims):
    import torch
    import tvm

    from opgraph.perf.tile import KernelSpec, _te_func, schedule

    spec = KernelSpec(op, dims, "relu")
    _, shapes = _te_func(spec)
    rng = np.random.default_rng(0)
    data = [rng.random(s, dtype=np.float32) for s in shapes]
    if op == "matmul":
        expect = np.maximum(data[0] @ data[1], 0)
    else:
        expect = torch.relu(torch.nn.functional.conv2d(torch.from_numpy(data[0]), torch.from_numpy(data[1]))).numpy()
    for t in (None, (4, 4, 2)):
        fn = tvm.compile(schedule(spec, t), target=tvm.target.Target({"kind": "llvm"}))["main"]
        args = [tvm.runtime.tensor(d, tvm.cpu()) for d in data]
        fn(*args)
        np.testing.assert_allclose(args[-1].numpy(), expect, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not HAS_TVM, reason="apache-tvm not installed (extra 'tvm')")
def test_tile_collection_writes_normalised_records(tmp_path):
    from opgraph.perf.tile import KernelSpec, collect_tile
    from opgraph.perf.tpugraphs import load_graph

    spec = KernelSpec("matmul", (32, 32, 16), "bias_relu")
    res = collect_tile(
        [spec], tmp_path, n_configs=4, settings=MeasureSettings(rounds=2, reps=1, warmup=1), progress=False
    )
    rec = load_graph(res[0]["path"])
    assert rec.kind == "tile" and rec.n_configs == 4
    assert (rec.config_runtime_normalizers == rec.config_runtime_normalizers[0]).all()
    assert rec.measure_meta["kernel"]["op"] == "matmul" and rec.measure_meta["tiles"][0] is None
    assert np.isfinite(rec.target_runtime()).all()
