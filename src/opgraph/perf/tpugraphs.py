"""Read and write the TpuGraphs npz schema (tile and layout collections) and walk the collection tree.

One graph is one ``.npz`` file:

* every file: ``node_feat`` f32[n,140], ``node_opcode`` int[n], ``edge_index`` int[m,2] (row ``[u, v]``: u
  consumes the output of v; (2,m) is accepted on read);
* tile: ``config_feat`` f32[c,24], ``config_runtime`` int[c] (ns), ``config_runtime_normalizers`` int[c];
* layout: ``node_config_ids`` int[nc], ``node_config_feat`` f32[c,nc,18], ``config_runtime`` int[c],
  ``node_splits`` int[1,k].

Files written by opgraph add ``config_runtime_std`` f64[c] (ns, across rounds), ``config_runtime_rounds``
int[c,R] (ns, one column per measuring round) and ``measure_meta`` (a JSON string: CPU, threads, versions, load
average, noise, inter-round Kendall tau). The official loaders ignore these keys.

``node_config_feat`` of a real layout graph can take gigabytes once decompressed, so :func:`load_graph` returns it
as a :class:`LazyConfigFeat` that reads only the rows (configs) that are indexed.
"""

from __future__ import annotations

import json
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.perf.errors import SchemaError

log = logging.getLogger(__name__)

#: Version of the node/config feature definitions produced by :mod:`opgraph.perf.features`.
FEATURE_VERSION = 1
NODE_FEAT_DIM = 140
TILE_CONFIG_DIM = 24
LAYOUT_CONFIG_DIM = 18
KINDS = ("tile", "layout")
SPLITS = ("train", "valid", "test")

_COMMON = ("node_feat", "node_opcode", "edge_index")
_TILE = ("config_feat", "config_runtime", "config_runtime_normalizers")
_LAYOUT = ("node_config_ids", "node_config_feat", "config_runtime", "node_splits")


