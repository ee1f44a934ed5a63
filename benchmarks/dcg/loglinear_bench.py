"""Log-linear box models (branch dosc-mix): the switch ``log_linear`` off vs on, same process, interleaved rounds.

Per row (a ``target_w1 = eps * std`` call or a fixed-atoms call of a UQ case): bound (output std), bound / true W1
(true W1 of that answer against the suite's cached reference), CPU s of the call, the answer's bound method and
mixture parts. 1 thread; CPU seconds are noisy on a shared machine (compare within a round).

    PYTHONPATH=src python benchmarks/dcg/loglinear_bench.py --only DampedOsc --eps 1e-2 --atoms 2,4 --rounds 2
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchcli  # noqa: E402
import uq  # noqa: E402

from opgraph.dcg import switches  # noqa: E402


def row(case: Any, ref: Any, on: bool, **kw: Any) -> dict[str, Any]:
    """One call with ``log_linear = on``: bound and true W1 in output std, CPU s, method, mixture parts."""
    with switches.scope({"log_linear": on}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.process_time()
        r = case.evaluate(progress=False, **kw)
        cpu = time.process_time() - t0
    true = ref.w1(r.atoms, r.weights)
    bl = r.info.get("box_linear") or {}
    parts = {k: bl[k] / ref.std for k in ("remainder", "discretization", "point_mass_boxes") if k in bl}
    return {
        "bound": r.w1_bound / ref.std,
        "true": true / ref.std,
        "ratio": r.w1_bound / true if true > 0 else float("nan"),
        "cpu": cpu,
        "method": r.info.get("bound_method", "") + ("/log" if bl.get("coordinates") == "log" else ""),
        "parts": parts,
        "mixed": bl.get("boxes_mixed"),
    }


def main() -> None:
    """Command line: see the module docstring."""
    ap = benchcli.add(
        benchcli.parser(__doc__),
        only="DampedOsc",
        eps=("1e-2", "comma-separated target_w1 accuracies (x std); '' for none"),
        atoms=("2,4", "comma-separated fixed atoms per input; '' for none"),
        rounds=1,
    )
    args = ap.parse_args()
    print(f"# {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}", flush=True)
    for case in benchcli.uq_cases(args.only):
        cid, ref = case.id, uq.load_reference(case)
        calls = [("target", {"target_w1": float(e) * ref.std}, e) for e in benchcli.items(args.eps)]
        calls += [("atoms", {"atoms": int(a)}, a) for a in benchcli.items(args.atoms)]
        for rnd in range(args.rounds):
            for kind, kw, lab in calls:
                for on in (False, True):
                    r = row(case, ref, on, **kw)
                    parts = " / ".join(f"{v:.3f}" for v in r["parts"].values()) if r["parts"] else "-"
                    print(
                        f"| {cid} | {kind} {lab} | {'on' if on else 'off'} | {r['bound']:.4f} | {r['true']:.5f} | "
                        f"{r['ratio']:.1f} | {r['cpu']:.1f} | {r['method']} | {parts} | round {rnd + 1} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
