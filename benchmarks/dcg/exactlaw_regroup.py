"""Exact-law recognition through regrouped chains (``opgraph.dcg.exactlaw.regroup``): bound and CPU, off / on.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python benchmarks/dcg/exactlaw_regroup.py [--atoms 8 16 32]
[--rounds 2] [--write]``.

Programs whose product (sum) of LogNormal (Normal) inputs is written around a factor used elsewhere
(``x1 * z * x2 + z``): as written no node holds the closed form of ``x1 * x2``. Each is evaluated at fixed atoms
with the regrouping off (``exactlaw.REGROUP``) and on, interleaved (off, on, off, on, ...) after a warm-up; CPU
seconds of one call (median over rounds, 1 thread), the certified bound, and the answer's W1 to 2^20 Monte Carlo
samples (the reference's own error: W1 between two independent 2^20-sample references, in the last column).
``--write`` puts the table between markers in ``docs/benchmarks/dcg.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from opgraph import dcg as od
from opgraph._base.fileio import replace_marked_block
from opgraph.dcg import exactlaw
from opgraph.dcg.w1 import w1_discrete

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- exactlaw-regroup:begin (written by benchmarks/dcg/exactlaw_regroup.py) -->"
END = "<!-- exactlaw-regroup:end -->"
LN = [(0.0, 0.3), (0.1, 0.2), (-0.2, 0.4)]
NN = [(0.0, 0.5), (0.3, 0.4), (-0.1, 0.6)]
CASES: dict[str, tuple[Callable[..., object], str]] = {
    "x1*z*x2 + z": (lambda x1, z, x2: x1 * z * x2 + z, "L"),
    "x1*z*x2 / (1+z)": (lambda x1, z, x2: x1 * z * x2 / (1 + z), "L"),
    "sin(y1+z+y2) + z": (lambda y1, z, y2: np.sin(y1 + z + y2) + z, "N"),
    "(y1+z+y2) * z": (lambda y1, z, y2: (y1 + z + y2) * z, "N"),
    "tanh(y1+z+y2) * z": (lambda y1, z, y2: np.tanh(y1 + z + y2) * z, "N"),
}
N_MC = 2**20


def _laws(fam: str) -> list[object]:
    return [od.LogNormal(m, s) for m, s in LN] if fam == "L" else [od.Normal(m, s) for m, s in NN]


def _mc(fn: Callable[..., object], fam: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    draw = rng.lognormal if fam == "L" else rng.normal
    return np.asarray(fn(*(draw(m, s, N_MC) for m, s in (LN if fam == "L" else NN))), dtype=float)


def _call(fn: Callable[..., object], fam: str, atoms: int, on: bool) -> tuple[float, object]:
    tok = exactlaw.REGROUP.set(on)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.process_time()
            r = od.evaluate(fn, *_laws(fam), atoms=atoms)
            return time.process_time() - t, r
    finally:
        exactlaw.REGROUP.reset(tok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, nargs="*", default=[8, 16, 32])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks/dcg.md")
    args = ap.parse_args()
    started = _dt.datetime.now(_dt.UTC)
    loads = [os.getloadavg()[0]]
    rows = [
        "| program | atoms | off: bound | on: bound | on / off | off: W1 to MC | on: W1 to MC | off: CPU s | "
        "on: CPU s | MC ref. error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (fn, fam) in CASES.items():
        ref, ref2 = _mc(fn, fam, 1), _mc(fn, fam, 2)
        ones = np.full(N_MC, 1.0 / N_MC)
        mc_err = w1_discrete(ref, ones, ref2, ones)
        _call(fn, fam, 2, True)  # warm-up (tracing, caches)
        for atoms in args.atoms:
            cpu: dict[bool, list[float]] = {False: [], True: []}
            res: dict[bool, object] = {}
            for _ in range(args.rounds):
                for on in (False, True):
                    t, r = _call(fn, fam, atoms, on)
                    cpu[on].append(t)
                    res[on] = r
            off, on_ = res[False], res[True]
            d = {k: w1_discrete(r.atoms, r.weights, ref, ones) for k, r in res.items()}  # type: ignore[attr-defined]
            fired = "" if on_.info.get("exact_laws") else " (not fired)"  # type: ignore[attr-defined]
            rows.append(
                f"| {name}{fired} | {atoms} | {off.w1_bound:.4g} | {on_.w1_bound:.4g} | "  # type: ignore[attr-defined]
                f"{on_.w1_bound / off.w1_bound:.2f} | {d[False]:.3g} | {d[True]:.3g} | "  # type: ignore[attr-defined]
                f"{statistics.median(cpu[False]):.3f} | {statistics.median(cpu[True]):.3f} | {mc_err:.1g} |"
            )
            loads.append(os.getloadavg()[0])
            print(rows[-1], flush=True)
    ended = _dt.datetime.now(_dt.UTC)
    head = (
        f"Command: `OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python benchmarks/dcg/exactlaw_regroup.py "
        f"--atoms {' '.join(map(str, args.atoms))} --rounds {args.rounds} --write`. Machine: {platform.machine()}, "
        f"2 shared cores, Python {platform.python_version()}; {started:%Y-%m-%d %H:%M}-{ended:%H:%M} UTC, "
        f"1-minute load {min(loads):.1f}-{max(loads):.1f}. Inputs: LogNormals x1, z, x2 = LN{LN[0]}, LN{LN[1]}, "
        f"LN{LN[2]}; Normals y1, z, y2 = N{NN[0]}, N{NN[1]}, N{NN[2]} (mean / log-mean, std). CPU s: median of "
        f"{args.rounds} interleaved rounds, one call each."
    )
    block = "\n".join([BEGIN, "## Exact laws through regrouped chains (branch dcg-small)", "", head, "", *rows, END])
    if args.write:
        replace_marked_block(ROOT / "docs" / "benchmarks" / "dcg.md", BEGIN, END, block)
    else:
        print(block)


if __name__ == "__main__":
    main()
