"""Magneton-style differential energy debugging for PyTorch (``from opgraph import energy as oe``).

* :func:`diff`: compare two implementations op by op, matched by value; ranked findings with call sites,
  category and the setting that causes the gap.
* :func:`profile`: per-op energy/time profile of one run.
* :func:`record` / :func:`load`: record a run as an :class:`opgraph.graph.Graph` and save it for a later diff.

Energy on a machine without a power sensor is *modelled* (``backend="model"``) and labelled estimated everywhere.
torch is imported only when these functions run.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DiffReport",
    "Finding",
    "Profile",
    "Run",
    "configured",
    "diff",
    "load",
    "profile",
    "record",
    "record_fx",
]


def __getattr__(name: str) -> Any:
    if name in ("record", "record_fx", "load", "Run", "configured"):
        from opgraph.energy import recorder

        return getattr(recorder, name)
    if name == "diff":
        from opgraph.energy.differ import diff

        return diff
    if name in ("profile", "Profile"):
        from opgraph.energy import profiler as profile_mod

        return getattr(profile_mod, name)
    if name in ("DiffReport", "Finding"):
        from opgraph.energy import result

        return getattr(result, name)
    raise AttributeError(f"module 'opgraph.energy' has no attribute {name!r}")
