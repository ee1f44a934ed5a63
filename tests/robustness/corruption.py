"""Corruption engine of the robustness suite: every file opgraph reads, mutated, must load correctly or be refused.

Each :class:`FileFormat` makes one valid file (or folder) in a temporary directory, names the file to corrupt,
and loads it back into a comparable value. :func:`classify` loads a corrupted copy and returns one outcome:

* ``"same"``: the load succeeded and gave exactly the original content (the mutation hit bytes that do not
  matter, e.g. a zip timestamp);
* ``"valid-other"``: the load succeeded with other content, and the format has no checksum, so the mutated bytes
  are themselves a valid file (e.g. another pixel value in an idx file); for checksummed formats this outcome is
  a **silent wrong load** and is returned as ``"silent-wrong"`` instead;
* ``"refused"``: one :class:`opgraph.errors.OpgraphError`;
* ``"crash"``: any other exception (a traceback for the user).

The test (``tests/robustness/test_corruption.py``) and the counting script (``benchmarks/robustness/corrupt.py``)
share this module, so the numbers in docs/reliability.md come from the same code the CI runs.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from opgraph.errors import OpgraphError

OUTCOMES = ("same", "valid-other", "refused", "silent-wrong", "crash")


@dataclass
class Prepared:
    """A valid file ready to corrupt: ``target`` is the file to mutate, ``load()`` reads the whole input."""

    target: Path
    load: Callable[[], Any]
    reference: Any


@dataclass(frozen=True)
class FileFormat:
    """One kind of file the package reads."""

    name: str
    make: Callable[[Path], Prepared]
    checksummed: bool
    needs: str | None = None  # a module that must be importable for byte-level corruption
    shape_needs: str | None = None  # the same for JSON-shape mutations (JSON formats only)

    def missing(self, module: str | None) -> bool:
        """Whether ``module`` (e.g. ``"torch"`` or ``"opgraph._base.torchio"``) cannot be imported here."""
        import importlib.util

        if module is None:
            return False
        try:
            return importlib.util.find_spec(module) is None
        except ImportError:
            return True


# ------------------------------------------------------------------------------------------------------------
# mutations


@st.composite
def mutations(draw: Any, size: int) -> tuple[str, Callable[[bytes], bytes]]:
    """A named byte-level mutation of a file of ``size`` bytes (truncate, flip, insert, zero, replace, append)."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "zero", "replace", "append"]))
    if kind == "truncate":
        k = draw(st.integers(0, max(size - 1, 0)))
        return f"truncate@{k}", lambda b: b[:k]
    if kind == "flip":
        flips = draw(st.lists(st.tuples(st.integers(0, max(size - 1, 0)), st.integers(1, 255)), min_size=1, max_size=3))

        def flip(b: bytes) -> bytes:
            out = bytearray(b)
            for i, x in flips:
                if i < len(out):
                    out[i] ^= x
            return bytes(out)

        return f"flip{flips}", flip
    if kind == "insert":
        i = draw(st.integers(0, size))
        junk = draw(st.binary(min_size=1, max_size=16))
        return f"insert@{i}", lambda b: b[:i] + junk + b[i:]
    if kind == "zero":
        i = draw(st.integers(0, max(size - 1, 0)))
        n = draw(st.integers(1, 64))
        return f"zero@{i}+{n}", lambda b: b[:i] + bytes(len(b[i : i + n])) + b[i + n :]
    if kind == "replace":
        junk = draw(st.binary(min_size=0, max_size=256))
        return f"replace[{len(junk)}]", lambda b: junk
    tail = draw(st.binary(min_size=1, max_size=64))
    return f"append[{len(tail)}]", lambda b: b + tail


@st.composite
def json_mutations(draw: Any, doc: Any) -> tuple[str, Callable[[bytes], bytes]]:
    """Replace one value of a JSON document (at a random path) by a random JSON value: a file of the wrong shape."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(doc, ())
    path = draw(st.sampled_from(paths))
    leaves = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
    value = draw(
        st.recursive(
            leaves,
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
            max_leaves=6,
        )
    )

    def mutate(_: bytes) -> bytes:
        new = json.loads(json.dumps(doc))
        if not path:
            new = value
        else:
            node = new
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        return json.dumps(new).encode()

    return f"json{list(path)}={value!r}"[:120], mutate


def equal(a: Any, b: Any) -> bool:
    """Deep equality of nested dicts/lists/tuples of arrays, tensors and plain values (NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "detach") and hasattr(b, "detach"):
        a, b = a.detach().cpu().numpy(), b.detach().cpu().numpy()
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    return a == b or (a != a and b != b)


