import contextlib
import itertools

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class WorkBackend:
    """A deterministic stand-in for a measuring backend: the cost of a call is the data its aten ops touch.

    Every call is run once under a dispatch mode that adds up the bytes read and written by each op that
    moves data (views are free), so a region pair's ratio depends only on the code, never on the machine's load:
    tests can assert findings without asserting timings.
    """

    def __new__(cls):
        from torch.utils._python_dispatch import TorchDispatchMode

        from opgraph.energy.backends import Backend, Sample
        from opgraph.energy.matcher import FREE_OPS

        class _Count(TorchDispatchMode):
            def __init__(self):
                super().__init__()
                self.work = 0

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                if func._schema.name not in FREE_OPS:
                    leaves = torch.utils._pytree.tree_leaves((args, kwargs, out))
                    self.work += sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))
                return out

        class _Work(Backend):
            def measure(self, fn, reps, *, bytes_per_call=0.0):
                with _Count() as c:
                    fn()
                cost = c.work * 1e-9
                return Sample(cost, cost, cost, reps)

        return _Work(name="work", estimated=True, min_window_s=0.0)


@contextlib.contextmanager
def ticking_clock():
    """Replace the recorder's clock by a counter: one tick per reading, so every recorded op lasts the same.

    The differ screens, orders and scales regions by the durations recorded while tracing (``dur_ns``); with the
    wall clock those depend on the machine's load, so a region near the screening share could be replayed in one
    run and skipped in the next. Under this clock a test's findings depend on the code alone.
    """
    from opgraph.energy import recorder

    ticks = itertools.count()
    real = recorder._now_ns
    recorder._now_ns = lambda: 1000 * next(ticks)
    try:
        yield
    finally:
        recorder._now_ns = real


@pytest.fixture
def work_backend():
    """The work-counting backend; recordings made in the test use :func:`ticking_clock`."""
    with ticking_clock():
        yield WorkBackend()


@pytest.fixture(scope="module")
def work_recording():
    """For module-scoped fixtures: ``(backend, ticking_clock)``; record and diff inside ``with ticking_clock():``."""
    return WorkBackend(), ticking_clock
