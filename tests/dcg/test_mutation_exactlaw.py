"""Mutation pass on opgraph.dcg.exactlaw (docs/testing.md, eighth pass): the rules and the slack arithmetic.

Each test names the surviving mutant it kills; every reference is written out here (closed-form laws of Normal
and LogNormal transforms, the documented slack formulas on hand-chosen numbers), not taken from the module.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import exactlaw
from opgraph.dcg.distributions import Quantized
from opgraph.graph import trace

EPS = float(np.finfo(float).eps)


def _output_form(fn, dists):
    g = trace(fn, *dists)
    return exactlaw.forms(g, dists, None)[g.outputs[0]], g


def _law_of(fn, dists):
    f, g = _output_form(fn, dists)
    names = {n.id: n.attrs["name"] for n in g.nodes if n.op == "input"}
    assert isinstance(f, exactlaw.Form)
    return f, exactlaw.law(f, dists, names)


def test_forms_are_immutable():
    # Kills exactlaw:62#1 (frozen=True -> False): identity-like ops hand the operand's Form object to the next
    # node, so one Form is shared by several nodes and must not be changed in place.
    f = exactlaw.Form("gauss", 0.0, ((0, 1.0),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.c0 = 1.0  # type: ignore[misc]


def test_exp_of_a_lognormal_or_of_a_constant_has_no_closed_form():
    # Kills exactlaw:180#1 (the or-chain of _exp's guard -> and): exp(LogNormal) is no LogNormal.
    dists = {"x": od.LogNormal(0.2, 0.3)}
    f, _ = _output_form(lambda x: np.exp(x), dists)
    assert f is None
    f2, _ = _output_form(lambda x: np.exp(2.0 * x), dists)
    assert f2 is None
    assert exactlaw.RULES["exp"](exactlaw.Const(1.5)) is None


def test_base_two_and_other_bases_give_the_closed_form_lognormal():
    # Kills exactlaw:180#9 (the base == 1 guard -> base == 2): 2 ** G for G ~ Normal(m, s) is LogNormal(m ln 2,
    # s ln 2); also 3 ** G (pow with a constant base) and a base of 1 (a constant: no law).
    dists = {"a": od.Normal(0.3, 0.2), "b": od.Normal(-0.1, 0.4)}
    m, s = 0.3 - 2 * -0.1, math.sqrt(0.2**2 + (2 * 0.4) ** 2)
    for fn, base in ((lambda a, b: np.exp2(a - 2 * b), 2.0), (lambda a, b: 3.0 ** (a - 2 * b), 3.0)):
        f, lw = _law_of(fn, dists)
        assert f.kind == "exp" and f.sign == 1.0
        dist, _ = lw
        assert isinstance(dist, od.LogNormal)
        assert dist.mu == pytest.approx(m * math.log(base), rel=1e-12)
        assert dist.sigma == pytest.approx(s * math.log(base), rel=1e-12)
    assert exactlaw.RULES["pow"](exactlaw.Const(1.0), exactlaw.Form("gauss", 0.0, ((0, 1.0),))) is None


def test_negated_normal_sum_is_the_mirrored_normal():
    # Kills exactlaw:208#1 (neg of a Normal form taken for an exp form): -(a + 2 b) is Normal(-(ma + 2 mb), s).
    dists = {"a": od.Normal(1.0, 0.5), "b": od.Normal(-2.0, 0.25)}
    f, lw = _law_of(lambda a, b: -(a + 2.0 * b), dists)
    assert f.kind == "gauss"
    dist, _ = lw
    assert isinstance(dist, od.Normal)
    assert dist.loc == pytest.approx(-(1.0 - 4.0), rel=1e-12)
    assert dist.scale == pytest.approx(math.sqrt(0.25 + 0.25), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(lambda a, b: -(a + 2.0 * b), od.Normal(1.0, 0.5), od.Normal(-2.0, 0.25), atoms=16)
    exact = od.Normal(3.0, math.sqrt(0.5))
    true = od.w1_to_continuous(r.atoms, r.weights, exact)
    assert true <= r.w1_bound <= 1.02 * true


def test_an_input_carrying_an_upstream_bound_is_no_generator():
    # Kills exactlaw:244#1 (check=True -> False by default): a quantization with an upstream W1 bound is not the
    # exact law of its family, even where the family's type matches.
    q = od.Normal(0.0, 1.0).quantize(8, "quantile")
    assert exactlaw._input_form(3, od.Normal(0.0, 1.0), q) == exactlaw.Form("gauss", 0.0, ((3, 1.0),))
    q_up = dataclasses.replace(q, upstream_w1=0.25)
    assert exactlaw._input_form(3, od.Normal(0.0, 1.0), q_up) is None
    assert exactlaw._input_form(3, od.LogNormal(0.0, 1.0), q_up) is None


def test_rounding_slack_follows_the_documented_formula():
    # Kills exactlaw:332#4, :335#2 (4 * nterms -> /, ds * sqrt(2/pi) -> /) and :336#1 (t = s - ds; 1e-14): the slack
    # of a 2-generator form, written out from law()'s docstring on hand-chosen parameters.
    dists = {"a": od.Normal(1.0, 0.5), "b": od.Normal(3.0, 2.0)}
    form = exactlaw.Form("gauss", 0.5, ((0, 2.0), (1, -1.0)), 1.0, True)
    dist, slack = exactlaw.law(form, dists, {0: "a", 1: "b"})
    m, s = 0.5 + 2.0 - 3.0, math.sqrt(1.0 + 4.0)
    assert (dist.loc, dist.scale) == (pytest.approx(m, rel=1e-15), pytest.approx(s, rel=1e-15))
    n = 2 + 2
    dm = 4 * n * EPS * ((0.5 + 2.0 + 3.0) + abs(m))
    ds = 4 * n * EPS * (math.sqrt(5.0) + s)
    assert slack == pytest.approx(dm + ds * math.sqrt(2 / math.pi), rel=1e-14, abs=0.0)
    # the LogNormal form: e^(m + dm) (dm e^(t^2/2) + ds e^(t^2)), t = s + ds
    lform = exactlaw.Form("exp", 0.5, ((0, 2.0), (1, -1.0)), 1.0, True)
    ldist, lslack = exactlaw.law(lform, dists, {0: "a", 1: "b"})
    t = s + ds
    assert isinstance(ldist, od.LogNormal)
    assert lslack == pytest.approx(
        math.exp(m + dm) * (dm * math.exp(t * t / 2) + ds * math.exp(t * t)), rel=1e-14, abs=0.0
    )


def _hand_quantized() -> Quantized:
    # cells [0, 1], [1, 2], [2, 4], [4, inf): ends that are powers of two, so 8 ulps of padding are exact
    return Quantized(
        atoms=np.array([0.5, 1.5, 3.0, 6.0]),
        weights=np.array([0.25, 0.25, 0.25, 0.25]),
        lo=np.array([0.0, 1.0, 2.0, 4.0]),
        hi=np.array([1.0, 2.0, 4.0, np.inf]),
        err=np.array([0.1, 0.05, 0.2, 0.4]),
        method="quantile",
        support=(0.0, math.inf),
        bias=np.array([1e-3, 2e-3, 3e-3, 4e-3]),
        m2=np.array([0.01, 0.02, 0.03, 0.04]),
    )


def test_with_slack_adds_the_slack_by_mass_and_pads_cells_by_eight_ulps():
    # Kills exactlaw:351#1 (+ 1e-9 err -> -), :353#1 (bias dropped), :354#3 (8 ulps -> 9), :355#2 (an
    # infinite pad replaced by 1.0 instead of 0) and :358#2 (hi[-2] kept instead of the support's end hi[-1]).
    q = _hand_quantized()
    out = exactlaw._with_slack(q, 0.01)
    add = 0.01 * q.weights + 1e-9 * q.err
    np.testing.assert_array_equal(out.err, q.err + add)
    assert out.bias is not None
    np.testing.assert_array_equal(out.bias, q.bias + add)
    np.testing.assert_array_equal(out.m2, q.m2)
    # interior ends move out by 8 eps * max(|lo|, |hi|) of their cell; the support's ends stay
    np.testing.assert_array_equal(out.lo[:3], [0.0, 1.0 - 8 * EPS * 2.0, 2.0 - 8 * EPS * 4.0])
    np.testing.assert_array_equal(out.hi, [1.0 + 8 * EPS * 1.0, 2.0 + 8 * EPS * 2.0, 4.0 + 8 * EPS * 4.0, np.inf])
    # the tail cell's finite end moves by a few ulps at most (never by a whole unit)
    assert 0.0 <= q.lo[3] - out.lo[3] <= 8 * EPS * 4.0
    np.testing.assert_array_equal(out.atoms, q.atoms)
    np.testing.assert_array_equal(out.weights, q.weights)
    # no bias: stays unknown
    out2 = exactlaw._with_slack(dataclasses.replace(q, bias=None), 0.01)
    assert out2.bias is None


def test_whole_output_says_when_the_output_itself_is_one_exact_law():
    # Kills exactlaw:299#2 (the switch's test inverted) and :307#3 (law() is None taken for a law): the api's
    # target_w1 planning reads this to not cap atoms by the original grid (no test of the api saw the difference).
    xs = {"a": od.LogNormal(0.1, 0.2), "b": od.LogNormal(-0.3, 0.4), "c": od.LogNormal(0.0, 0.1)}
    g = trace(lambda a, b, c: 2.0 * a * b / c, "a", "b", "c")
    assert exactlaw.whole_output(g, g.outputs[0], xs) is True
    g2 = trace(lambda a, b, c: a * b * c + a, "a", "b", "c")  # the output is a sum of an exp form and an input
    assert exactlaw.whole_output(g2, g2.outputs[0], xs) is False
    g3 = trace(lambda a, b, c: 2.0 * a + 1.0, "a", "b", "c")  # trivial: left to the grid
    assert exactlaw.whole_output(g3, g3.outputs[0], xs) is False
    gam = {"a": od.Gamma(2.0, 1.0), "b": xs["b"], "c": xs["c"]}
    assert exactlaw.whole_output(g, g.outputs[0], gam) is False
    degenerate = {"a": od.LogNormal(0.1, 0.2), "b": od.LogNormal(-0.3, 0.4), "c": od.LogNormal(0.0, 0.1)}
    g4 = trace(lambda a, b, c: a * b / (a * b) * c / c, "a", "b", "c")  # X / X: no generator left
    assert exactlaw.whole_output(g4, g4.outputs[0], degenerate) is False
    token = exactlaw.ENABLED.set(False)
    try:
        assert exactlaw.whole_output(g, g.outputs[0], xs) is False
    finally:
        exactlaw.ENABLED.reset(token)
