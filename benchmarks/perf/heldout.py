"""Leave-one-family-out evaluation of the perf cost models on the real zoo (layout and tile spaces).

Two parts, each resumable:

``collect``: a modest real dataset in ``--data`` (``layout/*.npz``, ``tile/*.npz`` and ``families.json``):

* layout: the five convolutional Hugging Face families (ResNet, MobileNetV2, ConvNeXt, EfficientNet, RegNet) at
  several sizes and input scales, random per-conv NCHW / channels-last configs (:func:`opgraph.perf.collect.
  collect_layout`);
* tile: the distinct conv / matmul / bmm kernels of all nine real families (tiny and small sizes), each kernel
  under TVM tile configs (:func:`opgraph.perf.tile.collect_tile`); a kernel belongs to the family of the first
  model it was found in.

Files already measured are kept, so a bigger dataset (the resumable collection job of ``perf-collect``) can be
pointed at with ``--data`` as long as it has ``layout/`` and ``tile/`` folders and either ``families.json`` or
``measure_meta["zoo"]["family"]`` / ``hf_<family>_...`` names.

``evaluate``: every family held out once (:func:`opgraph.perf.evaluate.leave_one_family_out`); GNN, LightGBM,
analytical, default and random (tile: also MetaSchedule's XGBoost model), the noise ceiling beside them; plus the
GNN ablations. Writes a marked section of docs/benchmarks/perf.md and a JSON beside it.

    MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000 OMP_NUM_THREADS=1 TVM_NUM_THREADS=1 \\
        PYTHONPATH=src python benchmarks/perf/heldout.py collect --data runs/heldout
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/heldout.py evaluate --data runs/heldout

``pergraph``: every model's per-graph metrics added to the JSON (GNN columns from the predictions ``seeds`` kept,
the cheap models trained again), and the "Is it more than noise?" table per space (paired bootstrap over graphs
within families and over families, :mod:`opgraph.perf.significance`); ``doc`` redraws it from the JSON::

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/heldout.py pergraph --data /work/data/heldout-tile \
        --spaces tile --preds runs/preds --ms-cache runs/ms_cache
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from opgraph._base.jsonio import read_json, write_json
from opgraph.perf.ensemble import RankAverage
from opgraph.perf.ensemble import standardise as _std

LAYOUT_SIZES = ("tiny", "small", "base")
LAYOUT_SCALES = (1.0, 1.5)
TILE_SIZES = ("tiny", "small")


def _families_path(data: Path) -> Path:
    return data / "families.json"


def _merge_families(data: Path, new: dict[str, str]) -> None:
    path = _families_path(data)
    fams = dict(read_json(path)) if path.exists() else {}
    fams.update(new)
    write_json(path, fams)


def part_collect(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from opgraph.perf import zoo
    from opgraph.perf.collect import collect_layout
    from opgraph.perf.kernels import model_kernels
    from opgraph.perf.measure import MeasureSettings
    from opgraph.perf.tile import collect_tile

    torch.set_num_threads(1)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    settings = MeasureSettings(rounds=args.rounds, reps=3, warmup=2)
    t0 = time.perf_counter()
    if "layout" in args.spaces:
        specs = [
            s for size in LAYOUT_SIZES for s in zoo.real_specs(zoo.REAL_CNN_FAMILIES, (size,), scales=LAYOUT_SCALES)
        ]
        _merge_families(data, {s.name: s.family for s in specs})
        collect_layout(specs, data / "layout", n_configs=args.layout_configs, settings=settings, seed=0)
        print(f"layout: {len(specs)} graphs, {time.perf_counter() - t0:.0f} s", flush=True)
    if "tile" in args.spaces:
        t1 = time.perf_counter()
        models = model_kernels(zoo.real_specs(zoo.REAL_FAMILIES, TILE_SIZES), progress=False)
        family_of = {s.name: s.family for s in zoo.real_specs(zoo.REAL_FAMILIES, TILE_SIZES)}
        kernels: dict[str, Any] = {}
        fams: dict[str, str] = {}
        for m in models:
            for k in m.kernels:
                spec = k.kernel_spec()
                if spec is None or spec.name in kernels or spec.flops() > args.max_mflop * 1e6:
                    continue
                kernels[spec.name] = spec
                fams[spec.name] = family_of[m.name]
        specs_t = []
        for fam in zoo.REAL_FAMILIES:  # at most --per-family kernels, spread evenly over the family's FLOPs
            mine = sorted((s for s in kernels.values() if fams[s.name] == fam), key=lambda s: (s.flops(), s.name))
            done = [s for s in mine if (data / "tile" / f"{s.name}.npz").exists()]  # resumed: keep what is measured
            rest = [s for s in mine if s not in done]
            n = min(len(rest), max(0, args.per_family - len(done)))
            specs_t += done + [rest[int(i)] for i in np.unique(np.linspace(0, len(rest) - 1, n).round().astype(int))]
        _merge_families(data, {s.name: fams[s.name] for s in specs_t})
        print(f"tile: {len(specs_t)} kernels <= {args.max_mflop} MFLOP", flush=True)
        collect_tile(specs_t, data / "tile", n_configs=args.tile_configs, settings=settings, seed=0)
        print(f"tile: {len(specs_t)} kernels, {time.perf_counter() - t1:.0f} s", flush=True)


# -- evaluation ---------------------------------------------------------------------------------------------

BEGIN, END = "<!-- heldout:begin -->", "<!-- heldout:end -->"
#: --section: name -> (begin marker, end marker, title) of the page section written
SECTIONS = {
    "": (BEGIN, END, "## Held-out architecture families (leave one family out)"),
    "metaschedule": (
        "<!-- heldout-metaschedule:begin -->",
        "<!-- heldout-metaschedule:end -->",
        "## Held-out architecture families: MetaSchedule's XGBoost and MLP cost models (tile)",
    ),
}


def gnn_config(kind: str, **over: Any) -> Any:
    """The GNN of ``opgraph perf train`` (its defaults per space), early-stopped on 20% of the training graphs."""
    from opgraph.perf.model import DEFAULT_ENSEMBLE, ModelConfig

    base: dict[str, Any] = {"kind": kind, "epochs": 40, "hidden": 64, "early_stop_frac": 0.2, "hints": True}
    if kind == "tile":
        base.update(join="late", cfg_norm=True, cfg_layers=3, ensemble=DEFAULT_ENSEMBLE["tile"], mse_weight=0.02)
    base.update(over)
    return ModelConfig(**base)


#: GNN variants of the ablation: name -> ModelConfig overrides of :func:`gnn_config`.
ABLATIONS = {
    "layout": {
        "ListMLE (the design before top-5 ListMLE)": {"loss": "listmle", "hints": False},
        "analytical + hand-feature hints joined late": {"hints": True, "hint_set": "all", "hint_norm": "train"},
        "pairwise hinge loss": {"loss": "hinge"},
        "ensemble of 3 seeds": {"ensemble": 3},
        "no pruning (whole graph)": {"k_hop": None},
        "1-hop subgraph": {"k_hop": 1},
        "raw features (no log/standardise)": {"feat_norm": False},
        "propagated layouts": {"propagate_layout": True},
        # the perf train layout design from gnn-earn2 to gnn-earn3 (no hints)
        "top-5 ListMLE loss": {"loss": "listmle_top", "top_k": 5, "hints": False},
        "lambda loss (rank gap x log runtime ratio)": {"loss": "lambda", "hints": False},
        "analytical estimate per-graph standardised, joined late + residual": {
            "loss": "listmle_top",
            "hints": True,
            "hint_set": "estimate",
            "hint_norm": "graph",
        },
        "analytical terms per-graph standardised, joined late + residual": {
            "loss": "listmle_top",
            "hints": True,
            "hint_set": "analytical",
            "hint_norm": "graph",
        },
        "lambda loss + analytical terms per-graph standardised, joined late + residual": {
            "loss": "lambda",
            "hints": True,
            "hint_set": "analytical",
            "hint_norm": "graph",
        },
        "lambda NDCG@10 loss + analytical terms per-graph standardised, joined late + residual": {
            "loss": "lambda_ndcg",
            "top_k": 10,
            "hints": True,
            "hint_set": "analytical",
            "hint_norm": "graph",
        },
        "lambda NDCG@5 loss + analytical terms per-graph standardised, joined late + residual": {
            "loss": "lambda_ndcg",
            "top_k": 5,
            "hints": True,
            "hint_set": "analytical",
            "hint_norm": "graph",
        },
        "lambda NDCG (all positions) loss + analytical terms per-graph standardised, joined late + residual": {
            "loss": "lambda_ndcg",
            "top_k": 64,
            "hints": True,
            "hint_set": "analytical",
            "hint_norm": "graph",
        },
        "lambda loss + analytical terms, configs sampled towards the fast ones": {
            "loss": "lambda",
            "hints": True,
            "hint_set": "analytical",
            "hint_norm": "graph",
            "fast_sampling": 0.25,
        },
        "analytical + hand features per-graph standardised, joined late + residual": {
            "hints": True,
            "hint_set": "all",
            "hint_norm": "graph",
        },
    },
    "tile": {  # the single-net variants change one thing of the single seed (cheaper than 3-seed ensembles)
        "GNN (perf train design)": {},
        "previous design (no tile-fit hints)": {"fit_hints": False, "residual": True},
        "no hints (the previous design)": {"hints": False},
        "single seed (no ensemble)": {"ensemble": 1},
        "single seed, no hints": {"ensemble": 1, "hints": False},
        "single seed, pairwise hinge loss": {"ensemble": 1, "loss": "hinge"},
        "single seed, early join": {"ensemble": 1, "join": "early"},
        "single seed, raw config columns": {"ensemble": 1, "cfg_norm": False},
        "single seed, raw features (no log/standardise)": {"ensemble": 1, "feat_norm": False},
        "single seed, no MSE term": {"ensemble": 1, "mse_weight": 0.0},
        "top-5 ListMLE loss": {"loss": "listmle_top", "top_k": 5},
        "lambda loss (rank gap x log runtime ratio)": {"loss": "lambda"},
        "tile-fit hints (divides / padding waste / extent per loop)": {"fit_hints": True, "residual": True},
        "tile-fit hints, per-graph standardised": {"fit_hints": True, "hint_norm": "graph"},
        "per-graph standardised hints": {"hint_norm": "graph"},
        "tile-fit hints, no analytical residual": {"fit_hints": True, "residual": False},
        "lambda NDCG@5 loss (gains log slowest/runtime)": {"loss": "lambda_ndcg", "top_k": 5},
        "lambda NDCG@10 loss (gains log slowest/runtime)": {"loss": "lambda_ndcg", "top_k": 10},
        "hand features joined into the config embedding, x graph": {"hint_join": "config", "interact": True},
        "hand features joined into the config embedding": {"hint_join": "config"},
        "hints standardised over the training configs, not centred per kernel": {"hint_norm": "global"},
        "ListMLE + lambda NDCG@5 term": {"ndcg_weight": 1.0, "top_k": 5},
    },
}


def parse_variants(text: str) -> tuple[str, ...]:
    """``--variants``: names separated by ';', or by ',' when no name has a comma; a single known name that has
    commas (e.g. 'lambda loss + analytical terms per-graph standardised, joined late + residual') stays whole."""
    known = {n for space in ABLATIONS.values() for n in space}
    if text in known:
        return (text,)
    return tuple(v for v in text.split(";" if ";" in text else ",") if v)


def lightgbm_fit() -> Any:
    """LightGBM on its tile features plus the tile-fit columns the GNN gets with ``fit_hints`` (a fair check)."""
    from opgraph.perf.baselines import LightGBMBaseline

    return LightGBMBaseline(features="tile+fit")


def metaschedule_status() -> str:
    """'' when MetaSchedule's cost models can run here, else the reason."""
    try:
        import xgboost  # noqa: F401

        from opgraph.perf.baselines import _check_tvm_ffi
        from opgraph.perf.tile import require_tvm

        require_tvm()
        _check_tvm_ffi()
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return f"{type(exc).__name__}: {exc}"
    return ""


