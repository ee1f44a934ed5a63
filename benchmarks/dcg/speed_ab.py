"""A/B of the interval kernels' strict-sign shortcuts (``intervals.SIGN_PATHS``) on the UQ suite's target calls.

Run:  OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/dcg/speed_ab.py [--only ID,ID] [--reps 2]
      [--eps 1e-2] [--atoms N] [--max-seconds S|none]

For each case, in one process and interleaved rounds (old, new, old, new, ...), ``od.evaluate(fn, *inputs,
target_w1=eps * std)`` (or ``atoms=N``) with ``SIGN_PATHS`` off (the general forms: before) and on (after). Prints
the CPU seconds (``time.process_time``, median over the reps) and the bound of each, and whether the two bounds
are identical (1e-12 relative). A ``target_w1`` call plans its rounds from the measured CPU time of the previous
ones (``max_seconds``, :mod:`opgraph.dcg.roundbudget`), so a faster kernel may run a different round, with a
different (better) bound: the round plans are printed, and the bounds compared only where the plans coincide.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402

from opgraph.dcg import intervals as iv  # noqa: E402


def _plan(r: Any) -> list[Any]:
    return [(h.get("atoms"), h.get("compress_atoms")) for h in r.info.get("refinement", [])]


def _call(case: Any, kw: dict[str, Any], new: bool) -> tuple[float, Any]:
    old = iv.SIGN_PATHS
    iv.SIGN_PATHS = new
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.process_time()
            r = case.evaluate(**kw)
            return time.process_time() - t, r
    finally:
        iv.SIGN_PATHS = old


def main(argv: list[str] | None = None) -> None:
    """Print one row per case: CPU s before / after, the bounds, identical or not, the round plans."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated case ids (default: all)")
    ap.add_argument("--reps", type=int, default=1, help="interleaved old/new pairs per case")
    ap.add_argument("--eps", type=float, default=1e-2, help="target_w1 = eps * the reference's std")
    ap.add_argument("--atoms", type=int, default=0, help="a fixed-atoms call instead of target_w1")
    ap.add_argument("--max-seconds", default="", help="max_seconds of the target call ('none': no budget)")
    args = ap.parse_args(argv)
    refs = json.loads(uq.REF_CACHE.read_text())
    only = {s for s in args.only.split(",") if s}
    cases = [c for c in uq.make_cases() if not only or c.id in only]
    print(f"{'case':<11} {'CPU s before':>12} {'after':>8} {'x':>6} {'bound before':>13} {'after':>13} same")
    for case in cases:
        kw: dict[str, Any] = {"atoms": args.atoms} if args.atoms else {"target_w1": args.eps * refs[case.id]["std"]}
        if args.max_seconds and not args.atoms:
            kw["max_seconds"] = None if args.max_seconds == "none" else float(args.max_seconds)
        _call(case, {"atoms": 2}, True)  # warm-up: tracing, caches
        times: dict[bool, list[float]] = {False: [], True: []}
        res: dict[bool, Any] = {}
        for _ in range(args.reps):
            for new in (False, True):
                t, r = _call(case, kw, new)
                times[new].append(t)
                res[new] = r
        a, b = (statistics.median(times[k]) for k in (False, True))
        ba, bb = float(res[False].w1_bound), float(res[True].w1_bound)
        same_plan = _plan(res[False]) == _plan(res[True])
        same = ba == bb or (math.isfinite(ba) and abs(ba - bb) <= 1e-12 * abs(ba))
        verdict = "yes" if same else ("NO" if same_plan else "plans differ")
        print(f"{case.id:<11} {a:12.2f} {b:8.2f} {a / b:6.2f} {ba:13.6g} {bb:13.6g} {verdict}", flush=True)
        if not same_plan:
            print(f"    plan before {_plan(res[False])}\n    plan after  {_plan(res[True])}", flush=True)


if __name__ == "__main__":
    main()
