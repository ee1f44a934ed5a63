"""Box-linear mixture as on main vs branch mix-many, same process, interleaved (UQ cases).

``old``: ``box_linear_variance`` off, ``boxlinear.UNIFORM_CLOSED = False``, ``boxlinear.FIT_BUDGET = False`` (main's
mixture); ``new``: the three on (this branch's defaults). Per row: bound, bound/true, CPU s of the call, the
mixtures' own CPU s (every mixture the call built) and the lattice step of the last one.

    PYTHONPATH=src python benchmarks/dcg/mixmany_bench.py --only WingWeight,OTL --eps 1e-2 --atoms 4 [--no-guard]

``--no-guard`` lifts the fixed-atoms guard (``fixedbudget.SECONDS["box_linear"]``) to show what the mixture costs
there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="WingWeight,OTL")
    ap.add_argument("--eps", default="1e-2")
    ap.add_argument("--atoms", default="")
    ap.add_argument("--limit", type=float, default=60.0)
    ap.add_argument("--no-guard", action="store_true")
    ap.add_argument("--out-json", default="")
    a = ap.parse_args()
    if a.no_guard:
        fixedbudget.SECONDS["box_linear"] = 1e9
    cases = {c.id: c for c in uq.make_cases()}
    rows = []
    for cid in a.only.split(","):
        case = cases[cid]
        ref = uq.load_reference(case)
        uq.dcg_row(case, ref, a.limit, atoms=2)  # warm-up (tracing, caches), as uq.py's run_dcg
        calls = [{"target_w1": float(e) * ref.std} for e in a.eps.split(",") if e]
        calls += [{"atoms": int(n)} for n in a.atoms.split(",") if n]
        for kw in calls:
            for mode in ("old", "new"):
                r = row(case, ref, mode, a.limit, **kw)
                what = f"eps={kw['target_w1'] / ref.std:g}" if "target_w1" in kw else f"atoms={kw['atoms']}"
                rows.append({"case": cid, "call": what, "mode": mode, **r})
                print(json.dumps(rows[-1], default=str), flush=True)
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
