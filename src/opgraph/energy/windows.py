"""Energy and time of named windows in a running job (``with oe.window("step"):``), after Zeus's monitor API.

A :class:`WindowMonitor` reads a meter at the start and end of each window: Zeus's ``ZeusMonitor`` where the
``zeus`` package is importable (optional, never required), else the NVIDIA energy counter (NVML) for CUDA work,
else the Linux RAPL counters, else a **model** (``4 W per busy core x CPU-seconds``) that is labelled estimated
in every window and file. Windows nest and may overlap (they are keyed by name). Save the windows of two
configurations of a training script with :meth:`WindowMonitor.save` and compare them with
:func:`compare_windows`::

    from opgraph import energy as oe
    for batch in loader:
        with oe.window("step"):
            train_step(batch)
    oe.monitor().save("runs/bf16.json")
    ...
    print(oe.compare_windows("runs/fp32.json", "runs/bf16.json"))
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opgraph.energy.backends import MODEL_CONSTANTS, NvmlBackend, RaplBackend
from opgraph.energy.errors import BackendError, EnergyError

log = logging.getLogger(__name__)

SOURCES = ("auto", "zeus", "nvml", "rapl", "model")
FORMAT = "opgraph.energy.windows/1"


@dataclass(frozen=True)
class Window:
    """One measured window.

    Attributes:
        name: The window's name.
        start_unix_s: Wall-clock start (seconds since the epoch).
        wall_s: Duration, seconds.
        cpu_s: Process CPU time during the window, seconds (all threads).
        energy_j: Energy, joules (None where the meter gave none).
        source: The meter: ``"zeus"``, ``"nvml"``, ``"rapl"`` or ``"model"``.
        estimated: True when the energy is modelled, not measured.
    """

    name: str
    start_unix_s: float
    wall_s: float
    cpu_s: float
    energy_j: float | None
    source: str
    estimated: bool


class _Meter:
    """Reads a cumulative quantity at window boundaries: ``begin(name) -> state``, ``end(name, state) -> J``."""

    name = "model"
    estimated = True

    def begin(self, name: str) -> Any:
        return None

    def end(self, name: str, state: Any, wall_s: float, cpu_s: float) -> float | None:
        c = MODEL_CONSTANTS
        return c["p_core_w"] * cpu_s + c["p_static_w"] * wall_s


class _ZeusMeter(_Meter):
    """Zeus's ``ZeusMonitor`` (GPU, CPU and DRAM energy where Zeus can read them)."""

    name = "zeus"
    estimated = False

    def __init__(self, zeus_monitor: Any) -> None:
        self.monitor = zeus_monitor.ZeusMonitor()

    def begin(self, name: str) -> Any:
        self.monitor.begin_window(f"opgraph:{name}")
        return None

    def end(self, name: str, state: Any, wall_s: float, cpu_s: float) -> float | None:
        m = self.monitor.end_window(f"opgraph:{name}")
        total = getattr(m, "total_energy", None)
        if total is None or (not getattr(m, "gpu_energy", None) and getattr(m, "cpu_energy", None) is None):
            return None  # Zeus found no meter: the monitor fills in the model and says so
        return float(total)


class _CounterMeter(_Meter):
    """A cumulative energy counter of one of the diff backends (NVML total energy or RAPL)."""

    estimated = False

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = backend.name

    def begin(self, name: str) -> Any:
        self.backend.sync()
        return self.backend._begin()

    def end(self, name: str, state: Any, wall_s: float, cpu_s: float) -> float | None:
        self.backend.sync()
        return float(self.backend._end(state, wall_s, cpu_s, 0.0))


