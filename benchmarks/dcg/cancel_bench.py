"""Cancellation rewrites on the UQ programs: bound / true W1 and CPU seconds at fixed atoms, before / after.

Run:
    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 .venv/bin/python benchmarks/dcg/cancel_bench.py \\
        [--cases Borehole:4,Piston:4,...] [--rounds 2]

Each row is ``case.evaluate(atoms=n)`` of ``benchmarks/dcg/uq.py`` (its ``dcg_kwargs`` included) against the
case's cached reference, with the rewrites of ``opgraph.dcg.cancel`` off (*before*) and on (*after*), the two
interleaved for ``--rounds`` rounds after one warm-up call (same process); CPU seconds are the median process
time of one call. The per-input first-order terms of the certified bound (``r.bound_terms``, in output stds) are
listed beside each row. Writes the section "Cancellation rewrites" of docs/benchmarks/dcg.md between its markers
and docs/benchmarks/dcg_cancel.json.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from opgraph._base.fileio import replace_marked_block
from opgraph._base.jsonio import write_json
from opgraph.dcg import cancel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchcli  # noqa: E402
import uq  # noqa: E402  (the UQ suite and its cached references)

ROOT = Path(__file__).resolve().parents[2]
MARK_BEGIN = "<!-- cancel-uq:begin (written by benchmarks/dcg/cancel_bench.py) -->"
MARK_END = "<!-- cancel-uq:end -->"
DEFAULT = "Borehole:4,Piston:4,DampedOsc:4,Sulfur:4,OTL:8,WingWeight:4,Ishigami:64,Undamped:8"


def _call(case: Any, n: int, on: bool) -> tuple[Any, float]:
    tok = cancel.ENABLED.set(on)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.process_time()
            r = case.evaluate(atoms=n)
            return r, time.process_time() - t0
    finally:
        cancel.ENABLED.reset(tok)


def _top_terms(r: Any, std: float, k: int = 3) -> str:
    items = sorted(((key.split()[1], v / std) for key, v in (r.bound_terms or {}).items()), key=lambda t: -t[1])
    return ", ".join(f"{name} {v:.3g}" for name, v in items[:k])


def run(specs: list[tuple[str, int]], rounds: int) -> list[dict[str, Any]]:
    cases = {c.id: c for c in uq.make_cases()}
    rows = []
    for cid, n in specs:
        case = cases[cid]
        ref = uq.load_reference(case)
        _call(case, n, True)  # warm-up (tracing, caches)
        times: dict[str, list[float]] = {"before": [], "after": []}
        res: dict[str, Any] = {}
        for _ in range(rounds):
            for tag, on in (("before", False), ("after", True)):
                r, t = _call(case, n, on)
                times[tag].append(t)
                res[tag] = r
        row: dict[str, Any] = {"case": cid, "inputs": case.d, "atoms": n, "std": ref.std}
        for tag, r in res.items():
            row[f"bound_{tag}"] = float(r.w1_bound) / ref.std
            row[f"w1_{tag}"] = ref.w1(r.atoms, r.weights) / ref.std
            row[f"s_{tag}"] = statistics.median(times[tag])
            row[f"terms_{tag}"] = _top_terms(r, ref.std)
        info = res["after"].info.get("cancelled")
        row["rewrites"] = len(info["rewrites"]) if info else 0
        row["used"] = bool(info and info["used"])
        rows.append(row)
        print(row, flush=True)
    return rows


def _f(x: float) -> str:
    return f"{x:.3g}"


def table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [
        f"Measured {meta['date']} on {meta['machine']}, load {meta['load']} (1-min average before / after the run; "
        f"2 shared cores), 1 thread, by `{meta['command']}`. Bounds, true W1 and terms in units of the output's "
        "std; *before*: `opgraph.dcg.cancel.ENABLED` off, *after*: on (the rewritten and the original graph are "
        f"both evaluated and the smaller bound kept). CPU s: median process time of one call over {meta['rounds']} "
        "interleaved rounds.",
        "",
        "| case | inputs | atoms | rewrites (used) | true W1 | bound before | bound after | bound/true before | "
        "bound/true after | CPU s before | CPU s after | largest terms before | largest terms after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        used = f"{r['rewrites']} ({'yes' if r['used'] else 'no'})" if r["rewrites"] else "0"
        out.append(
            f"| {r['case']} | {r['inputs']} | {r['atoms']} | {used} | {_f(r['w1_after'])} | {_f(r['bound_before'])} | "
            f"{_f(r['bound_after'])} | {_f(r['bound_before'] / r['w1_before'])} | {_f(r['bound_after'] / r['w1_after'])} | "
            f"{r['s_before']:.2f} | {r['s_after']:.2f} | {r['terms_before']} | {r['terms_after']} |"
        )
    before = sorted(r["bound_before"] / r["w1_before"] for r in rows)
    after = sorted(r["bound_after"] / r["w1_after"] for r in rows)
    out += [
        "",
        f"bound/true over these {len(rows)} rows: median {_f(statistics.median(before))} -> "
        f"{_f(statistics.median(after))}, max {_f(before[-1])} -> {_f(after[-1])}.",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = benchcli.add(benchcli.parser(__doc__, summary=True), cases=(DEFAULT, "comma-separated CASE:ATOMS"), rounds=2)
    ap.add_argument("--no-docs", action="store_true", help="print only")
    args = ap.parse_args(argv)
    specs = benchcli.case_rows(args.cases)
    load0 = os.getloadavg()[0]
    rows = run(specs, args.rounds)
    meta = {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.processor() or platform.platform()}",
        "load": f"{load0:.1f} / {os.getloadavg()[0]:.1f}",
        "command": "benchmarks/dcg/cancel_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rounds": args.rounds,
    }
    text = table(rows, meta)
    print(text)
    if args.no_docs:
        return
    write_json(ROOT / "docs/benchmarks/dcg_cancel.json", {"meta": meta, "rows": rows}, indent=1)
    block = f"{MARK_BEGIN}\n## Cancellation rewrites (fixed atoms)\n\n{text}\n\n{MARK_END}\n"
    replace_marked_block(ROOT / "docs/benchmarks/dcg.md", MARK_BEGIN, MARK_END, block)


if __name__ == "__main__":
    main()
