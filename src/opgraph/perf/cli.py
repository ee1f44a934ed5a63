"""``opgraph perf ...``: collect datasets, train / evaluate the cost model, rank configs, tune a model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import click

from opgraph._base.cli_options import executor_option, json_option, out_option, seed_option
from opgraph._base.jsonio import write_json
from opgraph.perf.errors import PerfError, require


def _at_least(minimum: int, **options: int | None) -> None:
    """Raise PerfError naming the first ``--option`` below ``minimum`` (None: left at its default)."""
    for name, value in options.items():
        if value is not None and value < minimum:
            raise PerfError(f"--{name.replace('_', '-')} {value} must be >= {minimum}")


def _console() -> Any:
    """A rich console; printed to a pipe or file it is 200 columns wide, so that tables keep whole headers."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def load_factory(spec: str) -> tuple[Any, tuple[Any, ...]]:
    """Load ``path/to/module.py:factory`` and call it; it must return ``(nn.Module, example_inputs)``."""
    path_s, sep, name = spec.rpartition(":")
    if not sep or not path_s or not name:
        raise PerfError(f"MODEL {spec!r}: expected 'path/to/module.py:factory' (a function returning (module, inputs))")
    path = Path(path_s)
    if not path.is_file():
        raise PerfError(f"MODEL {spec!r}: no such file {path}")
    mspec = importlib.util.spec_from_file_location(path.stem, path)
    if mspec is None or mspec.loader is None:
        raise PerfError(f"MODEL {spec!r}: cannot import {path}")
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise PerfError(f"MODEL {spec!r}: {path} has no function {name!r}")
    out = fn()
    if not (isinstance(out, tuple) and len(out) == 2):
        raise PerfError(f"MODEL {spec!r}: {name}() must return (nn.Module, example_inputs tuple)")
    module, example = out
    if not callable(getattr(module, "eval", None)):
        raise PerfError(f"MODEL {spec!r}: {name}() must return a torch nn.Module first, got {type(module).__name__}")
    if not isinstance(example, tuple | list):
        example = (example,)
    module.eval()
    return module, tuple(example)


@click.group(name="perf")
def group() -> None:
    """TpuGraphs-style datasets, a learned cost model that ranks configurations, and a tuner."""


