"""Mutation tests of opgraph.dcg.semidiscrete against independent references (issue 13, fourth pass).

References: SciPy's frozen laws (``scipy.stats``) for the CDF of each affine piece, ``scipy.integrate.quad`` for
the tail partial moments and for ``W1(S, G) = int |H - G| dt``, closed-form laws for whole evaluations, and
Python arithmetic for the rewritten graphs. None of them calls the module under test.
"""

from __future__ import annotations

import contextvars
import math
import warnings

import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st

from opgraph import dcg as od
from opgraph.dcg import engine, exactlaw, switches
from opgraph.dcg import semidiscrete as sd
from opgraph.dcg.w1 import w1_to_cdf, w1_to_continuous
from opgraph.graph import trace


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    """The grid's own certificates are checked here: the exact-law recognition (opgraph.dcg.exactlaw) is off.

    Sums of Normals and products of LogNormals have closed-form laws, which it would use instead.
    """
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off", default=False))


LAWS = {
    "normal": (od.Normal(0.5, 1.5), st.norm(0.5, 1.5)),
    "uniform": (od.Uniform(1.0, 3.0), st.uniform(1.0, 2.0)),
    "uniform_neg": (od.Uniform(-2.0, -1.0), st.uniform(-2.0, 1.0)),
}
ATOMS = np.array([-1.5, -0.25, 0.0, 0.4, 2.0])
WEIGHTS = np.array([0.1, 0.3, 0.2, 0.15, 0.25])


