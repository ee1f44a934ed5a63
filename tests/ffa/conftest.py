import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread: robust timing on shared 2-core machines (2 threads collapse under contention)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
