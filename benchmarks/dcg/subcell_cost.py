"""What the cancellation rewrites and the nested sub-cell pass cost, and what they gain, on UQ rows (issue 14 §6).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/subcell_cost.py [--rows Sulfur:4 Piston:4 ...]``.
Per row, one call with both passes off and one with both on (``opgraph.dcg.cancel.ENABLED``,
``opgraph.dcg.subcells.ENABLED``), after a warm-up at 2 atoms; CPU seconds of one call (1 thread) and the bound,
then the sub-cell pass's own record (splits, where and why it stopped). Prints a Markdown table; to compare two
versions of the code, run it with each on ``PYTHONPATH`` (``docs/benchmarks/dcg.md``, section "Sub-cell pass cost").
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uq  # noqa: E402

from opgraph.dcg import cancel, subcells  # noqa: E402

ROWS = ["Sulfur:4", "WingWeight:4", "Piston:4", "Piston:2", "Borehole:4", "MLP:8", "OTL:8", "DampedOsc:8"]


def run(case: uq.UQCase, atoms: int, on: bool) -> tuple[float, float, dict]:
    """CPU seconds, bound and the sub-cell record of one call with both passes on or off."""
    t1, t2 = cancel.ENABLED.set(on), subcells.ENABLED.set(on)
    try:
        t = time.process_time()
        r = case.evaluate(atoms=atoms)
        return time.process_time() - t, float(r.w1_bound), r.info.get("subcells") or {}
    finally:
        cancel.ENABLED.reset(t1)
        subcells.ENABLED.reset(t2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", nargs="*", default=ROWS, help="CASE:ATOMS (case ids of benchmarks/dcg/uq.py)")
    args = ap.parse_args()
    cases = {c.id: c for c in uq.make_cases()}
    print("| case | atoms | CPU s off | CPU s on | bound off | bound on | sub-cell pass | load |")
    print("|---|---|---|---|---|---|---|---|")
    for row in args.rows:
        cid, atoms = row.split(":")
        case = cases[cid]
        case.evaluate(atoms=2)  # warm-up (tracing, caches)
        t_off, b_off, _ = run(case, int(atoms), False)
        t_on, b_on, sc = run(case, int(atoms), True)
        what = sc.get("stopped") or sc.get("second_stopped") or ("ran" if sc else "no gain / not run")
        load = os.getloadavg()[0]
        print(f"| {cid} | {atoms} | {t_off:.2f} | {t_on:.2f} | {b_off:.4g} | {b_on:.4g} | {what} | {load:.1f} |")


if __name__ == "__main__":
    main()
