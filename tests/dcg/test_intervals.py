"""Interval rules checked against dense sampling of the op and of its derivative, written independently here.

For every op the dcg supports, on boxes inside its domain: every sampled value (and derivative) lies in the
enclosure, the value enclosure is not wider than the sampled range (up to the sampling gap), and the enclosures
are finite where the op is smooth and bounded on the box. Special boxes check exact ranges (interior extrema of
sin/cos, poles, jumps, kinks).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sc

from opgraph.dcg import intervals as iv


def enclose(op, *args, attrs=None):
    """``(value enclosure, [derivative enclosure per operand])`` of ``op`` over the box ``args``.

    The one line that knows the interval module's entry point (update it if the rule table moves).
    """
    return iv.rule(op, [(np.asarray(lo, float), np.asarray(hi, float)) for lo, hi in args], attrs)


def _sgn(x):
    return np.sign(x)


# op -> (f, f', sampling domain of the boxes); derivatives written out by hand, not taken from the module.
UNARY = {
    "identity": (lambda x: x, lambda x: np.ones_like(x), (-5, 5)),
    "copy": (lambda x: x, lambda x: np.ones_like(x), (-5, 5)),
    "contiguous": (lambda x: x, lambda x: np.ones_like(x), (-5, 5)),
    "convert": (lambda x: x, lambda x: np.ones_like(x), (-5, 5)),
    "neg": (lambda x: -x, lambda x: -np.ones_like(x), (-5, 5)),
    "abs": (np.abs, _sgn, (-5, 5)),
    "sin": (np.sin, np.cos, (-9, 9)),
    "cos": (np.cos, lambda x: -np.sin(x), (-9, 9)),
    "tan": (np.tan, lambda x: 1 / np.cos(x) ** 2, (-1.5, 1.5)),
    "exp": (np.exp, np.exp, (-4, 4)),
    "exp2": (np.exp2, lambda x: math.log(2) * 2.0**x, (-4, 4)),
    "expm1": (np.expm1, np.exp, (-4, 4)),
    "log": (np.log, lambda x: 1 / x, (0.05, 9)),
    "log2": (np.log2, lambda x: 1 / (x * math.log(2)), (0.05, 9)),
    "log10": (np.log10, lambda x: 1 / (x * math.log(10)), (0.05, 9)),
    "log1p": (np.log1p, lambda x: 1 / (1 + x), (-0.9, 9)),
    "sqrt": (np.sqrt, lambda x: 0.5 / np.sqrt(x), (0.05, 9)),
    "rsqrt": (lambda x: 1 / np.sqrt(x), lambda x: -0.5 * x**-1.5, (0.05, 9)),
    "cbrt": (np.cbrt, lambda x: np.abs(x) ** (-2 / 3) / 3, (0.05, 9)),
    "square": (np.square, lambda x: 2 * x, (-5, 5)),
    "reciprocal": (lambda x: 1 / x, lambda x: -1 / x**2, (0.1, 5)),
    "tanh": (np.tanh, lambda x: 1 / np.cosh(x) ** 2, (-4, 4)),
    "sinh": (np.sinh, np.cosh, (-4, 4)),
    "cosh": (np.cosh, np.sinh, (-4, 4)),
    "arctan": (np.arctan, lambda x: 1 / (1 + x * x), (-5, 5)),
    "arcsinh": (np.arcsinh, lambda x: 1 / np.sqrt(1 + x * x), (-5, 5)),
    "arcsin": (np.arcsin, lambda x: 1 / np.sqrt(1 - x * x), (-0.98, 0.98)),
    "arccos": (np.arccos, lambda x: -1 / np.sqrt(1 - x * x), (-0.98, 0.98)),
    "arctanh": (np.arctanh, lambda x: 1 / (1 - x * x), (-0.98, 0.98)),
    "erf": (sc.erf, lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x), (-3, 3)),
    "sigmoid": (sc.expit, lambda x: sc.expit(x) * (1 - sc.expit(x)), (-6, 6)),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float), (-5, 5)),
    "sign": (np.sign, lambda x: np.zeros_like(x), (-3, 3)),
    "floor": (np.floor, lambda x: np.zeros_like(x), (-3, 3)),
    "ceil": (np.ceil, lambda x: np.zeros_like(x), (-3, 3)),
    "rint": (np.rint, lambda x: np.zeros_like(x), (-3, 3)),
}
STEPS = {"sign", "floor", "ceil", "rint"}
# Ops whose value enclosure is exact (monotone or with the extrema handled): the enclosure equals the range.
N_SAMPLES = 4001


def _boxes(lo, hi, seed, n=12):
    """Random sub-boxes of [lo, hi] (some tiny, some wide) plus the whole domain."""
    rng = np.random.default_rng(seed)
    out = [(lo, hi)]
    for k in range(n):
        a, b = np.sort(rng.uniform(lo, hi, 2))
        if k % 3 == 0:
            b = min(hi, a + 1e-3 * (hi - lo))
        out.append((float(a), float(b)))
    return out


def _check_contains(enc, samples, what):
    lo, hi = (float(np.asarray(e)) for e in enc)
    s = samples[np.isfinite(samples)]
    tol = 1e-12 * (1 + np.abs(s))
    assert np.all(s >= lo - tol), (what, "below", lo, float(s.min()))
    assert np.all(s <= hi + tol), (what, "above", hi, float(s.max()))


def _check_tight(enc, samples, what, rel=2e-3):
    lo, hi = (float(np.asarray(e)) for e in enc)
    smin, smax = float(samples.min()), float(samples.max())
    slack = rel * (smax - smin) + 1e-9 * (1 + max(abs(smin), abs(smax)))
    assert lo >= smin - slack, (what, "lower end too low", lo, smin)
    assert hi <= smax + slack, (what, "upper end too high", hi, smax)


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_value_and_derivative_enclose_dense_samples(op):
    f, df, (dlo, dhi) = UNARY[op]
    for a, b in _boxes(dlo, dhi, seed=len(op)):
        x = np.linspace(a, b, N_SAMPLES)
        v, (d,) = enclose(op, (a, b))
        fx = f(x)
        _check_contains(v, fx, (op, a, b, "value"))
        _check_tight(v, fx, (op, a, b, "value"))
        assert np.isfinite(v[0]) and np.isfinite(v[1]), (op, a, b, v)
        if op in STEPS and float(fx.min()) != float(fx.max()):
            # A jump inside the box: the derivative enclosure must be the whole line.
            assert float(d[0]) == -math.inf and float(d[1]) == math.inf, (op, a, b, d)
            continue
        dx = df(x)
        _check_contains(d, dx, (op, a, b, "derivative"))
        assert np.isfinite(d[0]) and np.isfinite(d[1]), (op, a, b, d)
        # The derivative enclosure may overestimate (interval dependency) but not by orders of magnitude.
        width, swidth = float(d[1] - d[0]), float(dx.max() - dx.min())
        mag = float(np.max(np.abs(dx)))
        assert width <= 8 * swidth + 1e-6 * (1 + mag), (op, a, b, d, float(dx.min()), float(dx.max()))


@pytest.mark.parametrize(
    ("op", "box", "expected"),
    [
        ("sin", (0.1, 3.0), (math.sin(0.1), 1.0)),  # interior maximum at pi/2
        ("sin", (-3.0, -0.1), (-1.0, math.sin(-0.1))),  # interior minimum at -pi/2
        ("sin", (2.0, 8.5), (-1.0, 1.0)),
        ("sin", (7.0, 8.0), (math.sin(7.0), 1.0)),  # maximum at 5 pi / 2
        ("sin", (0.0, 7.0), (-1.0, 1.0)),  # wider than a period
        ("sin", (1.7, 3.0), (math.sin(3.0), math.sin(1.7))),  # monotone piece: endpoints
        ("sin", (1.2, 2.0), (math.sin(2.0), 1.0)),  # a narrow box around the maximum at pi/2
        ("sin", (1.1, 1.5), (math.sin(1.1), math.sin(1.5))),  # just left of it: no interior maximum
        ("sin", (-2.0, -1.2), (-1.0, math.sin(-2.0))),
        ("cos", (-0.3, 0.4), (math.cos(0.4), 1.0)),
        ("log", (0.0, 2.0), (-math.inf, math.log(2.0))),  # log 0 = -inf is the only unbounded end
        ("arcsin", (-1.0, 0.0), (-math.pi / 2, 0.0)),  # the domain's closed ends are inside
        ("arccos", (0.0, 1.0), (0.0, math.pi / 2)),
        ("cos", (-1.0, 2.0), (math.cos(2.0), 1.0)),  # interior maximum at 0
        ("cos", (2.0, 4.0), (-1.0, math.cos(2.0))),  # interior minimum at pi
        ("abs", (-2.0, 1.0), (0.0, 2.0)),
        ("abs", (-3.0, -1.0), (1.0, 3.0)),
        ("square", (-2.0, 1.0), (0.0, 4.0)),
        ("cosh", (-1.0, 2.0), (1.0, math.cosh(2.0))),
        ("relu", (-2.0, 3.0), (0.0, 3.0)),
        ("arccos", (-0.5, 0.5), (math.acos(0.5), math.acos(-0.5))),
        ("floor", (0.2, 0.9), (0.0, 0.0)),
        ("sign", (-1.0, 2.0), (-1.0, 1.0)),
    ],
)
def test_exact_ranges(op, box, expected):
    (lo, hi), _ = enclose(op, box)
    assert float(lo) == pytest.approx(expected[0], abs=1e-12)
    assert float(hi) == pytest.approx(expected[1], abs=1e-12)
    assert float(lo) <= expected[0] and float(hi) >= expected[1]


@pytest.mark.parametrize(
    ("op", "box", "dexpected"),
    [
        ("abs", (-2.0, 1.0), (-1.0, 1.0)),  # Clarke gradient across the kink
        ("abs", (0.5, 1.0), (1.0, 1.0)),
        ("abs", (-1.0, -0.5), (-1.0, -1.0)),
        ("relu", (-2.0, 3.0), (0.0, 1.0)),
        ("relu", (-2.0, -1.0), (0.0, 0.0)),
        ("relu", (1.0, 2.0), (1.0, 1.0)),
        ("sin", (0.1, 3.0), (math.cos(3.0), math.cos(0.1))),
        ("cos", (2.0, 4.0), (-math.sin(2.0), -math.sin(4.0))),
        ("sign", (0.5, 1.0), (0.0, 0.0)),
        ("floor", (0.5, 1.5), (-math.inf, math.inf)),
    ],
)
def test_exact_derivative_ranges(op, box, dexpected):
    _, (d,) = enclose(op, box)
    assert float(d[0]) == pytest.approx(dexpected[0], abs=1e-12)
    assert float(d[1]) == pytest.approx(dexpected[1], abs=1e-12)


@pytest.mark.parametrize(
    ("op", "box"),
    [
        ("tan", (1.0, 2.0)),  # pole at pi/2
        ("tan", (-2.0, -1.0)),
        ("log", (-1.0, 2.0)),
        ("sqrt", (-1.0, 2.0)),
        ("reciprocal", (-1.0, 2.0)),
        ("arcsin", (0.5, 1.5)),
        ("sin", (-math.inf, 0.0)),
    ],
)
def test_enclosures_leave_the_domain_or_cross_a_pole_unbounded(op, box):
    (lo, hi), (d,) = enclose(op, box)
    if op == "sin":
        assert float(lo) == pytest.approx(-1.0, abs=1e-12) and float(hi) == pytest.approx(1.0, abs=1e-12)
        return
    assert not (math.isfinite(float(lo)) and math.isfinite(float(hi))), (op, lo, hi)
    # Partly outside the domain (or across a pole): the whole line, never an empty or one-sided interval.
    assert float(lo) == -math.inf and float(hi) == math.inf, (op, lo, hi)
    if op in ("tan", "reciprocal"):
        assert float(lo) == -math.inf and float(hi) == math.inf
        assert not math.isfinite(float(d[1]) - float(d[0]))


# op -> (f, (df/da, df/db), box domain of a, box domain of b)
BINARY = {
    "add": (np.add, (lambda a, b: 1 + 0 * a, lambda a, b: 1 + 0 * b), (-5, 5), (-5, 5)),
    "sub": (np.subtract, (lambda a, b: 1 + 0 * a, lambda a, b: -1 + 0 * b), (-5, 5), (-5, 5)),
    "mul": (np.multiply, (lambda a, b: b, lambda a, b: a), (-5, 5), (-5, 5)),
    "div": (np.divide, (lambda a, b: 1 / b, lambda a, b: -a / b**2), (-5, 5), (0.2, 5)),
    "pow": (np.power, (lambda a, b: b * a ** (b - 1), lambda a, b: a**b * np.log(a)), (0.1, 4), (-2, 2)),
    "maximum": (np.maximum, (lambda a, b: (a > b) * 1.0, lambda a, b: (b > a) * 1.0), (-5, 5), (-5, 5)),
    "minimum": (np.minimum, (lambda a, b: (a < b) * 1.0, lambda a, b: (b < a) * 1.0), (-5, 5), (-5, 5)),
    "hypot": (np.hypot, (lambda a, b: a / np.hypot(a, b), lambda a, b: b / np.hypot(a, b)), (-5, 5), (0.5, 5)),
    "arctan2": (
        np.arctan2,
        (lambda y, x: x / (x * x + y * y), lambda y, x: -y / (x * x + y * y)),
        (-5, 5),
        (0.2, 5),
    ),
}


@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_value_and_partials_enclose_dense_samples(op):
    f, (da, db), dom_a, dom_b = BINARY[op]
    for (a0, a1), (b0, b1) in zip(_boxes(*dom_a, seed=1), _boxes(*dom_b, seed=2), strict=True):
        xa, xb = np.meshgrid(np.linspace(a0, a1, 201), np.linspace(b0, b1, 201))
        v, (ea, eb) = enclose(op, (a0, a1), (b0, b1))
        fx = f(xa, xb)
        _check_contains(v, fx.ravel(), (op, (a0, a1), (b0, b1), "value"))
        _check_tight(v, fx.ravel(), (op, (a0, a1), (b0, b1), "value"), rel=2e-2)
        for enc, g, name in ((ea, da, "d/da"), (eb, db, "d/db")):
            gx = g(xa, xb).ravel()
            _check_contains(enc, gx, (op, (a0, a1), (b0, b1), name))
            if op not in ("maximum", "minimum"):
                assert np.isfinite(enc[0]) and np.isfinite(enc[1]), (op, name, enc)


@pytest.mark.parametrize("c", [2.0, 3.0, -1.0, -2.0, 0.5, 1.5, -0.5, 0.0])
def test_pow_with_a_constant_exponent(c):
    dom = (-3, 3) if float(c).is_integer() and c > 0 else (0.1, 4)
    for a0, a1 in _boxes(*dom, seed=int(10 * c) % 7):
        if c < 0 and a0 <= 0 <= a1:
            continue
        x = np.linspace(a0, a1, N_SAMPLES)
        v, (da, _) = enclose("pow", (a0, a1), (c, c))
        fx = x**c
        _check_contains(v, fx, ("pow", c, a0, a1))
        _check_tight(v, fx, ("pow", c, a0, a1))
        dx = c * x ** (c - 1) if c != 0 else 0 * x
        _check_contains(da, dx, ("pow d/da", c, a0, a1))
        assert np.isfinite(da[0]) and np.isfinite(da[1])


def test_mod_inside_one_period_and_across_a_wrap():
    v, (da, _) = enclose("mod", (1.2, 1.9), (1.0, 1.0))
    assert float(v[0]) == pytest.approx(0.2) and float(v[1]) == pytest.approx(0.9)
    assert (float(da[0]), float(da[1])) == (1.0, 1.0)
    v, (da, _) = enclose("mod", (-0.7, -0.2), (2.0, 2.0))
    assert float(v[0]) == pytest.approx(1.3) and float(v[1]) == pytest.approx(1.8)
    v, (da, _) = enclose("mod", (0.5, 1.5), (1.0, 1.0))  # wraps at 1: the whole period, a jump
    assert float(v[0]) <= 0.0 and float(v[1]) >= 1.0
    assert float(da[0]) == -math.inf and float(da[1]) == math.inf
    _, (_, db) = enclose("mod", (0.5, 1.5), (1.0, 1.0))
    assert float(db[0]) == -math.inf and float(db[1]) == math.inf


@pytest.mark.parametrize(
    ("op", "a", "b", "value"),
    [
        ("lt", (0, 1), (2, 3), (1, 1)),
        ("lt", (2, 3), (0, 1), (0, 0)),
        ("lt", (0, 2), (1, 3), (0, 1)),
        ("lt", (0, 1), (1, 2), (0, 1)),  # 1 < 1 is false at the touching corner
        ("ge", (0, 1), (1, 2), (0, 1)),  # 1 >= 1 is true at the touching corner
        ("le", (1, 2), (0, 1), (0, 1)),
        ("gt", (0, 1), (1, 2), (0, 0)),
        ("le", (0, 1), (1, 2), (1, 1)),
        ("le", (2, 3), (0, 1), (0, 0)),
        ("gt", (2, 3), (0, 1), (1, 1)),
        ("gt", (1, 2), (0, 1), (0, 1)),
        ("ge", (1, 2), (0, 1), (1, 1)),
        ("ge", (0, 1), (2, 3), (0, 0)),
        ("eq", (1, 1), (1, 1), (1, 1)),
        ("eq", (0, 1), (2, 3), (0, 0)),
        ("eq", (0, 2), (1, 3), (0, 1)),
        ("ne", (0, 1), (2, 3), (1, 1)),
        ("ne", (1, 1), (1, 1), (0, 0)),
        ("ne", (0, 2), (1, 3), (0, 1)),
    ],
)
def test_comparisons_decide_exactly_when_the_boxes_do(op, a, b, value):
    v, (da, db) = enclose(op, a, b)
    assert (float(v[0]), float(v[1])) == value
    fn = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "eq": np.equal}
    fn["ne"] = np.not_equal
    xa, xb = np.meshgrid(np.linspace(*a, 101), np.linspace(*b, 101))
    s = fn[op](xa, xb).astype(float)
    assert float(s.min()) == value[0] and float(s.max()) == value[1]
    decided = value[0] == value[1]
    for d in (da, db):
        assert (float(d[0]), float(d[1])) == ((0.0, 0.0) if decided else (-math.inf, math.inf))


@pytest.mark.parametrize(
    ("cond", "value", "dc", "da", "db"),
    [
        ((1, 1), (2, 3), (0, 0), (1, 1), (0, 0)),
        ((0, 0), (-1, 0), (0, 0), (0, 0), (1, 1)),
        ((-2, -1), (2, 3), (0, 0), (1, 1), (0, 0)),  # any nonzero condition is true
        ((0, 1), (-1, 3), (-math.inf, math.inf), (-math.inf, math.inf), (-math.inf, math.inf)),
    ],
)
def test_where(cond, value, dc, da, db):
    v, (ec, ea, eb) = enclose("where", cond, (2, 3), (-1, 0))
    assert (float(v[0]), float(v[1])) == value
    assert (float(ec[0]), float(ec[1])) == dc
    assert (float(ea[0]), float(ea[1])) == da
    assert (float(eb[0]), float(eb[1])) == db


@pytest.mark.parametrize(
    ("op", "a", "b", "da", "db"),
    [
        ("maximum", (2, 3), (0, 1), (1, 1), (0, 0)),
        ("maximum", (0, 1), (2, 3), (0, 0), (1, 1)),
        ("maximum", (0, 2), (1, 3), (0, 1), (0, 1)),
        ("minimum", (2, 3), (0, 1), (0, 0), (1, 1)),
        ("minimum", (0, 1), (2, 3), (1, 1), (0, 0)),
        ("minimum", (0, 2), (1, 3), (0, 1), (0, 1)),
    ],
)
def test_maximum_minimum_partials(op, a, b, da, db):
    _, (ea, eb) = enclose(op, a, b)
    assert (float(ea[0]), float(ea[1])) == da
    assert (float(eb[0]), float(eb[1])) == db


def test_arctan2_across_the_branch_cut_is_the_whole_circle():
    v, (dy, dx) = enclose("arctan2", (-1, 1), (-2, -1))
    assert float(v[0]) <= -math.pi and float(v[1]) >= math.pi
    assert float(dy[0]) == -math.inf and float(dy[1]) == math.inf
    v, _ = enclose("arctan2", (1, 2), (-2, -1))  # left half-plane, not across the cut: still sound
    s = np.arctan2(*np.meshgrid(np.linspace(1, 2, 101), np.linspace(-2, -1, 101)))
    _check_contains(v, s.ravel(), "arctan2 left")


def test_arrays_broadcast_per_element():
    lo = np.array([0.1, 2.0, -3.0])
    hi = np.array([3.0, 2.5, -0.1])
    (vlo, vhi), _ = enclose("sin", (lo, hi))
    for k in range(3):
        s = np.sin(np.linspace(lo[k], hi[k], N_SAMPLES))
        assert vlo[k] <= s.min() and vhi[k] >= s.max()
        assert vhi[k] - vlo[k] <= s.max() - s.min() + 1e-6


def test_widening_and_nan_endpoints():
    lo, hi = iv.widen(1.0, 2.0)
    assert lo < 1.0 and hi > 2.0 and 1.0 - lo < 1e-12 and hi - 2.0 < 1e-12
    lo, hi = iv.widen(np.nan, 2.0)
    assert lo == -math.inf and hi == math.inf


def test_interval_arithmetic_helpers_against_sampling():
    rng = np.random.default_rng(5)
    for _ in range(40):
        a = tuple(np.sort(rng.uniform(-4, 4, 2)))
        b = tuple(np.sort(rng.uniform(-4, 4, 2)))
        xa, xb = np.meshgrid(np.linspace(*a, 81), np.linspace(*b, 81))
        for fn, ref in (
            (iv.iadd, xa + xb),
            (iv.isub, xa - xb),
            (iv.imul, xa * xb),
        ):
            lo, hi = fn((np.asarray(a[0]), np.asarray(a[1])), (np.asarray(b[0]), np.asarray(b[1])))
            assert lo <= ref.min() + 1e-12 and hi >= ref.max() - 1e-12
            assert lo >= ref.min() - 1e-9 and hi <= ref.max() + 1e-9  # exact for these
        lo, hi = iv.isq((np.asarray(a[0]), np.asarray(a[1])))
        s = np.linspace(*a, 801) ** 2
        assert lo <= s.min() and hi >= s.max() and lo >= s.min() - 1e-4 and hi <= s.max() + 1e-12
    assert iv.irecip((np.asarray(-1.0), np.asarray(2.0)))[0] == -math.inf
    lo, hi = iv.irecip((np.asarray(2.0), np.asarray(4.0)))
    assert (float(lo), float(hi)) == (0.25, 0.5)
    lo, hi = iv.imul((np.asarray(0.0), np.asarray(0.0)), (np.asarray(-math.inf), np.asarray(math.inf)))
    assert (float(lo), float(hi)) == (0.0, 0.0)


def test_products_with_point_intervals_take_the_fast_paths_correctly():
    rng = np.random.default_rng(9)
    box = (np.array([1.0, -2.0, -3.0]), np.array([2.0, 1.0, -1.0]))
    for c in (0.5, 2.0, -0.5, -3.0, 0.0):
        pt = iv.point(c)  # a 0-d degenerate interval (lo is hi): scaled, not multiplied out
        for lo, hi in (iv.imul(box, pt), iv.imul(pt, box), iv.iscale(c, box)):
            ref = np.stack([box[0] * c, box[1] * c])
            np.testing.assert_allclose(lo, ref.min(0))
            np.testing.assert_allclose(hi, ref.max(0))
    arr = iv.point(np.array([0.5, -2.0, 3.0]))  # a degenerate interval per element
    other = iv.point(np.array([4.0, 0.25, -1.0]))
    lo, hi = iv.imul(arr, other)
    np.testing.assert_allclose(lo, [2.0, -0.5, -3.0])
    np.testing.assert_allclose(hi, [2.0, -0.5, -3.0])
    for lo, hi in (iv.imul(arr, box), iv.imul(box, arr)):
        ref = np.stack([box[0] * arr[0], box[1] * arr[0]])
        np.testing.assert_allclose(lo, ref.min(0))
        np.testing.assert_allclose(hi, ref.max(0))
    a = tuple(np.sort(rng.uniform(-3, 3, (2, 5)), axis=0))
    b = tuple(np.sort(rng.uniform(-3, 3, (2, 5)), axis=0))
    lo, hi = iv.hull(a, b)
    np.testing.assert_array_equal(lo, np.minimum(a[0], b[0]))
    np.testing.assert_array_equal(hi, np.maximum(a[1], b[1]))
