"""Benchmark of opgraph.perf: build layout + tile datasets here, compare the GNN with every baseline, tune.

Run (background, 1 thread, protocol malloc settings), all parts or some of them (``--parts``):

    MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000 OMP_NUM_THREADS=1 TVM_NUM_THREADS=1 \
        nice -n 10 .venv/bin/python benchmarks/perf/run.py --out runs/perf-bench --parts collect,layout,tile,tune

Parts: ``collect`` (layout + tile datasets; resumable, existing npz files are kept), ``layout`` / ``tile``
(5-fold cross-validation of every model and baseline, tuning replayed on the held-out graphs), ``tune`` (real
tuning of unseen models, evaluated head-to-head, see :func:`part_tune`). Each part merges its results into
``<out>/results.json``; the doc (docs/benchmarks/perf.md) is rewritten from that file after every part, so parts
can run in separate invocations (say, each under a CPU lock).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from opgraph._base.jsonio import write_json
from opgraph._base.provenance import cpu_model

REPO = Path(__file__).resolve().parents[2]
PARTS = ("collect", "layout", "tile", "tune")

#: The tuners compared on unseen models: keyword arguments of ``tune_layout``.
RACE_ROUNDS = 40
TUNERS = {
    "top-k": {"local_search": 0.0, "finalists": 0},
    "race": {"local_search": 0.0, "finalists": 4, "race_rounds": RACE_ROUNDS},
    "race + local search": {"local_search": 0.2, "finalists": 4, "race_rounds": RACE_ROUNDS},
}
DEFAULT_TUNER = "race"  # tune_layout's defaults (local search is off by default: it did not pay here)


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())


def layout_settings():
    from opgraph.perf.measure import MeasureSettings

    return MeasureSettings(rounds=3, reps=3, warmup=2)


def part_collect(args, results: dict) -> None:
    import torch

    from opgraph.perf import zoo
    from opgraph.perf.collect import collect_layout

    torch.set_num_threads(1)
    out = Path(args.out)
    t0 = time.perf_counter()
    specs = zoo.generate(args.layout_graphs, args.seed)
    collect_layout(
        specs, out / "layout", n_configs=args.configs, settings=layout_settings(), seed=args.seed, progress=False
    )
    results["layout_collect_s"] = time.perf_counter() - t0
    print(f"layout collected in {results['layout_collect_s']:.0f}s", flush=True)
    if not args.skip_tile:
        from opgraph.perf.measure import MeasureSettings
        from opgraph.perf.tile import collect_tile, generate_kernels

        t0 = time.perf_counter()
        collect_tile(
            generate_kernels(args.tile_kernels, args.seed),
            out / "tile",
            n_configs=args.configs,
            settings=MeasureSettings(rounds=2, reps=2, warmup=1),
            seed=args.seed,
            progress=False,
        )
        results["tile_collect_s"] = time.perf_counter() - t0
        print(f"tile collected in {results['tile_collect_s']:.0f}s", flush=True)


def data_stats(recs, folds: int) -> dict:
    n_test = len(recs) // folds
    meta = [r.measure_meta for r in recs]
    return {
        "graphs": len(recs),
        "train_graphs": len(recs) - n_test,
        "test_graphs": n_test,
        "configs_per_graph": float(np.mean([r.n_configs for r in recs])),
        "nodes_per_graph": float(np.mean([r.n_nodes for r in recs])),
        "median_noise": float(np.nanmedian([m.get("noise", np.nan) for m in meta])),
        "median_tau_between_rounds": float(np.nanmedian([m.get("tau_between_rounds", np.nan) for m in meta])),
        "median_spread": float(np.median([r.config_runtime.max() / r.config_runtime.min() for r in recs])),
        "median_default_over_best": float(np.median([r.config_runtime[0] / r.config_runtime.min() for r in recs])),
        "loadavg_range": [
            float(min(m["loadavg_start"][0] for m in meta)),
            float(max(m["loadavg_start"][0] for m in meta)),
        ],
        "malloc_env_set": all(m.get("malloc_env_set") for m in meta),
        "sum_collect_s": float(sum(m.get("collect_s", 0.0) for m in meta)),
        "collected_utc": [min(m.get("date_utc", "?") for m in meta), max(m.get("date_utc", "?") for m in meta)],
    }


def part_cv(kind: str, args, results: dict) -> None:
    """k folds over whole graphs: every model and baseline, and the tuning replay on the held-out graphs."""
    import torch

    from opgraph.perf.baselines import AnalyticalBaseline, DefaultBaseline, LightGBMBaseline, RandomBaseline
    from opgraph.perf.evaluate import compare
    from opgraph.perf.model import CostModel, ModelConfig
    from opgraph.perf.tpugraphs import load_records
    from opgraph.perf.tune import simulate_tuning

    torch.set_num_threads(1)
    recs = load_records(Path(args.out) / kind)
    # tile: ListMLE + 0.02 MSE as the official tile baseline, and twice the epochs (tiny graphs, cheap steps)
    extra = {"mse_weight": 0.02, "epochs": 2 * args.epochs} if kind == "tile" else {"epochs": args.epochs}

    def make_models():
        if kind == "tile":
            # the tile GNN: late join of the standardised log config columns through a 3-layer config MLP, an
            # ensemble of 3 seeds; then the same net alone, and the first version (plain log1p configs, 2-layer
            # config MLP, early join, one net) for comparison (v1's late-join and hinge rows were dropped to keep
            # the part under 12 minutes on the shared machine)
            tile = {**extra, "join": "late", "cfg_norm": True, "cfg_layers": 3}
            models = {
                "GNN (SAGE, ListMLE)": CostModel(ModelConfig(kind=kind, seed=args.seed, ensemble=3, **tile)),
                "GNN (SAGE, ListMLE, single net)": CostModel(ModelConfig(kind=kind, seed=args.seed, **tile)),
                "GNN v1 (SAGE, ListMLE, early join)": CostModel(ModelConfig(kind=kind, seed=args.seed, **extra)),
            }
        else:
            models = {
                "GNN (SAGE, ListMLE)": CostModel(ModelConfig(kind=kind, seed=args.seed, **extra)),
                "GNN (SAGE, pairwise hinge)": CostModel(ModelConfig(kind=kind, seed=args.seed, loss="hinge", **extra)),
            }
            models["GNN (SAGE, ListMLE, propagated layouts)"] = CostModel(
                ModelConfig(kind=kind, seed=args.seed, propagate_layout=True, **extra)
            )
        models.update(
            {
                "LightGBM lambdarank": LightGBMBaseline(seed=args.seed),
                "analytical": AnalyticalBaseline(),
                "default config": DefaultBaseline(seed=args.seed),
                "random": RandomBaseline(seed=args.seed),
            }
        )
        return models

    order = list(np.random.default_rng(args.seed).permutation(sorted(r.name for r in recs)))
    folds = [set(order[f :: args.folds]) for f in range(args.folds)]
    comp = None
    sims_by: dict = {}
    for f, held in enumerate(folds):
        train = [r for r in recs if r.name not in held]
        test = [r for r in recs if r.name in held]
        models = make_models()
        c = compare(models, train, test)
        print(f"{kind} fold {f}:", {k: round(v.mean("kendall_tau"), 3) for k, v in c.scores.items()}, flush=True)
        if comp is None:
            comp = c
        else:
            for name, sc in c.scores.items():
                comp.scores[name].graphs.extend(sc.graphs)
                comp.fit_s[name] += c.fit_s[name]
        for name in ("GNN (SAGE, ListMLE)", "LightGBM lambdarank", "analytical", "random"):
            sims_by.setdefault(name, []).extend(simulate_tuning(models[name], r, 0.1) for r in test)
    for name in comp.fit_s:
        comp.fit_s[name] /= args.folds
    print(comp, flush=True)
    tune = {
        name: {
            "mean_gap": float(np.mean([s["gap"] for s in sims])),
            "within_5pct": float(np.mean([s["gap"] <= 0.05 for s in sims])),
            "mean_speedup_vs_default": float(np.mean([s["speedup_vs_default"] for s in sims])),
            "measured_frac": float(np.mean([s["measured_frac"] for s in sims])),
        }
        for name, sims in sims_by.items()
    }
    results[kind] = {
        "data": data_stats(recs, args.folds),
        "models": comp.to_dict(),
        "table_md": comp.to_markdown(),
        "tune_simulation": tune,
    }


def part_tune(args, results: dict) -> None:
    """Tune unseen models for real and evaluate the picks fairly.

    Protocol per model (all in one process, one measuring thread):

    1. every tuner in :data:`TUNERS` runs ``tune_layout`` (200 candidates, 10% measuring budget, same sample);
    2. **full run**: all 200 candidates, plus any pick outside them (local-search neighbours), measured with the
       collection protocol (3 interleaved shuffled rounds): the raw gap is pick / best of the 200 - 1 in this run;
    3. **selection**: the ``--h2h-pool`` fastest configs of the full run and the picks are re-measured in
       ``--h2h-pool-rounds`` short interleaved shuffled rounds (one timed run per config per round; every round
       divided by its geometric mean, which cancels the machine's drift between rounds; median over rounds);
    4. **head-to-head**: the default, the ``--h2h-top`` fastest of the selection and every tuner's pick are
       re-measured in ``--h2h-rounds`` fresh short rounds the same way; the gap is pick / fastest of them - 1.
       Fresh data for the final comparison removes the winner's curse of taking the minimum of many noisy values.
    """
    import torch

    from opgraph.perf import zoo
    from opgraph.perf.measure import MeasureSettings
    from opgraph.perf.metrics import inter_round_tau
    from opgraph.perf.model import CostModel, ModelConfig
    from opgraph.perf.tpugraphs import load_records
    from opgraph.perf.tune import layout_candidates, layout_measurer, tune_layout

    torch.set_num_threads(1)
    out = Path(args.out)
    settings = layout_settings()
    recs = load_records(out / "layout")
    t0 = time.perf_counter()
    layout_model = CostModel(ModelConfig(kind="layout", epochs=args.epochs, seed=args.seed)).fit(recs)
    train_s = time.perf_counter() - t0
    known = {r.name for r in recs}
    rows_out = []
    for i in range(args.tune_models):
        fam = zoo.CNN_FAMILIES[i % len(zoo.CNN_FAMILIES)]
        spec = zoo.ZooSpec(fam, 987654 + i)
        if spec.name in known:
            raise SystemExit(f"{spec.name} is in the training data; pick other seeds")
        mod, ex = spec.build()
        load0 = os.getloadavg()[0]
        tuned = {}
        for tname, kw in TUNERS.items():
            tuned[tname] = tune_layout(
                mod, ex, layout_model, n_candidates=200, measure_frac=0.1, settings=settings, seed=0, **kw
            )
        cand, targets, choices, _ = layout_candidates(mod, ex, 200, seed=0, name=spec.name)
        measure = layout_measurer(mod, ex, targets, settings)
        rows = [c for c in choices]
        keys = {c.tobytes(): j for j, c in enumerate(rows)}
        pick_idx = {}
        for tname, tr in tuned.items():
            k = np.asarray(tr.best_choice, dtype=np.int64).tobytes()
            if k not in keys:
                keys[k] = len(rows)
                rows.append(np.asarray(tr.best_choice, dtype=np.int64))
            pick_idx[tname] = keys[k]
        t1 = time.perf_counter()
        full = measure(np.stack(rows), settings.rounds, 1)
        full_s = time.perf_counter() - t1
        full_med = np.median(full, axis=1)
        n_c = len(choices)
        best_full = float(full_med[:n_c].min())
        # one timed run per config per round (after one warm-up run), many short rounds: configs of one round see
        # the same state of the loaded machine; each round is divided by its geometric mean over its configs
        # (cancels the drift between rounds), then the median over rounds per config
        h2h_measure = layout_measurer(mod, ex, targets, MeasureSettings(reps=1, warmup=1))

        def short_rounds(idx, n_rounds, seed, measure_=h2h_measure, rows_=rows) -> tuple[np.ndarray, np.ndarray]:
            t = measure_(np.stack([rows_[j] for j in idx]), n_rounds, seed)
            norm = t / np.exp(np.log(np.maximum(t, 1.0)).mean(axis=0, keepdims=True))
            return t, norm

        # selection: the --h2h-pool fastest of the full run (+ the picks) in short rounds; the --h2h-top fastest of
        # those go on to the final re-measurement, which is fresh data (no winner's curse from the selection)
        pool = [int(j) for j in np.argsort(full_med[:n_c], kind="stable")[: args.h2h_pool]]
        pool_idx = list(dict.fromkeys([0] + pool + list(pick_idx.values())))
        _, pool_norm = short_rounds(pool_idx, args.h2h_pool_rounds, 2)
        pool_med = np.median(pool_norm, axis=1)
        top = [pool_idx[i] for i in np.argsort(pool_med, kind="stable") if pool_idx[i] < n_c][: args.h2h_top]
        h = list(dict.fromkeys([0] + top + list(pick_idx.values())))
        h2h, norm = short_rounds(h, args.h2h_rounds, 3)
        h_med = np.median(norm, axis=1)
        eval_s = time.perf_counter() - t1
        best_h = float(h_med.min())
        res = {
            "model": spec.name,
            "n_candidates": n_c,
            "n_convs": len(targets),
            "loadavg_start": load0,
            "loadavg_end": os.getloadavg()[0],
            "full_default_over_best": float(full_med[0] / best_full),
            "full_tau_between_rounds": inter_round_tau(full[:n_c]),
            "full_noise": float(np.median(full.std(axis=1) / full_med)),
            "h2h_noise": float(np.median(norm.std(axis=1) / h_med)),
            "h2h_noise_unnormalised": float(np.median(h2h.std(axis=1) / np.median(h2h, axis=1))),
            "h2h_rows": [int(j) for j in h],
            "h2h_rounds_ns": np.rint(h2h).astype(np.int64).tolist(),
            "h2h_default_over_best": float(h_med[0] / best_h),
            "eval_s": eval_s,
            "full_s": full_s,
            "tuners": {},
        }
        for tname, tr in tuned.items():
            j = pick_idx[tname]
            hj = h.index(j)
            res["tuners"][tname] = {
                "result": repr(tr),
                "is_default": bool(j == 0),
                "stage_of_best": tr.stage_of_best,
                "in_candidates": bool(j < n_c),
                "n_measured": tr.n_measured,
                "measured_frac": tr.measured_frac,
                "n_config_rounds": tr.n_config_rounds,
                "config_rounds_frac_of_full": tr.n_config_rounds / (n_c * settings.rounds),
                "tune_s": tr.seconds,
                "measure_s": tr.measure_s,
                "speedup_reported": tr.speedup,
                "raw_gap": float(full_med[j] / best_full - 1),
                "gap": float(h_med[hj] / best_h - 1),
                "speedup_vs_default_h2h": float(h_med[0] / h_med[hj]),
            }
        rows_out.append(res)
        print(
            spec.name,
            {t: (round(v["raw_gap"], 3), round(v["gap"], 3), v["stage_of_best"]) for t, v in res["tuners"].items()},
            flush=True,
        )
    if "tune_real" in results:  # keep a summary of every earlier tune part: all runs are reported
        results.setdefault("tune_real_history", []).append(tune_summary(results["tune_real"], results))
    results["tune_real"] = {
        "finished_utc": now(),
        "models": rows_out,
        "train_s": train_s,
        "h2h_top": args.h2h_top,
        "h2h_pool": args.h2h_pool,
        "h2h_pool_rounds": args.h2h_pool_rounds,
        "h2h_rounds": args.h2h_rounds,
        "full_rounds": settings.rounds,
        "tuners": TUNERS,
        "race": f"{RACE_ROUNDS} short interleaved shuffled rounds (one timed run per config per round)",
    }


def tune_summary(tr: dict, results: dict) -> dict:
    """One line per tuner of a tune part (kept when the part is run again)."""
    ms = tr["models"]
    prov = results.get("parts", {}).get("tune", {})
    return {
        "finished_utc": tr.get("finished_utc", prov.get("finished_utc", "?")),
        "loadavg": [prov.get("loadavg_start"), prov.get("loadavg_end")],
        "n_models": len(ms),
        "race": tr.get("race", "8 rounds of 3 timed runs"),
        "protocol": (
            f"selection of {tr['h2h_pool']} in {tr['h2h_pool_rounds']} rounds, head-to-head of {tr['h2h_top']} in "
            f"{tr['h2h_rounds']} rounds"
            if "h2h_pool" in tr
            else f"head-to-head of the full run's {tr['h2h_top']} fastest in {tr['h2h_rounds']} rounds"
        ),
        "tuners": {
            t: {
                "within_5pct": sum(m["tuners"][t]["gap"] <= 0.05 for m in ms),
                "mean_gap": float(np.mean([m["tuners"][t]["gap"] for m in ms])),
                "max_gap": float(max(m["tuners"][t]["gap"] for m in ms)),
                "gaps": [m["tuners"][t]["gap"] for m in ms],
            }
            for t in tr["tuners"]
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/perf-bench")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--layout-graphs", type=int, default=36)
    ap.add_argument("--tile-kernels", type=int, default=33)
    ap.add_argument("--configs", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-tile", action="store_true")
    ap.add_argument("--folds", type=int, default=5, help="folds over whole graphs (5: 20%% held out per fold)")
    ap.add_argument("--tune-models", type=int, default=8, help="unseen models tuned (cycling over CNN families)")
    ap.add_argument("--h2h-pool", type=int, default=20, help="fastest configs of the full run re-measured")
    ap.add_argument("--h2h-pool-rounds", type=int, default=30, help="rounds of that re-measurement")
    ap.add_argument("--h2h-top", type=int, default=5, help="fastest of those in the final head-to-head")
    ap.add_argument("--h2h-rounds", type=int, default=60, help="rounds of the head-to-head re-measurement")
    ap.add_argument("--doc", default=str(REPO / "docs/benchmarks/perf.md"))
    ap.add_argument("--note", default=None, help="a remark on the conditions of this run, kept in the doc")
    args = ap.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise SystemExit(f"--parts: unknown {bad}; choose from {PARTS}")
    if args.skip_tile and "tile" in parts:
        parts.remove("tile")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rpath = out / "results.json"
    results: dict = json.loads(rpath.read_text()) if rpath.is_file() else {}

    if args.note:
        results.setdefault("notes", {})[now()] = args.note
    if not parts:  # only rewrite the doc (and keep the note)
        write_json(rpath, results)
        write_doc(Path(args.doc), args, results)
    for part in parts:
        prov = {"argv": sys.argv, "started_utc": now(), "loadavg_start": os.getloadavg()[0]}
        t0 = time.perf_counter()
        if part == "collect":
            part_collect(args, results)
        elif part in ("layout", "tile"):
            part_cv(part, args, results)
        else:
            part_tune(args, results)
        prov.update(finished_utc=now(), loadavg_end=os.getloadavg()[0], seconds=time.perf_counter() - t0)
        results.setdefault("parts", {})[part] = prov
        write_json(rpath, results)
        write_doc(Path(args.doc), args, results)
        print(f"part {part} done in {prov['seconds']:.0f}s; wrote {rpath} and {args.doc}", flush=True)


def _prov(results, part) -> str:
    p = results.get("parts", {}).get(part)
    if not p:
        return "not run"
    argv = list(p["argv"][1:])
    if "--note" in argv[:-1]:  # the note is listed on its own below
        argv[argv.index("--note") + 1] = "..."
    return (
        f"`{' '.join(['benchmarks/perf/run.py'] + argv)}`, {p['started_utc']} .. {p['finished_utc']}, "
        f"{p['seconds'] / 60:.1f} min, load average {p['loadavg_start']:.2f} at the start, "
        f"{p['loadavg_end']:.2f} at the end"
    )


def write_doc(path: Path, args, results) -> None:
    from opgraph._base.fileio import atomic_write

    env = "MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000 OMP_NUM_THREADS=1 TVM_NUM_THREADS=1"
    L = [
        "# opgraph.perf benchmark",
        "",
        f"Command: `flock /tmp/opgraph-cpu.lock env {env} .venv/bin/python benchmarks/perf/run.py --out "
        "runs/perf-bench --parts PART` for each part (the lock keeps the timing runs of the engineers sharing "
        "this machine apart).",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores shared with other jobs, no GPU. The noise and the "
        "inter-round Kendall tau below are measured in the same runs and bound what any model can reach.",
        "",
        "Parts (from `runs/perf-bench/results.json`):",
        "",
    ]
    L += [f"- {part}: {_prov(results, part)}" for part in PARTS]
    L += [f"- note ({t}): {n}" for t, n in results.get("notes", {}).items()]
    L += [
        "",
        "Protocol: 1 thread, CPU time of the measuring thread (`time.thread_time_ns`), glibc malloc thresholds "
        "raised, warm-up, rounds in a fresh shuffled order, the default config re-measured in every round "
        "(normaliser), hopeless configs (> 5x the best so far) timed once. Hold-out: 20% of whole graphs per fold. "
        "The noise ceiling is the mean Kendall tau between two single measuring rounds of the held-out graphs; "
        "the labels are the median over rounds (3 layout, 2 tile), which is less noisy than one round, so a model "
        "can score slightly above the ceiling.",
        "",
    ]
    if "layout_collect_s" in results:
        L += [
            f"Collection time in the last collect part (files already present are kept): layout "
            f"{results['layout_collect_s']:.0f} s"
            + (f", tile {results['tile_collect_s']:.0f} s" if "tile_collect_s" in results else "")
            + " (target: both within 30 min on 2 cores).",
            "",
        ]
    for kind in ("layout", "tile"):
        if kind not in results:
            continue
        sec = results[kind]
        d = sec["data"]
        L += [
            f"## {kind}",
            "",
            f"{d['graphs']} graphs, {args.folds}-fold cross-validation over whole graphs (about {d['train_graphs']} "
            f"train / {d['test_graphs']} held out per fold; every graph is scored once, when held out; fit s is per "
            "fold), "
            f"{d['configs_per_graph']:.1f} configs per graph, {d['nodes_per_graph']:.1f} nodes per graph. "
            f"Median per-config noise {d['median_noise']:.1%}, median inter-round tau "
            f"{d['median_tau_between_rounds']:.3f}, median spread (slowest/fastest) {d['median_spread']:.2f}x, "
            f"median default/best {d['median_default_over_best']:.3f}. Collection time (sum over graphs, from the "
            f"files) {d['sum_collect_s']:.0f} s, graphs measured between {d['collected_utc'][0]} and "
            f"{d['collected_utc'][1]}. Load average during collection "
            f"{d['loadavg_range'][0]:.2f}..{d['loadavg_range'][1]:.2f}; malloc env set: {d['malloc_env_set']}.",
            "",
            sec["table_md"],
            "",
            "Tuning replayed on the held-out graphs (only the screening step can be replayed from stored runtimes: "
            "the default + the model's top picks, 10% of the configs; gap = chosen / best measured - 1):",
            "",
            "| ranker | mean gap | within 5% | speed-up vs default | fraction measured |",
            "|---|---|---|---|---|",
        ]
        for name, t in sec["tune_simulation"].items():
            L.append(
                f"| {name} | {t['mean_gap']:.3f} | {t['within_5pct']:.0%} | {t['mean_speedup_vs_default']:.3f} | "
                f"{t['measured_frac']:.2f} |"
            )
        L.append("")
    if "tune_real" in results:
        L += tune_section(results["tune_real"], results.get("tune_real_history"))
    L += targets(results)
    atomic_write(path, "\n".join(L) + "\n")


def tune_section(tr: dict, results_history: list | None = None) -> list[str]:
    ms = tr["models"]
    L = [
        "## perf tune on unseen models",
        "",
        f"{len(ms)} new zoo models (seeds 987654.., cycling over the CNN families; none is in the dataset), the "
        f"GNN (SAGE, ListMLE) trained on all layout graphs ({tr['train_s']:.0f} s). Each tuner ranks the same 200 "
        "sampled candidates and may measure 10% of them (20 distinct configs, the default included):",
        "",
        "- `top-k`: the default + the model's top 19, 3 rounds, keep the fastest (the earlier tuner);",
        "- `race` (the default of `tune_layout` / `opgraph perf tune`): the default + the top 19 (3 rounds), then the 4 fastest and the default re-measured head-to-head in "
        f"{tr.get('race', '8 more interleaved rounds of 3 timed runs')} with successive halving (4 -> 2 after half "
        "of the rounds); the default is kept unless the winner beats it;",
        "- `race + local search`: as `race`, but 4 of the 20 "
        "configs are single-convolution flips of the best measured config, the ones the model scores fastest.",
        "",
        "Evaluation, per model in the same process: (1) the full run measures all 200 candidates (plus any pick "
        f"outside them) in {tr['full_rounds']} interleaved shuffled rounds: *raw gap* = pick / best of the 200 in "
        f"that run - 1; (2) selection: the {tr.get('h2h_pool', '?')} fastest of the full run and the picks are "
        f"re-measured in {tr.get('h2h_pool_rounds', '?')} short interleaved shuffled rounds (one timed run per "
        "config per round after a warm-up run; each round divided by its geometric mean over its configs, which "
        "cancels the drift of the loaded machine between rounds; median over rounds); (3) head-to-head: the "
        f"default, the {tr['h2h_top']} fastest of the selection and every tuner's pick are re-measured in "
        f"{tr['h2h_rounds']} fresh short rounds the same way: *gap* = pick / fastest of them - 1. The minimum of "
        "200 noisy values of one run is biased low (winner's curse) and a 200-config round lasts seconds, over "
        "which the machine drifts; the selection and the fresh head-to-head remove both, and the head-to-head gap "
        "is the number the target is judged on.",
        "",
        "| model | convs | tuner | raw gap | gap (head-to-head) | speed-up vs all-NCHW (h2h) | pick from | "
        "configs measured | config-rounds vs full space | measuring s (tuner / full run) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in ms:
        for tname, t in m["tuners"].items():
            src = "default" if t["is_default"] else t["stage_of_best"]
            L.append(
                f"| {m['model']} | {m['n_convs']} | {tname} | {t['raw_gap']:.1%} | {t['gap']:.1%} | "
                f"{t['speedup_vs_default_h2h']:.3f} | {src} | {t['n_measured']}/{m['n_candidates']} | "
                f"{t['config_rounds_frac_of_full']:.0%} | {t.get('measure_s', float('nan')):.1f} / "
                f"{m.get('full_s', float('nan')):.1f} |"
            )
    L += [
        "",
        "Noise of the evaluation runs:",
        "",
        "| model | default/best (full run) | tau between rounds (full run) | noise full run | noise h2h (raw / "
        "round-normalised) | default/best (h2h) | load avg | eval s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in ms:
        L.append(
            f"| {m['model']} | {m['full_default_over_best']:.3f} | {m['full_tau_between_rounds']:.3f} | "
            f"{m['full_noise']:.1%} | {m['h2h_noise_unnormalised']:.1%} / {m['h2h_noise']:.1%} | {m['h2h_default_over_best']:.3f} | "
            f"{m['loadavg_start']:.1f}..{m['loadavg_end']:.1f} | {m['eval_s']:.0f} |"
        )
    L += [
        "",
        "Summary per tuner (all models):",
        "",
        "| tuner | within 5% (h2h) | mean gap | max gap | within 5% (raw) | mean raw gap | returned the default |",
        "|---|---|---|---|---|---|---|",
    ]
    for tname in tr["tuners"]:
        g = [m["tuners"][tname]["gap"] for m in ms]
        rg = [m["tuners"][tname]["raw_gap"] for m in ms]
        nd = sum(m["tuners"][tname]["is_default"] for m in ms)
        L.append(
            f"| {tname} | {sum(x <= 0.05 for x in g)}/{len(g)} | {np.mean(g):.1%} | {max(g):.1%} | "
            f"{sum(x <= 0.05 for x in rg)}/{len(rg)} | {np.mean(rg):.1%} | {nd} |"
        )
    L.append("")
    hist = results_history
    if hist:
        L += [
            "Earlier tune parts (the first models of the same list; race settings and evaluation as listed; the "
            "machine's load differed; the tables above are the latest):",
            "",
            "| finished | load avg | models | race | evaluation | "
            + " | ".join(f"{t}: within 5% / mean gap" for t in tr["tuners"])
            + " |",
            "|---|---|---|---|---|" + "---|" * len(tr["tuners"]),
        ]
        for h in hist:
            cells = [
                f"{h['tuners'][t]['within_5pct']}/{h['n_models']} / {h['tuners'][t]['mean_gap']:.1%}"
                if t in h["tuners"]
                else "-"
                for t in tr["tuners"]
            ]
            load = "..".join(f"{v:.1f}" for v in h["loadavg"] if v is not None) or "?"
            L.append(
                f"| {h['finished_utc']} | {load} | {h['n_models']} | {h.get('race', '8 rounds of 3 timed runs')} | "
                f"{h['protocol']} | " + " | ".join(cells) + " |"
            )
        L.append("")
    return L


def targets(results) -> list[str]:
    L = [
        "## Targets",
        "",
        "On the seeded zoo above (random 5-fold CV over whole graphs of the same families). On held-out architecture",
        "families of real models (next section) no lead of the GNN alone over the best baseline is resolved beyond",
        "noise: see its 'Is it more than noise?' tables.",
        "",
    ]
    if "layout" in results:
        lay = results["layout"]["models"]
        gnn = lay["GNN (SAGE, ListMLE)"]["summary"]
        ceil = gnn["ceiling_tau"]
        lg = lay["LightGBM lambdarank"]["summary"]["kendall_tau"]
        an = lay["analytical"]["summary"]["kendall_tau"]
        ok = gnn["kendall_tau"] >= 0.8 * ceil
        L.append(
            f"- Layout tau >= 0.8 x ceiling: GNN {gnn['kendall_tau']:.3f} vs 0.8 x {ceil:.3f} = {0.8 * ceil:.3f}: "
            f"**{'met' if ok else 'not met'}**."
        )
        L.append(
            f"- Layout tau above LightGBM ({lg:.3f}) and analytical ({an:.3f}): "
            f"**{'met' if gnn['kendall_tau'] > max(lg, an) else 'not met'}**."
        )
    if "tile" in results:
        t = results["tile"]["models"]["GNN (SAGE, ListMLE)"]["summary"]
        L.append(
            f"- Tile slowdown@5 <= 5%: {t['slowdown@5']:.3%}: **{'met' if t['slowdown@5'] <= 0.05 else 'not met'}**."
        )
    if "tune_real" in results:
        ms = results["tune_real"]["models"]
        ts = [m["tuners"][DEFAULT_TUNER] for m in ms]
        gaps = [t["gap"] for t in ts]
        raw = [t["raw_gap"] for t in ts]
        fracs = [t["measured_frac"] for t in ts]
        n_ok = sum(g <= 0.05 and f <= 0.10 + 1e-9 for g, f in zip(gaps, fracs))
        L.append(
            f"- perf tune ({DEFAULT_TUNER}) within 5% of the best measured config (head-to-head), measuring <= 10%: "
            f"{n_ok} of {len(gaps)} unseen models (gaps {', '.join(f'{g:.1%}' for g in gaps)}; raw gaps "
            f"{', '.join(f'{r:.1%}' for r in raw)}; measured {max(fracs):.0%} of the configs): "
            f"**{'met' if n_ok == len(gaps) else 'met for ' + str(n_ok) + ' of ' + str(len(gaps))}**."
        )
    secs = [results[k]["data"]["sum_collect_s"] for k in ("layout", "tile") if k in results]
    if secs:
        tot = sum(secs)
        L.append(
            f"- Collection within 30 min: {tot / 60:.1f} min (sum of the per-graph collection times stored in the "
            f"files, i.e. as if collected from scratch): **{'met' if tot <= 1800 else 'not met'}**."
        )
    return L


if __name__ == "__main__":
    main()
