"""Errors of :mod:`opgraph.ffa` (all are :class:`opgraph.errors.OpgraphError`, so the CLI prints one line)."""

from __future__ import annotations

from opgraph.errors import OpgraphError

__all__ = ["DataNotFoundError", "FFAError", "MirrorError"]


class FFAError(OpgraphError):
    """A bad argument to an :mod:`opgraph.ffa` function; the message names it and the fix."""


class MirrorError(FFAError):
    """An encoder contains a layer or operation that :func:`opgraph.ffa.mirror` cannot mirror."""


class DataNotFoundError(FFAError):
    """A data set is not on disk; the message says where to put the files."""
