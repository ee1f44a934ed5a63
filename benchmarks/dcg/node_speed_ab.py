"""Bit-for-bit A/B of two code trees on long-program and UQ fixed-atoms calls (branch node-speed, issue 14).

Run:  OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/dcg/node_speed_ab.py --old ../base/src
      [--new src] [--rows ODE-log:2 ODE-osc:4 ...] [--rounds 3]

Each row ``CASE:ATOMS`` is ``od.evaluate(case.fn, *inputs, atoms=ATOMS)`` of a case of ``uq.py``, run in a child
process per code tree (``PYTHONPATH=<tree>``, so the old tree is imported from a second worktree, nothing is
stashed), after one warm-up call at the same setting in that child (tracing, caches). The rounds alternate old and
new (old, new, old, new, ...) and each child reports its call's CPU seconds (``time.process_time``) with the 1-minute
load. Every child's result (atoms, weights, bound, bound terms, support, the CDF band's steps) is compared exactly
(``np.array_equal``, NaN-aware, and ``==`` on floats) with the first old child's; the table prints the median CPU s
of each tree, their ratio and whether every result was identical.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROWS = ["ODE-log:2", "ODE-osc:4", "DampedOsc:2", "Piston:4", "Borehole:2"]

_CHILD = r"""
import os, pickle, sys, time, warnings
sys.path.insert(0, {here!r})
import numpy as np
import uq
cid, atoms, out = {cid!r}, {atoms!r}, {out!r}
case = {{c.id: c for c in uq.make_cases()}}[cid]
warnings.simplefilter("ignore")
case.evaluate(atoms=atoms)  # warm-up
t0 = time.process_time()
r = case.evaluate(atoms=atoms)
cpu = time.process_time() - t0
band = None
try:
    b = r.cdf_band()
    band = (b.up_x, b.up_p, b.low_x, b.low_p, b.slack)
except Exception as exc:  # noqa: BLE001
    band = repr(exc)
import opgraph
res = dict(cpu=cpu, load=os.getloadavg()[0], atoms=r.atoms, weights=r.weights, bound=r.w1_bound,
           terms=r.bound_terms, support=r.support, band=band, file=opgraph.__file__)
pickle.dump(res, open(out, "wb"))
"""


def _same(a: Any, b: Any) -> bool:
    """Exact equality of nested results (arrays: same shape and bits up to NaN positions)."""
    import numpy as np

    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b)


def _child(src: str, cid: str, atoms: int) -> dict[str, Any]:
    """One warm-up and one timed call of row ``cid:atoms`` in a fresh process importing opgraph from ``src``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.pkl")
        code = _CHILD.format(here=str(HERE), cid=cid, atoms=atoms, out=out)
        env = {**os.environ, "PYTHONPATH": str(Path(src).resolve()), "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        with open(out, "rb") as fh:
            return pickle.load(fh)


def main(argv: list[str] | None = None) -> None:
    """Print a Markdown row per case: median CPU s old / new, ratio, load, identical results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="the old tree's src folder (a second worktree of main)")
    ap.add_argument("--new", default=str(HERE.parents[1] / "src"), help="the new tree's src folder")
    ap.add_argument("--rows", nargs="*", default=ROWS, help="CASE:ATOMS (case ids of uq.py)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved old/new pairs per row")
    ap.add_argument("--json", default="", help="also write the timings here")
    args = ap.parse_args(argv)
    print("| case | atoms | old CPU s | new CPU s | old / new | load | identical |")
    print("|---|---:|---:|---:|---:|---:|---|")
    log = []
    for row in args.rows:
        cid, atoms = row.split(":")
        runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for tree in ("old", "new"):
                runs[tree].append(_child(getattr(args, tree), cid, int(atoms)))
        ref = runs["old"][0]
        keys = ("atoms", "weights", "bound", "terms", "support", "band")
        same = all(_same({k: ref[k] for k in keys}, {k: r[k] for k in keys}) for t in runs.values() for r in t)
        old = statistics.median(r["cpu"] for r in runs["old"])
        new = statistics.median(r["cpu"] for r in runs["new"])
        load = statistics.mean(r["load"] for t in runs.values() for r in t)
        print(f"| {cid} | {atoms} | {old:.2f} | {new:.2f} | {old / new:.2f} | {load:.1f} | {same} |", flush=True)
        log.append(
            {
                "case": cid,
                "atoms": int(atoms),
                "old": [r["cpu"] for r in runs["old"]],
                "new": [r["cpu"] for r in runs["new"]],
                "load": load,
                "identical": same,
                "files": [runs["old"][0]["file"], runs["new"][0]["file"]],
            }
        )
    if args.json:
        Path(args.json).write_text(json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
