"""Same-process A/B of the grid-budget allocation (``opgraph.dcg.budgetalloc``) on fixed-atoms UQ calls.

For each case and atom count: the switch ``budget_alloc`` off (the uniform cap), on with the bound-term
sensitivities (default), and on with the input spreads (``budgetalloc.SENSITIVITY = "spreads"``). Prints one row
per call (bound, true W1 against the suite's reference, CPU s, candidates evaluated, counts used) and writes them
as JSON.

Usage: ``PYTHONPATH=src python benchmarks/dcg/budgetalloc_ab.py OTL,WingWeight 16,64 out.json``
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402

from opgraph.dcg import budgetalloc  # noqa: E402


def main(argv: list[str]) -> None:
    """Run the A/B over ``argv = [cases, atom counts, output JSON]`` (comma-separated lists)."""
    warnings.simplefilter("ignore")
    cases = {c.id: c for c in uq.make_cases()}
    rows = []
    for cid in argv[0].split(","):
        case = cases[cid]
        ref = uq.load_reference(case)
        case.evaluate(atoms=2, progress=False)  # warm-up (tracing, caches)
        for n in [int(a) for a in argv[1].split(",")]:
            for cfg in ("off", "terms", "spreads"):
                budgetalloc.SENSITIVITY = "spreads" if cfg == "spreads" else "terms"
                r, cpu, w1 = uq.fixed_call(case, ref, n, {"budget_alloc": cfg != "off"})
                alloc = (r.info.get("atoms_reduced") or {}).get("allocation", {})
                row = {
                    "case": cid,
                    "atoms": n,
                    "cfg": cfg,
                    "bound": r.w1_bound,
                    "true": w1,
                    "cpu": cpu,
                    "used": r.info.get("atoms_per_input"),
                    "candidates": len(alloc.get("candidates", [])),
                }
                rows.append(row)
                print(
                    f"{cid:10s} {n:4d} {cfg:7s} bound {r.w1_bound:.4g} true {w1:.3g} b/t {r.w1_bound / w1:.1f} "
                    f"cpu {cpu:.2f} cand {row['candidates']} used {list(row['used'].values())}",
                    flush=True,
                )
    budgetalloc.SENSITIVITY = "terms"
    Path(argv[2]).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
