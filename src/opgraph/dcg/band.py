"""Certified bands on the CDF of the exact output law (a p-box) from the cells of the joint grid.

Every cell ``c`` of the joint grid has an exact probability ``p_c`` (the product of the input cells' masses) and
an interval ``[lo_c, hi_c]`` that contains the output on that cell. The cells form a Dempster-Shafer structure,
so for every ``t``::

    F_low(t) = sum_c p_c 1{hi_c <= t}  <=  P(Y <= t)  <=  F_up(t) = sum_c p_c 1{lo_c <= t}

and ``int (F_up - F_low) dt = sum_c p_c (hi_c - lo_c)``. The band keeps the two step functions separately (the
sorted ``lo_c`` with their cumulative masses for ``F_up``, the sorted ``hi_c`` for ``F_low``). It is shrunk to
at most ``max_steps`` steps per side conservatively: the jumps of ``F_up`` move left (to the smallest ``lo`` of
a group of consecutive steps) and those of ``F_low`` right, so the smaller band still contains the larger one.
Cells whose enclosure is unbounded contribute as they must: ``lo_c = -inf`` puts mass into ``F_up`` everywhere,
``hi_c = +inf`` keeps ``F_low`` below ``1 - p_c``.

The masses are exact up to floating-point rounding; ``slack`` (added to ``F_up`` and subtracted from ``F_low``)
covers the rounding of their products and cumulative sums.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.dcg.errors import DistError

_EPS = float(np.finfo(float).eps)
_REL = 2.0**-49

#: Steps per side kept in a band (about 1 MB); more cells are shrunk conservatively.
MAX_STEPS = 1 << 15


def mean_value_enclosure(
    pt: np.ndarray, steps: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-value (centred) enclosure ``f(atoms) + sum_j g_j (X_j - a_j)`` of a function on every cell.

    Walking from the atoms to the true point one coordinate at a time, step ``j`` changes ``X_j`` from its atom
    ``a_j`` to a value in ``[lo_j, hi_j]`` with the partial derivative in ``[d_lo_j, d_hi_j]`` on the part of the
    cell that step visits. Unlike the natural interval enclosure it sees cancellations between shared inputs
    (``x - x`` is exactly 0, ``x + x`` is ``[2 lo, 2 hi]``).

    Args:
        pt: The function at the atoms (any shape broadcastable with the steps).
        steps: Per coordinate ``(d_lo, d_hi, lo, atom, hi)``, broadcastable to the cell grid.

    Returns:
        ``(lo, hi)`` per cell, widened outwards for rounding; NaN becomes ``-inf`` / ``inf``.
    """
    lo = np.asarray(pt, dtype=float)
    hi = lo
    scale = np.abs(lo)
    for d_lo, d_hi, c_lo, a, c_hi in steps:
        # The true offset X - a lies in [o_lo, o_hi] (rounded outwards), which contains 0; so the product with
        # [d_lo, d_hi] is [min(d_lo o_hi, d_hi o_lo), max(d_hi o_hi, d_lo o_lo)]. NaN there is 0 * inf: a zero
        # derivative or a zero offset moves nothing (fmin / fmax skip it; the 0 keeps the product's sign).
        with np.errstate(invalid="ignore", over="ignore"):
            o_lo = np.asarray(c_lo - a, dtype=float)
            o_hi = np.asarray(c_hi - a, dtype=float)
            o_lo = np.minimum(o_lo - np.abs(o_lo) * _REL, 0.0)
            o_hi = np.maximum(o_hi + np.abs(o_hi) * _REL, 0.0)
            t_lo = np.fmin(np.fmin(d_lo * o_hi, d_hi * o_lo), 0.0)
            t_hi = np.fmax(np.fmax(d_hi * o_hi, d_lo * o_lo), 0.0)
            lo = lo + t_lo
            hi = hi + t_hi
            scale = scale + np.maximum(-t_lo, t_hi)
    with np.errstate(invalid="ignore", over="ignore"):
        pad = 8 * _EPS * scale
        lo = lo - pad
        hi = hi + pad
    return np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi)