@group.command()
@click.option("--space", type=click.Choice(["layout", "tile"]), default="layout", show_default=True)
@click.option("--zoo", "n_zoo", type=int, default=10, show_default=True, help="Zoo models (layout) or kernels (tile).")
@click.option("--configs", type=int, default=40, show_default=True, help="Configurations per graph.")
@out_option(required=True, help="Output directory of npz files.")
@executor_option()
@seed_option()
@click.option("--rounds", type=int, default=3, show_default=True)
@click.option("--reps", type=int, default=3, show_default=True)
@click.option("--module", "module_spec", default=None, help="Also measure a user model: path/to/file.py:factory.")
@click.option(
    "--real",
    "real_sizes",
    default=None,
    help="Also the real zoo (transformers models) at these sizes, e.g. tiny,small: its convolutional models "
    "(layout) or the kernels extracted from all its models (tile).",
)
@click.option("--real-families", default=None, help="Comma-separated real families (default: all that fit the space).")
def collect(
    space: str,
    n_zoo: int,
    configs: int,
    out: Path,
    executor: str,
    seed: int,
    rounds: int,
    reps: int,
    module_spec: str | None,
    real_sizes: str | None,
    real_families: str | None,
) -> None:
    """Measure configurations on this machine and write TpuGraphs npz files (resumable)."""
    require("torch", "perf")
    from opgraph.perf import zoo
    from opgraph.perf.measure import MeasureSettings

    if configs < 2:
        raise click.UsageError("--configs must be >= 2")
    _at_least(0 if real_sizes else 1, zoo=n_zoo)  # --zoo 0 --real SIZES: real models only
    _at_least(1, rounds=rounds, reps=reps)
    settings = MeasureSettings(rounds=rounds, reps=reps)
    con = _console()
    real: list[Any] = []
    if real_sizes:
        default = zoo.REAL_CNN_FAMILIES if space == "layout" else zoo.REAL_FAMILIES
        fams = tuple(real_families.split(",")) if real_families else default
        real = zoo.real_specs(fams, tuple(real_sizes.split(",")), seed=seed)
        if space == "layout":
            real = [s for s in real if s.convolutional]
    if space == "layout":
        from opgraph.perf.collect import collect_layout, layout_record
        from opgraph.perf.tpugraphs import save_graph

        res = collect_layout(
            zoo.generate(n_zoo, seed) + real, out, n_configs=configs, settings=settings, executor=executor, seed=seed
        )
        if module_spec:
            module, example = load_factory(module_spec)
            name = Path(module_spec.rpartition(":")[0]).stem
            rec = layout_record(name, module, example, n_configs=configs, settings=settings, seed=seed)
            save_graph(rec, out / f"{name}.npz")
            res.append({"name": name, "skipped": False, "meta": rec.measure_meta})
    else:
        from opgraph.perf.tile import collect_tile, generate_kernels

        kernels = generate_kernels(n_zoo, seed)
        if real:
            from opgraph.perf.kernels import model_kernels, real_kernel_specs

            kernels += real_kernel_specs(model_kernels(real))
        res = collect_tile(kernels, out, n_configs=configs, settings=settings, executor=executor, seed=seed)
    for r in res:
        m = r["meta"]
        con.print(
            f"{r['name']}: {'kept' if r['skipped'] else 'measured'}, noise {m.get('noise', float('nan')):.1%}, "
            f"tau between rounds {m.get('tau_between_rounds', float('nan')):.3f}"
        )
    con.print(f"[bold]{len(res)} graphs in {out}[/bold]")


