"""Affine-arithmetic enclosures on the UQ programs: bound / true W1 and CPU seconds at fixed atoms, before / after.

Run:

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/dcg/affine_bench.py \\
        --only ODE-osc,Piston --atoms 4,8,16 --out-json runs/affine.json
    .venv/bin/python benchmarks/dcg/affine_bench.py --table runs/affine.json [more.json ...]

Each row is one ``case.evaluate(atoms=n)`` of ``benchmarks/dcg/uq.py`` (its ``dcg_kwargs`` included) against the
case's cached reference, once with the affine forms off (``opgraph.dcg.affine.ENABLED``) and once on, in that
order for every atom count (same process, same warm-up). CPU seconds are process time of one call. ``--table``
writes the section "Affine enclosures" of docs/benchmarks/dcg.md between its markers.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from opgraph import dcg as od
from opgraph._base.fileio import replace_marked_block
from opgraph._base.jsonio import write_json
from opgraph.dcg import affine

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchcli  # noqa: E402
import uq  # noqa: E402  (the UQ suite and its cached references)

ROOT = Path(__file__).resolve().parents[2]
MARK_BEGIN = "<!-- affine-uq:begin (written by benchmarks/dcg/affine_bench.py) -->"
MARK_END = "<!-- affine-uq:end -->"


def _call(case: Any, n: int, on: bool) -> tuple[Any, float]:
    tok = affine.ENABLED.set(on)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.process_time()
            r = case.evaluate(atoms=n)
            return r, time.process_time() - t0
    finally:
        affine.ENABLED.reset(tok)


def run(only: list[str], atoms: list[int], limit: float) -> list[dict[str, Any]]:
    """One row per (case, atoms): bound before/after and true W1 (relative to the reference's std), CPU s."""
    rows = []
    cases = {c.id: c for c in uq.make_cases()}
    for cid in only:
        case = cases[cid]
        ref = uq.load_reference(case)
        _call(case, 2, True)  # warm-up (tracing, caches)
        spent = 0.0
        for n in atoms:
            row: dict[str, Any] = {"case": cid, "inputs": case.d, "atoms": n, "std": ref.std}
            for tag, on in (("before", False), ("after", True)):
                r, t = _call(case, n, on)
                spent += t
                row[f"bound_{tag}"] = float(r.w1_bound) / ref.std
                row[f"w1_{tag}"] = ref.w1(r.atoms, r.weights) / ref.std
                row[f"s_{tag}"] = t
            rows.append(row)
            print(json.dumps(row), flush=True)
            if spent > limit:
                break
    return rows


def run_small(max_rows: int) -> list[dict[str, Any]]:
    """The small suite of ``benchmarks/dcg/run.py``: bound before/after at each case's first atom counts."""
    import run as small  # noqa: PLC0415  (the small suite; imports OpenTURNS lazily where present)

    rows = []
    for case in small.make_cases():
        for n in case.atoms[:max_rows]:
            row: dict[str, Any] = {"case": case.id, "atoms": n}
            for tag, on in (("before", False), ("after", True)):
                tok = affine.ENABLED.set(on)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t0 = time.process_time()
                        r = od.evaluate(case.fn, *case.inputs(), atoms=n, **case.kwargs)
                        row[f"s_{tag}"] = time.process_time() - t0
                finally:
                    affine.ENABLED.reset(tok)
                row[f"bound_{tag}"] = float(r.w1_bound)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def small_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Before/after bounds on the small suite (same true W1: the atoms do not change)."""
    rows = [_num(r) for r in rows]
    worse = [r for r in rows if r["bound_after"] > r["bound_before"] * (1 + 1e-9)]
    better = [r for r in rows if r["bound_after"] < r["bound_before"] * (1 - 1e-6)]
    out = [
        f"Small suite (`benchmarks/dcg/run.py` cases, first atom counts), {meta['date']}, load {meta['load']}: "
        f"{len(rows)} rows, {len(better)} tighter, {len(worse)} looser (the atoms and so the true W1 are unchanged).",
        "",
        "| case | atoms | bound before | bound after | after / before | CPU s before | CPU s after |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = r["bound_before"] > 0 and math.isfinite(r["bound_before"])
        ratio = r["bound_after"] / r["bound_before"] if ok else 1.0
        out.append(
            f"| {r['case']} | {r['atoms']} | {_fmt(r['bound_before'])} | {_fmt(r['bound_after'])} | {ratio:.3f} | "
            f"{r['s_before']:.3f} | {r['s_after']:.3f} |"
        )
    return "\n".join(out)


def _fmt(x: Any) -> str:
    x = float(x)  # strict JSON stores inf as "Infinity"
    return "inf" if not math.isfinite(x) else f"{x:.3g}"


def _num(r: dict[str, Any]) -> dict[str, Any]:
    """A row with its numbers as floats (strict JSON stores non-finite floats as strings)."""
    return {k: (float(v) if isinstance(v, str) and k not in ("case",) else v) for k, v in r.items()}


def table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The markdown section (bound/true before and after, CPU seconds)."""
    out = [
        f"Measured {meta['date']} on {meta['machine']}, load {meta['load']}, 1 thread, by `{meta['command']}`. "
        "Bounds and true W1 in units of the output's std; *before*: affine forms off (the interval engine), "
        "*after*: on (per box the smaller of the two bounds). CPU s: one call each, process time.",
        "",
        "| case | inputs | atoms | true W1 | bound before | bound after | bound/true before | bound/true after | "
        "CPU s before | CPU s after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in map(_num, rows):
        w = r["w1_after"]
        out.append(
            f"| {r['case']} | {r['inputs']} | {r['atoms']} | {_fmt(w)} | {_fmt(r['bound_before'])} | "
            f"{_fmt(r['bound_after'])} | {_fmt(r['bound_before'] / r['w1_before'])} | "
            f"{_fmt(r['bound_after'] / w)} | {r['s_before']:.2f} | {r['s_after']:.2f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = benchcli.parser(__doc__, summary=True)
    benchcli.add(
        ap,
        only="ODE-osc,ODE-log,Piston,OTL,Ishigami,MLP",
        atoms="4,8,16",
        limit=(120.0, "CPU seconds per case before larger atoms are skipped"),
        out_json="",
    )
    ap.add_argument("--table", nargs="*", default=None, help="JSON files to merge into the docs table")
    ap.add_argument("--small", type=int, default=0, help="run the small suite's first N atom counts instead")
    args = ap.parse_args(argv)
    if args.table is not None:
        rows, metas, small_rows, small_meta = [], [], [], None
        for p in args.table:
            d = json.loads(Path(p).read_text())
            if d.get("small"):
                small_rows += d["rows"]
                small_meta = d["meta"]
            else:
                rows += d["rows"]
                metas.append(d["meta"])
        body = table(rows, metas[0]) if rows else ""
        if small_meta is not None:
            body += "\n\n" + small_table(small_rows, small_meta)
        text = f"{MARK_BEGIN}\n### Affine enclosures (fixed atoms, before / after)\n\n{body}\n{MARK_END}\n"
        replace_marked_block(ROOT / "docs/benchmarks/dcg.md", MARK_BEGIN, MARK_END, text)
        print(text)
        return
    if args.small:
        rows = run_small(args.small)
    else:
        rows = run(benchcli.items(args.only), benchcli.ints(args.atoms), args.limit)
    meta = {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "command": "benchmarks/dcg/affine_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    if args.out_json:
        write_json(Path(args.out_json), {"meta": meta, "rows": rows, "small": bool(args.small)})


if __name__ == "__main__":
    main()
