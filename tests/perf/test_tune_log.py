"""Saving and re-applying a tuned layout; resuming a tuning log (counted measuring calls, no timings)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from opgraph.perf.errors import PerfError  # noqa: E402
from opgraph.perf.tune import apply_layout, tune_layout  # noqa: E402


def key(c) -> tuple[int, ...]:
    return tuple(int(v) for v in c)


def linear_truth(weights):
    w = np.asarray(weights, dtype=np.float64)
    return lambda c: 1.0 + float(np.dot(w, c))


class FakeMeasurer:
    """Runtime = ``truth(config)`` ms, no noise; records every call's config rows."""

    def __init__(self, truth):
        self.truth = truth
        self.calls: list[np.ndarray] = []

    def __call__(self, choices, rounds, seed):
        self.calls.append(np.array(choices))
        return 1e6 * np.array([[self.truth(c)] * rounds for c in choices], dtype=np.float64)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.c = nn.Conv2d(8, 8, 1)
        self.d = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.d(torch.relu(self.c(self.b(self.a(x)))))


TRUTH = linear_truth([-0.06, 0.03, -0.04, 0.02])


class Scorer:
    """An exact cost model (one configurable node per convolution here)."""

    def predict(self, rec):
        return np.array([TRUTH(c) for c in (np.asarray(rec.node_config_feat)[..., 0] == 1)])


KW = {"n_candidates": 16, "measure_frac": 0.5, "finalists": 2, "race_rounds": 4, "seed": 3}


def make():
    torch.manual_seed(0)
    return Net().eval(), (torch.randn(1, 3, 8, 8),)


def test_saved_layout_reapplies_to_a_fresh_instance(tmp_path):
    net, x = make()
    res = tune_layout(net, x, Scorer(), measurer=FakeMeasurer(TRUTH), **KW)
    assert key(res.best_choice) == (1, 0, 1, 0)  # the truth's optimum is among the measured configs
    path = res.save(tmp_path / "layout.json")
    doc = json.loads(path.read_text())
    assert doc["layout"] == {"a": "channels_last", "b.0": "NCHW", "c": "channels_last", "d": "NCHW"}

    fresh, _ = make()  # a new instance with the same weights
    keys = list(fresh.state_dict())
    seen = {}
    for t in res.targets:
        fresh.get_submodule(t).register_forward_hook(  # the format each convolution computed in
            lambda m, args, out, t=t: seen.__setitem__(t, out.is_contiguous(memory_format=torch.channels_last))
        )
    assert apply_layout(fresh, path) is fresh
    with torch.inference_mode():
        y = fresh(*x)
    assert seen == {"a": True, "b.0": False, "c": True, "d": False}  # each conv ran in its saved format
    for t, fmt in doc["layout"].items():
        w = fresh.get_submodule(t).weight
        assert w.is_contiguous(memory_format=torch.channels_last) == (fmt == "channels_last")
    assert list(fresh.state_dict()) == keys  # parameters keep their names
    assert torch.allclose(y, net(*x), atol=1e-5)
    assert torch.allclose(y, res.apply(net, x)(*x), atol=1e-5)  # same config as the tuner measured
    apply_layout(fresh, {t: "NCHW" for t in res.targets})  # re-applying replaces the hooks
    with torch.inference_mode():
        fresh(*x)
    assert not any(seen.values())


def test_apply_layout_rejects_what_does_not_fit(tmp_path):
    net, _ = make()
    with pytest.raises(PerfError, match="'zz'"):
        apply_layout(net, {"zz": "NCHW"})
    with pytest.raises(PerfError, match="format"):
        apply_layout(net, {"a": "NHWC?"})
    with pytest.raises(PerfError, match="not a Conv2d"):
        apply_layout(net, {"b": "NCHW"})
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(PerfError, match="'layout'"):
        apply_layout(net, tmp_path / "x.json")


class Crash(Exception):
    pass


def crash_after(measurer, n_calls):
    def measure(choices, rounds, seed):
        if len(measurer.calls) >= n_calls:
            raise Crash
        return measurer(choices, rounds, seed)

    return measure


def test_resumed_tuning_measures_nothing_already_logged(tmp_path):
    net, x = make()
    log = tmp_path / "tune.json"
    full = tune_layout(net, x, Scorer(), measurer=FakeMeasurer(TRUTH), **KW)

    # 1. killed in the race: the screening run is logged
    first = FakeMeasurer(TRUTH)
    with pytest.raises(Crash):
        tune_layout(net, x, Scorer(), measurer=crash_after(first, 1), log_path=log, **KW)
    doc = json.loads(log.read_text())
    logged = {m["choice"] for m in doc["measured"]}
    assert doc["result"] is None and len(logged) == full.n_measured

    # 2. a log missing two screened configs: only those two are screened again, then the race
    dropped = [m for m in doc["measured"] if m["stage"] == "screen"][-2:]
    doc["measured"] = [m for m in doc["measured"] if m not in dropped]
    log.write_text(json.dumps(doc))
    again = FakeMeasurer(TRUTH)
    res = tune_layout(net, x, Scorer(), measurer=again, log_path=log, **KW)
    screened = {"".join(map(str, c)) for c in again.calls[0][1:]}
    assert screened == {m["choice"] for m in dropped}
    assert {"".join(map(str, c)) for call in again.calls for c in call} <= logged  # nothing outside the log
    assert key(res.best_choice) == key(full.best_choice) and res.n_measured == full.n_measured

    # 3. a finished log: nothing is measured at all
    never = FakeMeasurer(TRUTH)
    back = tune_layout(net, x, Scorer(), measurer=never, log_path=log, **KW)
    assert never.calls == [] and back.resumed
    assert key(back.best_choice) == key(res.best_choice) and back.layout == res.layout
    assert back.speedup == pytest.approx(res.speedup)

    # 4. another tuning (other seed) refuses the log rather than mixing runs
    with pytest.raises(PerfError, match="log_path"):
        tune_layout(net, x, Scorer(), measurer=FakeMeasurer(TRUTH), log_path=log, **{**KW, "seed": 4})
