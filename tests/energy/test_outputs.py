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
