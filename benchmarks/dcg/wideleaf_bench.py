"""Disjoint split with one wide part off vs on (branch undamped-mix): ``target_w1`` calls, same process, interleaved.

    PYTHONPATH=src python benchmarks/dcg/wideleaf_bench.py --only Undamped,Ishigami,OTL,MLP,WingWeight --eps 1e-2

Per case a warm-up (``atoms=2``), then for each eps and each of ``--rounds`` rounds the ``target_w1 = eps * std``
call with the switch ``wide_leaf`` off, then on (1 thread, CPU s of the call, warnings silenced): bound and true W1
in units of the output's std, bound / true, the bound's method, the split's description where it ran
(:func:`switch_ab.run` with the switch ``wide_leaf``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchcli  # noqa: E402
import switch_ab  # noqa: E402


def main() -> None:
    """Command line: see the module docstring."""
    ap = benchcli.add(
        benchcli.parser(__doc__),
        only=("Undamped", "comma-separated case ids"),
        eps=("1e-2", "comma-separated eps (target_w1 = eps * the output's std)"),
        rounds=(1, "interleaved off/on rounds per eps"),
        out_json="",
    )
    a = ap.parse_args()

    def split(r: Any, ref: Any) -> dict[str, Any]:
        """The split's description where it ran, and the grid engine's bound beside it (std)."""
        return {
            "split": r.info.get("split"),
            "grid_engine_bound_std": (r.info.get("grid_engine_bound") or float("nan")) / ref.std,
        }

    rows = switch_ab.run("wide_leaf", a.only, a.eps, "", a.rounds, extra=split)
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
