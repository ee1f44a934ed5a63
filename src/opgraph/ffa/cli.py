"""``opgraph ffa``: train, evaluate and compare FFA runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from opgraph._base.cli_options import out_option, seed_option
from opgraph._base.jsonio import write_json
from opgraph.ffa.errors import FFAError

MODELS = ("asym_resnet10", "asym_resnet18", "mlp")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise click.UsageError(f"expected comma-separated numbers, got {text!r}") from exc


def _model_kwargs(model: str, width: int, hidden: str, ds: Any) -> dict[str, Any]:
    c, h, _ = ds.image_shape
    if width < 1:
        raise FFAError(f"--width {width} must be >= 1 (base channels; 64 is the paper's size)")
    if model == "mlp":
        try:
            widths = [int(v) for v in hidden.split(",")]
        except ValueError:
            widths = []
        if not widths or min(widths) < 1:
            raise FFAError(f"--hidden {hidden!r} must be comma-separated widths >= 1, e.g. 256,256")
        return {
            "in_features": int(c * h * h),
            "hidden": widths,
            "n_classes": ds.n_classes,
            "input_shape": list(ds.image_shape),
        }
    return {"in_channels": c, "n_classes": ds.n_classes, "width": width, "image_size": h}


@click.group(name="ffa")
def group() -> None:
    """Feedback-Feedforward Alignment: train F and its mirrored feedback network B."""
    import importlib.util

    # Every ffa command needs PyTorch: say which extra provides it instead of a ModuleNotFoundError traceback.
    try:
        found = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise FFAError("opgraph ffa needs PyTorch, which is not installed: pip install 'opgraph[ffa]'")


@group.command("train")
@click.option(
    "--data", "data_src", required=True, help="npz path, idx/CIFAR folder, or mnist|fashion-mnist|cifar10|digits."
)
@click.option("--model", type=click.Choice(MODELS), default="asym_resnet10", show_default=True)
@click.option("--width", type=int, default=16, show_default=True, help="Base channels (64 = paper size).")
@click.option("--hidden", default="256,256", show_default=True, help="MLP hidden widths.")
@click.option(
    "--method",
    "methods",
    multiple=True,
    default=("ffa",),
    show_default=True,
    help="ffa, bp, bp-copy, fa, kp, sign, ae-bp, ae-fa (repeat for several).",
)
@click.option("--epochs", type=int, default=20, show_default=True)
@seed_option(multiple=True, dest="seeds")
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--lr-f", type=float, default=1e-3, show_default=True)
@click.option("--lr-b", type=float, default=1e-3, show_default=True)
@click.option("--momentum", type=float, default=0.0, show_default=True)
@click.option("--image-size", type=int, default=None, help="Resize images (default: 28x28 -> 32x32).")
@click.option("--n-train", type=int, default=None, help="Use a random subset of the training set.")
@click.option("--n-test", type=int, default=None, help="Use a random subset of the test set.")
@out_option(default="runs/ffa", dest="out_dir", help="Run folder (several runs: one sub-folder <method>-s<seed> each).")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in the run folder.")
@click.option("--executor", default="serial", show_default=True, help="serial | process | dask | dask://host:port")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | auto")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in --out (refused without this flag).")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option(
    "--allow-unverified", is_flag=True, help="--resume a run without manifest.json (older opgraph), with a warning."
)
def train_cmd(
    data_src: str,
    model: str,
    width: int,
    hidden: str,
    methods: tuple[str, ...],
    epochs: int,
    seeds: tuple[int, ...],
    batch_size: int,
    lr_f: float,
    lr_b: float,
    momentum: float,
    image_size: int | None,
    n_train: int | None,
    n_test: int | None,
    out_dir: str,
    resume: bool,
    overwrite: bool,
    executor: str,
    device: str,
    threads: int | None,
    allow_unverified: bool,
) -> None:
    """Train one run (or every --method x --seed combination) and print the final metrics.

    An --out that already holds a run is refused unless --resume (continue it) or --overwrite (replace it).
    """
    import torch
    from rich.console import Console
    from rich.table import Table

    from opgraph.ffa import data, models
    from opgraph.ffa.mirroring import METHODS, mirror
    from opgraph.ffa.training import train, train_many

    for m in methods:
        if m not in METHODS:
            raise click.UsageError(f"--method {m!r} is unknown; use one of {', '.join(METHODS)}")
    if resume and overwrite:
        raise FFAError("--resume and --overwrite contradict each other; pass one of them")
    if not resume and not overwrite:
        single = len(methods) == 1 and len(seeds) == 1
        folders = [Path(out_dir)] if single else [Path(out_dir) / f"{m}-s{s}" for m in methods for s in seeds]
        _refuse_earlier_runs(folders)
    if threads:
        torch.set_num_threads(threads)
    dkw = {"image_size": image_size, "n_train": n_train, "n_test": n_test}
    ds = data.load(data_src, **dkw)
    mkw = _model_kwargs(model, width, hidden, ds)
    tkw = {"batch_size": batch_size, "lr_f": lr_f, "lr_b": lr_b, "momentum": momentum, "device": device}
    if allow_unverified:
        tkw["allow_unverified"] = True
    console = Console()
    if len(methods) == 1 and len(seeds) == 1:
        torch.manual_seed(seeds[0])
        pair = mirror(models.build(model, **mkw))
        results = [
            train(
                pair,
                ds,
                method=methods[0],
                epochs=epochs,
                seed=seeds[0],
                run_dir=out_dir,
                resume=resume,
                progress=True,
                **tkw,
            )
        ]
    else:
        results = train_many(
            model,
            mkw,
            data_src,
            methods,
            seeds,
            epochs,
            out_dir=out_dir,
            executor=executor,
            data_kwargs=dkw,
            threads=threads,
            progress=True,
            resume=resume,
            **tkw,
        )
    table = Table(title=f"opgraph ffa train: {model} on {ds.name}")
    for col in ("method", "seed", "epochs", "test acc %", "recon r", "align deg", "wall s", "run"):
        table.add_column(col)
    for r in results:
        f = r.final
        table.add_row(
            r.method,
            str(r.config.get("seed", "")),
            str(f.get("epoch")),
            f"{f['test_acc']:.2f}",
            f"{f['recon_corr']:.3f}",
            f"{f['align_mean_deg']:.1f}",
            f"{r.wall_s:.1f}",
            str(r.run_dir),
        )
    console.print(table)


def _refuse_earlier_runs(folders: list[Path]) -> None:
    """Raise FFAError if a folder holds files of an earlier run (they would be overwritten without a word)."""
    from opgraph.ffa.training import CHECKPOINT, CONFIG, HISTORY, MANIFEST

    for folder in folders:
        found = [name for name in (CHECKPOINT, HISTORY, CONFIG, MANIFEST) if (folder / name).exists()]
        if found:
            raise FFAError(
                f"--out {folder} already holds a run ({', '.join(found)}); pass --resume to continue it, "
                "--overwrite to replace it, or another --out"
            )


@group.command("eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--data", "data_src", default=None, help="Data source (default: the one the run was trained on).")
@click.option("--noise", default="0,0.1,0.5,1.0", show_default=True, help="Noise variances.")
@click.option("--fgsm", default="0.05,0.1,0.2", show_default=True, help="FGSM epsilons ('' for none).")
@click.option("--iterations", type=int, default=3, show_default=True, help="F->B iterations.")
@click.option("--n", type=int, default=512, show_default=True, help="Test images for robustness.")
@click.option("--no-inference", is_flag=True, help="Skip denoising / inpainting / imagination.")
@out_option(dest="out_dir", help="Report folder (default: RUN_DIR/eval).")
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--allow-unverified", is_flag=True, help="Load a run without manifest.json (older opgraph), with a warning."
)
def eval_cmd(
    run_dir: str,
    data_src: str | None,
    noise: str,
    fgsm: str,
    iterations: int,
    n: int,
    no_inference: bool,
    out_dir: str | None,
    device: str,
    allow_unverified: bool,
) -> None:
    """Evaluate a trained run: accuracy, reconstruction, robustness, visual inference; writes a report page."""
    from rich.console import Console

    from opgraph.ffa import data
    from opgraph.ffa.analysis import evaluate_pair
    from opgraph.ffa.training import load_run
    from opgraph.report import Figure, Section, write_report

    res = load_run(run_dir, device=device, allow_unverified=allow_unverified)
    if n < 1 or iterations < 0:
        raise FFAError(f"--n {n} must be >= 1 and --iterations {iterations} >= 0")
    cfg = res.config
    src = data_src or cfg.get("data_source")
    if not src:
        raise FFAError(f"{run_dir} does not record its data source; pass --data")
    size = res.pair.input_shape[-1]
    load_args = cfg.get("data_args") or {}
    if data_src is None and load_args:
        # The images (subset and order) that training evaluated on, so both report the same accuracy.
        ds = data.load(src, **load_args)
    else:
        ds = data.load(src, image_size=size)
    numbers, figs = evaluate_pair(
        res.pair,
        ds,
        batch_size=int(cfg.get("eval_batch_size", 256)),
        noise=_floats(noise),
        iterations=iterations,
        fgsm_eps=_floats(fgsm),
        n=n,
        inference=not no_inference,
    )
    out = Path(out_dir) if out_dir else Path(run_dir) / "eval"
    write_json(out / "eval.json", numbers)
    section = Section(
        id="ffa-eval",
        title=f"FFA run {run_dir} ({cfg['method']})",
        summary=json.dumps(numbers["metrics"]),
        figures=[Figure.from_matplotlib(f, k, c) for k, (f, c) in figs.items()],
        data=numbers,
    )
    page = write_report([section], out, title=f"opgraph ffa eval {run_dir}")
    console = Console()
    m = numbers["metrics"]
    console.print(
        f"[bold]{cfg['method']}[/]: test accuracy {m['test_acc']:.2f} % on {len(ds.y_test)} test images, "
        f"reconstruction r {m['recon_corr']:.3f}"
    )
    if len(ds.y_test) != cfg.get("n_test", len(ds.y_test)):
        console.print(
            f"[yellow]note:[/] training evaluated on {cfg['n_test']} test images, this on {len(ds.y_test)}: "
            "the accuracies differ by sampling"
        )
    rob = numbers["robustness"]
    for v, accs in zip(rob["noise"], rob["noise_acc"], strict=True):
        console.print(f"  noise var {v:<5g} acc after 0..{iterations} F->B: " + " ".join(f"{a:6.2f}" for a in accs))
    for e, accs in zip(rob["eps"], rob["fgsm_acc"], strict=True):
        console.print(f"  FGSM eps  {e:<5g} acc after 0..{iterations} F->B: " + " ".join(f"{a:6.2f}" for a in accs))
    console.print(f"report: {page}")


@group.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@out_option(dest="out_dir", help="Write a report page here.")
def compare_cmd(run_dirs: tuple[str, ...], out_dir: str | None) -> None:
    """Compare runs: a table of final / best metrics, learning curves and the accuracy-vs-reconstruction plot."""
    from rich.console import Console
    from rich.table import Table as RichTable

    from opgraph.ffa.analysis import compare_runs
    from opgraph.report import Figure, Section, Table, write_report

    rows, curves, scatter = compare_runs(run_dirs)
    cols = ["method", "seed", "epochs", "test_acc", "recon_corr", "best_acc", "best_corr", "align_mean_deg", "wall_s"]
    t = RichTable(title="opgraph ffa compare")
    for c in ["run", *cols]:
        t.add_column(c)
    for r in rows:
        t.add_row(Path(r["run"]).name, *[f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols])
    Console().print(t)
    if out_dir:
        sec = Section(
            id="ffa-compare",
            title="FFA runs compared",
            figures=[
                Figure.from_matplotlib(curves, "curves", "Learning curves."),
                Figure.from_matplotlib(scatter, "scatter", "Accuracy vs reconstruction (paper Fig. 2)."),
            ],
            tables=[Table(["run", *cols], [[r["run"], *[r[c] for c in cols]] for r in rows])],
            data={"runs": rows},
        )
        Console().print(f"report: {write_report([sec], out_dir, title='opgraph ffa compare')}")
    else:
        import matplotlib.pyplot as plt

        plt.close("all")
