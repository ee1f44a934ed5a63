"""benchmarks/perf/export_breadth.py: one tiny convolutional architecture through every check, and the table row."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "export_breadth.py"


@pytest.fixture(scope="module")
def mod():
    spec = importlib.util.spec_from_file_location("export_breadth", SCRIPT)
    m = importlib.util.module_from_spec(spec)
    sys.modules["export_breadth"] = m
    spec.loader.exec_module(m)
    return m


def test_architectures_are_distinct_and_a_conv_model_passes_every_check(mod):
    names = [a.name for a in mod.ARCHS]
    assert len(names) == len(set(names)) >= 40
    row = mod.check(next(a for a in mod.ARCHS if a.name == "convnextv2"), energy=True, mirror=True)
    assert "error" not in row and row["nodes"] > 20 and row["unmapped"] == {}
    assert row["layout_convs"] == 4 and row["layout_runs"] is True  # a random NCHW/NHWC mix, same output
    assert row["kernels"] >= row["distinct"] == row["tvm_ready"] > 0
    assert row["dynamic"] == "dynamic" and row["energy"] == "export"
    assert row["mirror"] == "no" and "permute" in row["mirror_error"]  # ffa mirrors Linear/Conv/BN/ReLU nets only
    lines = mod._table([row, {"name": "x", "model": "XModel", "error": "TraceError: boom"}])
    assert len({line.count("|") for line in lines}) == 1  # every row has the header's columns
    assert "**no**: TraceError: boom" in lines[-1]
