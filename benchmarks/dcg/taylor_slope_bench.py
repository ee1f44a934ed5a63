"""The Taylor box bound's slope remainder (``opgraph.dcg.taylor.SLOPE``) on the UQ suite: off / on, in one process.

Run:  ``OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python benchmarks/dcg/taylor_slope_bench.py Piston 4,8
[--box-linear 0,1] [--modes off,on]``

Per case, atom count and ``box_linear`` switch, the modes in turn (interleaved): ``off`` (no slope form, the Hessian
form only), ``walk`` (the slope form with interval gradients over the whole box and the walk's boxes), ``on``
(the default: the walk with affine gradients too, under ``taylor.AFFINE_MAX_WORK``). Prints bound and true W1 in
units of the output's std (true W1 against the cached 2^22-point references of ``benchmarks/dcg/uq.py``), bound /
true, CPU s of the call (1 thread), the bound's method, the Taylor pass's summary and the mixture's parts. Nothing is
written; the numbers in docs/benchmarks/dcg.md ("Taylor slope remainder") come from this script.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchcli  # noqa: E402
import uq  # noqa: E402

from opgraph.dcg import taylor  # noqa: E402

MODES = {"off": (False, False, False), "walk": (True, True, False), "on": (True, True, True)}


def main(argv: list[str] | None = None) -> None:
    ap = benchcli.add_case_atoms(benchcli.parser(__doc__, summary=True))
    ap.add_argument("--box-linear", default="0,1")
    args = benchcli.add(ap, modes="off,on").parse_args(argv)
    for case in benchcli.uq_cases(args.cases):
        name, ref = case.id, uq.load_reference(case)
        for n in benchcli.ints(args.atoms):
            for bl in (bool(x) for x in benchcli.ints(args.box_linear)):
                for mode in benchcli.items(args.modes):
                    taylor.SLOPE, taylor.SLOPE_WALK, taylor.SLOPE_AFFINE = MODES[mode]
                    r, cpu, true = uq.fixed_call(case, ref, n, {"box_linear": bl})
                    mix = r.info.get("box_linear") or {}
                    parts = (
                        ""
                        if not mix
                        else " / ".join(
                            f"{mix[k] / ref.std:.3g}" for k in ("remainder", "discretization", "point_mass_boxes")
                        )
                    )
                    print(
                        f"{name} atoms={n} box_linear={int(bl)} {mode:4s} bound/std={r.w1_bound / ref.std:.4g} "
                        f"true/std={true / ref.std:.3g} bound/true={r.w1_bound / true:.3g} cpu={cpu:.1f} "
                        f"method={r.info.get('bound_method')} taylor={r.info.get('taylor')} mixture={parts}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
