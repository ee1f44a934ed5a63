import json

import pytest
import torch
import torch.nn.functional as F

from opgraph import energy as oe
from opgraph.energy.cases import CASES
from opgraph.energy.errors import OutputMismatchError
from opgraph.energy.suite import evaluate_case, summarize

FAST = {"rounds": 5, "max_rounds": 9, "window_s": 0.01}


def chain(x):
    h = x * 2.0
    g = 0.5 * h * (1.0 + torch.tanh(0.7978845608 * (h + 0.044715 * torch.pow(h, 3))))  # the culprit
    return g.sum(-1)


def fused(x):
    return F.gelu(x * 2.0, approximate="tanh").sum(-1)


@pytest.fixture(scope="module")
def gelu_report(work_recording):
    backend, clock = work_recording
    with clock():
        return oe.diff(chain, fused, torch.randn(128, 512), backend=backend, **FAST)


def test_model_backend_is_labelled():
    rep = oe.diff(fused, fused, torch.randn(16, 64), backend="model", calibrate=False, bisect=False, **FAST)
    assert rep.backend == "model" and rep.backend_info["estimated"]
    assert any("MODELLED" in n for n in rep.notes)
    assert all(r.pair.a.energy_j is not None for r in rep.regions)


def test_gelu_found_and_located(gelu_report):
    rep = gelu_report
    assert rep.backend == "work" and rep.backend_info["estimated"]
    top = rep.findings[0]
    assert top.category == "api_misuse" and top.verdict == "waste" and top.costly_side == "a"
    assert top.ratio > 1.1 and top.ci[0] > rep.threshold
    assert top.a_callsites[0].startswith("test_diff.py:") and "in chain" in top.a_callsites[0]
    assert any("fused" in s for s in top.b_callsites)
    assert top.delta_energy_j > 0 and top.knob is None
    assert rep.threshold >= 1.10
    assert "Finding(" in repr(rep)


def test_exports(gelu_report, tmp_path):
    rep = gelu_report
    data = json.loads(rep.to_json(tmp_path / "r.json").read_text())
    assert data["findings"][0]["category"] == "api_misuse"
    assert {
        "region",
        "ratio",
        "ci",
        "delta_energy_j",
        "a_callsites",
        "b_callsites",
        "module_path",
        "config_diff",
        "knob",
    } <= set(data["findings"][0])
    trace = json.loads(rep.to_perfetto(tmp_path / "t.json").read_text())
    pids = {e["pid"] for e in trace["traceEvents"]}
    assert pids == {1, 2}
    assert any(e["ph"] == "C" and e["name"] == "power (W)" for e in trace["traceEvents"])
    folded = rep.to_folded(tmp_path / "s.folded").read_text().splitlines()
    assert folded and all(len(line.rsplit(" ", 2)) == 3 for line in folded)
    assert (tmp_path / "s.folded.a").read_text()
    page = rep.to_html(tmp_path / "html")
    assert page.name == "index.html" and "test_diff.py" in page.read_text()
    assert "<table>" in rep._repr_html_()


def test_control_is_not_flagged(work_backend):
    fc = torch.nn.Linear(64, 64)

    def f(x):
        return torch.relu(fc(x))

    rep = oe.diff(f, f, torch.randn(64, 64), backend=work_backend, **FAST)
    assert rep.findings == []
    assert rep.regions and all(r.pair.ratio == 1.0 for r in rep.regions)


def test_time_backend_reports_no_energy():
    rep = oe.diff(chain, fused, torch.randn(128, 512), backend="time", bisect=False, **FAST)
    assert rep.backend == "time" and rep.backend_info["unit"] == "s"
    assert all(f.delta_energy_j is None and f.unit == "s" for f in rep.findings)
    assert rep.regions and all(r.pair.a.energy_j is None and r.pair.a.wall_s > 0 for r in rep.regions)
    assert any("time-only" in n for n in rep.notes)


def test_output_mismatch_stops_unless_allowed():
    x = torch.randn(32, 32)
    with pytest.raises(OutputMismatchError, match="allow_mismatch"):
        oe.diff(lambda x: x * 2, lambda x: x * 3, x, backend="time", **FAST)
    rep = oe.diff(lambda x: x * 2, lambda x: x * 3, x, backend="time", allow_mismatch=True, calibrate=False, **FAST)
    assert rep.outputs["agree"] is False


def test_saved_runs_can_be_diffed(tmp_path, work_backend):
    x = torch.randn(256, 256)
    oe.record(chain, x).save(tmp_path / "a")
    oe.record(fused, x).save(tmp_path / "b")
    rep = oe.diff(oe.load(tmp_path / "a"), oe.load(tmp_path / "b"), backend=work_backend, bisect=False, **FAST)
    assert rep.regions and rep.findings and rep.findings[0].category == "api_misuse"


def test_profile():
    prof = oe.profile(chain, torch.randn(64, 64), backend="model", window_s=0.001, rounds=1)
    ops = {r["op"] for r in prof.rows}
    assert "aten::tanh" in ops and prof.total_cost > 0
    assert prof.by("op")[0][1] > 0 and "ESTIMATED" in repr(prof)


