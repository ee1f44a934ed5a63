"""Sub-box slope remainder off vs on (branch piston-mix): fixed-atoms rows of UQ cases, same process, interleaved.

    PYTHONPATH=src python benchmarks/dcg/subslope_bench.py --rows Piston:4,OTL:4,Undamped:4

Per row: the call with the switch ``sub_slope`` off, then on (1 thread, CPU s of the call): bound and true W1 in
units of the output's std, bound / true, the bound's method, and the mixture's parts (remainder / lattice /
point-mass boxes, std).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchcli  # noqa: E402
import uq  # noqa: E402


def main() -> None:
    """Command line: see the module docstring."""
    ap = benchcli.parser(__doc__)
    benchcli.add(ap, rows=("Piston:4", "CASE:ATOMS,... (a case's rows run in the order given)"), out_json="")
    a = ap.parse_args()
    cases = {c.id: c for c in uq.make_cases()}
    rows, warm = [], set()
    for cid, n in benchcli.case_rows(a.rows):
        case = cases[cid]
        ref = uq.load_reference(case)
        if cid not in warm:  # tracing and caches, as uq.py's warm-up
            uq.fixed_call(case, ref, 2, {})
            warm.add(cid)
        for on in (False, True):
            r, cpu, w1 = uq.fixed_call(case, ref, int(n), {"sub_slope": on})
            mix = r.info.get("box_linear") or {}
            parts = [round(mix.get(k, 0.0) / ref.std, 4) for k in ("remainder", "discretization", "point_mass_boxes")]
            row = benchcli.ab_row(cid, "sub_slope", on, r, cpu, w1, ref.std, atoms=int(n), mix_std=parts)
            rows.append(row)
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
