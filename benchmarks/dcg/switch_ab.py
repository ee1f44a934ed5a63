"""One engine switch off vs on, on the UQ suite's calls: same process, interleaved rounds, true W1 beside the bound.

    PYTHONPATH=src python benchmarks/dcg/switch_ab.py --switch mixture_first --only Piston,Borehole --eps 1e-2,1e-3

Per case a warm-up (``atoms=2``), then for each call (``--eps``: ``target_w1 = eps * std``; ``--atoms``: fixed atoms)
and each of ``--rounds`` rounds the call with the switch (a name of :func:`opgraph.dcg.switches.capture`) off, then
on (1 thread, CPU s of the call, warnings silenced): bound and the answer's true W1 (against the suite's cached
reference) in units of the output's std, bound / true, the bound's method and the atoms per input of the answer.
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
        only=("Piston,Borehole", "comma-separated case ids"),
        eps=("1e-2", "comma-separated eps (target_w1 = eps * the output's std)"),
        atoms=("", "comma-separated fixed atoms per input"),
        rounds=(1, "interleaved off/on rounds per call"),
        out_json="",
    )
    ap.add_argument("--switch", default="mixture_first", help="the switch to turn off and on (switches.capture names)")
    a = ap.parse_args()
    if a.switch not in switches.capture():
        ap.error(f"--switch {a.switch!r} is not a switch; use one of {sorted(switches.capture())}")
    rows = []
    for case in benchcli.uq_cases(a.only):
        ref = uq.load_reference(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.evaluate(atoms=2, progress=False)  # tracing and caches, as uq.py's warm-up
        for call in benchcli.uq_calls(a.eps, a.atoms, ref.std):
            for k in range(a.rounds):
                for on in (False, True):
                    with switches.scope({a.switch: on}), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t0 = time.process_time()
                        r = case.evaluate(progress=False, **call)
                        cpu = time.process_time() - t0
                    w1 = ref.w1(r.atoms, r.weights)
                    row = {
                        "case": case.id,
                        "call": benchcli.call_label(call, ref.std),
                        "round": k,
                        a.switch: on,
                        "bound_std": r.w1_bound / ref.std,
                        "true_std": w1 / ref.std,
                        "ratio": r.w1_bound / w1 if w1 > 0 else None,
                        "cpu_s": round(cpu, 2),
                        "method": r.info.get("bound_method"),
                        "atoms": r.info.get("atoms_per_input"),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
