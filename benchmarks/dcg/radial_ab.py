"""The radial slope remainder (:mod:`opgraph.dcg.radial`) against the sub-box remainder without it, per UQ case.

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/dcg/radial_ab.py Piston:4 OTL:4 --rounds 2

For each ``Case:atoms`` (a :mod:`uq` case at fixed atoms), the switch ``radial_slope`` off and on, interleaved in one
process (``--rounds`` times; the smallest CPU kept): the certified bound, the true W1 of the answer (``uq``'s
reference), the mixture's remainder part (spied on as :mod:`mix_slack` does) and the CPU seconds
(``time.process_time``), bounds in output stds. ``--switch radial_choose`` A/Bs that switch instead (with
``radial_slope`` on). ``--slices K`` / ``--exact-slices K`` set
:data:`opgraph.dcg.radial.SLICES` / :data:`opgraph.dcg.radial.EXACT_SLICES` for the runs with the switch on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mix_slack  # noqa: E402
import uq  # noqa: E402

from opgraph.dcg import radial, radialchoose  # noqa: E402
from opgraph.dcg.switches import scope  # noqa: E402

SWITCH = "radial_slope"


def one(case: Any, n: int, on: bool) -> dict[str, float]:
    """``case`` at ``n`` atoms with the switch ``on``: bound, true W1, remainder (output stds), CPU s."""
    ref = uq.load_reference(case)
    with scope({SWITCH: on}):
        t0 = time.process_time()
        r, calls = mix_slack.spy_mixtures(case, n)
        cpu = time.process_time() - t0
    mine = [c for c in calls if c["got"] is not None and abs(c["got"][2] - r.w1_bound) <= 1e-9 * r.w1_bound]
    rem = mine[-1]["got"][3]["remainder"] / ref.std if mine else float("nan")
    return {
        "bound": r.w1_bound / ref.std,
        "true": ref.w1(r.atoms, r.weights) / ref.std,
        "remainder": rem,
        "cpu": cpu,
        "method": r.info.get("bound_method"),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("specs", nargs="+", help="Case:atoms, e.g. Piston:4")
    p.add_argument("--rounds", type=int, default=1, help="off/on rounds, interleaved (the smallest CPU is kept)")
    p.add_argument("--slices", type=int, default=None, help="radial.SLICES for the runs with the switch on")
    p.add_argument("--exact-slices", type=int, default=None, help="radial.EXACT_SLICES for the runs with it on")
    p.add_argument("--switch", default="radial_slope", help="the switch to A/B (radial_slope, radial_choose)")
    p.add_argument("--choose-cost", type=float, default=0.0, help="radialchoose.COST (the default 0)")
    a = p.parse_args(argv)
    radialchoose.COST = a.choose_cost
    global SWITCH
    SWITCH = a.switch
    if a.slices is not None:
        radial.SLICES = a.slices
    if a.exact_slices is not None:
        radial.EXACT_SLICES = a.exact_slices
    cases = {c.id: c for c in uq.make_cases()}
    print(
        "| case:atoms | bound off | bound on | true W1 off | true W1 on | bound/true off | bound/true on | "
        "remainder off | remainder on | CPU s off | CPU s on | method |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for spec in a.specs:
        cid, n = spec.split(":")
        got: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for _ in range(a.rounds):
            for on in (False, True):
                got[on].append(one(cases[cid], int(n), on))
        d0, d1 = got[False][-1], got[True][-1]
        c0, c1 = min(d["cpu"] for d in got[False]), min(d["cpu"] for d in got[True])
        print(
            f"| {spec} | {d0['bound']:.4g} | {d1['bound']:.4g} | {d0['true']:.4g} | {d1['true']:.4g} | "
            f"{d0['bound'] / d0['true']:.3g} | {d1['bound'] / d1['true']:.3g} | {d0['remainder']:.4g} | "
            f"{d1['remainder']:.4g} | {c0:.2f} | {c1:.2f} | {d1['method']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
