"""Mutation pass on opgraph.dcg.exactlaw, second sample (seed 17; docs/testing.md, eighth pass).

Written from the sample's survivors; references are the closed-form Normal / LogNormal parameters written out here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import exactlaw
from opgraph.graph import trace


def _law_of(fn, dists):
    g = trace(fn, *dists)
    f = exactlaw.forms(g, dists, None)[g.outputs[0]]
    names = {n.id: n.attrs["name"] for n in g.nodes if n.op == "input"}
    assert isinstance(f, exactlaw.Form)
    return f, exactlaw.law(f, dists, names)


LN = {"a": od.LogNormal(0.3, 0.2), "b": od.LogNormal(-0.4, 0.35)}
M_AB, S_AB = 0.3 - 0.4, math.sqrt(0.2**2 + 0.35**2)


@pytest.mark.parametrize(
    ("fn", "mu", "sigma", "sign"),
    [
        # kills exactlaw:122#1 (division by a constant adds log c instead of subtracting it)
        (lambda a, b: a * b / 4.0, M_AB - math.log(4.0), S_AB, 1.0),
        # kills :158#1 (the sign of an odd power of a negative form): (-2ab)^3 = -8 (ab)^3
        (lambda a, b: (-2.0 * a * b) ** 3, 3 * (math.log(2.0) + M_AB), 3 * S_AB, -1.0),
        (lambda a, b: (-2.0 * a * b) ** 2, 2 * (math.log(2.0) + M_AB), 2 * S_AB, 1.0),
        # kills :166#2 (cbrt's guard inverted): cbrt keeps the sign, divides the exponent by 3
        (lambda a, b: np.cbrt(a * b), M_AB / 3, S_AB / 3, 1.0),
        (lambda a, b: np.cbrt(-a * b), M_AB / 3, S_AB / 3, -1.0),
    ],
)
def test_monomial_laws_by_hand(fn, mu, sigma, sign):
    f, lw = _law_of(fn, LN)
    assert f.kind == "exp" and f.sign == sign
    dist, _ = lw
    assert isinstance(dist, od.LogNormal)
    assert dist.mu == pytest.approx(mu, rel=1e-12, abs=1e-15)
    assert dist.sigma == pytest.approx(sigma, rel=1e-12)


@pytest.mark.parametrize(("op", "base"), [(np.log, math.e), (np.log2, 2.0), (np.log10, 10.0)])
def test_logs_in_every_base_are_normal(op, base):
    # Kills exactlaw:175#3 (`base != e` -> `==`: log2 / log10 unscaled) and :235#1 (log10 as log20).
    f, lw = _law_of(lambda a, b: op(a * b), LN)
    assert f.kind == "gauss"
    dist, _ = lw
    assert isinstance(dist, od.Normal)
    assert dist.loc == pytest.approx(M_AB / math.log(base), rel=1e-12)
    assert dist.scale == pytest.approx(S_AB / math.log(base), rel=1e-12)


def test_a_base_below_one_gives_the_mirrored_exponent():
    # Kills exactlaw:180#7 (`base > 0` -> `base > 1`): 0.5 ** G = exp(-ln 2 G), a LogNormal(-m ln 2, s ln 2).
    dists = {"a": od.Normal(0.3, 0.2), "b": od.Normal(-0.1, 0.4)}
    f, lw = _law_of(lambda a, b: 0.5 ** (a - b), dists)
    dist, _ = lw
    assert isinstance(dist, od.LogNormal)
    assert dist.mu == pytest.approx(-0.4 * math.log(2.0), rel=1e-12)
    assert dist.sigma == pytest.approx(math.sqrt(0.2**2 + 0.4**2) * math.log(2.0), rel=1e-12)


def test_constant_rules_fold_exactly():
    # Kills exactlaw:114#1 (Const / Const taken as a product): the tracer folds Python constants itself, so only
    # the rule table sees two constants.
    c = exactlaw.Const
    assert exactlaw.RULES["div"](c(3.0), c(4.0)) == c(0.75)
    assert exactlaw.RULES["mul"](c(3.0), c(4.0)) == c(12.0)
    assert exactlaw.RULES["div"](c(3.0), c(0.0)) is None
    assert exactlaw.RULES["sub"](c(3.0), c(4.0)) == c(-1.0)


def test_a_replacement_name_that_is_taken_gets_primes():
    # Kills exactlaw:458#1 (`name += "'"` -> `-=`): the new input's name "<node> (exact law)" is made unique.
    g = trace(lambda a, b: a * b, "a", "b")
    out = g.outputs[0]
    taken = f"{g.nodes[out].where} (exact law)"
    dists = {"a": od.LogNormal(0.1, 0.2), "b": od.LogNormal(0.0, 0.3), taken: od.Normal(0.0, 1.0)}
    quantized = {k: d.quantize(8, "quantile") for k, d in dists.items()}
    labels = {k: k for k in dists}
    sub = exactlaw.substitute(g, out, quantized, labels, dists, 16)
    assert sub is not None
    new = [k for k in sub.dists if k not in dists]
    assert new == [taken + "'"]
    assert isinstance(sub.dists[taken + "'"], od.LogNormal) and sub.dists[taken] is dists[taken]


def test_a_non_finite_constant_has_no_form():
    # Kills exactlaw:276#1 (the scalar-constant test's `and` chain -> `or`): a sum of Normals plus inf is no
    # Normal, so neither the constant nor the sum has a form.
    dists = {"a": od.Normal(0.0, 1.0), "b": od.Normal(1.0, 2.0)}
    g = trace(lambda a, b: a + b + np.inf, "a", "b")
    fs = exactlaw.forms(g, dists, None)
    assert [n.op for n in g.nodes] == ["input", "input", "add", "const", "add"]
    assert fs[3] is None and fs[4] is None
    assert isinstance(fs[2], exactlaw.Form)