def _meter(source: str, device: str) -> tuple[_Meter, str]:
    """The meter for ``source`` and a note on why it was chosen (or what fell back)."""
    if source not in SOURCES:
        raise EnergyError(f"monitor(source={source!r}): use one of {', '.join(SOURCES)}")
    notes = []
    if source in ("auto", "zeus"):
        try:
            zm = importlib.import_module("zeus.monitor")
            return _ZeusMeter(zm), "zeus importable: ZeusMonitor"
        except Exception as exc:  # noqa: BLE001  (missing package, or Zeus failing to open a meter)
            if source == "zeus":
                raise EnergyError(f"monitor(source='zeus'): zeus is not usable ({exc}); pip install zeus") from exc
            notes.append("zeus not importable")
    if source in ("nvml",) or (source == "auto" and device.startswith("cuda")):
        try:
            return _CounterMeter(NvmlBackend(subtract_idle=False)), "; ".join([*notes, "NVML energy counter"])
        except BackendError as exc:
            if source == "nvml":
                raise EnergyError(f"monitor(source='nvml'): {exc}") from exc
            notes.append("nvml unavailable")
    if source in ("rapl",) or (source == "auto" and not os.environ.get("OPGRAPH_ENERGY_NO_RAPL")):
        try:
            return _CounterMeter(RaplBackend()), "; ".join([*notes, "RAPL counters (whole socket)"])
        except BackendError as exc:
            if source == "rapl":
                raise EnergyError(f"monitor(source='rapl'): {exc}") from exc
            notes.append("rapl unavailable")
    return _Meter(), "; ".join([*notes, "no power meter: energy is MODELLED (4 W per busy core x CPU-seconds)"])


