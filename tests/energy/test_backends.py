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


class FakeClock:
    """Stands in for the ``time`` module inside ``opgraph.energy.backends``: time moves only when told to."""

    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now

    def process_time(self):
        return 0.0

    def sleep(self, seconds):
        self.now += seconds


class FakeNvml:
    """A stand-in for pynvml: 100 W idle, 300 W while 'busy'; energy counter in mJ, on a fake clock."""

    def __init__(self, counter=True, fail=False, clock=None):
        self.counter, self.fail, self.busy = counter, fail, False
        self.clock = clock or FakeClock()
        self.energy_mj = 0.0
        self.last = self.clock.now
        self.history: list[tuple[float, float]] = []  # (t, W) at every power step, both sides of the step

    def power_w(self):
        return 300.0 if self.busy else 100.0

    def _advance(self):
        now = self.clock.now
        self.energy_mj += (now - self.last) * self.power_w() * 1000
        self.last = now

    def set_busy(self, busy):
        self._advance()
        self.history.append((self.clock.now, self.power_w()))
        self.busy = busy
        self.history.append((self.clock.now, self.power_w()))

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
        return int(round(self.energy_mj))

    def nvmlDeviceGetPowerUsage(self, h):
        return int(self.power_w() * 1000)


class FakeSampler(PowerSampler):
    """PowerSampler on the fake device: the exact step curve of the window (no thread, no sampling noise)."""

    def __init__(self, nvml, handle, hz=1000.0):
        self.nvml = nvml

    def start(self):
        self.t0, self.i0 = self.nvml.clock.now, len(self.nvml.history)

    def stop(self):
        fake = self.nvml
        return [(self.t0, fake.power_w()), *fake.history[self.i0 :], (fake.clock.now, fake.power_w())]


def _busy_for(fake, seconds, idle_after=0.0):
    """One call: ``seconds`` at 300 W, then ``idle_after`` seconds at 100 W (overhead between calls)."""

    def work():
        fake.set_busy(True)
        fake.clock.now += seconds
        fake.set_busy(False)
        fake.clock.now += idle_after

    return work


@pytest.fixture
def fake_time(monkeypatch):
    import opgraph.energy.backends as backends

    clock = FakeClock()
    monkeypatch.setattr(backends, "time", clock)
    monkeypatch.setattr(backends, "PowerSampler", FakeSampler)
    return clock


def test_nvml_counter_with_idle_subtracted(fake_time):
    fake = FakeNvml(clock=fake_time)
    be = NvmlBackend(nvml=fake, min_window_s=0.01, idle_probe_s=0.05)
    assert be.idle_w == pytest.approx(100.0)
    s = be.measure(_busy_for(fake, 0.05, idle_after=0.01), 2)
    # per call: 0.05 s at 300 W + 0.01 s at 100 W gross; idle (100 W x 0.06 s) subtracted leaves 200 W x 0.05 s
    assert s.wall_s == pytest.approx(0.06)
    assert s.gross_j == pytest.approx(300 * 0.05 + 100 * 0.01, abs=1e-3)
    assert s.energy_j == pytest.approx(200 * 0.05, abs=1e-3)
    assert be.describe()["gpu"] == "FakeGPU" and be.describe()["method"] == "total-energy counter"


def test_nvml_sampling_fallback(fake_time):
    fake = FakeNvml(counter=False, clock=fake_time)
    be = NvmlBackend(nvml=fake, min_window_s=0.01, idle_probe_s=0.05, subtract_idle=False)
    assert not be.use_counter and "sampling" in be.note
    s = be.measure(_busy_for(fake, 0.05, idle_after=0.02), 2)
    assert s.energy_j == pytest.approx(300 * 0.05 + 100 * 0.02, rel=1e-9)  # the step curve integrated exactly
    assert PowerSampler.integrate([(0.0, 10.0), (1.0, 20.0)]) == pytest.approx(15.0)


def test_power_sampler_thread_samples_and_stops():
    fake = FakeNvml(counter=False)
    sampler = PowerSampler(fake, 0, hz=2000.0)
    sampler.start()
    time.sleep(0.02)
    samples = sampler.stop()
    assert len(samples) >= 2 and all(p == 100.0 for _, p in samples)
    assert sampler._thread is not None and not sampler._thread.is_alive()


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
