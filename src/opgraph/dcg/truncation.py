"""Explicit truncation of input laws: negligible tails dropped on purpose, with the dropped mass in the result.

Some programs are undefined only on a negligible tail of their inputs (the borehole function takes
``log(r / r_w)`` of a Normal radius ``r_w``, negative with probability 3e-10; a Normal mass in a denominator).
Their exact output law has no finite mean (or is not defined at all), so no finite W1 bound exists. The option
``evaluate(..., truncate=...)`` replaces each chosen input ``X`` by its law conditioned on ``lo <= X <= hi``
(:class:`Truncated`), and the result carries the probability ``dropped_mass`` of the dropped event (an upper
bound on ``P(some input outside its range)``). What the result then certifies:

- ``w1_bound`` bounds ``W1(law of f(X_T), result)``, with ``X_T`` the inputs conditioned on their ranges (the
  output law of the truncated inputs), nothing about the dropped event;
- the CDF band (``cdf_bounds``, ``quantile_bounds``, ``cdf_band``) is valid for the exact law: with
  ``delta = dropped_mass``, ``P(Y <= t) = (1 - delta) F_T(t) + delta G(t)`` for some unknown ``G`` in [0, 1],
  so the band becomes ``[(1 - delta) F_low(t), (1 - delta) F_up(t) + delta]`` (the dropped event is one more
  cell of mass ``delta`` whose value may be anything, see :func:`widen_band`). Where ``f`` is undefined on the
  dropped event, the band holds for every extension of ``f`` there.

Nothing is truncated silently: without ``truncate``, an evaluation that fails (a NaN) or has no finite bound
because of a tail says which node, with which probability, and which ``truncate=`` value helps
(:func:`domain_hint`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from opgraph.dcg.band import CdfBand
from opgraph.dcg.distributions import Continuous, Distribution, ScipyContinuous
from opgraph.dcg.errors import DistError

_EPS = float(np.finfo(float).eps)
log = logging.getLogger(__name__)


class Truncated(Continuous):
    """The law of ``X`` conditioned on ``lo <= X <= hi`` (a continuous law of this package, any family).

    Closed forms come from the base law's: CDF ``(F(x) - F(lo)) / m``, partial moments likewise, quantiles
    ``F^-1(F(lo) + q m)`` (lower half) and the survival form in the upper half, so the quantizers and their exact
    W1 errors work unchanged. ``m = P(lo <= X <= hi)`` is computed from the two tail masses (accurate when they
    are tiny).

    Args:
        base: A continuous law (:class:`Normal`, :class:`LogNormal`, :class:`Gamma`, ..., ``from_scipy``).
        lo: Lower end (``None`` or ``-inf``: the base's own lower end).
        hi: Upper end (``None`` or ``inf``: the base's own upper end).

    Raises:
        DistError: ``base`` is not a continuous law, ``lo >= hi``, or the range has probability 0.
    """

    name = "truncated"

    def __init__(self, base: Distribution, lo: float | None = None, hi: float | None = None) -> None:
        if not isinstance(base, Continuous) or isinstance(base, Truncated):
            raise DistError(
                f"Truncated(base={base!r}): base must be a continuous law such as od.Normal(0, 1) (not a discrete "
                "or already truncated one)"
            )
        s_lo, s_hi = base.support()
        a = s_lo if lo is None else max(float(lo), s_lo)
        b = s_hi if hi is None else min(float(hi), s_hi)
        if math.isnan(a) or math.isnan(b) or not a < b:
            raise DistError(f"Truncated(lo={lo!r}, hi={hi!r}): need lo < hi inside the support {base.support()}")
        self.base = base
        self.lo = a
        self.hi = b
        za, zb = (a - base.loc) / base.scale, (b - base.loc) / base.scale
        self._za, self._zb = za, zb
        below = float(base._zcdf(np.array(za))) if math.isfinite(za) else 0.0
        above = float(base._zsf(np.array(zb))) if math.isfinite(zb) else 0.0
        self.mass_below = max(below, 0.0)
        self.mass_above = max(above, 0.0)
        # A range on one side of the base's median is measured from that side's tail: the other tail mass is
        # then close to 1 and ``1 - below - above`` (or ``F(z) - below``) would cancel (a range 8 < X < 9 of a
        # Normal has mass 6e-16, below 1 - 6e-16).
        zmed = float(base._zmedian())
        self._side = "upper" if za >= zmed else "lower" if zb <= zmed else "mid"
        self._sf_a = float(base._zsf(np.array(za))) if self._side == "upper" else math.nan
        self._cdf_b = float(base._zcdf(np.array(zb))) if self._side == "lower" else math.nan
        if self._side == "upper":
            mass = self._sf_a - self.mass_above
        elif self._side == "lower":
            mass = self._cdf_b - self.mass_below
        else:
            mass = 1.0 - self.mass_below - self.mass_above
        if not mass > 0:
            raise DistError(f"Truncated(lo={lo!r}, hi={hi!r}): the range has probability 0 under {base!r}")
        self.mass = mass
        super().__init__(base.loc, base.scale)

    @property
    def dropped(self) -> float:
        """``P(X < lo) + P(X > hi)`` under the base law (rounded up)."""
        d = self.mass_below + self.mass_above
        return d * (1 + 1e-9) + (1e-300 if d > 0 else 0.0)

    # -- standard-variable interface (the base's, conditioned) ------------------------------------------------
    def _clip(self, z: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(z, dtype=float), self._za, self._zb)

    def _zcdf(self, z: np.ndarray) -> np.ndarray:
        if self._side == "upper":
            return np.maximum(self._sf_a - self.base._zsf(self._clip(z)), 0.0) / self.mass
        return np.maximum(self.base._zcdf(self._clip(z)) - self.mass_below, 0.0) / self.mass

    def _zsf(self, z: np.ndarray) -> np.ndarray:
        if self._side == "lower":
            return np.maximum(self._cdf_b - self.base._zcdf(self._clip(z)), 0.0) / self.mass
        return np.maximum(self.base._zsf(self._clip(z)) - self.mass_above, 0.0) / self.mass

    def _zppf(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        if self._side == "upper":
            return self._clip(self.base._zisf(self._sf_a - q * self.mass))
        return self._clip(self.base._zppf(self.mass_below + q * self.mass))

    def _zisf(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        if self._side == "lower":
            return self._clip(self.base._zppf(self._cdf_b - q * self.mass))
        return self._clip(self.base._zisf(self.mass_above + q * self.mass))

    def _zpm_lo(self, z: np.ndarray) -> np.ndarray:
        if self._side == "upper":  # E[Z; a <= Z <= z] = E[Z; Z > a] - E[Z; Z > z] (no cancellation near E[Z])
            return (float(self.base._zpm_hi(np.array(self._za))) - self.base._zpm_hi(self._clip(z))) / self.mass
        base_lo = float(self.base._zpm_lo(np.array(self._za))) if math.isfinite(self._za) else 0.0
        return (self.base._zpm_lo(self._clip(z)) - base_lo) / self.mass

    def _zpm_hi(self, z: np.ndarray) -> np.ndarray:
        if self._side == "lower":
            return (float(self.base._zpm_lo(np.array(self._zb))) - self.base._zpm_lo(self._clip(z))) / self.mass
        base_hi = float(self.base._zpm_hi(np.array(self._zb))) if math.isfinite(self._zb) else 0.0
        return (self.base._zpm_hi(self._clip(z)) - base_hi) / self.mass

    def _zmedian(self) -> float:
        q = np.array(0.5)
        return float(self._zisf(q) if self._side == "upper" else self._zppf(q))

    def _zsupport(self) -> tuple[float, float]:
        return (self._za, self._zb)

    def _zabs_moment(self, zl: np.ndarray, zr: np.ndarray, j: int) -> np.ndarray | None:
        m = self.base._zabs_moment(self._clip(zl), self._clip(zr), j)
        return None if m is None else m / self.mass * (1 + 1e-12)

    # -- law --------------------------------------------------------------------------------------------------
    def pdf(self, x: Any) -> np.ndarray:
        """The density (0 outside ``[lo, hi]``)."""
        xa = np.asarray(x, dtype=float)
        inside = (xa >= self.lo) & (xa <= self.hi)
        return np.where(inside, self.base.to_scipy().pdf(xa) / self.mass, 0.0)

    def to_scipy(self) -> Any:
        """A frozen SciPy law with the same CDF (``scipy.stats.truncnorm`` for a Normal, else a wrapper)."""
        import scipy.stats as st

        from opgraph.dcg.distributions import Normal

        if isinstance(self.base, Normal):
            return st.truncnorm(self._za, self._zb, loc=self.base.loc, scale=self.base.scale)
        return _frozen(self)

    def density_tv(self) -> float:
        """TV of the density: the base's on ``[lo, hi]`` plus the two jumps at the ends, over the mass."""
        tv = self.base.density_tv()
        if not math.isfinite(tv):
            return math.inf
        ends = sum(float(self.pdf(e)) for e in (self.lo, self.hi) if math.isfinite(e))
        return (tv / self.mass + ends) * (1 + 1e-9)

    def scaled_tv(self) -> float:
        """TV of ``s^2 p(s)``: the base's on ``[lo, hi]`` plus the jumps ``e^2 p(e)`` at the ends, over the mass.

        An end at 0 jumps by ``lim_{s -> 0} s^2 p(s) = 0`` even where the density is infinite there (``Gamma(k <
        1)``: ``s^2 p(s) ~ s^(k + 1)``; the base's finite ``TV(s^2 p)`` says ``s^2 p`` has a limit); an end
        elsewhere at an infinite density jumps by ``inf``.
        """
        tv = self.base.scaled_tv()
        if not math.isfinite(tv):
            return math.inf
        ends = 0.0
        for e in (self.lo, self.hi):
            if math.isfinite(e) and e != 0.0:
                ends += e * e * float(self.pdf(e))
        total = (tv / self.mass + ends) * (1 + 1e-9)
        return total if math.isfinite(total) else math.inf

    def mean_abs(self) -> float:
        """``E|X|`` from the closed-form partial moments (``inf`` for a ``from_scipy`` base)."""
        if isinstance(self.base, ScipyContinuous):
            return math.inf
        return super().mean_abs()

    def inv_mean_abs(self) -> float:
        """An upper bound on ``E|1/X|``: ``1 / min |end|`` off 0, and the base's ``E|1/X|`` over the mass."""
        best = self.base.inv_mean_abs() / self.mass * (1 + 1e-12)
        if self.lo > 0 or self.hi < 0:
            best = min(best, 1.0 / min(abs(self.lo), abs(self.hi)) * (1 + 1e-12))
        return best

    def _params(self) -> str:
        return f"{self.base!r}, {self.lo:.6g}, {self.hi:.6g}"


def _frozen(law: Truncated) -> Any:
    """A minimal frozen-SciPy-like object (cdf, ppf, isf, sf, pdf, support) for a truncated non-Normal law."""

    class _F:
        def cdf(self, x: Any) -> Any:
            return law.cdf(x)

        def sf(self, x: Any) -> Any:
            return law._zsf((np.asarray(x, dtype=float) - law.loc) / law.scale)

        def ppf(self, q: Any) -> Any:
            return law.ppf(q)

        def isf(self, q: Any) -> Any:
            return law.loc + law.scale * law._zisf(np.asarray(q, dtype=float))

        def pdf(self, x: Any) -> Any:
            return law.pdf(x)

        def support(self) -> tuple[float, float]:
            return (law.lo, law.hi)

    return _F()


# ---------------------------------------------------------------------------------------------------------------
# The evaluate(..., truncate=...) option
def _check_mass(name: str, p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < float(p) < 0.5:
        raise DistError(
            f"truncate[{name!r}]={p!r}: a tail mass must be a number in (0, 0.5) (for example 1e-9 per tail)"
        )
    return float(p)


def _by_mass(name: str, d: Distribution, p: float) -> Truncated:
    from opgraph.dcg.tails import tail_quantile

    if not isinstance(d, Continuous):
        raise DistError(f"truncate[{name!r}]: input {name!r} is {d!r}, not a continuous law; only those truncate")
    # Both ends at the p- and (1-p)-quantiles (also a finite end such as 0 of a LogNormal, where the density of
    # log x or 1/x is singular).
    lo = float(tail_quantile(d, p, "lower"))
    hi = float(tail_quantile(d, p, "upper"))
    return Truncated(d, lo, hi)


def truncate_inputs(
    dists: Mapping[str, Distribution], truncate: float | Mapping[str, Any] | None
) -> tuple[dict[str, Distribution], dict[str, dict[str, float]]]:
    """Apply ``evaluate``'s ``truncate`` option to the input laws.

    Args:
        dists: Input laws by name.
        truncate: ``None`` (nothing); a number ``p``: every input with unbounded support (Normal, LogNormal, Gamma,
            Exponential, ``from_scipy`` with an infinite end) is cut to its quantiles ``[q_p, q_{1-p}]`` (both
            ends, so ``2 p`` of it is dropped; bounded laws stay as they are); or a mapping by input name to a tail
            mass ``p`` (the same, for that input) or to a value range ``(lo, hi)`` (``None`` keeps that end).

    Returns:
        The new laws, and per truncated input ``{"lo", "hi", "dropped"}`` (values and dropped probability).

    Raises:
        DistError: an unknown input name, a mass outside (0, 0.5), a range that is empty or not a pair, or a
            discrete input.
    """
    out = dict(dists)
    record: dict[str, dict[str, float]] = {}
    if truncate is None:
        return out, record
    if isinstance(truncate, Mapping):
        unknown = sorted(set(truncate) - set(dists))
        if unknown:
            raise DistError(f"truncate: unknown input(s) {unknown}; the inputs are {list(dists)}")
        items = list(truncate.items())
    else:
        p = _check_mass("*", truncate)
        items = [
            (n, p)
            for n, d in dists.items()
            if isinstance(d, Continuous) and not all(math.isfinite(e) for e in d.support())
        ]
    for name, spec in items:
        d = dists[name]
        if isinstance(spec, tuple | list):
            if len(spec) != 2:
                raise DistError(f"truncate[{name!r}]={spec!r}: give a range as (lo, hi), None for an open end")
            if not isinstance(d, Continuous):
                raise DistError(f"truncate[{name!r}]: input {name!r} is {d!r}, not a continuous law")
            try:
                law = Truncated(d, *(None if v is None else float(v) for v in spec))
            except (DistError, TypeError, ValueError) as exc:
                raise DistError(f"truncate[{name!r}]={spec!r}: {exc}") from None
        else:
            law = _by_mass(name, d, _check_mass(name, spec))
        out[name] = law
        record[name] = {"lo": law.lo, "hi": law.hi, "dropped": law.dropped}
    return out, record


def dropped_mass(record: Mapping[str, Mapping[str, float]]) -> float:
    """``P(some input outside its range) = 1 - prod(1 - p_i)`` for independent inputs, rounded up."""
    if not record:
        return 0.0
    keep = 0.0
    for r in record.values():
        keep += math.log1p(-min(float(r["dropped"]), 1.0)) if r["dropped"] < 1 else -math.inf
    d = -math.expm1(keep)
    return min(1.0, d * (1 + 1e-9) + 1e-300)


def widen_band(band: CdfBand, delta: float) -> CdfBand:
    """The band of the exact law when the band's law holds on an event of probability ``1 - delta``.

    The dropped event is one more cell of mass ``delta`` whose value is unknown (enclosure ``(-inf, inf)``):
    ``F_up`` gets ``delta`` everywhere (a step at ``-inf``), ``F_low`` is scaled by ``1 - delta`` and never
    reaches 1. Rounding of the scaling is added to the band's slack.
    """
    if not delta > 0:
        return band
    keep = 1.0 - delta
    up_x = np.concatenate([[-np.inf], band.up_x[band.up_x > -np.inf]])
    up_tail = band.up_p[band.up_x > -np.inf]
    at_minf = band.up_p[band.up_x == -np.inf]
    first = delta + (keep * float(at_minf[-1]) if at_minf.size else 0.0)
    up_p = np.minimum(np.concatenate([[first], keep * up_tail + delta]), 1.0)
    low_p = keep * band.low_p
    slack = band.slack + 4 * _EPS
    return CdfBand(up_x, up_p, band.low_x.copy(), low_p, slack, band.cells + 1, band.shrunk, True)


# ---------------------------------------------------------------------------------------------------------------
# Never silent: which node, which probability, which option
_LADDER = (1e-15, 1e-12, 1e-9, 1e-6, 1e-3)
#: Graphs larger than this get no hint (each probe is one interval pass over the graph; about 30 probes).
_MAX_HINT_NODES = 4000


def _box_enclosure(graph: Any, boxes: Mapping[str, tuple[float, float]]) -> tuple[tuple[float, float], str]:
    """Naive interval enclosure of the (single-output) graph over one box, and the first node that turns bad.

    A node "turns bad" when its enclosure has a NaN or an infinite end while its operands' are finite (a pole,
    a log of a range that reaches 0, a root of negatives). Returns ``((lo, hi), where)`` (``where`` empty if none).
    """
    from opgraph.dcg import intervals as iv

    env: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    first_bad = ""
    for n in graph.nodes:
        if n.op == "input":
            lo, hi = boxes[n.attrs["name"]]
            env[n.id] = (np.asarray(float(lo)), np.asarray(float(hi)))
            continue
        if n.op == "const":
            c = np.asarray(float(np.asarray(n.attrs["value"], dtype=float)))
            env[n.id] = (c, c)
            continue
        args = [env[j] for j in n.inputs]
        with np.errstate(all="ignore"):
            try:
                (vlo, vhi), _ = iv.rule(n.op, args, n.attrs)
            except DistError:
                return (-math.inf, math.inf), first_bad or n.where
        vlo, vhi = np.asarray(vlo, dtype=float), np.asarray(vhi, dtype=float)
        ok_in = all(np.all(np.isfinite(a[0])) and np.all(np.isfinite(a[1])) for a in args)
        bad = bool(np.any(np.isnan(vlo)) or np.any(np.isnan(vhi)) or not np.all(np.isfinite(vlo) & np.isfinite(vhi)))
        if bad and ok_in and not first_bad:
            first_bad = n.where
        env[n.id] = (np.where(np.isnan(vlo), -np.inf, vlo), np.where(np.isnan(vhi), np.inf, vhi))
    lo, hi = env[graph.outputs[0]]
    return (float(lo), float(hi)), first_bad


def _boxes(dists: Mapping[str, Distribution], p: float, cut: set[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for name, d in dists.items():
        sup = d.support()
        if name in cut and isinstance(d, Continuous):
            t = _by_mass(name, d, p)
            out[name] = (t.lo, t.hi)
        else:
            out[name] = (float(sup[0]), float(sup[1]))
    return out


def domain_hint(graph: Any, dists: Mapping[str, Distribution]) -> str:
    """A sentence for an evaluation that failed or has no finite bound because of negligible input tails.

    Evaluates the graph's interval enclosure over the inputs' quantile box ``[q_p, q_{1-p}]`` of every input with
    unbounded support; if the enclosure is finite for some tail mass ``p <= 1e-3``, the failure comes from the
    tails: the sentence names the node that turns bad first just outside that box, an upper bound on the
    probability of the event that causes it (the tails beyond the smallest such ``p``, found by bisection in
    ``log p``), the inputs that need the cut, and the ``truncate=`` option. Empty when no such ``p`` exists (the
    problem is not in the tails) or nothing is unbounded.

    Args:
        graph: A single-output graph (restricted to one output).
        dists: The input laws by name.
    """
    names = {n.attrs["name"] for n in graph.nodes if n.op == "input"}
    tailed = {
        n
        for n in names
        if isinstance(dists.get(n), Continuous) and not all(math.isfinite(e) for e in dists[n].support())
    }
    if not tailed or len(graph.nodes) > _MAX_HINT_NODES:
        return ""
    sub = {n: dists[n] for n in names}

    def finite(p: float, cut: set[str]) -> bool:
        (lo, hi), _ = _box_enclosure(graph, _boxes(sub, p, cut))
        return math.isfinite(lo) and math.isfinite(hi)

    try:
        p_ok = next((p for p in _LADDER if finite(p, tailed)), None)
        if p_ok is None:
            return ""
        # the smallest p (in log10) with a finite enclosure: bisect below p_ok
        lo_l, hi_l = math.log10(p_ok) - 3.0 if p_ok > _LADDER[0] else -300.0, math.log10(p_ok)
        if finite(10**lo_l, tailed):
            hi_l = lo_l
        else:
            for _ in range(24):
                mid = 0.5 * (lo_l + hi_l)
                lo_l, hi_l = (lo_l, mid) if finite(10**mid, tailed) else (mid, hi_l)
        p_star = 10**hi_l
        need = {n for n in sorted(tailed) if not finite(p_star, tailed - {n})}
        need = need or set(tailed)
        (_, _), where = _box_enclosure(graph, _boxes(sub, p_star * 0.5, need))
        suggest = _LADDER[next(i for i, v in enumerate(_LADDER) if v >= p_star)]
        total = min(1.0, 2 * p_star * len(need))
        # A replaced subexpression (an exact-law node, "node 6 (add) ... (exact law)") is no argument of fn: cut
        # every unbounded input then (the scalar form), which the user can pass.
        derived = any(not re.fullmatch(r"[A-Za-z_]\w*(\[\d+\])*", n) for n in need)
        whole = need == tailed or derived
        arg = repr(suggest) if whole else "{" + ", ".join(f"{n!r}: {suggest!r}" for n in sorted(need)) + "}"
    except Exception:  # noqa: BLE001  (a diagnostic must never mask the error or warning it explains)
        log.debug("domain_hint failed", exc_info=True)
        return ""
    at = f"{where} turns undefined or unbounded" if where else "the output's enclosure becomes unbounded"
    names = ", ".join(sorted(need))
    if p_star <= 1e-299:  # finite for every cut: the unbounded ends themselves are the cause
        where_text = f"{at} only because {names} are unbounded (any cut of their tails makes it finite)"
    else:
        where_text = (
            f"{at} only where {names} fall beyond their {p_star:.2g} tail quantiles (probability <= {total:.2g})"
        )
    dropped = (
        f"{2 * suggest:.2g} of probability per unbounded input"
        if derived
        else f"at most {min(1.0, 2 * suggest * len(need)):.2g} of probability"
    )
    return (
        f"the cause is in the inputs' tails: {where_text}; pass truncate={arg} to evaluate() to drop {dropped} "
        "explicitly (reported as result.dropped_mass, with the CDF band widened by it)"
    )


__all__ = ["Truncated", "domain_hint", "dropped_mass", "truncate_inputs", "widen_band"]