def _steps(x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct jump locations of ``sum m 1{x <= t}`` and the cumulative mass at each (NaN-free)."""
    order = np.argsort(x)
    xs = x[order]
    cum = np.cumsum(m[order])
    if xs.size == 0:
        return xs, cum
    last = np.ones(xs.size, dtype=bool)
    last[:-1] = xs[1:] != xs[:-1]
    return xs[last], cum[last]


def _shrink(x: np.ndarray, p: np.ndarray, max_steps: int, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_steps`` steps of a cumulative step function, conservatively.

    Consecutive steps are grouped by cumulative mass (about ``1 / max_steps`` per group); the group's whole mass
    jumps at its first location for the upper function (``side="up"``: the function can only grow) and at its
    last location for the lower one (``side="low"``: it can only shrink).
    """
    if x.size <= max_steps:
        return x, p
    levels = np.linspace(0.0, float(p[-1]), max_steps + 1)[1:]
    ends = np.minimum(np.searchsorted(p, levels, side="left"), x.size - 1)
    ends = ends[np.concatenate([[True], ends[1:] != ends[:-1]])]
    ends[-1] = x.size - 1
    if side == "low":
        return x[ends], p[ends]
    starts = np.concatenate([[0], ends[:-1] + 1])
    return x[starts], p[ends]


def _enc(a: np.ndarray) -> list[Any]:
    return [float(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in a.tolist()]


def _dec(a: Sequence[Any]) -> np.ndarray:
    return np.array([float(v) for v in a], dtype=float)


@dataclass(frozen=True, eq=False)
class GridCells:
    """The cells of an output's joint grid: exact masses (an outer product) and a value enclosure per cell.

    Kept by a result so that its band is built only when asked for (sorting the cells costs about as much as
    one compression of the grid). Memory: two floats per cell, as many as the result's atoms and weights.

    Attributes:
        weights: Cell masses of each axis of the grid (the mass of a cell is their product).
        lo: Lower end of each cell's enclosure, shape ``(len(w) for w in weights)`` (``-inf`` allowed).
        hi: Upper end of each cell's enclosure (``inf`` allowed).
        labels: What each axis is (an input's quantization or a compressed node).
    """

    weights: tuple[np.ndarray, ...]
    lo: np.ndarray
    hi: np.ndarray
    labels: tuple[str, ...] = ()

    @classmethod
    def point(cls, c: float) -> GridCells:
        """The single cell of the constant ``c``."""
        return cls((), np.asarray(float(c)), np.asarray(float(c)))

    @property
    def size(self) -> int:
        """Number of cells."""
        return int(np.prod([w.size for w in self.weights], dtype=np.int64))

    def mass(self) -> np.ndarray:
        """Mass of every cell (grid shape)."""
        m = np.ones(())
        for w in self.weights:
            m = m[..., None] * np.asarray(w, dtype=float)
        return m

    def band(self, max_steps: int = MAX_STEPS) -> CdfBand:
        """The certified CDF band of these cells (see :meth:`CdfBand.from_cells`)."""
        slack = 8 * _EPS * (self.size + sum(w.size for w in self.weights))
        return CdfBand.from_cells(self.mass(), self.lo, self.hi, max_steps=max_steps, slack=slack)


@dataclass(frozen=True, eq=False)
class CdfBand:
    """A certified band ``F_low(t) <= P(Y <= t) <= F_up(t)`` on the CDF of an exact law (a p-box).

    Attributes:
        up_x: Ascending jump locations of ``F_up`` (the cells' lower ends; may start with ``-inf``).
        up_p: ``F_up`` just at and after each location (cumulative mass, non-decreasing).
        low_x: Ascending jump locations of ``F_low`` (the cells' upper ends; ``+inf`` ends are left out).
        low_p: ``F_low`` at and after each location.
        slack: Rounding allowance in probability, added to ``F_up`` and subtracted from ``F_low``.
        cells: Number of grid cells the band was made from.
        shrunk: True when the band was shrunk to fewer steps (still valid, possibly wider).
        open_above: True when some cell of positive mass is unbounded above (``F_low`` never reaches 1).
    """

    up_x: np.ndarray
    up_p: np.ndarray
    low_x: np.ndarray
    low_p: np.ndarray
    slack: float = 0.0
    cells: int = 0
    shrunk: bool = False
    open_above: bool = False

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_cells(
        cls, mass: Any, lo: Any, hi: Any, *, max_steps: int = MAX_STEPS, slack: float | None = None
    ) -> CdfBand:
        """The band of a Dempster-Shafer structure: cells with exact masses and value enclosures.

        Args:
            mass: Probability of each cell (>= 0, sum 1 up to rounding).
            lo: Lower end of each cell's enclosure (``-inf`` and NaN allowed: unbounded below).
            hi: Upper end of each cell's enclosure (``inf`` and NaN allowed: unbounded above).
            max_steps: Steps kept per side (more are shrunk conservatively).
            slack: Rounding allowance in probability; default ``8 eps`` per cell.

        Returns:
            The band.
        """
        m_b, lo_b, hi_b = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (mass, lo, hi)))
        m, lo_a, hi_a = (a.reshape(-1) for a in (m_b, lo_b, hi_b))
        if m.size == 0 or not np.all(np.isfinite(m)) or np.any(m < 0):
            raise DistError("CdfBand.from_cells(mass): masses must be finite, >= 0 and not empty")
        lo_a = np.where(np.isnan(lo_a), -np.inf, lo_a)
        hi_a = np.where(np.isnan(hi_a), np.inf, hi_a)
        keep = m > 0
        up_x, up_p = _steps(lo_a[keep], m[keep])
        fin = keep & (hi_a < np.inf)
        open_above = bool(np.any(keep & ~fin))
        low_x, low_p = _steps(hi_a[fin], m[fin])
        n = int(m.size)
        s = 8 * _EPS * n if slack is None else float(slack)
        step = max(1, int(max_steps))
        shrunk = up_x.size > step or low_x.size > step
        up_x, up_p = _shrink(up_x, up_p, step, "up")
        low_x, low_p = _shrink(low_x, low_p, step, "low")
        return cls(up_x, np.minimum(up_p, 1.0), low_x, np.minimum(low_p, 1.0), s, n, shrunk, open_above)

    @classmethod
    def point(cls, c: float) -> CdfBand:
        """The band of the constant ``c`` (a step at ``c``)."""
        x = np.array([float(c)])
        return cls(x, np.ones(1), x.copy(), np.ones(1), 0.0, 1, False)

    def shrink(self, max_steps: int) -> CdfBand:
        """A band with at most ``max_steps`` steps per side that contains this one (so it is still certified)."""
        step = max(1, int(max_steps))
        ux, up = _shrink(self.up_x, self.up_p, step, "up")
        lx, lp = _shrink(self.low_x, self.low_p, step, "low")
        shrunk = self.shrunk or ux.size < self.up_x.size or lx.size < self.low_x.size
        return CdfBand(ux, up, lx, lp, self.slack, self.cells, shrunk, self.open_above)

    # -- queries -----------------------------------------------------------------------------------------------
    def cdf_bounds(self, t: Any) -> tuple[Any, Any]:
        """``(lo, hi)`` with ``lo <= P(Y <= t) <= hi`` for the exact law, vectorised over ``t``."""
        ta = np.asarray(t, dtype=float)
        if np.any(np.isnan(ta)):
            raise DistError(f"cdf_bounds(t={t!r}): t must not be nan")
        iu = np.searchsorted(self.up_x, ta, side="right")
        il = np.searchsorted(self.low_x, ta, side="right")
        up = np.where(iu > 0, self.up_p[np.maximum(iu - 1, 0)], 0.0) if self.up_x.size else np.zeros(ta.shape)
        low = np.where(il > 0, self.low_p[np.maximum(il - 1, 0)], 0.0) if self.low_x.size else np.zeros(ta.shape)
        hi = np.clip(up + self.slack, 0.0, 1.0)
        lo = np.clip(low - self.slack, 0.0, 1.0)
        if ta.ndim == 0:
            return float(lo), float(hi)
        return lo, hi

    def quantile_bounds(self, q: Any) -> tuple[Any, Any]:
        """``(lo, hi)`` that contains every ``q``-quantile of the exact law, vectorised over ``q``.

        Every ``t`` with ``P(Y < t) <= q <= P(Y <= t)`` lies in ``[min{t: F_up(t) >= q}, inf{t: F_low(t) > q}]``.
        The ends may be infinite where unbounded cells hold more than ``q`` (or ``1 - q``) of the mass.
        """
        qa = np.asarray(q, dtype=float)
        if np.any(~((qa > 0) & (qa < 1))):
            raise DistError(f"quantile_bounds(q={q!r}): q must lie strictly between 0 and 1")
        iu = np.searchsorted(self.up_p + self.slack, qa, side="left")
        lo = np.where(iu < self.up_x.size, self.up_x[np.minimum(iu, self.up_x.size - 1)], np.inf)
        if self.low_x.size:
            il = np.searchsorted(self.low_p - self.slack, qa, side="right")
            hi = np.where(il < self.low_x.size, self.low_x[np.minimum(il, self.low_x.size - 1)], np.inf)
        else:
            hi = np.full(qa.shape, np.inf)
        if qa.ndim == 0:
            return float(lo), float(hi)
        return lo, hi

    def width(self, t: Any) -> Any:
        """Vertical width ``F_up(t) - F_low(t)`` (probability), vectorised."""
        lo, hi = self.cdf_bounds(t)
        return np.subtract(hi, lo) if np.ndim(lo) else hi - lo

    def quantile_width(self, q: Any) -> Any:
        """Horizontal width of the band at level ``q`` (the length of :meth:`quantile_bounds`), vectorised."""
        lo, hi = self.quantile_bounds(q)
        with np.errstate(invalid="ignore"):
            return np.subtract(hi, lo) if np.ndim(lo) else hi - lo

    def area(self) -> float:
        """``int (F_up - F_low) dt`` without the slack (``inf`` when a cell is unbounded).

        Equals ``sum_c p_c (hi_c - lo_c)`` for an unshrunk band.
        """
        if self.up_x.size == 0 or self.low_x.size == 0 or self.open_above or not math.isfinite(float(self.up_x[0])):
            return math.inf
        du = np.diff(self.up_p, prepend=0.0)
        dl = np.diff(self.low_p, prepend=0.0)
        return max(float(dl @ self.low_x - du @ self.up_x), 0.0)

    @property
    def support(self) -> tuple[float, float]:
        """An interval that contains the exact law's support (where the band leaves 0 and reaches 1)."""
        lo = float(self.up_x[0]) if self.up_x.size else -math.inf
        hi = float(self.low_x[-1]) if self.low_x.size and not self.open_above else math.inf
        return lo, hi

    # -- looks and saving ------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        q = [0.05, 0.5, 0.95]
        lo, hi = self.quantile_bounds(q)
        parts = ", ".join(f"q{int(100 * v):02d} in [{a:.4g}, {b:.4g}]" for v, a, b in zip(q, lo, hi, strict=True))
        return f"CdfBand({parts}, {self.cells} cells{', shrunk' if self.shrunk else ''})"

    def plot(self, ax: Any = None, *, label: str = "certified CDF band", color: str = "C1", **kw: Any) -> Any:
        """Shade the band on a matplotlib axis (a new figure when ``ax`` is None); returns the axis."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 3.2))
        if ax.has_data():
            xlo, xhi = ax.get_xlim()
        else:  # from the lower end of the 0.1 % quantile to the upper end of the 99.9 % one
            q_lo, q_hi = self.quantile_bounds([1e-3, 1 - 1e-3])
            xlo, xhi = q_lo[0], q_hi[1]
        xlo = float(xlo) if math.isfinite(float(xlo)) else float(self.low_x[0]) if self.low_x.size else -1.0
        xhi = float(xhi) if math.isfinite(float(xhi)) else float(self.up_x[-1])
        if not xhi > xlo:
            xlo, xhi = xlo - 0.5, xhi + 0.5
        pts = np.concatenate([self.up_x, self.low_x, np.linspace(xlo, xhi, 400)])
        t = np.unique(pts[(pts >= xlo) & (pts <= xhi)])
        lo, hi = self.cdf_bounds(t)
        ax.fill_between(t, lo, hi, step="post", color=color, alpha=0.35, lw=0, label=label, **kw)
        ax.step(t, hi, where="post", color=color, lw=0.8)
        ax.step(t, lo, where="post", color=color, lw=0.8)
        return ax

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON form (infinite locations as the strings ``"inf"`` / ``"-inf"``)."""
        return {
            "up_x": _enc(self.up_x),
            "up_p": self.up_p.tolist(),
            "low_x": _enc(self.low_x),
            "low_p": self.low_p.tolist(),
            "slack": self.slack,
            "cells": self.cells,
            "shrunk": self.shrunk,
            "open_above": self.open_above,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CdfBand:
        """Inverse of :meth:`to_dict`."""
        return cls(
            _dec(d["up_x"]),
            np.asarray(d["up_p"], dtype=float),
            _dec(d["low_x"]),
            np.asarray(d["low_p"], dtype=float),
            float(d["slack"]),
            int(d["cells"]),
            bool(d["shrunk"]),
            bool(d.get("open_above", False)),
        )

    def save(self, path: str | Path) -> Path:
        """Write the band as JSON, atomically."""
        from opgraph._base.fileio import atomic_open

        p = Path(path)
        with atomic_open(p, "w") as f:
            json.dump(self.to_dict(), f, allow_nan=False)
        return p

    @classmethod
    def load(cls, path: str | Path) -> CdfBand:
        """Read a band written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
