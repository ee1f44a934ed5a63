"""Long programs (issue 14 sections 3-4): the 1,000-step Euler ODEs of the UQ suite before / after the wrapping fixes.

``before``: the eigenvector (principal-axes) frame in the affine forms' joint condensation, condensation at 12
symbols (24 per form), no sub-cell bound (the engine as of main 774a94b). ``after``: Lohner's QR frame, condensation
at 48 symbols (96 per form) and the nested sub-cell bound (:mod:`opgraph.dcg.subcells`). Both in one process,
interleaved per (case, atoms); CPU seconds of one call each (no warm-up beyond the first case: the calls take
seconds). Bound and true W1 in units of the reference's std (``uq.load_reference``).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/dcg/ode_wrapping.py [--atoms 2 4 8] [--no-write]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402

from opgraph._base.fileio import replace_marked_block  # noqa: E402
from opgraph.dcg import affine, subcells  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MARK_BEGIN = "<!-- ode-wrapping:begin -->"
MARK_END = "<!-- ode-wrapping:end -->"


@contextlib.contextmanager
def before() -> Iterator[None]:
    """The engine without the wrapping fixes (module docstring)."""
    saved = (affine.CONDENSE_AT, affine.MAX_FORM_ERR)
    toks = (affine.QR_FRAME.set(False), subcells.ENABLED.set(False))
    affine.CONDENSE_AT, affine.MAX_FORM_ERR = 12, 24
    try:
        yield
    finally:
        affine.CONDENSE_AT, affine.MAX_FORM_ERR = saved
        affine.QR_FRAME.reset(toks[0])
        subcells.ENABLED.reset(toks[1])


def run_one(case: Any, ref: Any, atoms: int, old: bool) -> dict[str, Any]:
    """One call: bound and true W1 over the reference's std, CPU seconds, the load average at its end."""
    ctx = before() if old else contextlib.nullcontext()
    with ctx:
        t = time.process_time()
        r = case.evaluate(atoms=atoms)
        cpu = time.process_time() - t
    true = ref.w1(r.atoms, r.weights)
    return {
        "bound": r.w1_bound / ref.std,
        "true": true / ref.std,
        "cpu": cpu,
        "load": os.getloadavg()[0],
        "splits": (r.info.get("subcells") or {}).get("splits", {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--cases", nargs="+", default=["ODE-osc", "ODE-log"])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cases = {c.id: c for c in uq.make_cases()}
    rows = []
    started = datetime.datetime.now(datetime.UTC)
    for cid in args.cases:
        case, ref = cases[cid], uq.load_reference(cases[cid])
        for n in args.atoms:
            b = run_one(case, ref, n, True)
            a = run_one(case, ref, n, False)
            rows.append((cid, n, b, a))
            print(cid, n, "before", b, "after", a, flush=True)
    end = datetime.datetime.now(datetime.UTC)

    def f(x: float) -> str:
        return f"{x:.3g}" if x == x else "nan"

    lines = [
        MARK_BEGIN,
        "",
        "## Long programs: wrapping over 1,000 Euler steps",
        "",
        f"`OMP_NUM_THREADS=1 python benchmarks/dcg/ode_wrapping.py --atoms {' '.join(map(str, args.atoms))}` on "
        f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores shared), Python "
        f"{platform.python_version()}, {started:%Y-%m-%d %H:%M}-{end:%H:%M} UTC; CPU seconds of one call, 1 thread. "
        "Bound and true W1 in units of the output's std (reference of `uq.py`). before = principal-axes "
        "condensation at 12 symbols, no sub-cells; after = QR frame at 48 symbols + nested sub-cell bound "
        "(splits per input in the last column). The load column is the 1-minute load average after the call "
        "(the VM is shared: CPU seconds are inflated by cache sharing at high load).",
        "",
        "| case | atoms | bound/std before | bound/std after | true/std | ratio before | ratio after "
        "| CPU s before | CPU s after | load | sub-cell splits |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for cid, n, b, a in rows:
        lines.append(
            f"| {cid} | {n} | {f(b['bound'])} | {f(a['bound'])} | {f(a['true'])} | {f(b['bound'] / b['true'])} "
            f"| {f(a['bound'] / a['true'])} | {b['cpu']:.1f} | {a['cpu']:.1f} | {b['load']:.0f}-{a['load']:.0f} "
            f"| {a['splits'] or '-'} |"
        )
    lines += ["", MARK_END]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        replace_marked_block(ROOT / "docs/benchmarks/dcg.md", MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