@group.command(name="collect-real")
@out_option(required=True, help="Collection root (layout/real/random/train, tile/real/train, kernels.json).")
@click.option("--preset", type=click.Choice(["full", "ci"]), default="full", show_default=True)
@click.option("--space", "spaces", type=click.Choice(["layout", "tile"]), multiple=True, help="Default: both.")
@click.option("--layout-configs", type=int, default=8, show_default=True, help="Configs per layout graph.")
@click.option("--tile-configs", type=int, default=8, show_default=True, help="Tile configs per kernel.")
@click.option("--rounds", type=int, default=2, show_default=True, help=">= 2 records the noise ceiling.")
@click.option("--reps", type=int, default=1, show_default=True)
@click.option("--minutes", type=float, default=None, help="Start no new graph after this many minutes.")
@click.option("--limit", type=int, default=None, help="Only the first N graphs of each space.")
@click.option(
    "--shard", default=None, help="I/N: only every N-th graph from the I-th (0-based); N jobs split the work."
)
@executor_option()
@seed_option()
def collect_real_cmd(
    out: Path,
    preset: str,
    spaces: tuple[str, ...],
    layout_configs: int,
    tile_configs: int,
    rounds: int,
    reps: int,
    minutes: float | None,
    limit: int | None,
    shard: str | None,
    executor: str,
    seed: int,
) -> None:
    """The resumable real-zoo job: layout graphs of real CNNs, tile kernels of real models (rerun to resume)."""
    import time

    require("torch", "perf")
    require("transformers", "models")
    from opgraph.perf.collect import collect_real
    from opgraph.perf.measure import MeasureSettings

    _at_least(2, layout_configs=layout_configs, tile_configs=tile_configs)
    _at_least(1, rounds=rounds, reps=reps)
    deadline = time.time() + 60.0 * minutes if minutes is not None else None
    parts: tuple[int, int] | None = None
    if shard is not None:
        i, _, n = shard.partition("/")
        if not (i.isdigit() and n.isdigit()):
            raise PerfError(f"--shard {shard}: use I/N, e.g. 0/2 and 1/2 for two jobs")
        parts = (int(i), int(n))
    res = collect_real(
        out,
        preset=preset,
        spaces=spaces or ("layout", "tile"),
        layout_configs=layout_configs,
        tile_configs=tile_configs,
        settings=MeasureSettings(rounds=rounds, reps=reps, warmup=1),
        executor=executor,
        seed=seed,
        deadline_unix=deadline,
        limit=limit,
        shard=parts,
    )
    con = _console()
    for space, rows in res.items():
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        con.print(f"{space}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        for r in rows:
            if r["status"] == "failed":
                con.print(f"  {r['name']}: failed: {r['error']}")
    con.print(f"[bold]collection in {out}[/bold] (rerun the same command to resume)")


def _records(data: Path) -> list[Any]:
    from opgraph.perf.tpugraphs import load_records

    recs = load_records(data)
    kinds = {r.kind for r in recs}
    if len(kinds) != 1:
        raise PerfError(f"--data {data}: mixes {sorted(kinds)} graphs; point it at one collection")
    return recs


@group.command()
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Directory (tree) of npz files.")
@out_option(kind="file", required=True, help="Checkpoint path (model.pt).")
@click.option("--epochs", type=int, default=40, show_default=True)
@click.option(
    "--loss",
    type=click.Choice(["listmle", "hinge", "listmle_top", "lambda"]),
    default=None,
    help="Ranking loss (default: lambda for layout with hints, listmle_top without, listmle for tile); listmle_top scores the 5 fastest "
    "positions only, lambda weighs pairs near the top and by their runtime ratio (docs/perf.md).",
)
@click.option(
    "--join",
    type=click.Choice(["early", "late", "both"]),
    default=None,
    help="Where tile config features join (default: late for tile; layout is always early).",
)
@click.option("--ensemble", type=int, default=None, help="Networks averaged (default: 5 tile, 1 layout).")
@click.option("--hidden", type=int, default=64, show_default=True)
@click.option("--mse-weight", type=float, default=None, help="Weight of the MSE term (default: 0.02 tile, 0 layout).")
@click.option(
    "--hints/--no-hints",
    default=None,
    help="Join the analytical estimate and hand features of each config late (default: on; layout: the analytical "
    "terms standardised per graph, a residual over the estimate and the lambda loss; tile: every hand feature and "
    "how each tile fits its loops, as inputs only; docs/perf.md).",
)
@click.option("--valid-frac", type=float, default=0.2, show_default=True, help="Whole graphs held out for selection.")
@click.option(
    "--model-type",
    type=click.Choice(
        ["auto", "gnn", "lightgbm", "lightgbm-fit", "metaschedule-xgb", "gnn+lightgbm", "gnn+analytical"]
    ),
    default="auto",
    show_default=True,
    help="auto: train the GNN, LightGBM and (tile, with TVM) MetaSchedule's XGBoost, score them and the averaged "
    "ensembles GNN + LightGBM and (layout) GNN + analytical (mean of per-graph standardised costs), keep the best "
    "on the validation graphs (by --select-by); the choice and all scores are saved in the checkpoint "
    "(an ensemble as one file). "
    "lightgbm-fit (tile): LightGBM with the tile-fit columns (does each tile divide its loops; docs/perf.md).",
)
@click.option(
    "--select-by",
    type=click.Choice(["rank", "tau", "slowdown"]),
    default="rank",
    show_default=True,
    help="How auto picks among the candidates on the validation graphs: rank = lowest mean rank over tau, "
    "slowdown@1 and slowdown@5 (tile) / @10 (layout), ties by tau; tau = highest Kendall tau; slowdown = lowest "
    "slowdown@5 / @10. The table of every candidate is printed and saved in the checkpoint (docs/perf.md).",
)
@click.option(
    "--ms-cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder caching MetaSchedule's per-kernel TIR features (one npz per graph; reused by later runs).",
)
@seed_option()
def train(
    data: Path,
    out: Path,
    epochs: int,
    loss: str | None,
    join: str | None,
    ensemble: int | None,
    hidden: int,
    mse_weight: float | None,
    hints: bool | None,
    valid_frac: float,
    model_type: str,
    select_by: str,
    ms_cache: Path | None,
    seed: int,
) -> None:
    """Train the GraphSAGE cost model, LightGBM and (tile) MetaSchedule's XGBoost; keep the best on a collection."""
    require("torch", "perf")
    _at_least(1, epochs=epochs, ensemble=ensemble, hidden=hidden)
    if not 0 <= valid_frac < 1:
        raise PerfError(f"--valid-frac {valid_frac} must be in [0, 1) (the share of graphs held out)")
    if ms_cache is not None and data.resolve() in (ms_cache.resolve(), *ms_cache.resolve().parents):
        raise PerfError(f"--ms-cache {ms_cache}: put it outside --data {data} (its npz files would be read as graphs)")
    from opgraph.perf.collect import split_names
    from opgraph.perf.model import DEFAULT_ENSEMBLE, ModelConfig

    recs = _records(data)
    tr_names, va_names = split_names([r.name for r in recs], valid_frac, seed) if valid_frac > 0 else ([], [])
    train_recs = [r for r in recs if r.name in tr_names] if va_names else recs
    valid_recs = [r for r in recs if r.name in va_names]
    kind = recs[0].kind
    mse = mse_weight if mse_weight is not None else (0.02 if kind == "tile" else 0.0)
    # tile: standardised log config columns through a 3-layer config MLP (docs/perf.md, "Cost model")
    tile = {"cfg_norm": True, "cfg_layers": 3} if kind == "tile" else {}
    cfg = ModelConfig(
        kind=kind,
        epochs=epochs,
        loss=loss or "",
        join=join or ("late" if kind == "tile" else "early"),
        ensemble=ensemble or DEFAULT_ENSEMBLE[kind],
        hidden=hidden,
        mse_weight=mse,
        seed=seed,
        hints=True if hints is None else hints,
        **tile,
    )
    from opgraph.perf.evaluate import train_and_choose

    chosen, model, selection = train_and_choose(
        cfg,
        train_recs,
        valid_recs,
        model_type=model_type,
        seed=seed,
        progress=True,
        ms_cache=ms_cache,
        select_by=select_by,
    )
    from opgraph.perf.model import save_ranker

    save_ranker(model, out, selection=selection)
    con = _console()
    for name, why in selection.get("skipped", {}).items():
        con.print(f"skipped {name}: {why}")
    table = selection.get("table", {})
    if table:
        _print_selection(con, table, chosen, selection.get("rule", ""))
    hists = [getattr(m, "history", None) for m in [model, *getattr(model, "members", [])]]  # an ensemble: its GNN's
    last = next((h[-1] for h in hists if h), {})
    con.print(f"kept {chosen}: {selection.get('reason', '')} -> {out}; last epoch {json.dumps(last)}")


def _print_selection(con: Any, table: dict[str, dict[str, float]], chosen: str, rule: str) -> None:
    """The selection table of ``perf train``: every candidate's validation metrics and ranks, the kept one marked."""
    from rich.table import Table

    cols = [c for c in next(iter(table.values())) if c != "ceiling_tau"]
    t = Table(title=f"validation ({rule})")
    t.add_column("candidate", no_wrap=True)
    for c in cols:
        t.add_column(c.replace("kendall_tau", "tau").replace("slowdown@", "sd@"), justify="right", no_wrap=True)
    for name, row in table.items():
        t.add_row(("* " if name == chosen else "") + name, *(f"{row[c]:.3f}" for c in cols))
    con.print(t)


@group.command(name="eval")
@click.option("--model", "model_path", type=click.Path(path_type=Path), required=True)
@click.option("--data", type=click.Path(path_type=Path), required=True)
@click.option(
    "--baselines/--no-baselines",
    default=True,
    show_default=True,
    help="Also score random/default/analytical (no training needed).",
)
@json_option(dest="json_out")
def eval_cmd(model_path: Path, data: Path, baselines: bool, json_out: Path | None) -> None:
    """Score a checkpoint (and untrained baselines) on a collection, next to the noise ceiling."""
    from opgraph.perf.baselines import AnalyticalBaseline, DefaultBaseline, RandomBaseline
    from opgraph.perf.evaluate import compare
    from opgraph.perf.model import load_ranker

    require("torch", "perf")
    model = load_ranker(model_path)
    recs = _records(data)
    name = "GNN" if hasattr(model, "net") else "LightGBM"
    if hasattr(model, "names"):  # an averaged ensemble (opgraph.perf.ensemble.RankAverage)
        name = " + ".join(model.names)
    models: dict[str, Any] = {"MetaSchedule XGBoost" if getattr(model, "model_kind", "") == "xgb" else name: model}
    if baselines:
        models.update(
            {"analytical": AnalyticalBaseline(), "default config": DefaultBaseline(), "random": RandomBaseline()}
        )
    comp = compare(models, [], recs, fit=False)
    from rich.table import Table

    cols, rows = comp.table()
    t = Table(*cols, title=f"{len(recs)} {comp.kind} graphs from {data}")
    for r in rows:
        t.add_row(*[str(v) for v in r])
    _console().print(t)
    if json_out:
        write_json(json_out, comp.to_dict())


@group.command()
@click.option("--model", "model_path", type=click.Path(path_type=Path), required=True)
@click.option("--top", type=int, default=10, show_default=True, help="Configs printed per graph.")
@click.option(
    "--csv",
    "csv_out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the Kaggle 'Fast or Slow' submission (ID,TopConfigs), one row per graph.",
)
@click.option("--candidates", type=int, default=200, show_default=True, help="Configs sampled for a MODEL_FACTORY.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.argument("graphs", nargs=-1, required=True)
def rank(model_path: Path, top: int, csv_out: Path | None, candidates: int, seed: int, graphs: tuple[str, ...]) -> None:
    """Rank configurations with the model (fastest predicted first).

    GRAPHS: npz files, directories of npz files (the official tree too), or a model path/to/file.py:factory whose
    layout candidates are sampled and ranked without measuring.
    """
    from rich.table import Table

    from opgraph.perf.metrics import kendall_tau
    from opgraph.perf.model import load_ranker
    from opgraph.perf.ranking import describe_config, kaggle_id, rank_record, write_submission
    from opgraph.perf.tpugraphs import load_graph

    require("torch", "perf")
    model = load_ranker(model_path)
    con = _console()
    items: list[tuple[str, Any, list[str] | None]] = []
    for g in graphs:
        path = Path(g)
        if path.is_dir():
            files = sorted(path.rglob("*.npz"))
            if not files:
                raise PerfError(f"GRAPHS {g}: no npz files in that directory")
            items += [(str(f), load_graph(f, require_runtime=False), None) for f in files]
        elif path.suffix == ".npz" or path.is_file():
            items.append((g, load_graph(path, require_runtime=False), None))
        else:
            from opgraph.perf.tune import layout_candidates

            module, example = load_factory(g)
            name = Path(g.rpartition(":")[0]).stem
            cand, targets, _, columns = layout_candidates(module, example, candidates, seed, name)
            items.append((f"{name}.npz", cand, [targets[c] for c in columns]))
    rankings = []
    for src, rec, node_targets in items:
        if rec.kind != model.kind:
            raise PerfError(f"GRAPHS {src}: a {rec.kind} graph; --model {model_path} ranks {model.kind} graphs")
        r = rank_record(model, rec, kaggle_id(src, rec.kind))
        rankings.append(r)
        order = [int(i) for i in r.order]
        measured = rec.target_runtime() if rec.has_runtimes else None
        t = Table(title=f"{r.id}: {rec.n_configs} configs, fastest predicted first", title_justify="left")
        t.add_column("rank", justify="right")
        t.add_column("config", justify="right")
        t.add_column("predicted cost", justify="right")
        if measured is not None:
            t.add_column("measured / best", justify="right")
        t.add_column("layout" if rec.kind == "layout" else "tile config")
        for k, i in enumerate(order[:top]):
            row = [str(k + 1), str(i), f"{r.cost[i]:.4g}"]
            if measured is not None:
                row.append(f"{measured[i] / measured.min():.3f}x")
            row.append(describe_config(rec, i, node_targets))
            t.add_row(*row)
        con.print(t)
        con.print(f"predicted fastest configs: {';'.join(map(str, order[:top]))}")
        if measured is not None:
            best = int(measured.argmin())
            con.print(
                f"Kendall tau against the measured runtimes: {kendall_tau(r.cost, measured):.3f}; "
                f"best measured config {best} is predicted #{order.index(best) + 1}"
            )
    if csv_out:
        write_submission(rankings, csv_out)
        con.print(f"wrote {csv_out} ({len(rankings)} graphs)")


@group.command()
@click.argument("model_factory")
@click.option("--model", "model_path", type=click.Path(path_type=Path), required=True, help="Layout checkpoint.")
@click.option("--candidates", type=int, default=200, show_default=True)
@click.option(
    "--measure-frac", type=float, default=0.1, show_default=True, help="Distinct configs measured / candidates."
)
@click.option(
    "--local-search",
    type=float,
    default=0.0,
    show_default=True,
    help="Part of the budget for single-flip neighbours of the best measured config.",
)
@click.option(
    "--finalists", type=int, default=4, show_default=True, help="Configs raced head-to-head with the default."
)
@click.option(
    "--race-rounds",
    type=int,
    default=40,
    show_default=True,
    help="Interleaved rounds (one timed run each) of the race.",
)
@seed_option()
@out_option(
    kind="file", dest="out_json", help="Write the chosen layout (module path -> format) and the timings as JSON."
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Tuning log (JSON): a rerun measures none of the configs it holds; a finished log measures nothing.",
)
def tune(
    model_factory: str,
    model_path: Path,
    candidates: int,
    measure_frac: float,
    local_search: float,
    finalists: int,
    race_rounds: int,
    seed: int,
    out_json: Path | None,
    log_path: Path | None,
) -> None:
    """Pick a layout for MODEL_FACTORY (path/to/file.py:factory): rank candidates, measure the top ones, race them."""
    from opgraph.perf.model import load_ranker
    from opgraph.perf.tune import tune_layout

    if not 0 < measure_frac <= 1:
        raise click.UsageError("--measure-frac must be in (0, 1]")
    if not 0 <= local_search < 1:
        raise click.UsageError("--local-search must be in [0, 1)")
    require("torch", "perf")
    model = load_ranker(model_path)
    if model.kind != "layout":
        raise PerfError(f"--model {model_path}: a {model.kind} model; tune needs a layout model")
    module, example = load_factory(model_factory)
    res = tune_layout(
        module,
        example,
        model,
        n_candidates=candidates,
        measure_frac=measure_frac,
        local_search=local_search,
        finalists=finalists,
        race_rounds=race_rounds,
        seed=seed,
        name=model_factory,
        log_path=log_path,
    )
    con = _console()
    con.print(res)
    layout = {t: ("channels_last" if c else "NCHW") for t, c in zip(res.targets, res.best_choice)}
    for t, fmt in layout.items():
        con.print(f"  {t}: {fmt}")
    if out_json:
        res.save(out_json)
        con.print(f"wrote {out_json}; re-apply it with opgraph.perf.tune.apply_layout(model, '{out_json}')")


@group.command(name="tune-tile")
@click.argument("model_factory")
@out_option(kind="file", required=True, help="Schedules file (JSON) to write: one tile per kernel, or TVM's default.")
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Tile cost model from 'opgraph perf train' (the prior ranker); default: the analytical cache model.",
)
@click.option(
    "--budget", type=float, default=0.1, show_default=True, help="Distinct configs measured / candidates, per kernel."
)
@click.option(
    "--search",
    type=click.Choice(["mixed", "refit", "screen"]),
    default="mixed",
    show_default=True,
    help="mixed: runs of 4 tiles: neighbours of the best measured, the refitted model's and the prior's picks; "
    "refit: batches with a per-kernel model refitted between them; screen: the prior's picks only.",
)
@click.option("--batches", type=int, default=3, show_default=True, help="Measuring batches of --search refit.")
@click.option(
    "--local-frac",
    type=float,
    default=None,
    help="Share on neighbours of the best measured tiles: of every run (mixed; default 0.5) or of the budget "
    "(refit 0.7, screen 0.4).",
)
@click.option(
    "--neighbourhood",
    type=click.Choice(["x2", "axis+x2", "axis", "x4", "lines"]),
    default=None,
    help="Neighbours of a tile: x2 every size halved/kept/doubled (mixed, screen), axis+x2 also one size x1/4 or "
    "x4 (refit), axis, x4, lines.",
)
@click.option(
    "--step", type=int, default=None, help="Tiles per measuring run of --search mixed (default 4; 0: refit's batches)."
)
@click.option(
    "--restarts",
    type=int,
    default=None,
    help="Neighbours of this many best measured tiles (default 2 for mixed, 1 for refit).",
)
@click.option(
    "--diverse",
    type=int,
    default=None,
    help="Runs of --search mixed whose ranker pick is the ranker's top-budget tile farthest from every measured "
    "one (default 1).",
)
@click.option(
    "--race",
    type=click.Choice(["adaptive", "halving"]),
    default=None,
    help="adaptive (mixed's default): every tile within 10% of the best races in phases of --race-rounds rounds "
    "until the noise separates them (at most 100 rounds); halving (refit's): --finalists race --race-rounds "
    "rounds, the slower half dropped after half of them.",
)
@click.option("--finalists", type=int, default=3, show_default=True, help="Tiles raced against the default.")
@click.option(
    "--race-rounds",
    type=int,
    default=10,
    show_default=True,
    help="Interleaved rounds of the race (of each phase of the adaptive race).",
)
@click.option("--limit", type=int, default=None, help="Tune only the first N kernels (by first use in the model).")
@seed_option()
@click.option(
    "--resume",
    "--log",
    "log_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of per-kernel tuning logs: a rerun measures nothing they hold; finished kernels are read back.",
)
def tune_tile_cmd(
    model_factory: str,
    out: Path,
    model_path: Path | None,
    budget: float,
    search: str,
    batches: int,
    local_frac: float | None,
    neighbourhood: str | None,
    step: int | None,
    restarts: int | None,
    diverse: int | None,
    race: str | None,
    finalists: int,
    race_rounds: int,
    limit: int | None,
    seed: int,
    log_dir: Path | None,
) -> None:
    """Tune TVM tile schedules of MODEL_FACTORY's kernels (path/to/file.py:factory) and save them (--out)."""
    from types import SimpleNamespace

    from tqdm.auto import tqdm

    from opgraph.perf.kernels import model_kernels
    from opgraph.perf.tune import save_tile_schedules, tune_tile

    if not 0 < budget <= 1:
        raise PerfError(f"--budget {budget} must be in (0, 1]: the share of each kernel's candidates measured")
    _at_least(1, batches=batches, race_rounds=race_rounds, limit=limit, restarts=restarts)
    _at_least(0, finalists=finalists, step=step, diverse=diverse)
    if local_frac is not None and not 0 <= local_frac <= 1:
        raise PerfError(f"--local-frac {local_frac} must be in [0, 1]: a share of the measured tiles")
    if search == "screen" and (step is not None or restarts is not None or diverse is not None or race is not None):
        raise PerfError(
            "--step, --restarts, --diverse and --race are settings of --search mixed or refit; drop them for screen"
        )
    knobs = (("step", step), ("restarts", restarts), ("diverse", diverse), ("race", race))
    options = {k: v for k, v in knobs if v is not None}
    require("torch", "perf")
    require("tvm", "tvm")
    if model_path is not None:
        from opgraph.perf.model import load_ranker

        ranker = load_ranker(model_path)
        if ranker.kind != "tile":
            raise PerfError(f"--model {model_path}: a {ranker.kind} model; tune-tile needs a tile model")
    else:
        from opgraph.perf.baselines import AnalyticalBaseline

        ranker = AnalyticalBaseline()
    module, example = load_factory(model_factory)
    mk = model_kernels([SimpleNamespace(name=model_factory, build=lambda: (module, example))], progress=False)[0]
    kernels = [(k.kernel_spec(), k.count) for k in mk.kernels if k.kernel_spec() is not None][:limit]
    if not kernels:
        raise PerfError(f"MODEL {model_factory!r}: no convolution or matmul kernel that the TVM templates can tune")
    con = _console()
    results = []
    for i, (spec, _count) in enumerate(tqdm(kernels, desc="kernels", disable=None)):
        res = tune_tile(
            spec,
            ranker,
            measure_frac=budget,
            search=search,
            batches=batches,
            local_frac=local_frac,
            neighbourhood=neighbourhood,
            refit_options=options or None,
            finalists=finalists,
            race_rounds=race_rounds,
            seed=seed + i,
            log_path=None if log_dir is None else log_dir / f"{spec.name}.json",
        )
        results.append(res)
    from rich.table import Table

    t = Table(title=f"{model_factory}: {len(results)} kernels")
    for col in ("kernel", "count", "tile", "measured", "default us", "chosen us", "speed-up"):
        t.add_column(col)
    for (_, count), r in zip(kernels, results):
        t.add_row(
            r.kernel,
            str(count),
            "TVM default" if r.tile is None else "x".join(map(str, r.tile)),
            f"{r.n_measured}/{r.n_candidates}" + (" (log)" if r.resumed else ""),
            f"{r.default_ns / 1e3:.2f}",
            f"{r.chosen_ns / 1e3:.2f}",
            f"{r.speedup:.2f}x",
        )
    con.print(t)
    w_def = sum(c * r.default_ns for (_, c), r in zip(kernels, results))
    w_new = sum(c * r.chosen_ns for (_, c), r in zip(kernels, results))
    con.print(f"all kernels (weighted by use): {w_def / max(w_new, 1e-9):.2f}x over TVM's default schedules")
    save_tile_schedules(results, out)
    con.print(f"wrote {out}; re-apply it with 'opgraph perf apply-tile {out}'")


@group.command(name="apply-tile")
@click.argument("schedules", type=click.Path(path_type=Path))
@click.option("--mcpu", default=None, help="LLVM CPU name (default: the host's).")
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Run every compiled schedule once on random inputs and compare it with TVM's default schedule.",
)
def apply_tile_cmd(schedules: Path, mcpu: str | None, check: bool) -> None:
    """Rebuild and compile the schedules of SCHEDULES (from tune-tile); check them against the default schedule."""
    require("tvm", "tvm")
    import numpy as np
    from rich.table import Table

    from opgraph.perf.tile import TileRunner
    from opgraph.perf.tune import apply_tile_schedules, load_tile_schedules

    saved = load_tile_schedules(schedules)
    fns = apply_tile_schedules(schedules, mcpu)
    t = Table(title=f"{schedules}: {len(fns)} kernels compiled")
    for col in ("kernel", "tile") + (("max abs diff vs default",) if check else ()):
        t.add_column(col)
    worst = 0.0
    for name, fn in fns.items():
        spec, tile = saved[name]
        row = [name, "TVM default" if tile is None else "x".join(map(str, tile))]
        if check:
            import tvm

            runner = TileRunner(spec, mcpu)
            ref = runner.function(None)
            ref(*runner.args)
            want = runner.args[-1].numpy().copy()
            out = tvm.runtime.tensor(np.zeros_like(want))
            fn(*runner.args[:-1], out)
            diff = float(np.abs(out.numpy() - want).max())
            worst = max(worst, diff / max(1.0, float(np.abs(want).max())))
            row.append(f"{diff:.2e}")
        t.add_row(*row)
    _console().print(t)
    if check and worst > 1e-3:
        raise PerfError(f"{schedules}: a schedule's output differs from TVM's default (relative {worst:.1e})")
