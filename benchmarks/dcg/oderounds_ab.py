"""Same-process A/B of ``costguards.TIME_MODEL`` (off: the previous schedule) on uq.py's 1,000-step ODE target calls.

Usage (branch ode-rounds)::

    PYTHONPATH=src python benchmarks/dcg/oderounds_ab.py --rounds 2 --eps 1e-2,1e-3 --max-seconds 20 --out ab.json

One JSON row per call (bound, bound / (eps std), CPU seconds of this process, the rounds' atoms, the load); the
order of the two schedules alternates between rounds. Run with one thread (``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import uq  # noqa: E402

from opgraph.dcg import costguards  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds (old/new, then new/old, ...)")
    ap.add_argument("--eps", default="1e-2", help="comma-separated eps (target_w1 = eps * std)")
    ap.add_argument("--max-seconds", type=float, default=20.0, help="the calls' max_seconds (CPU s)")
    ap.add_argument("--out", default="", help="write the rows here (JSON)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    refs = json.loads((Path(__file__).parent / "uq_references.json").read_text())
    cases = {"ODE-log": uq.ode_logistic(), "ODE-osc": uq.ode_oscillator()}
    for case in cases.values():
        case.evaluate(atoms=2)  # warm-up (tracing, caches)
    rows = []
    for k in range(args.rounds):
        for cid, case in cases.items():
            std = refs[cid]["std"]
            for eps in (float(x) for x in args.eps.split(",")):
                for on in (False, True) if k % 2 == 0 else (True, False):
                    costguards.TIME_MODEL = on
                    t = time.process_time()
                    r = case.evaluate(target_w1=eps * std, max_seconds=args.max_seconds)
                    row = {
                        "case": cid,
                        "eps": eps,
                        "new": on,
                        "bound": r.w1_bound,
                        "x_eps": r.w1_bound / (eps * std),
                        "cpu": round(time.process_time() - t, 2),
                        "rounds": [h["atoms"] for h in r.info["refinement"]],
                        "load": os.getloadavg()[0],
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
