"""CPU time of ``target_w1`` calls before/after a change of the grid evaluation, with bit-identical answers.

Loads two copies of opgraph in one process (this checkout, and a baseline ``src`` tree given by ``--before``, such
as ``git archive main src | tar -x -C /tmp/main``), checks that each case's answer (bound, atoms, weights) is the
same bit for bit, then times the two in interleaved rounds (``opgraph.measure.compare``, CPU time of this thread,
one thread). Cases: the UQ programs of ``uq.py`` whose ``target_w1`` calls certify (Ishigami, OTL, sulfur).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/dcg/grid_speed.py --before /tmp/main/src [--rounds 5] [--no-write]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib
import os
import platform
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402

from opgraph import measure  # noqa: E402
from opgraph._base.fileio import replace_marked_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks" / "dcg.md"
BEGIN = "<!-- grid-speed:begin (written by benchmarks/dcg/grid_speed.py) -->"
END = "<!-- grid-speed:end -->"
CASES = [("Ishigami", 1e-2), ("OTL", 1e-2), ("Sulfur", 1e-2)]
LAWS = {"uniform": "Uniform", "normal": "Normal", "lognormal": "LogNormal"}


def _ours(name: str) -> bool:
    return name == "opgraph" or name.startswith("opgraph.")


def load_copy(src: str) -> dict[str, ModuleType]:
    """Import ``opgraph.dcg`` from the ``src`` tree ``src`` as a separate set of modules (sys.modules untouched)."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if _ours(k)}
    sys.path.insert(0, src)
    try:
        importlib.import_module("opgraph.dcg")
        mods = {k: v for k, v in sys.modules.items() if _ours(k)}
    finally:
        sys.path.remove(src)
        for k in [k for k in sys.modules if _ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)
    if not mods["opgraph"].__file__.startswith(str(Path(src).resolve())):
        raise SystemExit(f"--before {src}: imported opgraph from {mods['opgraph'].__file__} instead")
    return mods


@contextlib.contextmanager
def active(mods: dict[str, ModuleType]) -> Iterator[ModuleType]:
    """Make the copy ``mods`` the opgraph of sys.modules (lazy imports inside a call resolve to it)."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if _ours(k)}
    sys.modules.update(mods)
    try:
        yield mods["opgraph.dcg"]
    finally:
        mods.update({k: v for k, v in sys.modules.items() if _ours(k)})
        for k in [k for k in sys.modules if _ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


def call(mods: dict[str, ModuleType], case: uq.UQCase, target: float) -> Any:
    """``od.evaluate(case.fn, *inputs, target_w1=target)`` with the copy's own laws and engine."""
    with active(mods) as od, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ins = [getattr(od, LAWS[law.kind])(*law.params) for law in case.laws]
        return od.evaluate(case.fn, *ins, **case.dcg_kwargs, target_w1=target)


def digest(r: Any) -> str:
    """The answer as bits: bound, atoms and weights."""
    h = hashlib.sha256(float(r.w1_bound).hex().encode())
    for a in (r.atoms, r.weights):
        h.update(np.ascontiguousarray(np.asarray(a, dtype=float)).tobytes())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="a baseline opgraph src tree (e.g. main's, from git archive)")
    ap.add_argument("--label", default="main", help="what the baseline is, for the report")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated case ids")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--note", default="", help="a line for the report (e.g. the machine's load)")
    args = ap.parse_args(argv)
    before = load_copy(str(Path(args.before).resolve()))
    after = {k: v for k, v in sys.modules.items() if _ours(k)}
    cases = {c.id: c for c in uq.make_cases()}
    todo = [(c, e) for c, e in CASES if not args.only or c in args.only.split(",")]
    rows = []
    for cid, eps in todo:
        case = cases[cid]
        std = uq.load_reference(case).std
        rb, ra = call(before, case, eps * std), call(after, case, eps * std)
        same = digest(rb) == digest(ra)
        cmp_ = measure.compare(
            lambda c=case, t=eps * std: call(after, c, t),
            lambda c=case, t=eps * std: call(before, c, t),
            rounds=args.rounds,
            warmup=1,
            reps=1,
        )
        row = {
            "case": cid,
            "eps": eps,
            "before_s": float(np.median(cmp_.reference_ns)) / 1e9,
            "after_s": float(np.median(cmp_.candidate_ns)) / 1e9,
            "ratio": cmp_.ratio,
            "identical": same,
            "bound_rel": float(ra.w1_bound) / std,
        }
        rows.append(row)
        print(
            f"{cid} eps {eps:g}: before {row['before_s']:.3f} s after {row['after_s']:.3f} s, after/before "
            f"{cmp_.ratio.median:.2f} ({cmp_.ratio.low:.2f}-{cmp_.ratio.high:.2f}), identical answer {same}",
            flush=True,
        )
    if args.no_write:
        return
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "## Grid evaluation per round: before / after (issue 14 section 6, certified fast)",
        "",
        f"Command: `OMP_NUM_THREADS=1 python benchmarks/dcg/grid_speed.py --before <{args.label} src> "
        f"--rounds {args.rounds}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, NumPy "
        f"{np.__version__}; no GPU. Date: {when}. CPU time of this thread, one thread; *before* = {args.label}, "
        "*after* = this branch, both loaded in one process and timed in shuffled interleaved rounds "
        f"(`opgraph.measure.compare`, {args.rounds} rounds after a warm-up; median CPU s, median per-round ratio "
        "with a bootstrap 95% interval). *identical*: bound, atoms and weights equal bit for bit.",
        *([args.note] if args.note else []),
        "",
        "| case | eps | before CPU s | after CPU s | after/before (95% CI) | identical | bound/(eps std) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = r["ratio"]
        lines.append(
            f"| {r['case']} | {r['eps']:g} | {r['before_s']:.3f} | {r['after_s']:.3f} | {ci.median:.2f} "
            f"({ci.low:.2f}-{ci.high:.2f}) | {'yes' if r['identical'] else 'NO'} | {r['bound_rel'] / r['eps']:.2f} |"
        )
    lines += ["", END, ""]
    replace_marked_block(DOC, BEGIN, END, "\n".join(lines), header="# opgraph.dcg benchmark\n")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    sys.exit(main())
