"""Loading PyTorch checkpoints without running code from the file.

``torch.load`` with the weights-only check turned off unpickles arbitrary Python objects, and unpickling can call any
function the file names: a checkpoint from someone else is a program. Every opgraph checkpoint therefore holds
only what ``weights_only=True`` admits (tensors, and dicts/lists/tuples of str, int, float, bool and None);
configurations are stored as plain dicts. :func:`load_checkpoint` is the one place that reads them.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from opgraph._base.errors import OpgraphError


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    what: str = "checkpoint",
    map_location: Any = "cpu",
    error: type[OpgraphError] = OpgraphError,
) -> Any:
    """Read a ``torch.save`` file with ``weights_only=True``; refuse anything that would need full unpickling.

    Args:
        path: The file.
        what: How the message names the file (``"--model"``, ``"run folder checkpoint"``).
        map_location: Passed to :func:`torch.load`.
        error: The :class:`OpgraphError` subclass raised for an unreadable file (a system's own error class).

    Returns:
        The loaded object (tensors and plain containers only).

    Raises:
        OpgraphError: (``error``) the file is missing, truncated or not a torch file; or it holds Python
            objects other than tensors and plain data (an old opgraph checkpoint, or a file crafted to run
            code), which is refused without executing anything from it.
    """
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise error(f"{what} {os.fspath(path)}: no such file") from exc
    except pickle.UnpicklingError as exc:
        # torch raises UnpicklingError("Weights only load failed ... Unsupported global ...") for a class or
        # function it does not admit, and the same "Weights only" text for garbage ("Unsupported operand").
        if "GLOBAL" in str(exc):  # "Unsupported global: GLOBAL x.y", "unsupported GLOBAL posix.mkdir"
            raise error(
                f"{what} {os.fspath(path)}: refused, it holds Python objects whose loading could run code "
                "(an old-format opgraph checkpoint or a foreign file); re-save it with this opgraph version"
            ) from exc
        raise error(f"{what} {os.fspath(path)}: not a readable checkpoint ({_first_line(exc)})") from exc
    except Exception as exc:  # noqa: BLE001 - zip/EOF/runtime errors of a corrupt file are all "unreadable"
        raise error(f"{what} {os.fspath(path)}: not a readable checkpoint ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
