"""Offline replay of the tile tuner on stored exhaustive measurements: compare search strategies without measuring.

Every kernel of ``--data`` (``<model>/exhaustive/*.npz``: every power-of-two tile and TVM's default schedule,
measured by ``benchmarks/perf/tune_tile_real.py``) is tuned again with :func:`opgraph.perf.tune.tune_tile` and a
``measurer`` that looks the runtimes up instead of timing them: each (config, round) runtime is the stored median
runtime times ``exp(N(0, noise))`` (seeded by the replay seed and the tuner's run seed; ``--noise 0.034``, the
median relative std of the real verification runs), so a replay is deterministic and costs no measuring. The
gap of a pick is its stored runtime / the best stored runtime - 1 (the exhaustive run's own ranking is the
truth here).

Rankers (the prior of the tuner) are fitted once per kernel, leave-one-kernel-out: LightGBM lambdarank on the
other kernels of ``--data`` (plus ``--extra`` tile records whose names differ), the analytical cache-footprint
model, MetaSchedule's XGBoost model on the same training kernels (TVM per-store features, cached in
``--cache``), and the GNN (``opgraph perf train``'s design, trained once on ``--extra`` kernels whose names are
none of ``--data``'s: leave-one-kernel-out GNNs do not fit this machine's time), alone and averaged with LightGBM
(mean of standardised costs); a LightGBM ranker name ending in `` [fit columns]`` is fitted with the tile-fit
columns (``LightGBMBaseline(features="tile+fit")``). Their costs are cached in ``--cache``/costs.json. ``--where`` prints where each
kernel's best config ranks under each ranker.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/perf/tile_replay.py --seeds 5 --out runs/tile_replay.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from opgraph._base.jsonio import read_json, write_json

BEGIN, END = "<!-- tile-replay:begin -->", "<!-- tile-replay:end -->"

#: Search variants: name -> keyword arguments of tune_tile (``refit_options`` for refit_tune's knobs); a setting a
#: name does not state is tune_tile's default (``search="mixed"``: ``local_frac`` 0.67, ``neighbourhood`` "x2",
#: ``step`` 4, ``first_frac`` 0.2, ``restarts`` 2; for refit ``local_frac`` 0.7 and ``neighbourhood`` "axis+x2").
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "refit (before mixed)": {"search": "refit"},
    "mixed step 3": {"refit_options": {"step": 3}},
    "mixed step 2": {"refit_options": {"step": 2}},
    "mixed axis+x2": {"neighbourhood": "axis+x2"},
    "mixed restarts 1": {"refit_options": {"restarts": 1}},
    "mixed first .3": {"refit_options": {"first_frac": 0.3}},
    "mixed explore 0 local .67 (first try)": {"local_frac": 0.67, "refit_options": {"explore_frac": 0.0}},
    "mixed explore 0": {"refit_options": {"explore_frac": 0.0}},
    "mixed explore .5": {"refit_options": {"explore_frac": 0.5}},
    "mixed local .25": {"local_frac": 0.25},
    "mixed local .75": {"local_frac": 0.75},
    "mixed local prior .5": {"refit_options": {"local_prior": 0.5}},
    "mixed local 0 (prior's picks only)": {"local_frac": 0.0},
    "screen (before refit)": {"search": "screen"},
    "before (halving race no diverse pick)": {"refit_options": {"race": "halving", "diverse": 0}},
    "adaptive race only": {"refit_options": {"diverse": 0}},
    "diverse pick only (halving race)": {"refit_options": {"race": "halving"}},
    "before with 40 race rounds": {"race_rounds": 40, "refit_options": {"race": "halving", "diverse": 0}},
    "adaptive race of at most 40 rounds": {"refit_options": {"race_max_rounds": 40}},
    "adaptive race z 2": {"refit_options": {"race_z": 2.0}},
    "adaptive race margin .05": {"refit_options": {"race_margin": 0.05}},
    "2 diverse picks": {"refit_options": {"diverse": 2}},
    "3 diverse picks": {"refit_options": {"diverse": 3}},
    "diverse window .5": {"refit_options": {"diverse_window": 0.5}},
    "diverse window 1.5": {"refit_options": {"diverse_window": 1.5}},
    "local prior .5 (lead)": {"refit_options": {"local_prior": 0.5}},
    "restarts 3 (lead)": {"refit_options": {"restarts": 3}},
}


class FixedRanker:
    """A ranker that returns precomputed costs (the replay's stand-in for a fitted model)."""

    def __init__(self, cost: np.ndarray) -> None:
        self.cost = np.asarray(cost, dtype=np.float64)

    def predict(self, rec: Any) -> np.ndarray:
        """The stored costs (one per config of the kernel's candidate record, default first)."""
        return self.cost


def load_kernels(data: Path) -> list[Any]:
    """Every exhaustive tile record under ``data`` (``<model>/exhaustive/*.npz``), sorted by model and name.

    A kernel that several models share (same name) is kept once, from the first model.
    """
    from opgraph.perf.tpugraphs import load_graph

    out, names = [], set()
    for p in sorted(data.glob("*/exhaustive/*.npz")):
        if p.stem not in names:
            names.add(p.stem)
            out.append(load_graph(p, lazy=False))
    return out


def kernels_per_model(recs: list[Any]) -> dict[str, int]:
    """Distinct kernels per model folder (a kernel two models share counts for the first)."""
    out: dict[str, int] = {}
    for r in recs:
        model = Path(str(r.path)).parent.parent.name if getattr(r, "path", None) else "?"
        out[model] = out.get(model, 0) + 1
    return out


def tiles_of(rec: Any) -> list[tuple[int, int, int]]:
    """The candidate tiles of an exhaustive record (without the default, row 0)."""
    raw = rec.measure_meta["tiles"]
    raw = json.loads(raw) if isinstance(raw, str) else raw
    return [tuple(int(v) for v in t) for t in raw[1:]]


def spec_of(rec: Any) -> Any:
    """The :class:`~opgraph.perf.tile.KernelSpec` of a record."""
    from opgraph.perf.tile import KernelSpec

    k = rec.measure_meta["kernel"]
    k = json.loads(k) if isinstance(k, str) else k
    return KernelSpec.from_dict(k)


def replay_measurer(runtime: np.ndarray, tiles: list[tuple[int, int, int]], noise: float, seed: int) -> Any:
    """A :data:`opgraph.perf.tune.Measurer` that looks runtimes up (row ``[0, 0, 0]`` = the default), with noise."""
    index = {(0, 0, 0): 0} | {t: i + 1 for i, t in enumerate(tiles)}

    def measure(choices: np.ndarray, n_rounds: int, run_seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, run_seed, len(choices), n_rounds])
        rows = [index[tuple(int(v) for v in c)] for c in choices]
        base = runtime[rows][:, None]
        return base * np.exp(noise * rng.standard_normal((len(rows), n_rounds)))

    return measure


