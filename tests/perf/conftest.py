from __future__ import annotations

import numpy as np
import pytest

from opgraph.perf.tpugraphs import GraphRecord


def make_layout_record(name="g0", n=12, nc=3, c=6, seed=0, with_runtime=True) -> GraphRecord:
    rng = np.random.default_rng(seed)
    feat = rng.random((n, 140)).astype(np.float32)
    edges = np.array([[i + 1, i] for i in range(n - 1)], dtype=np.int64)
    ids = np.sort(rng.choice(n, nc, replace=False)).astype(np.int64)
    choices = rng.integers(0, 2, (c, nc))
    from opgraph.perf.layout import encode_configs

    return GraphRecord(
        name=name,
        kind="layout",
        node_feat=feat,
        node_opcode=rng.integers(1, 120, n),
        edge_index=edges,
        config_runtime=rng.integers(1000, 5000, c) if with_runtime else None,
        node_config_ids=ids,
        node_config_feat=encode_configs(choices),
        node_splits=np.array([0], dtype=np.int64),
    )


def make_tile_record(name="t0", n=5, c=7, seed=0) -> GraphRecord:
    rng = np.random.default_rng(seed)
    return GraphRecord(
        name=name,
        kind="tile",
        node_feat=rng.random((n, 140)).astype(np.float32),
        node_opcode=rng.integers(1, 120, n),
        edge_index=np.array([[i + 1, i] for i in range(n - 1)], dtype=np.int64),
        config_runtime=rng.integers(1000, 5000, c),
        config_feat=rng.integers(1, 64, (c, 24)).astype(np.float32),
        config_runtime_normalizers=np.full(c, 2000, dtype=np.int64),
    )


@pytest.fixture(scope="session")
def make_layout():
    """Factory of synthetic layout records (conftest is not importable under --import-mode=importlib)."""
    return make_layout_record


@pytest.fixture(scope="session")
def make_tile():
    """Factory of synthetic tile records."""
    return make_tile_record


@pytest.fixture
def layout_record():
    return make_layout_record()


@pytest.fixture
def tile_record():
    return make_tile_record()