class LazyConfigFeat:
    """``node_config_feat`` of a layout file, read row by row from the npz member on demand.

    Indexing with an int, slice or integer array reads only those configs; ``np.asarray(lazy)`` reads all.
    Indices follow NumPy: ``-n <= i < n``, anything else raises :class:`IndexError` (never wraps around).
    Works for stored and deflated members (deflated ones are decompressed from the start on each seek).
    The file's size, modification time and inode are remembered: reading after the file was replaced raises
    :class:`SchemaError` instead of mixing rows of two files. Seeking skips the zip CRC check, so the first read
    streams the whole member once (constant memory) to verify its CRC-32: a corrupt byte is refused, not served.
    """

    def __init__(self, path: Path, key: str = "node_config_feat") -> None:
        self.path = Path(path)
        self.key = key
        self._stamp = self._file_stamp()
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(key + ".npy") as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                self._offset = fh.tell()
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise SchemaError(f"{self.path}: member {key!r} cannot be read ({type(exc).__name__}: {exc})") from None
        if fortran:
            raise SchemaError(f"{self.path}: {key} is stored in Fortran order; rewrite it in C order")
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "biuf":
            raise SchemaError(f"{self.path}: {key} has dtype {self.dtype}; expected a numeric array")
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self._row_items = int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1
        self._verified = False

    def _verify_member(self, zf: zipfile.ZipFile) -> None:
        """Read the member to its end once, so that zipfile checks its CRC-32 (raises BadZipFile if corrupt)."""
        if self._verified:
            return
        with zf.open(self.key + ".npy") as fh:
            while fh.read(1 << 22):
                pass
        self._verified = True

    def _file_stamp(self) -> tuple[int, int, int]:
        try:
            st = self.path.stat()
        except OSError as exc:
            raise SchemaError(f"{self.path}: cannot be read ({exc}); reload the dataset") from None
        return (st.st_size, st.st_mtime_ns, st.st_ino)

    def _check_unchanged(self) -> None:
        if self._file_stamp() != self._stamp:
            raise SchemaError(
                f"{self.path} changed after it was loaded (size, time or inode differ); load the dataset again"
            )

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        """Integer row indices, negative ones counted from the end; out-of-range ones raise IndexError."""
        n = self.shape[0]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"index {int(bad)} is out of bounds for {self.key} with {n} configs")
        return np.where(idx < 0, idx + n, idx)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        """Number of dimensions (3 for a valid file)."""
        return len(self.shape)

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        self._check_unchanged()
        out = np.empty((len(rows),) + self.shape[1:], dtype=self.dtype)
        row_bytes = self._row_items * self.dtype.itemsize
        order = np.argsort(rows, kind="stable")
        try:
            with zipfile.ZipFile(self.path) as zf:
                self._verify_member(zf)
                with zf.open(self.key + ".npy") as fh:
                    for j in order:
                        fh.seek(self._offset + int(rows[j]) * row_bytes)
                        buf = fh.read(row_bytes)
                        if len(buf) != row_bytes:
                            raise SchemaError(
                                f"{self.path}: {self.key} is truncated (config {int(rows[j])} is incomplete); "
                                "re-create the file"
                            )
                        out[j] = np.frombuffer(buf, dtype=self.dtype).reshape(self.shape[1:])
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise SchemaError(f"{self.path}: {self.key} cannot be read ({type(exc).__name__}: {exc})") from None
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            raise SchemaError(f"{self.path}: {self.key} holds NaN or inf values; re-create the file")
        return out

    def __getitem__(self, idx: Any) -> np.ndarray:
        if isinstance(idx, tuple):
            return self[idx[0]][(slice(None),) + idx[1:]] if not np.isscalar(idx[0]) else self[idx[0]][idx[1:]]
        if isinstance(idx, slice):
            rows = np.arange(self.shape[0])[idx]
            return self._read_rows(rows)
        arr = np.asarray(idx)
        if arr.dtype == bool:
            if arr.shape != (self.shape[0],):
                raise IndexError(f"boolean index of shape {arr.shape} does not match {self.shape[0]} configs")
            return self._read_rows(np.flatnonzero(arr))
        if arr.dtype.kind not in "iu":
            raise IndexError(f"{self.key} indices must be integers, got dtype {arr.dtype}")
        if arr.ndim == 0:
            return self._read_rows(self._rows(arr.reshape(1).astype(np.int64)))[0]
        return self._read_rows(self._rows(arr.astype(np.int64).reshape(-1))).reshape(arr.shape + self.shape[1:])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        self._check_unchanged()
        try:
            with np.load(self.path, allow_pickle=False) as z:
                arr = z[self.key]
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise SchemaError(f"{self.path}: {self.key} cannot be read ({type(exc).__name__}: {exc})") from None
        if arr.shape != self.shape:
            raise SchemaError(f"{self.path}: {self.key} changed shape after loading; load the dataset again")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise SchemaError(f"{self.path}: {self.key} holds NaN or inf values; re-create the file")
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyConfigFeat({self.path.name}, shape={self.shape}, dtype={self.dtype})"


