"""Before / after the semi-discrete output certificate, at fixed atoms: bound / true W1 per case.

Run:  OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/dcg/semidiscrete_bench.py [--only ID,ID]
      [--atoms 4,16,64] [--limit 20]

Cases: the UQ programs of ``benchmarks/dcg/uq.py`` (their cached references in ``uq_references.json``) and the
small mixing cases of the main suite with exact references (products, a ratio, sums). Every row is one
``od.evaluate(fn, *inputs, atoms=n)`` with the certificate off (``opgraph.dcg.engine.SEMI_DISCRETE``) and on, in the
same process; CPU seconds are process time of one call (after a warm-up call of the same program). Writes the
section "Semi-discrete output certificate (before / after)" of docs/benchmarks/dcg.md between its markers.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from opgraph import dcg as od
from opgraph._base.fileio import replace_marked_block
from opgraph.dcg import engine
from opgraph.dcg.w1 import w1_to_cdf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchcli  # noqa: E402
import uq  # noqa: E402  (the UQ suite and its cached references)

ROOT = Path(__file__).resolve().parents[2]
MARK_BEGIN = "<!-- semidiscrete:begin (written by benchmarks/dcg/semidiscrete_bench.py) -->"
MARK_END = "<!-- semidiscrete:end -->"


def _uu_cdf(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = t - t * np.log(np.where(t > 0, t, 1.0))
    return np.where(t <= 0, 0.0, np.where(t >= 1, 1.0, v))


def _ratio_cdf(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mid = 2 - t / 2 - 1 / (2 * np.where(t > 0, t, 1.0))
    return np.where(t <= 0, 0.0, np.where(t <= 0.5, 1.5 * t, np.where(t >= 1, 1.0, mid)))


def small_cases() -> list[tuple[str, str, Callable[..., Any], list[Any], Callable[[np.ndarray, np.ndarray], float]]]:
    """(id, description, fn, inputs, true W1 of an answer) for the exact-reference mixing cases."""
    n3 = od.Normal(1, math.sqrt(5.25))
    return [
        ("M1", "U1*U2", lambda x, y: x * y, [od.Uniform(0, 1)] * 2, lambda a, w: w1_to_cdf(a, w, _uu_cdf, 0, 1)),
        (
            "M3",
            "LogN(0,.3)*LogN(0,.4)",
            lambda x, y: x * y,
            [od.LogNormal(0, 0.3), od.LogNormal(0, 0.4)],
            lambda a, w: od.w1_to_continuous(a, w, od.LogNormal(0, 0.5)),
        ),
        (
            "R1",
            "U(0,1)/U(1,2)",
            lambda x, y: x / y,
            [od.Uniform(0, 1), od.Uniform(1, 2)],
            lambda a, w: w1_to_cdf(a, w, _ratio_cdf, 0, 1),
        ),
        (
            "S2",
            "Exp(1)+Exp(1)+Exp(1)",
            lambda x, y, z: x + y + z,
            [od.Exponential(1)] * 3,
            lambda a, w: od.w1_to_continuous(a, w, od.Gamma(3)),
        ),
        (
            "N3",
            "N(0,1)+N(1,2)+N(0,.5)",
            lambda x, y, z: x + y + z,
            [od.Normal(0, 1), od.Normal(1, 2), od.Normal(0, 0.5)],
            lambda a, w: od.w1_to_continuous(a, w, n3),
        ),
    ]


def _call(fn: Callable[..., Any], ins: list[Any], n: int, on: bool) -> tuple[Any, float]:
    tok = engine.SEMI_DISCRETE.set(on)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.process_time()
            r = od.evaluate(fn, *ins, atoms=n)
            return r, time.process_time() - t0
    finally:
        engine.SEMI_DISCRETE.reset(tok)


def run(only: set[str], atoms: list[int], limit: float) -> list[dict[str, Any]]:
    """Rows: case, atoms, (bound, true, ratio, method, CPU s) before and after."""
    cases: list[tuple[str, str, Callable[..., Any], list[Any], Callable[[np.ndarray, np.ndarray], float], float]] = []
    for cid, desc, fn, ins, true in small_cases():
        cases.append((cid, desc, fn, ins, true, 1.0))
    for c in uq.make_cases():
        if c.id.startswith("ODE"):
            continue  # 1,000-step loops: seconds per call, no semi-discrete core (a state update is the output)
        cases.append((c.id, c.title, c.fn, c.dcg_inputs(), None, 0.0))  # type: ignore[arg-type]
    rows = []
    for cid, desc, fn, ins, true, _ in cases:
        if only and cid not in only:
            continue
        ref = None
        std = 1.0
        if true is None:
            case = next(c for c in uq.make_cases() if c.id == cid)
            ref = uq.load_reference(case)
            std = ref.std
            true = ref.w1
        _call(fn, ins, 2, True)  # warm-up
        spent = 0.0
        for n in atoms:
            row: dict[str, Any] = {"case": cid, "desc": desc, "atoms": n, "std": std}
            for key, on in (("before", False), ("after", True)):
                r, t = _call(fn, ins, n, on)
                w1 = float(true(r.atoms, r.weights))
                row[key] = {
                    "bound": float(r.w1_bound),
                    "true": w1,
                    "ratio": float(r.w1_bound) / w1 if w1 > 0 else math.inf,
                    "method": r.info.get("bound_method", r.info.get("method", "")),
                    "cpu_s": t,
                    "certified": bool(r.certified),
                }
                spent += t
            if ref is not None:
                row["ref_err"] = ref.err
            rows.append(row)
            print(
                f"{cid:10s} n={n:4d} before {row['before']['ratio']:9.3g} ({row['before']['method']})"
                f" after {row['after']['ratio']:9.3g} ({row['after']['method']})",
                flush=True,
            )
            if spent > limit:
                break
    return rows


def _f(x: float) -> str:
    if not math.isfinite(x):
        return "inf"
    return f"{x:.3g}"


def write(rows: list[dict[str, Any]], command: str) -> None:
    """The markdown section (between markers) in docs/benchmarks/dcg.md."""
    lines = [
        MARK_BEGIN,
        "## Semi-discrete output certificate (before / after, fixed atoms)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, 2 cores shared with other jobs, Python "
        f"{platform.python_version()}, NumPy {np.__version__}. Date: {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC. "
        "No GPU.  ",
        "Each row: `od.evaluate(fn, *inputs, atoms=n)` with `opgraph.dcg.engine.SEMI_DISCRETE` off (before) and on "
        "(after), same process; bound and true W1 relative to the output's std for the UQ cases (the cached "
        "reference of `uq.py`, its own error in the last column), absolute for M1-N3 (exact references); *method* "
        "is the winning bound. CPU seconds of one call.",
        "",
        "| case | atoms/input | before: bound/std | true/std | bound/true | method | CPU s | after: bound/std | "
        "true/std | bound/true | method | CPU s | ref err/std |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, a, s = r["before"], r["after"], r["std"]
        lines.append(
            f"| {r['case']} | {r['atoms']} | {_f(b['bound'] / s)} | {_f(b['true'] / s)} | {_f(b['ratio'])} | "
            f"{b['method']} | {b['cpu_s']:.2f} | {_f(a['bound'] / s)} | {_f(a['true'] / s)} | {_f(a['ratio'])} | "
            f"{a['method']} | {a['cpu_s']:.2f} | {_f(r.get('ref_err', 0.0) / s)} |"
        )
    lines += ["", MARK_END]
    replace_marked_block(ROOT / "docs" / "benchmarks" / "dcg.md", MARK_BEGIN, MARK_END, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = benchcli.add(
        benchcli.parser(__doc__, summary=True),
        only=("", "comma-separated case ids"),
        atoms=("4,16,64", "comma-separated atoms per input"),
        limit=(20.0, "CPU seconds per case before its sweep stops"),
    )
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    only = set(benchcli.items(args.only))
    atoms = benchcli.ints(args.atoms)
    rows = run(only, atoms, args.limit)
    if not args.no_write:
        write(
            rows,
            "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dcg/semidiscrete_bench.py " + " ".join(argv or sys.argv[1:]),
        )


if __name__ == "__main__":
    main()
