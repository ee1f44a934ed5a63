"""Real-library pairs of the energy suite (transformers, torch.nn): top finding, its source line, ratio, diff time.

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/energy/real_pairs.py [--backends model,time] [ids...]``

Each case is diffed under every backend back to back. Writes ``benchmarks/energy/results/real_pairs_<backend>.json`` and the section "Real libraries" of
``docs/benchmarks/energy.md`` (between markers, so the rest of that file is left as it is). Energy on a machine
without RAPL or NVML is *modelled* from CPU time and bytes moved; the table says which backend gave each number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from opgraph._base.fileio import atomic_write, replace_marked_block
from opgraph._base.jsonio import dumps
from opgraph.energy.cases import CASES
from opgraph.energy.cases_real import real_cases
from opgraph.energy.suite import _hit, case_ids, evaluate_case, summarize, to_rows

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
DOC = ROOT / "docs" / "benchmarks" / "energy.md"
BEGIN, END = "<!-- real-libraries:begin -->", "<!-- real-libraries:end -->"
#: Real-library cases of the suite: the ones in cases_real.py and those kept in cases.py.
EXTRA = ("hf-llama-eager-attn", "hf-gpt2-eager-attn", "nn-encoder-slow-path")


def real_ids() -> list[str]:
    """Ids of every real-library case that can run here (transformers installed or not)."""
    runnable = set(case_ids())
    ids = [c for c in EXTRA if c in CASES] + list(real_cases())
    return [c for c in ids if c in runnable]


def _site(row: dict[str, Any]) -> str:
    """The top finding's library line (the first in a culprit function, else its first) and the user's line."""
    f = row["findings"][0] if row["findings"] else None
    if f is None or not (f["callsites"] or f.get("lib_sites")):
        return "-"
    case = CASES[row["id"]]
    user = f["callsites"][0] if f["callsites"] else "?"
    lib = f.get("lib_sites") or []
    for k, site in enumerate(lib):
        if _hit([site], case.culprit_lines(), case.culprit_sites):
            return f"{site}" + (f" (library line {k + 1})" if k else "") + f"` from `{user}"
    return f"{lib[0]}` from `{user}" if lib else user


def _short(site: str) -> str:
    """A call site with the path cut to the package (``transformers/models/...``, ``torch/nn/...``)."""
    for pkg in ("transformers/", "torch/", "opgraph/"):
        k = site.find("/" + pkg)
        if k >= 0:
            return site[k + 1 :]
    return site


def table(rows: list[dict[str, Any]], backend: str) -> str:
    """Markdown table of the per-case results."""
    out = [
        "| case | kind | top-1 | top finding: category, ratio [CI] | its library line, from the user's line "
        "| diff time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["error"]:
            out.append(f"| {r['id']} | {r['kind']} | error | {r['error'][:80]} | - | - |")
            continue
        f = r["findings"][0] if r["findings"] else None
        top = (
            f"{f['category']} ({f['verdict']}), {f['ratio']:.2f}x [{f['ci'][0]:.2f}, {f['ci'][1]:.2f}]"
            if f
            else "no finding"
        )
        expect = "" if r["category_ok"] or not f else f" (expected {CASES[r['id']].category})"
        ok = "yes" if r["top1"] else ("clean" if r["kind"] == "control" and not f else "no")
        out.append(f"| {r['id']} | {r['kind']} | {ok} | {top}{expect} | `{_short(_site(r))}` | {r['analysis_s']:.1f} |")
    return "\n".join(out)


def write_section(text: str) -> None:
    """Replace (or append) the marked "Real libraries" section of docs/benchmarks/energy.md, atomically."""
    replace_marked_block(DOC, BEGIN, END, f"{BEGIN}\n{text.rstrip()}\n{END}\n", header="# opgraph.energy benchmarks\n")


def main(argv: list[str] | None = None) -> int:
    """Run the real pairs under each backend (alternating per case) and write the results."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ids", nargs="*", help="case ids (default: every real-library case)")
    p.add_argument("--backends", default="model,time", help="comma-separated: model, time")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-doc", action="store_true", help="print only; do not touch docs/benchmarks/energy.md")
    args = p.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    torch.set_num_threads(1)
    ids = args.ids or real_ids()
    t0 = time.perf_counter()
    results: dict[str, list[Any]] = {b: [] for b in backends}
    for cid in ids:
        for backend in backends:  # both backends on one case back to back: the same load on the machine
            r = evaluate_case(CASES[cid], backend, rounds=args.rounds, baselines=False)
            results[backend].append(r)
            f = r.findings[0] if r.findings else None
            print(
                f"{cid} [{backend}]: top1={r.top1} n={r.n_findings} t={r.analysis_s:.1f}s err={r.error} "
                f"top={f and (f['category'], round(f['ratio'], 3), f['lib_sites'][:2], f['callsites'][:1])}",
                flush=True,
            )
    meta = {
        "command": "python benchmarks/energy/real_pairs.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": " ".join(x for x in (platform.machine(), platform.processor(), f"{os.cpu_count()} cores") if x),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "total_s": time.perf_counter() - t0,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    parts = []
    for backend in backends:
        rows, summary = to_rows(results[backend]), summarize(results[backend])
        atomic_write(
            RESULTS / f"real_pairs_{backend}.json",
            json.dumps({"meta": {**meta, "backend": backend}, "summary": summary, "rows": rows}, indent=1, default=str),
        )
        tab = table(rows, backend)
        print(tab)
        print(dumps(summary))
        label = (
            "modelled energy (CPU time and bytes moved)"
            if backend == "model"
            else "wall time only (fastest sub-window)"
        )
        parts.append(
            f"### Backend `{backend}`: {label}\n\n{tab}\n\n"
            f"Top-1 {_pct(summary['top1'])}, category of the first hit right {_pct(summary['category_acc'])}, "
            f"control false flags {summary['control_false_flags']}, findings that are hits "
            f"{_pct(summary['precision'])}, errors {summary['errors'] or 'none'}.\n"
        )
    if not args.no_doc:
        write_section(
            "## Real libraries\n\n"
            f"`{meta['command'].strip()}`, {meta['date_utc']} UTC, {meta['machine']}, torch {meta['torch']}, "
            f"transformers {meta['transformers']}, 1 thread, {args.rounds} interleaved rounds per region, "
            f"{meta['total_s']:.0f} s in all. Energy on this machine is MODELLED: there is no RAPL and no NVML, "
            "so the `model` backend estimates it from CPU time and bytes moved (labelled estimated); the ratios "
            "rank regions, they are not joules read from a sensor.\n\n"
            "Cases: `src/opgraph/energy/cases_real.py` (and the three real pairs kept in `cases.py`). Top-1: the "
            "first finding's costly library lines (or user's lines) include a culprit function in the library's "
            "own source (`Case.culprit_sites`; for torch.nn pairs also the user's call that selects the slow "
            "path); controls must have no finding. The line shown is the top finding's first library line in a "
            "culprit function (its rank among the finding's library lines when not the first; else its first "
            "library line), followed by the user's line that called the library. Diff time: wall time of "
            "`oe.diff` (record, match, replay, diagnose) on the shared, busy 2-core machine.\n\n" + "\n".join(parts)
        )
    return 0


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _version(mod: str) -> str | None:
    try:
        return __import__(mod).__version__
    except ImportError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
