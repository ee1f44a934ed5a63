"""The uncertified QMC fallback: its sample is sized to ``target_w1`` and its W1 estimate is labelled."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.stats as st
from click.testing import CliRunner

from opgraph import dcg as od
from opgraph.dcg.api import _rules
from opgraph.dcg.engine import evaluate_qmc, qmc_spread_estimate
from opgraph.dcg.w1 import w1_to_cdf
from opgraph.graph import trace


def _no_separator(x, y, z):
    return x * y + y * z + z * x  # every pair shares an input: no node separates them


def _qmc(fn, dists, **kw):
    g = trace(fn, *dists)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_qmc(g, g.outputs[0], dists, rules=_rules(), **kw)


def test_estimate_shrinks_with_points():
    dists = {n: od.Uniform(0, 1) for n in "xyz"}
    est = [_qmc(_no_separator, dists, n_points=n, seed=3).w1_estimate for n in (2**10, 2**13, 2**16)]
    assert est[0] > est[1] > est[2] > 0
    assert est[2] < est[0] / 8  # at least the Monte Carlo rate n**-1/2 over a 64x larger sample


@pytest.mark.parametrize(
    ("fn", "dists", "cdf", "lo", "hi"),
    [
        (lambda x, y: x + y, {"x": od.Uniform(0, 1), "y": od.Uniform(0, 1)}, st.triang(0.5, 0, 2).cdf, 0.0, 2.0),
        (
            lambda x, y: x * y,
            {"x": od.LogNormal(0, 0.3), "y": od.LogNormal(0, 0.4)},
            st.lognorm(0.5).cdf,
            0.0,
            40.0,
        ),
    ],
)
def test_estimate_is_within_a_factor_of_the_true_w1(fn, dists, cdf, lo, hi):
    ratios = []
    for seed in range(4):
        ev = _qmc(fn, dists, n_points=2**13, seed=seed)
        true = w1_to_cdf(ev.atoms, ev.weights, cdf, lo, hi)
        ratios.append(ev.w1_estimate / true)
    assert all(0.5 <= r <= 2.0 for r in ratios), ratios


def test_spread_estimate_is_zero_for_identical_replicates():
    x = np.linspace(0, 1, 100)
    assert qmc_spread_estimate([x, x, x]) == pytest.approx(0.0, abs=1e-15)
    assert qmc_spread_estimate([x, x + 0.1]) > 0


def test_sample_is_sized_to_the_target():
    dists = {n: od.Uniform(0, 1) for n in "xyz"}
    coarse = _qmc(_no_separator, dists, n_points=2**16, seed=0, target_w1=1e-2)
    fine = _qmc(_no_separator, dists, n_points=2**16, seed=0, target_w1=2e-4)
    assert coarse.w1_estimate <= 1e-2 and fine.w1_estimate <= 2e-4
    assert fine.info["points"] > coarse.info["points"]
    assert fine.info["qmc_stop"] == "target reached"
    assert [r["points"] for r in fine.info["qmc_rounds"]] == sorted(r["points"] for r in fine.info["qmc_rounds"])
    capped = _qmc(_no_separator, dists, n_points=2**16, seed=0, target_w1=1e-6, max_points=2**14)
    assert capped.info["points"] <= 2**14 and capped.w1_estimate > 1e-6
    assert capped.info["qmc_stop"].startswith("max_points")


def test_evaluate_labels_the_target_sized_estimate(tmp_path):
    u = od.Uniform(0, 1)
    with pytest.warns(UserWarning, match=r"quasi-Monte Carlo \(\d+ points, a sample sized to target_w1=0.0005"):
        r = od.evaluate(_no_separator, u, u, u, max_joint=4, target_w1=5e-4)  # not even 2 atoms per input fit
    assert r.certified is False and r.w1_bound == float("inf")
    assert r.info["target_met"] is False and "even at 2 atoms per input" in r.info["fallback_reason"]
    assert f"({r.info['points']} points)" in r.info["fallback_reason"]
    assert r.w1_estimate <= 5e-4
    assert r.info["method"] == "qmc" and r.info["replicates"] == 8
    assert "not a bound" in r.info["w1_estimate_method"]
    assert f"{r.info['points']} points" in repr(r) and "not certified" in repr(r) and "scrambles" in repr(r)
    d = json.loads(r.save(tmp_path / "r.json").read_text())
    assert d["certified"] is False and "sized to target_w1=0.0005" in d["w1_estimate_label"]
    assert r.mean() == pytest.approx(0.75, abs=1e-3)


def test_cli_prints_the_estimate_label():
    from opgraph.dcg.cli import group

    args = ["x*y + y*z + z*x", "--plot", "", "--max-joint", "4", "--target-w1", "1e-3"]
    for v in "xyz":
        args += ["--var", f"{v}=uniform:0,1"]
    res = CliRunner().invoke(group, args)
    assert res.exit_code == 0, res.output
    assert "W1 estimate (not certified; QMC" in res.output and "scrambles" in res.output


def test_target_shrinks_the_first_round_before_falling_back():
    """The pilot grid (16 atoms per input) exceeds max_joint=1000: fewer atoms are certified instead of QMC."""
    u = od.Uniform(0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(_no_separator, u, u, u, max_joint=1000, target_w1=5e-4)
    assert r.certified is True and math.isfinite(r.w1_bound)
    shrunk = r.info["first_round_shrunk"]
    assert shrunk["requested"] == {"x": 16, "y": 16, "z": 16}
    assert math.prod(shrunk["used"].values()) <= 1000 and min(shrunk["used"].values()) >= 2
    assert r.info["best_bound"] == r.w1_bound and r.info["target_met"] is (r.w1_bound <= 5e-4)
    assert "fallback_reason" not in r.info
    # the exact mean of x y + y z + z x is 3/4; the certified answer is within its bound of it
    assert abs(r.mean() - 0.75) <= r.w1_bound * (1 + 1e-9)


def test_shrunk_grid_without_finite_bound_falls_back_and_says_why():
    """A shrunk first round whose grids give only an infinite bound answers with the QMC estimate, saying so."""
    u, n = od.Uniform(0, 1), od.Normal(0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(lambda x, y, z, w: x * y + y * z + z * x + 1 / w, u, u, u, n, max_joint=1000, target_w1=1e-2)
    assert r.info["first_round_shrunk"]["infinite_bound"] is True
    assert r.certified is False and r.info["target_met"] is False
    assert "give no finite bound" in r.info["fallback_reason"] and "points" in r.info["fallback_reason"]
