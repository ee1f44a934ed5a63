"""Where a number was measured: one description of the machine and software, shared by every system.

Benchmarks, reports and saved datasets stamp their outputs with :func:`machine` (or the one-line
:func:`machine_line`), so numbers from different machines are never compared unknowingly.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import sys
from typing import Any


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else ``platform.processor()`` or the machine type)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict[str, Any]:
    """The machine and software behind a measurement, as a JSON-ready dict.

    Keys: ``cpu`` (model name), ``cores`` (logical CPUs usable by this process), ``arch``, ``os``, ``python``,
    ``numpy``, ``torch`` (``None`` when not installed or not yet imported), ``opgraph``, ``threads`` (the
    ``OMP_NUM_THREADS`` setting or ``None``) and ``date`` (UTC, ISO 8601).
    """
    from opgraph import __version__

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    numpy = sys.modules.get("numpy")
    torch = sys.modules.get("torch")
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "arch": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": getattr(numpy, "__version__", None),
        "torch": getattr(torch, "__version__", None),
        "opgraph": __version__,
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def machine_line() -> str:
    """:func:`machine` in one line for a page footer or a benchmark table header."""
    m = machine()
    return f"{m['cpu']} ({m['cores']} cores, {m['arch']}) · {m['os']} · Python {m['python']}"
