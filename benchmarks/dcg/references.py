"""Exact or deterministic high-precision reference CDFs for the opgraph.dcg benchmark suite (no Monte Carlo)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.special as sc
import scipy.stats as st

from opgraph import dcg as od


@dataclass
class Case:
    """One benchmark problem."""

    id: str
    title: str
    fn: Callable[..., Any]
    inputs: Callable[[], list[Any]]
    sampler: Callable[[np.random.Generator, int], np.ndarray] | None
    ppf_inputs: list[Callable[[np.ndarray], np.ndarray]]
    cdf: Callable[[np.ndarray], np.ndarray] | None
    support: tuple[float, float]
    ref_note: str
    atoms: list[int]
    exact_law: Any = None  # a distribution of opgraph.dcg / scipy frozen law, or a Discrete
    openturns: Callable[[], Any] | None = None
    uncertainties: Callable[[], Any] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    dependence: bool = False


def irwin_hall_cdf(n: int) -> Callable[[np.ndarray], np.ndarray]:
    """CDF of the sum of n U(0,1) (exact formula, evaluated on the lower half with symmetry)."""

    def lower(t: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t)
        for k in range(n + 1):
            out += (-1) ** k * sc.comb(n, k) * np.clip(t - k, 0, None) ** n
        return out / math.factorial(n)

    def cdf(t: Any) -> np.ndarray:
        t = np.clip(np.asarray(t, float), 0, n)
        return np.where(t <= n / 2, lower(t), 1 - lower(n - t))

    return cdf


def uu_cdf(t: Any) -> np.ndarray:
    """CDF of U1*U2 with independent U(0,1)."""
    u = np.clip(np.asarray(t, float), 1e-300, 1.0)
    return np.where(u >= 1, 1.0, u - u * np.log(u))


def ratio_cdf(t: Any) -> np.ndarray:
    """CDF of U(0,1) / U(1,2)."""
    t = np.clip(np.asarray(t, float), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        ys = 1.0 / np.maximum(t, 1e-300)
    hi = t * (ys**2 - 1) / 2 + 2 - ys
    return np.where(t <= 0.5, 1.5 * t, np.where(t >= 1, 1.0, hi))


def sin_normal_cdf(t: Any) -> np.ndarray:
    """CDF of sin(Z), Z ~ N(0,1), by exact branch sums of Phi."""
    t = np.clip(np.asarray(t, float), -1, 1)
    a = np.arcsin(t)
    out = np.zeros_like(t)
    for k in range(-6, 7):
        out += sc.ndtr(2 * math.pi + a + 2 * math.pi * k) - sc.ndtr(math.pi - a + 2 * math.pi * k)
    return np.clip(out, 0, 1)


def p1_cdf() -> Callable[[np.ndarray], np.ndarray]:
    """CDF of X*Y + sin(Z), X~N(1,0.1), Y~U(0,2), Z~N(0,1): deterministic nested Gauss-Legendre quadrature.

    Given Y = y, X*y ~ N(y, 0.1 y), so F(s) = E_Z[h(s - sin Z)] with h(c) = 1/2 int_0^2 Phi((c - y) / (0.1 y)) dy.
    h is tabulated on a fine grid (2000-node Gauss-Legendre in y), then the z-integral uses 2001 Gauss-Legendre
    nodes on [-9, 9] (the integrand is smooth).
    """
    yn, yw = sc.roots_legendre(2000)
    y = yn + 1.0
    yw = yw * 0.5  # d y / 2 over [0, 2] with density 1/2
    cgrid = np.linspace(-1.6, 4.2, 40_001)
    h = np.empty(cgrid.size)
    for i in range(0, cgrid.size, 500):
        c = cgrid[i : i + 500, None]
        h[i : i + 500] = sc.ndtr((c - y[None, :]) / (0.1 * y[None, :])) @ yw
    zn, zw = sc.roots_legendre(2001)
    z, zw = 9 * zn, 9 * zw * st.norm.pdf(9 * zn)
    sz = np.sin(z)

    def cdf(s: Any) -> np.ndarray:
        s = np.asarray(s, float)
        flat = s.reshape(-1)
        out = np.empty(flat.size)
        for i in range(0, flat.size, 2000):
            c = flat[i : i + 2000, None] - sz[None, :]
            out[i : i + 2000] = np.interp(c, cgrid, h, left=0.0, right=1.0) @ zw
        return np.clip(out, 0, 1).reshape(s.shape)

    return cdf


def pendulum_cdf() -> Callable[[np.ndarray], np.ndarray]:
    """CDF of T = 2 pi sqrt(L/g), L~U(0.9,1.1), g~N(9.81,0.05): E_g[F_L(g t^2 / 4 pi^2)] (trapezoid, 40001 g)."""
    g = np.linspace(9.81 - 0.05 * 9, 9.81 + 0.05 * 9, 40_001)
    w = st.norm(9.81, 0.05).pdf(g)
    w = w / np.trapezoid(w, g)
    dg = np.gradient(g)

    def cdf(t: Any) -> np.ndarray:
        t = np.asarray(t, float).reshape(-1)
        out = np.empty(t.size)
        for i in range(0, t.size, 500):
            tt = t[i : i + 500, None]
            lval = g[None, :] * tt**2 / (4 * math.pi**2)
            fl = np.clip((lval - 0.9) / 0.2, 0, 1)
            out[i : i + 500] = (fl * w[None, :] * dg[None, :]).sum(1)
        return np.clip(out, 0, 1)

    return cdf


def single_source_reference(fn: Callable[..., Any], law: Any, atoms: int = 2**19) -> tuple[Any, float]:
    """Reference for a single-input graph: our own evaluation with 2**19 atoms and its certified bound."""
    r = od.evaluate(fn, law, atoms=atoms, quantizer="quantile")
    return r, r.w1_bound


def logistic(x: Any, steps: int = 6) -> Any:
    """The logistic map x <- 3.2 x (1 - x), ``steps`` times (shared input: 2**steps paths)."""
    for _ in range(steps):
        x = 3.2 * x * (1 - x)
    return x


def horner(x: Any) -> Any:
    """A degree-8 polynomial in one shared input (Horner form)."""
    coeffs = [0.3, -0.5, 0.2, 0.7, -0.1, 0.4, -0.6, 0.25, 0.1]
    acc = coeffs[0]
    for c in coeffs[1:]:
        acc = acc * x + c
    return acc


def tabulated(cdf: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, n: int = 200_001) -> Callable[..., Any]:
    """Tabulate an expensive smooth CDF once on [lo, hi] and interpolate linearly (error ~ h^2 * max density')."""
    grid = np.linspace(lo, hi, n)
    vals = cdf(grid)

    def f(t: Any) -> np.ndarray:
        return np.interp(np.asarray(t, float), grid, vals, left=0.0, right=1.0)

    return f


def sum_products_cdf(n: int) -> Callable[[np.ndarray], np.ndarray]:
    """CDF of sum_{i<=n} X_i Y_i (independent N(0,1)) = (A - B) / 2, A, B ~ chi2(n): F(t) = E_B[F_A(2t + B)]."""
    b = np.linspace(0, 80, 20_001)
    wb = st.chi2(n).pdf(b)
    wb = wb / np.trapezoid(wb, b)
    db = np.gradient(b)

    def cdf(t: Any) -> np.ndarray:
        t = np.asarray(t, float).reshape(-1)
        out = np.empty(t.size)
        for i in range(0, t.size, 200):
            tt = t[i : i + 200, None]
            out[i : i + 200] = (st.chi2(n).cdf(2 * tt + b[None, :]) * (wb * db)[None, :]).sum(1)
        return np.clip(out, 0, 1)

    return cdf
