"""Box-linear mixture as on main vs branch mix-many, same process, interleaved (UQ cases).

``old``: ``box_linear_variance`` off, ``boxlinear.UNIFORM_CLOSED = False``, ``boxlinear.FIT_BUDGET = False`` (main's
mixture); ``new``: the three on (this branch's defaults). Per row: bound, bound/true, CPU s of the call, the
mixtures' own CPU s (every mixture the call built) and the lattice step of the last one.

    PYTHONPATH=src python benchmarks/dcg/mixmany_bench.py --only WingWeight,OTL --eps 1e-2 --atoms 4 [--no-guard]

``--no-guard`` lifts the fixed-atoms guard (``fixedbudget.SECONDS["box_linear"]``) to show what the mixture costs
there.
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

from opgraph.dcg import boxlinear, fixedbudget, switches  # noqa: E402

_STATS: dict[str, Any] = {"cpu": 0.0, "built": 0, "delta": None}
_orig = boxlinear.mixture


def _counted(*a: Any, **k: Any) -> Any:
    t0 = time.process_time()
    out = _orig(*a, **k)
    _STATS["cpu"] += time.process_time() - t0
    if out is not None:
        _STATS["built"] += 1
        _STATS["delta"] = out[3]["delta"]
    return out


boxlinear.mixture = _counted


def row(case: Any, ref: Any, mode: str, limit: float, **kw: Any) -> dict[str, Any]:
    """One call with the mixture as on main (``old``) or on this branch (``new``)."""
    new = mode == "new"
    _STATS.update(cpu=0.0, built=0, delta=None)
    boxlinear.UNIFORM_CLOSED = boxlinear.FIT_BUDGET = new
    with switches.scope({"box_linear": True, "box_linear_variance": new}):
        r = uq.dcg_row(case, ref, limit, **kw)
    out = {k: r.get(k) for k in ("status", "time_s", "bound_method", "atoms_per_input")}
    if r.get("bound") is not None:
        out["bound_std"] = r["bound"] / ref.std
        out["ratio"] = r["bound"] / r["w1"] if r["w1"] > 0 else None
    out.update(mix_built=_STATS["built"], mix_cpu=round(_STATS["cpu"], 2), delta=_STATS["delta"])
    return out


def main() -> None:
    """Command line: see the module docstring."""
    ap = benchcli.parser(__doc__)
    benchcli.add(ap, only="WingWeight,OTL", eps="1e-2", atoms="", limit=60.0)
    ap.add_argument("--no-guard", action="store_true")
    benchcli.add(ap, out_json="")
    a = ap.parse_args()
    if a.no_guard:
        fixedbudget.SECONDS["box_linear"] = 1e9
    rows = []
    for case in benchcli.uq_cases(a.only):
        cid, ref = case.id, uq.load_reference(case)
        uq.dcg_row(case, ref, a.limit, atoms=2)  # warm-up (tracing, caches), as uq.py's run_dcg
        for kw in benchcli.uq_calls(a.eps, a.atoms, ref.std):
            for mode in ("old", "new"):
                r = row(case, ref, mode, a.limit, **kw)
                rows.append({"case": cid, "call": benchcli.call_label(kw, ref.std), "mode": mode, **r})
                print(json.dumps(rows[-1], default=str), flush=True)
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
