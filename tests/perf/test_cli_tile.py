"""``opgraph perf tune-tile`` and ``apply-tile``: tune a model's TVM kernels, save, resume, re-apply."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("tvm")

from opgraph.perf.cli import group  # noqa: E402
from opgraph.perf.errors import OpgraphError  # noqa: E402

FACTORY = """
import torch

def make():
    m = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    return m, (torch.randn(4, 16),)
"""


def _ok(result):
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_tune_tile_saves_resumes_and_reapplies(tmp_path):
    (tmp_path / "net.py").write_text(FACTORY)
    r = CliRunner()
    out, logs = tmp_path / "s.json", tmp_path / "logs"
    args = ["tune-tile", f"{tmp_path / 'net.py'}:make", "--out", str(out), "--budget", "0.1", "--limit", "1"]
    args += ["--batches", "2", "--race-rounds", "2", "--resume", str(logs)]
    text = _ok(r.invoke(group, args))
    assert "matmul_4x32x16_bias_relu" in text and "over TVM's default" in text
    doc = json.loads(out.read_text())
    assert doc["format"] == "opgraph-tile-schedules" and len(doc["kernels"]) == 1
    assert doc["kernels"][0]["kernel"]["dims"] == [4, 32, 16]
    assert [p.name for p in logs.iterdir()] == ["matmul_4x32x16_bias_relu.json"]
    again = _ok(r.invoke(group, args))  # a finished log: read back, nothing measured
    assert "(log)" in again
    assert json.loads(out.read_text())["kernels"][0]["tile"] == doc["kernels"][0]["tile"]
    applied = _ok(r.invoke(group, ["apply-tile", str(out)]))
    assert "1 kernels compiled" in applied and "matmul_4x32x16_bias_relu" in applied


def test_tune_tile_user_errors(tmp_path):
    (tmp_path / "net.py").write_text(FACTORY)
    r = CliRunner()
    factory = f"{tmp_path / 'net.py'}:make"
    cases = [
        (["tune-tile", factory, "--out", str(tmp_path / "s.json"), "--budget", "0"], "--budget 0.0 must be in"),
        (["tune-tile", factory, "--out", str(tmp_path / "s.json"), "--batches", "0"], "--batches 0 must be >= 1"),
        (["tune-tile", "nofile.py:make", "--out", str(tmp_path / "s.json")], "no such file"),
        (["apply-tile", str(tmp_path / "net.py")], "tile schedules file"),
        (["tune-tile", factory, "--out", str(tmp_path / "s.json"), "--local-frac", "1.5"], "--local-frac 1.5 must"),
        (["tune-tile", factory, "--out", str(tmp_path / "s.json"), "--restarts", "0"], "--restarts 0 must be >= 1"),
        (["tune-tile", factory, "--out", str(tmp_path / "s.json"), "--step", "-1"], "--step -1 must be >= 0"),
        (["tune-tile", factory, "--out", str(tmp_path / "s.json"), "--search", "screen", "--step", "2"], "--step"),
        (
            ["tune-tile", factory, "--out", str(tmp_path / "s.json"), "--search", "screen", "--race", "halving"],
            "--race",
        ),
        (["tune-tile", factory, "--out", str(tmp_path / "s.json"), "--diverse", "-1"], "--diverse -1 must be >= 0"),
    ]
    for args, msg in cases:
        res = r.invoke(group, args)
        assert isinstance(res.exception, OpgraphError), res.output
        assert msg in str(res.exception) and "\n" not in str(res.exception)


def test_tune_tile_search_knobs_reach_the_tuner(tmp_path, monkeypatch):
    """--search / --local-frac / --neighbourhood / --step / --restarts are passed on; the default search is mixed."""
    import numpy as np

    import opgraph.perf.tune as tune

    (tmp_path / "net.py").write_text(FACTORY)
    real, calls = tune.tune_tile, []

    def measure(choices, n_rounds, seed):  # no timing: a runtime per tile, the default slowest
        v = np.array([1e6 if not c.any() else 1e3 * (1 + abs(np.log2(c).sum() - 5)) for c in choices])
        return np.repeat(v[:, None], n_rounds, axis=1)

    def spy(spec, ranker, **kw):
        calls.append(kw)
        return real(spec, ranker, measurer=measure, **kw)

    monkeypatch.setattr(tune, "tune_tile", spy)
    base = ["tune-tile", f"{tmp_path / 'net.py'}:make", "--out", str(tmp_path / "s.json"), "--limit", "1"]
    base += ["--race-rounds", "2"]
    r = CliRunner()
    _ok(r.invoke(group, base))
    assert calls[-1]["search"] == "mixed" and calls[-1]["local_frac"] is None and calls[-1]["refit_options"] is None
    more = ["--local-frac", "0.5", "--neighbourhood", "axis+x2", "--step", "3", "--restarts", "1"]
    _ok(r.invoke(group, base + more))
    kw = calls[-1]
    assert kw["local_frac"] == 0.5 and kw["neighbourhood"] == "axis+x2"
    assert kw["refit_options"] == {"step": 3, "restarts": 1}
    _ok(r.invoke(group, base + ["--diverse", "2", "--race", "halving"]))
    assert calls[-1]["refit_options"] == {"diverse": 2, "race": "halving"}
