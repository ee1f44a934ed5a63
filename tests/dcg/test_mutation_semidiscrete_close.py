"""Mutation tests of opgraph.dcg.semidiscrete, seventh pass (issue 13): the affine certificate's Taylor remainder.

``certify_affine`` bounds, per group of ``(P, Q)`` boxes with atom ``(p_g, q_g)``, the second-order remainder of
``phi_f(p, q) = E f(p + q C)`` (``f`` 1-Lipschitz) by ``(K_pp E[dP^2] + 2 K_pq sqrt(E[dP^2] E[dQ^2]) + K_qq
E[dQ^2]) / (2 m)``, ``m`` the smallest ``|q|`` between ``Q``'s box enclosure and the atom. ``info`` lists that
term per group (``second_order_by_group``). On ``Y = 2 Z + C X`` with few boxes every box is its own group
(atom = the box's computed value, no regrouping moves), so each group's term can be checked:

* against its definition, from the cells alone: ``E[dP^2]`` and ``E[dQ^2]`` as the quantizer's documented
  bounds (the closed form ``E[(Z - a)^2; cell]`` on a Normal's half-line cells, on a Uniform's finite cells
  its exact ``E[(X - a)^2; cell]`` (:mod:`opgraph.dcg.cellm2`), both by quadrature), the ``K`` as total variations of densities on a dense grid,
  and ``m`` the lower end of ``X``'s cell;
* against what it bounds: the exact remainder ``sup_f |E[phi_f(P, Q); box] - w phi_f(p_g, q_g) - grad phi_f .
  E[(dP, dQ); box]|``, which is ``int |H(y)| dy`` for the signed CDF ``H = E[F(y; P, Q); box] - w F(y; p_g, q_g) -
  E[dP] dF/dp - E[dQ] dF/dq`` (``F(y; p, q) = Phi((y - p) / (q sigma))``), by quadrature over the box and a fine
  grid in ``y``. Where ``Q`` barely varies and ``P``'s spread is small against ``q sigma``, the bound is
  attained to about 1 % (``f = -|y - p_g|`` has ``phi_pp = -K_pp / q`` there), so a term a third smaller
  (the Taylor factor ``1/3`` for ``1/2``) falls below the exact remainder.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as st
from scipy.integrate import quad

from opgraph import dcg as od


def _y(z, x, c):
    return 2 * z + c * x


def _run(tau: float, xa: float, xb: float, atoms: dict[str, int]):
    laws = (od.Normal(0.0, tau), od.Uniform(xa, xb), od.Normal(0.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(_y, *laws, atoms=atoms)
    info = r.info["semi_discrete"]
    assert info is not None and info["form"] == "P + Q * C" and "input c" in info["smoothed"]
    # every box its own group, every piece good: each group's term is one box's Taylor remainder
    assert info["regrouped_atoms"] == info["boxes"] == atoms["z"] * atoms["x"] == info["second_order_pieces"]
    gb = {k: np.asarray(v, dtype=float) for k, v in info["second_order_by_group"].items()}
    assert gb["remainder"].shape == (info["boxes"],) and np.all(gb["remainder"] > 0)
    return r, info, gb


def _z_cells(tau: float):
    """Two atoms of N(0, tau) (the quantile quantizer): the half-lines, atoms at their medians."""
    return [(-math.inf, 0.0), (0.0, math.inf)], np.array([-1.0, 1.0]) * tau * st.norm.ppf(0.75)


def _tv_dense(f, lo: float = -12.0, hi: float = 12.0, n: int = 400_001) -> float:
    s = np.linspace(lo, hi, n)
    return float(np.abs(np.diff(f(s))).sum())


def _ks():
    pdf = st.norm(0.0, 1.0).pdf
    return _tv_dense(pdf), _tv_dense(lambda s: s * pdf(s)), _tv_dense(lambda s: s * s * pdf(s))


def test_each_groups_taylor_remainder_is_its_definition_with_m_the_lower_end_of_qs_cell():
    """``Q = X ~ U(0.5, 1.5)`` in 4 cells: ``m`` is the cell's lower end, 9-20 % below the atom (the midpoint)."""
    tau, xa, xb, nx = 0.05, 0.5, 1.5, 4
    _, _, gb = _run(tau, xa, xb, {"z": 2, "x": nx, "c": 8})
    k_pp, k_pq, k_qq = _ks()
    z_cells, z_atoms = _z_cells(tau)
    z_pdf = st.norm(0.0, tau).pdf
    x_edges = np.linspace(xa, xb, nx + 1)
    seen = set()
    for p_g, q_g, mass, got in zip(gb["p"], gb["q"], gb["mass"], gb["remainder"], strict=True):
        i = int(np.argmin(np.abs(2 * z_atoms - p_g)))
        j = int(np.searchsorted(x_edges, q_g)) - 1
        assert p_g == pytest.approx(2 * z_atoms[i], rel=1e-9)
        assert q_g == pytest.approx(0.5 * (x_edges[j] + x_edges[j + 1]), rel=1e-12)
        assert mass == pytest.approx(0.5 / nx, rel=1e-12)
        seen.add((i, j))
        lo, hi = z_cells[i]
        a = z_atoms[i]
        # P = 2 Z: E[(P - p_g)^2; box] = 4 E[(Z - a)^2; cell] P(X cell); the half-line's closed form
        e_dp2 = 4 * quad(lambda z, a=a: (z - a) ** 2 * z_pdf(z), lo, hi)[0] / nx
        # Q = X: the Uniform cell's exact E[(X - a)^2; cell] (the quantizer's, opgraph.dcg.cellm2), P(Z cell)
        xl, xr = x_edges[j], x_edges[j + 1]
        e_dq2 = quad(lambda x, q=q_g: (x - q) ** 2 / (xb - xa), xl, xr, points=[q_g])[0] * 0.5
        m = min(xl, q_g)  # the smallest |q| on every segment from the atom into the cell
        want = (k_pp * e_dp2 + 2 * k_pq * math.sqrt(e_dp2 * e_dq2) + k_qq * e_dq2) / (2 * m)
        assert got == pytest.approx(want, rel=1e-5), (p_g, q_g)
        assert xl / q_g <= 0.91  # the atom's |q| instead of m would lower the term by 9 % or more
    assert len(seen) == 2 * nx


