"""Box-linear mixture on vs off (branch boxlin-on): target_w1 and fixed-atoms calls of UQ cases, same process.

Interleaved A/B (off, on) per row, 1 thread, CPU seconds of the call; the mixture's own CPU (every mixture the call
built, counted by wrapping :func:`opgraph.dcg.boxlinear.mixture`) and how many it built or skipped.

    PYTHONPATH=src python benchmarks/dcg/boxlin_on_bench.py --only OTL,Borehole --eps 1e-2 --atoms 8,16

``--sweep S`` adds ``uq.py``'s fixed-atoms sweep per switch value (rows of ``--sweep-atoms``, stopped as ``uq.py``
stops it: a row over ``S / 4`` CPU s, or the rows' total over ``S``), run off then on for each case.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchcli  # noqa: E402
import uq  # noqa: E402

from opgraph.dcg import boxlinear  # noqa: E402

_STATS = {"calls": 0, "built": 0, "cpu": 0.0}
_orig = boxlinear.mixture


def _counted(*a: Any, **k: Any) -> Any:
    t0 = time.process_time()
    out = _orig(*a, **k)
    _STATS["calls"] += 1
    _STATS["built"] += out is not None
    _STATS["cpu"] += time.process_time() - t0
    return out


boxlinear.mixture = _counted


def row(case: Any, ref: Any, on: bool, limit: float, **kw: Any) -> dict[str, Any]:
    """One call under the switch ``box_linear = on``: bound, bound/true, CPU s, mixture CPU s."""
    from opgraph.dcg import switches

    _STATS.update(calls=0, built=0, cpu=0.0)
    with switches.scope({"box_linear": on}):
        r = uq.dcg_row(case, ref, limit, **kw)
    out = {k: r.get(k) for k in ("status", "time_s", "bound", "w1", "met", "bound_method", "atoms_per_input")}
    if r.get("bound") is not None:
        out["bound_std"] = r["bound"] / ref.std
        out["ratio"] = r["bound"] / r["w1"] if r["w1"] > 0 else None
    out.update(mix_calls=_STATS["calls"], mix_built=_STATS["built"], mix_cpu=round(_STATS["cpu"], 2))
    return out


def main() -> None:
    """Command line: see the module docstring."""
    ap = benchcli.parser(__doc__)
    benchcli.add(ap, only="OTL,Borehole", eps="1e-2", atoms="", limit=60.0, out_json="")
    ap.add_argument("--sweep", type=float, default=0.0, help="CPU s of uq.py's sweep rule (0: no sweep)")
    ap.add_argument("--sweep-atoms", default="2,4,8,16")
    a = ap.parse_args()
    rows = []
    for case in benchcli.uq_cases(a.only):
        cid, ref = case.id, uq.load_reference(case)
        uq.dcg_row(case, ref, a.limit, atoms=2)  # warm-up (tracing, caches), as uq.py's run_dcg
        for kw in benchcli.uq_calls(a.eps, a.atoms, ref.std):
            for on in (False, True):
                r = row(case, ref, on, a.limit, **kw)
                rows.append({"case": cid, "call": benchcli.call_label(kw, ref.std), "on": on, **r})
                print(json.dumps(rows[-1], default=str), flush=True)
        for on in (False, True) if a.sweep > 0 else ():
            spent = 0.0
            for n in benchcli.ints(a.sweep_atoms):
                r = row(case, ref, on, a.limit, atoms=n)
                rows.append({"case": cid, "call": f"sweep atoms={n}", "on": on, **r})
                print(json.dumps(rows[-1], default=str), flush=True)
                spent += r["time_s"]
                if r["status"] != "ok" or spent > a.sweep or r["time_s"] > a.sweep / 4:
                    break
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