def classify(fmt: FileFormat, prepared: Prepared, mutate: Callable[[bytes], bytes]) -> tuple[str, str]:
    """Corrupt ``prepared.target`` with ``mutate``, load, and return ``(outcome, detail)``; restores the file."""
    original = prepared.target.read_bytes()
    corrupted = mutate(original)
    prepared.target.write_bytes(corrupted)
    try:
        value = prepared.load()
    except OpgraphError as exc:
        return "refused", str(exc).splitlines()[0][:200]
    except Exception as exc:  # noqa: BLE001 - this is what the suite looks for
        return "crash", f"{type(exc).__name__}: {exc}"[:300]
    finally:
        prepared.target.write_bytes(original)
    if equal(value, prepared.reference):
        return "same", ""
    if corrupted == original:  # pragma: no cover - a mutation that changed nothing cannot change the load
        return "silent-wrong", "identical bytes loaded differently"
    return ("silent-wrong" if fmt.checksummed else "valid-other"), ""


# ------------------------------------------------------------------------------------------------------------
# the formats


def _layout_arrays(seed: int = 0, c: int = 6) -> dict[str, np.ndarray]:
    from opgraph.perf.layout import encode_configs

    rng = np.random.default_rng(seed)
    n, nc = 5, 2
    return {
        "node_feat": rng.random((n, 140)).astype(np.float32),
        "node_opcode": rng.integers(1, 120, n).astype(np.uint8),
        "edge_index": np.array([[i + 1, i] for i in range(n - 1)], dtype=np.int64),
        "config_runtime": rng.integers(1000, 5000, c).astype(np.int64),
        "node_config_ids": np.arange(nc, dtype=np.int64),
        "node_config_feat": encode_configs(rng.integers(0, 2, (c, nc))).astype(np.float32),
        "node_splits": np.zeros((1, 1), dtype=np.int64),
    }


