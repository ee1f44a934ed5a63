"""One JSON policy for every file opgraph writes: strict JSON (RFC 8259), which any parser reads.

Python's ``json`` writes ``NaN``, ``Infinity`` and ``-Infinity`` by default, which are not JSON (browsers,
``jq`` and most other languages reject the file). opgraph's policy:

* a non-finite float is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``: still strict JSON,
  and lossless, because exactly these strings are what Python's ``float()`` and JavaScript's ``Number()`` turn
  back into the non-finite values (a reader that wants numbers converts with ``float``; see :func:`as_float`);
* NumPy arrays become lists and NumPy scalars Python numbers; tuples, sets and frozensets become lists; paths
  become strings; dataclasses become dicts; any other object becomes its ``str()``;
* ``json.dumps(..., allow_nan=False)`` then guarantees the output is strict JSON.

:func:`dumps` / :func:`write_json` apply it; :func:`read_json` reads a file with a one-line error for a bad one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path, PurePath
from typing import Any

from opgraph._base.errors import OpgraphError
from opgraph._base.fileio import atomic_write

_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def as_float(value: Any) -> float | None:
    """A number read from opgraph JSON as a float (``"NaN"``/``"Infinity"``/``"-Infinity"`` included; None stays)."""
    return None if value is None else float(value)


def to_jsonable(value: Any) -> Any:
    """``value`` with every part turned into strict-JSON types (see the module docstring for the policy)."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _NONFINITE[str(value)]
    if isinstance(value, dict):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    tolist = getattr(value, "tolist", None)  # NumPy arrays and scalars, torch tensors
    if callable(tolist) and type(value).__module__.split(".")[0] in ("numpy", "torch"):
        return to_jsonable(tolist())
    return str(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float) and not math.isfinite(key):
        return str(key)
    plain = to_jsonable(key)
    return plain if isinstance(plain, str) else json.dumps(plain)


def dumps(value: Any, *, indent: int | None = 1, sort_keys: bool = False) -> str:
    """Serialise ``value`` as strict JSON (non-finite floats -> ``"NaN"``/``"Infinity"``; see the module docstring)."""
    return json.dumps(to_jsonable(value), indent=indent, sort_keys=sort_keys, allow_nan=False)


def write_json(path: str | os.PathLike[str], value: Any, *, indent: int | None = 1) -> Path:
    """Write ``value`` to ``path`` as strict JSON, atomically; returns the path."""
    return atomic_write(path, dumps(value, indent=indent) + "\n")


def read_json(
    path: str | os.PathLike[str], *, what: str = "JSON file", error: type[OpgraphError] = OpgraphError
) -> Any:
    """Read a JSON file; a missing, non-UTF-8 or malformed file raises ``error`` with one line.

    The bare ``NaN``/``Infinity`` tokens written by older opgraph versions are still accepted (as floats).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(f"{what} {p}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{what} {p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise error(f"{what} {p}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise error(f"{what} {p}: not valid JSON ({exc}); re-run the job that wrote it") from exc
