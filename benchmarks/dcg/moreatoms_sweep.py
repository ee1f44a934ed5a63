"""More atoms, never a worse bound: the certified bound at 2, 4 and 8 atoms per input (issue 14 section 3).

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 .venv/bin/python benchmarks/dcg/moreatoms_sweep.py [NAMES...]

For every ``uqtestfuns`` function of :data:`FAST` (those whose 8-atom call took under 1 s in the breadth table of
``docs/benchmarks/dcg.md``; or the names given), ``od.evaluate(fn, *laws, atoms=n)`` at n = 2, 4, 8 with the
certificate carry of :mod:`opgraph.dcg.carry` off and on (``carry.FIXED_ATOMS``, the opt-in N/2 carry of
fixed-atoms calls, with its ``MIN_JOINT`` floor; interleaved, in this process): the bounds (units of the
function's own output std, from the result at 8 atoms), the CPU seconds, and whether the bound grows with atoms.
Prints a markdown table and a summary line (growth count off / on, total CPU off / on).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph import dcg as od
from opgraph.dcg import carry
from opgraph.graph import trace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uqtf_coverage as cov  # noqa: E402

ATOMS = (2, 4, 8)
#: Relative slack below which a rise of the bound counts as float noise.
SLACK = 1e-9
FAST = [
    "Ackley",
    "Alemazkoor2D",
    "BratleyA",
    "BratleyB",
    "BratleyC",
    "BratleyD",
    "Cheng2D",
    "ConvexFailDomain",
    "CurrinSine",
    "DampedCosine",
    "DetteCurved",
    "DetteExp",
    "Forrester1D",
    "FourBranch",
    "Franke1",
    "Franke2",
    "Franke3",
    "Franke4",
    "Franke5",
    "Franke6",
    "Friedman10D",
    "Friedman6D",
    "GaytonHat",
    "GenzContinuous",
    "GenzCornerPeak",
    "GenzGaussian",
    "GenzOscillatory",
    "GenzProductPeak",
    "HigdonSine",
    "HolsclawSine",
    "HyperSphere",
    "Ishigami",
    "LimNonPoly",
    "LimPoly",
    "LinkletterLinear",
    "LinkletterSine",
    "McLainS1",
    "McLainS2",
    "McLainS3",
    "McLainS4",
    "McLainS5",
    "Moon3D",
    "Oakley1D",
    "Portfolio3D",
    "RSCircularBar",
    "RSCircularPipeCrack",
    "RSQuadratic",
    "Rosenbrock",
    "SaltelliLinear",
    "SobolG",
    "SobolGStar",
    "SobolLevitan",
    "Sulfur",
    "Webster2D",
]


def program(name: str) -> tuple[Any, list[Any]]:
    """The traced-ready function of one row and its input laws (as ``uqtf_coverage.run_one`` builds them)."""
    f = cov.build_function(name)
    laws = [cov.map_marginal(m) for m in f.prob_input.marginals]
    params = dict(f.parameters.items()) if f.parameters is not None else {}
    ev = f._evaluate

    def fn(*x: Any) -> Any:
        out = ev(cov.as_row(x), **params)
        return out.reshape(-1)[0] if isinstance(out, np.ndarray) else out

    trace(fn, *[f"x{k}" for k in range(len(laws))])  # fails early where the function does not trace
    return fn, laws


def bounds(fn: Any, laws: list[Any], on: bool) -> tuple[list[float], list[float], list[Any]]:
    """Bounds, CPU seconds and results at each of :data:`ATOMS` with the carry ``on`` or off."""
    out, cpu, res = [], [], []
    tok, tok_f = carry.ENABLED.set(on), carry.FIXED_ATOMS.set(on)  # on: the opt-in fixed-atoms N/2 carry too
    try:
        for n in ATOMS:
            t0 = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = od.evaluate(fn, *laws, atoms=n, progress=False)
            cpu.append(time.process_time() - t0)
            out.append(float(r.w1_bound))
            res.append(r)
    finally:
        carry.FIXED_ATOMS.reset(tok_f)
        carry.ENABLED.reset(tok)
    return out, cpu, res


def grows(b: list[float]) -> bool:
    """Whether a bound at more atoms exceeds the one before it beyond :data:`SLACK`."""
    return any(b[k + 1] > b[k] * (1 + SLACK) + 1e-300 for k in range(len(b) - 1))


def main(argv: list[str] | None = None) -> None:
    names = list(argv if argv is not None else sys.argv[1:]) or list(FAST)
    rows = [
        "| function | d | bound/std off (2 / 4 / 8) | bound/std on (2 / 4 / 8) | grows off | grows on | CPU s off | CPU s on |",
        "|---|---|---|---|---|---|---|---|",
    ]
    n_off = n_on = 0
    t_off = t_on = 0.0
    for name in names:
        try:
            fn, laws = program(name)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            rows.append(f"| {name} | | {type(exc).__name__} | | | | | |")
            continue
        b_off, c_off, _ = bounds(fn, laws, False)
        b_on, c_on, res = bounds(fn, laws, True)
        std = res[-1].std() or 1.0
        g_off, g_on = grows(b_off), grows(b_on)
        n_off += g_off
        n_on += g_on
        t_off += sum(c_off)
        t_on += sum(c_on)
        rows.append(
            f"| {name} | {len(laws)} | {' / '.join(f'{b / std:.4g}' for b in b_off)} | "
            f"{' / '.join(f'{b / std:.4g}' for b in b_on)} | {'yes' if g_off else ''} | {'yes' if g_on else ''} | "
            f"{sum(c_off):.2f} | {sum(c_on):.2f} |"
        )
        print(rows[-1], flush=True)
    print()
    print("\n".join(rows))
    print(
        f"\n{len(names)} functions; bound grows from 2 to 4 to 8 atoms: {n_off} (carry off), {n_on} (carry on); "
        f"CPU s over all calls {t_off:.1f} (off), {t_on:.1f} (on)"
    )


if __name__ == "__main__":
    main()
