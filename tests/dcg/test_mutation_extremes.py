"""extreme_law on cases small enough to work out by hand (issue 13): ties, unnormalised masses, exact errors."""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.dcg.extremes import OneAxis, extreme_law

MARGIN = 1 + 1e-12  # the outward rounding margin on every per-atom bound


def _axis(atoms, weights, lo, hi, err):
    return OneAxis(*(np.asarray(v, dtype=float) for v in (atoms, weights, lo, hi, err)))


def test_ties_are_counted_once_and_masses_are_normalised():
    # A on {0, 1}, B on {1, 2}, unnormalised masses (2 and 2): max(A, B) = 1 exactly when B = 1, else 2
    a = _axis([0, 1], [1, 1], [0, 1], [0, 1], [0, 0])
    b = _axis([1, 2], [1, 1], [1, 2], [1, 2], [0, 0])
    law = extreme_law(a, b, "maximum")
    got: dict[float, float] = {}
    for v, w in zip(law.atoms, law.weights, strict=True):
        got[float(v)] = got.get(float(v), 0.0) + float(w)
    assert got == {1.0: pytest.approx(0.5), 2.0: pytest.approx(0.5)}
    assert law.weights.sum() == pytest.approx(1.0)
    low = extreme_law(a, b, "minimum")  # min = 0 when A = 0, else 1
    assert low.atoms.tolist() == [0.0, 1.0] and low.weights.tolist() == pytest.approx([0.5, 0.5])


def test_per_atom_errors_and_cells_when_one_side_always_wins():
    # B's cell [4, 6] lies above both of A's cells: max(A, B) = B, min(A, B) = A, cell by cell
    a = _axis([0, 2], [0.5, 0.5], [-1, 1.5], [1, 2.5], [0.3, 0.1])
    b = _axis([5], [1.0], [4], [6], [0.2])
    hi = extreme_law(a, b, "maximum")
    assert hi.atoms.tolist() == [5.0] and hi.weights.tolist() == [1.0]
    assert hi.err.tolist() == [0.2 * MARGIN] and (hi.lo.tolist(), hi.hi.tolist()) == ([4.0], [6.0])
    assert (hi.err_a, hi.err_b) == (0.0, 0.2)
    lo = extreme_law(a, b, "minimum")
    assert lo.atoms.tolist() == [0.0, 2.0] and lo.weights.tolist() == [0.5, 0.5]
    assert lo.err.tolist() == [0.3 * MARGIN, 0.1 * MARGIN]
    assert lo.lo.tolist() == [-1.0, 1.5] and lo.hi.tolist() == [1.0, 2.5]

    assert lo.err_a == pytest.approx(0.4) and lo.err_b == 0.0  # A's cell errors 0.3 + 0.1, each wins surely
