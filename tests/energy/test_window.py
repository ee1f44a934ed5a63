"""Named windows in a running job: meters, labels, saving and comparing two configurations."""

import json
import sys
import types

import pytest
import torch

from opgraph import energy as oe
from opgraph.energy.errors import EnergyError
from opgraph.energy.windows import WindowMonitor, compare_windows, load_windows


@pytest.fixture
def no_zeus(monkeypatch):
    monkeypatch.setitem(sys.modules, "zeus", None)
    monkeypatch.setitem(sys.modules, "zeus.monitor", None)
    monkeypatch.setenv("OPGRAPH_ENERGY_NO_RAPL", "1")


@pytest.fixture
def fake_zeus(monkeypatch):
    calls = []

    class Measurement:
        def __init__(self, t):
            self.time, self.gpu_energy, self.cpu_energy, self.total_energy = t, {0: 2.5}, None, 2.5

    class ZeusMonitor:
        def begin_window(self, key):
            calls.append(("begin", key))

        def end_window(self, key):
            calls.append(("end", key))
            return Measurement(0.1)

    pkg = types.ModuleType("zeus")
    mod = types.ModuleType("zeus.monitor")
    mod.ZeusMonitor = ZeusMonitor
    pkg.monitor = mod
    monkeypatch.setitem(sys.modules, "zeus", pkg)
    monkeypatch.setitem(sys.modules, "zeus.monitor", mod)
    return calls


def _work(n=64):
    x = torch.randn(n, n)
    for _ in range(5):
        x = torch.tanh(x @ x / n)
    return x


def test_model_meter_is_labelled(no_zeus):
    mon = WindowMonitor()
    assert mon.meter == "model" and "MODELLED" in mon.note
    with mon.window("step"):
        _work()
    w = mon.windows[0]
    assert w.name == "step" and w.estimated and w.source == "model"
    assert w.wall_s > 0 and w.energy_j == pytest.approx(4.0 * w.cpu_s)
    assert "MODELLED" in repr(mon)


def test_zeus_is_used_when_importable(fake_zeus):
    mon = WindowMonitor()
    assert mon.meter == "zeus"
    mon.begin_window("step")
    w = mon.end_window("step")
    assert w.energy_j == 2.5 and not w.estimated and w.source == "zeus"
    assert fake_zeus == [("begin", "opgraph:step"), ("end", "opgraph:step")]


def test_zeus_without_a_sensor_falls_back_to_the_model(fake_zeus, monkeypatch):
    mod = sys.modules["zeus.monitor"]
    orig = mod.ZeusMonitor.end_window

    def no_energy(self, key):
        m = orig(self, key)
        m.gpu_energy, m.cpu_energy = {}, None
        return m

    monkeypatch.setattr(mod.ZeusMonitor, "end_window", no_energy)
    mon = WindowMonitor()
    with mon.window("x"):
        _work()
    w = mon.windows[0]
    assert w.source == "zeus+model" and w.estimated


def test_explicit_sources_that_are_missing_say_so(no_zeus):
    with pytest.raises(EnergyError, match="pip install zeus"):
        WindowMonitor("zeus")
    with pytest.raises(EnergyError, match="source="):
        WindowMonitor("watts")


def test_nested_windows_and_errors(no_zeus):
    mon = WindowMonitor()
    mon.begin_window("epoch")
    with mon.window("step"):
        _work(16)
    with pytest.raises(EnergyError, match="already open"):
        mon.begin_window("epoch")
    mon.end_window("epoch")
    with pytest.raises(EnergyError, match="no open window"):
        mon.end_window("epoch")
    assert [w.name for w in mon.windows] == ["step", "epoch"]
    assert mon.windows[1].wall_s >= mon.windows[0].wall_s


def test_save_and_compare_two_configurations(no_zeus, tmp_path):
    small, big = WindowMonitor(label="small"), WindowMonitor(label="big")
    for _ in range(5):
        with small.window("step"):
            _work(32)
        with big.window("step"):
            _work(192)
        with big.window("only-big"):
            pass
    pa, pb = small.save(tmp_path / "a.json"), big.save(tmp_path / "b.json")
    data = load_windows(pb)
    assert data["label"] == "big" and data["estimated"] and len(data["windows"]) == 10
    rows = compare_windows(pa, pb)
    assert [r["name"] for r in rows] == ["step"]
    r = rows[0]
    assert r["count_a"] == r["count_b"] == 5 and r["estimated"]
    assert r["energy_j_ratio"] == pytest.approx(r["energy_j_a"] / r["energy_j_b"])
    assert r["energy_j_ci"][0] <= r["energy_j_ratio"] <= r["energy_j_ci"][1]
    assert compare_windows(small, json.loads(pb.read_text()))[0]["count_b"] == 5


def test_bad_windows_file(tmp_path):
    p = tmp_path / "w.json"
    p.write_text('{"format": "other"}')
    with pytest.raises(EnergyError, match="not a windows file"):
        load_windows(p)
    p.write_text("not json")
    with pytest.raises(EnergyError, match="not a readable"):
        load_windows(p)


def test_module_level_api(no_zeus):
    mon = oe.monitor("model", label="run")
    with oe.window("step"):
        _work(16)
    oe.begin_window("eval")
    w = oe.end_window("eval")
    assert w.name == "eval" and oe.monitor() is mon and [x.name for x in mon.windows] == ["step", "eval"]


def test_cli_compares_saved_windows(no_zeus, tmp_path):
    from click.testing import CliRunner

    from opgraph.energy.cli import group

    for label in ("fp32", "bf16"):
        mon = WindowMonitor(label=label)
        for _ in range(3):
            with mon.window("step"):
                _work(16)
        mon.save(tmp_path / f"{label}.json")
    res = CliRunner().invoke(
        group, ["windows", str(tmp_path / "fp32.json"), str(tmp_path / "bf16.json"), "--json", str(tmp_path / "c")]
    )
    assert res.exit_code == 0, res.output
    assert "step" in res.output and "MODELLED" in res.output
    assert json.loads((tmp_path / "c").read_text())[0]["count_a"] == 3
