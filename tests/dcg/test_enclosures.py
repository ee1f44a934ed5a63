"""Mean-value enclosures where a variable occurs more than once (the interval dependency problem)."""

import contextvars
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import boxlinear, enclose, engine, subcells, taylor


def _naive(monkeypatch):
    """Switch the mean-value form, the dedicated forms and subdivision off (plain interval arithmetic per box)."""
    monkeypatch.setattr(engine.Evaluator, "_shared_operands", lambda self: set())
    monkeypatch.setattr(enclose, "find_forms", lambda graph: {})
    # the nested sub-cell bound (opgraph.dcg.subcells), whose narrower cells also avoid the false pole
    monkeypatch.setattr(subcells, "ENABLED", contextvars.ContextVar("subcells_off", default=False))
    monkeypatch.setattr(enclose, "levels_for", lambda k, max_pieces=0: 0)
    # and the affine forms (opgraph.dcg.affine), which also keep the quadratic case away from its false pole
    monkeypatch.setattr(engine.affine, "ENABLED", contextvars.ContextVar("affine_off", default=False))
    # and the cancellation rewrites (opgraph.dcg.cancel), whose rationalization 1 / (sqrt(a^2 + b) - a) =
    # (sqrt(a^2 + b) + a) / b also removes the false pole
    monkeypatch.setattr(engine.cancel, "ENABLED", contextvars.ContextVar("cancel_off", default=False))
    # and the second-order Taylor box bound (opgraph.dcg.taylor), whose mean-value centring of a divisor that
    # reaches 0 removes the false pole too
    monkeypatch.setattr(taylor, "ENABLED", contextvars.ContextVar("taylor_off", default=False))


def _evaluate(fn, inputs, atoms):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", od.UnboundedWarning)
        return od.evaluate(fn, *inputs, atoms=atoms)


CASES = [
    # x*x - x + 0.3 >= 0.05 > 0, but [0, 1]*[0, 1] - [0, 1] + 0.3 contains 0 on wide cells.
    ("quadratic", lambda x: 1.0 / (x * x - x + 0.3), [od.Uniform(0, 1)], 8, 4096),
    # sqrt(a**2 + b) - a > 0 for b > 0: the cancellation of the piston's volume formula.
    ("cancellation", lambda a, b: 1.0 / (np.sqrt(a**2 + b) - a), [od.Uniform(1, 3), od.Uniform(0.2, 1)], 16, 512),
]


@pytest.mark.parametrize("name,fn,inputs,atoms,fine", CASES, ids=[c[0] for c in CASES])
def test_a_reused_variable_gets_a_finite_and_sound_bound(monkeypatch, name, fn, inputs, atoms, fine):
    r = _evaluate(fn, inputs, atoms)
    assert np.isfinite(r.w1_bound)
    # Sound: W1(exact, r) <= W1(r, r_fine) + W1(exact, r_fine), so W1(r, r_fine) - bound(r_fine) <= bound(r).
    ref = _evaluate(fn, inputs, fine)
    assert np.isfinite(ref.w1_bound) and ref.w1_bound < 0.1 * r.w1_bound
    assert r.w1(ref) - ref.w1_bound <= r.w1_bound
    # Plain interval arithmetic finds a pole that the function does not have.
    _naive(monkeypatch)
    assert _evaluate(fn, inputs, atoms).w1_bound == np.inf


@pytest.mark.parametrize(
    "fn,inputs",
    [
        (lambda x: (x + 1) ** 2 - x**2 - 2 * x, [od.Uniform(-1, 1)]),
        (lambda x, y: np.exp(x * y) - x * y, [od.Uniform(0, 1), od.Normal(0, 1)]),
        (lambda x, y: np.sin(x) * np.cos(x) + y * x, [od.Uniform(0, 3), od.Uniform(-1, 1)]),
        (lambda x, y: x / (x + y), [od.Gamma(2, 1), od.Gamma(3, 1)]),
    ],
)
def test_the_mean_value_form_never_loosens_a_bound(monkeypatch, fn, inputs):
    # the same graph both times (opgraph.dcg.cancel would rewrite x / (x + y) = 1 / (1 + y / x): other roundings)
    monkeypatch.setattr(engine.cancel, "ENABLED", contextvars.ContextVar("cancel_off", default=False))
    # ... and the point-mass answer on both (the box-linear mixture's lattice differs with the bound it aims at)
    monkeypatch.setattr(boxlinear, "ENABLED", contextvars.ContextVar("box_linear_off", default=False))
    r = _evaluate(fn, inputs, 16)
    _naive(monkeypatch)
    plain = _evaluate(fn, inputs, 16)
    np.testing.assert_array_equal(r.atoms, plain.atoms)
    assert r.w1_bound <= plain.w1_bound
