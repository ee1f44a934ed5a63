"""More atoms never give a worse bound (issue 14 section 3), over a set of programs.

The ``uqtestfuns`` functions that run in well under a second at 8 atoms per input
(``benchmarks/dcg/moreatoms_sweep.py``'s list; the damped oscillators, whose bound grew from 2 to 4 atoms before
:mod:`opgraph.dcg.cellmoments`, at 2 and 4) and the classic benchmark cases (``benchmarks/dcg/run.py``, their
first atom counts): the certified bound at each atom count must not exceed the one before it beyond a float slack
of 1e-9 (relative). Soundness of the bounds is checked elsewhere (``test_uqtf_breadth.py``,
``test_cellmoments.py``, the per-module tests). X1 has 2 products here (run.py: 8, 16 inputs), PH1 runs with
``truncate=1e-9``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from opgraph import dcg as od

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "dcg"
SLACK = 1e-9


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / file)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sweep():
    pytest.importorskip("uqtestfuns")
    sys.path.insert(0, str(BENCH))  # the sweep imports uqtf_coverage by name
    try:
        yield _load("moreatoms_sweep_bench", "moreatoms_sweep.py")
    finally:
        sys.path.remove(str(BENCH))
        sys.modules.pop("moreatoms_sweep_bench", None)


def _bounds(fn, laws, atoms, **kw):
    out = []
    for n in atoms:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = od.evaluate(fn, *laws, atoms=n, progress=False, **kw)
        out.append(float(r.w1_bound))
    return out


def _check(bounds, atoms):
    assert all(math.isfinite(b) for b in bounds), dict(zip(atoms, bounds, strict=True))
    for k in range(len(bounds) - 1):
        assert bounds[k + 1] <= bounds[k] * (1 + SLACK), (
            f"bound grows from {atoms[k]} to {atoms[k + 1]} atoms: {bounds[k]:.6g} -> {bounds[k + 1]:.6g}"
        )


UQTF = [
    "Ackley",
    "BratleyC",
    "Cheng2D",
    "ConvexFailDomain",
    "DetteExp",
    "FourBranch",
    "Franke2",
    "Friedman6D",
    "GaytonHat",
    "GenzCornerPeak",
    "HyperSphere",
    "Ishigami",
    "LimPoly",
    "LinkletterSine",
    "McLainS4",
    "Moon3D",
    "Oakley1D",
    "RSCircularPipeCrack",
    "RSQuadratic",
    "Rosenbrock",
    "SobolGStar",
    "Sulfur",
    "Webster2D",
]


@pytest.mark.parametrize("name", UQTF)
def test_uqtestfuns_bound_never_grows_2_4_8(sweep, name):
    fn, laws = sweep.program(name)
    _check(_bounds(fn, laws, (2, 4, 8)), (2, 4, 8))


@pytest.mark.parametrize("name", ["DampedOscillator", "RSDampedOscillator"])
def test_damped_oscillators_bound_never_grows_2_4(sweep, name):
    fn, laws = sweep.program(name)
    _check(_bounds(fn, laws, (2, 4)), (2, 4))


def test_the_list_is_the_sweeps_fast_set(sweep):
    assert set(UQTF) <= set(sweep.FAST)


def _u():
    return od.Uniform(0, 1)


# The classic cases of benchmarks/dcg/run.py (its make_cases() also builds the references: too slow for a test).
CLASSIC = {
    "S1-2": (lambda a, b: a + b, lambda: [_u(), _u()], (8, 16, 32, 64)),
    "S2": (lambda a, b, c: a + b + c, lambda: [od.Exponential(1)] * 3, (8, 16, 32)),
    "M1": (lambda a, b: a * b, lambda: [_u(), _u()], (8, 16, 32, 64)),
    "M3": (lambda a, b: a * b, lambda: [od.LogNormal(0, 0.3), od.LogNormal(0, 0.4)], (8, 16, 32)),
    "R1": (lambda a, b: a / b, lambda: [_u(), od.Uniform(1, 2)], (8, 16, 32, 64)),
    "E1": (lambda a, b, c: np.maximum(np.maximum(a, b), c), lambda: [_u(), _u(), _u()], (8, 16, 32)),
    "E2": (lambda a, b: np.minimum(a, b), lambda: [od.Exponential(1), od.Exponential(2)], (8, 16, 32)),
    "N1": (np.sin, lambda: [od.Normal(0, 1)], (16, 64, 256)),
    "P1": (
        lambda x, y, z: x * y + np.sin(z),
        lambda: [od.Normal(1, 0.1), od.Uniform(0, 2), od.Normal(0, 1)],
        (8, 16, 32),
    ),
    "PH1": (
        lambda L, g: 2 * np.pi * np.sqrt(L / g),
        lambda: [od.Uniform(0.9, 1.1), od.Normal(9.81, 0.05)],
        (8, 16, 32),
    ),
    "X1": (lambda a, b, c, d: a * b + c * d, lambda: [od.Normal(0, 1)] * 4, (4, 8, 16)),
    "D1b": (lambda x: x * x, lambda: [_u()], (64, 256, 1024)),
    "D1d": (lambda x: x * x, lambda: [od.Normal(0, 1)], (64, 256, 1024)),
    "D1c": (lambda x, y: (x + y) - y, lambda: [od.Normal(0, 1), _u()], (64, 256)),
}


@pytest.mark.parametrize("cid", sorted(CLASSIC))
def test_classic_cases_bound_never_grows(cid):
    fn, inputs, atoms = CLASSIC[cid]
    kw = {"truncate": 1e-9} if cid == "PH1" else {}  # a Normal denominator: finite only with the cut
    _check(_bounds(fn, inputs(), atoms, **kw), atoms)
