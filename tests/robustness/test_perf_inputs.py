"""perf: LazyConfigFeat bounds and replaced files, datasets that would train silently to Kendall 0, bad options."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from opgraph.perf.errors import SchemaError
from opgraph.perf.layout import encode_configs
from opgraph.perf.tpugraphs import GraphRecord, LazyConfigFeat, load_graph, save_graph


def layout(c=8, n=6, nc=2, seed=0, **changes):
    rng = np.random.default_rng(seed)
    arrays = dict(
        name="g",
        kind="layout",
        node_feat=rng.random((n, 140)).astype(np.float32),
        node_opcode=rng.integers(1, 120, n),
        edge_index=np.array([[i + 1, i] for i in range(n - 1)], dtype=np.int64).reshape(-1, 2),
        config_runtime=rng.integers(1000, 5000, c),
        node_config_ids=np.arange(nc, dtype=np.int64),
        node_config_feat=encode_configs(rng.integers(0, 2, (c, nc))),
        node_splits=np.array([0], dtype=np.int64),
    )
    arrays.update(changes)
    return arrays


def write_npz(path: Path, arrays: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in arrays.items() if k not in ("name", "kind")})
    return path


def test_lazy_index_out_of_range_raises_instead_of_wrapping(tmp_path):
    rec = GraphRecord(**layout())
    path = save_graph(rec, tmp_path / "g.npz", compress=False)
    lazy = load_graph(path).node_config_feat
    assert isinstance(lazy, LazyConfigFeat)
    full = np.asarray(lazy)
    np.testing.assert_array_equal(lazy[7], full[7])
    np.testing.assert_array_equal(lazy[-1], full[7])
    np.testing.assert_array_equal(lazy[[3, -8, 0]], full[[3, -8, 0]])
    np.testing.assert_array_equal(lazy[np.array([[1, 2], [3, 4]])], full[np.array([[1, 2], [3, 4]])])
    for bad in (8, -9, [0, 8], np.array([100])):
        with pytest.raises(IndexError, match="out of bounds"):
            lazy[bad]
    with pytest.raises(IndexError):
        lazy[np.ones(3, dtype=bool)]


def test_lazy_read_after_file_replaced_is_refused(tmp_path):
    path = save_graph(GraphRecord(**layout(seed=0)), tmp_path / "g.npz", compress=False)
    lazy = load_graph(path).node_config_feat
    first = lazy[0]
    save_graph(GraphRecord(**layout(seed=1)), tmp_path / "other.npz", compress=False)
    os.replace(tmp_path / "other.npz", path)
    with pytest.raises(SchemaError, match="changed after it was loaded"):
        lazy[0]
    with pytest.raises(SchemaError, match="changed after it was loaded"):
        np.asarray(lazy)
    assert first.shape == (2, 18)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"config_runtime": np.r_[0, np.full(7, 1000)]}, "runtimes are positive"),
        ({"config_runtime": -np.arange(1, 9)}, "runtimes are positive"),
        ({"node_config_feat": np.full((8, 2, 18), np.inf, np.float32)}, "NaN or inf"),
        ({"node_feat": np.full((6, 140), np.nan, np.float32)}, "NaN or inf"),
        (
            {
                "node_feat": np.zeros((0, 140), np.float32),
                "node_opcode": np.zeros(0, int),
                "edge_index": np.zeros((0, 2), int),
                "node_config_ids": np.zeros(0, int),
                "node_config_feat": np.zeros((8, 0, 18), np.float32),
            },
            "no rows",
        ),
        (
            {"config_runtime": np.zeros(0, int), "node_config_feat": np.zeros((0, 2, 18), np.float32)},
            "no configurations",
        ),
        ({"node_feat": np.array([["a"] * 140] * 6)}, "cannot be read"),
    ],
)
@pytest.mark.parametrize("lazy", [True, False])
def test_datasets_that_would_train_to_nothing_are_refused(tmp_path, changes, needle, lazy):
    path = write_npz(tmp_path / "g.npz", layout(**changes))
    with pytest.raises(SchemaError, match=needle):
        rec = load_graph(path, lazy=lazy)
        rec.config_matrix()  # lazy features are checked as they are read


def test_tile_inf_config_features_refused(tmp_path):
    rng = np.random.default_rng(0)
    arrays = dict(
        node_feat=rng.random((3, 140)).astype(np.float32),
        node_opcode=np.array([1, 2, 3]),
        edge_index=np.array([[1, 0], [2, 1]]),
        config_runtime=np.array([100, 200]),
        config_feat=np.full((2, 24), np.inf, np.float32),
        config_runtime_normalizers=np.array([100, 100]),
    )
    path = write_npz(tmp_path / "t.npz", arrays)
    with pytest.raises(SchemaError, match="config_feat' holds NaN or inf"):
        load_graph(path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--epochs", "0"], "--epochs 0 must be >= 1"),
        (["train", "--valid-frac", "1.5"], "--valid-frac 1.5"),
        (["train", "--hidden", "0"], "--hidden 0"),
        (["collect", "--rounds", "0"], "--rounds 0 must be >= 1"),
        (["collect", "--reps", "0"], "--reps 0 must be >= 1"),
    ],
)
def test_bad_perf_options_are_refused(tmp_path, cli_error, args, needle):
    pytest.importorskip("torch")
    write_npz(tmp_path / "d" / "g.npz", layout())
    where = ["--data", str(tmp_path / "d")] if args[0] == "train" else []
    cli_error("perf", *args, *where, "--out", str(tmp_path / "o"), needles=(needle,))


NO_TORCH = textwrap.dedent(
    """
    import sys

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _Block())
    from opgraph.cli import main

    main(sys.argv[1:])
    """
)


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["perf", "train", "--data", "d", "--out", "m.pt"], "opgraph[perf]"),
        (["perf", "rank", "--model", "m.pt", "g.npz"], "opgraph[perf]"),
        (["ffa", "train", "--data", "digits"], "opgraph[ffa]"),
    ],
)
def test_missing_torch_names_the_extra(tmp_path, args, extra):
    script = tmp_path / "no_torch.py"
    script.write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and extra in lines[0], proc.stderr


def test_demo_without_torch_has_no_tracebacks(tmp_path):
    script = tmp_path / "no_torch.py"
    script.write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, str(script), "demo", "--out", str(tmp_path / "demo"), "--only", "perf", "--only", "ffa"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    output = proc.stdout + proc.stderr  # the CLI logs through rich, to stdout
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "pip install 'opgraph[perf]'" in output and "pip install 'opgraph[ffa]'" in output


def test_lazy_rows_of_a_corrupt_member_are_refused(tmp_path):
    """Seeking to a row skips zip's CRC check; LazyConfigFeat verifies the member once before serving rows."""
    import zipfile

    path = tmp_path / "g.npz"
    np.savez(path, **{k: v for k, v in layout(c=150).items() if k not in ("name", "kind")})
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("node_config_feat.npy")
    data = bytearray(path.read_bytes())
    import struct

    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    member = info.header_offset + 30 + name_len + extra_len
    header_len = struct.unpack("<H", data[member + 8 : member + 10])[0]
    first_row = member + 10 + header_len
    data[first_row + 5] ^= 0x01  # a bit of config 0: still a finite float
    path.write_bytes(bytes(data))
    lazy = load_graph(path, lazy=True).node_config_feat
    with pytest.raises(SchemaError, match="CRC"):
        lazy[0]


def test_factory_returning_a_non_module_is_refused(tmp_path):
    pytest.importorskip("torch")
    from opgraph.perf.errors import PerfError

    factory = tmp_path / "f.py"
    factory.write_text("def make():\n    return (lambda x: x), (1,)\n")
    from opgraph.perf.cli import load_factory

    with pytest.raises(PerfError, match="must return a torch nn.Module"):
        load_factory(f"{factory}:make")
