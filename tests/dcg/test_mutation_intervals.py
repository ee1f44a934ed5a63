"""Interval rules on boxes that end exactly on a cut, a kink or a decision point (survivors of the mutation run).

References are independent of the module: the op evaluated by NumPy at points of the closed box (the ends
included), and the mean-value inequality ``|f(p) - f(q)| <= sum_i mag(d_i) |p_i - q_i|`` that a derivative
enclosure over the box must satisfy for any two points ``p``, ``q`` of the box (a jump inside the box forces an
infinite enclosure).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opgraph.dcg import intervals as iv


def enclose(op, *args, attrs=None):
    """``(value enclosure, [derivative enclosure per operand])`` of ``op`` over the box ``args``."""
    return iv.rule(op, [(np.asarray(lo, float), np.asarray(hi, float)) for lo, hi in args], attrs)


def _mag(d):
    return max(abs(float(d[0])), abs(float(d[1])))


def _mean_value_holds(f, box, derivs, p, q):
    """``|f(p) - f(q)| <= sum_i mag(d_i) |p_i - q_i|`` (0 * inf counts as 0: no move along that axis)."""
    for (lo, hi), x in zip(box, (*p, *q), strict=False):
        assert lo <= x <= hi
    lhs = abs(f(*p) - f(*q))
    rhs = 0.0
    for d, a, b in zip(derivs, p, q, strict=True):
        if a != b:
            rhs += _mag(d) * abs(a - b)
    return lhs <= rhs * (1 + 1e-9) + 1e-12


# arctan2(y, x) jumps by 2 pi across the negative x axis (y = 0, x < 0), and is discontinuous at the origin.
# Boxes whose closed edge lies on the cut: the pair straddles it (y = 0 gives pi, y = -eps gives about -pi).
@pytest.mark.parametrize(
    ("ybox", "xbox", "p", "q"),
    [
        ((-1.0, 0.0), (-1.0, -0.5), (0.0, -0.75), (-1e-9, -0.75)),  # top edge on the cut, x away from 0
        ((-2.0, 0.0), (-3.0, -1.0), (0.0, -2.0), (-1e-6, -2.0)),
        ((-1.0, 1.0), (0.0, 0.0), (1e-9, 0.0), (-1e-9, 0.0)),  # x = 0 exactly: +-pi/2 on either side of y = 0
        ((-0.5, 0.5), (0.0, 0.0), (0.25, 0.0), (-0.25, 0.0)),
    ],
)
def test_arctan2_derivative_enclosure_covers_a_jump_on_the_box_edge(ybox, xbox, p, q):
    v, derivs = enclose("arctan2", ybox, xbox)
    box = [ybox, xbox]
    assert _mean_value_holds(np.arctan2, box, derivs, p, q), (p, q, derivs)
    for pt in (p, q):
        assert float(v[0]) <= np.arctan2(*pt) <= float(v[1])


def test_arctan2_off_the_cut_is_finite():
    """The same boxes moved off the cut (y < 0 strictly, x < 0): smooth there, so the enclosures are finite."""
    v, derivs = enclose("arctan2", (-1.0, -0.1), (-1.0, -0.5))
    assert all(np.isfinite(_mag(d)) for d in derivs)
    ys, xs = np.meshgrid(np.linspace(-1, -0.1, 61), np.linspace(-1, -0.5, 61))
    vals = np.arctan2(ys, xs)
    assert float(v[0]) <= vals.min() and vals.max() <= float(v[1])
    dy, dx = xs / (xs**2 + ys**2), -ys / (xs**2 + ys**2)
    assert float(derivs[0][0]) <= dy.min() and dy.max() <= float(derivs[0][1])
    assert float(derivs[1][0]) <= dx.min() and dx.max() <= float(derivs[1][1])


# where(c, a, b): the condition box decides the branch only when it excludes 0 (a) or is exactly {0} (b).
@pytest.mark.parametrize(
    ("cbox", "abox", "bbox"),
    [
        ((-1.0, 0.0), (5.0, 6.0), (-3.0, -2.0)),  # ends at 0: both branches taken
        ((0.0, 1.0), (5.0, 6.0), (-3.0, -2.0)),  # starts at 0
        ((-1.0, 0.0), (-5.0, 6.0), (-3.0, -2.0)),  # a reaches below b
        ((-1.0, 1.0), (-5.0, 6.0), (-3.0, 7.0)),
        ((0.0, 0.0), (-5.0, 6.0), (-3.0, -2.0)),  # exactly 0: b only
        ((0.5, 1.0), (-5.0, 6.0), (-3.0, -2.0)),  # never 0: a only
    ],
)
def test_where_value_enclosure_covers_dense_samples_of_a_closed_box(cbox, abox, bbox):
    (lo, hi), derivs = enclose("where", cbox, abox, bbox)
    cs = np.unique(np.concatenate([np.linspace(*cbox, 41), [0.0] if cbox[0] <= 0 <= cbox[1] else []]))
    a_s, b_s = np.linspace(*abox, 23), np.linspace(*bbox, 23)
    vals = np.where(cs[:, None, None] != 0, a_s[None, :, None], b_s[None, None, :])
    assert float(lo) <= vals.min() and vals.max() <= float(hi)
    # tight: every end of the enclosure is reached by a sample (the ends of the boxes are sampled)
    assert float(lo) == pytest.approx(vals.min()) and float(hi) == pytest.approx(vals.max())
    # a decided condition (c never 0, or c == 0) has derivative 0 and the chosen branch derivative 1
    decided = cbox[0] > 0 or cbox[1] < 0 or cbox == (0.0, 0.0)
    assert np.isfinite(_mag(derivs[0])) == decided
    for d in derivs:
        assert float(d[0]) <= float(d[1])


def test_mod_derivative_enclosures_are_intervals_and_contain_the_slope():
    """``a mod b`` on a box where ``floor(a / b)`` is constant is ``a - k b``: slope 1 in ``a``."""
    for alo, ahi, b in ((1.0, 1.5, 2.0), (2.5, 3.5, 2.0), (-1.5, -0.5, 2.0), (0.2, 0.7, 0.75)):
        v, (da, db) = enclose("mod", (alo, ahi), (b, b))
        xs = np.linspace(alo, ahi, 101)
        vals = np.mod(xs, b)
        assert float(v[0]) <= vals.min() and vals.max() <= float(v[1])
        assert float(da[0]) <= 1.0 <= float(da[1]) and _mag(da) == pytest.approx(1.0)
        assert float(db[0]) <= float(db[1]), db


# ---- fourth pass (2026-12-06): survivors of the random sample --max-mutants 60 --seed 14 ----------------------


def test_arctan2_derivative_in_x_is_unbounded_when_y_is_pinned_to_the_cut():
    """``y = 0`` exactly and ``x`` from below 0 to above 0: ``arctan2(0, x)`` jumps from pi to 0 at ``x = 0``.

    The quotient ``-y / r**2`` alone is 0 there (``y`` is the point 0), so only the cut term makes the x partial
    infinite; the derivative in y is unbounded too (the box holds the origin).
    """
    ybox, xbox = (0.0, 0.0), (-1.0, 0.5)
    v, derivs = enclose("arctan2", ybox, xbox)
    p, q = (0.0, -0.5), (0.0, 0.25)
    assert np.arctan2(*p) == pytest.approx(math.pi) and np.arctan2(*q) == 0.0
    assert _mean_value_holds(np.arctan2, [ybox, xbox], derivs, p, q), derivs
    assert not np.isfinite(_mag(derivs[1]))
    for pt in (p, q):
        assert float(v[0]) <= np.arctan2(*pt) <= float(v[1])


@pytest.mark.parametrize(
    "box",
    [(-1.0, 1.0), (-0.5, 2.0), (-3.0, 0.25), (-2.0, 0.0), (0.0, 3.0), (-4.0, -0.5), (0.5, 4.0)],
)
def test_reciprocal_encloses_every_nonzero_value_of_boxes_at_or_around_zero(box):
    """``1 / x`` at every nonzero sample of the closed box (the ends included); one-sided when 0 is an end."""
    xs = np.linspace(*box, 2001)
    xs = xs[xs != 0]
    vals = 1.0 / xs
    (lo, hi), (d,) = enclose("reciprocal", box)
    assert float(lo) <= vals.min() and vals.max() <= float(hi), (box, lo, hi)
    dvals = -1.0 / xs**2  # d(1/x)/dx, written out here
    assert float(d[0]) <= dvals.min() and dvals.max() <= float(d[1])
    if box[0] == 0.0:  # [0, hi]: 1/x in [1/hi, inf)
        assert float(lo) == pytest.approx(1.0 / box[1]) and float(hi) == math.inf
    if box[1] == 0.0:  # [lo, 0]: 1/x in (-inf, 1/lo]
        assert float(lo) == -math.inf and float(hi) == pytest.approx(1.0 / box[0])


def test_mag_is_the_largest_absolute_value_of_the_box():
    rng = np.random.default_rng(14)
    lo = rng.uniform(-5, 5, 50)
    hi = lo + rng.uniform(0, 5, 50)
    xs = np.linspace(lo, hi, 101)
    np.testing.assert_allclose(iv.mag((lo, hi)), np.abs(xs).max(axis=0), rtol=1e-12)
    assert float(iv.mag((np.asarray(-3.0), np.asarray(2.0)))) == 3.0
    assert float(iv.mag((np.asarray(-1.0), np.asarray(7.0)))) == 7.0
    assert float(iv.mag((np.asarray(np.nan), np.asarray(1.0)))) == math.inf


@pytest.mark.parametrize("op", ["sin", "cos"])
@pytest.mark.parametrize("box", [(np.nan, 1.0), (0.5, np.nan), (-math.inf, 1.0), (2.0, math.inf)])
def test_sin_and_cos_of_a_box_with_an_unknown_or_infinite_end_are_the_unit_interval(op, box):
    """Whatever the argument, sin and cos lie in [-1, 1], and so do their derivatives (cos and -sin)."""
    (lo, hi), (d,) = enclose(op, box)
    assert float(lo) == pytest.approx(-1.0, abs=1e-12) and float(hi) == pytest.approx(1.0, abs=1e-12)
    assert float(d[0]) == pytest.approx(-1.0, abs=1e-12) and float(d[1]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("op", "box"),
    [
        ("arcsin", (-1.5, 0.5)),
        ("arccos", (-1.5, 0.5)),
        ("arcsin", (-0.5, 1.5)),
        ("arccos", (-0.5, 1.5)),
        ("arcsin", (-1.9, -1.2)),
    ],
)
def test_arcsin_arccos_of_a_box_leaving_their_domain_are_the_whole_line(op, box):
    """Part of the box is outside [-1, 1], where the op is NaN: no finite end can enclose it (as for log)."""
    f = getattr(np, op)
    with np.errstate(invalid="ignore"):
        assert np.isnan(f(np.linspace(*box, 101))).any()
    (lo, hi), _ = enclose(op, box)
    assert float(lo) == -math.inf and float(hi) == math.inf, (op, box, lo, hi)