def _graph_value(path: Path, lazy: bool) -> dict[str, Any]:
    from opgraph.perf.tpugraphs import load_graph

    rec = load_graph(path, lazy=lazy)
    value = {
        "node_feat": rec.node_feat,
        "node_opcode": rec.node_opcode,
        "edge_index": rec.edge_index,
        "runtime": rec.target_runtime(),
    }
    if rec.kind == "layout":
        # Lazy: rows one by one (the path the trainer uses; seeking to rows short of the end skips zip's CRC check); else the array.
        if lazy:
            value["rows"] = rec.node_config_feat[np.arange(rec.n_configs // 2)]  # the first half
        else:
            value["configs"] = rec.config_matrix()
        value["ids"] = rec.node_config_ids
    else:
        value["configs"] = rec.config_matrix()
    return value


def make_layout(tmp: Path, *, compressed: bool, lazy: bool) -> Prepared:
    path = tmp / "graph.npz"
    # 150 configs: a node_config_feat member (21 kB) larger than zipfile's 4 kB read-ahead, so reading a few rows
    # does not reach the member's end (where zipfile checks the CRC by itself).
    (np.savez_compressed if compressed else np.savez)(path, **_layout_arrays(c=150))
    return Prepared(path, lambda: _graph_value(path, lazy), _graph_value(path, lazy))


def make_tile(tmp: Path) -> Prepared:
    rng = np.random.default_rng(1)
    path = tmp / "tile.npz"
    np.savez_compressed(
        path,
        node_feat=rng.random((3, 140)).astype(np.float32),
        node_opcode=np.array([1, 2, 3], dtype=np.uint8),
        edge_index=np.array([[1, 0], [2, 1]], dtype=np.int64),
        config_feat=rng.integers(1, 64, (4, 24)).astype(np.float32),
        config_runtime=rng.integers(100, 900, 4).astype(np.int64),
        config_runtime_normalizers=np.full(4, 100, dtype=np.int64),
    )
    return Prepared(path, lambda: _graph_value(path, True), _graph_value(path, True))


def _images_value(source: Path) -> dict[str, np.ndarray]:
    from opgraph.ffa import data

    ds = data.load(source)
    return {"x_train": ds.x_train, "y_train": ds.y_train, "x_test": ds.x_test, "y_test": ds.y_test}


def make_image_npz(tmp: Path) -> Prepared:
    rng = np.random.default_rng(2)
    path = tmp / "images.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (6, 8, 8)).astype(np.uint8),
        y_train=rng.integers(0, 3, 6),
        x_test=rng.integers(0, 256, (3, 8, 8)).astype(np.uint8),
        y_test=rng.integers(0, 3, 3),
    )
    return Prepared(path, lambda: _images_value(path), _images_value(path))


def _idx(array: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape) + array.tobytes()


def make_idx(tmp: Path, member: str) -> Prepared:
    from opgraph.ffa.data import _IDX_FILES

    rng = np.random.default_rng(3)
    folder = tmp / "idx"
    folder.mkdir()
    arrays = {
        "x_train": rng.integers(0, 256, (5, 8, 8)).astype(np.uint8),
        "y_train": rng.integers(0, 10, 5).astype(np.uint8),
        "x_test": rng.integers(0, 256, (2, 8, 8)).astype(np.uint8),
        "y_test": rng.integers(0, 10, 2).astype(np.uint8),
    }
    for key, stem in _IDX_FILES.items():
        (folder / stem).write_bytes(_idx(arrays[key]))
    return Prepared(folder / _IDX_FILES[member], lambda: _images_value(folder), _images_value(folder))


def _report_value(folder: Path) -> Any:
    from opgraph.report import rebuild_report
    from opgraph.report.page import load_report

    title, sections = load_report(folder)
    rebuild_report(folder)
    return title, [
        (s.id, s.title, s.summary, [(f.name, f.png, f.caption) for f in s.figures], s.data, s.notes) for s in sections
    ]


def make_report(tmp: Path) -> Prepared:
    from opgraph.report import Section, Table, write_report

    folder = tmp / "report"
    section = Section(
        id="demo",
        title="A section",
        summary="numbers",
        tables=[Table(["a", "b"], [[1, 2.5], [3, 4.0]], "a table")],
        data={"x": 1, "y": [1, 2]},
        notes=["a note"],
    )
    write_report([section], folder, title="robustness")
    return Prepared(folder / "report.json", lambda: _report_value(folder), _report_value(folder))


def make_perf_checkpoint(tmp: Path) -> Prepared:
    from opgraph.perf.model import CostModel, ModelConfig
    from opgraph.perf.tpugraphs import GraphRecord

    arrays = _layout_arrays(seed=4, c=6)
    rec = GraphRecord(name="g", kind="layout", **arrays)
    model = CostModel(ModelConfig(kind="layout", epochs=1, hidden=8, seed=0)).fit([rec], None, progress=False)
    path = model.save(tmp / "model.pt")

    def load() -> Any:
        return CostModel.load(path).predict(rec)

    return Prepared(Path(path), load, load())


def make_ffa_checkpoint(tmp: Path) -> Prepared:
    from opgraph.ffa import data, models
    from opgraph.ffa.mirroring import mirror
    from opgraph.ffa.training import CHECKPOINT, load_run, train

    src = make_image_npz(tmp)
    ds = data.load(src.target)
    pair = mirror(models.build("mlp", in_features=64, hidden=[8], n_classes=3, input_shape=[1, 8, 8]))
    run = tmp / "run"
    train(pair, ds, epochs=1, batch_size=4, run_dir=run, progress=False)

    def load() -> Any:
        res = load_run(run)
        return {k: v.detach().clone() for k, v in res.pair.state_dict().items()}

    return Prepared(run / CHECKPOINT, load, load())


def make_energy_values(tmp: Path, member: str) -> Prepared:
    import torch

    from opgraph.energy.recorder import load, record

    def fn(x: torch.Tensor) -> torch.Tensor:
        return (x @ x.T).relu().sum(0)

    run = record(fn, torch.arange(12, dtype=torch.float32).reshape(3, 4))
    folder = run.save(tmp / "run")

    def value() -> Any:
        r = load(folder)
        return {"graph": json.dumps(r.graph.to_dict(), sort_keys=True, default=str), "values": r.values}

    return Prepared(folder / member, value, value())


FORMATS: dict[str, FileFormat] = {
    f.name: f
    for f in [
        FileFormat("tpugraphs-layout-npz (stored, lazy)", lambda t: make_layout(t, compressed=False, lazy=True), True),
        FileFormat("tpugraphs-layout-npz (deflated)", lambda t: make_layout(t, compressed=True, lazy=False), True),
        FileFormat("tpugraphs-tile-npz", make_tile, True),
        FileFormat("ffa-images-npz", make_image_npz, True),
        FileFormat("ffa-idx-images", lambda t: make_idx(t, "x_train"), False),
        FileFormat("ffa-idx-labels", lambda t: make_idx(t, "y_test"), False),
        # The loaders below read through the shared base layer (opgraph._base: strict JSON, weights-only torch
        # loads with one-line errors); the formats are skipped where that layer is not present.
        FileFormat("report.json", make_report, False, needs="opgraph._base.jsonio", shape_needs=None),
        FileFormat("perf-checkpoint", make_perf_checkpoint, True, needs="opgraph._base.torchio"),
        FileFormat("ffa-checkpoint", make_ffa_checkpoint, True, needs="opgraph._base.torchio"),
        FileFormat(
            "energy-values.pt", lambda t: make_energy_values(t, "values.pt"), True, needs="opgraph._base.torchio"
        ),
        FileFormat(
            "energy-graph.json",
            lambda t: make_energy_values(t, "graph.json"),
            False,
            needs="opgraph._base.torchio",
            shape_needs="opgraph._base.torchio",
        ),
    ]
}