def _fold_models(kind: str, ms_ok: bool, args: argparse.Namespace) -> dict[str, Any]:
    from opgraph.perf.baselines import (
        AnalyticalBaseline,
        DefaultBaseline,
        LightGBMBaseline,
        MetaScheduleBaseline,
        RandomBaseline,
    )
    from opgraph.perf.model import CostModel

    over = {"ensemble": args.ensemble} if args.ensemble else {}
    gnn = CostModel(gnn_config(kind, epochs=args.epochs, **over))
    lgbm = LightGBMBaseline()
    models: dict[str, Any] = {
        "GNN": gnn,
        "LightGBM": lgbm,
        "GNN + LightGBM": RankAverage([gnn, lgbm], ["GNN", "LightGBM"]),
    }
    if kind == "tile":
        models["LightGBM + tile-fit features"] = lightgbm_fit()
    if kind == "tile" and ms_ok:
        cache = Path(args.ms_cache) if args.ms_cache else Path(args.data) / "metaschedule_features"
        models["MetaSchedule XGBoost"] = MetaScheduleBaseline("xgb", cache_dir=cache)
        if args.mlp:
            models["MetaSchedule MLP"] = MetaScheduleBaseline("mlp", cache_dir=cache)
    analytical = AnalyticalBaseline()
    models["GNN + analytical"] = RankAverage([gnn, analytical], ["GNN", "analytical"])
    models.update({"analytical": analytical, "default config": DefaultBaseline(), "random": RandomBaseline()})
    if args.models:  # a run split over processes: each evaluates some of the models, `doc` merges the JSONs
        models = {n: m for n, m in models.items() if n in args.models}
    return models


def _load_space(data: Path, kind: str) -> tuple[list[Any], dict[str, str]]:
    from opgraph.perf.tpugraphs import load_records

    fams = dict(read_json(_families_path(data))) if _families_path(data).exists() else {}
    return load_records(data / kind, lazy=False), fams


