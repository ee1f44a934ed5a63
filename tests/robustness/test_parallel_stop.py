"""map_tasks stops at the first failure or Ctrl-C instead of running every queued task; failed connects leak nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from opgraph.parallel import ExecutorError, get_executor, map_tasks


def _slow_or_fail(item: tuple[str, int], seed: int) -> int:
    folder, index = item
    if index == 0:
        raise KeyboardInterrupt
    time.sleep(0.2)
    Path(folder, f"done-{index}").touch()
    return index


def test_interrupt_cancels_queued_process_tasks(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        map_tasks(_slow_or_fail, [(str(tmp_path), i) for i in range(40)], executor="process", max_workers=2)
    # Without cancelling, shutdown waited for all 39 queued tasks; now only those already handed to a worker run.
    assert len(list(tmp_path.glob("done-*"))) < 20


def test_failed_dask_connection_leaves_no_thread():
    pytest.importorskip("dask.distributed")
    before = threading.active_count()
    for _ in range(2):
        with pytest.raises(ExecutorError, match="cannot reach the Dask scheduler"):
            get_executor("dask://127.0.0.1:1")
    assert threading.active_count() == before
    with pytest.raises(ExecutorError, match="host:port"):
        get_executor("dask://nohostport")
