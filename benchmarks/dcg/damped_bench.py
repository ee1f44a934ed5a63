"""LogNormal UQ programs before/after the geometric cells and the target_w1 whole-grid rescue (issue 14 §3, §6).

Run (``--before``: the ``src`` folder of a checkout of the baseline, e.g. main before branch dcg-damped):
    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/dcg/damped_bench.py --before /path/to/baseline/src

Rows of ``benchmarks/dcg/uq.py``'s damped oscillator (7 LogNormal inputs) and borehole (LogNormal ``r``,
``truncate=1e-9``): fixed atoms per input and ``target_w1 = eps * std``, each in a fresh process whose ``PYTHONPATH``
is the baseline's or this checkout's ``src`` (before and after interleaved row by row), with uq.py's cached
reference (bound and true W1 in units of the output's std). CPU seconds of the child process (1 thread), the
1-minute load average beside each row. Writes the section "LogNormal programs: geometric cells" of
docs/benchmarks/dcg.md (between markers).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- damped:begin (written by benchmarks/dcg/damped_bench.py) -->"
END = "<!-- damped:end -->"
ROWS = [
    ("DampedOsc", "atoms", 4),
    ("DampedOsc", "atoms", 8),
    ("DampedOsc", "target", 1e-2),
    ("DampedOsc", "target", 1e-3),
]
ROWS += [("Borehole", "atoms", 4), ("Borehole", "atoms", 8), ("Borehole", "target", 1e-2)]


def child(cid: str, mode: str, arg: float) -> dict[str, object]:
    """One evaluation in this process (run with the PYTHONPATH under test)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import uq

    case = {c.id: c for c in uq.make_cases()}[cid]
    ref = uq.load_reference(case)
    kw = {"atoms": int(arg)} if mode == "atoms" else {"target_w1": arg * ref.std}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.evaluate(atoms=2)  # warm-up (tracing, caches)
        t0 = time.process_time()
        r = case.evaluate(**kw)
        cpu = time.process_time() - t0
    info = r.info
    return {
        "bound": r.w1_bound / ref.std,
        "true": ref.w1(r.atoms, r.weights) / ref.std,
        "cpu": cpu,
        "certified": bool(r.certified),
        "target_met": info.get("target_met"),
        "atoms": list(info.get("atoms_per_input", {}).values()),
        "quantizers": sorted(set(info.get("quantizers", {}).values())),
        "rescued": any(h.get("whole_grid_rescue") for h in info.get("refinement", [])),
    }


def run_child(src: str, cid: str, mode: str, arg: float, limit: float) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, __file__, "--child", cid, mode, repr(arg)]
    load = os.getloadavg()[0]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit, check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        row = {"error": f"timeout ({limit:.0f} s wall)"}
    except subprocess.CalledProcessError as exc:
        row = {"error": (exc.stderr or "").strip().splitlines()[-1][:120]}
    row["load"] = load
    return row


def fmt(r: dict[str, object]) -> str:
    if "error" in r:
        return f"{r['error']} | | | (load {r['load']:.0f})"
    ratio = float(r["bound"]) / float(r["true"]) if float(r["true"]) > 0 else float("inf")  # type: ignore[arg-type]
    cert = "" if r["certified"] else " (QMC, uncertified)"
    extra = ", whole-grid rescue" if r.get("rescued") else ""
    met = "" if r.get("target_met") is None else f", met {r['target_met']}"
    return (
        f"{r['bound']:.3g}{cert} | {r['true']:.3g} | {ratio:.3g} | {r['cpu']:.1f} (load {r['load']:.0f}; atoms "
        f"{'/'.join(str(a) for a in r['atoms'])}, {'+'.join(r['quantizers'])}{met}{extra})"  # type: ignore[arg-type]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", help="src folder of the baseline checkout")
    ap.add_argument("--after", default=str(ROOT / "src"), help="src folder under test (default: this checkout's)")
    ap.add_argument("--before-label", default="baseline", help="what --before is (commit), for the report")
    ap.add_argument("--limit", type=float, default=240.0, help="wall seconds per evaluation")
    ap.add_argument("--only", default="", help="comma-separated row indices")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        cid, mode, arg = args.child
        print(json.dumps(child(cid, mode, float(arg))))
        return
    if not args.before:
        ap.error("--before SRC is required")
    rows = [r for i, r in enumerate(ROWS) if not args.only or str(i) in args.only.split(",")]
    lines = [
        BEGIN,
        "## LogNormal programs: geometric cells and the target_w1 whole-grid rescue",
        "",
        f"`{' '.join(['python', *sys.argv[0:1], '--before', '<baseline src>', '--before-label', args.before_label])}`"
        f" ({_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores shared, "
        f"1 thread). Before: {args.before_label}; after: this branch. Bound and true W1 in output stds (uq.py's "
        "references); CPU s of the evaluation after a warm-up, in its own process, load beside it.",
        "",
        "| case | call | before: bound | true | bound/true | CPU s | after: bound | true | bound/true | CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    page = ROOT / "docs/benchmarks/dcg.md"
    old = {}  # rows of an earlier run (kept where --only does not re-run them)
    text = page.read_text(encoding="utf-8") if page.exists() else ""
    if BEGIN in text:
        for line in text[text.index(BEGIN) : text.find(END, text.index(BEGIN))].splitlines():
            if line.startswith("| ") and not line.startswith(("| case", "|---")):
                old["|".join(line.split("|")[:3])] = line
    new = {}
    for cid, mode, arg in rows:
        b = run_child(args.before, cid, mode, arg, args.limit)
        a = run_child(args.after, cid, mode, arg, args.limit)
        call = f"atoms={int(arg)}" if mode == "atoms" else f"target {arg:g} std"
        line = f"| {cid} | {call} | {fmt(b)} | {fmt(a)} |"
        new["|".join(line.split("|")[:3])] = line
        print(line, flush=True)
    for cid, mode, arg in ROWS:
        call = f"atoms={int(arg)}" if mode == "atoms" else f"target {arg:g} std"
        key = f"| {cid} | {call} "
        if key in new or key in old:
            lines.append(new.get(key) or old[key])
    lines += ["", END]
    from opgraph._base.fileio import replace_marked_block

    replace_marked_block(page, BEGIN, END, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
