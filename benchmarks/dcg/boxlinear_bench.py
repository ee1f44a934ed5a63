"""The box-linear mixture answer (``opgraph.dcg.boxlinear``) on the UQ suite's smooth programs: off / on.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python benchmarks/dcg/boxlinear_bench.py [--only WingWeight,OTL]
[--atoms 4 8 16] [--no-write]``.

Per case and atom count, the switch ``box_linear`` off (the point-mass answer and its best certificate) and on, in
one process after a warm-up at 2 atoms, interleaved. The true W1 is against the UQ suite's cached 2^22-point
references (``benchmarks/dcg/uq.py``, whose own error is in ``err/std``). CPU s of one call (1 thread). Writes the
section "Box-linear mixture answer" of docs/benchmarks/dcg.md between markers.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchcli  # noqa: E402
import uq  # noqa: E402

from opgraph._base.fileio import replace_marked_block  # noqa: E402

BEGIN = "<!-- boxlinear:begin (written by benchmarks/dcg/boxlinear_bench.py) -->"
END = "<!-- boxlinear:end -->"
CASES = ["WingWeight", "OTL", "MLP", "Borehole", "Piston"]


def one(case: Any, ref: Any, atoms: int, on: bool) -> dict[str, Any]:
    """One fixed-atoms call with the switch set: bound, true W1 (both / std), CPU s, how the bound was made."""
    r, cpu, true = uq.fixed_call(case, ref, atoms, {"box_linear": on})
    bl = r.info.get("box_linear") or {}
    return {
        "bound": float(r.w1_bound) / ref.std,
        "true": true / ref.std,
        "ratio": float(r.w1_bound) / true if true > 0 else float("inf"),
        "cpu": cpu,
        "method": r.info.get("bound_method", r.info.get("method", "")),
        "mix_cpu": bl.get("cpu_s"),
        "parts": (bl.get("remainder"), bl.get("discretization"), bl.get("point_mass_boxes")),
    }


def main(argv: list[str] | None = None) -> None:
    ap = benchcli.add(benchcli.parser(__doc__, summary=True), only=",".join(CASES))
    ap.add_argument("--atoms", type=int, nargs="*", default=[4, 8, 16])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    cases = benchcli.uq_cases(args.only, suite_order=True)
    load0 = os.getloadavg()[0]
    lines = []
    for case in cases:
        ref = uq.load_reference(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.evaluate(atoms=2, progress=False)  # warm-up
        for n in args.atoms:
            off = one(case, ref, n, False)
            on = one(case, ref, n, True)
            std = ref.std
            parts = on["parts"]
            split = "" if parts[0] is None else " / ".join(f"{p / std:.3g}" for p in parts)
            line = (
                f"| {case.id} | {n} | {off['bound']:.4g} | {on['bound']:.4g} | {off['ratio']:.3g} | {on['ratio']:.3g}"
                f" | {off['true']:.3g} | {on['true']:.3g} | {off['cpu']:.2f} | {on['cpu']:.2f} | {on['method']}"
                f" | {split} | {ref.err / std:.1e} |"
            )
            print(line, flush=True)
            lines.append(line)
            if off["cpu"] > 60:
                break
    load1 = os.getloadavg()[0]
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = "\n".join(
        [
            BEGIN,
            "### Box-linear mixture answer (off / on)",
            "",
            f"`{' '.join(['python benchmarks/dcg/boxlinear_bench.py', *sys.argv[1:]])}`, {stamp}, "
            f"{platform.machine()} {platform.python_version()}, 1 thread, load {load0:.1f}-{load1:.1f} "
            "(shared machine: CPU s are noisy). Bounds and true W1 in units of the output's std; true W1 against the "
            "cached 2^22-point references (`uq.py`). `parts`: remainder / lattice / point-mass boxes of the mixture "
            "bound (std).",
            "",
            "| case | atoms | bound off | bound on | bound/true off | bound/true on | true off | true on | CPU s off"
            " | CPU s on | bound from (on) | parts | ref err/std |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *lines,
            END,
        ]
    )
    if not args.no_write:
        replace_marked_block(os.path.join(uq.ROOT, "docs", "benchmarks", "dcg.md"), BEGIN, END, block)
    print(block)


if __name__ == "__main__":
    main()
