"""Semi-discrete certificate on the UQ programs: bound / true W1 and CPU seconds at fixed atoms, before / after.

Run (once per engine version, same atoms; then merge the two JSON files into the table):

    OMP_NUM_THREADS=1 PYTHONPATH=<src of the engine> .venv/bin/python benchmarks/dcg/semidiscrete_uq.py \\
        --only Sulfur,WingWeight,Borehole --atoms 4,8,16 --out-json runs/after.json
    .venv/bin/python benchmarks/dcg/semidiscrete_uq.py --table runs/before.json runs/after.json

Each row is one ``case.evaluate(atoms=n)`` of ``benchmarks/dcg/uq.py`` (its ``dcg_kwargs``, such as the
borehole's ``truncate``, included) against the case's cached reference; CPU seconds are process time of one call
after a warm-up call. ``--table`` writes the section "Semi-discrete certificate on the UQ programs" of
docs/benchmarks/dcg.md between its markers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph._base.fileio import replace_marked_block
from opgraph._base.jsonio import write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uq  # noqa: E402  (the UQ suite and its cached references)

ROOT = Path(__file__).resolve().parents[2]
MARK_BEGIN = "<!-- semidiscrete-uq:begin (written by benchmarks/dcg/semidiscrete_uq.py) -->"
MARK_END = "<!-- semidiscrete-uq:end -->"


def run(only: list[str], atoms: list[int], limit: float) -> list[dict[str, Any]]:
    """One row per (case, atoms): bound, true W1 (both relative to the reference's std), method, CPU s."""
    rows = []
    cases = {c.id: c for c in uq.make_cases()}
    for cid in only:
        case = cases[cid]
        ref = uq.load_reference(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.evaluate(atoms=2)  # warm-up (tracing, caches)
        spent = 0.0
        for n in atoms:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.process_time()
                r = case.evaluate(atoms=n)
                t = time.process_time() - t0
            w1 = ref.w1(r.atoms, r.weights)
            sd = r.info.get("semi_discrete") or {}
            row = {
                "case": cid,
                "atoms": n,
                "bound": float(r.w1_bound) / ref.std,
                "true": w1 / ref.std,
                "ratio": float(r.w1_bound) / w1 if w1 > 0 else math.inf,
                "method": r.info.get("bound_method", r.info.get("method", "")),
                "cpu_s": t,
                "ref_err": ref.err / ref.std,
                "smoothed": str(sd.get("smoothed", "")),
                "form": str(sd.get("form", "")),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            spent += t
            if spent > limit:
                break
    return rows


def _f(x: float) -> str:
    return "inf" if not math.isfinite(x) else f"{x:.3g}"


def table(before: Path, after: Path, note: str) -> None:
    """The markdown section from two runs' JSON (rows matched on case and atoms)."""
    b = {(r["case"], r["atoms"]): r for r in uq._read_results(before)}
    a = uq._read_results(after)
    lines = [
        MARK_BEGIN,
        "### Semi-discrete certificate on the UQ programs",
        "",
        "Command: `OMP_NUM_THREADS=1 PYTHONPATH=<src> .venv/bin/python benchmarks/dcg/semidiscrete_uq.py --only "
        "IDS --atoms N,... --out-json F` with `<src>` the engine before (main) and after (branch dcg-tight), then "
        "`--table`.  ",
        f"Machine: {platform.processor() or platform.machine()}, 2 cores shared with other jobs, Python "
        f"{platform.python_version()}, NumPy {np.__version__}. Date: {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC. "
        f"No GPU. {note}  ",
        "Each row is one `case.evaluate(atoms=n)` (same atoms per input before and after); bound and true W1 are "
        "relative to the output's std (true W1 against the cached reference of `uq.py`, whose own error is the "
        "last column); *method* is the winning bound; CPU seconds of one call (process time, after a warm-up).",
        "",
        "| case | atoms/input | before: bound/std | true/std | bound/true | method | CPU s | after: bound/std | "
        "true/std | bound/true | method | CPU s | ref err/std |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in a:
        o = b.get((r["case"], r["atoms"]))
        if o is None:
            continue
        lines.append(
            f"| {r['case']} | {r['atoms']} | {_f(o['bound'])} | {_f(o['true'])} | {_f(o['ratio'])} | {o['method']} | "
            f"{o['cpu_s']:.2f} | {_f(r['bound'])} | {_f(r['true'])} | {_f(r['ratio'])} | {r['method']} | "
            f"{r['cpu_s']:.2f} | {_f(r['ref_err'])} |"
        )
    lines += ["", MARK_END]
    replace_marked_block(ROOT / "docs" / "benchmarks" / "dcg.md", MARK_BEGIN, MARK_END, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="Sulfur,WingWeight,Borehole", help="comma-separated case ids")
    ap.add_argument("--atoms", default="4,8,16", help="comma-separated atoms per input")
    ap.add_argument("--limit", type=float, default=60.0, help="CPU seconds per case before its sweep stops")
    ap.add_argument("--out-json", default="", help="write the rows here")
    ap.add_argument("--table", nargs=2, default=None, metavar=("BEFORE", "AFTER"), help="write the markdown")
    ap.add_argument("--note", default="", help="a line for the table header (load, ...)")
    args = ap.parse_args(argv)
    if args.table:
        table(Path(args.table[0]), Path(args.table[1]), args.note)
        return
    rows = run([s for s in args.only.split(",") if s], [int(s) for s in args.atoms.split(",") if s], args.limit)
    if args.out_json:
        write_json(Path(args.out_json), rows)


if __name__ == "__main__":
    main()
