"""Same-process A/B of the fixed-atoms allocations' time share (``budgetalloc.FIXED_ATOMS_SECONDS``, branch cand-alloc).

For each case and atom count, back to back in one process: ``off`` (switch ``budget_alloc_fixed_atoms`` off),
``old`` (on, every rung of the ladder in ladder order: ``FIXED_ATOMS_SECONDS = None``, ``MODEL_FIRST`` and
``MODEL_SKIP`` off) and ``new`` (on, the module's defaults). Prints one row per call (bound, bound/true against the
suite's reference, CPU s, allocations evaluated / skipped) and writes them as JSON.

Usage: ``PYTHONPATH=src python benchmarks/dcg/alloc_share_ab.py WingWeight:4,8 OTL:16 out.json [off,old,new]``
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402

from opgraph.dcg import budgetalloc  # noqa: E402

_DEFAULTS = (budgetalloc.FIXED_ATOMS_SECONDS, budgetalloc.MODEL_FIRST, budgetalloc.MODEL_SKIP)


def _configure(cfg: str) -> dict[str, bool]:
    """Set the module constants for ``cfg`` and return its switches."""
    if cfg == "old":
        budgetalloc.FIXED_ATOMS_SECONDS, budgetalloc.MODEL_FIRST, budgetalloc.MODEL_SKIP = None, False, False
    else:
        budgetalloc.FIXED_ATOMS_SECONDS, budgetalloc.MODEL_FIRST, budgetalloc.MODEL_SKIP = _DEFAULTS
    return {"budget_alloc": True, "budget_alloc_fixed_atoms": cfg != "off"}


def main(argv: list[str]) -> None:
    """Run the A/B over ``argv = [CASE:atoms,..., ..., output JSON, [configs]]``."""
    warnings.simplefilter("ignore")
    cfgs = ["off", "old", "new"]
    if "," in argv[-1] or argv[-1] in ("off", "old", "new"):
        cfgs = argv[-1].split(",")
        argv = argv[:-1]
    cases = {c.id: c for c in uq.make_cases()}
    rows = []
    for spec in argv[:-1]:
        cid, counts = spec.split(":")
        case = cases[cid]
        ref = uq.load_reference(case)
        case.evaluate(atoms=2, progress=False)  # warm-up (tracing, caches)
        for n in [int(a) for a in counts.split(",")]:
            for cfg in cfgs:
                r, cpu, w1 = uq.fixed_call(case, ref, n, _configure(cfg))
                alloc = (r.info.get("atoms_reduced") or {}).get("allocation", {})
                cands = alloc.get("candidates", [])
                row = {
                    "case": cid,
                    "atoms": n,
                    "cfg": cfg,
                    "bound": r.w1_bound,
                    "true": w1,
                    "cpu": cpu,
                    "used": r.info.get("atoms_per_input"),
                    "evaluated": len(cands),
                    "skipped": len(alloc.get("skipped", [])),
                }
                rows.append(row)
                print(
                    f"{cid:10s} {n:4d} {cfg:4s} bound {r.w1_bound:.4g} true {w1:.3g} b/t {r.w1_bound / w1:.1f} "
                    f"cpu {cpu:.2f} eval {row['evaluated']} skip {row['skipped']} used {list(row['used'].values())}",
                    flush=True,
                )
                Path(argv[-1]).write_text(json.dumps(rows, indent=1))
    _configure("new")


if __name__ == "__main__":
    main(sys.argv[1:])
