"""Mutation tests of opgraph.dcg.band, sixth pass (issue 13): survivors of the seed-15 sample.

References: the band written out cell by cell (``sum_c p_c 1{lo_c <= t}``) and the documented memory budget of a
band (``MAX_STEPS`` steps per side, about 1 MB).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg.band import CdfBand, GridCells


def test_a_default_band_keeps_about_one_megabyte():
    # "Steps per side kept in a band (about 1 MB)": 2^15 steps x 2 sides x (location, mass) x 8 bytes = 1 MiB
    n = 40_000
    x = np.arange(n, dtype=float)
    b = CdfBand.from_cells(np.full(n, 1.0 / n), x, x + 0.5)
    assert b.shrunk
    assert sum(a.nbytes for a in (b.up_x, b.up_p, b.low_x, b.low_p)) <= 1 << 20
    # a band of fewer steps than that is kept whole, and is the cellwise band
    m = 30_000
    y = np.arange(m, dtype=float)
    whole = CdfBand.from_cells(np.full(m, 1.0 / m), y, y + 0.5)
    assert not whole.shrunk and whole.up_x.size == whole.low_x.size == m
    t = np.array([99.25, 99.5, 100.0, 29_999.5])
    lo, hi = whole.cdf_bounds(t)
    np.testing.assert_allclose(hi, [100 / m, 100 / m, 101 / m, 1.0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(lo, [99 / m, 100 / m, 100 / m, 1.0], rtol=0, atol=1e-9)


def _exact_band(weights, lo, hi, t):
    """``(F_low, F_up)`` at ``t`` with the cells' masses multiplied and summed exactly (fractions), capped at 1."""
    masses = [Fraction(1)]
    for w in weights:
        masses = [a * Fraction(float(b)) for a in masses for b in np.asarray(w, dtype=float)]
    lo_f, hi_f = np.asarray(lo, dtype=float).reshape(-1), np.asarray(hi, dtype=float).reshape(-1)
    up = min(sum((m for m, c in zip(masses, lo_f, strict=True) if c <= t), Fraction(0)), Fraction(1))
    low = min(sum((m for m, c in zip(masses, hi_f, strict=True) if c <= t), Fraction(0)), Fraction(1))
    return low, up


@pytest.mark.parametrize(
    "weights",
    [
        (np.full(10, 0.1),),  # cumulative sums of 0.1 end at 1 - 1.1e-16, the exact sum is above 1
        (np.full(3, 1 / 3), np.full(7, 1 / 7)),
        (np.ones(1), np.ones(1)),  # a single cell of mass 1: the band must reach 1 at its value
    ],
)
def test_grid_band_contains_the_exactly_summed_band(weights):
    # The masses of a grid's cells are products of the axes' weights, summed in floating point: the band's slack
    # must cover that rounding, so F_low - slack <= exact <= F_up + slack with the exact (rational) sums.
    shape = tuple(w.size for w in weights)
    n = int(np.prod(shape))
    lo = np.arange(n, dtype=float).reshape(shape)
    g = GridCells(weights, lo, lo + 0.5)
    b = g.band()
    for t in np.concatenate([np.arange(n) - 0.25, np.arange(n) + 0.5, [n + 1.0]]):
        low, up = _exact_band(weights, lo, lo + 0.5, float(t))
        got_lo, got_hi = b.cdf_bounds(float(t))
        assert Fraction(got_hi) >= up and Fraction(got_lo) <= low, t
    assert b.cdf_bounds(n + 1.0) == (pytest.approx(1.0), 1.0)


def test_a_band_built_from_its_steps_is_not_shrunk_by_default():
    x = np.array([0.0, 1.0])
    p = np.array([0.5, 1.0])
    b = CdfBand(x, p, x + 1.0, p)
    assert b.shrunk is False and b.open_above is False and b.slack == 0.0 and b.cells == 0
    assert "shrunk" not in repr(b)
    assert b.support == (0.0, 2.0)


def test_a_band_of_exactly_max_steps_steps_is_not_shrunk():
    m = np.full(5, 0.2)
    lo = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    b = CdfBand.from_cells(m, lo, lo + 0.5, max_steps=5, slack=0.0)
    assert b.up_x.size == b.low_x.size == 5 and not b.shrunk
    # the cells' upper ends coincide in pairs: F_up has 5 steps, F_low 3; still nothing is shrunk
    b2 = CdfBand.from_cells(m, lo, np.array([1.0, 1.0, 3.0, 3.0, 4.5]), max_steps=5, slack=0.0)
    assert b2.up_x.size == 5 and b2.low_x.size == 3 and not b2.shrunk
    assert b2.cdf_bounds(1.0) == (pytest.approx(0.4), pytest.approx(0.4))
    # one step more than allowed is shrunk
    assert CdfBand.from_cells(m, lo, lo + 0.5, max_steps=4, slack=0.0).shrunk


def test_quantile_bounds_refuse_any_level_outside_zero_one():
    b = CdfBand.from_cells([0.5, 0.5], [0.0, 1.0], [1.0, 2.0], slack=0.0)
    assert b.quantile_bounds([0.25, 0.75]) == (pytest.approx([0.0, 1.0]), pytest.approx([1.0, 2.0]))
    for q in ([0.5, 1.0], [0.0, 0.5], [0.5, np.nan], [[0.2, 0.3], [0.4, -1.0]]):
        with pytest.raises(od.DistError):
            b.quantile_bounds(q)
