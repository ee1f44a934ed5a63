"""Sizes that would need gigabytes are refused before anything is allocated, with the size and the limit."""

from __future__ import annotations

import pytest

from opgraph.dcg import distributions as d
from opgraph.dcg.api import MEMORY_ENV, check_memory, evaluate, memory_limit_bytes
from opgraph.dcg.errors import DistError


def test_billion_atoms_refused_with_size_and_limit(cli_error):
    line = cli_error(
        "dcg",
        "x*y",
        "--var",
        "x=normal:0,1",
        "--var",
        "y=normal:0,1",
        "--atoms",
        "1000000000",
        "--plot",
        "",
        needles=("--atoms", "GB of memory", "limit"),
    )
    assert "640 GB" in line


def test_huge_max_joint_with_refinement_refused(cli_error):
    cli_error(
        "dcg",
        "x*y",
        "--var",
        "x=normal:0,1",
        "--var",
        "y=normal:0,1",
        "--max-joint",
        str(10**11),
        "--target-w1",
        "1e-3",
        "--plot",
        "",
        needles=("max_joint=100000000000", "GB"),
    )


def test_limit_follows_environment(monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, "0.001")
    assert memory_limit_bytes() == 10**6
    with pytest.raises(DistError, match="more than the limit of 0.001 GB"):
        evaluate(lambda x, y: x * y, d.Normal(0, 1), d.Normal(0, 1), atoms=256)
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(DistError, match=MEMORY_ENV):
        memory_limit_bytes()


def test_estimate_scales_with_grid():
    small = check_memory({"x": 16, "y": 16}, 2**20, refine=False)
    large = check_memory({"x": 1024, "y": 1024}, 2**20, refine=False)
    capped = check_memory({"x": 4096, "y": 4096}, 2**20, refine=False)
    assert small < large < capped
    # Beyond max_joint the grid stops growing: only the per-atom part still grows.
    assert capped - large == 320 * (8192 - 2048)


def test_function_returning_nothing_is_refused():
    with pytest.raises(DistError, match="returns nothing"):
        evaluate(lambda x: (), d.Normal(0, 1))


@pytest.mark.parametrize(("mu", "sigma"), [(0, 50), (0, 19), (800, 1), (-800, 1)])
def test_lognormal_with_overflowing_moments_is_refused(cli_error, mu, sigma):
    cli_error("dcg", "x", "--var", f"x=lognormal:{mu},{sigma}", "--plot", "", needles=("overflow a float",))


def test_lognormal_within_range_still_works():
    r = evaluate(lambda x: x, d.LogNormal(0, 1), atoms=64)
    assert r.mean() == pytest.approx(1.6487, rel=1e-2)
