"""The time budget of ``target_w1`` calls (``max_seconds``, :mod:`opgraph.dcg.roundbudget`).

No timing is asserted: the budget's decisions are tested with a fixed clock or with budgets so small that the plan
(the number of rounds) is known, and the soundness of the answers against Sobol references.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import qmc

from opgraph import dcg as od
from opgraph.dcg import roundbudget as rb
from opgraph.dcg.refine import COMPRESS, Split
from opgraph.dcg.switches import scope
from opgraph.dcg.w1 import w1_discrete


class _Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_predict_follows_the_rounds():
    clock = _Clock()
    b = rb.RoundBudget(10.0, clock=clock)
    assert b.predict(1000.0) == 0.0 and b.affordable(1e12)  # nothing measured yet
    b.record(1000.0, 1.0)
    # one round: the power-law floor s (w / w0) ** B_MIN
    assert b.predict(16000.0) == pytest.approx(16**rb.B_MIN)
    b.record(16000.0, 4.0)
    # two rounds: the straight line through them (slope 3 s / 15000 units) where it is above the floor
    line = 4.0 + 3.0 / 15000.0 * (256000.0 - 16000.0)
    assert b.predict(256000.0) == pytest.approx(max(line, 4.0 * 16**rb.B_MIN))
    assert b.predict(None) == math.inf
    clock.t += 9.0  # 1 s left
    assert b.left() == pytest.approx(1.0)
    assert b.affordable(16000.0 / 8) is (rb.SAFETY * b.predict(2000.0) <= 1.0)
    assert not b.affordable(256000.0)
    assert "max_seconds=10" in b.describe(256000.0)


def test_fill_by_terms_doubles_the_largest_terms_first():
    cur = {"a": 16, "b": 16, "c": 16}
    terms = {"a": 1.0, "b": 3.0, "c": 2.0}
    # room for two doublings in all (product <= 16**3 * 4)
    out = rb.fill_by_terms(cur, cur, {"a": 64, "b": 64, "c": 64}, terms, lambda a: math.prod(a.values()) <= 16**3 * 4)
    assert out == {"a": 16, "b": 32, "c": 32}
    # never beyond the proposal
    out = rb.fill_by_terms(cur, cur, {"a": 16, "b": 16, "c": 32}, terms, lambda a: True)
    assert out == {"a": 16, "b": 16, "c": 32}


def test_predicted_bound_and_affine_rule():
    terms = {"x": 0.4, "y": 0.1, COMPRESS: 0.2}
    now = {"x": 8, "y": 8, COMPRESS: 256}
    pred = rb.predicted_bound(terms, 0.05, now, {"x": 16, "y": 8, COMPRESS: 512}, lambda v: 1.0)
    assert pred == pytest.approx(0.05 + 0.2 + 0.1 + 0.1)
    assert rb.affine_pays(0.9, 1.0) and not rb.affine_pays(1.0, 1.0) and not rb.affine_pays(1.0, 0.9)
    assert not rb.affine_pays(math.inf, 1.0)


class _Alloc:
    """An allocator's target and term orders, as :func:`opgraph.dcg.roundbudget.plan_step` reads them."""

    target = 1e-6

    @staticmethod
    def order(v):
        return 1.0


def _plan(budget, terms, held_back=0.0):
    """The plan from 8 x 8 atoms towards 64 x 64 (work 64 per box; memory never binds; no proportional shrink)."""
    cur = {"x": 8, "y": 8}
    return rb.plan_step(
        budget,
        _Alloc(),
        Split(terms, 0.0),
        cur,
        256,
        {"x": 64, "y": 64},
        256,
        {"x": 64, "y": 64},
        1.0,
        lambda a, c: True,
        lambda a, c: float(math.prod(a.values())) * 64,
        lambda a, c, fits: (dict(cur), 256),
        str,
        held_back=held_back,
    )


def test_plan_step_stops_where_no_round_fits_the_time():
    clock = _Clock()
    b = rb.RoundBudget(10.0, clock=clock)
    b.record(4096.0, 2.0)
    clock.t += 9.0
    atoms, comp, why = _plan(b, {"x": 0.5, "y": 0.5})
    assert atoms is None and comp == 256
    assert "time budget" in why and "max_seconds=10" in why