def _exact_remainder(p_g, q_g, mass, z_cell, tau, x_cell, nz: int = 400, ny: int = 6001) -> float:
    """``int |H(y)| dy`` for one box (see the module docstring): quantile midpoints in Z, Gauss-Legendre in X."""
    lo, hi = (st.norm.cdf(v, 0.0, tau) for v in z_cell)
    zz = st.norm.ppf(lo + (np.arange(nz) + 0.5) / nz * (hi - lo), 0.0, tau)
    xn, xw = np.polynomial.legendre.leggauss(4)
    xx = x_cell[0] + 0.5 * (xn + 1) * (x_cell[1] - x_cell[0])
    p = np.repeat(2 * zz, xx.size)
    q = np.tile(xx, zz.size)
    w = np.tile(0.5 * xw, zz.size) * mass / nz
    d_p, d_q = float(np.sum(w * (p - p_g))), float(np.sum(w * (q - q_g)))
    y = np.linspace(p_g - 14 * q_g, p_g + 14 * q_g, ny)
    h = sc.ndtr((y[None, :] - p[:, None]) / q[:, None]).T @ w
    v = (y - p_g) / q_g
    dens = st.norm.pdf(v)
    h -= mass * sc.ndtr(v) - d_p * dens / q_g - d_q * dens * v / q_g  # dF/dp = -dens / q, dF/dq = -dens v / q
    return float(np.trapezoid(np.abs(h), y))


def test_each_groups_taylor_remainder_bounds_the_exact_remainder_and_is_nearly_attained():
    """``Z ~ N(0, 0.05)`` (2 cells), ``X ~ U(1, 1.001)`` (1 cell), ``C ~ N(0, 1)``: exact / term in [0.95, 1] (0.98)."""
    tau, xa, xb = 0.05, 1.0, 1.001
    r, info, gb = _run(tau, xa, xb, {"z": 2, "x": 1, "c": 8})
    z_cells, z_atoms = _z_cells(tau)
    for p_g, q_g, mass, term in zip(gb["p"], gb["q"], gb["mass"], gb["remainder"], strict=True):
        i = int(np.argmin(np.abs(2 * z_atoms - p_g)))
        exact = _exact_remainder(p_g, q_g, mass, z_cells[i], tau, (xa, xb))
        assert exact <= term * (1 + 1e-6), (exact, term)
        assert exact >= 0.95 * term, (exact, term)
    assert info["second_order"] >= float(np.sum(gb["remainder"]))  # plus the boxes' biases (median atoms)
    assert math.isfinite(r.w1_bound)