@dataclass
class WindowMonitor:
    """Measures named windows of a running job.

    Args:
        source: ``"auto"`` (Zeus, then NVML for CUDA work, then RAPL, then the model), or one of them by name.
        device: ``"cpu"`` or ``"cuda"``: where the measured work runs (CUDA is synchronised at boundaries).
        label: A name for this configuration (stored in the saved file).
    """

    source: str = "auto"
    device: str = "cpu"
    label: str = ""
    windows: list[Window] = field(default_factory=list)
    note: str = ""

    def __post_init__(self) -> None:
        self._meter, self.note = _meter(self.source, self.device)
        self._open: dict[str, tuple[float, float, float, Any]] = {}

    @property
    def meter(self) -> str:
        """The meter in use (``"zeus"``, ``"nvml"``, ``"rapl"`` or ``"model"``)."""
        return self._meter.name

    def begin_window(self, name: str) -> None:
        """Start window ``name`` (names of open windows must be unique)."""
        if name in self._open:
            raise EnergyError(f"begin_window({name!r}): that window is already open; end it first")
        state = self._meter.begin(name)
        self._open[name] = (time.time(), time.perf_counter(), time.process_time(), state)

    def end_window(self, name: str) -> Window:
        """End window ``name`` and return its measurement (also kept in :attr:`windows`)."""
        if name not in self._open:
            raise EnergyError(f"end_window({name!r}): no open window of that name; call begin_window first")
        start_unix, t0, c0, state = self._open.pop(name)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        energy = self._meter.end(name, state, wall, cpu)
        source, estimated = self._meter.name, self._meter.estimated
        if energy is None:  # a meter without an energy reading (Zeus without a sensor): fall back to the model
            energy = _Meter().end(name, None, wall, cpu)
            source, estimated = f"{source}+model", True
        w = Window(name, start_unix, wall, cpu, energy, source, estimated)
        self.windows.append(w)
        return w

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[None]:
        """``with monitor.window("step"): ...``: measure the block as window ``name``."""
        self.begin_window(name)
        try:
            yield
        finally:
            self.end_window(name)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per window name: count, median wall time (s), median energy (J), and whether it is estimated."""
        return _summary([asdict(w) for w in self.windows])

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what :meth:`save` writes)."""
        from opgraph.energy.settings import snapshot

        return {
            "format": FORMAT,
            "label": self.label,
            "meter": self.meter,
            "note": self.note,
            "estimated": any(w.estimated for w in self.windows) or self._meter.estimated,
            "settings": snapshot(),
            "windows": [asdict(w) for w in self.windows],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the windows to a JSON file (atomically)."""
        from opgraph._base.fileio import atomic_write

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, json.dumps(self.to_dict(), indent=1))
        return out

    def __repr__(self) -> str:
        est = " (energy MODELLED)" if self._meter.estimated else ""
        return f"WindowMonitor({self.meter}{est}, {len(self.windows)} windows, open={list(self._open)})"


def _summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    import statistics

    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["name"] for r in rows):
        mine = [r for r in rows if r["name"] == name]
        energies = [r["energy_j"] for r in mine if r["energy_j"] is not None]
        out[name] = {
            "count": len(mine),
            "wall_s": statistics.median(r["wall_s"] for r in mine),
            "energy_j": statistics.median(energies) if energies else None,
            "estimated": any(r["estimated"] for r in mine),
            "source": sorted({r["source"] for r in mine}),
        }
    return out


def load_windows(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by :meth:`WindowMonitor.save`."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EnergyError(f"load_windows({str(path)!r}): not a readable windows file ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("windows"), list):
        raise EnergyError(f"load_windows({str(path)!r}): not a windows file (format {FORMAT} expected)")
    keys = {f for f in Window.__dataclass_fields__}
    for w in data["windows"]:
        if not isinstance(w, dict) or not keys <= set(w):
            raise EnergyError(f"load_windows({str(path)!r}): a window lacks fields {sorted(keys)}")
    return data


def compare_windows(a: Any, b: Any, *, seed: int = 0, n_boot: int = 2000) -> list[dict[str, Any]]:
    """Compare the windows of two saved runs (or monitors), name by name.

    Args:
        a: A path, a loaded dict or a :class:`WindowMonitor` (configuration A).
        b: The same for configuration B.
        seed: Seeds the bootstrap.
        n_boot: Bootstrap resamples.

    Returns:
        One row per window name present in both: counts, median wall time and energy of each side, the ratios
        A/B of the medians with 95% bootstrap intervals (each side resampled on its own), and ``estimated``
        (True when either side's energy is modelled: then the energy ratio says no more than the CPU time).
    """
    import numpy as np

    da, db = (_as_data(x) for x in (a, b))
    rng = np.random.default_rng(seed)
    rows = []
    names_b = {w["name"] for w in db["windows"]}
    for name in dict.fromkeys(w["name"] for w in da["windows"]):
        if name not in names_b:
            continue
        wa = [w for w in da["windows"] if w["name"] == name]
        wb = [w for w in db["windows"] if w["name"] == name]
        row: dict[str, Any] = {"name": name, "count_a": len(wa), "count_b": len(wb)}
        for key in ("wall_s", "energy_j"):
            xa = np.asarray([w[key] for w in wa if w[key] is not None], dtype=float)
            xb = np.asarray([w[key] for w in wb if w[key] is not None], dtype=float)
            if xa.size == 0 or xb.size == 0:
                row[f"{key}_ratio"], row[f"{key}_ci"] = None, None
                continue
            ma, mb = float(np.median(xa)), float(np.median(xb))
            row[f"{key}_a"], row[f"{key}_b"] = ma, mb
            ra = np.median(xa[rng.integers(0, xa.size, (n_boot, xa.size))], axis=1)
            rb = np.median(xb[rng.integers(0, xb.size, (n_boot, xb.size))], axis=1)
            boot = ra / np.where(rb > 0, rb, math.nan)
            lo, hi = np.nanpercentile(boot, [2.5, 97.5]) if np.isfinite(boot).any() else (math.nan, math.nan)
            row[f"{key}_ratio"] = ma / mb if mb > 0 else math.inf
            row[f"{key}_ci"] = [float(lo), float(hi)]
        row["estimated"] = any(w["estimated"] for w in wa + wb)
        rows.append(row)
    return rows


def _as_data(x: Any) -> dict[str, Any]:
    if isinstance(x, WindowMonitor):
        return x.to_dict()
    if isinstance(x, dict):
        return x
    return load_windows(x)


_DEFAULT: WindowMonitor | None = None


def monitor(source: str | None = None, *, device: str = "cpu", label: str = "") -> WindowMonitor:
    """The process-wide monitor used by :func:`window`, :func:`begin_window` and :func:`end_window`.

    Passing ``source`` (or a different ``device``) replaces it with a new, empty one.
    """
    global _DEFAULT
    if _DEFAULT is None or source is not None or device != _DEFAULT.device:
        _DEFAULT = WindowMonitor(source or "auto", device, label)
    elif label:
        _DEFAULT.label = label
    return _DEFAULT


def begin_window(name: str) -> None:
    """Start window ``name`` on the process-wide monitor."""
    monitor().begin_window(name)


def end_window(name: str) -> Window:
    """End window ``name`` on the process-wide monitor and return its measurement."""
    return monitor().end_window(name)


def window(name: str) -> contextlib.AbstractContextManager[None]:
    """``with oe.window("step"): ...`` on the process-wide monitor."""
    return monitor().window(name)
