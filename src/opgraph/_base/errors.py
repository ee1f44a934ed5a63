"""The base of every error a user can act on.

:class:`OpgraphError` is the base of every error that a user can act on: the CLI prints its message on one line
and exits with status 2. It lives in the bottom layer so that every other layer can raise it;
:mod:`opgraph.errors` and :mod:`opgraph.graph` re-export it.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class OpgraphError(Exception):
    """An error caused by the user's input, with a message that says what to change."""


class UnsafeFileError(OpgraphError):
    """A file would run code when loaded (a pickle of arbitrary objects), or names a path outside its folder."""


class MissingExtraError(OpgraphError):
    """An optional dependency is not installed; the message names the ``pip install 'opgraph[EXTRA]'`` to run."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the opgraph extra that provides it.

    Args:
        module: Importable module name, e.g. ``"torch_geometric"``.
        extra: The opgraph extra that provides it, e.g. ``"perf"``.

    Returns:
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"{module} is not installed; install it with: pip install 'opgraph[{extra}]'") from exc
