import time

import pytest

from opgraph.energy.backends import (
    MODEL_CONSTANTS,
    ModelBackend,
    NvmlBackend,
    PowerSampler,
    RaplBackend,
    TimeBackend,
    select,
)
from opgraph.energy.errors import BackendError


def busy(n=20000):
    s = 0
    for i in range(n):
        s += i
    return s


def test_time_and_model():
    t = TimeBackend().measure(busy, 3)
    assert t.energy_j is None and t.cost == t.wall_s > 0
    m = ModelBackend().measure(busy, 3, bytes_per_call=1e6)
    c = MODEL_CONSTANTS
    assert m.energy_j == pytest.approx(c["p_core_w"] * m.cpu_s + c["e_byte_j"] * 1e6, rel=1e-9)
    assert ModelBackend().describe()["estimated"] is True


def _fake_rapl(root, value, max_range=1000):
    z = root / "intel-rapl:0"
    z.mkdir(parents=True, exist_ok=True)
    (z / "energy_uj").write_text(str(value))
    (z / "max_energy_range_uj").write_text(str(max_range))
    (z / "name").write_text("package-0")
    return z


def test_rapl_reads_and_handles_wraparound(tmp_path):
    z = _fake_rapl(tmp_path, 900)
    be = RaplBackend(root=str(tmp_path))

    def work():
        (z / "energy_uj").write_text("100")  # wrapped: 900 -> 1000 -> 100

    s = be.measure(work, 1)
    assert s.energy_j == pytest.approx(200 / 1e6)


def test_rapl_missing_raises(tmp_path):
    with pytest.raises(BackendError, match="rapl"):
        RaplBackend(root=str(tmp_path / "none"))


class FakeNvml:
    """A stand-in for pynvml: 100 W idle, 300 W while 'busy'; energy counter in mJ."""

    def __init__(self, counter=True, fail=False):
        self.counter, self.fail, self.busy = counter, fail, False
        self.t0 = time.perf_counter()
        self.energy_mj = 0.0
        self.last = self.t0

    def _advance(self):
        now = time.perf_counter()
        self.energy_mj += (now - self.last) * (300.0 if self.busy else 100.0) * 1000
        self.last = now

    def nvmlInit(self):
        if self.fail:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return b"FakeGPU"

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.counter:
            raise RuntimeError("Not Supported")
        self._advance()
        return int(self.energy_mj)

    def nvmlDeviceGetPowerUsage(self, h):
        return 300_000 if self.busy else 100_000


def _busy_for(fake, seconds):
    def work():
        fake.busy = True
        fake._advance()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
        fake._advance()
        fake.busy = False

    return work


def test_nvml_counter_with_idle_subtracted():
    fake = FakeNvml()
    be = NvmlBackend(nvml=fake, min_window_s=0.01, idle_probe_s=0.05)
    assert be.idle_w == pytest.approx(100.0)
    s = be.measure(_busy_for(fake, 0.05), 2)
    # 300 W busy minus 100 W idle over ~0.05 s per call
    assert s.energy_j == pytest.approx(200 * s.wall_s, rel=0.25)
    assert be.describe()["gpu"] == "FakeGPU" and be.describe()["method"] == "total-energy counter"


def test_nvml_sampling_fallback():
    fake = FakeNvml(counter=False)
    be = NvmlBackend(nvml=fake, min_window_s=0.01, idle_probe_s=0.05, subtract_idle=False)
    assert not be.use_counter and "sampling" in be.note
    s = be.measure(_busy_for(fake, 0.05), 2)
    assert s.energy_j == pytest.approx(300 * s.wall_s, rel=0.3)
    assert PowerSampler.integrate([(0.0, 10.0), (1.0, 20.0)]) == pytest.approx(15.0)


def test_auto_falls_back_and_says_so(monkeypatch):
    monkeypatch.setenv("OPGRAPH_ENERGY_NO_RAPL", "1")
    be = select("auto", device="cuda", nvml=FakeNvml(fail=True))
    assert be.name == "model" and "nvml unavailable" in be.note and "MODELLED" in be.note
    with pytest.raises(BackendError, match="unknown"):
        select("joules")
    with pytest.raises(BackendError):
        select("nvml", strict=True, nvml=FakeNvml(fail=True))
    fell = select("nvml", nvml=FakeNvml(fail=True))
    assert fell.name == "model" and "fell back" in fell.note