def split_half_tau(rec: Any) -> float:
    """Kendall tau between the medians of the even and the odd measuring rounds (NaN below 4 rounds).

    The target is the median over all rounds, so this (two medians of half the rounds) is closer to how well the
    target can be predicted than the tau between two single rounds, and still a lower bound of it.
    """
    import numpy as np

    from opgraph.perf.metrics import kendall_tau

    r = None if rec.config_runtime_rounds is None else np.asarray(rec.config_runtime_rounds, dtype=np.float64)
    if r is None or r.shape[1] < 4:
        return float("nan")
    return float(kendall_tau(np.median(r[:, 0::2], 1), np.median(r[:, 1::2], 1)))


def part_evaluate(args: argparse.Namespace) -> None:
    import numpy as np

    from opgraph._base.provenance import machine_line
    from opgraph.perf.evaluate import compare, family_of, leave_one_family_out
    from opgraph.perf.measure import apply_thread_settings
    from opgraph.perf.model import CostModel

    apply_thread_settings()
    data = Path(args.data)
    out_json = Path(args.json)
    results: dict[str, Any] = dict(read_json(out_json)) if out_json.exists() else {}
    ms_reason = metaschedule_status() if args.metaschedule else "not run (--no-metaschedule)"
    t_start = time.perf_counter()
    for kind in args.spaces:
        recs, fams = _load_space(data, kind)
        folds = [f for f in leave_one_family_out(recs, fams) if not args.families or f[0] in args.families]
        res: dict[str, Any] = {"families": {}, "started": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())}
        if args.main:
            res["metaschedule"] = ms_reason or "ok"
        for fam, train, test in folds if args.main else []:
            t0 = time.perf_counter()
            comp = compare(_fold_models(kind, not ms_reason, args), train, test)
            res["families"][fam] = {
                "graphs": len(test),
                "train_graphs": len(train),
                "nodes_median": float(np.median([r.n_nodes for r in test])),
                "nodes_max": int(max(r.n_nodes for r in test)),
                "configs_median": float(np.median([r.n_configs for r in test])),
                "rounds": int(np.median([np.asarray(r.config_runtime_rounds).shape[1] for r in test])),
                "split_half_ceiling": float(np.mean([split_half_tau(r) for r in test])),
                "collect_s": float(sum(float(r.measure_meta.get("collect_s", 0.0)) for r in test)),
                "models": comp.to_dict(),
                "fold_s": time.perf_counter() - t0,
            }
            write_json(out_json, {**results, kind: res})  # a long run keeps the families it finished
            print(
                f"{kind} {fam}: "
                + ", ".join(
                    f"{n} {v['summary']['kendall_tau']:.3f}" for n, v in res["families"][fam]["models"].items()
                ),
                flush=True,
            )
        if args.ablations:
            abl: dict[str, Any] = {}
            names = args.variants or tuple(ABLATIONS[kind])
            for name in names:  # in the order asked for; the JSON is rewritten after each variant
                over = ABLATIONS[kind][name]
                t0 = time.perf_counter()
                per: dict[str, Any] = {}
                for fam, train, test in folds:
                    cfg = gnn_config(kind, epochs=args.ablation_epochs or args.epochs, **over)
                    comp = compare({"GNN": CostModel(cfg)}, train, test)
                    per[fam] = comp.to_dict()["GNN"]["summary"]
                abl[name] = {
                    "overrides": {k: str(v) for k, v in over.items()},
                    "families": per,
                    "s": time.perf_counter() - t0,
                }
                print(
                    f"{kind} ablation {name}: tau " + f"{np.mean([v['kendall_tau'] for v in per.values()]):.3f}",
                    flush=True,
                )
                res["ablations"] = abl
                res["ablation_epochs"] = args.ablation_epochs or args.epochs
                write_json(out_json, {**results, kind: res})
            res["ablations"] = abl
            res["ablation_epochs"] = args.ablation_epochs or args.epochs
        res["graph_families"] = {r.name: family_of(r, fams) for r in recs}
        res["eval_s" if args.main else "ablation_run_s"] = time.perf_counter() - t_start
        results[kind] = res
    results["machine"] = machine_line()
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["command"] = "PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/heldout.py " + " ".join(args.argv)
    add_significance(results)
    write_json(out_json, results)
    write_doc(results, Path(args.doc), out_json, args.section)


# -- seeds: every variant trained with several seeds, predictions kept, summarised per seed and as an ensemble --


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def part_seeds(args: argparse.Namespace) -> None:
    """Train each variant once per seed and fold (single networks) and keep their predictions on the held-out graphs.

    One JSON per (space, variant, family, seed) under ``--preds``, written atomically, so the job resumes and can
    be spread over processes with ``--shard i/n`` or by starting several workers on the same queue (each job is
    claimed with a ``.claim`` file; a worker that was killed leaves its claim behind: delete the ``*.claim`` files
    before starting again); LightGBM's and the analytical model's predictions are kept once
    per fold for the rank averages. ``seedsum`` turns them into the ablation rows (mean and spread over seeds, and
    the ensemble of the seeds).
    """
    import numpy as np

    from opgraph.perf.baselines import AnalyticalBaseline, LightGBMBaseline
    from opgraph.perf.evaluate import leave_one_family_out
    from opgraph.perf.measure import apply_thread_settings
    from opgraph.perf.model import CostModel

    apply_thread_settings()
    shard, n_shards = (int(x) for x in args.shard.split("/"))
    root = Path(args.preds)
    for kind in args.spaces:
        recs, fams = _load_space(Path(args.data), kind)
        folds = [f for f in leave_one_family_out(recs, fams) if not args.families or f[0] in args.families]
        jobs: list[tuple[str, str, int]] = [(fam, "_baselines", -1) for fam, _, _ in folds]
        names = args.variants or tuple(ABLATIONS[kind])
        jobs += [(fam, name, s) for name in names for s in range(args.seeds) for fam, _, _ in folds]
        by_fam = {fam: (train, test) for fam, train, test in folds}
        for j, (fam, name, seed) in enumerate(jobs):
            if j % n_shards != shard:
                continue
            sub = "_baselines" if seed < 0 else _slug(name)
            out = root / kind / sub / fam / ("baselines.json" if seed < 0 else f"seed{seed}.json")
            claim = out.with_suffix(".claim")  # several workers may share the queue: the first to claim a job runs it
            if out.exists() or claim.exists():
                continue
            claim.parent.mkdir(parents=True, exist_ok=True)
            try:
                claim.open("x").close()
            except FileExistsError:
                continue
            train, test = by_fam[fam]
            t0 = time.process_time()
            if seed < 0:
                models = {"LightGBM": LightGBMBaseline(), "analytical": AnalyticalBaseline()}
                preds = {}
                for mname, m in models.items():
                    m.fit(list(train))
                    preds[mname] = {r.name: np.asarray(m.predict(r), dtype=float).tolist() for r in test}
                doc: dict[str, Any] = {"preds": preds}
            else:
                over = dict(ABLATIONS[kind][name], ensemble=1, seed=seed)
                cfg = gnn_config(kind, epochs=args.epochs, **over)
                m = CostModel(cfg).fit(list(train))
                doc = {
                    "preds": {r.name: m.predict(r).tolist() for r in test},
                    "config": {k: str(v) for k, v in over.items()},
                    "epochs": args.epochs,
                }
            doc["cpu_s"] = time.process_time() - t0
            write_json(out, doc)
            claim.unlink(missing_ok=True)
            print(f"{kind} {name} {fam} seed {seed}: {doc['cpu_s']:.0f} cpu-s", flush=True)


