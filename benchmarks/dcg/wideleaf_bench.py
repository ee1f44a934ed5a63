"""Disjoint split with one wide part off vs on (branch undamped-mix): ``target_w1`` calls, same process, interleaved.

    PYTHONPATH=src python benchmarks/dcg/wideleaf_bench.py --only Undamped,Ishigami,OTL,MLP,WingWeight --eps 1e-2

Per case a warm-up (``atoms=2``), then for each eps and each of ``--rounds`` rounds the ``target_w1 = eps * std``
call with the switch ``wide_leaf`` off, then on (1 thread, CPU s of the call, warnings silenced): bound and true W1
in units of the output's std, bound / true, the bound's method, the split's description where it ran.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchcli  # noqa: E402
import uq  # noqa: E402


def main() -> None:
    """Command line: see the module docstring."""
    from opgraph.dcg import switches

    ap = benchcli.add(
        benchcli.parser(__doc__),
        only=("Undamped", "comma-separated case ids"),
        eps=("1e-2", "comma-separated eps (target_w1 = eps * the output's std)"),
        rounds=(1, "interleaved off/on rounds per eps"),
        out_json="",
    )
    a = ap.parse_args()
    rows = []
    for case in benchcli.uq_cases(a.only):
        cid, ref = case.id, uq.load_reference(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.evaluate(atoms=2, progress=False)  # tracing and caches, as uq.py's warm-up
        for eps in [float(e) for e in benchcli.items(a.eps)]:
            for k in range(a.rounds):
                for on in (False, True):
                    with switches.scope({"wide_leaf": on}), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t0 = time.process_time()
                        r = case.evaluate(target_w1=eps * ref.std, progress=False)
                        cpu = time.process_time() - t0
                    w1 = ref.w1(r.atoms, r.weights)
                    row = {
                        "case": cid,
                        "eps": eps,
                        "round": k,
                        "wide_leaf": on,
                        "bound_std": r.w1_bound / ref.std,
                        "true_std": w1 / ref.std,
                        "ratio": r.w1_bound / w1 if w1 > 0 else None,
                        "cpu_s": round(cpu, 2),
                        "method": r.info.get("bound_method"),
                        "split": r.info.get("split"),
                        "grid_engine_bound_std": (r.info.get("grid_engine_bound") or float("nan")) / ref.std,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
