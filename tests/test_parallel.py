import numpy as np
import pytest

from opgraph.parallel import ExecutorError, get_executor, map_tasks, seed_for


def noisy_mean(item, seed):
    rng = np.random.default_rng(seed)
    return float(item + rng.normal(size=1000).mean())


def test_seed_for_is_stable_and_distinct():
    assert seed_for(0, 1) == seed_for(0, 1)
    assert len({seed_for(s, i) for s in range(5) for i in range(50)}) == 250


def test_serial_and_process_agree():
    items = list(range(6))
    a = map_tasks(noisy_mean, items, seed=7)
    b = map_tasks(noisy_mean, items, executor="process", seed=7, max_workers=2)
    assert a == b
    assert a != map_tasks(noisy_mean, items, seed=8)


@pytest.mark.slow
def test_serial_and_dask_local_cluster_agree():
    pytest.importorskip("dask.distributed")
    items = list(range(8))
    serial = map_tasks(noisy_mean, items, seed=3, progress=True)
    with get_executor("dask", max_workers=2) as ex:
        assert type(ex).__name__ == "_DaskExecutor"
        dask = map_tasks(noisy_mean, items, executor=ex, seed=3)
    assert serial == dask


def test_bad_spec():
    with pytest.raises(ExecutorError, match="unknown executor 'gpu-cluster'"):
        get_executor("gpu-cluster")
    with pytest.raises(ExecutorError, match="cannot reach"):
        get_executor("dask://127.0.0.1:1")
