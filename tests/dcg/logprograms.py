"""The random two-LogNormal programs drawn by the log-space property tests (centredlog, loglinear, logsubbox).

``f = x^p (c + y^q) + (x - y)^2 / (x + y)``: products, a positive sum and the ratio rule's shape, on
``X ~ LogNormal(0, s1)``, ``Y ~ LogNormal(0.2, s2)``, at ``n`` atoms per input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as hs

from opgraph.dcg.distributions import LogNormal

#: The hypothesis strategies of the program's parameters, for ``@given(**PARAMS)``.
PARAMS = {
    "p": hs.floats(-2.0, 2.0),
    "q": hs.floats(-2.0, 2.0),
    "c": hs.floats(0.05, 5.0),
    "s1": hs.floats(0.05, 0.6),
    "s2": hs.floats(0.05, 0.6),
    "n": hs.sampled_from([4, 8]),
}


def program(p: float, q: float, c: float) -> Callable:
    """The program ``x^p (c + y^q) + (x - y)^2 / (x + y)``."""

    def fn(x, y):
        return x**p * (c + y**q) + (x - y) ** 2 / (x + y)

    return fn


def laws(s1: float, s2: float) -> list[LogNormal]:
    """The inputs ``LogNormal(0, s1)``, ``LogNormal(0.2, s2)``."""
    return [LogNormal(0.0, s1), LogNormal(0.2, s2)]


def box_costs(fn: Callable, laws: list, qs: list, pt: np.ndarray, shape: tuple[int, ...], m: int, seed: int):
    """``m`` Monte Carlo draws of ``|f(X) - pt[box(X)]|`` with the flat index of each draw's box.

    Args:
        fn: The program.
        laws: Its input laws.
        qs: Each input's quantization (cells ``hi``).
        pt: The point values per box (broadcast to ``shape``).
        shape: The grid's shape.
        m: Draws.
        seed: Seed of the draws.

    Returns:
        ``(flat, d, size)``: each draw's box, its cost, and the number of boxes.
    """
    rng = np.random.default_rng(seed)
    x = [np.asarray(law.ppf(rng.uniform(size=m))) for law in laws]
    idx = tuple(np.clip(np.searchsorted(q.hi, x[j]), 0, q.atoms.size - 1) for j, q in enumerate(qs))
    flat = np.ravel_multi_index(idx, shape)
    d = np.abs(fn(*x) - np.broadcast_to(pt, shape).reshape(-1)[flat])
    return flat, d, int(np.prod(shape))
