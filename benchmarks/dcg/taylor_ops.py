"""The Taylor box bound on the UQ programs: its op table before / after (sqrt, pow, reciprocal, kinks...).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 5 python benchmarks/dcg/taylor_ops.py [--atoms 4 8] [--no-write]``.

Three modes per row, interleaved in one process after a warm-up at 2 atoms:

- ``off``: ``opgraph.dcg.taylor.ENABLED`` off (the engine's own bound; the cost baseline);
- ``before``: the Taylor bound as it was (``add sub mul div neg``, ``tanh sigmoid exp sin cos sinh cosh square log
  arctan erf``; no mean-value value enclosures; grids over ``taylor.MAX_WORK`` skipped; no probe);
- ``after``: the current table (``sqrt rsqrt cbrt reciprocal pow`` with constant or variable exponents, ``hypot``,
  ``tan arcsin arccos arcsinh arctanh expm1 exp2 log1p log2 log10``, kinks and jumps where decided on the box),
  mean-value value enclosures, large grids in slices, the probe (cost guard) on grids of 4096+ boxes.

Rows: ``uqtestfuns`` functions through ``benchmarks/dcg/uqtf_coverage.py`` (reference: 2 x 2^15 scrambled Sobol
points, its error = W1 between the scrambles / 2), and the UQ suite's rows through ``benchmarks/dcg/uq.py`` (its
cached 2^22-point references). Fixed atoms per input; CPU s of one call (1 thread). Writes the section "Taylor box
bound: op table (before / after)" of docs/benchmarks/dcg.md between markers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import math
import os
import platform
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uq  # noqa: E402
import uqtf_coverage as uc  # noqa: E402

from opgraph import dcg as od  # noqa: E402
from opgraph._base.fileio import replace_marked_block  # noqa: E402
from opgraph.dcg import taylor  # noqa: E402

BEGIN = "<!-- taylor-ops:begin (written by benchmarks/dcg/taylor_ops.py) -->"
END = "<!-- taylor-ops:end -->"
#: The op table of the first Taylor bound (main e5187df).
OLD_UNARY = frozenset(
    {"neg", "identity", "copy", "contiguous", "convert", "tanh", "sigmoid", "exp", "sinh", "cosh", "sin", "cos"}
    | {"square", "log", "arctan", "erf"}
)
OLD_BINARY = frozenset({"add", "sub", "mul", "div"})
UQTF = ["RobotArm", "Piston", "WingWeight", "OTLCircuit", "Borehole", "DampedOscillator", "Dette8D", "Friedman6D"]
UQTF_COST = ["Ishigami"]
SUITE = ["Piston", "OTL", "WingWeight", "Borehole", "Ishigami", "ODE-log", "ODE-osc", "MLP"]
#: Truncation a new user takes from the UnboundedWarning's hint (borehole's Normal radius below 0 at 3e-10).
UQTF_TRUNCATE = {"Borehole": 1e-9}
MODES = ("off", "before", "after")


@contextlib.contextmanager
def mode(name: str) -> Iterator[None]:
    """The Taylor bound off, as it was, or as it is now (module tables swapped for the call)."""
    saved = (
        taylor.SECOND,
        taylor.SECOND_BINARY,
        taylor.BINARY,
        taylor.CENTRED,
        taylor.MAX_SLICES,
        taylor.PROBE_MIN_BOXES,
    )
    tok = taylor.ENABLED.set(name != "off")
    try:
        if name == "before":
            taylor.SECOND = {k: v for k, v in saved[0].items() if k in OLD_UNARY}
            taylor.SECOND_BINARY = {k: v for k, v in saved[1].items() if k in OLD_BINARY}
            taylor.BINARY = frozenset(taylor.SECOND_BINARY)
            taylor.CENTRED, taylor.MAX_SLICES, taylor.PROBE_MIN_BOXES = False, 1, math.inf  # type: ignore[assignment]
        yield
    finally:
        (
            taylor.SECOND,
            taylor.SECOND_BINARY,
            taylor.BINARY,
            taylor.CENTRED,
            taylor.MAX_SLICES,
            taylor.PROBE_MIN_BOXES,
        ) = saved
        taylor.ENABLED.reset(tok)


def uqtf_row(name: str) -> tuple[Callable[..., Any], list[Any], dict[str, Any], Any]:
    """A uqtestfuns function as the coverage benchmark runs it: fn, laws, extra keywords, reference."""
    f = uc.build_function(name)
    params = dict(f.parameters.items()) if f.parameters is not None else {}
    ev = f._evaluate
    laws = [uc.map_marginal(m) for m in f.prob_input.marginals]

    def fn(*x: Any) -> Any:
        out = ev(uc.as_row(x), **params)
        return out.reshape(-1)[0] if isinstance(out, np.ndarray) else out

    ref, std, err = uc.reference(f, params)
    kw = {"truncate": UQTF_TRUNCATE[name]} if name in UQTF_TRUNCATE else {}
    return fn, laws, kw, (ref, std, err)


def one(call: Callable[[], Any], name: str, limit_s: float) -> tuple[str, float, Any]:
    """One call in a mode, under a CPU limit: status, CPU s, result."""
    with mode(name), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return uq.limited(call, limit_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--limit", type=float, default=40.0, help="CPU s per call")
    ap.add_argument("--only", default="", help="comma-separated row names (uqtf names or suite ids)")
    ap.add_argument("--source", choices=("uqtf", "suite", "both"), default="both", help="which rows")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    only = {x for x in args.only.split(",") if x}
    head = (
        "| source | case | atoms | bound/std before | bound/std after | bound/true before | bound/true after | "
        "Taylor boxes won | CPU s off | CPU s before | CPU s after |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    rows: list[tuple[str, str, Callable[[int], Callable[[], Any]], Callable[[Any], float], float]] = []
    for name in UQTF + UQTF_COST if args.source != "suite" else []:
        if only and name not in only:
            continue
        fn, laws, kw, (ref, std, err) = uqtf_row(name)

        def make(n: int, fn: Any = fn, laws: Any = laws, kw: Any = kw) -> Callable[[], Any]:
            return lambda: od.evaluate(fn, *laws, atoms=n, progress=False, **kw)

        def true_w1(r: Any, ref: Any = ref) -> float:
            return float(od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)))

        notes.append(f"uqtf {name}: reference std {std:.4g}, error {err / std:.2g} std" + (f", {kw}" if kw else ""))
        rows.append(("uqtf", name, make, true_w1, std))
    for case in uq.make_cases() if args.source != "uqtf" else []:
        if case.id not in SUITE or (only and case.id not in only):
            continue
        ref_s = uq.load_reference(case)

        def make_s(n: int, case: Any = case) -> Callable[[], Any]:
            return lambda: case.evaluate(atoms=n, progress=False)

        def true_s(r: Any, ref_s: Any = ref_s) -> float:
            return float(ref_s.w1(r.atoms, r.weights))

        notes.append(f"suite {case.id}: reference std {ref_s.std:.4g}, error {ref_s.err / ref_s.std:.2g} std")
        rows.append(("suite", case.id, make_s, true_s, ref_s.std))
    for src, name, make, true_w1, std in rows:
        one(make(2), "after", args.limit)  # warm-up (tracing, quantizer tables)
        for n in args.atoms:
            res: dict[str, tuple[str, float, Any]] = {m: one(make(n), m, args.limit) for m in MODES}
            if any(r[2] is None for r in res.values()):
                st = ", ".join(f"{m}: {r[0]} {r[1]:.1f} s" for m, r in res.items())
                lines.append(f"| {src} | {name} | {n} | {st} | | | | | | | |")
                print(lines[-1], flush=True)
                continue
            b = {m: float(r[2].w1_bound) for m, r in res.items()}
            t = {m: true_w1(r[2]) for m, r in res.items()}
            info = res["after"][2].info.get("taylor") or {}
            won = info.get("boxes")
            won_s = "skipped" if "skipped" in info else ("n/a" if won is None else f"{won:.0%}")

            def ratio(m: str, b: dict[str, float] = b, t: dict[str, float] = t) -> str:
                return f"{b[m] / t[m]:.3g}" if t[m] > 0 and math.isfinite(b[m]) else ("inf" if t[m] > 0 else "-")

            lines.append(
                f"| {src} | {name} | {n} | {b['before'] / std:.3g} | {b['after'] / std:.3g} | {ratio('before')} | "
                f"{ratio('after')} | {won_s} | {res['off'][1]:.2f} | {res['before'][1]:.2f} | {res['after'][1]:.2f} |"
            )
            print(lines[-1], flush=True)
            if res["after"][1] > 10 and n == args.atoms[0]:
                break
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    block = "\n".join(
        [
            BEGIN,
            "### Taylor box bound: op table (before / after)",
            "",
            f"`{' '.join(['python', 'benchmarks/dcg/taylor_ops.py', *sys.argv[1:]])}` on {platform.node()} "
            f"({_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC, commit {rev}, 1 thread, load "
            f"{load[0]:.1f} / {load[1]:.1f} (1 / 5 min) at the end; CPU s of one call, shared 2-core VM). Modes in "
            "one process, interleaved per row: `off` (Taylor off), `before` (the first op table, no mean-value "
            "enclosures, no slices), `after` (this table). Bound/true against each source's reference; "
            "`Taylor boxes won`: share of the grid's boxes where the Taylor bound is the smaller (after).",
            "",
            *lines,
            "",
            *[f"- {x}" for x in notes],
            END,
        ]
    )
    print(block)
    if not args.no_write:
        replace_marked_block(uq.ROOT / "docs" / "benchmarks" / "dcg.md", BEGIN, END, block)


if __name__ == "__main__":
    main()
