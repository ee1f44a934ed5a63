"""The output check compares values position by position; backward-only differences replay."""

import pytest
import torch

from opgraph import energy as oe
from opgraph.energy.differ import check_outputs
from opgraph.energy.errors import EnergyError, OutputMismatchError

FAST = {"rounds": 3, "max_rounds": 3, "window_s": 0.0, "calibrate": False, "bisect": False}


def _runs(fa, fb, x):
    return oe.record(fa, x, timing_pass=False), oe.record(fb, x, timing_pass=False)


@pytest.mark.parametrize(
    ("fa", "fb", "canon"),
    [
        (lambda x: x.argsort(dim=-1), lambda x: x.argsort(dim=-1, descending=True), "sort"),
        (lambda x: x.sort(dim=-1).values, lambda x: x.sort(dim=-1, descending=True).values, "sort"),
        (lambda x: x @ x, lambda x: (x @ x).T, "sort"),
        (lambda x: (x @ x).reshape(-1), lambda x: x @ x, "flatten"),
    ],
)
def test_order_and_layout_count(fa, fb, canon):
    x = torch.randn(16, 16)
    ra, rb = _runs(fa, fb, x)
    out = check_outputs(ra, rb)
    assert not out["agree"] and not out["precision"] and out["max_rel_error"] > 0.1
    with pytest.raises(OutputMismatchError, match="position by position"):
        oe.diff(fa, fb, x, backend="time", **FAST)
    declared = check_outputs(ra, rb, canon)
    assert declared["agree"] and declared["canonicalize"] == canon


def test_same_values_same_positions_agree():
    x = torch.randn(16, 16)
    ra, rb = _runs(lambda x: (x * 2).sum(0), lambda x: x.sum(0) * 2, x)
    out = check_outputs(ra, rb)
    assert out["agree"] and out["max_rel_error"] < 1e-5 and "shape_mismatch" not in out


def test_callable_canonical_form_and_bad_name():
    x = torch.randn(8, 8)
    ra, rb = _runs(lambda x: x @ x, lambda x: (x @ x).T, x)
    assert check_outputs(ra, rb, lambda t: t if t.stride(0) >= t.stride(1) else t.T.contiguous())["agree"]
    with pytest.raises(EnergyError, match="canonicalize"):
        check_outputs(ra, rb, "unordered")


def _grad_pow(x):
    x = x.detach().requires_grad_(True)
    y = torch.tanh(x @ x)
    (g,) = torch.autograd.grad(y.pow(2).sum(), x)
    return g


def _grad_mul(x):
    x = x.detach().requires_grad_(True)
    y = torch.tanh(x @ x)
    (g,) = torch.autograd.grad((y * y).sum(), x)
    return g


def test_backward_only_difference_replays(work_backend):
    """A `y.pow(2)` vs `y * y` pair differs only in autograd's ops (was KeyError in replay.py)."""
    rep = oe.diff(_grad_pow, _grad_mul, torch.randn(32, 32), backend=work_backend, **FAST)
    assert rep.outputs["agree"]
    assert rep.regions and all(r.pair.a.cost + r.pair.b.cost > 0 for r in rep.regions)
    pow_ops = [n for n in rep.run_a.graph.nodes if n.op == "aten::pow"]
    assert pow_ops, "the backward pass of pow was recorded"


def _layers(x, ws):
    for w in ws:
        x = torch.tanh(x @ w)  # the same ops on the same shapes in every layer
    return x


def test_repeated_regions_are_measured_once_and_small_ones_screened(work_backend):
    torch.manual_seed(0)
    ws = [torch.randn(32, 32) / 6 for _ in range(6)]

    def a(x):
        return _layers(x, ws) * 1.0

    def b(x):
        return _layers(x, ws) + 0.0

    x = torch.randn(64, 32)
    rep = oe.diff(a, b, x, backend=work_backend, screen_share=0.0, **FAST)
    t = rep.timings
    assert t["regions_reused"] >= 4 and t["regions_replayed"] + t["regions_reused"] == len(rep.regions)
    reused = [r for r in rep.regions if "reused_from_region" in r.pair.extra]
    by_id = {r.region.id: r for r in rep.regions}
    assert reused and all(r.pair.ratio == by_id[r.pair.extra["reused_from_region"]].pair.ratio for r in reused)
    screened = oe.diff(a, b, x, backend=work_backend, screen_share=0.5, dedupe=False, **FAST)
    assert screened.timings["regions_screened_out"] > 0 and any("not replayed" in n for n in screened.notes)
    assert len(screened.regions) < len(rep.regions)


def _fixed_backend(costs):
    """A backend whose per-call cost is ``costs[fn]`` (deterministic)."""
    from opgraph.energy.backends import Backend, Sample

    class Fixed(Backend):
        def measure(self, fn, reps, *, bytes_per_call=0.0):
            c = costs[fn]
            return Sample(c, c, c, reps)

    return Fixed(name="fixed", estimated=True, min_window_s=0.0)


@pytest.mark.parametrize(
    ("cost_a", "stops_early"), [(1.0, True), (1.105, False), (1.15, False), (1 / 1.15, False), (3.0, True), (0.3, True)]
)
def test_region_pairs_stop_early_only_when_decided(cost_a, stops_early):
    """Inside (1/t, t), or beyond t * DECIDED_MARGIN either way: decided after min_rounds; near t: all rounds."""
    from opgraph.energy.replay import paired

    def fa():
        return None

    def fb():
        return None

    be = _fixed_backend({fa: cost_a, fb: 1.0})
    p = paired(fa, fb, be, rounds=7, max_rounds=15, decide_at=1.1, min_rounds=4)
    assert len(p.rounds_ratio) == (4 if stops_early else 7)
    assert p.ratio == pytest.approx(cost_a)


@pytest.mark.parametrize(
    ("cost_a", "small", "n"), [(1.15, True, 4), (1.15, False, 7), (1.105, True, 4), (1.105, False, 7)]
)
def test_region_pairs_too_small_to_flag_stop_after_min_rounds(cost_a, small, n):
    from opgraph.energy.replay import paired

    def fa():
        return None

    def fb():
        return None

    seen = []

    def negligible(ca, cb):
        seen.append((ca, cb))
        return small

    be = _fixed_backend({fa: cost_a, fb: 1.0})
    p = paired(fa, fb, be, rounds=7, max_rounds=15, decide_at=1.1, min_rounds=4, negligible=negligible)
    assert len(p.rounds_ratio) == n
    assert seen[0] == pytest.approx((cost_a, 1.0))
    assert (p.extra.get("stopped") == "negligible share") is small
