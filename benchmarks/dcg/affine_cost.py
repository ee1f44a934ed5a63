"""Cost and bound of the affine certificate before / after a change: fixed-atoms calls, two source trees, interleaved.

Run:  OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/dcg/affine_cost.py --before /path/to/old/src
      [--rounds 3] [--no-write]

Each (case, tree) call runs in a fresh subprocess with ``PYTHONPATH`` set to the tree (one warm-up call of the same
program first, then the timed call: process CPU seconds, one thread); the trees alternate within every round and
the median over rounds is reported with the ratio after / before. Cases: the README example ``x * y + sin(z)`` at
32, 64 and 128 atoms per input, the conditionally affine programs of ``tests/dcg/test_semidiscrete_affine.py`` at
64 atoms, and the wing weight and borehole programs of ``benchmarks/dcg/uq.py`` at 4 atoms per input (where the
certificate cannot win). Writes the section "Affine certificate: cost before / after" of docs/benchmarks/dcg.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from opgraph._base.fileio import replace_marked_block

ROOT = Path(__file__).resolve().parents[2]
MARK_BEGIN = "<!-- affinecost:begin (written by benchmarks/dcg/affine_cost.py) -->"
MARK_END = "<!-- affinecost:end -->"
CASES = [
    ("README", 32),
    ("README", 64),
    ("README", 128),
    ("wing-like", 64),
    ("bore-like", 64),
    ("WingWeight", 4),
    ("Borehole", 4),
]

_CHILD = r"""
import json, sys, time, warnings
import numpy as np
sys.path.insert(0, {bench!r}); sys.path.insert(0, {tests!r})
from opgraph import dcg as od
warnings.simplefilter("ignore")
cid, n = {cid!r}, {n}
if cid == "README":
    fn, ins = (lambda x, y, z: x * y + np.sin(z)), [od.Normal(1, 0.1), od.Uniform(0, 2), od.Normal(0, 1)]
    kw = {{}}
elif cid in ("wing-like", "bore-like"):
    import test_semidiscrete_affine as ta
    fn, ins = ta._case(cid.split("-")[0], 1.0, 2.0, 0.5 if cid == "wing-like" else 3.0, 0.3 if cid == "wing-like" else 0.5)
    kw = {{}}
else:
    import uq
    case = next(c for c in uq.make_cases() if c.id == cid)
    fn, ins, kw = case.fn, case.dcg_inputs(), dict(case.dcg_kwargs)
od.evaluate(fn, *ins, atoms=2, **kw)
t0 = time.process_time()
r = od.evaluate(fn, *ins, atoms=n, **kw)
cpu = time.process_time() - t0
print(json.dumps({{"cpu": cpu, "bound": float(r.w1_bound), "method": r.info.get("bound_method", "")}}))
"""


def _one(src: str, cid: str, n: int) -> dict:
    code = _CHILD.format(bench=str(ROOT / "benchmarks" / "dcg"), tests=str(ROOT / "tests" / "dcg"), cid=cid, n=n)
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the old tree's src folder")
    ap.add_argument("--after", default=str(ROOT / "src"), help="the new tree's src folder (default: this one)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    loads = [os.getloadavg()[0]]
    res: dict[tuple[str, int, str], list[dict]] = {}
    for rnd in range(args.rounds):
        for cid, n in CASES:
            trees = (("before", args.before), ("after", args.after))
            for key, src in trees if rnd % 2 == 0 else trees[::-1]:
                res.setdefault((cid, n, key), []).append(_one(src, cid, n))
            print(cid, n, {k: res[(cid, n, k)][-1] for k in ("before", "after")}, flush=True)
        loads.append(os.getloadavg()[0])
    lines = [
        MARK_BEGIN,
        "## Affine certificate: cost before / after (fixed atoms)",
        "",
        f"Command: `{' '.join(['benchmarks/dcg/affine_cost.py', *(argv or sys.argv[1:])])}`  ",
        f"Machine: {platform.processor() or platform.machine()}, 2 cores shared with other jobs (load average "
        f"{min(loads):.0f}-{max(loads):.0f} during the run), Python {platform.python_version()}. "
        f"Date: {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC. No GPU.  ",
        f"*before*: `{args.before}`, *after*: this tree. Process CPU seconds of one `od.evaluate` call (after a "
        f"warm-up call), one thread, median of {args.rounds} interleaved rounds (fresh process per call); the bound "
        "is deterministic.",
        "",
        "| case | atoms/input | before: bound | method | CPU s | after: bound | method | CPU s | CPU after/before |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cid, n in CASES:
        b, a = res[(cid, n, "before")], res[(cid, n, "after")]
        tb, ta = statistics.median(x["cpu"] for x in b), statistics.median(x["cpu"] for x in a)
        lines.append(
            f"| {cid} | {n} | {b[0]['bound']:.3g} | {b[0]['method']} | {tb:.2f} | {a[0]['bound']:.3g} | "
            f"{a[0]['method']} | {ta:.2f} | {ta / tb:.2f} |"
        )
    lines += ["", MARK_END]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        replace_marked_block(ROOT / "docs" / "benchmarks" / "dcg.md", MARK_BEGIN, MARK_END, text)


if __name__ == "__main__":
    main()
