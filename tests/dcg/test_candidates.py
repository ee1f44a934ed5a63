"""The fixed-atoms candidate loop (``opgraph.dcg.candidates``): trials merged in order, never a worse bound."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from opgraph import dcg as od
from opgraph.dcg import candidates
from opgraph.dcg.candidates import Candidate, Kept
from opgraph.dcg.switches import scope


@dataclasses.dataclass(frozen=True)
class _R:
    w1_bound: float
    certified: bool = True
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def _kept(*bounds: float, certified: bool = True, own: bool = True) -> Kept:
    rs = [_R(b, certified, {"tag": b}) for b in bounds]
    return Kept(rs, {}, {}, 64, {"x": 4}, [own] * len(rs))


def test_whole_keeps_all_outputs_or_none():
    base = _kept(1.0, 2.0)
    assert candidates.keep_whole(base, _kept(0.5, 1.9)).worst == 1.9
    assert candidates.keep_whole(base, _kept(0.1, 2.5)) is base  # the largest bound decides
    assert candidates.keep_whole(base, _kept(0.1, 0.1, certified=False)) is base


def test_per_output_keeps_the_smaller_and_records_both():
    base = _kept(1.0, 2.0)
    base.results[0].info["atoms_reduced"] = "mine"
    got = candidates.keep_per_output(
        base, _kept(0.5, 3.0, own=False), lambda r, s, use: {"used": use}, "note", keep_info=("atoms_reduced",)
    )
    assert [r.w1_bound for r in got.results] == [0.5, 2.0]
    assert got.results[0].info == {"tag": 0.5, "note": {"used": True}, "atoms_reduced": "mine"}
    assert got.results[1].info == {"tag": 2.0, "note": {"used": False}}
    assert got.own == [False, True] and got.quantized is None  # a kept result of another call: its grid is gone


def test_best_of_runs_wanted_candidates_in_order_and_reads_what_earlier_ones_kept():
    seen = []

    def cand(name: str, bound: float, wanted: bool = True) -> Candidate:
        def trials(kept: Kept):
            seen.append((name, kept.worst))
            yield lambda: _kept(bound)

        return Candidate(name, lambda k: wanted, trials, candidates.keep_whole)

    out = candidates.best_of(_kept(1.0), [cand("a", 0.7), cand("skip", 0.1, False), cand("b", 0.9), cand("c", 0.2)])
    assert out.worst == 0.2
    assert seen == [("a", 1.0), ("b", 0.7), ("c", 0.7)]


def test_the_default_call_records_the_candidates_it_ran():
    """A reduced grid of a program with a whole-grid certificate: the full-grid alternative is a candidate."""

    def fn(x, y, z):
        return np.sin(3 * x) * y + 0.5 * y * z + z * np.exp(x)

    u = od.Uniform(0, 1)
    with warnings.catch_warnings(), scope({"box_linear": False}):
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, u, u, u, atoms=32, max_joint=2000, progress=False)
    assert r.certified and r.info["atoms_reduced"]["requested"] == {"x": 32, "y": 32, "z": 32}
    assert r.info["seconds_total"] > 0
