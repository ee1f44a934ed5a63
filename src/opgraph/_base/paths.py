"""Confining file names read from or written to a folder: no ``..``, no absolute paths, no links out of it."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from opgraph._base.errors import UnsafeFileError

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_name(name: object, what: str) -> str:
    """Return ``name`` if it is a plain file-name part (letters, digits, ``_ . -``, not starting with a dot).

    Args:
        name: The candidate (a section id, a figure name).
        what: How the message names it (``"section id"``).

    Raises:
        UnsafeFileError: ``name`` is empty, too long, has a path separator, starts with a dot or is not a str.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UnsafeFileError(
            f"{what} {name!r} cannot be used as a file name: use 1-128 letters, digits, '_', '.', '-' "
            "(not starting with '.')"
        )
    return name


def inside(folder: str | os.PathLike[str], rel: object, what: str) -> Path:
    """Resolve the relative path ``rel`` inside ``folder``; refuse anything that would leave it.

    Absolute paths, ``..`` parts, backslashes, and symbolic links that point out of ``folder`` are refused.

    Args:
        folder: The folder everything must stay in.
        rel: A relative POSIX path read from a file (e.g. ``"figures/dcg/cdf.png"``).
        what: How the message names the path (``"figure path in report.json"``).

    Returns:
        The path inside ``folder`` (not resolved, so messages show what the user wrote).

    Raises:
        UnsafeFileError: ``rel`` is not a str, is absolute, contains ``..`` or resolves outside ``folder``.
    """
    base = Path(folder)
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        raise UnsafeFileError(f"{what} {rel!r} is not a relative path inside {base}; refused")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts:
        raise UnsafeFileError(f"{what} {rel!r} points outside {base}; only paths inside the folder are read")
    path = base.joinpath(*pure.parts)
    if not path.resolve().is_relative_to(base.resolve()):
        raise UnsafeFileError(f"{what} {rel!r} is a link out of {base}; only files inside the folder are read")
    return path
