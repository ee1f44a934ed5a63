"""Half-line cells in the box-linear mixture (``opgraph.dcg.boxtails``) on the UQ suite: tails off / on.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python benchmarks/dcg/boxtails_bench.py [--only MLP,ODE-osc]
[--atoms 4 8 16] [--rounds 2]``.

Per case and atom count, with the box-linear mixture on (``box_linear``), its switch ``box_linear_tails`` off (only
boxes of finite cells are mixed: the state before) and on, in one process after a warm-up at 2 atoms, interleaved
in ``--rounds`` rounds (the CPU s reported is the smaller of the rounds). The true W1 is against the UQ suite's
cached 2^22-point references (``benchmarks/dcg/uq.py``). Prints a markdown table (bounds and true W1 in units of
the output's std); writes nothing.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchcli  # noqa: E402
import uq  # noqa: E402

CASES = ["MLP", "ODE-osc", "Undamped", "Borehole"]


def one(case: Any, ref: Any, atoms: int, tails: bool) -> dict[str, Any]:
    """One fixed-atoms call, the mixture on and its tail switch set: bound, true W1 (both / std), CPU s, parts."""
    r, cpu, true = uq.fixed_call(case, ref, atoms, {"box_linear": True, "box_linear_tails": tails})
    bl = r.info.get("box_linear") or {}
    return {
        "bound": float(r.w1_bound) / ref.std,
        "true": true / ref.std,
        "ratio": float(r.w1_bound) / true if true > 0 else float("inf"),
        "cpu": cpu,
        "method": r.info.get("bound_method", r.info.get("method", "")),
        "parts": tuple(bl.get(k, 0.0) / ref.std for k in ("remainder", "discretization", "point_mass_boxes"))
        if bl
        else None,
        "tail_mass": bl.get("tail_boxes_mixed", 0.0),
    }


def main(argv: list[str] | None = None) -> None:
    ap = benchcli.add(benchcli.parser(__doc__, summary=True), only=",".join(CASES))
    ap.add_argument("--atoms", type=int, nargs="*", default=[4, 8, 16])
    benchcli.add(ap, rounds=2)
    args = ap.parse_args(argv)
    cases = benchcli.uq_cases(args.only, suite_order=True)
    load0 = os.getloadavg()[0]
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        "| case | atoms | bound before | bound after | bound/true before | bound/true after | CPU s before"
        " | CPU s after | bound from (after) | parts after: remainder / lattice / point-mass boxes | tail-box mass"
        " mixed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        ref = uq.load_reference(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.evaluate(atoms=2, progress=False)  # warm-up
        for n in args.atoms:
            runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
            for _ in range(args.rounds):
                for tails in (False, True):
                    runs[tails].append(one(case, ref, n, tails))
            old, new = runs[False][0], runs[True][0]
            cpu_old = min(r["cpu"] for r in runs[False])
            cpu_new = min(r["cpu"] for r in runs[True])
            split = "-" if new["parts"] is None else " / ".join(f"{p:.3g}" for p in new["parts"])
            print(
                f"| {case.id} | {n} | {old['bound']:.4g} | {new['bound']:.4g} | {old['ratio']:.3g} | {new['ratio']:.3g}"
                f" | {cpu_old:.2f} | {cpu_new:.2f} | {new['method']} | {split} | {new['tail_mass']:.3g} |",
                flush=True,
            )
            if cpu_old > 60:
                break
    print(f"\n{stamp}, load {load0:.1f}-{os.getloadavg()[0]:.1f}, 1 thread, rounds {args.rounds}")


if __name__ == "__main__":
    main()
