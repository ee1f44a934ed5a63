"""Closed-form partial moments of the input families: the tail mathematics of finite bounds on unbounded inputs.

A tail cell of an unbounded input is never enclosed by intervals; its contribution to a W1 bound is charged with a
partial moment of an envelope of the graph, ``E[g(X); X in T]`` with ``g(x) = x**a`` or ``exp(a * x)`` (see
``/work/shared/research/dcg-real.md`` §1). This module computes those moments for the laws of
:mod:`opgraph.dcg.distributions`:

========================  =======================================================================================
law                       closed form (Phi, phi: standard Normal CDF / density; Q, P: regularized incomplete Gamma)
========================  =======================================================================================
Normal(mu, s)             E[e^{aX}; X>t] = e^{a mu + a^2 s^2 / 2} Phi((mu + a s^2 - t) / s);
                          E[X^p; X>t] (integer p >= 0) from E[Z^k; Z>z] = z^{k-1} phi(z) + (k-1) E[Z^{k-2}; Z>z]
LogNormal(mu, s)          E[X^p; X>t] = e^{p mu + p^2 s^2 / 2} Phi((mu + p s^2 - ln t) / s), every real p
Gamma(k, theta)           E[X^p; X>t] = theta^p Gamma(k+p) / Gamma(k) Q(k+p, t / theta) for p > -k (upper
                          incomplete Gamma of order <= 0 by recurrence when t > 0);
                          E[e^{aX}; X>t] = (1 - a theta)^{-k} Q(k, t (1/theta - a)) for a < 1/theta
Exponential(rate)         Gamma(1, 1 / rate)
Uniform(lo, hi)           elementary integrals
========================  =======================================================================================

Lower tails (``X < t``) use the complementary functions. ``inf`` is returned where the moment does not exist
(for example ``E[X^-1; X < t]`` for a Normal, whose density is positive at 0, or ``E[e^{aX}; X > t]`` for a
LogNormal with ``a > 0``). Two cases have no closed form and are integrated numerically with
:func:`scipy.integrate.quad` (documented on :func:`partial_moment`): negative integer powers of a Normal on a
region away from 0, and ``E[e^{aX}]`` of a LogNormal on a region where it is finite.
"""

from __future__ import annotations

import math
from typing import Any

import scipy.special as sc

from opgraph.dcg.distributions import Distribution, Gamma, LogNormal, Normal, Uniform
from opgraph.dcg.errors import DistError

KINDS = ("power", "exp")
SIDES = ("upper", "lower")


def partial_moment(dist: Distribution, kind: str, a: float, t: float, side: str = "upper") -> float:
    """A partial moment ``E[g(X); X in T]`` of an input law, in closed form.

    Args:
        dist: A :class:`Normal`, :class:`LogNormal`, :class:`Gamma` (and so :class:`Exponential`) or
            :class:`Uniform` law of this package.
        kind: ``"power"``: ``g(x) = x**a``; ``"exp"``: ``g(x) = exp(a * x)``.
        a: The exponent (real). For ``"power"`` on a region that contains negative values of ``X`` it must be an
            integer (``x**a`` is not real otherwise); ``a = 0`` gives the probability of the region.
        t: The threshold (in units of ``X``); ``-inf`` / ``inf`` select the whole line.
        side: ``"upper"``: ``T = (t, inf)``; ``"lower"``: ``T = (-inf, t)``.

    Returns:
        The moment (a float, possibly negative for odd powers of negative values), or ``inf`` where it does not
        exist: the integral diverges (a negative power of a law with positive density at 0 on a region that
        reaches 0, ``E[X^p]`` with ``p <= -k`` for a Gamma(k) near 0, an exponential moment beyond the moment
        generating function's domain). Negative integer powers of a Normal on a region away from 0 and finite
        exponential moments of a LogNormal have no closed form: they are integrated by ``scipy.integrate.quad``
        (relative accuracy about 1e-10).

    Raises:
        DistError: an unknown ``kind``/``side``, a law other than the five above, a non-integer power of values
            that can be negative, or a non-finite ``a``.
    """
    if kind not in KINDS:
        raise DistError(f"partial_moment(kind={kind!r}): use one of {KINDS}")
    if side not in SIDES:
        raise DistError(f"partial_moment(side={side!r}): use 'upper' (X > t) or 'lower' (X < t)")
    a = float(a)
    t = float(t)
    if not math.isfinite(a):
        raise DistError(f"partial_moment(a={a!r}): the exponent must be a finite number")
    if math.isnan(t):
        raise DistError("partial_moment(t=nan): the threshold must be a number (or +-inf)")
    from opgraph.dcg.truncation import Truncated

    if isinstance(dist, Truncated):
        return _truncated(dist, kind, a, t, side)
    if isinstance(dist, LogNormal):
        return _lognormal(dist, kind, a, t, side)
    if isinstance(dist, Normal):
        return _normal(dist, kind, a, t, side)
    if isinstance(dist, Gamma):
        return _gamma(dist, kind, a, t, side)
    if isinstance(dist, Uniform):
        return _uniform(dist, kind, a, t, side)
    raise DistError(
        f"partial_moment(dist={dist!r}): closed forms exist for Normal, LogNormal, Gamma, Exponential and Uniform"
    )