@dataclass(frozen=True, eq=False)
class GraphRecord:
    """One TpuGraphs graph with its configurations and (optionally) measured runtimes.

    Attributes:
        name: Graph name (file stem).
        kind: ``"tile"`` or ``"layout"``.
        node_feat: float32[n, 140] node features (:mod:`opgraph.perf.features` documents the columns).
        node_opcode: int64[n] HLO opcode ids.
        edge_index: int64[m, 2], row ``[consumer, producer]``.
        config_runtime: int64[c] runtime of each config in ns, or ``None`` (unlabelled test file).
        config_feat: tile only: float32[c, 24].
        config_runtime_normalizers: tile only (optional for layout): int64[c] runtime of the default config in the
            same run, ns.
        node_config_ids: layout only: int64[nc] ids of the configurable nodes.
        node_config_feat: layout only: [c, nc, 18] (ndarray or :class:`LazyConfigFeat`).
        node_splits: layout only: int64[k] first node of each HLO computation.
        config_runtime_std: float64[c] std of the runtime across rounds (ns), opgraph files only.
        config_runtime_rounds: int64[c, R] runtime per measuring round (ns), opgraph files only.
        measure_meta: Measurement provenance (CPU, threads, versions, noise, inter-round tau).
        path: File it was read from, if any.
    """

    name: str
    kind: str
    node_feat: np.ndarray
    node_opcode: np.ndarray
    edge_index: np.ndarray
    config_runtime: np.ndarray | None
    config_feat: np.ndarray | None = None
    config_runtime_normalizers: np.ndarray | None = None
    node_config_ids: np.ndarray | None = None
    node_config_feat: Any = None
    node_splits: np.ndarray | None = None
    config_runtime_std: np.ndarray | None = None
    config_runtime_rounds: np.ndarray | None = None
    measure_meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        validate(self)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_feat.shape[0])

    @property
    def n_configs(self) -> int:
        """Number of configurations."""
        if self.kind == "tile":
            return int(self.config_feat.shape[0])  # type: ignore[union-attr]
        return int(self.node_config_feat.shape[0])

    @property
    def has_runtimes(self) -> bool:
        """True when the file carries measured runtimes."""
        return self.config_runtime is not None

    def target_runtime(self) -> np.ndarray:
        """Runtime used for ranking: ``config_runtime / config_runtime_normalizers`` for tile, raw for layout."""
        if self.config_runtime is None:
            raise SchemaError(f"{self.name}: no config_runtime in this file (an unlabelled test split?)")
        rt = self.config_runtime.astype(np.float64)
        if self.kind == "tile" and self.config_runtime_normalizers is not None:
            rt = rt / np.maximum(self.config_runtime_normalizers.astype(np.float64), 1.0)
        return rt

    def config_matrix(self, idx: Any = None) -> np.ndarray:
        """Config features of the selected configs as a dense float32 array ([k,24] or [k,nc,18])."""
        src = self.config_feat if self.kind == "tile" else self.node_config_feat
        if idx is None:
            return np.asarray(src, dtype=np.float32)
        return np.asarray(src[np.asarray(idx)], dtype=np.float32)

    def select_configs(self, idx: Sequence[int] | np.ndarray) -> GraphRecord:
        """Return a record holding only the configs ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.asarray(a)[idx]

        changes: dict[str, Any] = {
            "config_runtime": pick(self.config_runtime),
            "config_runtime_normalizers": pick(self.config_runtime_normalizers),
            "config_runtime_std": pick(self.config_runtime_std),
            "config_runtime_rounds": pick(self.config_runtime_rounds),
        }
        if self.kind == "tile":
            changes["config_feat"] = self.config_matrix(idx)
            tiles = self.measure_meta.get("tiles")
            if isinstance(tiles, list) and len(tiles) == self.n_configs:  # the tile of each config, kept aligned
                changes["measure_meta"] = {**self.measure_meta, "tiles": [tiles[int(j)] for j in idx]}
        else:
            changes["node_config_feat"] = self.config_matrix(idx)
        return replace(self, **changes)

    def to_pyg(self, configs: Sequence[int] | np.ndarray | None = None) -> Any:
        """This graph as a PyTorch Geometric ``Data`` object (extra ``perf``).

        Attributes of the ``Data``: ``x`` float32[n,140] node features, ``op`` int64[n] opcodes, ``edge_index``
        int64[2,m] in PyG's source -> target order (producer -> consumer), ``y`` float32[c] target runtimes
        (:meth:`target_runtime`; absent without runtimes), ``name``; tile: ``config_feat`` float32[c,24];
        layout: ``config_node_index`` int64[nc] (the configurable nodes; "index" in the name makes PyG's batching
        shift it by the node offset of each graph like ``edge_index``) and ``node_config_feat`` float32[nc,c,18]
        (node-major, so graphs with the same number of configs batch along the node dimension).

        Args:
            configs: Config indices to keep (default all); equal counts per graph let a ``DataLoader`` batch them.
        """
        from opgraph.perf.errors import require

        torch = require("torch", "perf")
        pyg_data = require("torch_geometric.data", "perf")
        rec = self if configs is None else self.select_configs(configs)
        edges = np.asarray(rec.edge_index, dtype=np.int64).reshape(-1, 2)
        data = pyg_data.Data(  # type: ignore[attr-defined]
            x=torch.from_numpy(np.ascontiguousarray(rec.node_feat, dtype=np.float32)),
            op=torch.from_numpy(np.ascontiguousarray(rec.node_opcode, dtype=np.int64)),
            edge_index=torch.from_numpy(np.ascontiguousarray(edges[:, ::-1].T)),
            num_nodes=rec.n_nodes,
            name=rec.name,
        )
        if rec.has_runtimes:
            data.y = torch.from_numpy(rec.target_runtime().astype(np.float32))
        if rec.kind == "tile":
            data.config_feat = torch.from_numpy(rec.config_matrix())
        else:
            data.config_node_index = torch.from_numpy(np.asarray(rec.node_config_ids, dtype=np.int64))
            data.node_config_feat = torch.from_numpy(np.ascontiguousarray(rec.config_matrix().transpose(1, 0, 2)))
        return data

    def deduplicate(self) -> GraphRecord:
        """Merge configs with identical features, averaging their runtimes (as the Kaggle winners did)."""
        feats = self.config_matrix().reshape(self.n_configs, -1)
        _, first, inverse = np.unique(feats, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        if len(first) == self.n_configs:
            return self
        order = np.argsort(first)  # keep first-occurrence order
        keep = first[order]
        remap = np.empty_like(order)
        remap[order] = np.arange(len(order))
        group = remap[inverse]
        counts = np.bincount(group, minlength=len(keep)).astype(np.float64)

        def avg(a: np.ndarray | None, as_int: bool) -> np.ndarray | None:
            if a is None:
                return None
            a = np.asarray(a)
            s = np.zeros((len(keep),) + a.shape[1:], dtype=np.float64)
            np.add.at(s, group, a.astype(np.float64))
            s /= counts.reshape((-1,) + (1,) * (a.ndim - 1))
            return np.rint(s).astype(np.int64) if as_int else s

        out = self.select_configs(keep)
        log.info("%s: merged %d duplicate configs", self.name, self.n_configs - len(keep))
        return replace(
            out,
            config_runtime=avg(self.config_runtime, True),
            config_runtime_normalizers=avg(self.config_runtime_normalizers, True),
            config_runtime_std=avg(self.config_runtime_std, False),
            config_runtime_rounds=avg(self.config_runtime_rounds, True),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays in the exact npz schema (plus opgraph's extra keys when present)."""
        arrays: dict[str, np.ndarray] = {
            "node_feat": np.asarray(self.node_feat, dtype=np.float32),
            "node_opcode": np.asarray(self.node_opcode, dtype=np.uint8),
            "edge_index": np.asarray(self.edge_index, dtype=np.int64).reshape(-1, 2),
        }
        if self.config_runtime is not None:
            arrays["config_runtime"] = np.asarray(self.config_runtime, dtype=np.int64)
        if self.kind == "tile":
            arrays["config_feat"] = self.config_matrix()
            if self.config_runtime_normalizers is not None:
                arrays["config_runtime_normalizers"] = np.asarray(self.config_runtime_normalizers, dtype=np.int64)
        else:
            arrays["node_config_ids"] = np.asarray(self.node_config_ids, dtype=np.int64)
            arrays["node_config_feat"] = self.config_matrix()
            splits = self.node_splits if self.node_splits is not None else np.zeros(1, dtype=np.int64)
            arrays["node_splits"] = np.asarray(splits, dtype=np.int64).reshape(1, -1)
            if self.config_runtime_normalizers is not None:
                arrays["config_runtime_normalizers"] = np.asarray(self.config_runtime_normalizers, dtype=np.int64)
        if self.config_runtime_std is not None:
            arrays["config_runtime_std"] = np.asarray(self.config_runtime_std, dtype=np.float64)
        if self.config_runtime_rounds is not None:
            arrays["config_runtime_rounds"] = np.asarray(self.config_runtime_rounds, dtype=np.int64)
        if self.measure_meta:
            arrays["measure_meta"] = np.array(json.dumps(self.measure_meta, sort_keys=True, default=str))
        return arrays

    def __repr__(self) -> str:
        rt = ""
        if self.config_runtime is not None and len(self.config_runtime):
            r = self.target_runtime()
            rt = f", runtime {r.min():.4g}..{r.max():.4g}" + ("" if self.kind == "layout" else " (normalised)")
        nc = "" if self.kind == "tile" else f", {len(self.node_config_ids)} configurable"  # type: ignore[arg-type]
        return (
            f"GraphRecord({self.name!r}, {self.kind}, {self.n_nodes} nodes, {len(self.edge_index)} edges{nc}, "
            f"{self.n_configs} configs{rt})"
        )


