"""Finite bounds through product-form envelopes of several inputs (opgraph.dcg.multienv): bound / true W1.

Writes its own marked section of docs/benchmarks/dcg.md. Run:
``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/multienv_rows.py``.
"""

from __future__ import annotations

import datetime
import importlib.util
import math
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from opgraph import dcg as od
from opgraph._base.fileio import replace_marked_block

HERE = Path(__file__).resolve().parent
PAGE = HERE.parents[1] / "docs" / "benchmarks" / "dcg.md"
BEGIN, END = "<!-- multienv:begin (written by benchmarks/dcg/multienv_rows.py) -->", "<!-- multienv:end -->"
X, Y, Z = od.LogNormal(0.0, 0.5), od.LogNormal(0.2, 0.3), od.LogNormal(0.0, 0.4)


def _call(fn: object) -> tuple[object, float]:
    t = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fn()  # type: ignore[operator]
    return r, time.process_time() - t


def _cell(bound: float, true: float, cpu: float) -> str:
    assert bound >= true, (bound, true)  # soundness, checked on every row
    return f"{bound:.3g} / {true:.3g} = {bound / true:.3g} ({cpu:.2f} s)"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    rows = []
    products = [
        (
            "`x**2 * y**1.5 / z / x` (LogN(0.3, 0.684))",
            lambda x, y, z: x**2 * y**1.5 / z / x,
            (0.3, 0.25 + 2.25 * 0.09 + 0.16),
        ),
        ("`(x*y/z) * (x/y)` (LogN(0, 1.077))", lambda x, y, z: (x * y / z) * (x / y), (0.0, 4 * 0.25 + 0.16)),
    ]
    for name, fn, (mu, var) in products:
        cells = []
        for atoms in (4, 16, 64):
            r, cpu = _call(lambda fn=fn, atoms=atoms: od.evaluate(fn, X, Y, Z, atoms=atoms))
            true = float(od.w1_to_continuous(r.atoms, r.weights, od.LogNormal(mu, math.sqrt(var))))
            cells.append(_cell(r.w1_bound, true, cpu))
        rows.append(f"| {name}, x, y, z ~ LogN(0,.5), LogN(.2,.3), LogN(0,.4) | inf | " + " | ".join(cells) + " | - |")
    sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location("uq_bench", HERE / "uq.py")
    uq = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["uq_bench"] = uq
    spec.loader.exec_module(uq)  # type: ignore[union-attr]
    case = next(c for c in uq.make_cases() if c.id == "DampedOsc")
    ref = uq.load_reference(case)
    cells = []
    for atoms in (2, 3, 4, 5):
        r, cpu = _call(lambda atoms=atoms: case.evaluate(atoms=atoms))
        true = ref.w1(r.atoms, r.weights) + ref.err  # an upper bound on the true W1 (Sobol reference)
        cells.append(_cell(r.w1_bound, true, cpu))
    rows.append(
        f"| DampedOsc (7 LogNormals, std {ref.std:.4g}; true = Sobol reference W1 + its error) | inf | "
        + " | ".join(cells)
        + " |"
    )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = "\n".join(
        [
            BEGIN,
            "## Product-form envelopes of several inputs (`opgraph.dcg.multienv`)",
            "",
            "Command: `OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/multienv_rows.py`  ",
            f"Machine: {_cpu_name()}, 2 shared cores, Python {platform.python_version()}, "
            f"NumPy {np.__version__}. Date: {now}. No GPU.",
            "",
            "Cells: certified bound / true W1 = ratio (process CPU s) at atoms per input. `before`: the bound without",
            "the envelopes. LogNormal products: true W1 to the exact LogNormal law (x used twice, so only the",
            "cellwise bound applies). Every bound is >= the true W1 (checked by the script).",
            "",
            "| program | before | atoms 4 (DampedOsc 2) | 16 (3) | 64 (4) | - (5) |",
            "|---|---|---|---|---|---|",
            *rows,
            END,
        ]
    )
    replace_marked_block(PAGE, BEGIN, END, block)
    print(block)


if __name__ == "__main__":
    main()
