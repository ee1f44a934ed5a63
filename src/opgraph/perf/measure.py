"""The measurement protocol of the research note (§5.3) for ranking configurations on a noisy shared CPU.

1. one intra-op thread (``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1``, ``TVM_NUM_THREADS=1``);
2. glibc malloc settings ``MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000`` (they must be set
   before the process starts; :func:`protocol_meta` records whether they were);
3. warm-up runs before timing;
4. CPU time of the calling thread (``time.thread_time_ns``), minimum of ``reps`` repetitions;
5. ``rounds`` rounds over all configs, each in a fresh shuffled order (interleaved), so slow drifts of the machine
   hit every config alike;
6. the reference (default) config timed at the start of every round and after every ``ref_every`` configs:
   ``config_runtime_normalizers``;
7. early abort: a config whose first timed run is above ``abort_factor`` x the best seen so far is timed once and
   not repeated in later rounds;
8. the noise (median relative std across rounds) and the inter-round Kendall tau (the ceiling any model can reach)
   are stored with the load average.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph._base.provenance import cpu_model
from opgraph.measure import cpu_ns
from opgraph.perf.errors import MeasurementError
from opgraph.perf.metrics import inter_round_tau

log = logging.getLogger(__name__)

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4000000000", "MALLOC_TRIM_THRESHOLD_": "8000000000"}
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TVM_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class MeasureSettings:
    """Knobs of the protocol.

    Attributes:
        rounds: Interleaved rounds over all configs (>= 2 gives the inter-round tau).
        reps: Timed repetitions per config per round (the minimum is kept).
        warmup: Untimed runs before a config's first timing (1 in later rounds).
        abort_factor: Stop repeating a config whose first run exceeds this multiple of the best so far.
        ref_every: Re-time the reference config after this many configs.
        timer: ``"cpu"`` (CPU time of the measuring thread) or ``"cuda"`` (CUDA events around one run, for
            models on a GPU).
    """

    rounds: int = 2
    reps: int = 3
    warmup: int = 2
    abort_factor: float = 5.0
    ref_every: int = 10
    timer: str = "cpu"


@dataclass(frozen=True)
class Measurement:
    """Runtimes of ``c`` configs of one graph.

    Attributes:
        runtime_ns: int64[c] median over rounds of the per-round minimum CPU time, ns.
        rounds_ns: int64[c, R] per-round runtime, ns.
        std_ns: float64[c] std across rounds, ns.
        normalizer_ns: int64[c] median runtime of the reference config in the same rounds, ns.
        aborted: bool[c] configs stopped early (timed once).
        failed: bool[c] configs that raised (runtime set to the largest finite runtime x 10).
        noise: Median relative std across rounds over the non-aborted configs.
        tau_between_rounds: Mean Kendall tau between rounds (the noise ceiling).
        meta: Protocol provenance (see :func:`protocol_meta`).
    """

    runtime_ns: np.ndarray
    rounds_ns: np.ndarray
    std_ns: np.ndarray
    normalizer_ns: np.ndarray
    aborted: np.ndarray
    failed: np.ndarray
    noise: float
    tau_between_rounds: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        r = self.runtime_ns
        return (
            f"Measurement({len(r)} configs, {r.min() / 1e6:.3f}..{r.max() / 1e6:.3f} ms, noise {self.noise:.1%}, "
            f"tau between rounds {self.tau_between_rounds:.3f}, {int(self.aborted.sum())} aborted, "
            f"{int(self.failed.sum())} failed)"
        )


def apply_thread_settings() -> None:
    """Set one intra-op thread for torch (if imported) and the thread env vars for libraries loaded later."""
    for k, v in THREAD_ENV.items():
        os.environ.setdefault(k, v)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is optional here
        pass


def protocol_meta(settings: MeasureSettings) -> dict[str, Any]:
    """Provenance of a measurement: CPU, cores, threads, malloc settings, versions, load average, settings."""
    meta: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "timer": "time.thread_time_ns (CPU time of the measuring thread)",
        "threads": 1,
        "malloc_env_set": all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "rounds": settings.rounds,
        "reps": settings.reps,
        "warmup": settings.warmup,
        "abort_factor": settings.abort_factor,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
    }
    try:
        import torch

        meta["torch"] = torch.__version__
        meta["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    return meta


def _cuda_timer() -> Callable[[Callable[[], Any]], int]:
    import torch

    if not torch.cuda.is_available():
        raise MeasurementError("timer='cuda' needs a CUDA GPU visible to torch; use timer='cpu'")

    def time_once(fn: Callable[[], Any]) -> int:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return int(start.elapsed_time(end) * 1e6)

    return time_once


def measure_configs(
    n_configs: int,
    prepare: Callable[[int], Callable[[], Any]],
    *,
    reference: int = 0,
    settings: MeasureSettings | None = None,
    seed: int = 0,
) -> Measurement:
    """Time ``n_configs`` configurations of one program with the protocol above.

    Args:
        n_configs: Number of configs.
        prepare: ``prepare(i)`` switches to config ``i`` and returns the thunk to time (one run of the program).
            Its own cost is not timed.
        reference: Index of the default config (normalizer).
        settings: Protocol knobs.
        seed: Seed of the shuffles.

    Returns:
        A :class:`Measurement`.

    Raises:
        MeasurementError: every config failed.
    """
    s = settings or MeasureSettings()
    if n_configs < 1:
        raise MeasurementError("n_configs must be >= 1")
    apply_thread_settings()
    meta = protocol_meta(s)
    if s.timer == "cuda":
        time_once = _cuda_timer()
        import torch

        meta["timer"] = "CUDA events around one run"
        meta["gpu"] = torch.cuda.get_device_name()
    elif s.timer == "cpu":
        time_once = cpu_ns  # the shared timer of opgraph.measure
    else:
        raise MeasurementError(f"MeasureSettings.timer must be 'cpu' or 'cuda', got {s.timer!r}")
    rng = np.random.default_rng(seed)
    R = max(1, s.rounds)
    rounds = np.full((n_configs, R), np.nan)
    aborted = np.zeros(n_configs, dtype=bool)
    failed = np.zeros(n_configs, dtype=bool)
    errors: dict[int, str] = {}
    ref_times: list[list[float]] = [[] for _ in range(R)]
    best = np.inf

    def time_ref(r: int) -> None:
        if failed[reference]:
            return
        try:
            fn = prepare(reference)
            fn()
            ref_times[r].append(min(time_once(fn) for _ in range(max(1, s.reps))))
        except Exception as exc:  # noqa: BLE001 - a failing reference only loses the normalizer
            failed[reference] = True
            errors[reference] = repr(exc)

    for r in range(R):
        order = rng.permutation(n_configs)
        time_ref(r)
        for pos, i in enumerate(order):
            if failed[i]:
                continue
            if aborted[i]:
                rounds[i, r] = rounds[i, 0]
                continue
            try:
                fn = prepare(int(i))
                for _ in range(s.warmup if r == 0 else 1):
                    fn()
                first = time_once(fn)
                if r == 0 and np.isfinite(best) and first > s.abort_factor * best:
                    aborted[i] = True
                    rounds[i, r] = first
                    continue
                t = min([first] + [time_once(fn) for _ in range(max(0, s.reps - 1))])
            except Exception as exc:  # noqa: BLE001 - a config that cannot run is recorded, not fatal
                failed[i] = True
                errors[int(i)] = f"{type(exc).__name__}: {exc}"
                log.warning("config %d failed: %s", i, errors[int(i)])
                continue
            rounds[i, r] = t
            best = min(best, t)
            if (pos + 1) % max(1, s.ref_every) == 0:
                time_ref(r)
    ok = ~failed
    if not ok.any():
        raise MeasurementError(f"every configuration failed to run; first error: {next(iter(errors.values()))}")
    worst = np.nanmax(rounds[ok])
    rounds[failed] = worst * 10
    runtime = np.median(rounds, axis=1)
    std = rounds.std(axis=1)
    good = ok & ~aborted
    rel = std[good] / np.maximum(runtime[good], 1)
    noise = float(np.median(rel)) if good.any() and R > 1 else float("nan")
    tau = inter_round_tau(rounds[good]) if good.sum() >= 2 and R > 1 else float("nan")
    ref = [float(np.median(t)) for t in ref_times if t]
    normalizer = float(np.median(ref)) if ref else float(runtime[reference])
    meta.update(
        loadavg_end=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        noise=noise,
        tau_between_rounds=tau,
        n_aborted=int(aborted.sum()),
        n_failed=int(failed.sum()),
        errors={str(k): v for k, v in list(errors.items())[:5]},
        reference_config=int(reference),
        reference_runtime_ns_per_round=ref,
    )
    return Measurement(
        runtime_ns=np.rint(runtime).astype(np.int64),
        rounds_ns=np.rint(rounds).astype(np.int64),
        std_ns=std,
        normalizer_ns=np.full(n_configs, int(round(normalizer)), dtype=np.int64),
        aborted=aborted,
        failed=failed,
        noise=noise,
        tau_between_rounds=tau,
        meta=meta,
    )
