"""Mutation pass on opgraph.dcg.exactlaw, the mutants no earlier sample took (docs/testing.md, ninth pass).

Written from the seeded samples' survivors (seeds 19-22 of the 201 mutants the eighth pass did not run); every
reference is written out here (closed-form Normal / LogNormal parameters), not taken from the module.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import exactlaw, switches
from opgraph.graph import trace


def test_constants_are_immutable():
    # Kills exactlaw:82#1 (Const frozen=True -> False): identity-like ops hand the operand's Const object to the
    # next node (as with Form), so one Const is shared by several nodes and must not be changed in place.
    c = exactlaw.Const(2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.value = 3.0  # type: ignore[misc]
    assert exactlaw.RULES["identity"](c) is c
    assert hash(c) == hash(exactlaw.Const(2.0))


LN = {"a": od.LogNormal(0.3, 0.2), "b": od.LogNormal(-0.4, 0.35)}
M_AB, S_AB = 0.3 - 0.4, math.sqrt(0.2**2 + 0.35**2)


def _form_and_law(fn, dists):
    g = trace(fn, *dists)
    f = exactlaw.forms(g, dists, None)[g.outputs[0]]
    names = {n.id: n.attrs["name"] for n in g.nodes if n.op == "input"}
    assert isinstance(f, exactlaw.Form)
    return f, exactlaw.law(f, dists, names), g


@pytest.mark.parametrize(
    ("fn", "mu", "sigma"),
    [
        # kills exactlaw:130#2 (the exponent of a constant over an exp form scaled by -2, not -1):
        # 2 / (a b) = exp(log 2 - G_a - G_b)
        (lambda a, b: 2.0 / (a * b), math.log(2.0) - M_AB, S_AB),
        (lambda a, b: 0.5 / a, math.log(0.5) - 0.3, 0.2),
        # kills :131#1 (the constant's log minus the inverted exponent's shift): 2 / (3 a b) = exp(log(2/3) - G_a - G_b)
        (lambda a, b: 2.0 / (3.0 * a * b), math.log(2.0 / 3.0) - M_AB, S_AB),
        # the powers of _power: (a b)^2, sqrt(a b), 1 / sqrt(a) (rsqrt as a power)
        (lambda a, b: (a * b) ** 2, 2 * M_AB, 2 * S_AB),
        (lambda a, b: np.sqrt(a * b), M_AB / 2, S_AB / 2),
        (lambda a, b: a**-0.5, -0.15, 0.1),
        # kills exactlaw:230#1 (square as the power 4): np.square is the op "square", not pow
        (lambda a, b: np.square(a * b), 2 * M_AB, 2 * S_AB),
        # abs of a negative monomial is the monomial's LogNormal
        (lambda a, b: np.abs(-3.0 * a * b), math.log(3.0) + M_AB, S_AB),
    ],
)
def test_quotients_and_powers_of_lognormals_by_hand(fn, mu, sigma):
    f, lw, _ = _form_and_law(fn, LN)
    assert f.kind == "exp" and f.sign == 1.0
    dist, _ = lw
    assert isinstance(dist, od.LogNormal)
    assert dist.mu == pytest.approx(mu, rel=1e-12, abs=1e-15)
    assert dist.sigma == pytest.approx(sigma, rel=1e-12)


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: 2.0 / a,  # kills exactlaw:131#3 (a constant over a form marked trivial): a power -1
        lambda a, b: 2.0 / (a * b),
        lambda a, b: np.sqrt(a),  # kills :162#1 (a power marked trivial): a power other than 1
        lambda a, b: a**3,
        lambda a, b: (a * b) ** 2,
    ],
)
def test_powers_of_one_input_are_nontrivial_and_replaced(fn):
    # The module docstring: only nontrivial forms are replaced, "a power other than 1" among them; a power of one
    # LogNormal input is a new LogNormal, so the whole output is one exact law (what the api's planning reads).
    f, _, g = _form_and_law(fn, LN)
    assert f.nontrivial is True
    assert exactlaw.whole_output(g, g.outputs[0], LN) is True
    # an affine map of one input is not (left to the grid), whatever the constant
    g2 = trace(lambda a, b: 2.0 * a, *LN)
    assert exactlaw.whole_output(g2, g2.outputs[0], LN) is False


def test_abs_of_a_normal_form_has_no_form():
    # Kills exactlaw:197#2 (`x.kind == "exp"` -> `!=` in _abs): |a + b| of Normals is a folded Normal, no
    # LogNormal (the mutant gave it the exp form of the same exponent), and |a b| of LogNormals is a LogNormal.
    nd = {"a": od.Normal(0.5, 0.2), "b": od.Normal(1.0, 0.3)}
    g = trace(lambda a, b: np.abs(a + b), *nd)
    assert exactlaw.forms(g, nd, None)[g.outputs[0]] is None
    assert exactlaw.whole_output(g, g.outputs[0], nd) is False
    f, _, _ = _form_and_law(lambda a, b: np.abs(a * b), LN)
    assert f.kind == "exp" and f.sign == 1.0


def test_scaling_by_one_keeps_the_form_and_by_zero_has_none():
    # Kills exactlaw:105#4 (`c == 0.0` -> `c == 1.0` in _log_const): a factor of 1 is a nonzero constant, log 1 = 0,
    # so the form is unchanged (also through a graph: the tracer keeps `1.0 * x` as a mul node); a factor of 0 has
    # no log and no form.
    c, form = exactlaw.Const, exactlaw.Form
    e = form("exp", 0.25, ((0, 1.0), (1, 2.0)), -1.0, True)
    gs = form("gauss", 0.5, ((0, 2.0),), 1.0, True)
    for f in (e, gs):
        assert exactlaw.RULES["mul"](f, c(1.0)) == f
        assert exactlaw.RULES["div"](f, c(1.0)) == f
        assert exactlaw.RULES["mul"](c(1.0), f) == f
        assert exactlaw.RULES["mul"](f, c(0.0)) is None
        # kills :105#1 (the guard's `or` -> `and`): neither 0 nor a non-finite factor has a log
        assert exactlaw.RULES["mul"](f, c(math.inf)) is None
        assert exactlaw.RULES["div"](c(-math.inf), e) is None
        assert exactlaw.RULES["div"](c(0.0), e) is None
    f, lw, _ = _form_and_law(lambda a, b: (a * b) * 1.0, LN)
    assert isinstance(lw[0], od.LogNormal)
    assert lw[0].mu == pytest.approx(M_AB, rel=1e-12) and lw[0].sigma == pytest.approx(S_AB, rel=1e-12)


def test_a_constant_over_a_normal_form_has_no_form():
    # Kills exactlaw:127#1 (`lc is None or y.kind != "exp"` -> `and`): 2 / (a + b) of Normals is no LogNormal (the
    # mutant inverted the Gaussian part as if it were an exponent).
    nd = {"a": od.Normal(0.5, 0.2), "b": od.Normal(1.0, 0.3)}
    for fn in (lambda a, b: 2.0 / (a + b), lambda a, b: -1.0 / (a - b)):
        g = trace(fn, *nd)
        assert exactlaw.forms(g, nd, None)[g.outputs[0]] is None
        assert exactlaw.whole_output(g, g.outputs[0], nd) is False


def test_rsqrt_is_the_power_minus_one_half():
    # Kills exactlaw:229#2 (rsqrt as the power -1): the op comes from torch graphs (torch.rsqrt), which the NumPy
    # tracer does not make, so the rule table is called directly: rsqrt(exp(0.2 + 2 G)) = exp(-0.1 - G).
    f = exactlaw.Form("exp", 0.2, ((0, 2.0),), 1.0, False)
    assert exactlaw.RULES["rsqrt"](f) == exactlaw.Form("exp", -0.1, ((0, -1.0),), 1.0, True)
    assert exactlaw.RULES["sqrt"](f) == exactlaw.Form("exp", 0.1, ((0, 1.0),), 1.0, True)
    neg = exactlaw.Form("exp", 0.2, ((0, 2.0),), -1.0, True)
    assert exactlaw.RULES["rsqrt"](neg) is None  # no real root of a negative form


# --- seed 21 ---------------------------------------------------------------------------------------------------


def _chain(steps: int, negate: bool):
    def fn(a, b):
        y = a * b
        for i in range(steps):
            y = y * (1.0 + i * 1e-9)  # a new constant and a mul per step: 2 nodes
        return -y if negate else y

    return trace(fn, "a", "b")


def test_graph_size_limit_is_twenty_thousand_nodes():
    # Kills exactlaw:58#1 (MAX_NODES 20000 -> 20001): a 20000-node graph is searched, a 20001-node one is not (the
    # product stays one LogNormal monomial through every step, so only the size decides).
    dists = {"a": LN["a"], "b": LN["b"]}
    g = _chain(9998, negate=True)
    assert len(g.nodes) == 20000
    assert exactlaw.whole_output(g, g.outputs[0], dists) is True
    g2 = _chain(9999, negate=False)
    assert len(g2.nodes) == 20001
    assert exactlaw.whole_output(g2, g2.outputs[0], dists) is False


def test_power_one_keeps_the_form_and_power_zero_has_none():
    # Kills exactlaw:153#6 (`p == 0` -> `p == 1` in _power's guard): x ** 1 is x (a LogNormal monomial), x ** 0 is
    # the constant 1 (no generator, no form).
    f = exactlaw.Form("exp", 0.25, ((0, 1.0), (1, -2.0)), -1.0, True)
    assert exactlaw.RULES["pow"](f, exactlaw.Const(1.0)) == f
    assert exactlaw.RULES["pow"](f, exactlaw.Const(0.0)) is None
    fa, lw, _ = _form_and_law(lambda a, b: (a * b) ** 1.0, LN)
    assert lw[0].mu == pytest.approx(M_AB, rel=1e-12) and lw[0].sigma == pytest.approx(S_AB, rel=1e-12)


def test_cbrt_of_one_input_is_nontrivial():
    # Kills exactlaw:169#1 (cbrt's form marked trivial): cbrt(a) of a LogNormal is LogNormal(m / 3, s / 3), a power
    # other than 1, so it is replaced (the whole output is one exact law).
    f, lw, g = _form_and_law(lambda a, b: np.cbrt(a), LN)
    assert f.nontrivial is True
    assert exactlaw.whole_output(g, g.outputs[0], LN) is True
    assert lw[0].mu == pytest.approx(0.1, rel=1e-12) and lw[0].sigma == pytest.approx(0.2 / 3, rel=1e-12)


def test_a_constant_base_of_zero_or_below_has_no_form():
    # Kills exactlaw:180#6 (`base > 0` -> `base >= 0`): 0 ** G has no LogNormal law (log 0 is undefined); the rule
    # table answers None, it does not raise.
    g = exactlaw.Form("gauss", 0.5, ((0, 1.0),), 1.0, False)
    assert exactlaw.RULES["pow"](exactlaw.Const(0.0), g) is None
    assert exactlaw.RULES["pow"](exactlaw.Const(-2.0), g) is None
    assert exactlaw.RULES["pow"](exactlaw.Const(math.inf), g) is None


def test_negating_and_taking_abs_of_constants():
    # Kills exactlaw:206#1 (neg of a constant kept its sign): the rule table folds constants itself (graphs from
    # torch keep them as nodes).
    c = exactlaw.Const
    assert exactlaw.RULES["neg"](c(2.5)) == c(-2.5)
    assert exactlaw.RULES["abs"](c(-2.5)) == c(2.5)


def test_signs_of_exp_forms_are_plus_or_minus_one():
    # The Form docstring: sign = +-1. Kills exactlaw:107#1 / :107#5 (the sign of a positive / negative constant
    # 1.0 -> 2.0 / -1.0 -> -2.0), which the rules carry into every product.
    c = exactlaw.Const
    e = exactlaw.Form("exp", 0.0, ((0, 1.0),), 1.0, False)
    assert exactlaw.RULES["mul"](e, c(-2.0)) == exactlaw.Form("exp", math.log(2.0), ((0, 1.0),), -1.0, False)
    assert exactlaw.RULES["mul"](e, c(2.0)) == exactlaw.Form("exp", math.log(2.0), ((0, 1.0),), 1.0, False)
    f, _, _ = _form_and_law(lambda a, b: -2.0 * a * b, LN)
    assert f.sign == -1.0
    f2, _, _ = _form_and_law(lambda a, b: (-2.0 * a) * (-3.0 * b), LN)
    assert f2.sign == 1.0


def test_the_replacement_input_keeps_the_source_line_of_the_node():
    # Kills exactlaw:467#1 (the kept meta keys inverted): the new input carries the replaced node's source line and
    # origin id, and nothing else (so errors and labels name the user's line).
    g = trace(lambda a, b: a * b, "a", "b")
    out = g.nodes[g.outputs[0]]
    assert "source" in out.meta and "func" in out.meta
    dists = {"a": LN["a"], "b": LN["b"]}
    quantized = {k: d.quantize(8, "quantile") for k, d in dists.items()}
    sub = exactlaw.substitute(g, out.id, quantized, {k: k for k in dists}, dists, 16)
    assert sub is not None
    (node,) = sub.graph.nodes
    assert node.op == "input"
    assert node.meta == {"source": out.meta["source"], "origin": out.id}
    assert node.where == out.where.replace("(mul)", "(input)")


# --- seed 22 ---------------------------------------------------------------------------------------------------


def test_log_and_exp_of_one_input_are_nontrivial():
    # Kills exactlaw:183#2 (exp of a Normal form marked trivial): a log / exp between the families is nontrivial
    # (module docstring), so exp(a) of one Normal is replaced by LogNormal(m, s), log(x) of one LogNormal by
    # Normal(mu, sigma).
    nd = {"a": od.Normal(0.5, 0.2), "b": od.Normal(1.0, 0.3)}
    for fn, dists, law in (
        (lambda a, b: np.exp(a), nd, od.LogNormal(0.5, 0.2)),
        (lambda a, b: np.log(b), LN, od.Normal(-0.4, 0.35)),
    ):
        f, lw, g = _form_and_law(fn, dists)
        assert f.nontrivial is True
        assert exactlaw.whole_output(g, g.outputs[0], dists) is True
        assert repr(lw[0]) == repr(law)


def test_cbrt_of_a_normal_form_or_a_constant_has_no_form():
    # Kills exactlaw:166#1 (cbrt's guard `or` -> `and`): the cube root of a Normal sum is no LogNormal, and a
    # constant's cube root is left to the grid's folding (None, not an error).
    nd = {"a": od.Normal(0.5, 0.2), "b": od.Normal(1.0, 0.3)}
    g = trace(lambda a, b: np.cbrt(a + b), *nd)
    assert exactlaw.forms(g, nd, None)[g.outputs[0]] is None
    assert exactlaw.RULES["cbrt"](exactlaw.Const(8.0)) is None


def test_a_form_whose_variance_overflows_is_left_to_the_grid():
    # Found while classifying exactlaw:328#2: law() squared a * sd with `**`, which raises OverflowError (not inf)
    # past ~1e154, so od.evaluate(1e200 a + 1e200 b) raised where the grid alone evaluates it. Now such a form has
    # no law (s would be inf) and the evaluation is the one without exact laws.
    nd = {"a": od.Normal(0.0, 1.0), "b": od.Normal(1.0, 2.0)}
    form = exactlaw.Form("gauss", 0.0, ((0, 1e200), (1, 1e200)), 1.0, True)
    assert exactlaw.law(form, nd, {0: "a", 1: "b"}) is None
    lform = exactlaw.Form("exp", 0.0, ((0, 1e200),), 1.0, True)
    assert exactlaw.law(lform, {"a": od.LogNormal(0.0, 1.0)}, {0: "a"}) is None

    def fn(a, b):
        return 1e200 * a + 1e200 * b

    g = trace(fn, *nd)
    assert exactlaw.whole_output(g, g.outputs[0], nd) is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, nd["a"], nd["b"], atoms=8)
        with switches.scope({"exact_law": False}):
            off = od.evaluate(fn, nd["a"], nd["b"], atoms=8)
    assert "exact_laws" not in r.info
    np.testing.assert_array_equal(r.atoms, off.atoms)
    assert r.w1_bound == off.w1_bound and math.isfinite(r.w1_bound)
    # the same sum at a scale whose variance fits a float is replaced by its exact Normal law
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = od.evaluate(lambda a, b: 1e100 * a + 1e100 * b, nd["a"], nd["b"], atoms=8)
    assert r2.info["exact_laws"][0]["law"] == repr(od.Normal(1e100, math.sqrt(5.0) * 1e100))


def test_log_of_a_normal_form_or_of_a_negative_form_has_no_form():
    # Kills exactlaw:173#1 (_log's guard `or` chain -> `and`): log(a + b) of Normals is no Normal (the mutant took
    # the Gaussian part as an exponent), and the log of a negative LogNormal form is undefined.
    nd = {"a": od.Normal(0.5, 0.2), "b": od.Normal(1.0, 0.3)}
    g = trace(lambda a, b: np.log(a + b), *nd)
    assert exactlaw.forms(g, nd, None)[g.outputs[0]] is None
    for fn in (lambda a, b: np.log(-(a * b)), lambda a, b: np.log2(-2.0 * a / b)):
        g2 = trace(fn, *LN)
        assert exactlaw.forms(g2, LN, None)[g2.outputs[0]] is None
