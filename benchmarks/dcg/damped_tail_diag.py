"""Diagnostic (branch damped-tail): DampedOsc's boxes by class, the ``S0`` share of their true cost, the answer's floor.

On one grid (atoms per input, default ``6,6,6,6,6,6,4``: the case's ``target_w1`` grid) the log-linear mixture's
arguments are recorded (as :mod:`dosc_pointmass_diag` does) together with the models' u-coefficients. With ``N``
Monte Carlo points (2^21 by default) it prints per class of box (mixed or point mass; which cells are half-lines):
mass, the held bound (point masses) or ``P(B) rest`` (mixed), the true cost ``sum P(B) E[|f - V'| | B]`` and
``sum P(B) E[|f - L| | B]`` of the log-linear model ``L``, and the split of the point-mass cost that the program's
form ``f = sqrt(S0) g(rest)`` allows: ``|V'| E|e^{d/2} - 1|`` (``S0`` alone, ``d = log S0 - log s'``) and
``|V'| e^{d/2} |g(R) / g(r') - 1|`` (the other inputs). Last the floor of any per-box coupling certificate of this
answer (point-mass costs plus model costs; the lattice's cost is the mixture's own) against its bound. Output std.

    PYTHONPATH=src python benchmarks/dcg/damped_tail_diag.py [6,6,6,6,6,6,4] [log2 points]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dosc_pointmass_diag import _CALLS, grid_of, locate, setup  # noqa: E402  (the mixture calls' spy)


def main() -> None:
    """Command line: see the module docstring."""
    case, ref, atoms, log2n = setup("6,6,6,6,6,6,4", 21)
    std = ref.std
    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = case.evaluate(atoms=atoms, progress=False)
    print(
        f"bound {r.w1_bound / std:.4f} std, true W1 {ref.w1(r.atoms, r.weights) / std:.5f}, CPU {time.process_time() - t0:.1f} s"
    )
    call = _CALLS[-1]
    grid = grid_of(call)
    cells, k = grid["cells"], len(grid["cells"])
    w, old, rest, pt, coef, mixed = (grid[x] for x in ("w", "old", "rest", "pt", "c", "mixed"))
    pm = ~mixed & (w > 0)
    tails = grid["tails"]
    nt = tails.sum(axis=0)
    n = 2**log2n
    at = locate(case, cells, n)
    cols, f, u, idx, b = (at[x] for x in ("cols", "f", "u", "idx", "b"))
    d = [u[j] - cells[j][2][idx[j]] for j in range(k)]
    model = pt[b] + sum(coef[j][b] * d[j] for j in range(k))
    e = np.exp(0.5 * d[k - 1])  # S0 is the last input: f = sqrt(S0) g(rest)

    def tot(x: np.ndarray) -> np.ndarray:
        return np.bincount(b, weights=x, minlength=w.size) / n

    cost_pm, cost_l = tot(np.abs(f - pt[b])), tot(np.abs(f - model))
    s0_part = tot(np.abs(pt[b]) * np.abs(e - 1))
    rest_part = tot(
        np.abs(pt[b])
        * e
        * np.abs(f / np.sqrt(cols[k - 1]) / (pt[b] / np.sqrt(np.exp(cells[k - 1][2][idx[k - 1]]))) - 1)
    )
    s0 = tails[k - 1]
    print("| class | boxes | mass | held or P(B) rest | E abs(f - V') | E abs(f - L) | S0 part | other inputs' part |")
    print("|---|---|---|---|---|---|---|---|")
    for name, sel, held in [
        ("point mass, only S0 half-line", pm & s0 & (nt == 1), old),
        ("point mass, S0 and another half-line", pm & s0 & (nt >= 2), old),
        ("point mass, S0 finite, another half-line", pm & ~s0 & (nt >= 1), old),
        ("point mass, no half-line", pm & (nt == 0), old),
        ("mixed, only S0 half-line", mixed & s0 & (nt == 1), w * rest),
        ("mixed, no half-line", mixed & (nt == 0), w * rest),
        ("mixed, other", mixed & ~(s0 & (nt == 1)) & (nt >= 1), w * rest),
    ]:
        print(
            f"| {name} | {int(sel.sum())} | {w[sel].sum():.4f} | {held[sel].sum() / std:.4f} | "
            f"{cost_pm[sel].sum() / std:.4f} | {cost_l[sel].sum() / std:.4f} | {s0_part[sel].sum() / std:.4f} | "
            f"{rest_part[sel].sum() / std:.4f} |"
        )
    info = call["info"] or {}
    floor = cost_pm[pm].sum() + cost_l[mixed].sum() + info.get("discretization", 0.0)
    print(
        f"floor of a per-box certificate of this answer: {floor / std:.4f} std (point masses {cost_pm[pm].sum() / std:.4f}"
        f" + models {cost_l[mixed].sum() / std:.4f} + lattice {info.get('discretization', 0.0) / std:.4f}); held "
        f"{old[pm].sum() / std:.4f} + {np.sum(w[mixed] * rest[mixed]) / std:.4f}; floor / true W1 "
        f"{floor / ref.w1(r.atoms, r.weights):.1f}"
    )


if __name__ == "__main__":
    main()
