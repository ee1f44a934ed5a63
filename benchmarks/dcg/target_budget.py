"""``target_w1`` calls with and without the time budget (``max_seconds``, :mod:`opgraph.dcg.roundbudget`).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/target_budget.py [--only MLP,Ishigami] [--eps 1e-2,1e-3]
[--limit 60] [--write]``.

Per (case, eps) of the UQ suite (``benchmarks/dcg/uq.py``, its cached references) two calls of
``od.evaluate(fn, *inputs, target_w1=eps * std)``: *before* with ``max_seconds=None`` (no budget: the refinement
of main, no affine probe, no term fill) and *after* with the default ``max_seconds``. Each call runs under a
CPU-time limit (``--limit``, then ``timeout``); reported: status, CPU and wall seconds, the certified bound and
the true W1 of the answer (against the reference) in units of the output's std, the bound over eps, whether the
bound covers the true W1 (plus the reference's own error), the rounds and the atoms of the kept round.
``--write`` puts the table into docs/benchmarks/dcg.md between markers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uq  # noqa: E402

from opgraph._base.fileio import replace_marked_block  # noqa: E402
from opgraph.dcg import roundbudget  # noqa: E402

BEGIN = "<!-- target-budget:begin (written by benchmarks/dcg/target_budget.py) -->"
END = "<!-- target-budget:end -->"


def one(case: uq.UQCase, ref: uq.Reference, eps: float, max_seconds: float | None, limit: float) -> dict[str, Any]:
    """One target call: the row of the table."""
    holder: dict[str, Any] = {}

    def call() -> Any:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            r = case.evaluate(target_w1=eps * ref.std, max_seconds=max_seconds)
        holder["warnings"] = [str(x.message) for x in w]
        return r

    t0 = time.perf_counter()
    status, cpu, r = uq.limited(call, limit)
    row: dict[str, Any] = {"status": status, "cpu_s": cpu, "wall_s": time.perf_counter() - t0}
    if r is None:
        return row
    r = r[0] if isinstance(r, tuple) else r
    info = r.info
    true = ref.w1(r.atoms, r.weights)
    row.update(
        bound_std=r.w1_bound / ref.std,
        true_std=true / ref.std,
        x_eps=r.w1_bound / (eps * ref.std),
        covered=bool(r.w1_bound + ref.err >= true),
        met=bool(info.get("target_met", False)),
        rounds=len(info.get("refinement", [])),
        atoms=info.get("atoms_per_input", {}),
        message=next((m for m in holder.get("warnings", []) if "not reached" in m), ""),
    )
    return row


def fmt_row(cid: str, eps: float, b: dict[str, Any], a: dict[str, Any]) -> str:
    """One markdown row (before -> after)."""

    def cell(r: dict[str, Any], key: str, f: str) -> str:
        return format(r[key], f) if key in r else r["status"]

    def atoms(r: dict[str, Any]) -> str:
        return "-".join(str(v) for v in r.get("atoms", {}).values()) or "–"

    return (
        f"| {cid} | {eps:g} | {cell(b, 'cpu_s', '.1f')} / {cell(a, 'cpu_s', '.1f')} | "
        f"{cell(b, 'wall_s', '.1f')} / {cell(a, 'wall_s', '.1f')} | {cell(b, 'x_eps', '.3g')} / {cell(a, 'x_eps', '.3g')} | "
        f"{cell(b, 'true_std', '.2g')} / {cell(a, 'true_std', '.2g')} | {b.get('rounds', '–')} / {a.get('rounds', '–')} | "
        f"{atoms(b)} / {atoms(a)} | {b.get('covered', '–')} / {a.get('covered', '–')} |"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="MLP,Ishigami,OTL,Borehole,Piston")
    ap.add_argument("--eps", default="1e-2,1e-3")
    ap.add_argument("--limit", type=float, default=60.0, help="CPU seconds per call")
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    ids = args.only.split(",")
    cases = {c.id: c for c in uq.make_cases() if c.id in ids}
    started = _dt.datetime.now(_dt.UTC)
    load0 = os.getloadavg()[0]
    results: dict[str, Any] = {}
    lines = []
    for cid in ids:
        case = cases[cid]
        ref = uq.load_reference(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.evaluate(atoms=2)  # warm-up
        for eps in (float(e) for e in args.eps.split(",")):
            b = one(case, ref, eps, None, args.limit)
            a = one(case, ref, eps, roundbudget.DEFAULT_MAX_SECONDS, args.limit)
            results[f"{cid} {eps:g}"] = {"before": b, "after": a}
            lines.append(fmt_row(cid, eps, b, a))
            print(lines[-1], flush=True)
            if a.get("message"):
                print("   after:", a["message"], flush=True)
    load1 = os.getloadavg()[0]
    if args.out_json:
        from opgraph._base.jsonio import write_json

        write_json(args.out_json, results)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    block = "\n".join(
        [
            BEGIN,
            "## `target_w1` within a time budget: before / after (branch dcg-mlpfast, issue 14 section 6)",
            "",
            f"Command: `OMP_NUM_THREADS=1 nice -n 5 python benchmarks/dcg/target_budget.py --only {args.only} --eps "
            f"{args.eps} --limit {args.limit:g} --write`  ",
            f"Machine: {platform.machine()}, 2 cores shared with other engineers' jobs, Python "
            f"{platform.python_version()}; no GPU. {started:%Y-%m-%d %H:%M} UTC, commit {rev}, load average "
            f"{load0:.1f} at the start, {load1:.1f} at the end. *before* = `max_seconds=None` (the refinement of main),"
            f" *after* = the default `max_seconds={roundbudget.DEFAULT_MAX_SECONDS:g}` (CPU s; affine probe, "
            "term fill, whole grids kept whole); each call under a CPU limit of "
            f"{args.limit:g} s (then `timeout`).",
            "",
            "| case | eps | CPU s before / after | wall s | bound / (eps std) | true W1 / std | rounds | atoms per "
            "input (kept round) | bound + ref err >= true |",
            "|---|---|---|---|---|---|---|---|---|",
            *lines,
            END,
        ]
    )
    print(json.dumps({"load": [load0, load1]}))
    if args.write:
        replace_marked_block(uq.ROOT / "docs" / "benchmarks" / "dcg.md", BEGIN, END, block)


if __name__ == "__main__":
    main()
