"""Bound / true W1 of the tail-envelope cases in ``tests/dcg/test_tails_bound.py`` at 16, 64 and 256 atoms.

Run: ``PYTHONPATH=src python benchmarks/dcg/tails_ratios.py`` (prints the Markdown rows of docs/dcg.md,
"Finite bounds on unbounded inputs"; true W1 by SciPy quadrature against the exact law).
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "dcg"))

from test_tails_bound import CASES, true_w1  # noqa: E402

from opgraph import dcg as od  # noqa: E402


def main() -> None:
    """Print one Markdown row per case."""
    for name, (fn, ins, law) in CASES.items():
        row = []
        for atoms in (16, 64, 256):
            r = od.evaluate(fn, *ins, atoms=atoms)
            t = true_w1(r.atoms, r.weights, law)
            row.append(f"{r.w1_bound:.3g} / {t:.3g} = {r.w1_bound / t:.1f}")
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
