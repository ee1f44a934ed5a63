"""Magneton-style differential energy debugging for PyTorch (``from opgraph import energy as oe``).

* :func:`diff`: compare two implementations op by op, matched by value; ranked findings with call sites,
  category and the setting that causes the gap.
* :func:`profile`: per-op energy/time profile of one run.
* :func:`record` / :func:`load`: record a run as an :class:`opgraph.graph.Graph` and save it for a later diff.
* :func:`window` / :func:`begin_window` / :func:`end_window`: energy and time of named windows in a running job
  (Zeus, NVML or RAPL where present, modelled otherwise); :func:`compare_windows` compares two saved runs.

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
    "WindowMonitor",
    "begin_window",
    "compare_windows",
    "configured",
    "diff",
    "end_window",
    "load",
    "load_windows",
    "monitor",
    "profile",
    "record",
    "record_fx",
    "window",
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
    if name in ("window", "begin_window", "end_window", "monitor", "compare_windows", "load_windows", "WindowMonitor"):
        from opgraph.energy import windows as window_mod

        return getattr(window_mod, name)
    if name in ("DiffReport", "Finding"):
        from opgraph.energy import result

        return getattr(result, name)
    raise AttributeError(f"module 'opgraph.energy' has no attribute {name!r}")
