"""The QMC fallback sized to eps on the UQ programs without a certified grid: its estimate against the true W1.

For each program of ``benchmarks/dcg/uq.py`` that takes the fallback (no node separates the shared inputs at the
pilot's atoms), ``od.evaluate(fn, *inputs, target_w1=eps * std)`` at eps = 1e-2 and 1e-3: the points drawn, the
spread estimate (``w1_estimate``), the true W1 against the cached reference atoms (``uq_references.json``, each
with its own error) and the CPU time. Writes a marked section of ``docs/benchmarks/dcg.md``.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/dcg/qmc_sizing.py [--no-write]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402

from opgraph import dcg as od  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks" / "dcg.md"
BEGIN = "<!-- qmc-sizing:begin (written by benchmarks/dcg/qmc_sizing.py) -->"
END = "<!-- qmc-sizing:end -->"
CASES = ("Piston", "DampedOsc", "Borehole", "WingWeight")
EPS = (1e-2, 1e-3)


def main(argv: list[str] | None = None) -> None:
    """Run the cases; print and write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    cache = json.loads(uq.REF_CACHE.read_text())
    cases = {c.id: c for c in uq.make_cases()}
    lines = [
        "| case | eps | certified | points | estimate / std | true W1 / std | estimate / true | ref err / std | "
        "CPU s | stop |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cid in CASES:
        case, hit = cases[cid], cache[cid]
        ref = uq.Reference(
            uq.decode_atoms(hit["atoms"]), hit["mean"], hit["std"], hit["err"], hit["note"], hit["c"], None
        )
        for eps in EPS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.process_time()
                r = od.evaluate(case.fn, *case.dcg_inputs(), target_w1=eps * ref.std)
                cpu = time.process_time() - t0
            true = ref.w1(r.atoms, r.weights)
            est = r.w1_estimate if r.w1_estimate is not None else float("nan")
            lines.append(
                f"| {cid} | {eps:g} | {r.certified} | {r.info.get('points', '–')} | {est / ref.std:.2e} | "
                f"{true / ref.std:.2e} | {est / true:.2f} | {ref.err / ref.std:.1e} | {cpu:.2f} | "
                f"{r.info.get('qmc_stop', '–')} |"
            )
            print(lines[-1], flush=True)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), Python "
    machine += f"{platform.python_version()}, NumPy {np.__version__}; no GPU"
    block = "\n".join(
        [
            BEGIN,
            "## QMC fallback sized to eps (issue 14 section 3)",
            "",
            "Command: `OMP_NUM_THREADS=1 python benchmarks/dcg/qmc_sizing.py`  ",
            f"Machine: {machine}. Date: {now}. CPU time of one call, one thread (the first, "
            "Piston 1e-2, includes one-time imports and caches).",
            "",
            "Where no grid fits `max_joint`, `od.evaluate(..., target_w1=eps * std)` returns the uncertified QMC "
            "fallback with its sample sized to the target: 8 scrambled Sobol sequences, extended until the spread "
            "estimate is <= eps * std (see docs/dcg.md). *true W1* is against the cached reference atoms "
            "(`uq_references.json`, their own error in the next column). Not a certificate: the estimate is "
            "statistical.",
            "",
            *lines,
            END,
        ]
    )
    print(block)
    if not args.no_write:
        from opgraph._base.fileio import replace_marked_block

        replace_marked_block(DOC, BEGIN, END, block)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