def tail_mass(dist: Distribution, t: float, side: str = "upper") -> float:
    """``P(X > t)`` (``side="upper"``) or ``P(X < t)`` (``"lower"``), accurate far in the tail."""
    return partial_moment(dist, "power", 0.0, t, side)


def tail_quantile(dist: Distribution, eps: float, side: str = "upper") -> float:
    """The threshold ``t`` with ``P(X > t) = eps`` (``side="upper"``) or ``P(X < t) = eps`` (``"lower"``).

    Computed with the law's inverse survival / quantile function, so it stays accurate for ``eps`` down to about
    1e-300 (where the plain quantile ``ppf(1 - eps)`` would round ``1 - eps`` to 1).

    Raises:
        DistError: ``eps`` outside (0, 1) or an unknown ``side``.
    """
    if not (isinstance(eps, int | float) and 0 < eps < 1):
        raise DistError(f"tail_quantile(eps={eps!r}): eps must lie strictly between 0 and 1 (for example 1e-6)")
    if side not in SIDES:
        raise DistError(f"tail_quantile(side={side!r}): use 'upper' or 'lower'")
    frozen = dist.to_scipy()
    return float(frozen.isf(eps) if side == "upper" else frozen.ppf(eps))


# ---------------------------------------------------------------------------------------------------------------
def _is_int(a: float) -> bool:
    return float(a).is_integer()


def _normal_upper_std_moments(z: float, kmax: int) -> list[float]:
    """``E[Z^k; Z > z]`` for k = 0..kmax, Z standard Normal (recurrence; ``z = -inf`` gives full moments)."""
    if z == -math.inf:
        return [0.0 if k % 2 else float(sc.factorial2(k - 1, exact=True)) if k else 1.0 for k in range(kmax + 1)]
    if z == math.inf:
        return [0.0] * (kmax + 1)
    phi = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    m = [float(sc.ndtr(-z)), phi]
    for k in range(2, kmax + 1):
        m.append(z ** (k - 1) * phi + (k - 1) * m[k - 2])
    return m[: kmax + 1]