def seed_summary(kind: str, root: Path, data: Path, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Per variant: metrics of each seed (mean over families), their mean and spread, and the seeds' ensemble.

    The ensemble is the mean of the seeds' per-graph standardised costs (what ``ModelConfig.ensemble`` does);
    ``ensemble + LightGBM`` and ``ensemble + analytical`` average it with that model the same way. Every family
    with predictions counts, each with the fewest seeds any of them has (the first seeds by number).
    """
    import numpy as np

    from opgraph.perf.evaluate import ceiling_tau
    from opgraph.perf.metrics import CollectionScore, score_graph

    recs, _ = _load_space(data, kind)
    by_name = {r.name: r for r in recs}

    def summary(preds: dict[str, Any]) -> dict[str, float]:
        graphs = [
            score_graph(g, p, by_name[g].target_runtime(), kind, ceiling_tau=ceiling_tau(by_name[g]))
            for g, p in preds.items()
        ]
        return CollectionScore("x", kind, graphs).summary()

    base_dir = root / kind / "_baselines"
    out: dict[str, Any] = {}
    order = [_slug(n) for n in (names or tuple(ABLATIONS[kind]))]  # the first row is the reference
    vdirs = sorted(
        (p for p in (root / kind).iterdir() if p.is_dir() and p.name != "_baselines"),
        key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name),
    )
    for vdir in vdirs:
        fam_dirs = sorted(p for p in vdir.iterdir() if p.is_dir())
        seeds_of = {f.name: sorted(f.glob("seed*.json")) for f in fam_dirs}
        seeds_of = {f: v for f, v in seeds_of.items() if v}
        if not seeds_of:
            continue
        # every family with predictions counts, each with the same number of seeds (the fewest any has)
        n_seeds = min(len(v) for v in seeds_of.values())
        seeds_of = {f: v[:n_seeds] for f, v in seeds_of.items()}
        fams = list(seeds_of)
        first = dict(read_json(seeds_of[fams[0]][0]))
        per_seed: list[dict[str, dict[str, float]]] = [{} for _ in range(n_seeds)]
        ens: dict[str, dict[str, float]] = {}
        combos: dict[str, dict[str, dict[str, float]]] = {"LightGBM": {}, "analytical": {}}
        cpu = 0.0
        for fam in fams:
            runs = [dict(read_json(f)) for f in seeds_of[fam]]
            cpu += sum(float(r["cpu_s"]) for r in runs)
            for i, r in enumerate(runs):
                per_seed[i][fam] = summary(r["preds"])
            mean = {g: np.mean([_std(r["preds"][g]) for r in runs], 0) for g in runs[0]["preds"]}
            ens[fam] = summary(mean)
            bfile = base_dir / fam / "baselines.json"
            if bfile.exists():
                base = dict(read_json(bfile))["preds"]
                for b in combos:
                    combos[b][fam] = summary({g: _std(mean[g]) + _std(base[b][g]) for g in mean})
        keys = list(next(iter(ens.values())))
        seed_means = {k: [float(np.mean([ps[f][k] for f in fams])) for ps in per_seed] for k in keys}
        name = next((n for n in (names or tuple(ABLATIONS[kind])) if _slug(n) == vdir.name), vdir.name)
        out[name] = {
            "config": first.get("config", {}),
            "epochs": first.get("epochs"),
            "seeds": n_seeds,
            "families": fams,
            "per_seed": per_seed,
            "seed_mean": {k: float(np.mean(v)) for k, v in seed_means.items()},
            "seed_sd": {k: float(np.std(v, ddof=1)) if len(v) > 1 else float("nan") for k, v in seed_means.items()},
            "ensemble": ens,
            "ensemble_plus": {b: v for b, v in combos.items() if len(v) == len(fams)},
            "cpu_s": cpu,
        }
    return out


def kept_predictions(kind: str, fam: str, root: Path, variant: str, n_seeds: int | None = None) -> dict[str, Any]:
    """The GNN-containing models' predictions on a held-out family, from the files ``seeds`` keeps (no training).

    ``GNN`` = the mean of the first ``n_seeds`` seeds' per-graph standardised costs of ``variant`` (what
    ``ModelConfig.ensemble`` trains); ``GNN + LightGBM`` / ``GNN + analytical`` = the sum of its and that baseline's
    standardised costs (the same order as their mean); ``LightGBM`` and ``analytical`` as kept. Each is graph ->
    costs; ``"_cpu_s"`` = the seeds' training CPU seconds. Empty when the family has no seeds or no baselines file.
    """
    import numpy as np

    files = sorted((root / kind / _slug(variant) / fam).glob("seed*.json"))[:n_seeds]
    bfile = root / kind / "_baselines" / fam / "baselines.json"
    if not files or not bfile.exists():
        return {}
    runs = [dict(read_json(f)) for f in files]
    mean = {g: np.mean([_std(r["preds"][g]) for r in runs], 0) for g in runs[0]["preds"]}
    base = dict(read_json(bfile))["preds"]
    return {
        "GNN": mean,
        "GNN + LightGBM": {g: _std(mean[g]) + _std(base["LightGBM"][g]) for g in mean},
        "GNN + analytical": {g: _std(mean[g]) + _std(base["analytical"][g]) for g in mean},
        "LightGBM": {g: np.asarray(base["LightGBM"][g], dtype=float) for g in mean},
        "analytical": {g: np.asarray(base["analytical"][g], dtype=float) for g in mean},
        "_cpu_s": sum(float(r["cpu_s"]) for r in runs),
    }


def ensemble_into_main(kind: str, res: dict[str, Any], root: Path, data: Path, variant: str) -> list[str]:
    """Put the seeds' ensemble of ``variant`` into the model comparison as ``GNN``, ``GNN + LightGBM`` and
    ``GNN + analytical`` (replacing those columns, and the older ``GNN with hints`` ones), per held-out family.

    The ensemble of the seeds is what ``ModelConfig.ensemble`` trains (member ``i`` is the same network with seed
    ``i``), so this is the model comparison's GNN without training it again. Returns the families filled.
    """
    from opgraph.perf.evaluate import ceiling_tau, per_graph_metrics
    from opgraph.perf.metrics import CollectionScore, score_graph

    recs, _ = _load_space(data, kind)
    by_name = {r.name: r for r in recs}
    done = []
    for fam, fr in res.get("families", {}).items():
        n = int(res.get("seed_ablations", {}).get(variant, {}).get("seeds", 0)) or None
        preds = kept_predictions(kind, fam, root, variant, n)
        if not preds:
            continue
        runs_cpu_s = preds.pop("_cpu_s")
        new: dict[str, Any] = {}
        for name in ("GNN", "GNN + LightGBM", "GNN + analytical"):
            pr = preds[name]
            graphs = [
                score_graph(g, p, by_name[g].target_runtime(), kind, ceiling_tau=ceiling_tau(by_name[g]))
                for g, p in pr.items()
            ]
            sc = CollectionScore(name, kind, graphs)
            new[name] = {
                "summary": sc.summary(),
                "fit_s": runs_cpu_s if name == "GNN" else 0.0,
                "per_graph_tau": {g.graph: g.kendall_tau for g in graphs},
                "per_graph_ceiling": {g.graph: g.ceiling_tau for g in graphs},
                "per_graph": per_graph_metrics(sc),
            }
        old = {k: v for k, v in fr["models"].items() if not k.startswith("GNN")}
        fr["models"] = {**new, **old}
        done.append(fam)
    res["gnn_from_seeds"] = {"variant": variant, "families": done}
    return done


# -- per-graph metrics of every model, and whether the held-out differences are more than noise ----------------

#: models of the comparison whose predictions ``seeds`` does not keep: ``pergraph`` trains them again (cheap)
RETRAINED = ("LightGBM + tile-fit features", "MetaSchedule XGBoost", "MetaSchedule MLP", "default config", "random")
#: models left out of the significance table (not cost models)
TRIVIAL = ("default config", "random")


def _retrained_predictions(
    kind: str, fam: str, train: list[Any], test: list[Any], names: list[str], args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Predictions of the cheap models ``names`` on ``test`` (fitted on ``train``), cached under ``--preds``."""
    import numpy as np

    out: dict[str, dict[str, Any]] = {}
    todo = []
    for name in names:
        f = Path(args.preds) / kind / "_retrained" / fam / f"{_slug(name)}.json"
        if f.exists():
            out[name] = {g: np.asarray(p, dtype=float) for g, p in dict(read_json(f))["preds"].items()}
        else:
            todo.append(name)
    if not todo:
        return out
    ns = argparse.Namespace(**{**vars(args), "models": tuple(todo)})
    ms_ok = not metaschedule_status() if any(n.startswith("MetaSchedule") for n in todo) else False
    models = _fold_models(kind, ms_ok, ns)
    for name in todo:
        if name not in models:
            log_line = f"{kind} {fam}: {name} cannot be trained here (MetaSchedule: {metaschedule_status()})"
            print(log_line, flush=True)
            continue
        t0 = time.process_time()
        m = models[name].fit(list(train))
        preds = {r.name: np.asarray(m.predict(r), dtype=float) for r in test}
        f = Path(args.preds) / kind / "_retrained" / fam / f"{_slug(name)}.json"
        write_json(f, {"preds": {g: p.tolist() for g, p in preds.items()}, "cpu_s": time.process_time() - t0})
        out[name] = preds
        print(f"{kind} {fam}: {name} trained again ({time.process_time() - t0:.0f} cpu-s)", flush=True)
    return out


