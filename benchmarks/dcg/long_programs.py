"""Long programs: explicit Euler ODEs unrolled to thousands of ops, traced and evaluated by opgraph.dcg.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dcg/long_programs.py
Writes the section "Long programs" of docs/benchmarks/dcg.md (between its markers, the rest of the file is kept).

Cases: a logistic growth ``x' = r x (1 - x / K)`` (2 uncertain parameters) and a damped oscillator
``x'' = -w^2 x - c x'`` (3 uncertain parameters, uncertain start), each integrated by explicit Euler in a Python loop
for 100, 300 and 1,000 steps. For each: the ops of the traced graph, CPU seconds (process_time, median of 3 after a
warm-up, rounds interleaved) of each phase (trace; prepare = sum rebalancing + restriction to the output;
interpret = the engine's loop over the nodes; rest = planning and the result), the peak memory (tracemalloc, one
separate run) and the certified W1 bound. The phase breakdown is what locates the bottleneck.
"""

from __future__ import annotations

import datetime as _dt
import platform
import statistics
import sys
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph import dcg as od
from opgraph._base.fileio import replace_marked_block
from opgraph.dcg import engine
from opgraph.graph import trace

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks" / "dcg.md"
START, END = "<!-- long-programs:start -->", "<!-- long-programs:end -->"
ROUNDS = 3


def logistic(steps: int) -> Any:
    """Logistic growth to t = 10 from x0 = 0.1 in ``steps`` Euler steps."""

    def f(r: Any, k: Any) -> Any:
        x: Any = 0.1
        dt = 10.0 / steps
        for _ in range(steps):
            x = x + dt * r * x * (1 - x / k)
        return x

    return f


def oscillator(steps: int) -> Any:
    """Damped oscillator to t = 5 from (x0, 0) in ``steps`` Euler steps."""

    def f(w: Any, c: Any, x0: Any) -> Any:
        x, v = x0, 0.0
        dt = 5.0 / steps
        for _ in range(steps):
            x, v = x + dt * v, v - dt * (w * w * x + c * v)
        return x

    return f


CASES = {
    "logistic (r, K)": (logistic, (od.Uniform(0.8, 1.2), od.Uniform(0.9, 1.1)), 32),
    "oscillator (w, c, x0)": (oscillator, (od.Uniform(1.8, 2.2), od.Uniform(0.1, 0.3), od.Uniform(0.9, 1.1)), 32),
}


class _Phases:
    """CPU seconds spent in the engine's phases (wraps prepare / restrict / Evaluator.run for one evaluation)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {"prepare": 0.0, "interpret": 0.0}
        self._orig = (engine.prepare, engine.restrict, engine.Evaluator.run)

    def __enter__(self) -> _Phases:
        prep, restr, run = self._orig
        t = self.t

        def timed(key: str, fn: Any) -> Any:
            def inner(*a: Any, **k: Any) -> Any:
                t0 = time.process_time()
                try:
                    return fn(*a, **k)
                finally:
                    t[key] += time.process_time() - t0

            return inner

        import opgraph.dcg.api as api

        api.prepare = timed("prepare", prep)  # type: ignore[attr-defined]
        engine.restrict = timed("prepare", restr)
        engine.Evaluator.run = timed("interpret", run)  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        import opgraph.dcg.api as api

        api.prepare, engine.restrict, engine.Evaluator.run = self._orig  # type: ignore[attr-defined,method-assign]


def measure(name: str, steps: int) -> dict[str, Any]:
    make, ins, atoms = CASES[name]
    fn = make(steps)
    names = ["a", "b", "c"][: len(ins)]
    rows: list[dict[str, float]] = []
    r = None
    for _ in range(ROUNDS):
        t0 = time.process_time()
        g = trace(fn, *names)
        t_trace = time.process_time() - t0
        with _Phases() as ph, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.process_time()
            r = od.evaluate(fn, *ins, atoms=atoms)
            total = time.process_time() - t0
        rest = total - ph.t["prepare"] - ph.t["interpret"]
        rows.append({"trace": t_trace, **ph.t, "rest": rest, "total": total, "ops": float(len(g))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracemalloc.start()
        od.evaluate(fn, *ins, atoms=atoms)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    med = {k: statistics.median(x[k] for x in rows) for k in rows[0]}
    assert r is not None
    return {
        "case": name,
        "steps": steps,
        "ops": int(med["ops"]),
        "grid": int(r.info.get("joint_atoms", 0)),
        "trace_s": med["trace"],
        "prepare_s": med["prepare"],
        "interpret_s": med["interpret"],
        "rest_s": med["rest"],
        "total_s": med["total"],
        "peak_mb": peak / 1e6,
        "bound": r.w1_bound,
        "std": float(r.std() if callable(r.std) else r.std),
    }


def main() -> None:
    warm = measure("logistic (r, K)", 20)  # warm-up (imports, op tables)
    del warm
    out = [measure(name, steps) for steps in (100, 300, 1000) for name in CASES]
    lines = [
        START,
        "",
        "## Long programs",
        "",
        f"`{' '.join(['OMP_NUM_THREADS=1', 'python', 'benchmarks/dcg/long_programs.py'])}` on {platform.machine()}, "
        f"Python {sys.version.split()[0]}, {_dt.date.today().isoformat()}, 1 thread, CPU seconds (median of "
        f"{ROUNDS}, after a warm-up); peak memory by tracemalloc. Explicit Euler in a Python loop, 32 atoms per input.",
        "",
        "| case | steps | ops | grid | trace s | prepare s | interpret s | rest s | total s | ms per op "
        "| peak MB | W1 bound | std |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in out:
        per_op = 1e3 * (m["total_s"] + m["trace_s"]) / max(m["ops"], 1)
        lines.append(
            f"| {m['case']} | {m['steps']} | {m['ops']} | {m['grid']} | {m['trace_s']:.3f} | {m['prepare_s']:.3f} "
            f"| {m['interpret_s']:.2f} | {m['rest_s']:.3f} | {m['total_s']:.2f} | {per_op:.2f} | {m['peak_mb']:.1f} "
            f"| {m['bound']:.3g} | {m['std']:.3g} |"
        )
    lines += ["", END]
    text = "\n".join(lines)
    print(text)
    replace_marked_block(DOC, START, END, text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
