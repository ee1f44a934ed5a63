"""Public API, lazy arithmetic, sweeps, looks, CLI, demo and error messages."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import scipy.stats as st
from click.testing import CliRunner

from opgraph import dcg as od
from opgraph.errors import OpgraphError


def test_issue_example_and_result_methods():
    X, Y, Z = od.Normal(1, 0.1), od.Uniform(0, 2), od.Normal(0, 1)
    r = od.evaluate(lambda x, y, z: x * y + np.sin(z), X, Y, Z, atoms=32)
    assert r.mean() == pytest.approx(1.0, abs=2e-3)
    assert r.var() == pytest.approx(r.std() ** 2)
    assert 0 < r.cdf(1.0) < 1
    assert r.ppf(0.5) == pytest.approx(1.0, abs=0.05)
    assert r.atoms.size == r.weights.size and r.weights.sum() == pytest.approx(1.0)
    assert math.isfinite(r.w1_bound) and r.certified
    assert sum(r.bound_terms.values()) == pytest.approx(r.w1_bound, rel=1e-9)
    assert set(r.bound_terms) == {f"input {n} ({r.info['quantizers'][n]}, 32 atoms)" for n in "xyz"}
    s = r.sample(1000, 0)
    assert s.shape == (1000,)
    assert r.w1(s) < 0.2
    assert r.w1(r) == 0
    assert r.to_scipy().mean() == pytest.approx(r.mean(), rel=1e-9)
    assert "W1 <=" in repr(r) and "<table>" in r._repr_html_()
    lazy = (X * Y + od.sin(Z)).evaluate(atoms=32)
    assert np.array_equal(lazy.atoms, r.atoms) and lazy.w1_bound == r.w1_bound
    lazy2 = (X * Y + np.sin(Z)).evaluate(atoms=32)
    assert np.array_equal(lazy2.atoms, r.atoms)


def test_tuple_outputs_and_plot(tmp_path):
    a, b = od.evaluate(lambda x, y: (x + y, x - y), od.Uniform(0, 1), od.Uniform(0, 1), atoms=16)
    assert a.mean() == pytest.approx(1.0) and b.mean() == pytest.approx(0.0, abs=1e-12)
    fig = a.plot(reference=st.triang(0.5, 0, 2))
    assert len(fig.axes) == 2
    p = a.save(tmp_path / "r.json")
    assert p.exists()
    assert (a.save(tmp_path / "r.npz")).exists()


@pytest.mark.usefixtures("point_mass_answers")
def test_target_w1_refines_until_met():
    r = od.evaluate(lambda x, y: x * y, od.Uniform(0, 1), od.Uniform(1, 2), target_w1=2e-4)
    assert r.info["target_met"] and r.w1_bound <= 2e-4
    assert len(r.info["refinement"]) > 1


def test_target_w1_reports_when_budget_is_reached():
    r = od.evaluate(lambda x, y: x * y, od.Uniform(0, 1), od.Uniform(1, 2), target_w1=1e-9, max_joint=2**12)
    assert r.info["target_met"] is False


def _f(x, y):
    return x * y + np.cos(x)


def test_evaluate_many_identical_across_executors():
    params = [(od.Normal(m, 1), od.Uniform(0, 1)) for m in (0.0, 1.0, 2.0)]
    a = od.evaluate_many(_f, params, atoms=16)
    b = od.evaluate_many(_f, params, atoms=16, executor="process")
    assert [r.mean() for r in a] == [r.mean() for r in b]
    assert [r.w1_bound for r in a] == [r.w1_bound for r in b]
    c = od.evaluate_many(_f, [{"x": od.Normal(0, 1), "y": od.Uniform(0, 1)}], atoms=16)
    assert np.array_equal(c[0].atoms, a[0].atoms)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: od.Normal(float("nan"), 1), "mu=nan must be finite"),
        (lambda: od.Normal(0, -1), "sigma=-1 must be > 0"),
        (lambda: od.Uniform(2, 1), "high must be > low"),
        (lambda: od.evaluate(lambda x: x, od.Normal(0, 1), atoms=0), "atoms=0 must be >= 1"),
        (lambda: od.evaluate(lambda x: x, od.Normal(0, 1), atoms=2.5), "atoms=2.5 must be an integer"),
        (lambda: od.from_scipy(st.cauchy()), "no finite mean"),
        (lambda: od.from_scipy(st.poisson(3)), "frozen continuous SciPy distribution"),
        (lambda: od.evaluate(lambda x: x, "normal"), "is not a distribution"),
        (lambda: od.evaluate(lambda x: x, od.Normal(0, 1), quantizer="lloyd"), "quantizer='lloyd' is unknown"),
        (lambda: od.evaluate(lambda x: np.sqrt(x), od.Normal(0, 1), atoms=8), r"node \d+ \(sqrt\).*nan or inf"),
        (lambda: od.evaluate(lambda x: np.floor_divide(x, 2), od.Normal(0, 1)), "not supported"),
        (lambda: od.evaluate(lambda x: 1.0 if x > 0 else 0.0, od.Normal(0, 1)), "line|if|bool"),
        (lambda: bool(od.Normal(0, 1) > 0), "np.where"),
        (lambda: od.evaluate(lambda x: x, od.Normal(0, 1), target_w1=-1), "target_w1=-1 must be"),
    ],
)
def test_errors_name_the_argument(call, match):
    with pytest.raises(OpgraphError, match=match):
        call()


def test_unsupported_graph_op_is_named():
    from opgraph.dcg.api import _evaluate_graph
    from opgraph.graph import GraphBuilder

    b = GraphBuilder()
    x = b.input("x")
    y = b.add("softmax", [x])
    g = b.build([y])
    with pytest.raises(OpgraphError, match="op 'softmax' is not supported"):
        _evaluate_graph(
            g,
            {"x": od.Normal(0, 1)},
            atoms=4,
            target_w1=None,
            quantizer="auto",
            max_joint=2**20,
            compress_atoms=None,
            qmc_points=64,
            seed=0,
            balance=True,
        )


def test_cli_issue_form(tmp_path):
    from opgraph.dcg.cli import group

    png = tmp_path / "p.png"
    res = CliRunner().invoke(
        group,
        [
            "x*y + sin(z)",
            "--var",
            "x=normal:1,0.1",
            "--var",
            "y=uniform:0,2",
            "--var",
            "z=normal:0,1",
            "--atoms",
            "32",
            "--plot",
            str(png),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "W1 bound" in res.output and png.exists() and (tmp_path / "r.json").exists()
    res2 = CliRunner().invoke(group, ["eval", "x - x", "--var", "x=gamma:2,1", "--atoms", "8", "--plot", ""])
    assert res2.exit_code == 0, res2.output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["x + y", "--var", "x=normal:0,1"], "no --var defines"),
        (["x + 1", "--var", "x=normal:0"], "takes 2 parameter"),
        (["x + 1", "--var", "x=cauchy:0,1"], "unknown family"),
        (["x.real", "--var", "x=normal:0,1"], "not allowed"),
        (["__import__('os')", "--var", "x=normal:0,1"], "unknown function|not allowed|no --var defines"),
        (["x +", "--var", "x=normal:0,1"], "syntax error"),
    ],
)
def test_cli_bad_input(args, match):
    from opgraph.dcg.cli import group

    res = CliRunner().invoke(group, args)
    assert res.exit_code != 0
    assert isinstance(res.exception, OpgraphError)
    assert re.search(match, str(res.exception))


def test_demo_section(tmp_path):
    from opgraph.dcg.demo import report_section

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = report_section(tmp_path, quick=True)
    assert s.id == "dcg" and s.figures and s.tables
    assert s.data["coverage"] is True
    assert (tmp_path / "xy_sinz.json").exists()


def test_import_needs_only_numpy_scipy_and_the_core():
    import subprocess
    import sys

    code = (
        "import sys, opgraph.dcg; "
        "bad = [m for m in ('torch', 'networkx', 'matplotlib', 'dask', 'click') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
