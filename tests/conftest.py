import contextlib
import os
import warnings
from collections.abc import Callable, Iterator

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def local_dask() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``with local_dask(n_workers) as address:`` a Dask ``LocalCluster`` of threads, reached as ``dask://host:port``
    (the way a remote scheduler is named); skips the test where ``dask.distributed`` is missing."""
    distributed = pytest.importorskip("dask.distributed")

    @contextlib.contextmanager
    def start(n_workers: int = 2) -> Iterator[str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with distributed.LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=False, protocol="tcp://", dashboard_address=None
            ) as cluster:
                yield cluster.scheduler_address.replace("tcp://", "dask://")

    return start