def _normal(d: Normal, kind: str, a: float, t: float, side: str) -> float:
    mu, s = d.loc, d.scale
    if kind == "exp":
        # E[e^{aX}; X > t] = e^{a mu + a^2 s^2 / 2} Phi((mu + a s^2 - t) / s)
        w = (mu + a * s * s - t) / s if math.isfinite(t) else (math.inf if t < 0 else -math.inf)
        return _exp_log_ndtr(a * mu + 0.5 * a * a * s * s, w if side == "upper" else -w)
    if not _is_int(a):
        raise DistError(
            f"partial_moment: x**{a:g} of a Normal is not real for x < 0; use an integer power (or kind='exp')"
        )
    p = int(a)
    if p < 0:
        reaches_zero = (side == "upper" and t < 0) or (side == "lower" and t > 0)
        if reaches_zero or t == 0:
            return math.inf  # positive density at 0: x^p, p <= -1, is not integrable there
        return _quad(lambda x: x**p * math.exp(-0.5 * ((x - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi)), t, side)
    # X = mu + s Z:  E[X^p; X>t] = sum_j C(p, j) mu^{p-j} s^j E[Z^j; Z>z]; lower side by Z -> -Z.
    z = (t - mu) / s if math.isfinite(t) else t
    if side == "upper":
        m = _normal_upper_std_moments(z, p)
        return float(sum(math.comb(p, j) * mu ** (p - j) * s**j * m[j] for j in range(p + 1)))
    m = _normal_upper_std_moments(-z, p)  # E[Z^j; Z<z] = (-1)^j E[Z^j; Z>-z]
    return float(sum(math.comb(p, j) * mu ** (p - j) * (-s) ** j * m[j] for j in range(p + 1)))


def _truncated(d: Any, kind: str, a: float, t: float, side: str) -> float:
    """``E[g(X); X in T]`` of ``X`` conditioned on ``[lo, hi]``: the base's moment on ``T`` cut to the range, over its mass.

    A non-integer power of a Normal base on a range within ``[0, inf)`` has no closed form: ``scipy.integrate.quad``.
    """
    lo, hi = d.lo, d.hi
    u, v = (max(t, lo), hi) if side == "upper" else (lo, min(t, hi))
    if not u < v:
        return 0.0
    base = d.base
    if kind == "power" and isinstance(base, Normal) and not _is_int(a):
        if u < 0:
            raise DistError(f"partial_moment: x**{a:g} is not real for x < 0 ({d!r}); use an integer power")
        if a < 0 and u == 0 and a <= -1:
            return math.inf
        mu, s = base.loc, base.scale
        from scipy.integrate import quad

        def f(x: float) -> float:
            return x**a * math.exp(-0.5 * ((x - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi))

        pts = [p for p in (mu,) if u < p < v] if math.isfinite(v) else None
        val, _ = quad(f, u, v, points=pts, epsabs=0.0, epsrel=1e-11, limit=400)
        return float(val) / d.mass
    # E[g; u < X < v] as a difference of one-sided moments (the side away from the mode is the small one)
    if side == "upper":
        m = partial_moment(base, kind, a, u, "upper")
        if math.isfinite(v):
            m -= partial_moment(base, kind, a, v, "upper")
    else:
        m = partial_moment(base, kind, a, v, "lower")
        if math.isfinite(u) and u > base.support()[0]:
            m -= partial_moment(base, kind, a, u, "lower")
    if math.isnan(m):
        # inf - inf: both one-sided moments of the base diverge on that side (e^{aX}, a > 0, of a LogNormal above;
        # x^p, p < 0, of a Normal below 0) while the bounded range [u, v] is away from the divergence: the other
        # side's two moments are finite.
        if side == "upper":
            m = partial_moment(base, kind, a, v, "lower") - partial_moment(base, kind, a, u, "lower")
        else:
            m = partial_moment(base, kind, a, u, "upper") - partial_moment(base, kind, a, v, "upper")
    return m / d.mass


def _lognormal(d: LogNormal, kind: str, a: float, t: float, side: str) -> float:
    mu, s = d.mu, d.sigma
    if kind == "power":
        # E[X^p; X > t] = e^{p mu + p^2 s^2 / 2} Phi((mu + p s^2 - ln t) / s), every real p
        if t <= 0:
            w = math.inf
        elif t == math.inf:
            w = -math.inf
        else:
            w = (mu + a * s * s - math.log(t)) / s
        return _exp_log_ndtr(a * mu + 0.5 * a * a * s * s, w if side == "upper" else -w)
    if a == 0:
        return tail_mass(d, t, side)
    hi_region = side == "upper" or t == math.inf
    if a > 0 and hi_region:
        if side == "upper" and t == math.inf:
            return 0.0
        return math.inf  # E[e^{aX}] = inf for a LogNormal and a > 0: the density decays slower than e^{-ax}
    if side == "lower" and t <= 0:
        return 0.0
    if side == "upper" and t == math.inf:
        return 0.0
    # finite, no closed form: integrate over y = ln x (X = e^Y, Y ~ N(mu, s)) on mu +- 40 s (the rest of the
    # Normal weight is below e^-800, and e^{a e^y} <= 1 there for a < 0; for a > 0 the region is y < ln t).
    yt = math.log(t) if t > 0 else -math.inf
    lo, hi = (max(yt, mu - 40 * s), mu + 40 * s) if side == "upper" else (mu - 40 * s, min(yt, mu + 40 * s))
    if lo >= hi:
        return 0.0

    def f(y: float) -> float:
        z = (y - mu) / s
        return math.exp(max(a * math.exp(min(y, 700.0)) - 0.5 * z * z, -745.0)) / (s * math.sqrt(2 * math.pi))

    from scipy.integrate import quad

    val, _ = quad(f, lo, hi, points=[min(max(mu, lo), hi)], epsabs=0.0, epsrel=1e-11, limit=400)
    return float(val)


def _upper_gamma(s: float, x: float) -> float:
    """The (non-regularized) upper incomplete Gamma function Gamma(s, x) for every real s and x > 0."""
    if s > 0:
        return float(sc.gammaincc(s, x) * sc.gamma(s))
    if s == 0:
        return float(sc.exp1(x))
    # Gamma(s, x) = (Gamma(s + 1, x) - x^s e^{-x}) / s, down from s + n in (0, 1] (or from 0).
    n = math.ceil(-s) if not _is_int(s) else int(-s)
    top = s + n
    g = _upper_gamma(top, x)
    for j in range(n - 1, -1, -1):
        sj = s + j
        g = (g - x**sj * math.exp(-x)) / sj
    return float(g)


def _gamma(d: Gamma, kind: str, a: float, t: float, side: str) -> float:
    k, th = d.k, d.scale
    tt = max(t, 0.0)  # the law lives on (0, inf)
    if side == "lower" and t <= 0:
        return 0.0
    if side == "upper" and t == math.inf:
        return 0.0
    if kind == "power":
        if a <= -k:
            # x^{a+k-1} is not integrable at 0: infinite when the region reaches 0
            if side == "lower" or tt == 0:
                return math.inf
            # upper tail away from 0: theta^a Gamma(k+a, t/theta) / Gamma(k)
            return float(th**a * _upper_gamma(k + a, tt / th) / sc.gamma(k))
        lg = sc.gammaln(k + a) - sc.gammaln(k)
        x = tt / th
        q = sc.gammaincc(k + a, x) if side == "upper" else sc.gammainc(k + a, x)
        return float(_exp_times(a * math.log(th) + lg, q))
    # exp: E[e^{aX}; region] with rate b = 1/theta - a
    b = 1.0 / th - a
    if b > 0:
        x = b * tt
        q = sc.gammaincc(k, x) if side == "upper" else sc.gammainc(k, x)
        return float(_exp_times(-k * math.log1p(-a * th), q))
    if side == "upper":
        return math.inf  # beyond the MGF's domain a >= 1/theta
    # lower side, a >= 1/theta: int_0^t x^{k-1} e^{-b x} dx / (Gamma(k) theta^k) = t^k 1F1(k; k+1; -b t) / (k ...)
    return float(
        _exp_times(k * math.log(tt) - sc.gammaln(k + 1) - k * math.log(th), float(sc.hyp1f1(k, k + 1, -b * tt)))
    )


def _uniform(d: Uniform, kind: str, a: float, t: float, side: str) -> float:
    lo, hi = d.loc, d.loc + d.scale
    u, v = (max(lo, t), hi) if side == "upper" else (lo, min(hi, t))
    if u >= v:
        return 0.0
    w = hi - lo
    if kind == "exp":
        if a == 0:
            return (v - u) / w
        # (e^{a v} - e^{a u}) / (a w), written to avoid cancellation
        return float(math.exp(a * u) * math.expm1(a * (v - u)) / (a * w))
    if u < 0 and not _is_int(a):
        raise DistError(
            f"partial_moment: x**{a:g} is not real for x < 0 (Uniform({lo:g}, {hi:g})); use an integer power"
        )
    if a < 0 and u <= 0 <= v and (a <= -1 or u < 0):
        # x^a, a < 0, on a region containing 0: integrable only for -1 < a < 0 from the right (u = 0)
        return math.inf
    if a == -1:
        return float((math.log(abs(v)) - math.log(abs(u))) / w)
    return float((_signed_pow(v, a + 1) - _signed_pow(u, a + 1)) / ((a + 1) * w))


def _signed_pow(x: float, p: float) -> float:
    if x == 0:
        return 0.0 if p > 0 else math.inf
    return float(x**p)


def _exp_log_ndtr(log_factor: float, w: float) -> float:
    """``e^{log_factor} * Phi(w)`` computed in log space (no underflow of Phi far in the tail)."""
    if w == -math.inf:
        return 0.0
    log_value = log_factor + float(sc.log_ndtr(w))
    return math.exp(log_value) if log_value < 709.7 else math.inf


def _exp_times(log_factor: float, p: float) -> float:
    """``e^{log_factor} * p`` without overflow to inf times 0 (``p = 0`` gives 0)."""
    if p == 0:
        return 0.0
    return float(math.exp(log_factor + math.log(p))) if p > 0 else -math.exp(log_factor + math.log(-p))


def _quad(f: Any, t: float, side: str) -> float:
    from scipy.integrate import quad

    lo, hi = (t, math.inf) if side == "upper" else (-math.inf, t)
    val, _ = quad(f, lo, hi, epsabs=0.0, epsrel=1e-11, limit=400)
    return float(val)


__all__ = ["KINDS", "SIDES", "partial_moment", "tail_mass", "tail_quantile"]