def part_pergraph(args: argparse.Namespace) -> None:
    """Add every model's per-graph metrics to ``--json`` (``models[m]["per_graph"]``) without training a GNN.

    The GNN-containing models and LightGBM / analytical come from the predictions ``seeds`` kept (``--preds``,
    the variant ``seedsum --into-main`` put into the comparison, same number of seeds); the other cheap models
    (:data:`RETRAINED`) are trained again on the same folds (their predictions cached in ``--preds``). The mean of
    each model's per-graph values is checked against the stored family summary: a model whose numbers differ by
    more than 1e-6 is listed in ``per_graph_mismatch`` and left out of the significance table.
    """
    from opgraph.perf.evaluate import ceiling_tau, leave_one_family_out, per_graph_metrics
    from opgraph.perf.measure import apply_thread_settings
    from opgraph.perf.metrics import CollectionScore, score_graph

    apply_thread_settings()
    out_json = Path(args.json)
    results: dict[str, Any] = dict(read_json(out_json))
    for kind in args.spaces:
        res = results.get(kind)
        if not res or not res.get("families"):
            continue
        recs, fams = _load_space(Path(args.data), kind)
        by_name = {r.name: r for r in recs}
        folds = {fam: (train, test) for fam, train, test in leave_one_family_out(recs, fams)}
        variant = res.get("gnn_from_seeds", {}).get("variant", "")
        n_seeds = int(res.get("seed_ablations", {}).get(variant, {}).get("seeds", 0)) or None
        mismatch: dict[str, float] = {}
        for fam, fr in res["families"].items():
            kept = kept_predictions(kind, fam, Path(args.preds), variant, n_seeds) if variant else {}
            kept.pop("_cpu_s", None)
            want = [m for m in fr["models"] if m not in kept]
            train, test = folds[fam]
            preds = {**kept, **_retrained_predictions(kind, fam, train, test, want, args)}
            for name, pr in preds.items():
                if name not in fr["models"]:
                    continue
                graphs = [
                    score_graph(g, p, by_name[g].target_runtime(), kind, ceiling_tau=ceiling_tau(by_name[g]))
                    for g, p in pr.items()
                ]
                sc = CollectionScore(name, kind, graphs)
                stored = fr["models"][name]["summary"]
                gap = max(abs(v - float(stored[k])) for k, v in sc.summary().items() if k != "ceiling_tau")
                if gap > 1e-6:
                    mismatch[f"{fam}/{name}"] = gap
                    continue
                fr["models"][name]["per_graph"] = per_graph_metrics(sc)
        res["per_graph_mismatch"] = mismatch
        print(f"{kind}: per-graph metrics added; mismatches {mismatch or 'none'}", flush=True)
    add_significance(results)
    cmd = "PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/heldout.py " + " ".join(args.argv)
    prev = str(results.get("pergraph_command", ""))
    results["pergraph_command"] = prev if cmd in prev else "; ".join(c for c in (prev, cmd) if c)
    write_json(out_json, results)
    write_doc(results, Path(args.doc), out_json, args.section)


def _ks_shown(kind: str, fams: dict[str, Any]) -> list[int]:
    """The K of the slowdown@K columns (K below every family's median config count: above it all are 0)."""
    ks = (1, 10, 100) if kind == "layout" else (1, 5, 10)
    n_cfg = min(fr["configs_median"] for fr in fams.values())
    return [k for k in ks if k < n_cfg]


