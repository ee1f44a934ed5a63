"""Per-node cost of the engine on long programs (issue 14 sections 4 and 6): this tree against an earlier revision.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/nodecost_bench.py --before REV [--rounds 2]
[--rows ODE-osc:2 ODE-log:4 ...] [--write]``.

The earlier revision's ``src`` is exported with ``git archive`` into a temporary folder. Every row is timed in fresh
worker processes (one per call, so both versions start alike), the two versions alternating and their order
swapped every round; each worker first evaluates a warm-up (the same program with 20 Euler steps for the ODEs,
else 2 atoms), then one timed call: CPU seconds of that call (1 thread, ``time.process_time``), its bound and a
digest of its answer (atoms, weights, bound terms). The table gives the medians over rounds, the median per-round
speed-up with its bootstrap interval (``opgraph.measure.median_ratio_ci``), whether answers and bounds are the same
bit for bit, and the load average seen. ``--write`` puts it into ``docs/benchmarks/dcg.md`` (section ``nodecost``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import benchcli  # noqa: E402

ROWS = ["ODE-osc:2", "ODE-osc:4", "ODE-log:2", "ODE-log:4", "Ishigami:64", "Ishigami:128", "Piston:4",
        "Borehole:4", "OTL:8", "MLP:8"]  # fmt: skip


def worker(row: str) -> None:
    """Time one call of ``row`` (CASE:ATOMS) with the opgraph on ``sys.path``; print a JSON line."""
    import warnings

    sys.path.insert(0, str(HERE))
    import uq

    warnings.simplefilter("ignore")
    cid, atoms = benchcli.case_row(row)
    cases = {c.id: c for c in uq.make_cases()}
    case = cases[cid]
    if cid == "ODE-osc":
        uq.ode_oscillator(20).evaluate(atoms=int(atoms))
    elif cid == "ODE-log":
        uq.ode_logistic(20).evaluate(atoms=int(atoms))
    else:
        case.evaluate(atoms=2)
    t = time.process_time()
    r = case.evaluate(atoms=int(atoms))
    cpu = time.process_time() - t
    h = hashlib.sha256()
    for x in (r.atoms, r.weights):
        h.update(np.ascontiguousarray(x, dtype=float).tobytes())
    h.update(repr(sorted((k, repr(v)) for k, v in r.bound_terms.items())).encode())
    out = {"cpu": cpu, "bound": repr(float(r.w1_bound)), "digest": h.hexdigest()[:16], "load": os.getloadavg()[0]}
    print("RESULT " + json.dumps(out), flush=True)


def run_one(src: Path, row: str) -> dict:
    """One worker process on ``src`` (a folder holding the ``opgraph`` package)."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    p = subprocess.run(
        [sys.executable, __file__, "--worker", row], env=env, capture_output=True, text=True, check=False, cwd=ROOT
    )
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"worker for {row} on {src} failed:\n{p.stderr[-2000:]}")
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    ap = benchcli.parser(__doc__, summary=True)
    ap.add_argument("--before", required=False, help="git revision to compare against (e.g. main)")
    benchcli.add(ap, rounds=2)
    ap.add_argument("--rows", nargs="*", default=ROWS, help="CASE:ATOMS (case ids of benchmarks/dcg/uq.py)")
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks/dcg.md")
    ap.add_argument("--section", default="nodecost", help="marker name of the table's block in the docs page")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return
    if not args.before:
        ap.error("--before REV is required")
    from opgraph.measure import median_ratio_ci

    rev = subprocess.run(["git", "rev-parse", "--short", args.before], capture_output=True, text=True, cwd=ROOT)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    start = _dt.datetime.now(_dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(["git", "archive", args.before, "src"], capture_output=True, check=True, cwd=ROOT)
        subprocess.run(["tar", "-x", "-C", tmp], input=arch.stdout, check=True)
        srcs = {"before": Path(tmp) / "src", "after": ROOT / "src"}
        res: dict[str, dict[str, list[dict]]] = {row: {"before": [], "after": []} for row in args.rows}
        for k in range(args.rounds):
            for row in args.rows:
                order = ("before", "after") if k % 2 == 0 else ("after", "before")
                for v in order:
                    res[row][v].append(run_one(srcs[v], row))
                    r = res[row][v][-1]
                    print(f"round {k} {row} {v}: {r['cpu']:.2f} s bound {r['bound']} load {r['load']:.1f}", flush=True)
    end = _dt.datetime.now(_dt.UTC)
    begin, stop = f"<!-- {args.section}:begin -->", f"<!-- {args.section}:end -->"
    lines = [
        begin,
        f"Command: `OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcg/nodecost_bench.py --before {args.before} "
        f"--rounds {args.rounds} --rows {' '.join(args.rows)} --section {args.section} --write`; before = {rev.stdout.strip()}, after = {head.stdout.strip()} (working "
        f"tree); {platform.machine()} {os.cpu_count()}-core shared VM, {platform.python_version()}, "
        f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC. CPU s of one call (1 thread, median over rounds, each call in a "
        "fresh process after a warm-up); speed-up = median over rounds of before/after with its 95 % bootstrap "
        "interval; same = answers (atoms, weights, bound terms) and bound identical bit for bit in every round "
        "(where not, the bound column reads before -> after).",
        "",
        "| case | atoms | CPU s before | CPU s after | speed-up (95 % CI) | bound | same | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in args.rows:
        cid, atoms = benchcli.case_row(row)
        b, a = res[row]["before"], res[row]["after"]
        tb, ta = float(np.median([x["cpu"] for x in b])), float(np.median([x["cpu"] for x in a]))
        ci = median_ratio_ci([x["cpu"] / y["cpu"] for x, y in zip(b, a, strict=True)])
        same = all((x["bound"], x["digest"]) == (b[0]["bound"], b[0]["digest"]) for x in a + b)
        loads = [x["load"] for x in a + b]
        span = f"{ci.median:.2f}x" + ("" if np.isnan(ci.low) else f" ({ci.low:.2f}-{ci.high:.2f})")
        bound = f"{float(b[0]['bound']):.4g}"
        if a[0]["bound"] != b[0]["bound"]:
            bound += f" -> {float(a[0]['bound']):.4g}"
        lines.append(
            f"| {cid} | {atoms} | {tb:.2f} | {ta:.2f} | {span} | {bound} | "
            f"{'yes' if same else 'NO'} | {min(loads):.1f}-{max(loads):.1f} |"
        )
    lines.append(stop)
    block = "\n".join(lines) + "\n"
    print(block)
    if args.write:
        from opgraph._base.fileio import replace_marked_block

        replace_marked_block(ROOT / "docs" / "benchmarks" / "dcg.md", begin, stop, block)


if __name__ == "__main__":
    main()
