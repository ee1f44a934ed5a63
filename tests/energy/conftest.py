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


@pytest.fixture(scope="session")
def work_backend():
    return WorkBackend()