def significance(kind: str, res: dict[str, Any], *, n_boot: int = 10_000, seed: int = 0) -> list[dict[str, Any]]:
    """Per metric: the best GNN-containing model against the best baseline, paired over the held-out graphs.

    "Best" = the best mean over families on that metric among the models with per-graph metrics in every family
    (GNN, GNN + LightGBM, GNN + analytical against LightGBM, LightGBM + tile-fit features, analytical and
    MetaSchedule's XGBoost / MLP; default and random left out); when the best GNN-containing model is an
    ensemble, the GNN alone against the same baseline is a second row; in the tile space the best GNN-containing
    model against MetaSchedule's XGBoost (the cost model TVM users rely on) when that is not the best baseline; and
    the GNN ensemble with the best mean tau against its non-GNN member (what the GNN adds). Intervals:
    :func:`opgraph.perf.significance.paired_difference` (95 %, graphs resampled within families, and families
    resampled).
    """
    import numpy as np

    from opgraph.perf.significance import higher_is_better, paired_difference

    fams = res.get("families") or {}
    models: list[str] = []
    for fr in fams.values():
        models += [m for m in fr["models"] if m not in models]
    models = [
        m for m in models if m not in TRIVIAL and all("per_graph" in fr["models"].get(m, {}) for fr in fams.values())
    ]
    gnns = [m for m in models if m.startswith("GNN")]
    bases = [m for m in models if not m.startswith("GNN")]
    if not gnns or not bases:
        return []
    # the ensemble with the best mean tau against its non-GNN member: does the graph model add anything to it?
    ensembles = [m for m in gnns if " + " in m and m.split(" + ", 1)[1] in bases]
    tau_mean = {
        m: float(np.mean([float(fr["models"][m]["summary"]["kendall_tau"]) for fr in fams.values()])) for m in ensembles
    }
    ens = max(ensembles, key=tau_mean.__getitem__) if ensembles else ""
    partner = ens.split(" + ", 1)[1] if ens else ""
    rows = []
    for metric in ["kendall_tau", "opa"] + [f"slowdown@{k}" for k in _ks_shown(kind, fams)]:
        hb = higher_is_better(metric)

        def per(m: str, metric: str = metric) -> dict[str, dict[str, float]]:
            return {f: {g: float(v) for g, v in fr["models"][m]["per_graph"][metric].items()} for f, fr in fams.items()}

        def mean(m: str, metric: str = metric) -> float:
            return float(np.mean([float(fr["models"][m]["summary"][metric]) for fr in fams.values()]))

        pick = max if hb else min
        best_g = pick(gnns, key=mean)
        best_b = pick(bases, key=mean)
        pairs = [("best vs best", best_g, best_b)]
        if best_g != "GNN" and "GNN" in gnns:
            pairs.append(("GNN alone vs best baseline", "GNN", best_b))
        if "MetaSchedule XGBoost" in bases and best_b != "MetaSchedule XGBoost":
            pairs.append(("vs TVM's cost model", best_g, "MetaSchedule XGBoost"))
        if partner:
            pairs.append(("what the GNN adds to its partner", ens, partner))
        seen: set[tuple[str, str]] = set()
        for what, a, b in pairs:
            if (a, b) in seen:  # e.g. the best ensemble's partner is the best baseline: one row
                continue
            seen.add((a, b))
            d = paired_difference(per(a), per(b), higher_better=hb, n_boot=n_boot, seed=seed)
            rows.append(
                {"comparison": what, "metric": metric, "a": a, "b": b, "a_mean": mean(a), "b_mean": mean(b)}
                | d.to_dict()
                | {"verdict_graphs": d.verdict("graphs"), "verdict_families": d.verdict("families")}
            )
    return rows


def add_significance(results: dict[str, Any]) -> None:
    """Store :func:`significance`'s rows per space (``results[kind]["significance"]``) for the JSON beside the page."""
    for kind in ("layout", "tile"):
        if results.get(kind, {}).get("families"):
            rows = significance(kind, results[kind])
            if rows:
                results[kind]["significance"] = rows


def _significance_table(kind: str, res: dict[str, Any]) -> list[str]:
    rows = significance(kind, res)
    if not rows:
        return []
    n_f = len(res["families"])
    lines = [
        f"**Is it more than noise? ({kind})** The best GNN-containing model (a) against the best baseline (b) per "
        "metric (best = best mean over families; default and random are not baselines here), paired graph by "
        "graph: Δ = a − b as a mean over families of the family means (the difference of the two table rows); "
        "95 % bootstrap intervals (10,000 resamples) resampling the graphs within each family, and resampling "
        f"the {n_f} families; families where a is better / equal / worse. 'more than noise' = the interval "
        "excludes 0 (named: the better model). Further rows: the GNN alone; (tile) MetaSchedule's XGBoost; the "
        "GNN ensemble with the best mean tau against its non-GNN member (does the GNN add anything to it?). "
        "The intervals do not include the optimism of picking the best of each group after seeing the numbers, "
        "and each is a 95 % interval on its own (not family-wise over the rows).",
        "",
        "| metric | comparison | a (mean) | b (mean) | Δ = a − b | 95 % CI, graphs within families "
        "| 95 % CI, families | families a better / equal / worse | more than noise? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        nd = 3 if r["metric"] in ("kendall_tau", "opa") else 4
        name = {"kendall_tau": "Kendall tau (higher better)", "opa": "OPA (higher better)"}.get(
            r["metric"], f"{r['metric']} (lower better)"
        )
        lo_g, hi_g = (float(x) for x in r["ci_graphs"])
        lo_f, hi_f = (float(x) for x in r["ci_families"])

        def say(v: str, r: dict[str, Any] = r) -> str:
            return {"a better": f"{r['a']} better", "b better": f"{r['b']} better"}.get(v, "no")

        verdict = f"graphs: {say(r['verdict_graphs'])}; families: {say(r['verdict_families'])}"
        lines.append(
            f"| {name} | {r['comparison']} | {r['a']} ({_fmt(r['a_mean'], nd)}) | {r['b']} ({_fmt(r['b_mean'], nd)}) | "
            f"{float(r['mean']):+.{nd}f} | [{lo_g:+.{nd}f}, {hi_g:+.{nd}f}] | [{lo_f:+.{nd}f}, {hi_f:+.{nd}f}] | "
            f"{r['wins']} / {r['ties']} / {r['losses']} | {verdict} |"
        )
    return lines + [""]


def part_seedsum(args: argparse.Namespace) -> None:
    """Summarise the ``seeds`` predictions into ``--json`` (key ``seed_ablations`` per space) and the page."""
    results: dict[str, Any] = dict(read_json(Path(args.json))) if Path(args.json).exists() else {}
    for kind in args.spaces:
        res = dict(results.get(kind, {}))
        res["seed_ablations"] = seed_summary(kind, Path(args.preds), Path(args.data), args.variants)
        if args.into_main:
            ensemble_into_main(kind, res, Path(args.preds), Path(args.data), args.into_main)
        results[kind] = res
    if args.note:
        results["note"] = args.note
    results["seeds_command"] = args.seeds_command or (
        "PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/perf/heldout.py " + " ".join(args.argv)
    )
    write_json(Path(args.json), results)
    write_doc(results, Path(args.doc), Path(args.json), args.section)


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def part_doc(args: argparse.Namespace) -> None:
    """Merge the result files of several evaluate runs (say, layout, tile and ablations run apart) into --json."""
    results: dict[str, Any] = {}
    commands = []
    for f in [x for x in args.inputs.split(",") if x]:
        r = dict(read_json(f))
        commands.append(r.pop("command", ""))
        results = _deep_merge(results, r)
    results["command"] = "; ".join(c for c in commands if c)
    if args.note:
        results["note"] = args.note
    add_significance(results)
    write_json(Path(args.json), results)
    write_doc(results, Path(args.doc), Path(args.json), args.section)


def _fmt(v: Any, nd: int = 3) -> str:
    import math

    if isinstance(v, str):  # strict JSON stores non-finite floats as "NaN"/"Infinity"
        v = float(v)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{nd}f}"


