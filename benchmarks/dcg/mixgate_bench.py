"""The box-linear mixture's slope work, before / after (branch mix-speed): same process, interleaved rounds.

Run:  ``OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python benchmarks/dcg/mixgate_bench.py Piston 6,8
[--rounds 2] [--modes off,old,new]``

Per case and atom count, the modes in turn (one round = every mode once, after a 2-atom warm-up): ``off`` (the
mixture off: the suite's default switches today), ``old`` (the mixture on, ``engine.MEMO_TAYLOR`` and
``taylor.MIX_GATE`` off: main's code paths), ``new`` (the mixture on, both on: the Taylor pass of an evaluation's
first finish reused in its second; the probe's gate, Hessian skip and walk-pass selection). Prints bound and true W1
in units of the output's std (true W1 against the cached references of ``benchmarks/dcg/uq.py``), bound / true,
the call's CPU s (1 thread) and the bound's method. Nothing is written; the numbers in docs/benchmarks/dcg.md
("Box-linear mixture: slope work reused and gated") come from this script.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchcli  # noqa: E402
import uq  # noqa: E402

from opgraph.dcg import engine, taylor  # noqa: E402

#: Per mode: (box_linear, engine.MEMO_TAYLOR, taylor.MIX_GATE).
MODES = {"off": (False, True, True), "old": (True, False, False), "new": (True, True, True)}


def main(argv: list[str] | None = None) -> None:
    ap = benchcli.add_case_atoms(benchcli.parser(__doc__, summary=True))
    args = benchcli.add(ap, rounds=1, modes="off,old,new").parse_args(argv)
    for case in benchcli.uq_cases(args.cases):
        name, ref = case.id, uq.load_reference(case)
        uq.fixed_call(case, ref, 2, {"box_linear": False})  # warm-up (tracing, caches)
        for n in benchcli.ints(args.atoms):
            for rnd in range(args.rounds):
                for mode in benchcli.items(args.modes):
                    bl, engine.MEMO_TAYLOR, taylor.MIX_GATE = MODES[mode]
                    r, cpu, true = uq.fixed_call(case, ref, n, {"box_linear": bl})
                    print(
                        f"{name} atoms={n} round={rnd} {mode:3s} bound/std={r.w1_bound / ref.std:.6g} "
                        f"true/std={true / ref.std:.3g} bound/true={r.w1_bound / true:.3g} cpu={cpu:.1f} "
                        f"method={r.info.get('bound_method')}",
                        flush=True,
                    )
    engine.MEMO_TAYLOR, taylor.MIX_GATE = True, True


if __name__ == "__main__":
    main()
