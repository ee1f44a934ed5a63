"""Target and fixed-atoms calls of the UQ rows where the sub-cell pass costs (issue 14 section 6, certified fast).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/pistonfast.py [--rows Piston:t1e-2 Piston:4 ...]``.
A row is ``CASE:ATOMS`` (a fixed-atoms call) or ``CASE:tEPS`` (``target_w1 = EPS * std``, the std of the case's
cached reference in ``uq_references.json``). One call per row after a warm-up at 2 atoms, under a CPU-time limit
(``--limit``, default 30 s, as in ``uq.py``); prints a Markdown table row per call: CPU seconds, bound in output
stds, whether the target was met, atoms per input and the sub-cell pass's record, with the 1-minute load beside it.
To compare two versions of the code, run it with each on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uq  # noqa: E402

ROWS = [
    *(f"{c}:{k}" for c in ("Piston", "OTL", "Borehole", "WingWeight", "Sulfur") for k in ("4", "t1e-2", "t1e-3")),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", nargs="*", default=ROWS, help="CASE:ATOMS or CASE:tEPS (case ids of uq.py)")
    ap.add_argument("--limit", type=float, default=30.0, help="CPU seconds per call (then 'timeout')")
    ap.add_argument("--label", default="", help="a column saying which code version ran")
    args = ap.parse_args()
    cases = {c.id: c for c in uq.make_cases()}
    warm: set[str] = set()
    print("| version | case | call | CPU s | bound / std | met | atoms per input | sub-cell pass | load |")
    print("|---|---|---|---:|---:|---|---|---|---:|")
    for row in args.rows:
        cid, what = row.split(":")
        case = cases[cid]
        ref = uq.load_reference(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if cid not in warm:
                uq.limited(lambda case=case: case.evaluate(atoms=2), args.limit)  # warm-up (tracing, caches)
                warm.add(cid)
            kw = {"target_w1": float(what[1:]) * ref.std} if what.startswith("t") else {"atoms": int(what)}
            status, t, r = uq.limited(lambda case=case, kw=kw: case.evaluate(**kw), args.limit)
        load = os.getloadavg()[0]
        if r is None:
            print(f"| {args.label} | {cid} | {what} | {t:.2f} ({status}) | - | - | - | - | {load:.1f} |")
            continue
        info = r.info
        sc = info.get("subcells") or {}
        sc_s = sc.get("stopped") or sc.get("second_stopped") or (f"{sc.get('cpu_seconds', 0):.2f} s" if sc else "-")
        sc_s = sc_s.replace("|", "/")
        met = info.get("target_met", "")
        apis = sorted(set((info.get("atoms_per_input") or {}).values()))
        print(
            f"| {args.label} | {cid} | {what} | {t:.2f} | {r.w1_bound / ref.std:.4g} | {met} | {apis} | {sc_s} | "
            f"{load:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
