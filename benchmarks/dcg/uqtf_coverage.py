"""Breadth: every ``uqtestfuns`` test function through opgraph.dcg, as a new user would run it.

Run:  OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/dcg/uqtf_coverage.py [--only NAME,NAME] [--fresh]
      [--limit 30] [--report-only]

For every function of ``uqtestfuns.list_functions()`` (default input dimension; the variable-dimension ones at
``M = 3``), the input marginals are mapped onto opgraph.dcg laws (uniform -> ``Uniform``, normal -> ``Normal``,
lognormal -> ``LogNormal``, exponential -> ``Exponential``, beta -> ``Beta``, trunc-normal -> ``Truncated(Normal)``;
triangular, gumbel and trunc-gumbel through ``from_scipy``; anything else is "unmapped"), the function's own
``evaluate`` code is traced on them (on a one-row object array of the random inputs, ``as_row``) and
``od.evaluate(..., atoms=4)`` runs (then ``atoms=8`` where 4 took under 3 s CPU), each call in its own subprocess
under a CPU-time limit (``--limit``, default 30 s; RLIMIT_CPU, plus a wall-clock guard of 4x for a loaded machine).

Recorded per call: traced?, finite certified bound?, bound / output std, the true W1 *estimated* against a
reference sample of 2 x 2**15 scrambled Sobol points (2**16 in all) of the function's own NumPy code (the
reference's own error, W1 between the two scrambles / 2, is kept beside it: the "true W1" is an estimate, and a
bound below ``true - 3 x ref_err`` is flagged unsound), CPU seconds, the warning or error message.

Results are resumable: ``runs/dcg_uqtf_coverage.json`` (one entry per function and atom count; ``--fresh`` starts
over). The table goes to docs/benchmarks/dcg.md between the ``uqtf`` markers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "runs" / "dcg_uqtf_coverage.json"
DOC = ROOT / "docs" / "benchmarks" / "dcg.md"
MARK_BEGIN = "<!-- uqtf:begin (written by benchmarks/dcg/uqtf_coverage.py) -->"
MARK_END = "<!-- uqtf:end -->"
VARIABLE_DIM = 3
REF_LOG2 = 15  # points per scramble; two scrambles
ATOMS = (4, 8)
#: The second atom count runs only where the first took less CPU than this (s).
FAST_S = 3.0
#: Outcomes, in table order.
OUTCOMES = (
    "finite",
    "inf bound",
    "uncertified (QMC)",
    "timeout",
    "eval error",
    "trace error",
    "unmapped law",
    "build error",
)


# ---------------------------------------------------------------------------------------------------------------
# Building a case (worker side)
def build_function(name: str) -> Any:
    """The ``uqtestfuns`` function ``name`` (variable-dimension ones at ``M = VARIABLE_DIM``)."""
    import uqtestfuns as uqtf

    cls = getattr(uqtf, name)
    try:
        return cls()
    except (ValueError, TypeError) as exc:
        if "variable-dimension" not in str(exc):
            raise
        return cls(input_dimension=VARIABLE_DIM)


def map_marginal(m: Any) -> Any:
    """An opgraph.dcg law for one ``uqtestfuns`` marginal; ValueError naming the family if there is none."""
    import scipy.stats as st

    from opgraph import dcg as od

    kind = str(m.distribution).lower()
    p = [float(v) for v in m.parameters]
    if kind == "uniform":
        return od.Uniform(p[0], p[1])
    if kind == "normal":
        return od.Normal(p[0], p[1])
    if kind == "lognormal":
        return od.LogNormal(p[0], p[1])
    if kind == "exponential":
        return od.Exponential(p[0])
    if kind == "beta" and len(p) == 4:
        base = od.Beta(p[0], p[1])
        return base if (p[2], p[3]) == (0.0, 1.0) else od.from_scipy(st.beta(p[0], p[1], loc=p[2], scale=p[3] - p[2]))
    if kind == "trunc-normal":
        return od.Truncated(od.Normal(p[0], p[1]), p[2], p[3])
    if kind == "triangular":  # uqtestfuns: (lower, upper, mode)
        lo, hi, mode = p
        return od.from_scipy(st.triang((mode - lo) / (hi - lo), loc=lo, scale=hi - lo))
    if kind == "gumbel":
        return od.from_scipy(st.gumbel_r(p[0], p[1]))
    if kind == "trunc-gumbel":
        return od.Truncated(od.from_scipy(st.gumbel_r(p[0], p[1])), p[2], p[3])
    raise ValueError(f"family {kind}{tuple(p)} has no opgraph.dcg mapping")


def as_row(x: Any) -> Any:
    """The traced inputs as a (1, d) object array (``opgraph.graph.tracer.ProxyArray``).

    A ``uqtestfuns`` evaluate() takes a sample matrix ``xx`` of shape (n, d): it indexes columns, sums along axis
    1, raises the whole matrix to powers. On a one-row object array of traced scalars all of that is traced
    elementwise (ufuncs and their ``reduce`` along an axis), and the output is a one-element array.
    """
    from opgraph.graph.tracer import ProxyArray

    xx = np.empty((1, len(x)), dtype=object)
    xx[0, :] = list(x)
    return xx.view(ProxyArray)


def _first_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:400]


def reference(f: Any, params: dict[str, Any]) -> tuple[np.ndarray, float, float]:
    """Sorted reference sample (2 scrambles of 2**REF_LOG2 Sobol points), its std, and its own W1 error estimate."""
    from scipy.stats import qmc

    marg = f.prob_input.marginals
    reps = []
    for s in range(2):
        u = qmc.Sobol(len(marg), scramble=True, seed=7 + s).random_base2(REF_LOG2)
        u = np.clip(u, 1e-12, 1 - 1e-12)
        xx = np.column_stack([m.icdf(u[:, k]) for k, m in enumerate(marg)])
        y = np.asarray(f._evaluate(xx, **params), dtype=float).reshape(len(xx), -1)[:, 0]
        reps.append(np.sort(y))
    err = float(np.mean(np.abs(reps[0] - reps[1]))) / 2
    pooled = np.sort(np.concatenate(reps))
    return pooled, float(pooled.std()), err


def run_one(name: str, atoms: int) -> dict[str, Any]:
    """One call of the coverage benchmark (runs in the worker subprocess)."""
    from opgraph import dcg as od
    from opgraph.graph import trace

    rec: dict[str, Any] = {"name": name, "atoms": atoms}
    try:
        f = build_function(name)
    except Exception as exc:  # noqa: BLE001 - recorded, not raised
        return {**rec, "outcome": "build error", "message": _first_line(exc)}
    marg = f.prob_input.marginals
    rec["d"] = len(marg)
    rec["families"] = sorted({str(m.distribution) for m in marg})
    rec["outputs"] = int(getattr(f, "output_dimension", 1) or 1)
    try:
        laws = [map_marginal(m) for m in marg]
    except (ValueError, od.DistError) as exc:
        return {**rec, "outcome": "unmapped law", "message": _first_line(exc)}
    params = dict(f.parameters.items()) if f.parameters is not None else {}
    ev = f._evaluate

    def fn(*x: Any) -> Any:
        out = ev(as_row(x), **params)
        if isinstance(out, np.ndarray):
            return out.reshape(-1)[0]  # one row; a vector output (CoffeeCup): its first component
        return out

    names = [f"x{k}" for k in range(len(laws))]
    t0 = time.process_time()
    try:
        g = trace(fn, *names)
        rec["traced"] = True
        rec["nodes"] = len(g.nodes)
    except Exception as exc:  # noqa: BLE001
        return {**rec, "traced": False, "outcome": "trace error", "message": _first_line(exc)}
    rec["trace_s"] = time.process_time() - t0
    try:
        ref, std, ref_err = reference(f, params)
        rec.update(ref_std=std, ref_err=ref_err, ref_finite=bool(np.all(np.isfinite(ref))))
    except Exception as exc:  # noqa: BLE001
        ref, std, ref_err = None, math.nan, math.nan
        rec["ref_message"] = _first_line(exc)
    t0 = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            r = od.evaluate(fn, *laws, atoms=atoms, progress=False)
            if isinstance(r, tuple):
                r = r[0]
        except Exception as exc:  # noqa: BLE001
            rec["cpu_s"] = time.process_time() - t0
            return {**rec, "outcome": "eval error", "message": _first_line(exc)}
    rec["cpu_s"] = time.process_time() - t0
    ws = [
        f"{type(w.message).__name__}: {(str(w.message).splitlines() or [''])[0]}"[:300]
        for w in caught
        if not issubclass(w.category, RuntimeWarning)  # NumPy's overflow notes on tail atoms
    ]
    rec["warnings"] = ws[:4]
    bound = float(r.w1_bound)
    rec.update(bound=bound, certified=bool(r.certified), mean=float(r.mean()), result_std=float(r.std()))
    if rec.get("ref_finite") and ref is not None and std > 0:
        true = float(od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)))
        # std: the reference's (the exact output law's), not the result's
        rec.update(true_w1=true, bound_over_std=bound / std, bound_over_true=bound / true if true > 0 else math.inf)
        rec["sound"] = bool(not r.certified or not math.isfinite(bound) or bound >= true - 3 * ref_err)
    if not r.certified:
        rec["outcome"] = "uncertified (QMC)"
    elif not math.isfinite(bound):
        rec["outcome"] = "inf bound"
        rec["message"] = next((w for w in ws if "Unbounded" in w), ws[0] if ws else "")
        hint = re.search(r"pass truncate=([0-9.eE+-]+)", " ".join(str(w.message) for w in caught))
        if hint:  # a new user follows the warning's hint
            rec.update(_truncated(fn, laws, atoms, float(hint.group(1)), ref, ref_err))
    else:
        rec["outcome"] = "finite"
    return rec


def _truncated(fn: Any, laws: list[Any], atoms: int, p: float, ref: Any, ref_err: float) -> dict[str, Any]:
    """The same call with ``truncate=p`` (the hint of the UnboundedWarning); fields prefixed ``trunc_``."""
    from opgraph import dcg as od

    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            r = od.evaluate(fn, *laws, atoms=atoms, progress=False, truncate=p)
        except Exception as exc:  # noqa: BLE001
            return {"trunc": p, "trunc_message": _first_line(exc)}
    out: dict[str, Any] = {
        "trunc": p,
        "trunc_bound": float(r.w1_bound),
        "trunc_dropped": float(r.dropped_mass),
        "trunc_cpu_s": time.process_time() - t0,
    }
    if ref is not None and np.all(np.isfinite(ref)):
        true = float(od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)))
        out.update(trunc_true_w1=true, trunc_bound_over_true=float(r.w1_bound) / true if true > 0 else math.inf)
        out["trunc_bound_over_std"] = float(r.w1_bound) / float(np.std(ref))
    return out


def _worker(name: str, atoms: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rec = run_one(name, atoms)
    from opgraph._base.jsonio import dumps

    print("@@RESULT@@" + dumps(rec, indent=None), flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Driver
def _limit_cpu(limit: int) -> Any:
    def pre() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 2))

    return pre


def run_in_subprocess(name: str, atoms: int, limit_s: int, src: Path = ROOT / "src") -> dict[str, Any]:
    """``run_one`` in a child process with a CPU-time limit (the reference and the trace count towards it).

    ``src``: the opgraph source tree the child imports (another checkout gives the "before" numbers).
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, str(atoms)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(src), "MPLBACKEND": "Agg"}
    t0 = time.monotonic()
    try:
        p = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=_limit_cpu(limit_s + 10),  # noqa: PLW1509 - a single-threaded driver
            timeout=4 * (limit_s + 10),
        )
    except subprocess.TimeoutExpired:
        return {"name": name, "atoms": atoms, "outcome": "timeout", "message": f"wall clock > {4 * (limit_s + 10)} s"}
    wall = time.monotonic() - t0
    for line in p.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            rec = json.loads(line[len("@@RESULT@@") :])
            if float(rec.get("cpu_s", 0) or 0) > limit_s:
                rec["outcome"] = "timeout"
                rec["message"] = f"{rec['cpu_s']:.1f} s CPU > {limit_s} s (it finished: {rec.get('outcome')})"
            return rec
    tail = (p.stderr.strip().splitlines() or [""])[-1][:300]
    msg = f"killed after {wall:.0f} s wall (CPU limit {limit_s} s)" if p.returncode < 0 else tail
    return {"name": name, "atoms": atoms, "outcome": "timeout" if p.returncode < 0 else "eval error", "message": msg}


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"runs": {}}
    from opgraph._base.jsonio import read_json

    return read_json(path)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _fmt(v: Any, spec: str = ".3g") -> str:
    x = _num(v)
    return "" if math.isnan(x) else ("inf" if math.isinf(x) else format(x, spec))