def test_plan_step_holds_seconds_back_without_changing_the_budget():
    """``held_back`` plans as a budget ``held_back`` seconds smaller would, and leaves the budget as it was."""
    clock = _Clock()

    def plan(budget, held_back=0.0):
        return _plan(budget, {"x": 0.5, "y": 0.25}, held_back)

    def budget(max_seconds):
        b = rb.RoundBudget(max_seconds, clock=clock)
        b.record(4096.0, 0.5)
        return b

    free = plan(budget(10.0))
    assert free[0] is not None and math.prod(free[0].values()) > 64  # a larger round fits the whole budget
    b = budget(10.0)
    for held in (5.0, 9.0, 9.5):
        got = plan(b, held)
        assert got == plan(budget(10.0 - held))  # the same plan as the smaller budget's, message included
        assert b.max_seconds == 10.0  # the budget itself is untouched
    assert math.prod(plan(b, 5.0)[0].values()) < math.prod(free[0].values())
    stopped = plan(b, 9.5)  # 0.5 s left: no larger round fits
    assert stopped[0] is None and "max_seconds=0.5" in stopped[2]
    assert b.left(9.5) == pytest.approx(0.5) and b.left() == pytest.approx(10.0)
    assert b.affordable(8192.0) and not b.affordable(8192.0, 9.5)


@pytest.mark.parametrize("bad", [0, -1.0, "10", True])
def test_max_seconds_is_checked(bad):
    with pytest.raises(od.DistError, match="max_seconds"):
        od.evaluate(lambda x: x * x, od.Uniform(0, 1), target_w1=1e-3, max_seconds=bad)


