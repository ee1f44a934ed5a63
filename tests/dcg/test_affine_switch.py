"""The ``affine`` switch of ``od.evaluate`` / ``evaluate_many`` / ``evaluate_rv`` / ``opgraph dcg``: it reaches the
workers of every executor (a ContextVar set in the caller does not travel to process or Dask workers by itself)."""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import opgraph.dcg as od
from opgraph.dcg import affine as A
from opgraph.dcg import switches
from opgraph.dcg.errors import DistError

U = od.Uniform
# The piston cycle time (VLSE), whose bound the affine forms shrink by about a third at 3 atoms per input.
PISTON_EXPR = (
    "2 * 3.141592653589793 * sqrt(m / (k + s**2 * p0 * v0 / t0 * ta / "
    "(s / (2 * k) * (sqrt((p0 * s + 19.62 * m - k * v0 / s)**2 + 4 * k * p0 * v0 / t0 * ta)"
    " - (p0 * s + 19.62 * m - k * v0 / s)))**2))"
)
PISTON_VARS = {
    "m": (30, 60),
    "s": (0.005, 0.020),
    "v0": (0.002, 0.010),
    "k": (1000, 5000),
    "p0": (90000, 110000),
    "ta": (290, 296),
    "t0": (340, 360),
}
ATOMS = 3


def piston(m, s, v0, k, p0, ta, t0):
    """Piston cycle time (top level: picklable for the process executor)."""
    a = p0 * s + 19.62 * m - k * v0 / s
    vv = s / (2 * k) * (np.sqrt(a**2 + 4 * k * p0 * v0 / t0 * ta) - a)
    return 2 * np.pi * np.sqrt(m / (k + s**2 * p0 * v0 / t0 * ta / vv**2))


def worker_affine() -> bool:
    """The affine switch as a worker sees it."""
    return A.ENABLED.get()


LAWS = [U(lo, hi) for lo, hi in PISTON_VARS.values()]


@pytest.fixture(scope="module")
def budget() -> int:
    """A memory budget that splits the piston grid into a few chunks."""
    est = od.evaluate(piston, *LAWS, atoms=ATOMS, max_memory=10**12).info["chunks"]["estimated_peak_bytes"]
    return int(est * 0.6)


@pytest.fixture(scope="module")
def in_process(budget: int) -> dict[bool, od.DistResult]:
    """Serial chunked runs with ``opgraph.dcg.affine.ENABLED`` set in this process (the reference)."""
    out = {}
    for on in (True, False):
        tok = A.ENABLED.set(on)
        try:
            out[on] = od.evaluate(piston, *LAWS, atoms=ATOMS, max_memory=budget)
        finally:
            A.ENABLED.reset(tok)
    assert out[True].info["chunks"]["count"] > 1
    # The case is one where the affine forms matter.
    assert out[True].w1_bound < 0.8 * out[False].w1_bound
    return out


@pytest.fixture(scope="module")
def spawn_pool() -> Iterator[ProcessPoolExecutor]:
    """Workers started before the caller changes ENABLED, by ``spawn`` (the default start method on macOS and, as
    ``forkserver``, on Python 3.14): nothing of the caller's context reaches them unless the task carries it."""
    root = str(Path(__file__).resolve().parents[2])  # so that the workers can import this module's functions
    sys.path.insert(0, root)
    pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    try:
        assert pool.submit(worker_affine).result() is True
        yield pool
    finally:
        pool.shutdown(wait=True)
        sys.path.remove(root)


def _same(a: od.DistResult, b: od.DistResult) -> None:
    assert a.w1_bound == b.w1_bound and a.bound_terms == b.bound_terms
    assert np.array_equal(a.atoms, b.atoms) and np.array_equal(a.weights, b.weights)


