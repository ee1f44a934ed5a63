"""One command-line convention for every opgraph command: shared options, user-error lines, ``file.py:name``.

The systems' click groups import their ``--out``/``--json``/``--seed``/``--executor`` options from here, and the
``opgraph`` entry point (:mod:`opgraph.cli`) turns every user error into one line and exit status 2 with
:func:`user_error_line`. Lives below the systems so that each of them can use it without importing the top-level
CLI.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from opgraph._base.errors import MissingExtraError, OpgraphError

F = TypeVar("F", bound=Callable[..., Any])

#: Top-level module of each optional dependency -> the opgraph extra that installs it.
EXTRAS: dict[str, str] = {
    "torch": "torch",
    "torchvision": "torch",
    "torch_geometric": "perf",
    "torch_scatter": "perf",
    "lightgbm": "perf",
    "tvm": "tvm",
    "pynvml": "energy",
    "dask": "dask",
    "distributed": "dask",
    "sklearn": "ffa",
    "openturns": "bench",
    "uncertainties": "bench",
    "playwright": "dev",
    "hypothesis": "dev",
}

#: The exit status of a user error (click's own usage errors use it too).
USER_ERROR_EXIT = 2


def missing_extra(exc: ImportError, system: str | None = None) -> MissingExtraError | None:
    """The :class:`MissingExtraError` for an import of an optional dependency that failed, else ``None``.

    Args:
        exc: The import error.
        system: The system whose command failed (``"perf"``); its own extra is named when it is one
            (``opgraph[perf]`` brings torch too), else the dependency's.
    """
    name = (getattr(exc, "name", None) or "").split(".")[0]
    extra = EXTRAS.get(name)
    if not isinstance(exc, ModuleNotFoundError) or extra is None:
        return None
    if system in SYSTEM_EXTRAS and extra not in ("dask", "bench", "dev", "tvm"):
        extra = system
    return MissingExtraError(f"this needs {name}, which is not installed: pip install 'opgraph[{extra}]'")


#: Systems that have an extra of their own (``dcg`` needs none).
SYSTEM_EXTRAS = ("perf", "energy", "ffa")


def user_error_line(exc: BaseException, system: str | None = None) -> str | None:
    """One line describing a user error, or ``None`` when ``exc`` is a bug (which keeps its traceback).

    User errors are: every :class:`OpgraphError`; :class:`EOFError` (an empty or truncated input); a missing
    optional dependency (named with the ``pip install 'opgraph[EXTRA]'`` that provides it); an :class:`OSError`
    on a file (missing, unreadable, a folder); and text that is not UTF-8. ``system`` (``"perf"``) names the
    command's system, whose extra is then suggested for a missing dependency.
    """
    if isinstance(exc, OpgraphError):
        text = str(exc)
    elif isinstance(exc, EOFError):
        text = f"unexpected end of input: an empty or truncated file? ({exc or 'EOF'})"
    elif isinstance(exc, ImportError):
        extra = missing_extra(exc, system)
        if extra is None:
            return None
        text = str(extra)
    elif isinstance(exc, OSError):
        if exc.filename is not None:
            text = f"{exc.filename}: {exc.strerror or type(exc).__name__}"
        else:
            text = f"{exc.strerror or exc}"
    elif isinstance(exc, UnicodeDecodeError):
        text = f"a file is not UTF-8 text ({exc.reason} at byte {exc.start}); pass the file the command expects"
    else:
        return None
    return " ".join(text.split()) or type(exc).__name__


class UserError(click.ClickException):
    """A user error as click sees it: printed as ``error: <one line>``, exit status 2."""

    exit_code = USER_ERROR_EXIT

    def show(self, file: Any = None) -> None:  # noqa: D102
        click.echo(f"error: {self.message}", err=True, file=file)


# -- shared options ---------------------------------------------------------------------------------------------
def out_option(
    *,
    kind: str = "dir",
    default: str | None = None,
    required: bool = False,
    help: str | None = None,
    dest: str | None = None,
) -> Callable[[F], F]:
    """``--out PATH``: where a command writes (``kind="dir"``: a folder, ``"file"``: one file); a :class:`Path`."""
    if kind not in ("dir", "file"):
        raise ValueError(f"out_option: kind must be 'dir' or 'file', got {kind!r}")
    decls = ["--out", dest] if dest else ["--out"]
    return click.option(
        *decls,
        type=click.Path(file_okay=kind == "file", dir_okay=kind == "dir", path_type=Path),
        default=default,
        required=required,
        show_default=default is not None,
        help=help or ("Output folder." if kind == "dir" else "Output file."),
    )


def json_option(*, help: str | None = None, dest: str = "json_path") -> Callable[[F], F]:
    """``--json FILE``: also write the result as strict JSON to FILE (a :class:`Path`, or ``None``)."""
    return click.option(
        "--json",
        dest,
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=help or "Also write the result as JSON to this file.",
    )


def seed_option(*, multiple: bool = False, default: int = 0, dest: str | None = None) -> Callable[[F], F]:
    """``--seed N``: the run's random seed (``multiple=True``: repeatable, a tuple of seeds)."""
    decls = ["--seed", dest] if dest else ["--seed"]
    return click.option(
        *decls,
        type=int,
        multiple=multiple,
        default=(default,) if multiple else default,
        show_default=True,
        help="Random seed (repeat for several)." if multiple else "Random seed.",
    )


def executor_option(*, default: str = "serial") -> Callable[[F], F]:
    """``--executor SPEC``: ``serial``, ``process``, ``dask`` or ``dask://host:port`` (see :mod:`opgraph.parallel`)."""
    return click.option(
        "--executor", default=default, show_default=True, help="serial | process | dask | dask://host:port"
    )


# -- file.py:name -------------------------------------------------------------------------------------------------
def load_callable(path: str | os.PathLike[str], name: str) -> Any:
    """Import ``name`` from the Python file ``path`` (``opgraph ... file.py:name``).

    This runs the file: it is the user's own code, named on the command line.

    Raises:
        OpgraphError: the file is missing, is not importable, or has no such attribute.
    """
    file = Path(path)
    if not file.is_file():
        raise OpgraphError(f"file {os.fspath(path)!r} not found (expected 'path/to/file.py:function')")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    if spec is None or spec.loader is None:
        raise OpgraphError(f"cannot import {os.fspath(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise OpgraphError(f"{os.fspath(path)}:{exc.lineno}: syntax error: {exc.msg}") from exc
    finally:
        sys.path.pop(0)
    if not hasattr(module, name):
        raise OpgraphError(f"{os.fspath(path)} has no attribute {name!r}")
    return getattr(module, name)
