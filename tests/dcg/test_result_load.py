"""``DistResult.load``: the inverse of ``save`` (``.npz`` without pickles, strict JSON with non-finite strings)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg.result import DistResult


def _same(a: DistResult, b: DistResult) -> None:
    assert np.array_equal(a.atoms, b.atoms) and np.array_equal(a.weights, b.weights)
    assert a.w1_bound == b.w1_bound or (math.isnan(a.w1_bound) and math.isnan(b.w1_bound))
    assert a.certified is b.certified
    assert a.dropped_mass == b.dropped_mass
    assert a.bound_terms == pytest.approx(b.bound_terms, rel=0, abs=0)
    assert a.support == b.support and a.name == b.name
    assert a.w1_estimate == b.w1_estimate
    for k in ("method", "atoms_per_input", "quantizers", "compress_atoms"):
        assert b.info.get(k) == a.info.get(k), k


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_round_trip_of_a_certified_result(tmp_path, suffix):
    r = od.evaluate(lambda x, y: x * y + x, od.Normal(1, 0.5), od.Uniform(0, 2), atoms=32)
    back = DistResult.load(r.save(tmp_path / f"r{suffix}"))
    _same(r, back)
    assert back.cells is None
    t = np.linspace(-2, 6, 9)
    lo, hi = back.cdf_bounds(t)  # the saved (shrunk, still certified) band
    lo0, hi0 = r.cdf_bounds(t)
    assert np.all(lo <= lo0 + 1e-12) and np.all(hi >= hi0 - 1e-12) and np.all(lo <= hi)
    again = DistResult.load(back.save(tmp_path / f"again{suffix}"))  # a loaded result saves its band again
    assert np.array_equal(again.cdf_bounds(t)[0], lo)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_round_trip_of_non_finite_and_uncertified_results(tmp_path, suffix):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unbounded = od.evaluate(lambda x: 1 / x, od.Normal(0, 1), atoms=16)  # no finite mean: bound inf
        qmc = od.evaluate(
            lambda x, y, z: x * y + y * z + z * x, *[od.Uniform(0, 1)] * 3, atoms=16, max_joint=7, qmc_points=2**10
        )
        cut = od.evaluate(lambda x: np.log(x), od.Normal(5, 1), atoms=16, truncate=1e-9)
    assert math.isinf(unbounded.w1_bound) and not qmc.certified and cut.dropped_mass > 0
    for k, r in enumerate((unbounded, qmc, cut)):
        back = DistResult.load(r.save(tmp_path / f"r{k}{suffix}"))
        _same(r, back)
        assert isinstance(back.w1_bound, float)
    if suffix == ".json":
        text = (tmp_path / f"r0{suffix}").read_text()
        assert '"Infinity"' in text and 'NaN"' not in text.replace('"NaN"', "")
        assert isinstance(DistResult.load(tmp_path / f"r1{suffix}").info["points"], int)


def test_npz_written_without_metadata_still_loads(tmp_path):
    p = tmp_path / "old.npz"
    np.savez(p, atoms=np.array([0.0, 1.0]), weights=np.array([0.25, 0.75]), w1_bound=0.1, dropped_mass=0.0)
    r = DistResult.load(p)
    assert r.certified and r.w1_bound == 0.1 and r.mean() == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("a.json", json.dumps({"atoms": [1.0], "weights": [1.0]}), "missing w1_bound, certified"),
        ("b.json", "[1, 2]", "a JSON object is expected"),
        ("c.json", "{not json", "not valid JSON"),
        ("d.json", json.dumps({"atoms": [1.0, 2.0], "weights": [1.0], "w1_bound": 0, "certified": True}), "atoms"),
    ],
)
def test_a_file_that_is_not_a_saved_result(tmp_path, name, content, needle):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(od.DistError, match=needle) as exc:
        DistResult.load(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_npz_errors_name_the_path_and_what_is_missing(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, atoms=np.array([1.0]))
    with pytest.raises(od.DistError, match=r"missing weights, w1_bound") as exc:
        DistResult.load(p)
    assert str(p) in str(exc.value)
    q = tmp_path / "obj.npz"
    np.savez(q, atoms=np.array([object()], dtype=object), weights=np.ones(1), w1_bound=0.0)
    with pytest.raises(od.DistError, match="unreadable .npz"):
        DistResult.load(q)  # never unpickled
    with pytest.raises(od.DistError, match="cannot be read"):
        DistResult.load(tmp_path / "absent.json")