@pytest.mark.parametrize("cid", ["repeat-kv-noop", "dtype-f64", "tradeoff-lowrank", "eig-general"])
def test_suite_cases(cid, work_backend):
    res = evaluate_case(CASES[cid], work_backend, rounds=3, baselines=False)
    assert res.error is None
    if CASES[cid].kind == "tradeoff":
        assert not res.waste_called
    else:
        assert res.detected and res.category == CASES[cid].category
    if cid == "dtype-f64":
        assert res.knob_ok
    s = summarize([res])
    assert s["cases"] == 1


def test_over_snapshot_limit_reruns_regions():
    x = torch.randn(256, 512)
    rep = oe.diff(chain, fused, x, backend="model", snapshot_limit_bytes=1000, **FAST)
    assert any("re-running" in n for n in rep.notes)
    assert len(rep.regions) == 3 and all(r.pair.extra["method"].startswith("re-run") for r in rep.regions)
    assert all(len(r.pair.rounds_ratio) == 7 for r in rep.regions)
    sites = [rep.run_a.graph.nodes[i].meta.get("callsite", "") for r in rep.regions for i in r.region.a_nodes]
    assert any("in chain" in site for site in sites)


def test_over_snapshot_limit_with_a_sensor_backend_compares_whole_runs():
    from opgraph.energy.backends import ModelBackend

    class Sensor(ModelBackend):  # stands in for rapl/nvml, which cannot time single ops
        pass

    be = Sensor(name="sensor")
    rep = oe.diff(chain, fused, torch.randn(256, 512), backend=be, snapshot_limit_bytes=1000, **FAST)
    assert any("one region" in n for n in rep.notes) and len(rep.regions) == 1


def test_profile_exports(tmp_path):
    prof = oe.profile(fused, torch.randn(32, 32), backend="time", window_s=0.001, rounds=1)
    assert json.loads(prof.to_perfetto(tmp_path / "p.json").read_text())["traceEvents"]
    assert "aten::gelu" in prof.to_folded(tmp_path / "p.folded").read_text()
    assert prof.to_json(tmp_path / "p.j").exists() and prof.table() is not None


@pytest.mark.parametrize("rounds", [0, -1, 2.5])
def test_rounds_below_one_is_a_one_line_error(rounds):
    # `energy diff --rounds 0` divided by zero deep in the replay.
    import torch

    from opgraph.energy import diff
    from opgraph.energy.errors import EnergyError

    x = torch.ones(4)
    with pytest.raises(EnergyError, match="rounds"):
        diff(lambda t: t * 2, lambda t: t + t, (x,), rounds=rounds)


def _big_then_small_a(x, s):
    y = x @ x
    for _ in range(3):
        s = s * 2 + 1
    return y, s


def _big_then_small_b(x, s):
    y = x.clone() @ x  # the waste that matters: a copy of the big input
    for _ in range(3):
        s = (s * 2).clone() + 1  # a waste too small a share of the run to be flagged
    return y, s


def test_regions_too_small_to_flag_stop_after_min_rounds(work_backend):
    from opgraph.energy.differ import MIN_SHARE

    rep = oe.diff(
        _big_then_small_a,
        _big_then_small_b,
        (torch.randn(128, 128), torch.randn(4)),
        backend=work_backend,
        screen_share=0.0,
        min_rounds=3,
        calibrate=False,
        bisect=False,
        **FAST,
    )
    stopped = [x for x in rep.regions if x.pair.extra.get("stopped") == "negligible share"]
    measured = [x for x in stopped if "reused_from_region" not in x.pair.extra]
    assert rep.timings["regions_stopped_small"] == len(measured) >= 1
    total_a = sum(x.pair.a.cost for x in rep.regions)
    total_b = sum(x.pair.b.cost for x in rep.regions)
    for x in stopped:
        assert len(x.pair.rounds_ratio) == 3 and not x.flagged
        assert x.pair.a.cost < MIN_SHARE * total_a and x.pair.b.cost < MIN_SHARE * total_b
    stopped_ids = {x.region.id for x in stopped}
    assert not any(f.kind == "region" and f.region in stopped_ids for f in rep.findings)
    assert rep.findings[0].costly_side == "b"  # the big copy ranks first (the small one only as a redundant op)
    line = _big_then_small_b.__code__.co_firstlineno + 1
    assert any(c.startswith(f"test_diff.py:{line} ") for c in rep.findings[0].b_callsites)


def test_profile_by_library_line():
    lin = torch.nn.Linear(32, 32)

    def f(x):
        return torch.tanh(lin(x))

    prof = oe.profile(f, torch.randn(8, 32), backend="model", window_s=0.001, rounds=1)
    by_lib = dict(prof.by("lib_callsite"))
    assert any(k.startswith("linear.py:") and v > 0 for k, v in by_lib.items())
    tanh = next(r for r in prof.rows if r["op"] == "aten::tanh")
    assert tanh["lib_callsite"] == "" and tanh["callsite"].startswith("test_diff.py:")
