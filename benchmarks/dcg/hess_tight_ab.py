"""Branch hess-tight: the quotient Hessian form and the exact cell second moments, switch off/on (A/B).

Run (1 thread, CPU time, interleaved in one process):
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/dcg/hess_tight_ab.py Piston:4 OTL:4 --rounds 1

For each ``Case:atoms`` of ``benchmarks/dcg/uq.py``: the certified bound and the answer's true W1 (output stds,
``uq``'s cached reference), bound/true and CPU s, with the switches ``exact_cell_m2`` and ``hess_quotient``
(:mod:`opgraph.dcg.switches`) as each configuration sets them; also the Taylor pass's remainder diagnosis
(:func:`opgraph.dcg.taylor._box_piece`'s ``parts``, summed over its calls with linear models).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.dcg import taylor
from opgraph.dcg.switches import scope

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uq  # noqa: E402

CONFIGS = {
    "off": {"exact_cell_m2": False},
    "m2": {"exact_cell_m2": True},
    "quot_off": {"hess_quotient": False},
    "quot_on": {"hess_quotient": True},
    "main": {"exact_cell_m2": False, "hess_quotient": False},
    "branch": {"exact_cell_m2": True, "hess_quotient": True},
}


def run(case: Any, n: int, values: dict[str, bool]) -> dict[str, Any]:
    """One fixed-atoms call under ``values``: bound, true W1 (stds), CPU s and the Taylor passes' parts."""
    piece = taylor._box_piece
    agg: dict[str, float] = {}

    def spy(*a: Any, **kw: Any) -> Any:
        parts = a[7] if len(a) > 7 else None
        got = piece(*a, **kw)
        if parts is not None and kw.get("linear") is not None:
            for key in ("remainder", "slope_mass", "finite_mass"):
                if key in parts:
                    agg[key] = agg.get(key, 0.0) + parts[key]
        return got

    ref = uq.load_reference(case)
    taylor._box_piece = spy  # type: ignore[assignment]
    try:
        with scope(values), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.process_time()
            r = case.evaluate(atoms=n)
            cpu = time.process_time() - t0
    finally:
        taylor._box_piece = piece  # type: ignore[assignment]
    return {
        "bound": r.w1_bound / ref.std,
        "true": ref.w1(r.atoms, r.weights) / ref.std,
        "cpu": cpu,
        "parts": agg,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--configs", default="off,on")
    args = ap.parse_args()
    cases = {c.id: c for c in uq.make_cases()}
    names = args.configs.split(",")
    print("| case:atoms | config | bound | true W1 | bound/true | CPU s | Taylor remainder (parts) |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.specs:
        cid, n = spec.split(":")
        got: dict[str, list[dict[str, Any]]] = {k: [] for k in names}
        for _ in range(args.rounds):
            for k in names:
                got[k].append(run(cases[cid], int(n), CONFIGS[k]))
        for k in names:
            rows = got[k]
            b = rows[0]["bound"]
            t = rows[0]["true"]
            cpu = float(np.median([x["cpu"] for x in rows]))
            p = rows[0]["parts"]
            print(
                f"| {spec} | {k} | {b:.4g} | {t:.4g} | {b / t:.2f} | {cpu:.1f} | {p.get('remainder', float('nan')):.4g} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
