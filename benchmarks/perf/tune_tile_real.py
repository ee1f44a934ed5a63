"""Tile tuning of the kernels of a real model: cost-model picks (<= 10% measured) against measuring every tile.

The model (default ``hf_resnet_small``: Hugging Face ``transformers`` ResNet from a config, random weights) is
captured with ``torch.export`` and its conv / matmul kernels (fused bias, activation) are extracted and
de-duplicated (``opgraph.perf.kernels``). For each kernel the candidate set is every power-of-two tile
(``opgraph.perf.tile.tile_space``, 60-150 tiles per kernel here); then

1. **exhaustive**: every candidate and TVM's default schedule are compiled and measured (interleaved rounds,
   CPU time of the thread, 1 thread); kept as a tile record in ``--work`` (resumable);
2. **tune**: ``opgraph.perf.tune.tune_tile`` per ranker: the cost model ranks all candidates, the default and the
   top picks are measured (``floor(0.1 n)`` configs in all, the default included), the best 3 race the default;
   rankers: LightGBM lambdarank trained on *other* kernels (leave-one-kernel-out on the exhaustive records of the
   model's other kernels, plus ``--train-data`` records of other models' kernels whose names differ) and the
   analytical cache-footprint model; each tuning keeps a log in ``--work``/tune (a rerun reads the finished
   picks back) and every ranker's picks are saved as ``schedules_<ranker>.json`` (``apply_tile_schedules``);
3. **verify** (:func:`fair_gap`): one interleaved run of ``--verify-rounds`` rounds (30) times the default, the
   exhaustive top ``--verify-top`` (5) and every ranker's pick side by side. The exhaustive best is itself the
   minimum of ~120 noisy medians of 3 rounds, biased low (winner's curse), and so is "the fastest median of this
   run": so the reference is *selected* on the even rounds (the exhaustive top tile with the lowest median there)
   and the gap *estimated* on the odd rounds: the median over those rounds of the per-round ratio pick /
   reference - 1, with a 95% bootstrap interval (``opgraph.measure.median_ratio_ci``). A pick can then be faster
   than the reference (a negative gap). The old gap (pick / fastest median of the run - 1) is kept beside it as
   ``naive``; the speed-up is default / pick (medians over every round).

The whole model's speed-up weights each kernel by its occurrences: sum(count x default) / sum(count x pick).

    MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000 OMP_NUM_THREADS=1 TVM_NUM_THREADS=1 \\
        PYTHONPATH=src python benchmarks/perf/tune_tile_real.py --train-data runs/perf-real/tile
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from opgraph._base.jsonio import write_json
from opgraph._base.provenance import cpu_model

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- tile-tune-real:begin -->", "<!-- tile-tune-real:end -->"
#: (label, keyword arguments of tune_tile): the default search (mixed: the ranker's top 20% of the budget, then runs
#: of 4 tiles: 2 neighbours of the 2 best measured tiles, 1 pick of the refitted model, 1 the ranker's next pick, the
#: first of which is a diverse pick; then the adaptive race) with LightGBM and the analytical model as the prior, and
#: LightGBM with the previous default (the halving race of 3 finalists and 10 rounds, no diverse pick) for
#: comparison. The ranker is LightGBM when its label says so.
RANKERS = [
    ("LightGBM", {}),
    ("analytical", {}),
    ("LightGBM, before (halving race)", {"refit_options": {"race": "halving", "diverse": 0}}),
]


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())


def fair_gap(rounds_ns: np.ndarray, pick: int, refs: list[int], seed: int = 0) -> dict[str, float]:
    """Gap of config ``pick`` to the best of ``refs``, free of the winner's curse: select on half, estimate on half.

    Args:
        rounds_ns: float[k, r] runtimes of k configs in r interleaved rounds (the same rounds for every config).
        pick: Row of the tuner's pick.
        refs: Rows of the reference configs (the exhaustive top tiles); may contain ``pick``.
        seed: Seed of the bootstrap.

    Returns:
        ``gap`` (median over the odd rounds of pick / reference - 1, the reference being the ref with the lowest
        median over the even rounds), ``lo`` / ``hi`` (its 95% bootstrap interval), ``ref`` (the reference row) and
        ``naive`` (pick's median over all rounds / the lowest median of any row but row 0 over all rounds - 1).
    """
    from opgraph.measure import median_ratio_ci

    x = np.asarray(rounds_ns, dtype=np.float64)
    sel, est = x[:, 0::2], x[:, 1::2]
    ref = min(refs, key=lambda j: float(np.median(sel[j])))
    med = np.median(x, axis=1)
    out = {"gap": 0.0, "lo": 0.0, "hi": 0.0, "ref": int(ref), "naive": float(med[pick] / med[1:].min() - 1.0)}
    if ref != pick:  # the pick is the reference: on this evidence it is the best, gap 0
        ci = median_ratio_ci(est[pick] / est[ref], seed=seed)
        out.update(gap=ci.median - 1.0, lo=ci.low - 1.0, hi=ci.high - 1.0)
    return out


def exhaustive(spec, runner, settings, path: Path, seed: int):
    """Measure every candidate tile of ``spec`` (row 0: TVM's default schedule); resumable tile record."""
    from opgraph.perf.tile import candidate_record, measure_tiles, tile_space
    from opgraph.perf.tpugraphs import load_graph, load_or_build

    tiles = [None, *tile_space(spec)]

    def build():
        t0 = time.perf_counter()
        m = measure_tiles(runner, tiles, settings=settings, seed=seed)
        rec = dataclasses.replace(
            candidate_record(spec, tiles),
            config_runtime=m.runtime_ns,
            config_runtime_normalizers=m.normalizer_ns,
            config_runtime_std=m.std_ns,
            config_runtime_rounds=m.rounds_ns,
        )
        rec.measure_meta.update(m.meta)
        rec.measure_meta.update(
            space="tile",
            graph=spec.name,
            tiles=[list(t) if t else None for t in tiles],
            compile_s=runner.compile_s,
            collect_s=time.perf_counter() - t0,
        )
        return rec

    load_or_build(path, build)
    return load_graph(path, lazy=False), tiles


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="resnet")
    ap.add_argument("--size", default="small")
    ap.add_argument("--work", default="runs/tile-tune-real")
    ap.add_argument("--train-data", default=None, help="Tile records of other models' kernels (LightGBM).")
    ap.add_argument("--measure-frac", type=float, default=0.1)
    ap.add_argument("--verify-rounds", type=int, default=30)
    ap.add_argument("--verify-top", type=int, default=5, help="Exhaustive top tiles re-measured as the reference.")
    ap.add_argument("--limit", type=int, default=None, help="Only the first N kernels (quick check).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/benchmarks/perf.md")
    ap.add_argument("--exhaustive-only", action="store_true", help="Measure (or resume) the exhaustive records only.")
    args = ap.parse_args()
    import torch

    from opgraph._base.fileio import replace_marked_block
    from opgraph.perf import zoo
    from opgraph.perf.baselines import AnalyticalBaseline, LightGBMBaseline
    from opgraph.perf.kernels import model_kernels
    from opgraph.perf.measure import MALLOC_ENV, MeasureSettings
    from opgraph.perf.tile import TileRunner, measure_tiles
    from opgraph.perf.tpugraphs import load_records
    from opgraph.perf.tune import save_tile_schedules, tune_tile

    torch.set_num_threads(1)
    started = now()
    t_all = time.perf_counter()
    spec_m = zoo.RealSpec(args.family, args.size, args.seed)
    mk = model_kernels([spec_m], progress=False)[0]
    kernels = [(k.kernel_spec(), k.count) for k in mk.kernels if k.kernel_spec() is not None][: args.limit]
    names = {s.name for s, _ in kernels}
    work = Path(args.work) / spec_m.name
    full = MeasureSettings(rounds=3, reps=3, warmup=1)
    ex_recs, runners, tiles_of = {}, {}, {}
    for i, (spec, _) in enumerate(kernels):
        runners[spec.name] = TileRunner(spec)
        ex_recs[spec.name], tiles_of[spec.name] = exhaustive(
            spec, runners[spec.name], full, work / "exhaustive" / f"{spec.name}.npz", args.seed + i
        )
        print(f"exhaustive {spec.name}: {len(tiles_of[spec.name]) - 1} tiles", flush=True)
    if args.exhaustive_only:
        return
    other = []
    if args.train_data and Path(args.train_data).exists():
        other = [r for r in load_records(args.train_data, lazy=False) if r.name not in names]
    rows = []
    chosen: dict[str, list] = {}  # ranker -> every kernel's TileTuneResult (saved as schedules files)
    for i, (spec, count) in enumerate(kernels):
        lgbm = LightGBMBaseline(seed=args.seed).fit(other + [r for n, r in ex_recs.items() if n != spec.name])
        rankers = {name: (lgbm if "LightGBM" in name else AnalyticalBaseline(), kw) for name, kw in RANKERS}
        tiles = tiles_of[spec.name][1:]
        picks = {}
        for rname, (ranker, kw) in rankers.items():
            tag = rname.replace(" ", "").replace(",", "_")
            res = tune_tile(
                spec,
                ranker,
                candidates=tiles,
                measure_frac=args.measure_frac,
                seed=args.seed + i,
                **kw,
                runner=runners[spec.name],
                log_path=work / "tune" / f"{spec.name}_{tag}_{len(other)}other.json",  # resumable per training set
            )
            picks[rname] = res
            chosen.setdefault(rname, []).append(res)
        ex_rt = ex_recs[spec.name].config_runtime.astype(float)
        top = [int(j) for j in np.argsort(ex_rt[1:])[: args.verify_top] + 1]
        verify = [None] + [tiles_of[spec.name][j] for j in top]
        for res in picks.values():
            if res.tile not in verify:
                verify.append(res.tile)
        runner = runners[spec.name]
        load_verify = os.getloadavg()[0]
        m = measure_tiles(
            runner,
            verify,
            settings=MeasureSettings(rounds=args.verify_rounds, reps=3, warmup=1, abort_factor=np.inf),
            seed=args.seed,
        )
        vr = np.median(m.rounds_ns.astype(float), axis=1)
        refs = list(range(1, 1 + len(top)))
        ref_ns = float(np.median(m.rounds_ns[refs].astype(float), axis=1).min())
        row = {
            "kernel": spec.name,
            "count": count,
            "candidates": len(tiles),
            "flops": spec.flops(),
            "default_ns": vr[0],
            "best_ns": ref_ns,
            "best_tile": list(verify[1 + int(np.argmin(vr[1 : 1 + len(top)]))] or []),
            "exhaustive_best_over_default": float(ex_rt[0] / ex_rt[1:].min()),
            "verify_noise": m.noise,
            "load_exhaustive": float((ex_recs[spec.name].measure_meta.get("loadavg_start") or [np.nan])[0]),
            "load_verify": load_verify,
            "n_train_other": len(other),
        }
        for rname, res in picks.items():
            j = verify.index(res.tile)
            pr = vr[j]
            fg = fair_gap(m.rounds_ns, j, refs, seed=args.seed)
            row[rname] = {
                "tile": list(res.tile) if res.tile else None,
                "measured": res.n_measured,
                "frac": res.measured_frac,
                "pick_ns": pr,
                "gap": fg["gap"],
                "gap_lo": fg["lo"],
                "gap_hi": fg["hi"],
                "gap_naive": fg["naive"],
                "ref_tile": list(verify[fg["ref"]] or []),
                "speedup": vr[0] / pr,
                "tune_s": res.tune_s,
                "race_speedup": res.speedup,
                "stages": [m.stage for m in res.measured],
            }
        rows.append(row)
        print(
            f"{spec.name}: best/default {ref_ns / vr[0]:.3f}; "
            + "; ".join(f"{k} gap {row[k]['gap']:+.1%} x{row[k]['speedup']:.2f}" for k in rankers),
            flush=True,
        )
    for rname, results in chosen.items():  # re-apply with opgraph.perf.tune.apply_tile_schedules
        print(f"schedules: {save_tile_schedules(results, work / f'schedules_{rname}.json')}", flush=True)
    total_s = time.perf_counter() - t_all
    rnames = [name for name, _ in RANKERS]
    summary = {}
    for rn in rnames:
        w_def = sum(r["count"] * r["default_ns"] for r in rows)
        summary[rn] = {
            "within5": sum(r[rn]["gap"] <= 0.05 for r in rows),
            "within5_sure": sum(r[rn]["gap_hi"] <= 0.05 for r in rows),
            "beyond5_sure": sum(r[rn]["gap_lo"] > 0.05 for r in rows),
            "within5_naive": sum(r[rn]["gap_naive"] <= 0.05 for r in rows),
            "model_speedup": w_def / sum(r["count"] * r[rn]["pick_ns"] for r in rows),
            "max_frac": max(r[rn]["frac"] for r in rows),
            "tune_s": sum(r[rn]["tune_s"] for r in rows),
        }
    best_speedup = sum(r["count"] * r["default_ns"] for r in rows) / sum(r["count"] * r["best_ns"] for r in rows)
    ex_s = sum(float(ex_recs[r["kernel"]].measure_meta.get("collect_s", 0.0)) for r in rows)
    loads = [float((ex_recs[r["kernel"]].measure_meta.get("loadavg_start") or [np.nan])[0]) for r in rows]
    cmd = "PYTHONPATH=src python benchmarks/perf/tune_tile_real.py " + shlex.join(sys.argv[1:])
    mal = "set" if all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()) else "not set"
    default_model = (args.family, args.size) == ("resnet", "small")
    begin, end = (
        (BEGIN, END)
        if default_model
        else (f"<!-- tile-tune-real-{spec_m.name}:begin -->", f"<!-- tile-tune-real-{spec_m.name}:end -->")
    )
    what = {
        "resnet": "conv2d with folded batch norm as bias, fused ReLU",
        "gpt2": "matmul with bias (and GELU) and the attention batched matmuls",
    }.get(args.family, "conv2d / matmul / batched matmul with their fused epilogues")
    noise_all = [r["verify_noise"] for r in rows]
    lv = [r["load_verify"] for r in rows]
    L = [
        begin,
        "## Tile tuning of a real model's kernels" + ("" if default_model else f": `{spec_m.name}`"),
        "",
        f"`{cmd}`; {cpu_model()}, 1 thread, malloc env {mal}, {started} .. {now()} ({total_s / 60:.1f} min in all); "
        f"TVM {__import__('tvm').__version__}, LLVM target of the host CPU.",
        "",
        f"Model `{spec_m.name}` ({args.family}, transformers code, random weights, input {spec_m.input_size}, "
        f"batch 1): {len(rows)} distinct kernels ({what}). Candidates: every power-of-two tile `(ti, tj, tk)` of "
        f"the kernel's loops. Budget: `floor({args.measure_frac} n)` distinct configs measured, TVM's default "
        "schedule included. **Default search** (`tune_tile` defaults: `search='mixed'`, `local_frac=0.5`, "
        "`neighbourhood='x2'`, `step=4`, `first_frac=0.2`, `restarts=2`, `explore_frac=0.25`): the default "
        "(measured in every run as the anchor: runtimes are ratios to it in the same rounds) and the prior ranker's top 20% of the budget; "
        "then runs of 4 tiles until the budget is spent, each 2 neighbours of the 2 best tiles measured so far "
        "(every size halved / kept / doubled; in the order of a per-kernel model refitted before each run: prior "
        "rank + quadratic in log2 tile sizes + Gaussian-process residual, lowest mean - std), 1 pick of that model "
        "among all tiles and 1 the ranker's next unmeasured pick, in the first run instead a **diverse pick** "
        "(`diverse=1`: of the ranker's unmeasured top-budget tiles, the one farthest from every measured tile in "
        "log2 sizes); then the **adaptive race** (`race='adaptive'`): the 3 best and every tile within 10% of the "
        "best screening ratio (at most 6) race in phases of 10 interleaved rounds, a tile leaving when its "
        "trimmed-mean log ratio to the leader is clearly above 0 (Yuen's test, one-sided z 2.5 as a t quantile), "
        "until one is left or 100 rounds are spent; the winner is kept only if it beats the default. "
        "**before**: the same search without the diverse pick and with the previous race (the 3 best screening "
        "ratios, 10 rounds, the slower half dropped after 5). The "
        "default was chosen by an offline replay on the stored exhaustive measurements "
        "(`benchmarks/perf/tile_replay.py`, section below). LightGBM is trained on other kernels only (leave this kernel "
        f"out; {rows[0]['n_train_other'] if rows else 0} records of other models' kernels added). Measuring "
        "(tuner, exhaustive and verification alike, `opgraph.perf.tile.measure_tiles`): CPU time of the thread, "
        "each timing runs the kernel back to back for >= 2 ms (TVM's `number` / `min_repeat_ms`), the minimum "
        "of 3 timings per round, interleaved shuffled rounds. Exhaustive: every candidate, 3 rounds "
        f"({ex_s / 60:.1f} min incl. compiling). **Verification** (fair to the exhaustive best): default, exhaustive "
        f"top {args.verify_top} and every pick in one interleaved run of {args.verify_rounds} rounds; the exhaustive "
        "best (the lowest of ~120 medians of 3 noisy rounds) and the fastest median of that run are both biased low "
        "(winner's curse), so the reference is *selected* on the even rounds (the exhaustive top tile with the "
        "lowest median there) and the gap *estimated* on the odd rounds: median over them of the per-round ratio "
        "pick / reference - 1, with its 95% bootstrap interval in brackets (negative: the pick beat the "
        "reference); `naive` is the old gap, pick / fastest median of the run - 1. Speed-up = default / pick "
        "(medians over all rounds); `best/default` = the reference's. The VM's 2 cores were shared with other engineers' jobs: load average "
        f"{np.nanmin(loads):.0f}-{np.nanmax(loads):.0f} at the start of the exhaustive runs, "
        f"{np.nanmin(lv):.0f}-{np.nanmax(lv):.0f} at the verification runs; `noise` is the verification run's "
        f"median relative std across rounds (median over kernels {np.nanmedian(noise_all):.1%}). Tuning time: "
        "wall time of `tune_tile`, compiling included; the rankers share each kernel's compiled schedules "
        "(in the order of the table), so a later ranker compiles only the tiles the earlier ones did not measure.",
        "",
        "| kernel | count | candidates | best/default | noise | "
        + " | ".join(f"{rn}: measured | gap [95% CI] | naive | speed-up" for rn in rnames)
        + " |",
        "|---|---|---|---|---|" + "---|---|---|---|" * len(rnames),
    ]

    for r in rows:
        cells = [r["kernel"], str(r["count"]), str(r["candidates"]), f"{r['best_ns'] / r['default_ns']:.3f}"]
        cells.append(f"{r['verify_noise']:.0%}")
        for rn in rnames:
            p = r[rn]
            cells += [
                f"{p['measured']} ({p['frac']:.0%})",
                f"{p['gap']:+.1%} [{p['gap_lo']:+.1%}, {p['gap_hi']:+.1%}]",
                f"{p['gap_naive']:+.1%}",
                f"{p['speedup']:.2f}x",
            ]
        L.append("| " + " | ".join(cells) + " |")
    L += [
        "",
        "| ranker | kernels within 5% of the best | of them with the whole CI within 5% | kernels with the CI "
        "above 5% | within 5% by the naive gap | max share measured | whole model speed-up over TVM default "
        "(best possible) | tuning time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rn in rnames:
        s = summary[rn]
        L.append(
            f"| {rn} | {s['within5']}/{len(rows)} | {s['within5_sure']} | {s['beyond5_sure']} | "
            f"{s['within5_naive']}/{len(rows)} | {s['max_frac']:.1%} | {s['model_speedup']:.2f}x "
            f"({best_speedup:.2f}x) | {s['tune_s']:.0f} s |"
        )
    L += ["", end]
    if not args.limit:
        replace_marked_block(REPO / args.out, begin, end, "\n".join(L) + "\n")
        suffix = "" if default_model else f"_{spec_m.name}"
        write_json(
            REPO / f"docs/benchmarks/perf_tile_tune_real{suffix}.json", {"rows": rows, "summary": summary, "cmd": cmd}
        )
    print("\n".join(L))


if __name__ == "__main__":
    main()
