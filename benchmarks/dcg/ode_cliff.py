"""``target_w1`` calls on the 1,000-step ODEs with the round planner's clock slowed 1x, 2x, 3x: before/after.

The planner of a ``target_w1`` call (:mod:`opgraph.dcg.roundbudget`) counts this process's CPU seconds against
``max_seconds``; a loaded machine gives fewer operations per CPU second. This script stands in for load by scaling
the budget's clock (``roundbudget._clock`` returns ``factor * time.process_time()``): every round then looks
``factor`` times as expensive, and ``max_seconds = 20`` buys ``20 / factor`` real CPU seconds of work.

"before" is the branch with the switches ``round_credit`` and ``plan_memo`` off (the planning of main), "after"
with them on; the two alternate in one process (before/after, then after/before). One JSON row per call: the
bound and the true W1 (from the cached reference of ``uq.py``) in units of the output's std, real CPU seconds of
the call, the rounds' atoms, and the load average.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/ode_cliff.py --runs 2 --factors 1,2,3 \\
        --cases ODE-log,ODE-osc --eps 1e-2,1e-3 --out /tmp/ode_cliff.json
    # the short cases (same planner, no long-program state): --cases Piston,Borehole --eps 1e-2 --factors 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import uq  # noqa: E402

from opgraph.dcg import roundbudget, switches  # noqa: E402

OFF = {"round_credit": False, "plan_memo": False}
ON = {"round_credit": True, "plan_memo": True}


@contextlib.contextmanager
def slowed_clock(factor: float) -> Iterator[None]:
    """The round budget's CPU clock scaled by ``factor`` (a stand-in for a machine ``factor`` times slower)."""
    orig = roundbudget._clock
    roundbudget._clock = lambda: orig() * factor  # type: ignore[assignment]
    try:
        yield
    finally:
        roundbudget._clock = orig  # type: ignore[assignment]


def one_call(case: uq.UQCase, ref: uq.Reference, eps: float, factor: float, after: bool) -> dict[str, Any]:
    """One ``target_w1 = eps * std`` call under the scaled clock, with the branch's switches on or off."""
    with switches.scope(ON if after else OFF), slowed_clock(factor), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.process_time()
        r = case.evaluate(target_w1=eps * ref.std)
        cpu = time.process_time() - t
    hist = r.info.get("refinement", [])
    return {
        "case": case.id,
        "eps": eps,
        "factor": factor,
        "version": "after" if after else "before",
        "bound_std": float(r.w1_bound) / ref.std,
        "true_std": ref.w1(r.atoms, r.weights) / ref.std,
        "cpu": round(cpu, 2),
        "rounds": [max(h["atoms"].values()) for h in hist],
        "kept": r.info.get("kept_round"),
        "credit": [h.get("round_credit_s") for h in hist if h.get("round_credit_s")],
        "method": r.info.get("bound_method", ""),
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="interleaved runs (before/after, then after/before, ...)")
    ap.add_argument("--factors", default="1,2,3", help="comma-separated clock factors")
    ap.add_argument("--cases", default="ODE-log,ODE-osc", help="comma-separated uq.py case ids")
    ap.add_argument("--eps", default="1e-2,1e-3", help="comma-separated eps (target_w1 = eps * std)")
    ap.add_argument("--out", default="", help="write the rows here (JSON)")
    args = ap.parse_args()
    wanted = args.cases.split(",")
    cases = {c.id: c for c in uq.make_cases() if c.id in wanted}
    refs = {cid: uq.load_reference(c) for cid, c in cases.items()}
    for c in cases.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c.evaluate(atoms=2)  # warm-up (tracing, caches)
    rows = []
    for k in range(args.runs):
        for cid in wanted:
            for eps in (float(x) for x in args.eps.split(",")):
                for factor in (float(x) for x in args.factors.split(",")):
                    for after in (False, True) if k % 2 == 0 else (True, False):
                        row = one_call(cases[cid], refs[cid], eps, factor, after)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                        if args.out:
                            Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
