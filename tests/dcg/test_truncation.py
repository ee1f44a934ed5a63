"""Explicit truncation (``evaluate(..., truncate=...)``): truncated laws, dropped mass, widened bands, hints."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.stats as st
from scipy import integrate

from opgraph import dcg as od
from opgraph.dcg.tails import partial_moment
from opgraph.dcg.truncation import Truncated, domain_hint, dropped_mass, truncate_inputs, widen_band
from opgraph.dcg.w1 import w1_to_cdf

RW = od.Normal(0.1, 0.0161812)  # the borehole radius


def test_truncated_normal_matches_scipy_truncnorm() -> None:
    t = Truncated(od.Normal(1.0, 2.0), -0.5, 4.0)
    ref = st.truncnorm((-0.5 - 1) / 2, (4 - 1) / 2, loc=1, scale=2)
    x = np.linspace(-1, 5, 25)
    assert np.allclose(t.cdf(x), ref.cdf(x), atol=1e-14)
    q = np.linspace(0.01, 0.99, 17)
    assert np.allclose(t.ppf(q), ref.ppf(q), atol=1e-10)
    assert t.mean() == pytest.approx(ref.mean(), rel=1e-12)
    assert t.dropped == pytest.approx(st.norm.cdf(-0.75) + st.norm.sf(1.5), rel=1e-8)
    assert t.support() == pytest.approx((-0.5, 4.0))


@pytest.mark.parametrize("method", ["quantile", "meansplit"])
@pytest.mark.parametrize(
    "law",
    [Truncated(RW, 0.0, None), Truncated(od.LogNormal(0.0, 1.0), 0.05, 20.0), Truncated(od.Gamma(2.0, 1.0), 0.5, 3.0)],
)
def test_truncated_quantization_error_is_exact(law: Truncated, method: str) -> None:
    q = law.quantize(32, method)
    assert q.lo[0] == pytest.approx(law.lo) and q.hi[-1] == pytest.approx(law.hi)
    true = od.w1_to_continuous(q.atoms, q.weights, law)
    assert q.w1 >= true
    assert q.w1 == pytest.approx(true, rel=1e-6)


def test_truncated_partial_moments_against_quadrature() -> None:
    law = Truncated(RW, 0.0, None)
    pdf = law.pdf
    for kind, a, t, side in [
        ("power", -0.05, 0.05, "lower"),
        ("power", 1.0, 0.12, "upper"),
        ("exp", 3.0, 0.1, "upper"),
    ]:
        g = (lambda x, a=a: x**a) if kind == "power" else (lambda x, a=a: math.exp(a * x))
        lo, hi = (0.0, t) if side == "lower" else (t, 1.0)
        ref, _ = integrate.quad(lambda x, g=g: g(x) * float(pdf(x)), lo, hi, epsabs=0, epsrel=1e-11, limit=200)
        assert partial_moment(law, kind, a, t, side) == pytest.approx(ref, rel=1e-7)


def test_log_of_truncated_normal_bound_covers_exact_w1() -> None:
    """log(r_w) with r_w cut at 0 (the borehole's radius): finite bound >= the exact W1 to the truncated law."""
    law = Truncated(RW, 0.0, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = od.evaluate(np.log, RW, atoms=64, truncate={"x": (0.0, None)})
    true = w1_to_cdf(r.atoms, r.weights, lambda y: law.cdf(np.exp(y)), -40.0, 0.0)
    assert math.isfinite(r.w1_bound) and r.w1_bound >= true
    assert r.w1_bound < 3 * true
    assert r.dropped_mass == pytest.approx(st.norm.cdf(-0.1 / 0.0161812), rel=1e-6)
    assert r.info["truncation"]["x"]["lo"] == 0.0


def test_identity_of_truncated_normal_is_truncnorm_and_mass_recorded() -> None:
    p = 0.01
    r = od.evaluate(lambda x: 2 * x + 1, od.Normal(0, 1), atoms=128, truncate=p)
    z = st.norm.isf(p)
    exact = st.truncnorm(-z, z, loc=1, scale=2)
    true = r.w1(exact)
    assert r.w1_bound >= true
    assert r.dropped_mass == pytest.approx(2 * p, rel=1e-6)
    assert r.support[0] >= 1 - 2 * z - 1e-9 and r.support[1] <= 1 + 2 * z + 1e-9


def test_bounded_inputs_are_left_alone_by_a_mass() -> None:
    dists, rec = truncate_inputs({"u": od.Uniform(0, 1), "z": od.Normal(0, 1)}, 1e-6)
    assert dists["u"] is not None and not isinstance(dists["u"], Truncated)
    assert set(rec) == {"z"}
    assert dropped_mass(rec) == pytest.approx(2e-6, rel=1e-6)


def _exact_cdf_recip(t: np.ndarray, law: od.Normal) -> np.ndarray:
    """P(1/X <= t) for X ~ Normal (exact)."""
    t = np.asarray(t, dtype=float)
    neg = law.cdf(0.0)
    with np.errstate(divide="ignore"):
        pos = neg + 1 - law.cdf(1 / np.where(t > 0, t, 1.0))
        negt = law.cdf(0.0) - law.cdf(1 / np.where(t < 0, t, -1.0))
    return np.where(t > 0, pos, np.where(t < 0, negt, neg))


def test_band_is_valid_for_the_exact_law_including_dropped_mass() -> None:
    """1/X, X ~ N(1.5, 1): no finite mean; cut X to [0.5, inf) (drops 16%): the band holds for the exact law."""
    law = od.Normal(1.5, 1.0)
    r = od.evaluate(lambda x: 1 / x, law, atoms=256, truncate={"x": (0.5, None)})
    assert math.isfinite(r.w1_bound)
    assert r.dropped_mass == pytest.approx(law.cdf(0.5), rel=1e-8)
    t = np.concatenate([np.linspace(-5, 3, 400), [-0.5, 0.0, 0.3, 1.0, 2.0]])
    lo, hi = r.cdf_bounds(t)
    exact = _exact_cdf_recip(t, law)
    assert np.all(lo <= exact + 1e-12) and np.all(exact <= hi + 1e-12)
    # the band of the truncated law alone (not widened) misses the exact law: the widening is what makes it valid
    raw = r.cells.band()
    rlo, rhi = raw.cdf_bounds(t)
    assert np.any((exact < rlo - 1e-6) | (exact > rhi + 1e-6))
    # quantile bounds contain the exact quantiles
    for q in (0.1, 0.3, 0.5, 0.9):
        ql, qh = r.quantile_bounds(q)
        grid = np.linspace(-20, 20, 200_001)
        xq = grid[np.searchsorted(_exact_cdf_recip(grid, law), q)]
        assert ql - 1e-3 <= xq <= qh + 1e-3
    assert r.quantile_bounds(0.1)[0] == -math.inf  # q below the dropped mass: anything could be there


def test_widen_band_is_a_cell_of_unknown_value() -> None:
    band = od.CdfBand.from_cells(np.array([0.5, 0.5]), np.array([0.0, 1.0]), np.array([0.5, 1.5]))
    w = widen_band(band, 0.1)
    lo, hi = w.cdf_bounds(np.array([-10.0, 0.0, 0.7, 1.6]))
    assert hi[0] == pytest.approx(0.1) and lo[-1] == pytest.approx(0.9)
    assert hi[1] == pytest.approx(0.55) and lo[2] == pytest.approx(0.45)
    assert w.support == (-math.inf, math.inf)


def test_result_shows_and_saves_dropped_mass(tmp_path: object) -> None:
    r = od.evaluate(np.log, RW, atoms=16, truncate=1e-9)
    assert "dropped mass" in repr(r) and "dropped mass" in r._repr_html_()
    path = r.save(tmp_path / "r.json")  # type: ignore[operator]
    data = json.loads(path.read_text())
    assert data["dropped_mass"] == pytest.approx(r.dropped_mass)
    z = np.load(r.save(tmp_path / "r.npz"))  # type: ignore[operator]
    assert float(z["dropped_mass"]) == pytest.approx(r.dropped_mass)
    # a result used as an input carries its dropped mass into the next one
    r2 = od.evaluate(lambda y: y * 2, r, atoms=16)
    assert r2.dropped_mass >= r.dropped_mass


def test_untruncated_warning_names_node_probability_and_option() -> None:
    with pytest.warns(od.UnboundedWarning) as rec:
        r = od.evaluate(np.log, RW, atoms=64)
    assert math.isinf(r.w1_bound)
    msg = str(rec[0].message)
    assert "(log)" in msg and "truncate=" in msg
    p = float(msg.split("probability <= ")[1].split(")")[0])
    assert st.norm.cdf(-0.1 / 0.0161812) <= p <= 10 * st.norm.cdf(-0.1 / 0.0161812)


def test_nan_error_names_the_tail_and_option() -> None:
    with pytest.raises(od.DistError, match=r"truncate="):
        od.evaluate(np.sqrt, od.Normal(1.0, 0.3), atoms=4096)


def test_no_hint_when_the_problem_is_not_in_a_tail() -> None:
    from opgraph.graph import trace

    g = trace(lambda x: 1 / x, "x")
    assert domain_hint(g, {"x": od.Normal(0.0, 1.0)}) == ""  # a pole in the middle of the law
    assert "x" in domain_hint(g, {"x": od.Normal(8.0, 1.0)})


@pytest.mark.parametrize(
    "truncate",
    [{"nope": 1e-9}, 0.7, {"x": -1.0}, {"x": (1.0, 0.0)}, {"x": (0.0,)}, True],
)
def test_bad_truncate_arguments(truncate: object) -> None:
    with pytest.raises(od.DistError, match="truncate"):
        od.evaluate(lambda x: x, od.Normal(0, 1), atoms=8, truncate=truncate)  # type: ignore[arg-type]


def test_discrete_inputs_cannot_be_truncated() -> None:
    with pytest.raises(od.DistError, match="continuous"):
        od.evaluate(lambda x: x, od.Discrete([1.0, 2.0]), atoms=8, truncate={"x": 0.1})


def test_lazy_random_variable_path_truncates_too() -> None:
    x = od.Normal(0.1, 0.0161812)
    r = od.log(x).evaluate(atoms=32, truncate=1e-9)
    assert math.isfinite(r.w1_bound) and r.dropped_mass == pytest.approx(2e-9, rel=1e-6)
    with pytest.raises(od.DistError, match="truncate"):
        od.log(x).evaluate(atoms=32, bogus=1)


@pytest.mark.parametrize(
    ("base", "lo", "hi"),
    [
        (od.Gamma(0.5), 0.0, 2.0),
        (od.Gamma(0.5), 0.0, math.inf),
        (od.Gamma(0.7, 2.0), 0.0, 3.0),
        (od.Normal(0, 1), -1, 2),
    ],
)
def test_scaled_tv_is_finite_and_bounds_the_numeric_one(base, lo, hi) -> None:
    """An end at 0 where the density is infinite (Gamma k < 1) used to give NaN (0 * inf)."""
    t = Truncated(base, lo, hi)
    tv = t.scaled_tv()
    assert math.isfinite(tv)
    top = hi if math.isfinite(hi) else 60.0
    s = np.concatenate([[lo], np.geomspace(1e-12, 1, 20_000) * (top - lo) + lo, [top]]) if lo == 0 else None
    if s is None:
        s = np.linspace(lo, top, 200_001)
    with np.errstate(invalid="ignore"):
        f = s * s * np.asarray(t.pdf(s), dtype=float)
    f = np.where(np.isfinite(f), f, 0.0)
    f[0] = 0.0 if lo == 0 else lo * lo * float(t.pdf(lo))  # the limit at an end at 0; the jump from 0 outside
    numeric = float(np.sum(np.abs(np.diff(f)))) + abs(f[0]) + abs(f[-1])
    assert numeric <= tv * (1 + 1e-6)


def test_scaled_tv_is_inf_at_an_infinite_density_away_from_zero() -> None:
    assert Truncated(od.Beta(2.0, 0.5), 0.2, 1.0).scaled_tv() == math.inf
