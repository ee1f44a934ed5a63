"""Measurement backends behind one interface: ``measure(fn, reps) -> Sample``.

* ``time``: wall-clock and process CPU time only; the cost compared is wall time (no energy at all).
* ``model``: an *estimate*, ``E = P_core x CPU-seconds + e_byte x bytes moved + P_static x wall``, with documented,
  overridable constants. Every number it gives is labelled estimated.
* ``rapl``: Linux powercap package (and DRAM) energy counters, where readable; whole-socket energy.
* ``nvml``: NVIDIA board energy via ``nvmlDeviceGetTotalEnergyConsumption`` (Volta+) or an integrated ~1 kHz
  ``nvmlDeviceGetPowerUsage`` sampler, with idle power subtracted; windows of >= ``min_window_s``.

``select("auto")`` picks nvml (CUDA work and a readable sensor), then rapl, then model, and says why.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opgraph.energy.errors import BackendError

log = logging.getLogger(__name__)

#: Documented constants of the model backend.
#: ``p_core_w``: active power per busy core (CodeCarbon's default for an unknown CPU: 4 W per thread).
#: ``e_byte_j``: energy per byte moved (order-of-magnitude DRAM figure, 15 pJ/B; NOT verified on this machine).
#: ``p_static_w``: static power charged per wall second (0 by default: only the work's own energy is counted).
MODEL_CONSTANTS: dict[str, float] = {"p_core_w": 4.0, "e_byte_j": 15e-12, "p_static_w": 0.0}


@dataclass(frozen=True)
class Sample:
    """One measurement window divided by its repetitions (per-call values).

    Attributes:
        wall_s: Wall time per call.
        cpu_s: Process CPU time per call (all threads).
        energy_j: Energy per call (None for the time backend).
        reps: Calls in the window.
    """

    wall_s: float
    cpu_s: float
    energy_j: float | None
    reps: int
    gross_j: float | None = None

    @property
    def cost(self) -> float:
        """The quantity compared: energy when the backend gives one, else wall time."""
        return self.energy_j if self.energy_j is not None else self.wall_s


@dataclass
class Backend:
    """Base class: subclasses implement :meth:`_energy` around a timed window.

    Attributes:
        name: ``"time"``, ``"model"``, ``"rapl"`` or ``"nvml"``.
        estimated: True when the energy is modelled, not measured.
        min_window_s: Shortest window that gives a usable reading.
        note: Why this backend was chosen / what fell back.
    """

    name: str = "time"
    estimated: bool = False
    min_window_s: float = 0.01
    note: str = ""
    device: str = "cpu"

    @property
    def unit(self) -> str:
        """Unit of :attr:`Sample.cost`."""
        return "s" if self.name == "time" else "J"

    def describe(self) -> dict[str, Any]:
        """JSON-able provenance: name, measured or estimated, constants, notes."""
        return {
            "name": self.name,
            "estimated": self.estimated,
            "unit": self.unit,
            "note": self.note,
            "min_window_s": self.min_window_s,
            "device": self.device,
        }

    def sync(self) -> None:
        """Wait for queued device work (CUDA) so windows are exact."""
        if self.device.startswith("cuda"):
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()

    def _begin(self) -> Any:
        return None

    def _end(self, state: Any, wall_s: float, cpu_s: float, bytes_moved: float) -> float | None:
        return None

    def measure(self, fn: Callable[[], Any], reps: int, *, bytes_per_call: float = 0.0) -> Sample:
        """Run ``fn`` ``reps`` times in one window and return per-call numbers."""
        self.sync()
        state = self._begin()
        c0 = time.process_time()
        t0 = time.perf_counter()
        try:
            for _ in range(reps):
                fn()
            self.sync()
        except BaseException:
            # A raising fn must not leave a power-sampler thread running.
            if isinstance(state, PowerSampler):
                state.stop()
            raise
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        energy = self._end(state, wall, cpu, bytes_per_call * reps)
        gross = getattr(self, "_last_gross", None)
        return Sample(
            wall / reps,
            cpu / reps,
            None if energy is None else energy / reps,
            reps,
            None if gross is None else gross / reps,
        )


@dataclass
class TimeBackend(Backend):
    """Wall and CPU time only; findings carry no energy.

    Wall time is the fastest of ``chunks`` sub-windows (per call), so a window in which the process was
    descheduled on a busy machine does not count; CPU time is the whole window's.
    """

    name: str = "time"
    chunks: int = 4

    def measure(self, fn: Callable[[], Any], reps: int, *, bytes_per_call: float = 0.0) -> Sample:
        """Run ``fn`` ``reps`` times in ``chunks`` sub-windows; wall = fastest sub-window per call."""
        per = max(reps // self.chunks, 1)
        walls = []
        c0 = time.process_time()
        done = 0
        while done < reps:
            n = min(per, reps - done)
            self.sync()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            self.sync()
            walls.append((time.perf_counter() - t0) / n)
            done += n
        cpu = time.process_time() - c0
        return Sample(min(walls), cpu / reps, None, reps)


@dataclass
class ModelBackend(Backend):
    """Estimated energy from CPU-seconds and bytes moved (see :data:`MODEL_CONSTANTS`)."""

    name: str = "model"
    estimated: bool = True
    constants: dict[str, float] = field(default_factory=lambda: dict(MODEL_CONSTANTS))

    def describe(self) -> dict[str, Any]:
        """Provenance including the model's constants."""
        d = super().describe()
        d["constants"] = dict(self.constants)
        d["formula"] = "E = p_core_w * cpu_s + e_byte_j * bytes + p_static_w * wall_s (estimated)"
        return d

    def _end(self, state: Any, wall_s: float, cpu_s: float, bytes_moved: float) -> float:
        c = self.constants
        return c["p_core_w"] * cpu_s + c["e_byte_j"] * bytes_moved + c["p_static_w"] * wall_s