def test_process_executor_follows_affine_keyword(budget: int, in_process: dict[bool, od.DistResult]) -> None:
    off = od.evaluate(piston, *LAWS, atoms=ATOMS, max_memory=budget, executor="process", affine=False)
    on = od.evaluate(piston, *LAWS, atoms=ATOMS, max_memory=budget, executor="process", affine=True)
    assert off.info["chunks"]["count"] > 1
    _same(off, in_process[False])
    _same(on, in_process[True])
    assert on.w1_bound < 0.8 * off.w1_bound


def test_process_executor_follows_the_callers_contextvar(
    budget: int, in_process: dict[bool, od.DistResult], spawn_pool: ProcessPoolExecutor
) -> None:
    """``affine=None`` (the default) takes the caller's ENABLED into the workers, not the workers' default."""
    tok = A.ENABLED.set(False)
    try:
        off = od.evaluate(piston, *LAWS, atoms=ATOMS, max_memory=budget, executor=spawn_pool)
    finally:
        A.ENABLED.reset(tok)
    _same(off, in_process[False])
    on = od.evaluate(piston, *LAWS, atoms=ATOMS, max_memory=budget, executor=spawn_pool)
    _same(on, in_process[True])


def test_keyword_is_scoped_to_the_call() -> None:
    od.evaluate(piston, *LAWS, atoms=2, affine=False)
    assert A.ENABLED.get() is True
    tok = A.ENABLED.set(False)
    try:
        od.evaluate(piston, *LAWS, atoms=2, affine=True)
        assert A.ENABLED.get() is False
    finally:
        A.ENABLED.reset(tok)


@pytest.mark.parametrize("sub_slope", [False, True])
def test_unchunked_in_process_matches_the_contextvar(sub_slope: bool) -> None:
    with switches.scope({"sub_slope": sub_slope}):
        tok = A.ENABLED.set(False)
        try:
            ref = od.evaluate(piston, *LAWS, atoms=ATOMS)
        finally:
            A.ENABLED.reset(tok)
        off = od.evaluate(piston, *LAWS, atoms=ATOMS, affine=False)
        on = od.evaluate(piston, *LAWS, atoms=ATOMS)
    _same(off, ref)
    if not sub_slope:  # with the sub-box slope remainder the affine-off call gets it too: the gap is not the subject
        assert on.w1_bound < 0.8 * off.w1_bound


def test_dask_local_cluster_follows_affine_keyword(
    budget: int, in_process: dict[bool, od.DistResult], local_dask
) -> None:
    """Dask worker threads start from a fresh context (ENABLED's default True): the job carries the setting."""
    with local_dask(2) as address:
        off = od.evaluate(piston, *LAWS, atoms=ATOMS, max_memory=budget, executor=address, affine=False)
    assert off.info["chunks"]["count"] > 1
    _same(off, in_process[False])


def test_evaluate_many_process_workers_get_the_setting(spawn_pool: ProcessPoolExecutor) -> None:
    ref = {on: od.evaluate(piston, *LAWS, atoms=2, affine=on) for on in (True, False)}
    assert ref[True].w1_bound < ref[False].w1_bound
    many = od.evaluate_many(piston, [LAWS, LAWS], atoms=2, executor=spawn_pool, affine=False)
    assert [r.w1_bound for r in many] == [ref[False].w1_bound] * 2
    tok = A.ENABLED.set(False)
    try:  # affine omitted: the caller's ENABLED, resolved before the tasks leave
        many = od.evaluate_many(piston, [LAWS], atoms=2, executor=spawn_pool)
    finally:
        A.ENABLED.reset(tok)
    assert many[0].w1_bound == ref[False].w1_bound
    many = od.evaluate_many(piston, [LAWS], atoms=2, executor="process", affine=False)
    assert many[0].w1_bound == ref[False].w1_bound