def _short(msg: str, n: int = 110) -> str:
    msg = " ".join(str(msg).split()).replace("|", "/")
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def _counts_line(data: dict[str, Any]) -> str:
    counts = Counter(r["outcome"] for k, r in data["runs"].items() if k.endswith("@4"))
    return ", ".join(f"{o} {counts.get(o, 0)}" for o in OUTCOMES if counts.get(o, 0))


def report(data: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    """The markdown section (markers included); ``before``: a run of the same script on the code before the fixes."""
    runs = data["runs"]
    at4 = [r for k, r in runs.items() if k.endswith("@4")]
    unsound = [r for r in runs.values() if r.get("sound") is False]
    ratios = {a: [_num(r.get("bound_over_true")) for k, r in runs.items() if k.endswith(f"@{a}")] for a in ATOMS}
    med = {a: float(np.median([x for x in v if math.isfinite(x)])) for a, v in ratios.items() if v}
    worse = [
        r["name"] for r in at4 if _num(runs.get(f"{r['name']}@8", {}).get("bound")) > _num(r.get("bound")) * (1 + 1e-9)
    ]
    lines = [
        MARK_BEGIN,
        "## Breadth: every uqtestfuns function (`benchmarks/dcg/uqtf_coverage.py`)",
        "",
        f"Command: `OMP_NUM_THREADS=1 nice -n 5 python benchmarks/dcg/uqtf_coverage.py`; {data.get('when', '')}, "
        f"{data.get('machine', '')}, load {data.get('load', '?')}. uqtestfuns {data.get('uqtf_version', '')}, "
        f"{len(at4)} functions (variable-dimension ones at M = {VARIABLE_DIM}), `od.evaluate(fn, *laws, atoms=4)` "
        f"(and 8 where 4 took < {FAST_S:g} s) in a subprocess with a {data.get('limit_s', 30)} s CPU limit. "
        "True W1 is an **estimate** against 2 x 2^15 scrambled Sobol points of the function's own NumPy code "
        "(`ref err` = W1 between the two scrambles / 2); bound/true below 1 within that error is not a violation.",
        "",
        *([str(data["note"]), ""] if data.get("note") else []),
        "Outcomes at 4 atoms: "
        + _counts_line(data)
        + "."
        + (
            f" Before this branch's fixes ({before.get('label', 'main')}, same script): {_counts_line(before)}."
            if before
            else ""
        ),
        f"Of the inf bounds, {sum(math.isfinite(_num(r.get('trunc_bound'))) for r in at4)} are finite with the "
        "`truncate=` value their UnboundedWarning suggests (the bound is then to the law of the truncated inputs; "
        "dropped mass reported). "
        "Median bound/true over the finite results: "
        + ", ".join(
            f"{m:.3g} at {a} atoms ({sum(math.isfinite(x) for x in ratios[a])} functions)" for a, m in med.items()
        )
        + f". A bound at 8 atoms larger than at 4: {len(worse)}"
        + (f" ({', '.join(worse)})" if worse else "")
        + ". "
        f"Unsound (bound < true - 3 ref err): {len(unsound)}"
        + (" (" + ", ".join(f"{r['name']}@{r['atoms']}" for r in unsound) + ")" if unsound else "")
        + ".",
        "",
        "| function | d | laws | outcome@4 | bound/std@4 | bound/true@4 | CPU s@4 | bound/std@8 | bound/true@8 | "
        "CPU s@8 | message |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(at4, key=lambda r: (OUTCOMES.index(r["outcome"]), r["name"])):
        r8 = runs.get(f"{r['name']}@8", {})
        msg = r.get("message") or (r.get("warnings") or [""])[0] if r["outcome"] != "finite" else ""
        if r8 and r8.get("outcome") != "finite" and r["outcome"] == "finite":
            msg = f"@8: {r8.get('outcome')} {r8.get('message', '')}"
        if "trunc_bound" in r:
            msg = (
                f"with the hinted truncate={r['trunc']:g}: bound/std {_fmt(r.get('trunc_bound_over_std'))}, "
                f"bound/true {_fmt(r.get('trunc_bound_over_true'))}, dropped {_fmt(r.get('trunc_dropped'), '.1e')}. "
                + msg
            )
        lines.append(
            f"| {r['name']} | {r.get('d', '')} | {','.join(r.get('families', []))} | {r['outcome']} | "
            f"{_fmt(r.get('bound_over_std'))} | {_fmt(r.get('bound_over_true'))} | {_fmt(r.get('cpu_s'), '.2f')} | "
            f"{_fmt(r8.get('bound_over_std'))} | {_fmt(r8.get('bound_over_true'))} | "
            f"{_fmt(r8.get('cpu_s'), '.2f')} | {_short(msg or '')} |"
        )
    lines += ["", MARK_END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "ATOMS"), help=argparse.SUPPRESS)
    ap.add_argument("--only", default="", help="comma-separated function names")
    ap.add_argument("--limit", type=int, default=30, help="CPU seconds per call")
    ap.add_argument("--fresh", action="store_true", help="ignore the saved results of earlier runs")
    ap.add_argument("--report-only", action="store_true", help="rewrite the docs table from the saved JSON")
    ap.add_argument("--out", default=str(RUNS))
    ap.add_argument("--src", default=str(ROOT / "src"), help="opgraph source tree the calls import (for 'before')")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks/dcg.md")
    ap.add_argument("--before", default="", help="JSON of a run on the code before the fixes (counts beside)")
    ap.add_argument("--before-label", default="main", help="what --before ran on (a commit)")
    ap.add_argument("--atoms", default=",".join(map(str, ATOMS)), help="atom counts (the first for every function)")
    ap.add_argument("--note", default=None, help="a line under the command (e.g. which rows a later run re-ran)")
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], int(args.worker[1]))
        return
    sys.path.insert(0, str(ROOT / "src"))
    import uqtestfuns as uqtf
    from tqdm import tqdm

    from opgraph._base.fileio import replace_marked_block
    from opgraph._base.jsonio import write_json

    out = Path(args.out)
    data = {"runs": {}} if args.fresh else _load(out)
    if not args.report_only:
        names = uqtf.list_functions(tabulate=False)
        if args.only:
            names = [n for n in names if n in set(args.only.split(","))]
        out.parent.mkdir(parents=True, exist_ok=True)
        counts = [int(a) for a in args.atoms.split(",")]
        for name in (bar := tqdm(names, desc="uqtestfuns", unit="fn")):
            for atoms in counts:
                key = f"{name}@{atoms}"
                bar.set_postfix_str(key)
                if atoms != counts[0]:
                    first = data["runs"].get(f"{name}@{counts[0]}", {})
                    if first.get("outcome") != "finite" or _num(first.get("cpu_s")) >= FAST_S:
                        data["runs"].pop(key, None)
                        continue
                if key in data["runs"] and not args.only:
                    continue
                data["runs"][key] = run_in_subprocess(name, atoms, args.limit, Path(args.src))
                data.update(
                    when=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    machine=f"{platform.machine()} {os.cpu_count()} cores",
                    load=f"{os.getloadavg()[0]:.1f}",
                    limit_s=args.limit,
                    uqtf_version=getattr(uqtf, "__version__", ""),
                    src=str(args.src),
                )
                write_json(out, data)
    if args.note is not None:
        data["note"] = args.note
        write_json(out, data)
    before = None
    if args.before:
        before = {**_load(Path(args.before)), "label": args.before_label}
    text = report(data, before)
    if not args.no_doc:
        replace_marked_block(DOC, MARK_BEGIN, MARK_END, text)
    print(text)


if __name__ == "__main__":
    main()
