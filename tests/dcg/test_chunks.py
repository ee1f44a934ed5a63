"""Chunked evaluation (opgraph.dcg.chunks): same results as one piece, bounded memory, every executor."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import opgraph.dcg as od
from opgraph.dcg import chunks, switches
from opgraph.dcg.api import _quantize_all, _rules
from opgraph.dcg.distributions import as_distribution
from opgraph.dcg.engine import evaluate_output, prepare, restrict
from opgraph.dcg.errors import DistError
from opgraph.graph import trace


@pytest.fixture(autouse=True)
def _point_mass_answers():
    """Chunked grids keep the point-mass answer (no box-linear mixture there): compare with the same unchunked."""
    with switches.scope({"box_linear": False}):
        yield


N, U = od.Normal, od.Uniform


@pytest.fixture(autouse=True)
def _no_semi_discrete():
    """The chunked path has no semi-discrete output certificate (it needs the core's whole grid): compare the rest."""
    from opgraph.dcg import engine

    tok = engine.SEMI_DISCRETE.set(False)
    yield
    engine.SEMI_DISCRETE.reset(tok)


# name -> (fn, inputs, atoms, extra evaluate() arguments)
CASES = {
    "two inputs, shared x": (lambda x, y: x * y + np.sin(x), (N(0, 1), U(0, 1)), 96, {}),
    "three inputs, law-level": (lambda x, y, z: x * y + z, (N(0, 1), N(2, 1), U(0, 1)), 24, {}),
    "three inputs, shared, quotient": (lambda x, y, z: x / (y + z) + x, (U(1, 2), U(1, 2), U(1, 3)), 24, {}),
    "four inputs, shared": (
        lambda x, y, z, w: x * y + z * w + x * z,
        (U(1, 2), N(0, 1), U(1, 3), U(0, 1)),
        10,
        {},
    ),
    "compression upstream": (
        lambda x, y, z: np.exp(x * y) * z + z,
        (U(0, 1), U(0, 1), N(1, 0.5)),
        40,
        {"max_joint": 2500, "compress_atoms": 50},
    ),
}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b)) or a == b


def _assert_same(a: od.DistResult, b: od.DistResult) -> None:
    assert np.allclose(a.atoms, b.atoms, rtol=1e-12, atol=0)
    assert np.allclose(a.weights, b.weights, rtol=1e-12, atol=0)
    assert _close(a.w1_bound, b.w1_bound)
    assert set(a.bound_terms) == set(b.bound_terms)
    for key, v in a.bound_terms.items():
        assert _close(v, b.bound_terms[key]), key
    for key in ("bound_method", "cellwise_bound", "path_bound", "law_level_bound", "joint_atoms"):
        va, vb = a.info[key], b.info[key]
        assert va == vb if isinstance(va, str | int) else _close(va, vb), key
    assert a.support == b.support
    assert a.cells is not None and b.cells is not None
    assert a.cells.lo.shape == b.cells.lo.shape
    assert np.array_equal(a.cells.lo, b.cells.lo) and np.array_equal(a.cells.hi, b.cells.hi)
    for wa, wb in zip(a.cells.weights, b.cells.weights, strict=True):
        assert np.array_equal(wa, wb)
    assert a.cells.labels == b.cells.labels
    ba, bb = a.cdf_band(), b.cdf_band()
    assert np.array_equal(ba.up_x, bb.up_x) and np.allclose(ba.up_p, bb.up_p, rtol=1e-12, atol=1e-15)


def _unchunked_peak(fn, ins, atoms, kw) -> tuple[od.DistResult, int]:
    tracemalloc.start()
    try:
        r = od.evaluate(fn, *ins, atoms=atoms, **kw)
        return r, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", list(CASES))
def test_chunked_equals_unchunked(name: str) -> None:
    fn, ins, atoms, kw = CASES[name]
    whole = od.evaluate(fn, *ins, atoms=atoms, **kw)
    est = od.evaluate(fn, *ins, atoms=atoms, max_memory=10**12, **kw).info["chunks"]["estimated_peak_bytes"]
    # The compression's own grid (x, y) is not split, so that case only saves part of its peak.
    frac = 0.9 if name == "compression upstream" else 0.5
    chunked = od.evaluate(fn, *ins, atoms=atoms, max_memory=int(est * frac), **kw)
    info = chunked.info["chunks"]
    assert info["count"] > 1, info
    assert info["passes"] >= 2
    if name == "compression upstream":
        assert whole.info["compressions"] and info["split_inputs"] == ["z"]  # x, y feed the compression
    _assert_same(whole, chunked)
    assert "chunks" not in whole.info