def test_evaluate_rv_takes_affine_and_the_chunk_options(budget: int) -> None:
    rv = piston(*LAWS)  # the laws are random variables: a lazy expression
    tok = A.ENABLED.set(False)
    try:
        ref = rv.evaluate(atoms=ATOMS, max_memory=budget)
    finally:
        A.ENABLED.reset(tok)
    off = rv.evaluate(atoms=ATOMS, affine=False, max_memory=budget, executor="process")
    on = rv.evaluate(atoms=ATOMS, max_memory=budget, executor="process")
    assert off.info["chunks"]["count"] > 1
    _same(off, ref)
    assert on.w1_bound < 0.8 * off.w1_bound
    with pytest.raises(DistError, match="unknown keyword"):
        rv.evaluate(atoms=2, afine=False)


@pytest.mark.parametrize("bad", ["no", 0, 1.0])
def test_bad_affine_value_names_the_argument(bad) -> None:
    with pytest.raises(DistError, match=r"affine=.*True, False or None"):
        od.evaluate(lambda x: x * x, U(0, 1), atoms=4, affine=bad)


def test_cli_no_affine(tmp_path, budget: int, in_process: dict[bool, od.DistResult]) -> None:
    from click.testing import CliRunner

    from opgraph.dcg.cli import group

    args = [PISTON_EXPR]
    for name, (lo, hi) in PISTON_VARS.items():
        args += ["--var", f"{name}=uniform:{lo},{hi}"]
    args += ["--atoms", str(ATOMS), "--plot", "", "--max-memory", str(budget), "--executor", "process"]
    saved = {}
    for flag in ("--no-affine", "--affine"):
        path = tmp_path / f"{flag}.json"
        res = CliRunner().invoke(group, [*args, flag, "--json", str(path)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        saved[flag] = json.loads(path.read_text())
    assert saved["--no-affine"]["info"]["chunks"]["count"] > 1
    assert saved["--no-affine"]["w1_bound"] == pytest.approx(in_process[False].w1_bound, rel=1e-9)
    assert saved["--affine"]["w1_bound"] == pytest.approx(in_process[True].w1_bound, rel=1e-9)


def semi_discrete_case(x, z, c):
    """``2 Z + C X``: affine in X, so the semi-discrete certificate tightens its bound."""
    return 2.0 * z + c * x


SD_LAWS = [U(0.3, 1.3), U(0.0, 1.0), U(0.1, 1.1)]


def regroup_case(x1, z, x2):
    """x1 * x2 has an exact law only once the product is regrouped (z is used again)."""
    return x1 * z * x2 + z


REGROUP_LAWS = [od.LogNormal(0.0, 0.3), od.LogNormal(0.1, 0.2), od.LogNormal(-0.2, 0.4)]


@pytest.mark.parametrize(
    ("name", "fn", "laws", "atoms"),
    [
        ("cancel", piston, LAWS, 2),
        ("subcells", piston, LAWS, 2),
        ("semi_discrete", semi_discrete_case, SD_LAWS, 8),
        ("exact_law_regroup", regroup_case, REGROUP_LAWS, 8),
    ],
)
def test_every_engine_switch_reaches_spawned_workers(name, fn, laws, atoms, spawn_pool) -> None:
    """The caller's other engine switches (opgraph.dcg.switches) travel with evaluate_many's tasks too."""
    # the box-linear mixture answer (which would win on these cases and hide the switch) is off throughout
    with switches.scope({"box_linear": False}):
        on = od.evaluate(fn, *laws, atoms=atoms)
        with switches.scope({name: False}):
            ref = od.evaluate(fn, *laws, atoms=atoms)
            many = od.evaluate_many(fn, [laws], atoms=atoms, executor=spawn_pool)
        assert ref.w1_bound > 1.003 * on.w1_bound  # the switch matters here (cancel: 0.5 % since x**2 is a square)
        assert many[0].w1_bound == ref.w1_bound
        assert switches.capture()[name] is True  # restored after the block


def test_switches_scope_restores_and_ignores_unnamed() -> None:
    before = switches.capture()
    with switches.scope({"cancel": False}):
        now = switches.capture()
        assert now["cancel"] is False
        assert {k: v for k, v in now.items() if k != "cancel"} == {k: v for k, v in before.items() if k != "cancel"}
    assert switches.capture() == before
