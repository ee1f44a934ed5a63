"""Dedicated enclosures of subexpressions with a reused value (opgraph.dcg.enclose) and one-sided reciprocals."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import enclose, switches
from opgraph.dcg import intervals as iv
from opgraph.graph import trace

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "dcg"


def _g(a, b):
    """sqrt(a**2 + b) - a in extended precision, cancellation-free (reference values for the dense checks)."""
    a = np.asarray(a, dtype=np.longdouble)
    b = np.asarray(b, dtype=np.longdouble)
    s = np.sqrt(a * a + b)
    return np.where(a >= 0, b / (s + a), s - a)


def _random_boxes(rng, n):
    """Boxes [a] x [b] with a of either sign or mixed, spanning tiny to huge widths, and b > 0."""
    centre = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-2, 4, n)
    width = np.abs(centre) * 10.0 ** rng.uniform(-6, 0.5, n)
    al = centre - width * rng.uniform(0, 1, n)
    ah = al + width
    bl = 10.0 ** rng.uniform(-3, 3, n)
    bh = bl * (1 + 10.0 ** rng.uniform(-6, 0.5, n))
    return al, ah, bl, bh


def test_sqrt_diff_point_encloses_the_exact_value():
    rng = np.random.default_rng(1)
    a = rng.choice([-1.0, 1.0], 20000) * 10.0 ** rng.uniform(-3, 5, 20000)
    b = 10.0 ** rng.uniform(-4, 4, 20000)
    lo, hi = enclose.sqrt_diff_point(a, b)
    g = _g(a, b)
    assert np.all(lo <= g) and np.all(g <= hi)
    assert np.all(lo > 0)
    # Tight: a few ulps (the naive float sqrt(a*a + b) - a loses every digit at a = 1e5, b = 1e-4).
    assert np.all((hi - lo) <= 1e-13 * np.abs(hi))


def test_sqrt_diff_encloses_the_range_and_the_gradient_on_random_boxes():
    rng = np.random.default_rng(2)
    al, ah, bl, bh = _random_boxes(rng, 300)
    one = (np.ones(()), np.ones(()))
    # a and b are two independent coordinates 0 and 1: da/dx0 = 1, db/dx1 = 1.
    ok, (vlo, vhi), der = enclose.sqrt_diff((al, ah), (bl, bh), {0: one}, {1: one}, [0, 1])
    assert np.all(ok)
    t = np.linspace(0, 1, 41)
    for i in range(al.size):
        a = al[i] + (ah[i] - al[i]) * t[:, None]
        b = bl[i] + (bh[i] - bl[i]) * t[None, :]
        g = _g(a, b)
        s = np.sqrt(np.asarray(a, np.longdouble) ** 2 + b)
        assert vlo[i] <= g.min() and g.max() <= vhi[i], i
        da, db = -g / s, 0.5 / s
        assert der[0][0][i] <= da.min() and da.max() <= der[0][1][i], i
        assert der[1][0][i] <= db.min() and db.max() <= der[1][1][i], i
    # Monotone in both arguments: the value enclosure is the range itself, up to rounding.
    exact_lo, exact_hi = _g(ah, bl), _g(al, bh)
    np.testing.assert_allclose(vlo, exact_lo.astype(float), rtol=1e-12)
    np.testing.assert_allclose(vhi, exact_hi.astype(float), rtol=1e-12)


def test_sqrt_diff_does_not_apply_where_b_may_be_zero():
    ok, _, _ = enclose.sqrt_diff((np.array([1.0]), np.array([2.0])), (np.array([0.0]), np.array([1.0])), {}, {}, [])
    assert not ok.any()


@pytest.mark.parametrize(
    "fn,expected",
    [
        (lambda a, b: np.sqrt(a**2 + b) - a, 1.0),
        (lambda a, b: np.sqrt(b + a * a) - a, 1.0),
        (lambda a, b: a - np.sqrt(a**2 + b), -1.0),
        (lambda a, b: np.sqrt(a**2 + b) - b, None),  # not the form: b is not the squared value
    ],
)
def test_find_forms_recognises_the_cancellation(fn, expected):
    g = trace(fn, "a", "b")
    forms = enclose.find_forms(g)
    if expected is None:
        assert forms == {}
    else:
        ((node, form),) = forms.items()
        assert g.nodes[node].op == "sub" and form.sign == expected
        assert g.nodes[form.a].attrs["name"] == "a" and g.nodes[form.b].attrs["name"] == "b"


def test_one_sided_reciprocal_encloses_1_over_x():
    rng = np.random.default_rng(3)
    h = 10.0 ** rng.uniform(-3, 3, 200)
    for lo, hi in ((np.zeros(200), h), (-h, np.zeros(200))):
        rlo, rhi = iv.irecip((lo, hi))
        for i in range(h.size):
            x = np.linspace(lo[i], hi[i], 101)
            x = x[x != 0]
            r = 1.0 / x
            assert rlo[i] <= r.min() and r.max() <= rhi[i]
            assert np.isfinite(rlo[i]) != np.isfinite(rhi[i])  # one-sided: one end finite
    # An interval with 0 strictly inside is still the whole line.
    rlo, rhi = iv.irecip((np.array([-1.0]), np.array([1.0])))
    assert rlo[0] == -np.inf and rhi[0] == np.inf


def test_a_reciprocal_of_a_square_near_zero_stays_finite_downstream():
    # 1 / (1 + 1/x**2) = x**2 / (1 + x**2) is smooth on [-1, 1], but 1/x**2 is unbounded near 0: the one-sided
    # reciprocal keeps the value enclosure finite, so the (oscillation) bound is finite and sound.
    x = od.Uniform(-1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", od.UnboundedWarning)
        r = od.evaluate(lambda x: 1.0 / (1.0 + 1.0 / (x * x)), x, atoms=16)
        fine = od.evaluate(lambda x: x * x / (1.0 + x * x), x, atoms=4096)
    assert np.isfinite(r.w1_bound) and fine.w1_bound < 0.05 * r.w1_bound
    assert r.w1(fine) - fine.w1_bound <= r.w1_bound


def _evaluate(fn, inputs, atoms, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *inputs, atoms=atoms, **kw)


def test_cancellation_bounds_shrink_as_atoms_double():
    fn = lambda a, b: 1.0 / (np.sqrt(a**2 + b) - a)  # noqa: E731
    inputs = [od.Uniform(1, 3), od.Uniform(0.2, 1)]
    bounds = [_evaluate(fn, inputs, n).w1_bound for n in (4, 8, 16, 32, 64)]
    assert np.all(np.isfinite(bounds))
    assert all(b2 < b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)), bounds
    fine = _evaluate(fn, inputs, 1024)
    r = _evaluate(fn, inputs, 8)
    assert fine.w1_bound < 0.05 * r.w1_bound
    assert r.w1(fine) - fine.w1_bound <= r.w1_bound


def test_short_euler_oscillator_bounds_shrink_as_atoms_double():
    def osc(w, z, x0):
        x, v = x0, 0.0 * x0
        h = 0.25
        for _ in range(8):
            v = v - h * (2 * z * w * v + w * w * x)
            x = x + h * v
        return x

    inputs = [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Uniform(0.9, 1.1)]
    bounds = [_evaluate(osc, inputs, n).w1_bound for n in (4, 8, 16, 32)]
    assert np.all(np.isfinite(bounds))
    assert all(b2 < b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)), bounds


@pytest.fixture(scope="module")
def uq():
    pytest.importorskip("uqtestfuns")
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("uq_bench_enclose", BENCH / "uq.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["uq_bench_enclose"] = mod
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop("uq_bench_enclose", None)
        sys.path.remove(str(BENCH))


def test_piston_gets_a_finite_sound_bound_that_shrinks_with_atoms(uq):
    case = next(c for c in uq.make_cases() if c.id == "Piston")
    ref = uq.load_reference(case)  # cached 4 x 2**22 scrambled Sobol points
    bounds = []
    for n in (2, 4):
        r = _evaluate(case.fn, case.dcg_inputs(), n)
        assert r.certified and np.isfinite(r.w1_bound)
        assert r.w1_bound + ref.err >= ref.w1(r.atoms, r.weights)
        bounds.append(r.w1_bound)
    assert bounds[1] < bounds[0]


def test_compressed_oscillator_bounds_shrink_as_atoms_double():
    # x0 * (exp(-z w t) cos(w sqrt(1 - z^2) t)): at 128 and 256 atoms the (w, z) factor's grid exceeds what the
    # plan keeps exact and is compressed to 1024 atoms (cells = hulls of the grouped boxes' enclosures); the bound
    # must still shrink.
    def osc(w, z, x0):
        return x0 * (np.exp(-z * w * 10.0) * np.cos(w * np.sqrt(1 - z * z) * 10.0))

    inputs = [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Normal(1.0, 0.1)]
    # the point-mass answers: with the box-linear mixture on, 128 atoms are not compressed and the mixture's lattice
    # is coarser there than at 64 (its work cap), so its bound does not shrink from 64 to 128 (noted in docs/dcg.md)
    with switches.scope({"box_linear": False}):
        results = [_evaluate(osc, inputs, n) for n in (32, 64, 128, 256)]
    assert [bool(r.info["compressions"]) for r in results] == [False, False, True, True]
    bounds = [r.w1_bound for r in results]
    assert all(b2 < b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)), bounds
    # Sound against a finer evaluation (its point-mass answer: with the mixture on, this compressed 512-atom call
    # also evaluates its halved requests and timed out at 600 s under load in the boxlin-flip run).
    with switches.scope({"box_linear": False}):
        fine = _evaluate(osc, inputs, 512)
    assert fine.w1_bound < 0.1 * results[0].w1_bound
    assert results[0].w1(fine) - fine.w1_bound <= results[0].w1_bound


SUBDIVISION_CASES = [
    # (function of x, y; x on [0, 1], y on [0.5, 2]) with reused values, poles near the box and kinks.
    lambda x, y: 1.0 / (x * x - x + 0.3),
    lambda x, y: x * y / (x + y) - x,
    lambda x, y: np.sqrt(x * x + y) - x,
    lambda x, y: np.log(y * y - y + 0.3) * np.sin(3 * x),
    lambda x, y: np.exp(-x * y) / (y - x + 0.6),
]


@pytest.mark.parametrize("k", range(len(SUBDIVISION_CASES)))
def test_subdivided_enclosure_contains_dense_samples_on_random_boxes(k):
    fn = SUBDIVISION_CASES[k]
    g = trace(fn, "x", "y")
    leaves = {n.id: n.id for n in g.nodes if n.op == "input"}
    ix, iy = (n.id for n in g.nodes if n.op == "input")
    rng = np.random.default_rng(10 + k)
    m = 60
    xl = rng.uniform(0, 1, m)
    xh = np.minimum(1.0, xl + 10.0 ** rng.uniform(-3, -0.3, m))
    yl = rng.uniform(0.5, 2, m)
    yh = np.minimum(2.0, yl + 10.0 ** rng.uniform(-3, -0.2, m))
    out = g.outputs[0]
    (vlo, vhi), der = enclose.subdivided_enclosure(g, out, leaves, {ix: (xl, xh), iy: (yl, yh)}, levels=2)
    t = np.linspace(0, 1, 33)
    h = 1e-7
    with np.errstate(all="ignore"):
        for i in range(m):
            x = (xl[i] + (xh[i] - xl[i]) * t)[:, None]
            y = (yl[i] + (yh[i] - yl[i]) * t)[None, :]
            v = fn(x, y)
            assert vlo[i] <= v.min() and v.max() <= vhi[i], i
            # Central differences of the exact derivative (well inside the enclosure's slack where it is finite).
            for node, (dx, dy) in ((ix, (h, 0.0)), (iy, (0.0, h))):
                d = (fn(x + dx, y + dy) - fn(x - dx, y - dy)) / (2 * h)
                lo, hi = der[node][0][i], der[node][1][i]
                tol = 1e-5 * (1 + np.abs(d))
                assert np.all(d >= lo - tol) and np.all(d <= hi + tol), (i, node)


def test_subdivision_never_widens_and_shrinks_a_reused_value():
    g = trace(lambda x: x * x - x, "x")
    (i,) = (n.id for n in g.nodes if n.op == "input")
    cell = {i: (np.array([0.0]), np.array([1.0]))}
    coarse, _ = enclose.subdivided_enclosure(g, g.outputs[0], {i: i}, cell, levels=0)
    fine, _ = enclose.subdivided_enclosure(g, g.outputs[0], {i: i}, cell, levels=6)
    assert coarse[0][0] <= fine[0][0] and fine[1][0] <= coarse[1][0]
    assert fine[0][0] <= -0.25 and fine[1][0] >= 0.0  # the true range [-1/4, 0] is inside
    assert fine[1][0] - fine[0][0] < 0.3 < coarse[1][0] - coarse[0][0]  # naive [-1, 1]


def test_a_manufactured_pole_is_removed_by_subdivision_and_bounds_shrink_with_atoms():
    fn = lambda x: 1.0 / (x * x - x + 0.3)  # noqa: E731  (>= 0.05 > 0: bounded by 20)
    x = od.Uniform(0, 1)
    bounds = [_evaluate(fn, [x], n).w1_bound for n in (2, 3, 4, 6, 8, 16, 32)]
    assert np.all(np.isfinite(bounds))
    assert all(b2 < b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)), bounds
    fine = _evaluate(fn, [x], 4096)
    assert fine.w1_bound < 0.05 * bounds[0]
    r = _evaluate(fn, [x], 2)
    assert r.w1(fine) - fine.w1_bound <= r.w1_bound
