"""Small tanh MLPs on Normal input vectors: the bound with and without the Taylor box bound (issue 14 §3-4).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/mlp_taylor.py [--rounds 1] [--target]``.

Cases: the 4-16-1 MLP of ``benchmarks/dcg/uq.py`` (its cached reference) and an 8-32-1 MLP built the same way
(reference: 4 scrambles of 2^20 Sobol points compressed to 2^14 atoms, computed here, with its error estimate).
Per row (fixed atoms per input) one call with ``opgraph.dcg.taylor.ENABLED`` off and one with it on, interleaved,
after a warm-up at 2 atoms: bound, true W1 (against the reference) and bound/true in units of the output's std,
and CPU seconds of one call (1 thread). ``--target`` also runs ``target_w1 = 1e-2 * std`` on the 4-16-1 MLP with the switch on
(CPU limit 60 s). Writes the section "Tanh MLPs: Taylor box bound" of docs/benchmarks/dcg.md (between markers).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import subprocess
import sys
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uq  # noqa: E402

from opgraph._base.fileio import replace_marked_block  # noqa: E402
from opgraph.dcg import taylor  # noqa: E402

BEGIN = "<!-- mlp-taylor:begin (written by benchmarks/dcg/mlp_taylor.py) -->"
END = "<!-- mlp-taylor:end -->"
ROWS = {"MLP 4-16-1": (uq.mlp_case(4, 16, 1), (2, 4, 8, 16)), "MLP 8-32-1": (uq.mlp_case(8, 32, 1), (2, 3, 4))}


def one(case: uq.UQCase, on: bool, limit_s: float = 60.0, **kw: Any) -> tuple[str, float, Any]:
    """One evaluation with the Taylor bound on or off: status, CPU seconds, result (under a CPU limit)."""
    tok = taylor.ENABLED.set(on)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return uq.limited(lambda: case.evaluate(**kw), limit_s)
    finally:
        taylor.ENABLED.reset(tok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1, help="interleaved off/on rounds per row (median CPU)")
    ap.add_argument("--target", action="store_true", help="also run target_w1 = 1e-2 * std with the bound on")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    lines = [
        "| case | atoms/input | bound/std off | bound/std on | true W1/std | bound/true off | bound/true on | "
        "CPU s off | CPU s on |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for label, (case, atoms) in ROWS.items():
        if case.d == 4:
            ref = uq.load_reference(case)
        else:
            ref = uq.compute_reference(case, log2_points=20, atoms=2**14)
        notes.append(f"{label}: reference std {ref.std:.4g}, error {ref.err / ref.std:.2g} std")
        one(case, True, atoms=2)  # warm-up (tracing, quantizer tables)
        for n in atoms:
            times: dict[bool, list[float]] = {False: [], True: []}
            res: dict[bool, Any] = {}
            for _ in range(args.rounds):
                for on in (False, True):
                    status, t, r = one(case, on, atoms=n)
                    times[on].append(t)
                    res[on] = r
            if res[False] is None or res[True] is None:
                lines.append(f"| {label} | {n} | timeout | | | | | | |")
                continue
            true = ref.w1(res[True].atoms, res[True].weights)
            b0, b1 = res[False].w1_bound, res[True].w1_bound
            med = {on: sorted(v)[len(v) // 2] for on, v in times.items()}
            lines.append(
                f"| {label} | {n} | {b0 / ref.std:.3g} | {b1 / ref.std:.3g} | {true / ref.std:.3g} | "
                f"{b0 / true:.3g} | {b1 / true:.3g} | {med[False]:.2f} | {med[True]:.2f} |"
            )
            print(lines[-1], flush=True)
        if args.target and case.d == 4:
            status, t, r = one(case, True, target_w1=1e-2 * ref.std)
            if r is None:
                notes.append(f"{label} target_w1 = 1e-2 std (Taylor on): {status} after {t:.1f} CPU s")
            else:
                notes.append(
                    f"{label} target_w1 = 1e-2 std (Taylor on): bound {r.w1_bound / ref.std:.3g} std, met "
                    f"{r.info.get('target_met')}, {t:.1f} CPU s, atoms {r.info.get('atoms_per_input')}"
                )
            print(notes[-1], flush=True)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    block = "\n".join(
        [
            BEGIN,
            "### Tanh MLPs: Taylor box bound (`opgraph.dcg.taylor`)",
            "",
            f"`{' '.join(['python', 'benchmarks/dcg/mlp_taylor.py', *sys.argv[1:]])}` on {platform.node()} "
            f"({_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC, commit {rev}, 1 thread, load {load:.1f} at the end; "
            "CPU s of one call, shared 2-core VM). `off` / `on`: `opgraph.dcg.taylor.ENABLED` in the same process.",
            "",
            *lines,
            "",
            *[f"- {x}" for x in notes],
            END,
        ]
    )
    print(block)
    if not args.no_write:
        replace_marked_block(uq.ROOT / "docs" / "benchmarks" / "dcg.md", BEGIN, END, block)


if __name__ == "__main__":
    main()
