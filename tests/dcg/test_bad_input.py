"""Issue 14's bad-input list: every message names the argument (op, node, line, size, bound) and the fix."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.errors import OpgraphError


def test_unsupported_numpy_function_names_op_and_line():
    with pytest.raises(OpgraphError, match=r"test_bad_input\.py:\d+: NumPy function 'floor_divide' is not supported"):
        od.evaluate(lambda x: np.floor_divide(x, 2), od.Normal(0, 1))


def test_unsupported_graph_op_names_op_and_node():
    from opgraph.dcg.api import _evaluate_graph
    from opgraph.graph import GraphBuilder

    b = GraphBuilder()
    x = b.input("x")
    g = b.build([b.add("softmax", [b.add("exp", [x])])])
    with pytest.raises(OpgraphError, match=r"node 2 \(softmax\).*op 'softmax' is not supported"):
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


@pytest.mark.parametrize("fn", [lambda x: math.sin(x), lambda x: math.exp(x) + 1])
def test_math_function_on_a_random_input_says_use_numpy(fn):
    with pytest.raises(OpgraphError, match=r"test_bad_input\.py:\d+: .*use the NumPy ufunc instead \(np\.sin"):
        od.evaluate(fn, od.Normal(0, 1))


def test_grid_that_cannot_fit_gives_the_size():
    with pytest.raises(OpgraphError, match=r"needs about [\d.]+ GB of memory, more than the limit"):
        od.evaluate(lambda x, y: x * y, od.Normal(0, 1), od.Normal(0, 1), atoms=2**16, max_joint=2**40)
    with pytest.raises(OpgraphError, match=r"max_memory=1000000: the grid of node \d+ \(mul\).*4294967296 elements"):
        od.evaluate(
            lambda x, y: x * y, od.Normal(0, 1), od.Normal(0, 1), atoms=2**16, max_joint=2**40, max_memory=10**6
        )


def test_unreachable_target_gives_best_bound_and_what_limits_it():
    with pytest.warns(od.TargetNotMetWarning) as rec:
        r = od.evaluate(lambda x, y: x * y, od.Uniform(0, 1), od.Uniform(1, 3), target_w1=1e-7, max_joint=2**12)
    msg = str(rec[0].message)
    assert r.info["target_met"] is False and r.info["target_unmet"] == msg
    best = float(re.search(r"best bound ([\d.e+-]+)", msg).group(1))
    assert best == pytest.approx(r.w1_bound, rel=1e-2)
    assert "target_w1=1e-07 not reached" in msg and "max_joint" in msg
    # The dominant terms are named, largest first, with their shares of the bound (which input dominates depends
    # on the certificate that won: first-order coupling puts y (range 2) first, the semi-discrete one x).
    terms = re.findall(r"input (\w) \(\d+ atoms\) [\d.e+-]+ \((\d+)%\)", msg)
    shares = [int(p) for _, p in terms]
    assert terms and {t for t, _ in terms} <= {"x", "y"} and shares == sorted(shares, reverse=True)
    assert shares[0] > 50


def test_unreachable_target_on_the_qmc_fallback_says_there_is_no_bound():
    def f(x, y, z):
        return x * y + y * z + z * x

    u = od.Uniform(0, 1)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        od.evaluate(f, u, u, u, max_joint=4, target_w1=1e-2)  # not even 2 atoms per input fit
    msgs = [str(w.message) for w in rec if issubclass(w.category, od.TargetNotMetWarning)]
    assert len(msgs) == 1 and "no certified bound" in msgs[0] and "Raise max_joint" in msgs[0]
