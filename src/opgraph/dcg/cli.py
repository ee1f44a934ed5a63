"""``opgraph dcg``: evaluate an expression of random variables from the command line.

``opgraph dcg "x*y + sin(z)" --var x=normal:1,0.1 --var y=uniform:0,2 --var z=normal:0,1 --atoms 256``
prints the summary (mean, std, quantiles, certified W1 bound and its terms) and writes the plot.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from opgraph._base.cli_options import executor_option, json_option, out_option
from opgraph.errors import OpgraphError

if TYPE_CHECKING:
    from rich.table import Table

    from opgraph.dcg.result import DistResult


class _DefaultGroup(click.Group):
    """A group whose first argument, if not a subcommand, is the expression of the default ``eval`` command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["eval", *args]
        return super().parse_args(ctx, args)


@click.group(name="dcg", cls=_DefaultGroup)
def group() -> None:
    """Distributional computational graphs with certified Wasserstein-1 bounds.

    Run `opgraph dcg "EXPR" --var NAME=FAMILY:P1,P2 ...` (the same as `opgraph dcg eval ...`).
    """


def _seconds(text: str) -> float | None:
    """``--max-seconds``: a number of seconds, or ``none`` (no time budget)."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise OpgraphError(f"--max-seconds {text!r}: give a number of seconds (for example 20) or 'none'") from None


@group.command(name="eval")
@click.argument("expr")
@click.option(
    "--var",
    "var_specs",
    multiple=True,
    help="NAME=FAMILY:P1,P2 (normal, uniform, exponential, gamma, "
    "lognormal, beta, discrete:v1,v2,...); repeat per variable.",
)
@click.option("--atoms", default=256, show_default=True, type=int, help="Atoms per input.")
@click.option("--target-w1", type=float, default=None, help="Refine until the certified bound is below this.")
@click.option(
    "--max-seconds",
    default="20",
    show_default=True,
    help="Time budget of a --target-w1 call (CPU seconds; 'none' for none): rounds predicted to end later are not "
    "run, and the best certified round is returned with a warning naming its bound.",
)
@click.option(
    "--quantizer", default="auto", show_default=True, type=click.Choice(["auto", "quantile", "meansplit", "geometric"])
)
@click.option("--max-joint", default=2**20, show_default=True, type=int, help="Largest joint grid (elements).")
@click.option(
    "--max-memory",
    default=None,
    help="Memory budget (bytes, or with a unit: 500MB, 2GB); larger grids are evaluated in chunks.",
)
@click.option(
    "--truncate",
    default=None,
    type=float,
    help="Cut every unbounded input to its [P, 1-P] quantiles (for programs undefined only far in a tail); "
    "the dropped probability is reported.",
)
@click.option(
    "--affine/--no-affine",
    default=None,
    help="Affine enclosures (tighter bounds where inputs are shared); --no-affine: the interval-only engine. "
    "Default: on. Applies in every executor's workers.",
)
@executor_option()
@click.option(
    "--plot",
    "plot_path",
    default="dist.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the density/CDF plot ('' for none).",
)
@json_option(help="Also save the result.")
def eval_cmd(
    expr: str,
    var_specs: tuple[str, ...],
    atoms: int,
    target_w1: float | None,
    max_seconds: str,
    quantizer: str,
    max_joint: int,
    max_memory: str | None,
    truncate: float | None,
    affine: bool | None,
    executor: str,
    plot_path: str,
    json_path: str | None,
) -> None:
    """Evaluate EXPR (for example "x*y + sin(z)") with the inputs given by --var."""
    import warnings

    from rich.console import Console

    from opgraph.dcg.api import evaluate
    from opgraph.dcg.expr import compile_expression, parse_var

    if not var_specs:
        raise click.UsageError("give every variable of EXPR a law with --var NAME=FAMILY:P1,P2")
    parsed = [parse_var(s) for s in var_specs]
    names = [n for n, _ in parsed]
    if len(set(names)) != len(names):
        raise OpgraphError(f"--var: a variable is defined twice ({names})")
    fn = compile_expression(expr, names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = evaluate(
            fn,
            *[dd for _, dd in parsed],
            atoms=atoms,
            target_w1=target_w1,
            quantizer=quantizer,
            max_joint=max_joint,
            max_memory=parse_bytes(max_memory),
            executor=executor,
            truncate=truncate,
            affine=affine,
            max_seconds=_seconds(max_seconds),
        )
    outputs = r if isinstance(r, tuple) else (r,)
    con = Console()
    for i, out in enumerate(outputs):
        title = expr if len(outputs) == 1 else f"{expr}  (output {i + 1} of {len(outputs)})"
        con.print(_summary_table(out, title))
    for w in caught:
        con.print(f"[yellow]warning:[/yellow] {w.message}")
    for i, out in enumerate(outputs):
        if plot_path:
            path = _numbered(plot_path, i, len(outputs))
            fig = out.plot()
            fig.savefig(path, dpi=100)
            con.print(f"plot written to {path}")
        if json_path:
            path = _numbered(json_path, i, len(outputs))
            out.save(path)
            con.print(f"result written to {path}")


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_bytes(text: str | None) -> int | None:
    """``"500MB"`` -> 500000000 (units B, KB, MB, GB, TB, KiB, MiB, GiB; none: bytes); None stays None.

    Raises:
        OpgraphError: not a positive size.
    """
    if text is None:
        return None
    t = text.strip().upper()
    num = t.rstrip("BKMGTI")
    try:
        value = float(num) * _UNITS[t[len(num) :].strip()]
    except (ValueError, KeyError):
        value = float("nan")
    if not (value >= 1 and math.isfinite(value)):
        raise OpgraphError(f"--max-memory {text!r}: expected a size such as 500MB or 2GB")
    return int(value)


def _numbered(path: str, index: int, count: int) -> str:
    """``path`` itself for a single output, else ``stem-<index+1>.suffix`` (one file per output of a tuple)."""
    if count == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{index + 1}{p.suffix}"))


def _summary_table(r: DistResult, title: str) -> Table:
    """A rich table with the mean, std, quantiles, atom count and certified bound (with its terms) of ``r``."""
    from rich.table import Table

    levels = [0.01, 0.05, 0.5, 0.95, 0.99]
    q = r.ppf(levels)
    ql, qh = r.quantile_bounds(levels) if r.cells is not None else ([math.nan] * 5, [math.nan] * 5)
    t = Table(title=title)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("certified interval (exact law)" if r.cells is not None else "", justify="right")
    t.add_row("mean", f"{r.mean():.6g}", "")
    t.add_row("std", f"{r.std():.6g}", "")
    for name, v, lo, hi in zip(("1%", "5%", "median", "95%", "99%"), q, ql, qh, strict=True):
        t.add_row(name, f"{v:.6g}", f"[{lo:.6g}, {hi:.6g}]" if r.cells is not None else "")
    t.add_row("atoms", str(r.atoms.size))
    t.add_row(
        "W1 bound" if r.certified else f"W1 estimate (not certified; {r.estimate_label()})",
        f"{r.w1_bound if r.certified else r.w1_estimate:.3g}",
    )
    for k, v in sorted(r.bound_terms.items(), key=lambda kv: -kv[1]):
        t.add_row(f"  {k}", f"{v:.3g}")
    if r.dropped_mass > 0:
        t.add_row("dropped mass (truncation)", f"{r.dropped_mass:.3g}", "bound: truncated inputs; band: exact law")
    return t


@group.command(name="demo")
@out_option(default="demo-out/dcg", dest="out_dir")
@click.option("--full", is_flag=True, help="Larger sizes.")
def demo_cmd(out_dir: str, full: bool) -> None:
    """Run the dcg demo and write its report page."""
    from opgraph.dcg.demo import report_section
    from opgraph.report import write_report

    out = Path(out_dir)
    section = report_section(out, quick=not full)
    path = write_report([section], out, title="opgraph dcg demo")
    click.echo(f"report written to {path}")
    click.echo(json.dumps({k: v for k, v in section.data.items() if not isinstance(v, list | dict)}, default=str))