def test_a_spent_budget_stops_after_the_first_round(monkeypatch):
    """With a budget already spent after the first round, the call returns it, certified, naming the bound."""
    clock = _Clock()

    def ticking() -> float:  # every reading 1 s later: the first round alone outlasts the budget
        clock.t += 1.0
        return clock.t

    monkeypatch.setattr(rb, "_clock", ticking)
    # target 1e-5: max_joint's grids could reach it (at 1e-7 the compression cap binds first and the message names
    # max_joint), so the spent time budget is what stops the call
    with scope({"disjoint": False}), pytest.warns(od.TargetNotMetWarning) as rec:
        r = od.evaluate(
            lambda x, y: x * y + np.sin(x), od.Uniform(0, 1), od.Uniform(1, 2), target_w1=1e-5, max_seconds=1e-9
        )
    assert r.certified and math.isfinite(r.w1_bound)
    assert len(r.info["refinement"]) == 1 and r.info["kept_round"] == 0
    msg = str(rec[0].message)
    assert f"best bound {r.w1_bound:.3g}" in msg and "max_seconds" in msg and "Raise max_seconds" in msg
    # without a budget the call refines further
    with scope({"disjoint": False}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = od.evaluate(
            lambda x, y: x * y + np.sin(x), od.Uniform(0, 1), od.Uniform(1, 2), target_w1=1e-7, max_seconds=None
        )
    assert len(r2.info["refinement"]) > 1 and r2.w1_bound < r.w1_bound


def _mlp(n_in: int, hidden: int, seed: int = 1):
    """A tanh MLP with the weights of ``benchmarks/dcg/uq.py``'s ``mlp_case`` (same seed, same draws)."""
    g = np.random.default_rng(seed)
    w1 = g.normal(0, 1 / math.sqrt(n_in), (hidden, n_in))
    b1 = g.normal(0, 0.1, hidden)
    w2 = g.normal(0, 1 / math.sqrt(hidden), hidden)
    b2 = float(g.normal(0, 0.1))

    def fn(*x):
        out = b2
        for j in range(hidden):
            pre = float(b1[j])
            for i in range(n_in):
                pre = pre + float(w1[j, i]) * x[i]
            out = out + float(w2[j]) * np.tanh(pre)
        return out

    return fn


def _sobol_reference(fn, n_in: int, log2: int = 16, scrambles: int = 4):
    """Pooled scrambled-Sobol sample of ``fn`` on N(0, 1) inputs and its W1 error estimate (scramble spread)."""
    from scipy.stats import norm

    parts = []
    for s in range(scrambles):
        u = qmc.Sobol(n_in, scramble=True, seed=s).random_base2(log2)
        parts.append(np.sort(np.asarray(fn(*norm.ppf(u).T), dtype=float)))
    pooled = np.sort(np.concatenate(parts))
    spread = max(
        w1_discrete(p, np.full(p.size, 1 / p.size), pooled, np.full(pooled.size, 1 / pooled.size)) for p in parts
    )
    return pooled, spread


def test_mlp_target_is_sound_and_probe_drops_affine(monkeypatch):
    """A 2-6-1 tanh MLP with a frozen clock: the probe turns affine forms off, and the answer covers a Sobol reference."""
    monkeypatch.setattr(rb, "_clock", _Clock())  # every round takes 0 s: no time stop, the probe always runs
    fn = _mlp(2, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, *[od.Normal(0, 1)] * 2, target_w1=2e-3)
    hist = r.info["refinement"]
    probe = hist[0]["affine_probe"]
    assert probe["without"] >= probe["with_affine"] * (1 - 1e-12) or probe["later_rounds_affine"]
    if not probe["later_rounds_affine"]:
        assert all(h.get("affine") is False for h in hist[1:])
    assert all(
        b1 <= b0 * (1 + 1e-12)
        for b0, b1 in zip([h["w1_bound"] for h in hist], [h["w1_bound"] for h in hist[1:]], strict=False)
    )
    ref, err = _sobol_reference(fn, 2)
    true = w1_discrete(r.atoms, r.weights, ref, np.full(ref.size, 1 / ref.size))
    assert r.w1_bound + err >= true


def test_uq_mlp_within_budget_is_sound():
    """The 4-16-1 MLP of benchmarks/dcg/uq.py (target 1e-2 std, out of reach): the best certified answer, sound."""
    fn = _mlp(4, 16)
    with pytest.warns(od.TargetNotMetWarning, match=r"best bound"):
        r = od.evaluate(fn, *[od.Normal(0, 1)] * 4, target_w1=1e-2 * 0.2064, max_seconds=4.0)
    assert r.certified and r.info["best_bound"] == r.w1_bound
    ref, err = _sobol_reference(fn, 4)
    true = w1_discrete(r.atoms, r.weights, ref, np.full(ref.size, 1 / ref.size))
    assert r.w1_bound + err >= true


def test_cli_max_seconds():
    from click.testing import CliRunner

    from opgraph.dcg.cli import group

    base = ["x*y + sin(x)", "--plot", "", "--var", "x=uniform:0,1", "--var", "y=uniform:1,2", "--target-w1", "1e-9"]
    res = CliRunner().invoke(group, [*base, "--max-seconds", "0.5"])
    assert res.exit_code == 0, res.output
    assert "not reached" in res.output and "best bound" in res.output
    res = CliRunner().invoke(group, [*base, "--max-seconds", "soon"])
    assert res.exit_code != 0 and "--max-seconds" in (res.output + str(res.exception))
    res = CliRunner().invoke(group, [*base, "--max-seconds", "0"])
    assert res.exit_code != 0 and "max_seconds" in (res.output + str(res.exception))


def test_random_variable_expressions_take_max_seconds(monkeypatch):
    clock = _Clock()

    def ticking() -> float:
        clock.t += 1.0
        return clock.t

    monkeypatch.setattr(rb, "_clock", ticking)
    x, y = od.Uniform(0, 1), od.Uniform(1, 2)
    with scope({"disjoint": False}), pytest.warns(od.TargetNotMetWarning, match="max_seconds"):
        r = (x * y + x).evaluate(target_w1=1e-4, max_seconds=0.5)
    assert len(r.info["refinement"]) == 1
    with pytest.raises(od.DistError, match="max_seconds"):
        (x * y).evaluate(target_w1=1e-3, max_seconds=-1)
