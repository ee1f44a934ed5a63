"""A/B of the smoothed lattice rounding (:mod:`opgraph.dcg.boxsmooth`) on UQ cases, switch on and off in one process.

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/dcg/smooth_ab.py [--no-b] Piston:4 MLP:8 Piston:t

``Case:atoms`` is a fixed-atoms call, ``Case:t`` a ``target_w1 = 1e-2 * std`` call. Per setting, three runs
interleaved: ``off`` (switch ``box_smooth`` off), ``A`` (on, the lattice step rule unchanged) and ``B`` (on,
``boxsmooth.MATCH_STEP``: the step sized for the smoothed cost). Per run:
the bound and the answer's true W1 (against ``uq``'s reference, in output std), CPU s (``time.process_time``), and
from the mixture that set the answer (spied on): its lattice step, lattice points and the mass of smoothed boxes.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import opgraph.dcg as od  # noqa: F401
from opgraph.dcg import boxlinear, boxsmooth, switches

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uq  # noqa: E402


def run(case: Any, ref: Any, what: str, values: dict[str, bool], match: bool) -> dict[str, Any]:
    """One call of ``case`` (``what``: atoms or ``t``) under ``values`` and ``MATCH_STEP = match``; the row."""
    boxsmooth.MATCH_STEP, keep = match, boxsmooth.MATCH_STEP
    infos: list[dict[str, Any]] = []
    mix = boxlinear.mixture

    def spy(*a: Any, **kw: Any) -> Any:
        got = mix(*a, **kw)
        if got is not None:
            infos.append(got[3])
        return got

    boxlinear.mixture = spy
    try:
        with switches.scope(values), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.process_time()
            if what == "t":
                r = case.evaluate(target_w1=1e-2 * ref.std, progress=False)
            else:
                r = case.evaluate(atoms=int(what), progress=False)
            cpu = time.process_time() - t0
    finally:
        boxlinear.mixture = mix
        boxsmooth.MATCH_STEP = keep
    mine = [i for i in infos if abs(i["bound"] - r.w1_bound) <= 1e-9 * r.w1_bound]
    info = mine[-1] if mine else {}
    return {
        "bound": r.w1_bound / ref.std,
        "true": ref.w1(r.atoms, r.weights) / ref.std,
        "cpu": cpu,
        "delta": info.get("delta"),
        "lattice_points": info.get("lattice_points"),
        "smoothed": info.get("boxes_smoothed"),
        "disc": info.get("discretization", float("nan")) / ref.std,
        "rest": info.get("remainder", float("nan")) / ref.std,
        "mixed_answer": bool(mine),
    }


def main() -> None:
    cases = {c.id: c for c in uq.make_cases()}
    out = []
    args = [a for a in sys.argv[1:] if a != "--no-b"]
    runs = (("off", False, False), ("A", True, False), ("B", True, True))
    if "--no-b" in sys.argv:  # B measured and rejected (module docstring of opgraph.dcg.boxsmooth): off and A only
        runs = runs[:2]
    for spec in args:
        cid, what = spec.split(":")
        case = cases[cid]
        ref = uq.load_reference(case)
        row: dict[str, Any] = {"case": cid, "what": what}
        for key, on, match in runs:
            row[key] = run(case, ref, what, {"box_smooth": on}, match)
        print(json.dumps(row), flush=True)
        out.append(row)


if __name__ == "__main__":
    main()