def _shape_error(where: str, key: str, expected: str, got: Any) -> SchemaError:
    return SchemaError(f"{where}: key {key!r} has shape {tuple(got)}, expected {expected}")


def _as_int(where: str, key: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iub":
        if a.dtype.kind == "f" and a.size and np.all(np.isfinite(a)) and np.all(a == np.rint(a)):
            return a.astype(np.int64)
        raise SchemaError(f"{where}: key {key!r} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def _normalise_edges(where: str, edges: np.ndarray, n: int) -> np.ndarray:
    edges = _as_int(where, "edge_index", edges)
    if edges.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if edges.ndim != 2 or 2 not in edges.shape:
        raise _shape_error(where, "edge_index", "(m, 2) or (2, m)", edges.shape)
    if edges.shape[1] != 2:
        edges = edges.T
    if edges.min() < 0 or edges.max() >= n:
        raise SchemaError(f"{where}: key 'edge_index' refers to node {int(edges.max())} but there are {n} nodes")
    return np.ascontiguousarray(edges)


def validate(rec: GraphRecord) -> None:
    """Check every array of ``rec`` against the schema; raise :class:`SchemaError` naming the key and shape."""
    where = str(rec.path or rec.name)
    if rec.kind not in KINDS:
        raise SchemaError(f"{where}: kind must be one of {KINDS}, got {rec.kind!r}")
    nf = np.asarray(rec.node_feat)
    if nf.ndim != 2 or nf.shape[1] != NODE_FEAT_DIM:
        raise _shape_error(where, "node_feat", f"(n, {NODE_FEAT_DIM})", nf.shape)
    n = nf.shape[0]
    if n == 0:
        raise SchemaError(f"{where}: key 'node_feat' has no rows; a graph needs at least one node")
    if not np.isfinite(nf).all():
        raise SchemaError(f"{where}: key 'node_feat' holds NaN or inf values; re-create the file")
    if np.asarray(rec.node_opcode).shape != (n,):
        raise _shape_error(where, "node_opcode", f"({n},)", np.asarray(rec.node_opcode).shape)
    e = np.asarray(rec.edge_index)
    if e.ndim != 2 or e.shape[1] != 2:
        raise _shape_error(where, "edge_index", "(m, 2)", e.shape)
    if rec.kind == "tile":
        if rec.config_feat is None:
            raise SchemaError(f"{where}: tile file lacks key 'config_feat' (shape (c, {TILE_CONFIG_DIM}))")
        cf = np.asarray(rec.config_feat)
        if cf.ndim != 2 or cf.shape[1] != TILE_CONFIG_DIM:
            raise _shape_error(where, "config_feat", f"(c, {TILE_CONFIG_DIM})", cf.shape)
        if not np.isfinite(cf).all():
            raise SchemaError(f"{where}: key 'config_feat' holds NaN or inf values; re-create the file")
        c = cf.shape[0]
    else:
        if rec.node_config_ids is None or rec.node_config_feat is None:
            raise SchemaError(f"{where}: layout file lacks key 'node_config_ids' or 'node_config_feat'")
        nc = len(rec.node_config_ids)
        shp = tuple(rec.node_config_feat.shape)
        if len(shp) != 3 or shp[1] != nc or shp[2] != LAYOUT_CONFIG_DIM:
            raise _shape_error(where, "node_config_feat", f"(c, {nc}, {LAYOUT_CONFIG_DIM})", shp)
        if nc and (rec.node_config_ids.min() < 0 or rec.node_config_ids.max() >= n):
            raise SchemaError(f"{where}: key 'node_config_ids' refers to nodes outside 0..{n - 1}")
        if isinstance(rec.node_config_feat, np.ndarray) and not np.isfinite(rec.node_config_feat).all():
            raise SchemaError(f"{where}: key 'node_config_feat' holds NaN or inf values; re-create the file")
        c = shp[0]
    if c == 0:
        raise SchemaError(f"{where}: the file holds no configurations; a graph needs at least one")
    for key in ("config_runtime", "config_runtime_normalizers", "config_runtime_std"):
        a = getattr(rec, key)
        if a is not None and np.asarray(a).shape != (c,):
            raise _shape_error(where, key, f"({c},)", np.asarray(a).shape)
    for key in ("config_runtime", "config_runtime_normalizers"):
        a = getattr(rec, key)
        if a is not None and np.asarray(a).size and not (np.asarray(a) > 0).all():
            bad = np.asarray(a)[~(np.asarray(a) > 0)][0]
            raise SchemaError(
                f"{where}: key {key!r} holds {bad} (runtimes are positive nanoseconds); re-measure or drop the config"
            )
    r = rec.config_runtime_rounds
    if r is not None and (np.asarray(r).ndim != 2 or np.asarray(r).shape[0] != c):
        raise _shape_error(where, "config_runtime_rounds", f"({c}, rounds)", np.asarray(r).shape)


def _kind_of(keys: set[str], where: str) -> str:
    if "config_feat" in keys:
        return "tile"
    if "node_config_feat" in keys or "node_config_ids" in keys:
        return "layout"
    raise SchemaError(
        f"{where}: neither 'config_feat' (tile) nor 'node_config_feat' (layout) is present; keys: {sorted(keys)}"
    )


def load_graph(path: str | Path, *, lazy: bool = True, require_runtime: bool = True) -> GraphRecord:
    """Read one TpuGraphs npz file (official release or written by opgraph).

    Args:
        path: The ``.npz`` file.
        lazy: Read ``node_config_feat`` row by row on demand (:class:`LazyConfigFeat`) instead of all at once.
        require_runtime: Raise when ``config_runtime`` is missing (set False for unlabelled test files).

    Returns:
        The record; integer arrays are int64, edges are (m, 2).

    Raises:
        SchemaError: A key is missing or misshaped; the message names it and the expected shape.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise SchemaError(f"{where}: no such npz file")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SchemaError(f"{where}: not a readable npz file ({type(exc).__name__}: {exc})") from exc
    if not hasattr(z, "files"):
        raise SchemaError(f"{where}: holds a single array, not an npz archive of the TpuGraphs keys")
    try:
        return _read_graph(z, path, lazy=lazy, require_runtime=require_runtime)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise SchemaError(
            f"{where}: a member cannot be read ({type(exc).__name__}: {exc}); re-create the file"
        ) from None
    finally:
        z.close()


def _read_graph(z: Any, path: Path, *, lazy: bool, require_runtime: bool) -> GraphRecord:
    """The body of :func:`load_graph` once the npz is open (its read errors are turned into SchemaError there)."""
    where = str(path)
    keys = set(z.files)
    kind = _kind_of(keys, where)
    need = list(_COMMON) + (["config_feat"] if kind == "tile" else ["node_config_ids", "node_config_feat"])
    if require_runtime:
        need.append("config_runtime")
    missing = [k for k in need if k not in keys]
    if missing:
        raise SchemaError(f"{where}: {kind} file lacks key(s) {missing}; present: {sorted(keys)}")
    node_feat = np.asarray(z["node_feat"], dtype=np.float32)
    if node_feat.ndim != 2:
        raise _shape_error(where, "node_feat", f"(n, {NODE_FEAT_DIM})", node_feat.shape)
    n = node_feat.shape[0]
    opcode = _as_int(where, "node_opcode", z["node_opcode"]).reshape(-1)
    edges = _normalise_edges(where, z["edge_index"], n)
    get = {k: z[k] for k in keys if k not in ("node_config_feat", "node_feat", "edge_index", "node_opcode")}
    meta: dict[str, Any] = {}
    if "measure_meta" in get:
        try:
            meta = json.loads(str(get["measure_meta"]))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{where}: key 'measure_meta' is not valid JSON ({exc})") from exc

    def opt_int(key: str) -> np.ndarray | None:
        return _as_int(where, key, get[key]).reshape(-1) if key in get else None

    runtime = opt_int("config_runtime")
    rounds = (
        _as_int(where, "config_runtime_rounds", get["config_runtime_rounds"])
        if "config_runtime_rounds" in get
        else None
    )
    std = np.asarray(get["config_runtime_std"], dtype=np.float64) if "config_runtime_std" in get else None
    common: dict[str, Any] = dict(
        name=path.stem,
        kind=kind,
        node_feat=node_feat,
        node_opcode=opcode,
        edge_index=edges,
        config_runtime=runtime,
        config_runtime_normalizers=opt_int("config_runtime_normalizers"),
        config_runtime_std=std,
        config_runtime_rounds=rounds,
        measure_meta=meta,
        path=path,
    )
    if kind == "tile":
        return GraphRecord(config_feat=np.asarray(get["config_feat"], dtype=np.float32), **common)
    ids = opt_int("node_config_ids")
    if lazy:
        ncf: Any = LazyConfigFeat(path)
    else:
        ncf = np.asarray(z["node_config_feat"], dtype=np.float32)
    splits = opt_int("node_splits")
    return GraphRecord(node_config_ids=ids, node_config_feat=ncf, node_splits=splits, **common)


def save_graph(record: GraphRecord, path: str | Path, *, compress: bool = True) -> Path:
    """Write ``record`` to ``path`` atomically in the TpuGraphs schema (``node_opcode`` uint8, edges int64 (m,2)).

    Args:
        record: The graph.
        path: Destination ``.npz``; its directory is created.
        compress: Use ``np.savez_compressed``.

    Returns:
        The path written.
    """
    from opgraph._base.fileio import atomic_open

    if np.asarray(record.node_opcode).max(initial=0) > 255:
        raise SchemaError(f"{record.name}: node_opcode ids must fit uint8 (<= 255)")
    path = Path(path)
    arrays = record.to_arrays()
    with atomic_open(path, "wb") as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)  # type: ignore[operator]
    return path


def collection_dir(
    root: str | Path, kind: str, source: str = "xla", search: str = "default", split: str = "train"
) -> Path:
    """Directory of one collection split in the official tree (``tile/xla/train``, ``layout/nlp/random/valid``)."""
    root = Path(root)
    if kind == "tile":
        return root / "tile" / source / split
    if kind == "layout":
        return root / "layout" / source / search / split
    raise SchemaError(f"kind must be 'tile' or 'layout', got {kind!r}")


def find_collections(root: str | Path) -> list[tuple[str, str, str, str]]:
    """List the ``(kind, source, search, split)`` directories holding npz files under ``root``."""
    root = Path(root)
    found: list[tuple[str, str, str, str]] = []
    for d in sorted(p for p in root.glob("tile/*/*") if p.is_dir()):
        if any(d.glob("*.npz")):
            found.append(("tile", d.parent.name, "-", d.name))
    for d in sorted(p for p in root.glob("layout/*/*/*") if p.is_dir()):
        if any(d.glob("*.npz")):
            found.append(("layout", d.parent.parent.name, d.parent.name, d.name))
    return found


class TpuGraphsDataset(Sequence[GraphRecord]):
    """The npz files of one collection split, loaded on access.

    ``TpuGraphsDataset(root, "layout", "xla", "default", "train")`` reads ``root/layout/xla/default/train/*.npz``;
    ``TpuGraphsDataset.from_dir(dir)`` reads any directory of npz files (e.g. one written by ``perf collect``).

    Args:
        root: Root of the ``{tile,layout}/...`` tree.
        kind: ``"tile"`` or ``"layout"``.
        source: ``"xla"`` or ``"nlp"`` (layout), ``"xla"`` (tile).
        search: ``"default"`` or ``"random"`` (layout only).
        split: ``"train"``, ``"valid"`` or ``"test"``.
        lazy: Read layout config features on demand.
        deduplicate: Merge duplicate configs on load.
    """

    def __init__(
        self,
        root: str | Path,
        kind: str = "layout",
        source: str = "xla",
        search: str = "default",
        split: str = "train",
        *,
        lazy: bool = True,
        deduplicate: bool = False,
    ) -> None:
        directory = collection_dir(root, kind, source, search, split)
        if not directory.is_dir():
            have = ", ".join("/".join(c) for c in find_collections(root)) or "none"
            raise SchemaError(f"--data {root}: no directory {directory} (collections found: {have})")
        self._init(directory, kind, split, lazy, deduplicate)

    def _init(self, directory: Path, kind: str | None, split: str, lazy: bool, deduplicate: bool) -> None:
        self.directory = directory
        self.files = sorted(directory.glob("*.npz"))
        if not self.files:
            raise SchemaError(f"--data {directory}: no .npz files in this directory")
        self.kind = kind
        self.split = split
        self.lazy = lazy
        self.dedup = deduplicate
        self._cache: dict[int, GraphRecord] = {}

    @classmethod
    def from_dir(cls, directory: str | Path, *, lazy: bool = True, deduplicate: bool = False) -> TpuGraphsDataset:
        """Dataset over every ``*.npz`` directly inside ``directory``."""
        self = cls.__new__(cls)
        d = Path(directory)
        if not d.is_dir():
            raise SchemaError(f"--data {d}: not a directory")
        self._init(d, None, "any", lazy, deduplicate)
        return self

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> GraphRecord:  # type: ignore[override]
        if i < 0:
            i += len(self)
        if i not in self._cache:
            rec = load_graph(self.files[i], lazy=self.lazy, require_runtime=self.split != "test")
            if self.kind is not None and rec.kind != self.kind:
                raise SchemaError(f"{self.files[i]}: a {rec.kind} file in a {self.kind} collection")
            if self.dedup:
                rec = rec.deduplicate()
            self._cache[i] = rec
        return self._cache[i]

    def __iter__(self) -> Iterator[GraphRecord]:
        for i in range(len(self)):
            yield self[i]

    def to_pyg(
        self, transform: Callable[[Any], Any] | None = None, *, configs: int | None = None, seed: int = 0
    ) -> PygView:
        """A view of this dataset that yields PyTorch Geometric ``Data`` objects (:meth:`GraphRecord.to_pyg`).

        Args:
            transform: Applied to each ``Data`` on access, like PyG's ``Dataset(transform=...)`` (e.g.
                ``torch_geometric.transforms.Compose([...])``).
            configs: Keep this many configs per graph (a seeded random sample, all if fewer), so that a
                ``torch_geometric.loader.DataLoader`` can batch layout graphs; default all.
            seed: Seed of that sample (one generator per graph index: the same configs on every access).
        """
        return PygView(self, transform, configs, seed)

    @property
    def names(self) -> list[str]:
        """Graph names (file stems)."""
        return [f.stem for f in self.files]

    def __repr__(self) -> str:
        return f"TpuGraphsDataset({self.directory}, {len(self)} graphs)"


class PygView(Sequence[Any]):
    """:class:`TpuGraphsDataset` as PyTorch Geometric ``Data`` objects (see :meth:`TpuGraphsDataset.to_pyg`)."""

    def __init__(
        self, dataset: TpuGraphsDataset, transform: Callable[[Any], Any] | None, configs: int | None, seed: int
    ) -> None:
        if configs is not None and configs < 1:
            raise SchemaError(f"configs={configs}: keep at least one config per graph (or None for all)")
        self.dataset, self.transform, self.configs, self.seed = dataset, transform, configs, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        if i < 0:
            i += len(self)
        rec = self.dataset[i]
        idx = None
        if self.configs is not None and rec.n_configs > self.configs:
            rng = np.random.default_rng([self.seed, i])
            idx = np.sort(rng.choice(rec.n_configs, self.configs, replace=False))
        data = rec.to_pyg(idx)
        return data if self.transform is None else self.transform(data)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"PygView({self.dataset!r}, transform={self.transform!r}, configs={self.configs})"


def load_records(data: str | Path, *, lazy: bool = True, deduplicate: bool = True) -> list[GraphRecord]:
    """Load every npz under ``data`` (a file, a directory of files, or a tree searched recursively)."""
    p = Path(data)
    if p.is_file():
        return [load_graph(p, lazy=lazy)]
    if not p.is_dir():
        raise SchemaError(f"--data {p}: no such file or directory")
    files = sorted(p.glob("*.npz")) or sorted(p.rglob("*.npz"))
    if not files:
        raise SchemaError(f"--data {p}: no .npz files found")
    out = []
    for f in files:
        r = load_graph(f, lazy=lazy, require_runtime=True)
        out.append(r.deduplicate() if deduplicate else r)
    return out


def load_or_build(path: str | Path, build: Callable[[], GraphRecord]) -> dict[str, Any]:
    """Resumable collection step: load ``path`` if it exists, else ``build()`` the record and save it atomically.

    Returns:
        ``{"name", "path", "skipped", "meta"}``; ``skipped`` is True when the file was already there.
    """
    target = Path(path)
    skipped = target.exists()
    rec = load_graph(target) if skipped else build()
    if not skipped:
        save_graph(rec, target)
    return {"name": rec.name, "path": str(target), "skipped": skipped, "meta": rec.measure_meta}
