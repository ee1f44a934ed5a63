"""CRC-32 check of zip-format files (torch checkpoints, npz) before they are parsed.

``torch.load`` does not verify the CRC-32 of a checkpoint's members, so a flipped byte in a tensor loads as
other weights, and one in the pickled config as another key (measured with ``tests/robustness``: a silent wrong
load of an ffa run and a ``TypeError`` from a perf checkpoint). Reading every member once through
:mod:`zipfile` checks them all.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

from opgraph.errors import OpgraphError


def verify_zip(path: str | os.PathLike[str], *, what: str, error: type[OpgraphError] = OpgraphError) -> None:
    """Raise ``error`` if a zip-format file has a corrupt member; do nothing for a missing or non-zip file.

    Args:
        path: The file.
        what: How the message names the file (``"--model"``, ``"run checkpoint"``).
        error: The :class:`OpgraphError` subclass to raise.

    Raises:
        OpgraphError: (``error``) a member's CRC-32 or header does not match: the file was damaged.
    """
    p = Path(path)
    if not p.is_file():
        return
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return  # not a zip archive at all: the format's own loader says what is wrong with it
    try:
        with zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError) as exc:
        raise error(f"{what} {p}: damaged ({type(exc).__name__}: {exc}); restore or re-create the file") from None
    if bad is not None:
        raise error(f"{what} {p}: member {bad!r} is damaged (CRC-32 mismatch); restore or re-create the file")
