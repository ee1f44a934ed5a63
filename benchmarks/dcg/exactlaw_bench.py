"""Exact-law recognition (opgraph.dcg.exactlaw) on the UQ suite: Sulfur before / after, and where else it fires.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python benchmarks/dcg/exactlaw_bench.py [--atoms 4 8 16]
[--rounds 2] [--write]``.

Part 1: the sulfur model of ``benchmarks/dcg/uq.py`` (``-C * prod X_i``, 9 LogNormal inputs) at fixed atoms, with
the recognition off (``opgraph.dcg.exactlaw.ENABLED``) and on, interleaved (off, on, off, on, ...) after a warm-up;
CPU seconds of one call (median over rounds, 1 thread), the certified bound and the true W1 against the closed form
``-LogNormal(ln C + sum mu_i, sqrt(sum sigma_i^2))``. A second row set does the same for a product of three
LogNormals plus a Uniform, where the replaced node is interior (a separator, not the output; the reference is the
closed-form CDF ``int_{t-1}^t F_L``, integrated numerically on 4e5 points). Part 2: for every case of the suite, the
nontrivial closed-form nodes of its graph (with the untruncated input laws) and which of them are separators (the
only ones replaced). ``--write`` puts the tables between markers in ``docs/benchmarks/dcg.md``.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchcli  # noqa: E402
import uq  # noqa: E402

from opgraph import dcg as od  # noqa: E402
from opgraph._base.fileio import replace_marked_block  # noqa: E402
from opgraph.dcg import exactlaw  # noqa: E402
from opgraph.dcg.engine import prepare, restrict  # noqa: E402
from opgraph.dcg.w1 import w1_to_cdf  # noqa: E402
from opgraph.graph import trace  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- exactlaw:begin (written by benchmarks/dcg/exactlaw_bench.py) -->"
END = "<!-- exactlaw:end -->"


def _call(fn: object, on: bool) -> tuple[float, object]:
    token = exactlaw.ENABLED.set(on)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.process_time()
            r = fn()  # type: ignore[operator]
            return time.process_time() - t, r
    finally:
        exactlaw.ENABLED.reset(token)


def measure(fn: object, true_w1: object, rounds: int) -> dict[str, dict[str, float]]:
    """Off / on, interleaved: median CPU s, bound, true W1 and the bound method of each."""
    _call(fn, True)  # warm-up (tracing, quantizer tables)
    times: dict[bool, list[float]] = {False: [], True: []}
    last: dict[bool, object] = {}
    for _ in range(rounds):
        for on in (False, True):
            t, r = _call(fn, on)
            times[on].append(t)
            last[on] = r
    out = {}
    for on in (False, True):
        r = last[on]
        true = float(true_w1(r))  # type: ignore[operator]
        out["on" if on else "off"] = {
            "cpu_s": statistics.median(times[on]),
            "bound": float(r.w1_bound),  # type: ignore[attr-defined]
            "true": true,
            "ratio": float(r.w1_bound) / true,  # type: ignore[attr-defined]
            "method": r.info.get("bound_method", ""),  # type: ignore[attr-defined]
            "atoms_out": int(r.atoms.size),  # type: ignore[attr-defined]
        }
    return out


def sulfur_rows(atoms: list[int], rounds: int) -> list[str]:
    case = next(c for c in uq.make_cases() if c.id == "Sulfur")
    _, mu, sigma, _ = case.exact()  # type: ignore[misc]
    exact = od.LogNormal(mu, sigma)
    lines = []
    for n in atoms:
        m = measure(
            lambda n=n: case.evaluate(atoms=n), lambda r: od.w1_to_continuous(-r.atoms, r.weights, exact), rounds
        )
        lines.append(_row(f"Sulfur (9 LogNormal), {n} atoms", m))
        print(lines[-1], flush=True)
    return lines


def interior_rows(atoms: list[int], rounds: int) -> list[str]:
    x, y, z = od.LogNormal(0.0, 0.2), od.LogNormal(0.1, 0.15), od.LogNormal(-0.2, 0.1)
    w = od.Uniform(0.0, 1.0)
    lam = od.LogNormal(-0.1, math.sqrt(0.04 + 0.0225 + 0.01))

    def cdf(t: np.ndarray) -> np.ndarray:
        def prim(s: np.ndarray) -> np.ndarray:
            s = np.maximum(s, 0.0)
            return s * lam.cdf(s) - lam.partial_moment(s)

        return prim(t) - prim(t - 1.0)

    hi = float(lam.ppf(1 - 1e-13)) + 1.0
    lines = []
    for n in atoms:
        m = measure(
            lambda n=n: od.evaluate(lambda a, b, c, d: a * b * c + d, x, y, z, w, atoms=n),
            lambda r: w1_to_cdf(r.atoms, r.weights, cdf, 0.0, hi, n_grid=400_001),
            rounds,
        )
        lines.append(_row(f"X1 X2 X3 + U (interior), {n} atoms", m))
        print(lines[-1], flush=True)
    return lines


def _row(name: str, m: dict[str, dict[str, float]]) -> str:
    a, b = m["off"], m["on"]
    return (
        f"| {name} | {a['bound']:.3g} | {a['true']:.3g} | **{a['ratio']:.3g}** | {a['cpu_s']:.2f} | {a['method']} | "
        f"{b['bound']:.3g} | {b['true']:.3g} | **{b['ratio']:.3g}** | {b['cpu_s']:.3f} | {b['method']} | "
        f"{os.getloadavg()[0]:.1f} |"
    )


def scan_rows() -> list[str]:
    """Closed-form nodes of every UQ case (untruncated input laws) and which are separators."""
    lines = []
    for case in uq.make_cases():
        names = [f"x{i}" for i in range(case.d)]
        g = prepare(trace(case.fn, *names))
        sub, out = restrict(g, g.outputs[0])
        dists = dict(zip(names, case.dcg_inputs(), strict=True))
        quantized = {k: d.quantize(4) for k, d in dists.items()}
        fs = exactlaw.forms(sub, dists, quantized)
        cand = [i for i, f in enumerate(fs) if isinstance(f, exactlaw.Form) and f.nontrivial]
        anc = {i: sub.ancestors(i) for i in cand}
        maximal = [i for i in cand if not any(i in anc[j] for j in cand if j != i)]
        show = ", ".join(sub.nodes[i].where.split(" from ")[0] for i in maximal[:6]) or "none"
        ex = exactlaw.substitute(sub, out, quantized, {k: k for k in names}, dists, 1024)
        fired = ", ".join(e["node"].split(" from ")[0] + f" = {e['law']}" for e in ex.info) if ex else "no"
        lines.append(f"| {case.id} | {len(cand)} | {show} | {fired} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = benchcli.parser(__doc__, summary=True)
    ap.add_argument("--atoms", nargs="*", type=int, default=[4, 8, 16])
    benchcli.add(ap, rounds=2)
    ap.add_argument("--write", action="store_true", help="write the tables into docs/benchmarks/dcg.md")
    args = ap.parse_args()
    head = (
        "| case | bound off | true off | bound/true off | CPU s off | method off | bound on | true on | "
        "bound/true on | CPU s on | method on | load |"
    )
    rows = [head, "|" + "---|" * 12]
    rows += sulfur_rows(args.atoms, args.rounds)
    rows += interior_rows(args.atoms, args.rounds)
    scan = ["| case | closed-form nodes | largest ones | replaced (a separator) |", "|---|---|---|---|", *scan_rows()]
    if args.write:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        block = "\n".join(
            [
                BEGIN,
                "### Exact-law recognition (`opgraph.dcg.exactlaw`, issue 14 §3)",
                "",
                f"`OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python benchmarks/dcg/exactlaw_bench.py --rounds "
                f"{args.rounds} --write`, {stamp}, {platform.node()} ({os.cpu_count()} cores shared by several "
                "engineers; load at the end of each row in the last column). Off = `opgraph.dcg.exactlaw.ENABLED` "
                "false, same code otherwise; CPU s of one call, median of the interleaved rounds.",
                "",
                *rows,
                "",
                "Closed-form nodes per UQ case (untruncated input laws; only separators are replaced):",
                "",
                *scan,
                END,
            ]
        )
        replace_marked_block(ROOT / "docs" / "benchmarks" / "dcg.md", BEGIN, END, block)
    else:
        print("\n".join(rows + [""] + scan))


if __name__ == "__main__":
    main()
