"""The ``opgraph`` command line: ``opgraph --version``, ``demo``, ``report`` and one group per system."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import click

from opgraph import __version__
from opgraph._base.cli_options import UserError, load_callable, out_option, user_error_line
from opgraph.errors import OpgraphError

__all__ = ["cli", "load_callable", "main"]

SYSTEM_GROUPS = ("dcg", "perf", "energy", "ffa")
# Old group names that still work but are not listed in --help: `opgraph dist` is `opgraph dcg`.
HIDDEN_ALIASES = {"dist": "dcg"}


class _Root(click.Group):
    """Adds the systems' command groups lazily, so ``opgraph --help`` does not import torch."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._available()})

    def _available(self) -> list[str]:
        import importlib.util

        found = []
        for name in SYSTEM_GROUPS:
            try:
                if importlib.util.find_spec(f"opgraph.{name}.cli") is not None:
                    found.append(name)
            except ModuleNotFoundError:
                continue
        return found

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a user error (see :func:`user_error_line`) becomes one line and exit status 2."""
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as exc:
            line = user_error_line(exc, HIDDEN_ALIASES.get(ctx.invoked_subcommand or "", ctx.invoked_subcommand))
            if line is None or (isinstance(ctx.obj, dict) and ctx.obj.get("debug")):
                raise
            raise UserError(line) from exc

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd_name = HIDDEN_ALIASES.get(cmd_name, cmd_name)
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in SYSTEM_GROUPS:
            return cmd
        try:
            mod = importlib.import_module(f"opgraph.{cmd_name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"opgraph.{cmd_name}"):
                return None
            extra = cmd_name if cmd_name in ("perf", "energy", "ffa") else "all"
            raise OpgraphError(
                f"'opgraph {cmd_name}' needs the optional dependency {exc.name!r}: pip install 'opgraph[{extra}]'"
            ) from exc
        group = getattr(mod, "group", None)
        return group if isinstance(group, click.Command) else None


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="opgraph")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, log_level: str) -> None:
    """opgraph: computational graphs, and several ways to interpret them."""
    from rich.logging import RichHandler

    logging.basicConfig(level=log_level, format="%(message)s", handlers=[RichHandler(show_path=False)])
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.command()
@out_option(default="demo-out", dest="out_dir")
@click.option("--full", is_flag=True, help="Longer demos (default: quick ones, about a minute each at most).")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(SYSTEM_GROUPS),
    help="Run only these systems' demos (repeatable).",
)
def demo(out_dir: str, full: bool, only: tuple[str, ...]) -> None:
    """Run every available system's demo on built-in data and write OUT/index.html."""
    from opgraph.demo import SYSTEMS, run_demo

    systems = only or SYSTEMS
    click.echo(f"running the graph-core demo and {len(systems)} system demos ({', '.join(systems)})", err=True)
    page = run_demo(out_dir, quick=not full, only=systems, progress=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {page}")


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
def report(out_dir: str) -> None:
    """Rebuild OUT_DIR/index.html from the report.json and figures saved beside it."""
    from opgraph.report import rebuild_report

    if not Path(out_dir).is_dir():
        raise OpgraphError(f"report: directory {out_dir!r} does not exist; pass the --out of 'opgraph demo'")
    click.echo(f"wrote {rebuild_report(out_dir)}")


@cli.command(name="graph")
@click.argument("target")
@click.option("--png", type=click.Path(dir_okay=False), help="Also draw the graph to this PNG file.")
def graph_cmd(target: str, png: str | None) -> None:
    """Trace TARGET ('module.py:function' or an expression such as 'x*y + sin(z)') and print its graph."""
    g = _trace_target(target)
    click.echo(repr(g))
    click.echo(f"dominator path of the output: {list(g.dominator_path())}")
    click.echo(f"separators: {sorted(g.separators())}")
    if png:
        g.draw(png)
        click.echo(f"wrote {png}")


def _trace_target(target: str) -> Any:
    from opgraph.graph import trace
    from opgraph.graph.expr import compile_expression

    if ":" in target and target.split(":", 1)[0].endswith(".py"):
        path, func = target.split(":", 1)
        fn = load_callable(path, func)
        return trace(fn)
    fn, names = compile_expression(target)
    return trace(fn, *names)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; every user error prints one line and exits 2 (``--debug`` shows the traceback).

    User errors are those :func:`opgraph._base.cli_options.user_error_line` names: :class:`OpgraphError`,
    :class:`EOFError` (an empty or truncated input), a missing optional extra, an unreadable file, non-UTF-8 text,
    and click's usage errors. Ctrl-C prints "aborted" and exits 130. Anything else is a bug and keeps its traceback.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="opgraph", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        line = user_error_line(exc.__cause__) if isinstance(exc.__cause__, EOFError) else None
        if line is None:  # Ctrl-C
            click.echo("aborted", err=True)
            sys.exit(130)
        if debug:
            raise exc.__cause__ from None
        UserError(line).show()
        sys.exit(UserError.exit_code)
    except click.ClickException as exc:
        if debug:
            raise
        exc.show()  # UserError: "error: <line>"; click's usage errors keep click's format
        sys.exit(exc.exit_code)
    except Exception as exc:
        line = user_error_line(exc)
        if debug or line is None:
            raise
        UserError(line).show()
        sys.exit(UserError.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
