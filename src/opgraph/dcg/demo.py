"""The ``opgraph demo`` section of :mod:`opgraph.dcg`: a mixed graph, dependence checks and bound convergence."""

from __future__ import annotations

import math
import pathlib
import time
import warnings

import numpy as np

from opgraph.report import Figure, Section, Table


def _uu_cdf(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 1e-300, 1.0)
    return np.where(t >= 1.0, 1.0, t - t * np.log(t))


def report_section(work_dir: pathlib.Path, *, quick: bool = True) -> Section:
    """Run a short demo on built-in laws and return its report section.

    Args:
        work_dir: A directory for files (the result of the main example is saved there as JSON).
        quick: Small sizes (a few seconds on 2 cores).

    Returns:
        The report section (figures, tables, data, notes).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import scipy.stats as st

    from opgraph import dcg as od
    from opgraph.dcg.w1 import w1_to_cdf

    work_dir = pathlib.Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, object] = {}

    # 1. The example, X*Y + sin(Z), against NumPy Monte Carlo.
    X, Y, Z = od.Normal(1, 0.1), od.Uniform(0, 2), od.Normal(0, 1)
    rows = []
    main = None
    for n in (32, 64) if quick else (64, 128):
        t0 = time.perf_counter()
        r = od.evaluate(lambda x, y, z: x * y + np.sin(z), X, Y, Z, atoms=n)
        dt = time.perf_counter() - t0
        rows.append([f"opgraph.dcg atoms={n}", f"{r.mean():.5f}", f"{r.std():.5f}", f"{r.w1_bound:.3g}", f"{dt:.3f}"])
        main = r
    assert main is not None
    rng = np.random.default_rng(0)
    for n in (10_000, 1_000_000):
        t0 = time.perf_counter()
        s = rng.normal(1, 0.1, n) * rng.uniform(0, 2, n) + np.sin(rng.normal(0, 1, n))
        dt = time.perf_counter() - t0
        rows.append([f"NumPy Monte Carlo n={n}", f"{s.mean():.5f}", f"{s.std():.5f}", "none", f"{dt:.3f}"])
    main.save(work_dir / "xy_sinz.json")
    fig = main.plot()
    figures = [Figure.from_matplotlib(fig, "xy_sinz", "Law of X*Y + sin(Z): histogram of the atoms and the CDF.")]
    tables = [
        Table(
            ["method", "mean", "std", "certified_w1_bound", "time_s"],
            rows,
            "X*Y + sin(Z), X~N(1,0.1), Y~U(0,2), Z~N(0,1): opgraph.dcg against Monte Carlo (which has no bound).",
        )
    ]
    data["xy_sinz"] = {"mean": main.mean(), "std": main.std(), "w1_bound": main.w1_bound, "terms": main.bound_terms}

    # 2. Dependence: shared inputs are evaluated on shared axes.
    dep_rows = []
    x = od.Normal(0, 1)
    r = (x - x).evaluate(atoms=64)
    dep_rows.append(
        ["X - X", "delta at 0", f"{r.std():.3g}", f"{r.w1_bound:.3g}", "exact" if r.std() == 0 else "WRONG"]
    )
    u = od.Uniform(0, 1)
    r = od.evaluate(lambda a: a * a, u, atoms=256)
    w = r.w1(st.beta(0.5, 1))
    dep_rows.append(
        ["U * U (same U)", "Beta(1/2, 1)", f"{w:.3g}", f"{r.w1_bound:.3g}", "ok" if w <= r.w1_bound else "BUG"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", od.UnboundedWarning)
        r = od.evaluate(lambda a, b: a / (a + b), od.Gamma(2), od.Gamma(3), atoms=128)
    w = r.w1(st.beta(2, 3))
    dep_rows.append(["G1 / (G1 + G2), Gamma(2), Gamma(3)", "Beta(2, 3)", f"{w:.3g}", f"{r.w1_bound:.3g}", "ok"])
    tables.append(
        Table(
            ["expression", "exact law", "W1_to_exact", "certified_bound", "check"],
            dep_rows,
            "Dependence is exact: a variable used twice is one axis of the grid. (The Gamma ratio has no finite "
            "certified bound: the denominator's range reaches 0 on the first cells.)",
        )
    )

    # 3. Bound versus true error as atoms grow: U1 * U2 (CDF t - t ln t) and the logistic map (single input).
    ns = [8, 16, 32, 64, 128] if quick else [8, 16, 32, 64, 128, 256, 512]
    bounds, trues = [], []
    u1, u2 = od.Uniform(0, 1), od.Uniform(0, 1)
    for n in ns:
        r = od.evaluate(lambda a, b: a * b, u1, u2, atoms=n)
        bounds.append(r.w1_bound)
        trues.append(w1_to_cdf(r.atoms, r.weights, _uu_cdf, 0.0, 1.0, n_grid=100_001))
    fig2, ax = plt.subplots(figsize=(5, 3.4))
    ax.loglog(ns, bounds, "o-", label="certified bound")
    ax.loglog(ns, trues, "s--", label="true W1 (exact CDF)")
    ax.set_xlabel("atoms per input")
    ax.set_ylabel("W1")
    ax.set_title("U1*U2: bound vs true error")
    ax.legend()
    fig2.tight_layout()
    figures.append(Figure.from_matplotlib(fig2, "bound_vs_true", "Certified bound and true W1 for U1*U2 by atoms."))
    data["uu_convergence"] = {"atoms": ns, "bound": bounds, "true": trues}
    coverage = all(b >= t for b, t in zip(bounds, trues, strict=True))
    ratio = float(np.median(np.array(bounds) / np.array(trues)))
    data["coverage"] = coverage
    data["median_ratio_uu"] = ratio
    summary = (
        "Inputs are quantized with an exactly known W1 error; the traced graph is evaluated with exact dependence "
        "(one grid axis per input); each result carries a certified bound W1(exact, result) <= w1_bound from "
        f"cellwise interval derivatives. On U1*U2 the bound is {ratio:.2f}x the true error (median), "
        f"never below it: {coverage}."
    )
    notes = [
        "Bounds are certified up to floating-point evaluation of the atoms (interval endpoints are widened outwards).",
        "Functions whose derivative is unbounded on an unbounded or singular input range (x*x of a Normal, exp of a "
        "Normal, a denominator reaching 0) get w1_bound = inf with a warning naming the node.",
        "No GPU is used; timings are single-threaded NumPy on the demo machine.",
    ]
    if not math.isfinite(main.w1_bound):
        notes.append("The main example had no finite bound (unexpected).")
    return Section("dcg", "Distributional computational graphs (opgraph.dcg)", summary, figures, tables, data, notes)