def _zscore(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return (v - v.mean()) / max(float(v.std()), 1e-12)


def ranker_costs(
    recs: list[Any], extra: list[Any], rankers: list[str], cache: Path, gnn_epochs: int
) -> dict[str, dict[str, list[float]]]:
    """Cost per config of every kernel under every ranker (leave-one-kernel-out fits), cached in ``cache``."""
    from opgraph.perf.baselines import AnalyticalBaseline, LightGBMBaseline
    from opgraph.perf.tpugraphs import load_records

    path = cache / "costs.json"
    key = hashlib.sha1(json.dumps(sorted(r.name for r in recs + extra)).encode()).hexdigest()[:12]
    out: dict[str, dict[str, list[float]]] = {}
    if path.exists():
        doc = read_json(path)
        if doc.get("key") == key:
            out = doc["costs"]
    names = {r.name for r in recs}
    extra_out = [r for r in extra if r.name not in names]
    every = [r for d in {Path(str(r.path)).parents[2] for r in recs} for r in load_records(d, lazy=False)]
    for rn in rankers:
        if rn in out or rn == "GNN + LightGBM" or ("+" in rn and " + " not in rn):
            continue
        t0 = time.perf_counter()
        costs: dict[str, list[float]] = {}
        if rn == "GNN":
            from opgraph.perf.model import CostModel, ModelConfig

            if not extra_out:
                print("GNN: needs --extra training kernels; skipped", flush=True)
                continue
            model = CostModel(ModelConfig(kind="tile", epochs=gnn_epochs, hints=True)).fit(extra_out)
            costs = {r.name: model.predict(r).tolist() for r in recs}
        fit = " [fit columns]"
        base, fs = (rn[: -len(fit)], "tile+fit") if rn.endswith(fit) else (rn, None)
        for r in recs:
            if rn == "GNN":
                break
            train = [o for o in recs if o.name != r.name] + extra_out
            if base == "LightGBM":  # "[fit columns]": with the tile-fit columns (LightGBMBaseline "tile+fit")
                m: Any = LightGBMBaseline(seed=0, features=fs).fit(train)
            elif base == "LightGBM (22 records)":  # as tune_tile_real.py trains it: a shared kernel twice
                m = LightGBMBaseline(seed=0, features=fs).fit([o for o in every if o.name != r.name] + extra_out)
            elif rn == "analytical":
                m = AnalyticalBaseline()
            elif rn == "MetaSchedule XGBoost":
                from opgraph.perf.baselines import MetaScheduleBaseline

                m = MetaScheduleBaseline("xgb", seed=0, cache_dir=cache / "ms_features").fit(train)
            else:
                raise SystemExit(f"unknown ranker {rn!r}")
            costs[r.name] = np.asarray(m.predict(r), dtype=np.float64).tolist()
        out[rn] = costs
        print(f"ranker {rn}: {time.perf_counter() - t0:.0f} s", flush=True)
        write_json(path, {"key": key, "costs": out})
    for rn in rankers:  # "A+B": mean of the standardised costs of rankers A and B (also from --more-costs)
        parts = rn.split("+")
        if len(parts) > 1 and " + " not in rn and all(p in out for p in parts):
            out[rn] = {n: sum(_zscore(out[p][n]) for p in parts).tolist() for n in out[parts[0]]}
    if "GNN" in out and "LightGBM" in out and "GNN + LightGBM" in rankers:
        out["GNN + LightGBM"] = {
            n: (_zscore(out["GNN"][n]) + _zscore(out["LightGBM"][n])).tolist() for n in out["LightGBM"]
        }
    return {rn: out[rn] for rn in rankers if rn in out}


def where_best(recs: list[Any], costs: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    """Per kernel: the rank (0 = top) each ranker gives the exhaustive best config among the candidates."""
    rows = []
    for r in recs:
        rt = np.asarray(r.config_runtime, dtype=np.float64)
        best = int(np.argmin(rt[1:])) + 1
        tiles = tiles_of(r)
        row: dict[str, Any] = {"kernel": r.name, "n": len(tiles), "best_tile": list(tiles[best - 1])}
        within = np.flatnonzero(rt[1:] <= 1.05 * rt[best]) + 1
        row["n_within5"] = len(within)
        for rn, c in costs.items():
            cc = np.asarray(c[r.name])[1:]
            order = np.argsort(cc, kind="stable") + 1
            pos = {int(j): p for p, j in enumerate(order)}
            row[rn] = {"best_rank": pos[best], "first_within5_rank": min(pos[int(j)] for j in within)}
        rows.append(row)
    return rows


def replay(
    recs: list[Any],
    costs: dict[str, dict[str, list[float]]],
    variants: dict[str, dict[str, Any]],
    seeds: int,
    noise: float,
    measure_frac: float,
) -> dict[str, Any]:
    """Tune every kernel with every (ranker, variant) for ``seeds`` seeds; gaps against the stored best."""
    from opgraph.perf.tune import tune_tile

    result: dict[str, Any] = {}
    for rn, c in costs.items():
        for vn, kw in variants.items():
            gaps = np.zeros((len(recs), seeds))
            frac = np.zeros((len(recs), seeds))
            best_at = np.full((len(recs), seeds), -1)  # position (1 = first) the best tile was measured at, -1 never
            within_at = np.full((len(recs), seeds), -1)  # the same for the first tile within 5% of the best
            for i, r in enumerate(recs):
                rt = np.asarray(r.config_runtime, dtype=np.float64)
                tiles = tiles_of(r)
                index = {(0, 0, 0): 0} | {t: j + 1 for j, t in enumerate(tiles)}
                for s in range(seeds):
                    res = tune_tile(
                        spec_of(r),
                        FixedRanker(np.asarray(c[r.name])),
                        candidates=tiles,
                        measure_frac=measure_frac,
                        measurer=replay_measurer(rt, tiles, noise, 1000 * s + i),
                        seed=s,
                        **kw,
                    )
                    pick = index[tuple(res.tile) if res.tile else (0, 0, 0)]
                    gaps[i, s] = rt[pick] / rt[1:].min() - 1.0
                    frac[i, s] = res.measured_frac
                    order = [index[tuple(int(v) for v in m.choice)] for m in res.measured[1:]]
                    best_j = int(np.argmin(rt[1:])) + 1
                    best_at[i, s] = order.index(best_j) + 1 if best_j in order else -1
                    near = [p + 1 for p, j in enumerate(order) if rt[j] <= 1.05 * rt[best_j]]
                    within_at[i, s] = near[0] if near else -1
            within = (gaps <= 0.05).sum(0)
            result[f"{rn} | {vn}"] = {
                "ranker": rn,
                "variant": vn,
                "within5_per_seed": within.tolist(),
                "within5_min": int(within.min()),
                "within5_mean": float(within.mean()),
                "all17_seeds": int((within == len(recs)).sum()),
                "mean_gap": float(gaps.mean()),
                "worst_gap": float(gaps.max()),
                "max_frac": float(frac.max()),
                "gaps": {r.name: gaps[i].round(4).tolist() for i, r in enumerate(recs)},
                "best_at": {r.name: best_at[i].tolist() for i, r in enumerate(recs)},
                "within5_at": {r.name: within_at[i].tolist() for i, r in enumerate(recs)},
            }
            v = result[f"{rn} | {vn}"]
            v["missed"] = {r.name: gaps[i].round(3).tolist() for i, r in enumerate(recs) if (gaps[i] > 0.05).any()}
            print(
                f"{rn:22s} {vn:34s} within5 min {v['within5_min']:2d} mean {v['within5_mean']:5.2f}/{len(recs)} "
                f"all-seeds {v['all17_seeds']}/{seeds} mean gap {v['mean_gap']:+.1%} worst {v['worst_gap']:+.1%} "
                f"frac {v['max_frac']:.1%}",
                flush=True,
            )
            for k, g in v["missed"].items():
                print(f"    missed {k}: {g}", flush=True)
    return result


def write_doc(doc: dict[str, Any], out: Path, cmd: str, started: str, seconds: float) -> None:
    """The marked ``tile-replay`` section of ``out``: per ranker and variant, kernels within 5% and gaps."""
    from opgraph._base.fileio import replace_marked_block
    from opgraph._base.provenance import cpu_model

    a = doc["args"]
    n = len(doc["kernels"])
    res = doc["replay"]
    per_model = doc.get("models", {})
    models = ", ".join(f"`{m}` ({k})" for m, k in per_model.items()) or "the stored models"
    lines = [
        BEGIN,
        "## Tile tuning replayed offline on the stored exhaustive measurements",
        "",
        f"`{cmd}`; {cpu_model()}, 1 thread, {started} ({seconds / 60:.1f} min in all; no measuring).",
        "",
        f"The {n} distinct kernels of {models} whose every power-of-two tile was measured by "
        "`benchmarks/perf/tune_tile_real.py` (3 interleaved rounds each; `/work/data/tile-tune/real/*/exhaustive`) "
        "(a kernel two models share is counted once, for the first) are tuned again by `tune_tile` with a "
        "measurer that looks the runtimes up: each (config, round) runtime is "
        f"the stored runtime x exp(N(0, {a['noise']})) (the median noise of the real verification runs), seeded, "
        f"so the replay is deterministic. Budget: `floor({a['measure_frac']} n)` configs, as in the real runs; "
        f"{a['seeds']} seeds (noise and round shuffles). Gap = stored runtime of the pick / best stored runtime - 1. "
        f"Rankers are fitted leave-one-kernel-out: LightGBM on the other {n - 1} kernels"
        + (f" plus {a['extra']}" if a.get("extra") else "")
        + "; `[fit columns]`: LightGBM with the 9 tile-fit columns (`LightGBMBaseline(features='tile+fit')`: "
        "does the tile divide each loop, padding waste, log(extent / tile)); `@x` rankers (if any) come from the cache of another run (`--more-costs`). `A+B`: mean of the rankers' "
        "standardised costs. `default`: `tune_tile`'s defaults after this work (`search='mixed'`: the ranker's top "
        "20% of the budget, then runs of 4 tiles: 2 `x2` neighbours of the 2 best measured tiles, 1 pick of the "
        "per-kernel refitted model among all tiles (lowest mean - std) and 1 the ranker's next pick, in the first "
        "run instead a **diverse pick** (of the ranker's unmeasured top-budget tiles the one farthest from every "
        "measured tile, L1 in log2 sizes); then the **adaptive race**: the 3 best and every tile within 10% of the "
        "best screening ratio, at most 6, race in phases of 10 rounds, each dropped when clearly slower than the "
        "leader (Yuen's paired trimmed-mean test, z 2.5 as a t quantile), until one is left or 100 rounds are "
        "spent); `before (halving race no diverse pick)`: the default until this work (the 3 best screening ratios "
        "race 10 rounds, the slower half dropped after 5; no diverse pick); `adaptive race only` / `diverse pick "
        "only`: one of the two changes; "
        "`LightGBM (22 records)`: LightGBM trained as `tune_tile_real.py --train-data /work/data/tile-tune/real` "
        "trains it, with the kernel two models share twice; `refit (before mixed)`: the default before mixed (refit batches, 70% of the budget "
        "on `axis+x2` neighbours of the best); `mixed ...` rows change one setting of the default; `screen`: the "
        "tuner before refit.",
        "",
        "| ranker | search | kernels within 5% (min over seeds) | mean over seeds | seeds with all "
        f"{n} | mean gap | worst gap |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in res.values():
        lines.append(
            f"| {v['ranker']} | {v['variant']} | {v['within5_min']}/{n} | {v['within5_mean']:.2f} | "
            f"{v['all17_seeds']}/{a['seeds']} | {v['mean_gap']:+.1%} | {v['worst_gap']:+.1%} |"
        )
    first = next(iter(res.values()))["ranker"] if res else None
    shown = [k for k in (f"{first} | default", f"{first} | before (halving race no diverse pick)") if k in res]
    if shown and doc.get("where"):
        where = {row["kernel"]: row for row in doc["where"]}
        lines += [
            "",
            f"Per kernel with {first}: where the best tile ranks in its order (0 = top pick; in brackets the first "
            "tile within 5%), and when each search measured the best tile / a tile within 5% of it: seeds where it "
            "was measured and the median position in the measuring order (1 = the first tile after the default), "
            "then the mean and worst gap over seeds:",
            "",
            "| kernel | candidates | budget | tiles within 5% | rank of best (first within 5%) | "
            + " | ".join(f"{res[k]['variant']}: best measured | within 5% measured | gap mean / worst" for k in shown)
            + " |",
            "|---|---|---|---|---|" + "---|---|---|" * len(shown),
        ]

        def when(pos: list[int]) -> str:
            hit = [p for p in pos if p > 0]
            return f"{len(hit)}/{len(pos)}" + (f" (at {int(np.median(hit))})" if hit else "")

        for kname in doc["kernels"]:
            row = where[kname]
            budget = max(2, int(np.floor(a["measure_frac"] * row["n"])))
            cells = [kname, str(row["n"]), str(budget), str(row["n_within5"])]
            cells.append(f"{row[first]['best_rank']} ({row[first]['first_within5_rank']})")
            for k in shown:
                g = np.asarray(res[k]["gaps"][kname])
                cells += [when(res[k]["best_at"][kname]), when(res[k]["within5_at"][kname])]
                cells.append(f"{g.mean():+.1%} / {g.max():+.1%}")
            lines.append("| " + " | ".join(cells) + " |")
    if doc.get("where"):
        rankers = [k for k, v in doc["where"][0].items() if isinstance(v, dict)]
        lines += [
            "",
            "Where each kernel's best tile ranks in each ranker's order (0 = its top pick; in brackets the first "
            "tile within 5% of the best), with the budget for comparison:",
            "",
            "| kernel | candidates | budget | tiles within 5% | " + " | ".join(rankers) + " |",
            "|---|---|---|---|" + "---|" * len(rankers),
        ]
        for row in doc["where"]:
            budget = max(2, int(np.floor(a["measure_frac"] * row["n"])))
            cells = [f"{row[r]['best_rank']} ({row[r]['first_within5_rank']})" for r in rankers]
            lines.append(
                f"| {row['kernel']} | {row['n']} | {budget} | {row['n_within5']} | " + " | ".join(cells) + " |"
            )
    lines += ["", END]
    replace_marked_block(out, BEGIN, END, "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/data/tile-tune/real")
    ap.add_argument(
        "--extra", default=None, help="More tile records (training only), e.g. /work/data/heldout-tile/tile"
    )
    ap.add_argument("--cache", default="runs/tile_replay")
    ap.add_argument("--rankers", default="LightGBM,analytical")
    ap.add_argument("--variants", default=None, help="Comma-separated names of VARIANTS (default: all).")
    ap.add_argument("--more-costs", default=None, help="costs.json of another replay cache (rankers suffixed @x).")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--noise", type=float, default=0.034)
    ap.add_argument("--measure-frac", type=float, default=0.1)
    ap.add_argument("--gnn-epochs", type=int, default=20)
    ap.add_argument("--where", action="store_true", help="Print where each kernel's best config ranks.")
    ap.add_argument("--out", default=None, help="JSON of every result.")
    ap.add_argument("--ablations", default=None, help="More VARIANTS, replayed with the first ranker only.")
    ap.add_argument("--doc", default=None, help="Markdown page whose tile-replay section is rewritten.")
    args = ap.parse_args()
    from opgraph.perf.tpugraphs import load_records

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.perf_counter()

    recs = load_kernels(Path(args.data))
    extra = load_records(args.extra, lazy=False) if args.extra else []
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rankers = [s.strip() for s in args.rankers.split(",") if s.strip()]
    if args.more_costs:  # rankers cached by another run (e.g. trained with --extra), suffixed "@x"
        more = read_json(Path(args.more_costs))["costs"]
        path = cache / "costs.json"
        doc0 = read_json(path)
        doc0["costs"].update({f"{k}@x": v for k, v in more.items()})
        write_json(path, doc0)
    costs = ranker_costs(recs, extra, rankers, cache, args.gnn_epochs)
    doc: dict[str, Any] = {"args": vars(args), "kernels": [r.name for r in recs], "models": kernels_per_model(recs)}
    if args.where:
        doc["where"] = where_best(recs, costs)
        for row in doc["where"]:
            cells = [
                f"{rn}: {v['best_rank']} ({v['first_within5_rank']})" for rn, v in row.items() if isinstance(v, dict)
            ]
            print(
                f"{row['kernel']:42s} n={row['n']:3d} best {row['best_tile']} within5 {row['n_within5']:2d} | "
                + "; ".join(cells),
                flush=True,
            )
    names = list(VARIANTS) if args.variants is None else [v.strip() for v in args.variants.split(",")]
    doc["replay"] = replay(recs, costs, {n: VARIANTS[n] for n in names}, args.seeds, args.noise, args.measure_frac)
    if args.ablations:
        first = {rankers[0]: costs[rankers[0]]}
        more = {n.strip(): VARIANTS[n.strip()] for n in args.ablations.split(",") if n.strip() not in names}
        doc["replay"].update(replay(recs, first, more, args.seeds, args.noise, args.measure_frac))
    if args.out:
        write_json(Path(args.out), doc)
    if args.doc:
        cmd = "PYTHONPATH=src python benchmarks/perf/tile_replay.py " + shlex.join(sys.argv[1:])
        write_doc(doc, Path(args.doc), cmd, started, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