def _affine(op: str, c_side: int, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(p, q)`` with ``a op C = p + q C``, written out from the op (not from the module)."""
    one = np.ones_like(a)
    if op == "add":
        return a, one
    if op == "sub":
        return (a, -one) if c_side == 1 else (-a, one)
    return np.zeros_like(a), a  # mul


def _h_ref(op: str, c_side: int, ref, t: np.ndarray) -> np.ndarray:
    """``P(a_j op C <= t)`` mixed with ``WEIGHTS``, from SciPy's CDF and survival function."""
    p, q = _affine(op, c_side, ATOMS)
    out = np.zeros_like(t)
    for pj, qj, wj in zip(p, q, WEIGHTS, strict=True):
        if qj > 0:
            out += wj * ref.cdf((t - pj) / qj)
        elif qj < 0:
            out += wj * ref.sf((t - pj) / qj)
        else:
            out += wj * (t >= pj)
    return out


@pytest.mark.parametrize("law", list(LAWS))
@pytest.mark.parametrize(("op", "c_side"), [("add", 0), ("sub", 0), ("sub", 1), ("mul", 0)])
def test_mixture_cdf_matches_scipy(op, c_side, law):
    mine, ref = LAWS[law]
    s = sd.pieces(op, c_side, ATOMS, WEIGHTS, mine)
    assert s is not None
    t = np.linspace(-8.0, 8.0, 801)
    np.testing.assert_allclose(s.cdf_at(t), _h_ref(op, c_side, ref, t), atol=1e-12)


@pytest.mark.parametrize("law", ["uniform", "uniform_neg"])
def test_quotient_cdf_matches_dense_sampling(law):
    mine, ref = LAWS[law]
    a = np.array([-2.0, -0.5, 0.75, 3.0])
    w = np.array([0.2, 0.3, 0.4, 0.1])
    s = sd.pieces("div", 1, a, w, mine)
    assert s is not None
    c = ref.ppf((np.arange(400_000) + 0.5) / 400_000)  # C by its midpoint quantiles
    t = np.linspace(-4.0, 4.0, 81)
    want = np.array([sum(wj * np.mean(aj / c <= tt) for aj, wj in zip(a, w, strict=True)) for tt in t])
    np.testing.assert_allclose(s.cdf_at(t), want, atol=2e-5)
    lo, hi = s.hull()
    vals = a[:, None] / c[None, [0, -1]]
    assert lo == pytest.approx(vals.min(), abs=1e-4) and hi == pytest.approx(vals.max(), abs=1e-4)


def test_quotient_needs_a_denominator_of_one_sign_with_bounded_support():
    for law in (od.Normal(0, 1), od.Uniform(-1, 1), od.LogNormal(0, 0.5)):
        assert sd.pieces("div", 1, ATOMS, WEIGHTS, law) is None
    assert sd.pieces("div", 0, ATOMS, WEIGHTS, od.Uniform(1, 2)) is None  # C / a: not a one-sided 1 / C
    assert sd.pieces("div", 1, ATOMS, WEIGHTS, od.Uniform(1, 2)) is not None


def _tails_ref(op: str, c_side: int, ref, t0: float, t1: float) -> float:
    """``E(t0 - Y)_+ + E(Y - t1)_+`` of the mixture by adaptive quadrature against SciPy's density."""
    p, q = _affine(op, c_side, ATOMS)
    lo, hi = ref.support()
    total = 0.0
    for pj, qj, wj in zip(p, q, WEIGHTS, strict=True):
        if qj == 0:
            total += wj * (max(t0 - pj, 0.0) + max(pj - t1, 0.0))
            continue

        def f(c, pj=pj, qj=qj):
            y = pj + qj * c
            return (max(t0 - y, 0.0) + max(y - t1, 0.0)) * ref.pdf(c)

        pts = [x for x in ((t0 - pj) / qj, (t1 - pj) / qj) if lo < x < hi]
        edges = sorted({lo, hi, *pts})
        total += wj * sum(si.quad(f, u, v, epsabs=1e-13, epsrel=1e-11, limit=200)[0] for u, v in zip(edges, edges[1:]))
    return total


@pytest.mark.parametrize("law", list(LAWS))
@pytest.mark.parametrize(("op", "c_side"), [("add", 0), ("sub", 0), ("sub", 1), ("mul", 0)])
@pytest.mark.parametrize(("t0", "t1"), [(-1.0, 1.5), (0.5, 0.75), (-3.0, -2.0)])
def test_tail_partial_moments_match_quadrature(op, c_side, law, t0, t1):
    mine, ref = LAWS[law]
    if law == "normal":
        ref = st.norm(0.5, 1.5)
        ref.support = lambda: (-40.0, 41.0)  # quad on a finite range (the density is below 1e-300 beyond)
    s = sd.pieces(op, c_side, ATOMS, WEIGHTS, mine)
    got = s.tails(t0, t1)
    want = _tails_ref(op, c_side, ref, t0, t1)
    assert got >= want - 1e-12
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_tails_are_zero_only_when_the_support_is_inside():
    law = od.Uniform(1.0, 3.0)
    s = sd.pieces("add", 0, np.array([0.0, 1.0]), np.array([0.5, 0.5]), law)
    assert s.hull() == (1.0, 4.0)
    assert s.tails(1.0, 4.0) == 0.0
    # 0.1 beyond the top: E(Y - 3.9)_+ = 0.5 * 0.1**2 / (2 * 2) (the upper piece U(2, 4) above 3.9)
    assert s.tails(1.0, 3.9) == pytest.approx(0.5 * 0.01 / 4, rel=1e-9)
    assert s.tails(1.1, 4.0) == pytest.approx(0.5 * 0.01 / 4, rel=1e-9)


# -- W1(S, G) against int |H - G| by quadrature ------------------------------------------------------------------
def _w1_ref(h, atoms: np.ndarray, weights: np.ndarray, lo: float, hi: float) -> float:
    cum = np.cumsum(weights)

    def g(t):
        j = np.searchsorted(atoms, t, side="right")
        return cum[j - 1] if j > 0 else 0.0

    edges = np.unique(np.concatenate([[lo, hi], atoms[(atoms > lo) & (atoms < hi)]]))
    return sum(
        si.quad(lambda t: abs(float(h(np.array([t]))[0]) - g(t)), u, v, epsabs=1e-12, epsrel=1e-10, limit=400)[0]
        for u, v in zip(edges[:-1], edges[1:])
    )


STEP_CASES = [
    # (id, op, c_side, law, scipy law, atoms of A'', G's atoms, quadrature range)
    ("wide S, narrow G", "add", 0, od.Uniform(-10, 10), st.uniform(-10, 20), [0.0, 0.2], [0.1, 0.3, 0.45], (-11, 11)),
    ("S inside G", "add", 0, od.Uniform(0, 1), st.uniform(0, 1), [0.0, 0.5], [-0.5, 0.3, 0.7, 1.2, 2.0], (-1, 3)),
    ("normal, one atom", "sub", 1, od.Normal(0, 1), st.norm(0, 1), [0.5, 1.0], [0.8], (-14, 16)),
    ("product", "mul", 0, od.Uniform(1, 3), st.uniform(1, 2), [-1.0, 0.5, 2.0], [-2.0, -1.0, 0.7, 1.5, 4.0], (-4, 7)),
]


@pytest.mark.parametrize("case", STEP_CASES, ids=lambda c: c[0])
@pytest.mark.parametrize("use_tv", [True, False])
def test_w1_to_steps_is_sound_and_tight(case, use_tv):
    _, op, c_side, law, ref, a, g, (lo, hi) = case
    a, g = np.array(a), np.array(g)
    wa = np.full(a.size, 1.0 / a.size)
    wg = np.linspace(1.0, 2.0, g.size)
    wg /= wg.sum()
    s = sd.pieces(op, c_side, a, wa, law)
    p, q = _affine(op, c_side, a)

    def h(t):
        out = np.zeros_like(t)
        for pj, qj, wj in zip(p, q, wa, strict=True):
            out += wj * (ref.cdf((t - pj) / qj) if qj > 0 else ref.sf((t - pj) / qj))
        return out

    exact = _w1_ref(h, g, wg, lo, hi)
    tv = sd._density_tv(op, s, law) if use_tv else math.inf
    bound, slack = sd.w1_to_steps(s, g, wg, tv)
    assert math.isfinite(bound) and 0 <= slack <= 0.05 * exact
    assert exact - 1e-9 <= bound <= exact * 1.02 + 1e-9, (bound, exact)


# -- whole evaluations: the certificate is used, sound against closed-form laws and tight ------------------------
def _evaluate(fn, ins, n):
    tok = engine.SEMI_DISCRETE.set(True)
    try:
        # the semi-discrete certificate's own answer: the box-linear mixture (a lattice answer) would win here
        with warnings.catch_warnings(), switches.scope({"box_linear": False}):
            warnings.simplefilter("ignore")
            return od.evaluate(fn, *ins, atoms=n, quantizer="quantile")
    finally:
        engine.SEMI_DISCRETE.reset(tok)


def _ratio_cdf(t):  # X / Y with X ~ U(0, 1), Y ~ U(1, 2)
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mid = 2 - t / 2 - 1 / (2 * np.where(t > 0, t, 1.0))
    return np.where(t <= 0, 0.0, np.where(t <= 0.5, 1.5 * t, np.where(t >= 1, 1.0, mid)))


EVAL_CASES = [
    ("N-N", lambda x, y: x - y, [od.Normal(0, 1), od.Normal(2, 0.5)], od.Normal(-2, math.sqrt(1.25))),
    ("2(N+N)+1", lambda x, y: 2 * (x + y) + 1, [od.Normal(0, 1), od.Normal(1, 2)], od.Normal(3, 2 * math.sqrt(5))),
    ("LN*LN", lambda x, y: x * y, [od.LogNormal(0, 0.3), od.LogNormal(0, 0.4)], od.LogNormal(0, 0.5)),
    ("U/U", lambda x, y: x / y, [od.Uniform(0, 1), od.Uniform(1, 2)], None),
    # A = x + y has 18 x 18 > 256 atoms: regrouped, with the coupling cap on its unbounded tail boxes
    (
        "N+N+N",
        lambda x, y, z: x + y + z,
        [od.Normal(0, 1), od.Normal(1, 2), od.Normal(0, 0.5)],
        od.Normal(1, math.sqrt(5.25)),
    ),
]


@pytest.mark.parametrize("case", EVAL_CASES, ids=lambda c: c[0])
def test_certificate_is_used_sound_and_tight(case):
    _, fn, ins, law = case
    r = _evaluate(fn, ins, 18 if len(ins) == 3 else 12)
    assert r.info["bound_method"] == "semi-discrete"
    if law is None:
        true = w1_to_cdf(r.atoms, r.weights, _ratio_cdf, 0.0, 1.0, n_grid=200_001)
    else:
        true = w1_to_continuous(r.atoms, r.weights, law)
    assert math.isfinite(r.w1_bound) and true <= r.w1_bound * (1 + 1e-6)
    assert r.w1_bound <= 3.0 * true, (r.w1_bound, true)
    info = r.info["semi_discrete"]
    assert info["measured_w1"] <= r.w1_bound and info["second_order"] <= r.w1_bound
    assert info["second_order"] + info["measured_w1"] == pytest.approx(r.w1_bound, rel=1e-6)
    assert sum(r.bound_terms.values()) == pytest.approx(r.w1_bound, rel=1e-6)


# -- the graph rewrites, against Python arithmetic ---------------------------------------------------------------
def _rules():
    from opgraph.dcg.api import _rules

    return _rules()


def _reassociated(fn, names, score, mode):
    g = engine.prepare(trace(fn, *names))
    sub, out = engine.restrict(g, g.outputs[0])
    return sub, sd.reassociate(sub, out, score, mode)


@pytest.mark.parametrize(
    ("fn", "last"),
    [
        (lambda a, b, c, d: (a * 2.0) * b * c * d, "b"),  # a constant factor of exactly 2 inside the tree
        (lambda a, b, c, d: a * (b / 4.0) * c * d, "b"),  # the best input under a division by a constant
        (lambda a, b, c, d: (a * b) * c * (d * 0.5), "b"),
        (lambda a, b, c, d: (a * b * c) * d, "d"),  # the best input already an operand of the core
    ],
)
def test_product_reassociation_keeps_values_and_takes_the_best_input_last(fn, last):
    names = "abcd"
    score = {k: (0.5 if k == last else 2.0 + i) for i, k in enumerate(names)}
    sub, re = _reassociated(fn, names, score, "mul")
    assert re is not None
    g2, out2 = re
    core = sd.find_core(g2, out2)
    assert core is not None and core.op == "mul"
    node = g2.nodes[core.operands[1]]
    assert node.op == "input" and node.attrs["name"] == last
    rng = np.random.default_rng(1)
    vals = {k: rng.uniform(-2.0, 2.0, 40) for k in names}
    got = engine.run_points(g2, vals, _rules())
    np.testing.assert_allclose(got, fn(*(vals[k] for k in names)), rtol=1e-12)


def test_sum_reassociation():
    names = "abcd"
    g = trace(lambda a, b, c, d: (a + b) + c + d, *names)  # a chain (prepare would balance it)
    sub, out = engine.restrict(g, g.outputs[0])
    # d is already an operand of the core: nothing to do.
    assert sd.reassociate(sub, out, {"a": 3.0, "b": 2.0, "c": 4.0, "d": 1.0}, "add") is None
    # b is pulled out: the core becomes (a + c) + b, with the same values.
    re = sd.reassociate(sub, out, {"a": 3.0, "b": 1.0, "c": 4.0, "d": 5.0}, "add")
    assert re is not None
    g2, out2 = re
    core = sd.find_core(g2, out2)
    assert g2.nodes[core.operands[1]].attrs["name"] == "b"
    vals = {k: np.linspace(-1, 1, 7) * (i + 1) for i, k in enumerate(names)}
    np.testing.assert_allclose(engine.run_points(g2, vals, _rules()), sum(vals[k] for k in names), rtol=1e-13)
    # An input used twice is never a candidate (it is not independent of the rest): a wins over b.
    g3 = trace(lambda a, b, c, d: (a + b) + c + d * b, *names)
    sub3, out3 = engine.restrict(g3, g3.outputs[0])
    re3 = sd.reassociate(sub3, out3, {"a": 3.0, "b": 1.0, "c": 4.0, "d": 5.0}, "add")
    assert re3 is not None
    core3 = sd.find_core(*re3)
    assert re3[0].nodes[core3.operands[1]].attrs["name"] == "a"


def test_find_core_scale_and_variable_side():
    g = trace(lambda x, y: 3.0 - (x + y) / 4.0 * -2.0, "x", "y")
    sub, out = engine.restrict(g, g.outputs[0])
    core = sd.find_core(sub, out)
    assert core is not None and core.op == "add" and core.alpha == pytest.approx(0.5) and core.steps >= 3
    for fn in (lambda x, y: 2.0 / (x + y), lambda x, y: (x + y) / 0.0):
        g = trace(fn, "x", "y")
        sub, out = engine.restrict(g, g.outputs[0])
        assert sd.find_core(sub, out) is None


def test_coupling_total_of_a_regrouped_sum_is_the_inputs_quantization_errors(monkeypatch):
    """``x + y + z`` of Normals at 18 quantile atoms regroups ``x + y`` (and ``x + z``): the bound on
    ``E|A - A'|`` under the grid coupling it takes is at most ``W1(X, X') + W1(Y, Y')`` (the cell coupling of a
    quantile quantization is the monotone one, so each input's part is its W1 error, here by ``w1_to_continuous``
    of the law), at least ``W1(A, A')`` of the exact sum law, and finite although below 1."""
    seen: list[tuple[float, list[str]]] = []
    real = sd._coupling_total

    def spy(ev, v):
        out = real(ev, v)
        seen.append((out, [str(ev.axes[a].label).split()[1] for a in v.axes]))
        return out

    monkeypatch.setattr(sd, "_coupling_total", spy)
    ins = {"x": od.Normal(0, 1), "y": od.Normal(1, 2), "z": od.Normal(0, 0.5)}
    r = _evaluate(lambda x, y, z: x + y + z, list(ins.values()), 18)
    assert r.info["bound_method"] == "semi-discrete" and seen
    w1 = {}
    q = {}
    for name, law in ins.items():
        qr = _evaluate(lambda x: x, [law], 18)
        q[name] = (qr.atoms, qr.weights)
        w1[name] = w1_to_continuous(qr.atoms, qr.weights, law)
    for total, names in seen:
        assert len(names) == 2
        upper = sum(w1[n] for n in names)
        (a0, w0), (a1, w1_) = q[names[0]], q[names[1]]
        grid = (a0[:, None] + a1[None, :]).reshape(-1)
        gw = (w0[:, None] * w1_[None, :]).reshape(-1)
        l0, l1 = ins[names[0]], ins[names[1]]
        exact = od.Normal(l0.loc + l1.loc, math.hypot(l0.scale, l1.scale))
        lower = w1_to_continuous(grid, gw, exact)
        assert 0 < upper < 1  # the case the coupling total must keep finite
        assert lower * (1 - 1e-9) <= total <= upper * (1 + 1e-9), (names, lower, total, upper)
