"""The strict-sign shortcuts of the interval kernels (``intervals.SIGN_PATHS``) give the general forms' values.

``imul`` of a mixed-sign interval by one of finite strict sign (6 passes instead of 10), ``irecip``, ``iabs``,
``ipow_const`` and ``log`` of one-signed intervals (no masks): each is checked against the same call with
``SIGN_PATHS = False`` (the general form) on grid-sized random intervals of every sign pattern, with zeros, signed
zeros, infinities, NaN endpoints and swapped ends (lo > hi), in broadcast shapes. Values must agree exactly (a
zero's sign may differ in ``imul``'s one-sided form, nowhere else); shapes and types must agree; and the shortcut
must actually be taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from opgraph.dcg import intervals as iv

from .test_intervals_fast import _interval, _same

KINDS = ["pos", "neg", "mixed", "nan", "huge", "swapped", "inf"]
#: Grid-sized broadcast shapes (the shortcuts of imul run from intervals._FAST_MIN elements)
SHAPES = [((40, 1, 3), (1, 50, 3)), ((40, 50, 3), (1, 1, 3)), ((1, 1, 3), (40, 50, 3)), ((6000,), (6000,))]


@contextmanager
def _general() -> Iterator[None]:
    old = iv.SIGN_PATHS
    iv.SIGN_PATHS = False
    try:
        yield
    finally:
        iv.SIGN_PATHS = old


def _make(g: np.random.Generator, shape: tuple[int, ...], kind: str) -> iv.Interval:
    if kind == "swapped":
        lo, hi = _interval(g, shape, "mixed")
        return hi, lo
    if kind == "inf":
        lo, hi = _interval(g, shape, "pos")
        hi = hi.copy()
        hi.reshape(-1)[:: max(1, hi.size // 3)] = np.inf
        return lo, hi
    return _interval(g, shape, kind)


def _equal(x: Any, y: Any, zero_sign: bool) -> bool:
    """Same type, shape and values (NaN where NaN; bitwise unless ``zero_sign`` lets a zero's sign differ)."""
    if type(x) is not type(y) or np.shape(x) != np.shape(y):
        return False
    if not zero_sign:
        return _same(x, y)
    x, y = np.asarray(x), np.asarray(y)
    return bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


def _check(f: Callable[[], tuple[Any, Any]], zero_sign: bool = False) -> None:
    with np.errstate(all="ignore"):
        fast = f()
        with _general():
            plain = f()
    assert _equal(fast[0], plain[0], zero_sign) and _equal(fast[1], plain[1], zero_sign)


@pytest.mark.parametrize("ka", KINDS)
@pytest.mark.parametrize("kb", KINDS)
def test_imul_one_sided_matches_general(ka: str, kb: str) -> None:
    g = np.random.default_rng(abs(hash((ka, kb, "sign"))) % 2**32)
    for sa, sb in SHAPES:
        a, b = _make(g, sa, ka), _make(g, sb, kb)
        _check(lambda a=a, b=b: iv.imul(a, b), zero_sign=True)
        _check(lambda a=a, b=b: iv.imul(b, a), zero_sign=True)
        with iv.quiet():
            _check(lambda a=a, b=b: iv.imul(a, b), zero_sign=True)


def test_imul_one_sided_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    g = np.random.default_rng(3)
    calls: list[int] = []
    real = iv._one_sided
    monkeypatch.setattr(iv, "_one_sided", lambda x, c, s: calls.append(s) or real(x, c, s))
    big, small = _make(g, (60, 80), "mixed"), _make(g, (60, 1), "neg")
    with np.errstate(all="ignore"):
        iv.imul(big, small)
        iv.imul(small, big)
        assert calls == [-1, -1]
        iv.imul(big, _make(g, (60, 1), "inf"))  # an infinite end: the general form
        iv.imul(big, _make(g, (60, 80), "mixed"))  # no sign: the general form
    assert calls == [-1, -1]


@pytest.mark.parametrize("kind", KINDS)
def test_unary_shortcuts_match_general(kind: str) -> None:
    g = np.random.default_rng(len(kind) + 11)
    for shape in [(7,), (50, 90), ()]:
        a = _make(g, shape or (1,), kind)
        a = (a[0].reshape(shape), a[1].reshape(shape)) if shape == () else a
        _check(lambda a=a: iv.irecip(a))
        _check(lambda a=a: iv.iabs(a))
        _check(lambda a=a: iv.isq(a))
        _check(lambda a=a: iv._ilog(a))
        for c in (0.5, -0.5, 1.7, -2.3, 2.0, 3.0, -1.0, -2.0):
            _check(lambda a=a, c=c: iv.ipow_const(a, c))
        # a point (lo is hi) and broadcast ends of different shapes keep the general forms' shapes
        _check(lambda a=a: iv.irecip((a[0], a[0])))
        _check(lambda a=a, s=shape: iv.irecip((a[0][..., :1] if s else a[0], a[1])))


def test_unary_shortcuts_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    g = np.random.default_rng(5)
    seen: list[str] = []
    real_pos = iv._positive
    monkeypatch.setattr(iv, "_positive", lambda lo, hi: seen.append("pos") or real_pos(lo, hi))
    pos = _make(g, (30, 30), "pos")
    with np.errstate(all="ignore"):
        for f in (iv.irecip, iv.iabs, iv._ilog, lambda a: iv.ipow_const(a, 0.5)):
            seen.clear()
            f(pos)
            assert seen == ["pos"]
        with _general():
            seen.clear()
            iv.irecip(pos)
            assert seen == []


@pytest.mark.parametrize("kind", [*KINDS, "tiny", "neg_inf"])
def test_widen_one_product_matches_general(kind: str) -> None:
    """Grid-sized one-signed ends are widened by one product: the same bits as ``x -+ |x| 2**-49``."""
    g = np.random.default_rng(len(kind) + 23)
    for shape in [(70, 80), (6000,)]:
        if kind == "tiny":  # |x| * 2**-49 inexact (subnormal) on some ends: the general form
            lo, hi = _make(g, shape, "pos")
            lo, hi = lo * 1e-295, hi * 1e-290
        elif kind == "neg_inf":
            lo, hi = _make(g, shape, "neg")
            lo = lo.copy()
            lo.reshape(-1)[::7] = -np.inf
        else:
            lo, hi = _make(g, shape, kind)
        with np.errstate(over="ignore"):  # the last pair overflows to inf on purpose
            pairs = ((lo, hi), (-hi, -lo), (lo, lo), (hi * 1e300, hi * 1e308))
        for a, b in pairs:
            _check(lambda a=a, b=b: iv.widen(a, b))


def test_widen_one_product_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    g = np.random.default_rng(9)
    seen: list[float] = []
    monkeypatch.setattr(iv, "_outward", lambda x, s: seen.append(s) or (x - s * np.abs(x) * iv._REL))
    lo, hi = _make(g, (70, 80), "pos")
    iv.widen(lo, hi)
    iv.widen(-hi, -lo)
    assert seen == []
    iv.widen(*_make(g, (70, 80), "mixed"))
    assert seen == [-1.0, 1.0]
