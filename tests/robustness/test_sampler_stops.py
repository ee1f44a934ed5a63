"""The NVML power-sampler thread stops when the measured function raises."""

from __future__ import annotations

import threading

import pytest

from opgraph.energy.backends import NvmlBackend, PowerSampler


class _PowerOnlyNvml:
    """pynvml stand-in without an energy counter, so the backend samples power in a thread."""

    def nvmlInit(self):
        return None

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        raise RuntimeError("Not Supported")

    def nvmlDeviceGetPowerUsage(self, h):
        return 100_000


def test_sampler_thread_stops_when_fn_raises():
    backend = NvmlBackend(nvml=_PowerOnlyNvml(), subtract_idle=False, device="cpu")
    assert not backend.use_counter

    def boom():
        raise ValueError("user code failed")

    with pytest.raises(ValueError, match="user code failed"):
        backend.measure(boom, 3)
    # Only the sampler's own (named) thread is looked at: a test runner may start and stop threads of its own.
    assert not [t for t in threading.enumerate() if t.name == PowerSampler.THREAD_NAME]