RAPL_ROOT = "/sys/class/powercap"


@dataclass
class RaplBackend(Backend):
    """Package (+DRAM) energy from Linux powercap counters; measures the whole socket."""

    name: str = "rapl"
    min_window_s: float = 0.05
    root: str = RAPL_ROOT
    zones: list[tuple[Path, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.zones:
            self.zones = rapl_zones(self.root)
        if not self.zones:
            raise BackendError(f"rapl: no readable energy_uj under {self.root} (needs powercap and read access)")

    def _read(self) -> list[int]:
        return [int((z / "energy_uj").read_text().strip()) for z, _ in self.zones]

    def _begin(self) -> Any:
        return self._read()

    def _end(self, state: Any, wall_s: float, cpu_s: float, bytes_moved: float) -> float:
        total = 0
        for before, after, (_, max_range) in zip(state, self._read(), self.zones):
            delta = after - before
            if delta < 0:  # the counter wrapped
                delta += max_range
            total += delta
        return total / 1e6


def rapl_zones(root: str = RAPL_ROOT) -> list[tuple[Path, int]]:
    """Readable top-level package zones and their DRAM subzones: ``[(dir, max_energy_range_uj)]``."""
    base = Path(root)
    out = []
    if not base.is_dir():
        return out
    for zone in sorted(base.glob("intel-rapl:*")):
        if zone.name.count(":") != 1:
            continue
        dirs = [zone] + [z for z in sorted(zone.glob("intel-rapl:*:*")) if "dram" in _name(z)]
        for z in dirs:
            try:
                int((z / "energy_uj").read_text().strip())
                max_range = int((z / "max_energy_range_uj").read_text().strip())
            except (OSError, ValueError):
                continue
            out.append((z, max_range))
    return out


def _name(zone: Path) -> str:
    try:
        return (zone / "name").read_text().strip()
    except OSError:
        return ""


class PowerSampler:
    """Background thread polling ``nvmlDeviceGetPowerUsage`` (mW) at ``hz``; integrates to joules."""

    THREAD_NAME = "opgraph-power-sampler"

    def __init__(self, nvml: Any, handle: Any, hz: float = 1000.0) -> None:
        self.nvml, self.handle, self.period = nvml, handle, 1.0 / hz
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling."""
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.THREAD_NAME, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0))
            time.sleep(self.period)

    def stop(self) -> list[tuple[float, float]]:
        """Stop and return ``[(t_s, power_w)]``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.samples.append((time.perf_counter(), self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0))
        return self.samples

    @staticmethod
    def integrate(samples: list[tuple[float, float]]) -> float:
        """Trapezoidal integral of a power curve, joules."""
        return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(samples, samples[1:]))


@dataclass
class NvmlBackend(Backend):
    """NVIDIA GPU energy with idle power subtracted.

    Args:
        nvml: The ``pynvml`` module (injectable for tests).
        index: GPU index.
        min_window_s: Replay each side for at least this long per window (NVML averages over ~0.1-1 s).
        subtract_idle: Subtract ``idle_w x wall`` (idle power measured once at start-up).
    """

    name: str = "nvml"
    min_window_s: float = 1.0
    device: str = "cuda"
    nvml: Any = None
    index: int = 0
    subtract_idle: bool = True
    idle_w: float = 0.0
    use_counter: bool = True
    idle_probe_s: float = 0.5

    def __post_init__(self) -> None:
        if self.nvml is None:
            try:
                import pynvml
            except ImportError as exc:
                raise BackendError("nvml: nvidia-ml-py is not installed (pip install nvidia-ml-py)") from exc
            self.nvml = pynvml
        try:
            self.nvml.nvmlInit()
            self.handle = self.nvml.nvmlDeviceGetHandleByIndex(self.index)
        except Exception as exc:  # noqa: BLE001  (pynvml raises its own NVMLError hierarchy)
            raise BackendError(f"nvml: cannot open GPU {self.index} ({exc})") from exc
        try:
            self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except Exception:  # noqa: BLE001
            self.use_counter = False
            self.note = (self.note + "; " if self.note else "") + "energy counter unsupported: sampling power at 1 kHz"
        if self.subtract_idle:
            self.idle_w = self._idle_power()

    def _idle_power(self) -> float:
        sampler = PowerSampler(self.nvml, self.handle, hz=200.0)
        sampler.start()
        time.sleep(self.idle_probe_s)
        samples = sampler.stop()
        return sum(p for _, p in samples) / max(len(samples), 1)

    def describe(self) -> dict[str, Any]:
        """Provenance including idle power and the method."""
        d = super().describe()
        d["idle_w"] = self.idle_w
        d["method"] = "total-energy counter" if self.use_counter else "1 kHz power sampling"
        try:
            name = self.nvml.nvmlDeviceGetName(self.handle)
            d["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:  # noqa: BLE001
            pass
        return d

    def _begin(self) -> Any:
        if self.use_counter:
            return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        sampler = PowerSampler(self.nvml, self.handle)
        sampler.start()
        return sampler

    def _end(self, state: Any, wall_s: float, cpu_s: float, bytes_moved: float) -> float:
        if self.use_counter:
            energy = (self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) - state) / 1000.0
        else:
            energy = PowerSampler.integrate(state.stop())
        self._last_gross = energy
        if self.subtract_idle:
            energy -= self.idle_w * wall_s
        return energy


BACKENDS = ("auto", "time", "model", "rapl", "nvml")


def select(spec: str | Backend = "auto", *, device: str = "cpu", strict: bool = False, **kwargs: Any) -> Backend:
    """Return a backend by name; ``"auto"`` picks the best available and records why in ``note``.

    Args:
        spec: One of :data:`BACKENDS` or a :class:`Backend` instance.
        device: ``"cpu"`` or ``"cuda"``: where the measured work runs.
        strict: Raise instead of falling back when the requested sensor (``rapl``, ``nvml``) is unreadable.
        **kwargs: Passed to the backend's constructor (e.g. ``min_window_s``, ``constants``).

    Raises:
        BackendError: The name is unknown, or (with ``strict``) the requested sensor is unreadable.
    """
    if isinstance(spec, Backend):
        return spec
    if spec not in BACKENDS:
        raise BackendError(f"backend={spec!r} is unknown; use one of {', '.join(BACKENDS)}")
    if spec == "time":
        return TimeBackend(device=device, **kwargs)
    if spec == "model":
        return ModelBackend(device=device, **kwargs)
    if spec in ("rapl", "nvml"):
        try:
            return RaplBackend(device=device, **kwargs) if spec == "rapl" else NvmlBackend(**kwargs)
        except BackendError as exc:
            if strict:
                raise
            log.warning("%s; falling back to the model backend (energy will be estimated)", exc)
            b = ModelBackend(device=device)
            b.note = f"{spec} was requested but is unreadable ({exc}); fell back to the MODEL (estimated)"
            return b
    notes = []
    if device.startswith("cuda"):
        try:
            b = NvmlBackend(**kwargs)
            b.note = "auto: NVIDIA sensor readable" + (f"; {b.note}" if b.note else "")
            return b
        except BackendError as exc:
            notes.append(f"nvml unavailable ({exc})")
    if not os.environ.get("OPGRAPH_ENERGY_NO_RAPL"):
        try:
            b = RaplBackend(device=device)
            b.note = "; ".join([*notes, "auto: RAPL readable"])
            return b
        except BackendError as exc:
            notes.append(f"rapl unavailable ({exc})")
    b = ModelBackend(device=device)
    b.note = "; ".join([*notes, "auto: no power sensor readable, energy is MODELLED (estimated)"])
    return b
