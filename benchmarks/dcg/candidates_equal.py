"""Record the fixed-atoms answers of ~20 programs under the candidate switches (refactor check, branch cand-alloc).

Usage: ``PYTHONPATH=src python benchmarks/dcg/candidates_equal.py OUT.json`` on two checkouts, then
``python benchmarks/dcg/candidates_equal.py --compare A.json B.json``. Each row holds the bound (repr, bit for bit),
the method, the atoms per input, a digest of the answer's atoms and weights, the bound terms and the provenance
entries of ``info`` (full-grid alternative, smaller request, carry, atoms reduced and its allocations).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import pathlib
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from opgraph import dcg as od
from opgraph.dcg.switches import scope

U, N, L = od.Uniform, od.Normal, od.LogNormal


def _programs() -> list[tuple[str, Any, list[Any], dict[str, Any]]]:
    """(name, fn, inputs, evaluate kwargs): 1-10 inputs; uniforms, normals, lognormals; reduced and compressed grids."""

    def wing(*x):
        s = x[0] ** 0.758 * x[1] ** 0.0035 * x[2] ** 0.6
        return 0.036 * s * (x[4] / np.cos(x[3] * np.pi / 180)) ** 0.006 + x[5] * x[6] + x[7] * x[8] ** 0.5 + x[9] * x[0]

    def piston(m, s, v0, k, p0, ta, t0):
        a = p0 * s + 19.62 * m - k * v0 / s
        v = s / (2 * k) * (np.sqrt(a**2 + 4 * k * p0 * v0 / t0 * ta) - a)
        return 2 * np.pi * np.sqrt(m / (k + s**2 * p0 * v0 / t0 * ta / v**2))

    return [
        ("exp1", lambda x: np.exp(x), [N(0, 1)], dict(atoms=64)),
        ("sin1u", lambda x: np.sin(3 * x), [U(0, 1)], dict(atoms=32)),
        ("mul2", lambda x, y: x * y, [U(0, 1), U(0, 1)], dict(atoms=32)),
        ("mul2big", lambda x, y: x * y + np.sin(x * y), [U(0, 1), U(1, 2)], dict(atoms=256)),
        ("ratio2", lambda x, y: x / (1 + y), [L(0, 0.3), N(0, 0.2)], dict(atoms=64, max_joint=1024)),
        ("w3", lambda x, y, z: np.sin(3 * x) * y + 0.5 * y * z + z * np.exp(x), [U(0, 1)] * 3, dict(atoms=16)),
        (
            "w3red",
            lambda x, y, z: np.sin(3 * x) * y + 0.5 * y * z + z * np.exp(x),
            [U(0, 1)] * 3,
            dict(atoms=32, max_joint=2000),
        ),
        (
            "w3nl",
            lambda x, y, z: x * np.exp(0.3 * y) + y * z,
            [N(0, 1), L(0, 0.2), U(0, 2)],
            dict(atoms=32, max_joint=4000),
        ),
        (
            "ishigami",
            lambda a, b, c: np.sin(a) + 7 * np.sin(b) ** 2 + 0.1 * c**4 * np.sin(a),
            [U(-np.pi, np.pi)] * 3,
            dict(atoms=32),
        ),
        (
            "ishigami_red",
            lambda a, b, c: np.sin(a) + 7 * np.sin(b) ** 2 + 0.1 * c**4 * np.sin(a),
            [U(-np.pi, np.pi)] * 3,
            dict(atoms=64, max_joint=20000),
        ),
        ("sum4", lambda a, b, c, d: a * b + c * d + a * d, [N(0, 1), U(0, 1), L(0, 0.5), U(-1, 1)], dict(atoms=8)),
        (
            "sum4red",
            lambda a, b, c, d: a * b + c * d + a * d,
            [N(0, 1), U(0, 1), L(0, 0.5), U(-1, 1)],
            dict(atoms=16, max_joint=3000),
        ),
        (
            "chain4",
            lambda a, b, c, d: np.exp(a * b) * (c + d) / (2 + np.sin(a + d)),
            [U(0, 1)] * 4,
            dict(atoms=16, compress_atoms=64),
        ),
        ("five", lambda a, b, c, d, e: a * b * c + d * e + a * e, [U(1, 2)] * 5, dict(atoms=8)),
        (
            "five_red",
            lambda a, b, c, d, e: a * b * c + d * e + a * e,
            [U(1, 2), N(0, 1), L(0, 0.3), U(0, 1), U(1, 3)],
            dict(atoms=16, max_joint=5000),
        ),
        (
            "six",
            lambda a, b, c, d, e, f: (a + b) * (c + d) * (e + f) + a * f,
            [U(0, 1)] * 6,
            dict(atoms=8, max_joint=20000),
        ),
        (
            "piston4",
            piston,
            [U(30, 60), U(0.005, 0.020), U(0.002, 0.010), U(1000, 5000), U(90000, 110000), U(290, 296), U(340, 360)],
            dict(atoms=4),
        ),
        (
            "piston_red",
            piston,
            [U(30, 60), U(0.005, 0.020), U(0.002, 0.010), U(1000, 5000), U(90000, 110000), U(290, 296), U(340, 360)],
            dict(atoms=8, max_joint=2**16),
        ),
        (
            "wing10",
            wing,
            [
                U(150, 200),
                U(220, 300),
                U(6, 10),
                U(-10, 10),
                U(16, 45),
                U(0.5, 1),
                U(0.08, 0.18),
                U(2.5, 6),
                U(1700, 2500),
                U(0.025, 0.08),
            ],
            dict(atoms=4, max_joint=2**14),
        ),
        (
            "osc_ln3",
            lambda k, m, c: np.sqrt(k / m) * np.exp(-c),
            [L(0, 0.2), L(0, 0.1), L(-1, 0.3)],
            dict(atoms=64, max_joint=2**15),
        ),
        ("carry_big", lambda x, y, z: x * y + y * z * x + np.exp(z), [U(0, 1), N(0, 0.5), U(0, 1)], dict(atoms=64)),
    ]


_INFO_KEYS = (
    "method",
    "full_grid_alternative",
    "smaller_request",
    "carried",
    "atoms_reduced",
    "compressions",
    "atoms_per_input",
    "compress_atoms",
    "quantizers",
)


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, float | np.floating):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, bool | int | str) or v is None:
        return v
    return repr(v)


@contextlib.contextmanager
def _carry_wins() -> Iterator[None]:
    """DampedOsc without exact inner-cell moments and elastic bounds: its bound grows with atoms, the carry wins."""
    from opgraph.dcg import carry, cellmoments, elastic

    old = cellmoments.exact_kind, carry.MIN_JOINT
    cellmoments.exact_kind, carry.MIN_JOINT = (lambda *a: False), 1
    tok = elastic.ENABLED.set(False)
    try:
        yield
    finally:
        elastic.ENABLED.reset(tok)
        cellmoments.exact_kind, carry.MIN_JOINT = old


def _patched() -> list[tuple[str, Any, list[Any], dict[str, Any]]]:
    """Programs run under :func:`_carry_wins` (the N/2 carry's keep path)."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    from tests.dcg.test_cellmoments import OSC_LAWS, oscillator

    laws = [L(m, s) for m, s in OSC_LAWS]
    return [("osc_carry4", oscillator, laws, dict(atoms=4))]


def record(only: set[str] | None = None) -> list[dict[str, Any]]:
    rows = []
    progs = [(p, contextlib.nullcontext) for p in _programs()] + [(p, _carry_wins) for p in _patched()]
    for ((name, fn, ins, kw), patch), (ba, bl, cf) in itertools.product(
        progs, itertools.product([False, True], repeat=3)
    ):
        if only and name not in only:
            continue
        sw = {"budget_alloc_fixed_atoms": ba, "box_linear": bl, "carry_fixed_atoms": cf}
        with warnings.catch_warnings(record=True) as caught, scope(sw), patch():
            warnings.simplefilter("always")
            try:
                r = od.evaluate(fn, *ins, progress=False, **kw)
            except Exception as exc:  # noqa: BLE001 - recorded, compared like an answer
                rows.append({"program": name, "switches": sw, "error": repr(exc)})
                continue
        h = hashlib.sha256(np.ascontiguousarray(r.atoms).tobytes() + np.ascontiguousarray(r.weights).tobytes())
        rows.append(
            {
                "program": name,
                "switches": sw,
                "w1_bound": repr(float(r.w1_bound)),
                "certified": bool(r.certified),
                "atoms": int(r.atoms.size),
                "digest": h.hexdigest()[:16],
                "bound_terms": _clean(r.bound_terms),
                "info": {k: _clean(r.info[k]) for k in _INFO_KEYS if k in r.info},
                "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
            }
        )
        print(name, sw, rows[-1]["w1_bound"], rows[-1]["info"].get("method"), rows[-1]["atoms"], flush=True)
    return rows


def _untimed(v: Any) -> Any:
    """``v`` without its timing entries (keys named ``seconds``: the compression records measure their time) and
    with this script's line numbers in node labels blanked (the two runs may read different versions of it)."""
    if isinstance(v, dict):
        return {_untimed(k): _untimed(x) for k, x in v.items() if k != "seconds"}
    if isinstance(v, list):
        return [_untimed(x) for x in v]
    if isinstance(v, str):
        return re.sub(r"candidates_equal\.py:\d+", "candidates_equal.py:N", v)
    return v


def main() -> None:
    if sys.argv[1] == "--compare":
        a, b = ([_untimed(r) for r in json.loads(pathlib.Path(p).read_text())] for p in sys.argv[2:4])
        same = sum(x == y for x, y in zip(a, b, strict=True))
        for x, y in zip(a, b, strict=True):
            if x != y:
                print("DIFF", x["program"], x["switches"])
                for k in x:
                    if x.get(k) != y.get(k):
                        print("  ", k, "\n    A:", x.get(k), "\n    B:", y.get(k))
        print(f"{same}/{len(a)} rows equal")
        sys.exit(0 if same == len(a) else 1)
    only = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else None
    pathlib.Path(sys.argv[1]).write_text(json.dumps(record(only), indent=1))


if __name__ == "__main__":
    main()
