"""One executor interface for every sweep: serial, process, a local Dask cluster, or a remote Dask scheduler.

Tasks are seeded from ``(run seed, task index)`` by :func:`seed_for`, never from worker state, so a job gives the
same numbers on every backend. ``serial`` is the default and the debugging path.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, TypeVar

import numpy as np

from opgraph.graph.errors import OpgraphError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class ExecutorError(OpgraphError):
    """An executor spec was wrong or its backend is not installed / not reachable."""


class SerialExecutor(Executor):
    """Runs each task at submission time in the calling process (deterministic, debuggable)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:  # noqa: D102
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


class _DaskExecutor(Executor):
    """A ``concurrent.futures`` executor over a Dask client that also closes the client (and its cluster)."""

    def __init__(self, client: Any, cluster: Any | None) -> None:
        self._client = client
        self._cluster = cluster
        self._inner = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:  # noqa: D102
        return self._inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:  # noqa: D102
        with contextlib.suppress(Exception):
            # Dask's executor cancels its pending futures when it does not wait for them.
            self._inner.shutdown(wait=wait and not cancel_futures)
        with contextlib.suppress(Exception):
            self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard address, if any."""
        return getattr(self._client, "dashboard_link", None)


def get_executor(spec: str | Executor | None = "serial", max_workers: int | None = None) -> Executor:
    """Return a :class:`concurrent.futures.Executor` for ``spec``.

    Args:
        spec: ``"serial"`` (default), ``"process"`` (stdlib process pool), ``"dask"`` (starts a
            ``dask.distributed.LocalCluster`` with one thread per worker), ``"dask://host:port"`` or
            ``"tcp://host:port"`` (connects to a running Dask scheduler: the way to use many machines), or an
            existing Executor (returned as is).
        max_workers: Worker count for ``process`` and ``dask`` (default: the number of CPUs).

    Returns:
        An executor; use it as a context manager so that it is shut down.

    Raises:
        ExecutorError: Unknown spec, Dask not installed, or the scheduler is unreachable.
    """
    if spec is None or spec == "serial":
        return SerialExecutor()
    if isinstance(spec, Executor):
        return spec
    if not isinstance(spec, str):
        raise ExecutorError(f"executor: expected a string such as 'serial', got {type(spec).__name__}")
    workers = max_workers or os.cpu_count() or 1
    if spec == "process":
        return ProcessPoolExecutor(max_workers=workers)
    if spec == "dask" or spec.startswith(("dask://", "tcp://")):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise ExecutorError("executor 'dask' needs Dask: pip install 'opgraph[dask]'") from exc
        if spec == "dask":
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            try:
                return _DaskExecutor(Client(cluster), cluster)
            except BaseException:
                cluster.close()
                raise
        address = "tcp://" + spec.split("://", 1)[1]
        _check_reachable(spec, address)
        try:
            client = Client(address, timeout="4s")
        except Exception as exc:
            raise ExecutorError(f"executor {spec!r}: cannot reach the Dask scheduler at {address}: {exc}") from exc
        return _DaskExecutor(client, None)
    raise ExecutorError(f"unknown executor {spec!r}; use 'serial', 'process', 'dask' or 'dask://host:port'")


def _check_reachable(spec: str, address: str, timeout_s: float = 4.0) -> None:
    """Refuse an address where nothing listens, before a Dask Client starts its IO-loop thread.

    A Client that fails to connect leaves that thread running (one per attempt, measured with distributed
    2026.8); a plain TCP connect tells the common case (wrong host or port, scheduler not started) without it.

    Raises:
        ExecutorError: the address is malformed or refuses / does not answer a TCP connection.
    """
    import socket

    host, sep, port_text = address.removeprefix("tcp://").rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ExecutorError(f"executor {spec!r}: expected 'dask://host:port' (for example dask://127.0.0.1:8786)")
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ExecutorError(
            f"executor {spec!r}: cannot reach the Dask scheduler at {address} ({exc}); start it with "
            "`dask scheduler` or fix the address"
        ) from None


def seed_for(run_seed: int, index: int) -> int:
    """A 63-bit seed for task ``index`` of a run, derived with NumPy's SeedSequence (independent streams)."""
    state = np.random.SeedSequence([int(run_seed) & 0xFFFFFFFFFFFFFFFF, int(index)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


def map_tasks(
    fn: Callable[[T, int], R],
    items: Iterable[T],
    *,
    executor: str | Executor | None = "serial",
    seed: int = 0,
    progress: bool = False,
    desc: str | None = None,
    max_workers: int | None = None,
) -> list[R]:
    """Run ``fn(item, seed_for(seed, i))`` for every item and return the results in item order.

    Args:
        fn: A picklable top-level function of ``(item, task_seed)``.
        items: The task inputs.
        executor: An executor spec for :func:`get_executor` or an Executor (not shut down here if passed in).
        seed: The run seed.
        progress: Show a tqdm progress bar.
        desc: Label of the progress bar.
        max_workers: Worker count when an executor is created here.

    Returns:
        ``[fn(items[0], ...), fn(items[1], ...), ...]``; identical across executors.
    """
    work: Sequence[T] = list(items)
    own = not isinstance(executor, Executor)
    ex = get_executor(executor, max_workers=max_workers)
    if isinstance(ex, SerialExecutor):
        # Run each task when the progress bar reaches it (submitting would run them all before the bar moves).
        seeds = [seed_for(seed, i) for i in range(len(work))]
        return [fn(item, s) for item, s in _progress_items(list(zip(work, seeds, strict=True)), progress, desc)]
    futures: list[Future[R]] = []
    try:
        futures.extend(ex.submit(fn, item, seed_for(seed, i)) for i, item in enumerate(work))
        results = [f.result() for f in _progress(futures, progress, desc)]
    except BaseException:
        # Ctrl-C or a failed task: drop the queued tasks instead of waiting for every one of them.
        for f in futures:
            f.cancel()
        if own:
            ex.shutdown(wait=True, cancel_futures=True)
        raise
    if own:
        ex.shutdown(wait=True)
    return results


def _progress(futures: list[Future[R]], enabled: bool, desc: str | None) -> Iterator[Future[R]]:
    if not enabled:
        yield from futures
        return
    from tqdm.auto import tqdm

    with tqdm(total=len(futures), desc=desc, unit="task") as bar:
        for f in futures:
            f.result()
            bar.update(1)
            yield f


def _progress_items(pairs: list[tuple[T, int]], enabled: bool, desc: str | None) -> Iterator[tuple[T, int]]:
    if not enabled:
        yield from pairs
        return
    from tqdm.auto import tqdm

    yield from tqdm(pairs, desc=desc, unit="task")
