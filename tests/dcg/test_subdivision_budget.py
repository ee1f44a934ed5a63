"""Cell subdivision stays affordable on long unrolled loops (it re-evaluates subexpressions node by node)."""

from __future__ import annotations

import warnings

import pytest

from opgraph import dcg as od
from opgraph.dcg import enclose


def _logistic(steps: int):
    h = 5.0 / steps

    def fn(r, k, x0):
        x = x0
        for _ in range(steps):
            x = x + h * r * x * (1 - x / k)
        return x

    return fn


def _subdivided_sizes(monkeypatch, steps: int) -> list[int]:
    """Subexpression sizes of every subdivision a 2-atom evaluation of the logistic loop runs."""
    sizes: list[int] = []
    real = enclose.subdivided_enclosure

    def counting(graph, target, leaves, cells, levels):
        sizes.append(len(enclose.ancestors_to(graph, target, leaves)))
        return real(graph, target, leaves, cells, levels)

    monkeypatch.setattr(enclose, "subdivided_enclosure", counting)
    ins = (od.Uniform(0.5, 1.0), od.Uniform(80.0, 120.0), od.Uniform(5.0, 15.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        od.evaluate(_logistic(steps), *ins, atoms=2)
    return sizes


def test_uncapped_subdivision_would_re_evaluate_long_subexpressions(monkeypatch):
    monkeypatch.setattr(enclose, "MAX_SUBEXPR", 10**9)
    monkeypatch.setattr(enclose, "MAX_SUBDIVISION_WORK", 10**9)
    sizes = _subdivided_sizes(monkeypatch, 150)
    assert max(sizes) > 256 and sum(sizes) > 2_000  # what the caps below are there to stop


@pytest.mark.parametrize("cap, work", [(256, 20_000), (64, 500)])
def test_subdivision_work_is_capped_on_a_long_loop(monkeypatch, cap, work):
    monkeypatch.setattr(enclose, "MAX_SUBEXPR", cap)
    monkeypatch.setattr(enclose, "MAX_SUBDIVISION_WORK", work)
    sizes = _subdivided_sizes(monkeypatch, 150)
    assert max(sizes, default=0) <= cap
    assert sum(sizes) <= work
