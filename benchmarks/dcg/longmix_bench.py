"""Box-linear mixture on long programs (branch ode-mix): the lean Taylor pass off vs on, same process.

Interleaved A/B (off, on) per row, 1 thread, CPU seconds of the call (``uq.dcg_row``: bound, true W1 against the
case's cached reference, bound/true), plus the lean pass's CPU and the mixture's parts where it ran.

    PYTHONPATH=src python benchmarks/dcg/longmix_bench.py --only ODE-log,ODE-osc --atoms 8,16 --eps 1e-2 --rounds 1
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

from opgraph.dcg import engine  # noqa: E402

_LAST: dict[str, Any] = {}
_orig = engine._taylor_boxes


def _seen(*a: Any, **k: Any) -> Any:
    out = _orig(*a, **k)
    if out[2] is not None and out[2].get("lean"):
        _LAST["lean_cpu"] = _LAST.get("lean_cpu", 0.0) + float(out[2].get("cpu_s", 0.0))
    return out


engine._taylor_boxes = _seen


def row(case: Any, ref: Any, on: bool, limit: float, **kw: Any) -> dict[str, Any]:
    """One call under the switch ``long_mixture = on``."""
    from opgraph.dcg import switches

    _LAST.clear()
    with switches.scope({"long_mixture": on}):
        r = uq.dcg_row(case, ref, limit, **kw)
    out = {k: r.get(k) for k in ("status", "time_s", "bound", "w1", "met", "bound_method", "atoms_per_input")}
    if r.get("bound") is not None:
        out["bound_std"] = r["bound"] / ref.std
        out["true_std"] = r["w1"] / ref.std
        out["ratio"] = r["bound"] / r["w1"] if r["w1"] > 0 else None
    out["lean_cpu"] = round(_LAST.get("lean_cpu", 0.0), 2)
    return out


def main() -> None:
    """Command line: see the module docstring."""
    ap = benchcli.parser(__doc__)
    benchcli.add(ap, only="ODE-log,ODE-osc", atoms="8,16", eps="1e-2", rounds=1, limit=120.0, out="")
    args = ap.parse_args()
    cases = benchcli.uq_cases(args.only, suite_order=True)
    results = []
    print(f"start {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC", flush=True)
    for case in cases:
        ref = uq.load_reference(case)
        uq.dcg_row(case, ref, args.limit, atoms=2)  # warm-up (tracing)
        calls = [{"atoms": n} for n in benchcli.ints(args.atoms)]
        calls += [{"target_w1": float(e) * ref.std, "eps": float(e)} for e in benchcli.items(args.eps)]
        for kw in calls:
            for rnd in range(args.rounds):
                for on in (False, True):
                    call = {k: v for k, v in kw.items() if k != "eps"}
                    res = row(case, ref, on, args.limit, **call)
                    res.update(case=case.id, on=on, round=rnd, call={k: kw[k] for k in kw if k != "target_w1"})
                    results.append(res)
                    print(json.dumps(res, default=str), flush=True)
    print(f"end {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