def test_bound_methods_covered() -> None:
    """The cases above exercise each way the final bound is chosen (so each is checked under chunking)."""
    methods = {od.evaluate(fn, *ins, atoms=atoms, **kw).info["bound_method"] for fn, ins, atoms, kw in CASES.values()}
    assert {"cellwise", "law-level"} <= methods


def test_peak_memory_within_budget_unchunked_over() -> None:
    fn, ins, atoms = (lambda x, y, z: x * y + z), (N(0, 1), N(2, 1), U(0, 1)), 64  # 262144 cells
    whole, peak_whole = _unchunked_peak(fn, ins, atoms, {})
    budget = int(peak_whole * 0.6)
    tracemalloc.start()
    try:
        chunked = od.evaluate(fn, *ins, atoms=atoms, max_memory=budget)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert chunked.info["chunks"]["count"] > 1
    assert peak <= budget < peak_whole, (peak, budget, peak_whole)
    assert chunked.info["chunks"]["estimated_peak_bytes"] <= budget
    _assert_same(whole, chunked)


def test_multi_axis_split_and_explicit_slabs() -> None:
    """A budget that one-cell slabs of the first axis do not meet splits the next axis too."""
    fn, ins = (lambda x, y, z: x / (y + z) + x), (U(1, 2), U(1, 2), U(1, 3))
    names = ["x", "y", "z"]
    dists = {n: as_distribution(d, n) for n, d in zip(names, ins, strict=True)}
    graph = prepare(trace(fn, *names))
    quantized, labels = _quantize_all(dists, dict.fromkeys(names, 20), "auto")
    out = graph.outputs[0]
    sub, o = restrict(graph, out)
    big = chunks.plan_chunks(sub, o, quantized, set(), 1024, 10**9)
    assert big.axes == ()
    engine_one_cell = chunks.BYTES_PER_ATOM * 60 + chunks.bytes_per_grid_element(3) * 20 * 20
    result = chunks.RESULT_BYTES_PER_ELEMENT * 20**3
    plan = chunks.plan_chunks(sub, o, quantized, set(), 1024, result + engine_one_cell // 3)
    assert len(plan.axes) == 2 and len(plan.slabs) > 20, plan.axes
    kw = {"max_joint": 2**20, "compress_atoms": 1024, "qmc_points": 1024, "seed": 0, "rules": _rules()}
    ref = evaluate_output(graph, out, quantized, labels, dists, **kw)
    got = chunks.evaluate_output_chunked(graph, out, quantized, labels, dists, slabs=plan, **kw)
    assert got.info["chunks"]["count"] == len(plan.slabs)
    assert np.allclose(ref.atoms, got.atoms, rtol=1e-12, atol=0)
    assert _close(ref.w1_bound, got.w1_bound)
    assert np.array_equal(ref.cells.lo, got.cells.lo) and np.array_equal(ref.cells.hi, got.cells.hi)


def test_grid_that_cannot_fit_names_bytes_and_limit() -> None:
    with pytest.raises(DistError) as info:
        od.evaluate(lambda x, y: x * y, U(0, 1), U(0, 1), atoms=512, max_memory=10**6)
    msg = str(info.value)
    assert "max_memory=1000000" in msg and "bytes" in msg and "raise max_memory" in msg
    needed = int(msg.split("needs about ")[1].split(" bytes")[0])
    assert needed > 10**6
    assert needed >= chunks.RESULT_BYTES_PER_ELEMENT * 512 * 512


def test_small_grid_is_not_chunked() -> None:
    r = od.evaluate(lambda x, y: x * y, U(0, 1), U(0, 1), atoms=16, max_memory=10**9)
    assert r.info["chunks"]["count"] == 1


def _executor_case():
    fn, ins, atoms, kw = CASES["three inputs, shared, quotient"]
    return fn, ins, atoms, kw


def test_process_executor_same_floats() -> None:
    fn, ins, atoms, kw = _executor_case()
    budget = 20**3 * (chunks.RESULT_BYTES_PER_ELEMENT + 100)
    serial = od.evaluate(fn, *ins, atoms=20, max_memory=budget, **kw)
    proc = od.evaluate(fn, *ins, atoms=20, max_memory=budget, executor="process", **kw)
    assert serial.info["chunks"]["count"] > 1
    assert np.array_equal(serial.atoms, proc.atoms) and np.array_equal(serial.weights, proc.weights)
    assert serial.w1_bound == proc.w1_bound and serial.bound_terms == proc.bound_terms
    assert np.array_equal(serial.cells.lo, proc.cells.lo)


def test_dask_local_cluster_same_floats() -> None:
    distributed = pytest.importorskip("dask.distributed")
    fn, ins, atoms, kw = _executor_case()
    budget = 20**3 * (chunks.RESULT_BYTES_PER_ELEMENT + 100)
    serial = od.evaluate(fn, *ins, atoms=20, max_memory=budget, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://", dashboard_address=None
        ) as cluster:
            address = cluster.scheduler_address.replace("tcp://", "dask://")
            remote = od.evaluate(fn, *ins, atoms=20, max_memory=budget, executor=address, **kw)
    assert serial.info["chunks"]["count"] > 1
    assert np.array_equal(serial.atoms, remote.atoms) and np.array_equal(serial.weights, remote.weights)
    assert serial.w1_bound == remote.w1_bound and serial.bound_terms == remote.bound_terms
    assert np.array_equal(serial.cells.hi, remote.cells.hi)


def test_progress_bar_over_chunks(capsys: pytest.CaptureFixture[str]) -> None:
    fn, ins, atoms, kw = _executor_case()
    budget = 20**3 * (chunks.RESULT_BYTES_PER_ELEMENT + 100)
    od.evaluate(fn, *ins, atoms=20, max_memory=budget, progress=True, **kw)
    assert "dcg chunks, pass 2" in capsys.readouterr().err
    od.evaluate(fn, *ins, atoms=20, max_memory=budget, **kw)  # default: off when stderr is not a terminal
    assert "dcg chunks" not in capsys.readouterr().err


def test_cli_max_memory_and_executor(tmp_path) -> None:
    from click.testing import CliRunner

    from opgraph.dcg.cli import group, parse_bytes

    assert parse_bytes("500MB") == 5 * 10**8 and parse_bytes("2GiB") == 2 * 2**30 and parse_bytes("123") == 123
    args = ["x*y + x", "--var", "x=uniform:1,2", "--var", "y=normal:0,1", "--atoms", "200", "--plot", ""]
    json_path = tmp_path / "r.json"
    res = CliRunner().invoke(
        group, [*args, "--max-memory", "5MB", "--executor", "serial", "--json", str(json_path)], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    import json

    saved = json.loads(json_path.read_text())
    assert saved["info"]["chunks"]["count"] > 1
    bad = CliRunner().invoke(group, [*args, "--max-memory", "lots"])
    assert bad.exit_code != 0 and "--max-memory" in str(bad.exception or bad.output)


def test_progress_bar_over_nodes_of_one_piece(capsys: pytest.CaptureFixture[str]) -> None:
    """An unchunked evaluation shows a bar over its nodes when asked (off by default when not on a terminal)."""
    fn, ins, atoms, kw = CASES["three inputs, shared, quotient"]
    od.evaluate(fn, *ins, atoms=atoms, progress=True, **kw)
    assert "dcg nodes" in capsys.readouterr().err
    od.evaluate(fn, *ins, atoms=atoms, **kw)
    od.evaluate(fn, *ins, atoms=atoms, progress=False, **kw)
    assert "dcg nodes" not in capsys.readouterr().err


def test_max_memory_replaces_the_global_memory_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a budget a grid over the machine's limit is refused up front; with one it is evaluated in chunks."""
    monkeypatch.setenv("OPGRAPH_MAX_MEMORY_GB", "0.01")
    fn, ins = (lambda x, y: x * y + x), (U(1, 2), N(0, 1))
    with pytest.raises(DistError, match="max-memory"):
        od.evaluate(fn, *ins, atoms=512)
    r = od.evaluate(fn, *ins, atoms=512, max_memory=30 * 10**6)
    assert r.info["chunks"]["count"] > 1 and r.info["chunks"]["estimated_peak_bytes"] <= 30 * 10**6


def test_target_w1_refinement_stays_within_max_memory() -> None:
    """The refinement's grids are capped so that their results fit the budget (no error mid-refinement)."""
    fn, ins = (lambda x, y, z: x * y + z), (U(1, 2), U(1, 2), U(0, 1))
    budget = 30 * 10**6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, *ins, target_w1=1e-4, max_memory=budget)
    assert r.info["joint_atoms"] * chunks.RESULT_BYTES_PER_ELEMENT <= budget // 2
    assert r.w1_bound > 0
