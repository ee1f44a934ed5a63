"""The fixed-atoms allowance (:mod:`opgraph.dcg.fixedbudget`): one table the four fixed-atoms guards ask."""

from __future__ import annotations

import pytest

from opgraph.dcg import boxlinear, fixedbudget, longmix, roundbudget, subslope, tailsub


def test_entries_keep_the_budgets_of_the_four_guards():
    assert fixedbudget.SECONDS == {"box_linear": 5.0, "sub_slope": 12.0, "long_mixture": 20.0, "tail_sub": 4.0}
    assert fixedbudget.allows("box_linear", 5.0) and not fixedbudget.allows("box_linear", 5.0 + 1e-9)
    assert fixedbudget.allowance("sub_slope") == 12.0


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(KeyError, match="box_linear"):
        fixedbudget.allows("mixture", 1.0)


@pytest.mark.parametrize(
    ("kind", "decides"),
    [
        ("box_linear", lambda: boxlinear.within_fixed_budget(8**3, 3)),
        ("sub_slope", lambda: subslope.allowance(512, 39) > 1),
        ("long_mixture", lambda: longmix.runs(64, 5000, 3)),
        ("tail_sub", lambda: tailsub.seconds_allowed() > 0),
    ],
)
def test_each_guard_asks_its_entry(monkeypatch, kind, decides):
    assert roundbudget.current() is None  # a fixed-atoms call: no time budget
    assert decides()
    monkeypatch.setitem(fixedbudget.SECONDS, kind, 0.0)
    assert not decides()
    monkeypatch.setitem(fixedbudget.SECONDS, kind, 1e9)
    assert decides()
