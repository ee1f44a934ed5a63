"""Chunked evaluation (opgraph.dcg.chunks): peak memory and time against the evaluation in one piece.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dcg/chunks_bench.py
Writes the section "Chunked evaluation" of docs/benchmarks/dcg.md (between its markers; the rest is kept).

Per case: the evaluation in one piece, then with ``max_memory`` at 60% and 40% of its measured peak (serial), and
at 60% on a 2-worker process pool. Peak memory by tracemalloc in the calling process (for the process pool that
is the combining process; each worker holds one chunk's engine arrays). Times: CPU seconds of the calling process
(process_time) for serial runs, wall seconds for the pool; one run each after a warm-up (the grids are large).
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph import dcg as od
from opgraph._base.fileio import replace_marked_block

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks" / "dcg.md"
START, END = "<!-- chunks:start -->", "<!-- chunks:end -->"
N, U = od.Normal, od.Uniform


def xyz(x: Any, y: Any, z: Any) -> Any:
    return x * y + z


def ratio(x: Any, y: Any, z: Any) -> Any:
    return x / (y + z) + x


CASES = {
    "x*y + z (N, N, U)": (xyz, (N(0, 1), N(2, 1), U(0, 1)), 96),
    "x/(y+z) + x (U, U, U)": (ratio, (U(1, 2), U(1, 2), U(1, 3)), 96),
}


def run(fn: Any, ins: Any, atoms: int, **kw: Any) -> tuple[Any, float, float, int]:
    tracemalloc.start()
    t0, w0 = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, *ins, atoms=atoms, **kw)
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return r, cpu, wall, peak


def main() -> None:
    run(xyz, CASES["x*y + z (N, N, U)"][1], 16)  # warm-up
    rows = []
    for name, (fn, ins, atoms) in CASES.items():
        ref, cpu, wall, peak = run(fn, ins, atoms)
        cells = ref.info["joint_atoms"]
        rows.append((name, cells, "one piece", "-", 1, cpu, peak, ref.w1_bound, 0.0))
        for frac, ex in ((0.6, "serial"), (0.4, "serial"), (0.6, "process")):
            budget = int(peak * frac)
            kw: dict[str, Any] = {"max_memory": budget, "executor": ex}
            if ex == "process":
                from concurrent.futures import ProcessPoolExecutor

                with ProcessPoolExecutor(max_workers=2) as pool:
                    kw["executor"] = pool
                    r, cpu, wall, p = run(fn, ins, atoms, **kw)
                t = wall
                ex = "process x2 (wall)"
            else:
                try:
                    r, cpu, wall, p = run(fn, ins, atoms, **kw)
                except od.DistError as exc:
                    tracemalloc.stop()
                    print(f"{name} at {budget} B: {exc}")
                    rows.append((name, cells, f"{budget / 1e6:.0f} MB", "refused", 0, 0.0, 0, float("nan"), 0.0))
                    continue
                t = cpu
            diff = float(np.max(np.abs(r.atoms - ref.atoms))) if r.atoms.size == ref.atoms.size else float("nan")
            rows.append((name, cells, f"{budget / 1e6:.0f} MB", ex, r.info["chunks"]["count"], t, p, r.w1_bound, diff))
    lines = [
        START,
        "",
        "## Chunked evaluation",
        "",
        f"`OMP_NUM_THREADS=1 python benchmarks/dcg/chunks_bench.py` on {platform.machine()}, Python "
        f"{sys.version.split()[0]}, {_dt.date.today().isoformat()}; tracemalloc peak of the calling process; seconds "
        "are CPU seconds of the calling process except for the pool (wall). One run each after a warm-up.",
        "",
        "| case | cells | max_memory | executor | chunks | seconds | peak MB | B per cell | W1 bound | max atom diff |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cells, budget, ex, n, t, p, b, d in rows:
        lines.append(
            f"| {name} | {cells} | {budget} | {ex} | {n} | {t:.2f} | {p / 1e6:.1f} | {p / cells:.0f} | {b:.6g} | {d:.1e} |"
        )
    lines += ["", END]
    text = "\n".join(lines)
    print(text)
    replace_marked_block(DOC, START, END, text)


if __name__ == "__main__":
    main()
