"""Weighted positive sums in the log-space bound (``opgraph.dcg.elastic.WEIGHTED_SUMS``): off / on, same process.

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 .venv/bin/python benchmarks/dcg/weighted_sums_ab.py \\
        DampedOsc:4 DampedOsc:8 Borehole:4 Sulfur:8

Per ``CASE:ATOMS`` (uq.py's cases and references, default switches), two interleaved rounds of off / on: the bound
and the true W1 in the output's std, bound/true, CPU s of the call (1 thread). ``uqtf:NAME:ATOMS`` runs
``uqtf_coverage.run_one(NAME, ATOMS)`` off / on instead (one round; ``sound`` is its check against its reference).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

from opgraph.dcg import elastic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uq  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    cases = {c.id: c for c in uq.make_cases()}
    specs = [a.split(":") for a in (argv if argv is not None else sys.argv[1:])]
    print("| case | atoms | round | bound off | bound on | bound/true off | bound/true on | CPU s off | CPU s on |")
    print("|---|---|---|---|---|---|---|---|---|")
    for spec in specs:
        if spec[0] == "uqtf":
            _uqtf(spec[1], int(spec[2]))
            continue
        name, atoms = spec
        case, n = cases[name], int(atoms)
        ref = uq.load_reference(case)
        for rnd in (1, 2):
            row = {}
            for on in (False, True):
                elastic.WEIGHTED_SUMS = on
                t0 = time.process_time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = case.evaluate(atoms=n)
                cpu = time.process_time() - t0
                true = ref.w1(r.atoms, r.weights)
                row[on] = (r.w1_bound / ref.std, r.w1_bound / true, cpu)
            elastic.WEIGHTED_SUMS = True
            print(
                f"| {name} | {n} | {rnd} | {row[False][0]:.4g} | {row[True][0]:.4g} | {row[False][1]:.4g} | "
                f"{row[True][1]:.4g} | {row[False][2]:.2f} | {row[True][2]:.2f} |",
                flush=True,
            )


def _uqtf(name: str, n: int) -> None:
    import uqtf_coverage

    got = {}
    for on in (False, True):
        elastic.WEIGHTED_SUMS = on
        got[on] = uqtf_coverage.run_one(name, n)
    elastic.WEIGHTED_SUMS = True
    off, on_ = got[False], got[True]
    print(
        f"| uqtf {name} | {n} | 1 | {off.get('bound_over_std', math.nan):.4g} | {on_.get('bound_over_std', math.nan):.4g} | "
        f"{off.get('bound_over_true', math.nan):.4g} | {on_.get('bound_over_true', math.nan):.4g} | "
        f"{off.get('cpu_s', math.nan):.2f} | {on_.get('cpu_s', math.nan):.2f} | sound {off.get('sound')} / "
        f"{on_.get('sound')}, {on_.get('outcome')} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
