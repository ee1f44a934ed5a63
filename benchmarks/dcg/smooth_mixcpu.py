"""CPU of the box-linear mixture alone with the smoothed rounding on and off, on a UQ case's recorded inputs.

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/dcg/smooth_mixcpu.py Ishigami:64 [reps]

The case is evaluated once at fixed atoms with every :func:`opgraph.dcg.boxlinear.mixture` call's arguments
recorded; the largest call (most candidate boxes) is then repeated ``reps`` times, switch ``box_smooth`` off and on
interleaved, and the median CPU s (``time.process_time``) of each, its bound and lattice points are printed.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.dcg import boxlinear, switches

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uq  # noqa: E402


def main() -> None:
    cid, atoms = sys.argv[1].split(":")
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    case = {c.id: c for c in uq.make_cases()}[cid]
    calls: list[tuple[Any, ...]] = []
    mix = boxlinear.mixture

    def spy(*a: Any, **kw: Any) -> Any:
        calls.append((a, kw))
        return mix(*a, **kw)

    boxlinear.mixture = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.evaluate(atoms=int(atoms), progress=False)
    finally:
        boxlinear.mixture = mix
    a, kw = max(calls, key=lambda c: int(np.size(c[0][4])))
    a, kw = a[:7], {**kw, "ceiling": None}  # build whatever a bound held elsewhere
    times: dict[bool, list[float]] = {False: [], True: []}
    out: dict[bool, Any] = {}
    for _ in range(reps):
        for on in (False, True):
            with switches.scope({"box_smooth": on}), np.errstate(all="ignore"):
                t0 = time.process_time()
                out[on] = mix(*a, **kw)
                times[on].append(time.process_time() - t0)
    for on in (False, True):
        got = out[on]
        info = got[3] if got else {}
        print(
            f"{cid}:{atoms} box_smooth={on}: median {statistics.median(times[on]):.3f} CPU s over {reps}, "
            f"bound {info.get('bound')}, disc {info.get('discretization')}, lattice points {info.get('lattice_points')}"
        )


if __name__ == "__main__":
    main()
