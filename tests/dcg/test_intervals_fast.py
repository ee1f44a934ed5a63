"""The fast paths of the interval kernels give the same bits as the plain formulas they replace.

``imul`` takes two corner products when both operands have one strict sign, ``widen``/``_nan0``/``mag`` detect NaN
with one reduction and reuse their temporaries, and the engine sums the cellwise derivative terms in place. Each is
checked here against the textbook formula (four products, fmin/fmax, NaN -> 0; three-temporary widening) on
random intervals of every sign pattern, with zeros, signed zeros, infinities and NaN endpoints.
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.dcg import intervals as iv


def _ref_nan0(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), 0.0, x)


def _ref_imul(a: iv.Interval, b: iv.Interval) -> iv.Interval:
    with np.errstate(invalid="ignore", over="ignore"):
        p = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
        lo = np.fmin(np.fmin(p[0], p[1]), np.fmin(p[2], p[3]))
        hi = np.fmax(np.fmax(p[0], p[1]), np.fmax(p[2], p[3]))
    return _ref_nan0(lo), _ref_nan0(hi)


def _ref_widen(lo: np.ndarray, hi: np.ndarray) -> iv.Interval:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    bad = np.isnan(lo) | np.isnan(hi)
    with np.errstate(invalid="ignore"):
        lo2, hi2 = lo - np.abs(lo) * iv._REL, hi + np.abs(hi) * iv._REL
    return np.where(bad, -np.inf, lo2), np.where(bad, np.inf, hi2)


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    """Bitwise equality (signed zeros and NaN payloads included)."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    return x.shape == y.shape and bool(np.all(x.view(np.int64) == y.view(np.int64)))


def _interval(g: np.random.Generator, shape: tuple[int, ...], kind: str) -> iv.Interval:
    """A random interval array: strictly positive, strictly negative or mixed (straddling, zeros, inf, NaN)."""
    scale = 10.0 ** g.uniform(-300, 300, shape) if kind == "huge" else 10.0 ** g.uniform(-3, 3, shape)
    a, b = g.random(shape) * scale, g.random(shape) * scale
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if kind == "pos" or kind == "huge":
        return lo + 1e-300, hi + 1e-300
    if kind == "neg":
        return -hi - 1e-300, -lo - 1e-300
    lo, hi = lo - g.random(shape) * scale, hi.copy()
    flat_lo, flat_hi = lo.reshape(-1), hi.reshape(-1)
    n = flat_lo.size
    for vals, arr in (([0.0, -0.0, -np.inf], flat_lo), ([0.0, np.inf], flat_hi)):
        idx = g.choice(n, size=min(n, 3), replace=False)
        arr[idx] = g.choice(vals, size=idx.size)
    if kind == "nan":
        flat_hi[g.integers(n)] = np.nan
    return lo, hi


KINDS = ["pos", "neg", "mixed", "nan", "huge"]


@pytest.mark.parametrize("ka", KINDS)
@pytest.mark.parametrize("kb", KINDS)
def test_imul_matches_four_products(ka: str, kb: str) -> None:
    g = np.random.default_rng(hash((ka, kb)) % 2**32)
    for sa, sb in [((5, 1, 3), (1, 4, 3)), ((6,), (6,)), ((4, 3), (3,))]:
        a, b = _interval(g, sa, ka), _interval(g, sb, kb)
        lo, hi = iv.imul(a, b)
        rlo, rhi = _ref_imul(a, b)
        assert _same(lo, rlo) and _same(hi, rhi), (ka, kb, sa, sb)


@pytest.mark.parametrize("kind", KINDS)
def test_imul_point_operand(kind: str) -> None:
    g = np.random.default_rng(len(kind))
    x = _interval(g, (7,), kind)[0]
    b = _interval(g, (7,), "pos")
    for a in ((x, x), (-x, -x)):
        for u, w in ((a, b), (b, a)):
            lo, hi = iv.imul(u, w)
            rlo, rhi = _ref_imul(u, w)
            assert _same(lo, rlo) and _same(hi, rhi)
    p = iv.imul((x, x), (x, x))
    assert p[0] is p[1]  # two points stay a point (recognised by identity downstream)


@pytest.mark.parametrize("kind", KINDS)
def test_widen_and_mag_match_plain_formulas(kind: str) -> None:
    g = np.random.default_rng(7 + len(kind))
    for shape in [(), (9,), (3, 4)]:
        lo, hi = _interval(g, shape or (1,), kind)
        lo, hi = (lo.reshape(shape), hi.reshape(shape)) if shape == () else (lo, hi)
        with np.errstate(invalid="ignore"):
            wlo, whi = iv.widen(lo, hi)
        rlo, rhi = _ref_widen(lo, hi)
        assert _same(wlo, rlo) and _same(whi, rhi)
        m = iv.mag((lo, hi))
        rm = np.maximum(np.abs(lo), np.abs(hi))
        assert isinstance(m, np.ndarray)
        assert _same(m, np.where(np.isnan(rm), np.inf, rm))
    # Operands of different (broadcast) shapes
    lo, hi = _interval(g, (3, 1), kind)[0], _interval(g, (1, 4), kind)[1]
    rm = np.maximum(np.abs(lo), np.abs(hi))
    assert _same(iv.mag((lo, hi)), np.where(np.isnan(rm), np.inf, rm))


def test_nan0_and_sign() -> None:
    x = np.array([1.0, np.nan, -2.0])
    assert _same(iv._nan0(x), np.array([1.0, 0.0, -2.0]))
    y = np.array([1.0, -0.0])
    assert iv._nan0(y) is y
    assert iv._sign((np.array([1.0, 2.0]), np.array([3.0, 4.0]))) == 1
    assert iv._sign((np.array([-3.0, -2.0]), np.array([-1.0, -1e-300]))) == -1
    assert iv._sign((np.array([0.0, 2.0]), np.array([3.0, 4.0]))) == 0
    assert iv._sign((np.array([1.0, 2.0]), np.array([np.nan, 4.0]))) == 0
    assert iv._sign((np.array([-1.0, -2.0]), np.array([-0.0, -1.0]))) == 0
    assert iv._sign((np.array([]), np.array([]))) == 0
