"""ODE-osc with the polynomial box models (branch ode-osc): switch ``poly_model`` off vs on, same process.

Interleaved A/B (off, on) per row, 1 thread, CPU seconds of the call: fixed atoms 4 and 8 per input, and
``target_w1 = 1e-2 std``. One JSON line per call.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/polymodel_ab.py
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402

from opgraph.dcg import switches  # noqa: E402

STD = 0.21355521020639018  # ODE-osc's output std (uq.py's cached reference)
ROWS = (("atoms", 4), ("atoms", 8), ("target", 1e-2))


def main() -> None:
    """Print one JSON line per (row, switch value)."""
    case = uq.ode_oscillator()
    warnings.simplefilter("ignore")
    case.evaluate(atoms=2, progress=False)  # warm-up (tracing, caches)
    for kind, v in ROWS:
        for on in (False, True):
            kw = {"atoms": v} if kind == "atoms" else {"target_w1": v * STD}
            with switches.scope({"poly_model": on}):
                t = time.process_time()
                r = case.evaluate(progress=False, **kw)
                dt = time.process_time() - t
            row = {
                "row": f"{kind}={v}",
                "poly_model": on,
                "bound": r.w1_bound,
                "bound_std": r.w1_bound / STD,
                "method": r.info.get("bound_method"),
                "atoms": r.info.get("atoms_per_input"),
                "cpu_s": round(dt, 2),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
