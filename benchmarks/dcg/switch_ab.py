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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchcli  # noqa: E402
import uq  # noqa: E402


def run(
    switch: str,
    only: str,
    eps: str,
    atoms: str = "",
    rounds: int = 1,
    extra: Callable[[Any, Any], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The off/on rows of ``switch`` on the cases ``only`` (module docstring); ``extra(result, ref)`` adds fields."""
    from opgraph.dcg import switches

    rows = []
    for case in benchcli.uq_cases(only):
        ref = uq.load_reference(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.evaluate(atoms=2, progress=False)  # tracing and caches, as uq.py's warm-up
        for call in benchcli.uq_calls(eps, atoms, ref.std):
            for k in range(rounds):
                for on in (False, True):
                    with switches.scope({switch: on}), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t0 = time.process_time()
                        r = case.evaluate(progress=False, **call)
                        cpu = time.process_time() - t0
                    fields = {"call": benchcli.call_label(call, ref.std), "round": k}
                    fields["atoms"] = r.info.get("atoms_per_input")
                    fields.update(extra(r, ref) if extra is not None else {})
                    rows.append(
                        benchcli.ab_row(case.id, switch, on, r, cpu, ref.w1(r.atoms, r.weights), ref.std, **fields)
                    )
    return rows


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
    rows = run(a.switch, a.only, a.eps, a.atoms, a.rounds)
    if a.out_json:
        Path(a.out_json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