def _space_tables(kind: str, res: dict[str, Any]) -> list[str]:
    import numpy as np

    fams = res["families"]
    models: list[str] = []  # every model of any family, in first-seen order (runs merged by `doc` may differ)
    for fr in fams.values():
        models += [m for m in fr["models"] if m not in models]
    nan = float("nan")
    ks = (1, 10, 100) if kind == "layout" else (1, 5, 10)
    lines: list[str] = []
    metrics = [("kendall_tau", "Kendall tau (higher is better)", 3), ("opa", "OPA (higher is better)", 3)]
    n_cfg = min(fr["configs_median"] for fr in fams.values())
    # slowdown@K with K >= the number of configs is 0 for every model: not shown
    metrics += [(f"slowdown@{k}", f"slowdown@{k} (lower is better)", 4) for k in ks if k < n_cfg]
    for key, title, nd in metrics:
        head = ["held-out family", "graphs", "nodes (median)"] + models
        halves = key == "kendall_tau" and any(
            np.isfinite(float(fr.get("split_half_ceiling", float("nan")))) for fr in fams.values()
        )
        if key == "kendall_tau":
            head.append("noise ceiling")
            if halves:
                head.append("split-half ceiling")
        lines += [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        means: dict[str, list[float]] = {m: [] for m in models}
        ceils: list[float] = []
        halfs: list[float] = []
        for fam, fr in fams.items():
            row = [fam, str(fr["graphs"]), f"{fr['nodes_median']:.0f}"]
            vals = {m: float(fr["models"][m]["summary"][key]) if m in fr["models"] else nan for m in models}
            real = [v for m, v in vals.items() if np.isfinite(v) and m not in ("default config", "random")]
            best = (max(real) if "slowdown" not in key else min(real)) if real else nan
            for m in models:
                if np.isfinite(vals[m]):
                    means[m].append(vals[m])
                cell = _fmt(vals[m], nd)
                row.append(f"**{cell}**" if vals[m] == best and m not in ("default config", "random") else cell)
            if key == "kendall_tau":
                c = float(next(iter(fr["models"].values()))["summary"]["ceiling_tau"])
                ceils.append(c)
                row.append(_fmt(c))
                if halves:
                    halfs.append(float(fr.get("split_half_ceiling", float("nan"))))
                    row.append(_fmt(halfs[-1]))
            lines.append("| " + " | ".join(row) + " |")
        row = ["**mean over families**", str(sum(fr["graphs"] for fr in fams.values())), ""]
        row += [
            _fmt(float(np.mean(means[m])), nd) + ("" if len(means[m]) == len(fams) else f" ({len(means[m])} families)")
            for m in models
        ]
        if key == "kendall_tau":
            row.append(_fmt(float(np.nanmean(ceils))))
            if halves:
                row.append(_fmt(float(np.nanmean(halfs))))
        lines += ["| " + " | ".join(row) + " |", ""]
    return lines


def _ablation_table(kind: str, res: dict[str, Any]) -> list[str]:
    import numpy as np

    abl = res.get("ablations")
    if not abl:
        return []
    k = 10 if kind == "layout" else 5
    lines = [
        f"**GNN ablation ({kind})**: mean over held-out families (each variant a full leave-one-family-out run, "
        f"{res.get('ablation_epochs', '?')} epochs; wins are counted against the first row).",
        "",
        f"| variant | Kendall tau | OPA | slowdown@1 | slowdown@{k} | families where tau beats the first row | s |",
        "|---|---|---|---|---|---|---|",
    ]
    base = next(iter(abl.values()))["families"]
    for name, a in abl.items():
        per = a["families"]

        def mean(key: str, per: dict[str, Any] = per) -> float:
            return float(np.mean([v[key] for v in per.values()]))

        wins = sum(per[f]["kendall_tau"] > base[f]["kendall_tau"] for f in per)
        lines.append(
            f"| {name} | {_fmt(mean('kendall_tau'))} | {_fmt(mean('opa'))} | {_fmt(mean('slowdown@1'), 4)} | "
            f"{_fmt(mean(f'slowdown@{k}'), 4)} | {wins}/{len(per)} | {a['s']:.0f} |"
        )
    return lines + [""]


def _seed_table(kind: str, res: dict[str, Any]) -> list[str]:
    import numpy as np

    abl = res.get("seed_ablations")
    if not abl:
        return []
    k = 10 if kind == "layout" else 5
    ref = next(iter(abl.values()))
    sk = f"slowdown@{k}"
    lines = [
        f"**GNN variants over seeds ({kind})**: each variant trained once per seed and held-out family (single "
        "networks, same folds); 'seeds' = mean over families of each seed, then mean ± standard deviation over "
        "the seeds; 'ensemble' = the mean of the seeds' per-graph standardised costs (with one seed: that seed). "
        "'vs first row': on the families both rows have, the difference of the means over seeds and families, "
        f"and the families where the variant's mean over its seeds is better (tau higher; {sk} lower).",
        "",
        f"| variant | seeds x epochs | families | tau (seeds) | slowdown@1 (seeds) | {sk} (seeds) | tau (ensemble) "
        f"| slowdown@1 (ensemble) | {sk} (ensemble) | ensemble better than its seeds' mean: families tau / {sk} "
        f"| vs first row: Δtau / Δ{sk} / families better tau / "
        f"better {sk} | ensemble + LightGBM tau / {sk} | ensemble + analytical tau / {sk} | CPU min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def fam_mean(a: dict[str, Any], fam: str, key: str) -> float:
        return float(np.mean([ps[fam][key] for ps in a["per_seed"]]))

    for name, a in abl.items():
        m, sd, ens = a["seed_mean"], a["seed_sd"], a["ensemble"]

        def pm(key: str, nd: int = 3, m: dict[str, float] = m, sd: dict[str, float] = sd) -> str:
            return f"{_fmt(m[key], nd)} ± {_fmt(sd[key], nd)}"

        def em(key: str, d: dict[str, Any] = ens) -> float:
            return float(np.mean([v[key] for v in d.values()]))

        common = [f for f in ens if f in ref["ensemble"]]
        dt = np.mean([fam_mean(a, f, "kendall_tau") - fam_mean(ref, f, "kendall_tau") for f in common])
        ds = np.mean([fam_mean(a, f, sk) - fam_mean(ref, f, sk) for f in common])
        wt = sum(fam_mean(a, f, "kendall_tau") > fam_mean(ref, f, "kendall_tau") for f in common)
        ws = sum(fam_mean(a, f, sk) < fam_mean(ref, f, sk) for f in common)
        et = sum(ens[f]["kendall_tau"] > fam_mean(a, f, "kendall_tau") for f in ens)
        es = sum(ens[f][sk] < fam_mean(a, f, sk) for f in ens)
        own = f"{et}/{len(ens)} / {es}/{len(ens)}" if a["seeds"] > 1 else "-"
        vs = "-" if a is ref else f"{dt:+.3f} / {ds:+.4f} / {wt}/{len(common)} / {ws}/{len(common)}"
        plus = []
        for b in ("LightGBM", "analytical"):
            d = a.get("ensemble_plus", {}).get(b)
            plus.append(f"{_fmt(em('kendall_tau', d))} / {_fmt(em(sk, d), 4)}" if d else "-")
        lines.append(
            f"| {name} | {a['seeds']} x {a['epochs']} | {len(ens)} | {pm('kendall_tau')} | {pm('slowdown@1', 4)} | "
            f"{pm(sk, 4)} | {_fmt(em('kendall_tau'))} | {_fmt(em('slowdown@1'), 4)} | {_fmt(em(sk), 4)} | {own} | {vs} | "
            f"{plus[0]} | {plus[1]} | {a['cpu_s'] / 60:.1f} |"
        )
    return lines + [""]


def write_doc(results: dict[str, Any], doc: Path, json_path: Path, section: str = "") -> None:
    from opgraph._base.fileio import replace_marked_block

    begin, end, title = SECTIONS[section]
    lines = [
        begin,
        title,
        "",
        f"Command: `{results.get('command', '-')}` (dataset: `python benchmarks/perf/heldout.py collect`); "
        f"{results.get('date', '-')}; {results.get('machine', '-')}. Raw numbers: `{json_path}`.",
        "",
    ]
    if results.get("pergraph_command"):
        lines += [
            f"Per-graph metrics of every model (the significance tables): `{results['pergraph_command']}` (GNN "
            "columns from the seeds' kept predictions, the cheap models trained again on the same folds).",
            "",
        ]
    if results.get("seeds_command"):
        lines += [f"Seed ablations (tables 'GNN variants over seeds'): `{results['seeds_command']}`.", ""]
    lines += [
        "Every family is held out once: the models train on the graphs of all other families and are scored on the "
        "held-out family's graphs (never seen in training, nor used for early stopping). Rows: the held-out family; "
        "bold: the best non-trivial model. GNN = `opgraph perf train`'s design (early-stopped on 20% of the "
        "training graphs); GNN + LightGBM (GNN + analytical) = mean of their per-graph standardised costs. Noise ceiling = mean "
        "Kendall tau between two measuring rounds of the same configs; split-half ceiling (where a graph has >= 4 "
        "rounds) = tau between the medians of its even and its odd rounds, nearer to the reachable tau for a target "
        "that is the median over all rounds.",
        "",
    ]
    if results.get("note"):
        lines += [f"Note: {results['note']}", ""]
    for kind in ("layout", "tile"):
        res = results.get(kind)
        if not res:
            continue
        fams = res.get("families") or {}
        if not fams and not res.get("seed_ablations"):
            continue
        lines += [f"### {kind}", ""]
        if fams:
            n = sum(f["graphs"] for f in fams.values())
            lines.append(
                f"{n} graphs in {len(fams)} families, collection "
                f"{sum(f['collect_s'] for f in fams.values()) / 60:.1f} min (sum over graphs), evaluation "
                f"{res.get('eval_s', float('nan')) / 60:.1f} min. "
                + (f"MetaSchedule: {res.get('metaschedule', '-')}." if kind == "tile" else "")
            )
            lines.append("")
            lines += _space_tables(kind, res)
            lines += _significance_table(kind, res)
            lines += _ablation_table(kind, res)
        lines += _seed_table(kind, res)
    lines.append(end)
    replace_marked_block(doc, begin, end, "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=("collect", "evaluate", "doc", "seeds", "seedsum", "pergraph"))
    ap.add_argument("--data", default="runs/heldout", help="dataset folder with layout/ and tile/")
    ap.add_argument("--spaces", default="layout,tile")
    ap.add_argument("--layout-configs", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="collect: interleaved measuring rounds per graph")
    ap.add_argument("--tile-configs", type=int, default=24)
    ap.add_argument("--max-mflop", type=float, default=40.0, help="skip tile kernels above this many MFLOP")
    ap.add_argument("--per-family", type=int, default=9, help="tile kernels per family (spread over FLOPs)")
    ap.add_argument("--epochs", type=int, default=40, help="GNN epochs")
    ap.add_argument("--ensemble", type=int, default=0, help="GNN seeds in the model comparison (0: the design's)")
    ap.add_argument("--main", action=argparse.BooleanOptionalAction, default=True, help="the model comparison")
    ap.add_argument("--ablations", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--ablation-epochs", type=int, default=0, help="GNN epochs in the ablation (0: --epochs)")
    ap.add_argument(
        "--variants",
        default="",
        help="ablation variants separated by ';' (or ',' when no name has a comma; default: all)",
    )
    ap.add_argument("--families", default="", help="evaluate: only these held-out families (comma-separated)")
    ap.add_argument("--note", default="", help="doc part: a note printed under the section title")
    ap.add_argument("--inputs", default="", help="doc part: comma-separated result JSON files to merge")
    ap.add_argument(
        "--metaschedule",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tile: MetaSchedule's cost models beside the others",
    )
    ap.add_argument("--mlp", action=argparse.BooleanOptionalAction, default=True, help="MetaSchedule's MLP model")
    ap.add_argument("--models", default="", help="evaluate: only these models (comma-separated names; default: all)")
    ap.add_argument("--ms-cache", default="", help="MetaSchedule feature cache (default: DATA/metaschedule_features)")
    ap.add_argument("--section", default="", choices=tuple(SECTIONS), help="which marked section of --doc to write")
    ap.add_argument("--seeds", type=int, default=3, help="seeds: networks per variant and fold")
    ap.add_argument("--preds", default="runs/heldout_preds", help="seeds/seedsum/pergraph: folder of kept predictions")
    ap.add_argument("--shard", default="0/1", help="seeds: this process's share i/n of the jobs")
    ap.add_argument(
        "--into-main",
        default="",
        help="seedsum: this variant's ensemble of the seeds becomes the comparison's GNN columns",
    )
    ap.add_argument("--seeds-command", default="", help="seedsum: the seeds commands to print (default: this one)")
    ap.add_argument("--json", default="docs/benchmarks/perf_heldout.json")
    ap.add_argument("--doc", default="docs/benchmarks/perf.md")
    import sys

    args = ap.parse_args()
    args.argv = sys.argv[1:]
    args.spaces = tuple(args.spaces.split(","))
    args.variants = parse_variants(args.variants)
    args.families = tuple(v for v in args.families.split(",") if v)
    args.models = tuple(v for v in args.models.split(",") if v)
    if args.part == "collect":
        part_collect(args)
    elif args.part == "evaluate":
        part_evaluate(args)
    elif args.part == "seeds":
        part_seeds(args)
    elif args.part == "seedsum":
        part_seedsum(args)
    elif args.part == "pergraph":
        part_pergraph(args)
    else:
        part_doc(args)


if __name__ == "__main__":
    main()
