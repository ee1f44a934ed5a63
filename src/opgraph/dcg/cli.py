"""``opgraph dcg``: evaluate an expression of random variables from the command line.

``opgraph dcg "x*y + sin(z)" --var x=normal:1,0.1 --var y=uniform:0,2 --var z=normal:0,1 --atoms 256``
prints the summary (mean, std, quantiles, certified W1 bound and its terms) and writes the plot.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from opgraph.errors import OpgraphError


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
@click.option("--quantizer", default="auto", show_default=True, type=click.Choice(["auto", "quantile", "meansplit"]))
@click.option("--max-joint", default=2**20, show_default=True, type=int, help="Largest joint grid (elements).")
@click.option(
    "--plot",
    "plot_path",
    default="dist.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the density/CDF plot ('' for none).",
)
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Also save the result.")
def eval_cmd(
    expr: str,
    var_specs: tuple[str, ...],
    atoms: int,
    target_w1: float | None,
    quantizer: str,
    max_joint: int,
    plot_path: str,
    json_path: str | None,
) -> None:
    """Evaluate EXPR (for example "x*y + sin(z)") with the inputs given by --var."""
    import warnings

    from rich.console import Console
    from rich.table import Table

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
            fn, *[dd for _, dd in parsed], atoms=atoms, target_w1=target_w1, quantizer=quantizer, max_joint=max_joint
        )
    if isinstance(r, tuple):
        r = r[0]
    con = Console()
    levels = [0.01, 0.05, 0.5, 0.95, 0.99]
    q = r.ppf(levels)
    ql, qh = r.quantile_bounds(levels) if r.cells is not None else ([math.nan] * 5, [math.nan] * 5)
    t = Table(title=f"{expr}")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("certified interval (exact law)" if r.cells is not None else "", justify="right")
    t.add_row("mean", f"{r.mean():.6g}", "")
    t.add_row("std", f"{r.std():.6g}", "")
    for name, v, lo, hi in zip(("1%", "5%", "median", "95%", "99%"), q, ql, qh, strict=True):
        t.add_row(name, f"{v:.6g}", f"[{lo:.6g}, {hi:.6g}]" if r.cells is not None else "")
    t.add_row("atoms", str(r.atoms.size))
    t.add_row(
        "W1 bound" if r.certified else "W1 estimate (QMC, not certified)",
        f"{r.w1_bound if r.certified else r.w1_estimate:.3g}",
    )
    for k, v in sorted(r.bound_terms.items(), key=lambda kv: -kv[1]):
        t.add_row(f"  {k}", f"{v:.3g}")
    con.print(t)
    for w in caught:
        con.print(f"[yellow]warning:[/yellow] {w.message}")
    if plot_path:
        fig = r.plot()
        fig.savefig(plot_path, dpi=100)
        con.print(f"plot written to {plot_path}")
    if json_path:
        r.save(json_path)
        con.print(f"result written to {json_path}")


@group.command(name="demo")
@click.option("--out", "out_dir", default="demo-out/dcg", show_default=True, type=click.Path(file_okay=False))
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
