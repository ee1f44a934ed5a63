import os
import pickle

import numpy as np
import pytest

from opgraph.errors import OpgraphError, UnsafeFileError
from opgraph.ffa import data
from opgraph.ffa.errors import FFAError


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _batch(n, seed, protocol):
    """A batch in the CIFAR-10 python format: bytes keys, int labels, bytes file names, uint8 (N, 3072) array."""
    rng = np.random.default_rng(seed)
    d = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    return d, pickle.dumps(d, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_real_format_batch_reads(tmp_path, protocol):
    d, blob = _batch(6, protocol, protocol)
    (tmp_path / "b").write_bytes(blob)
    x, y = data.read_cifar_batch(tmp_path / "b")
    assert x.shape == (6, 3, 32, 32) and x.dtype == np.float32
    np.testing.assert_array_equal(y, d[b"labels"])
    np.testing.assert_allclose(x.reshape(6, -1) * 255.0, d[b"data"], atol=1e-4)


def test_folder_of_real_format_batches_loads(tmp_path):
    for name, n in [("data_batch_1", 5), ("data_batch_2", 3), ("test_batch", 4)]:
        (tmp_path / name).write_bytes(_batch(n, n, 2)[1])
    ds = data.load(tmp_path)
    assert ds.x_train.shape == (8, 3, 32, 32) and len(ds.y_test) == 4


@pytest.mark.parametrize("where", ["labels", "data", "top"])
def test_malicious_batch_is_refused_and_runs_nothing(tmp_path, where):
    marker = tmp_path / "pwned"
    d, _ = _batch(2, 0, 2)
    evil = _Evil(marker)
    obj = evil if where == "top" else {**d, (b"labels" if where == "labels" else b"data"): evil}
    for name in ("data_batch_1", "test_batch"):
        (tmp_path / name).write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(UnsafeFileError, match="posix.mkdir") as info:
        data.load(tmp_path)
    assert "\n" not in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj",
    [
        [1, 2, 3],
        {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
        {b"data": np.zeros((0, 3072), np.uint8), b"labels": []},
    ],
)
def test_wrong_shape_batches_are_one_line_errors(tmp_path, obj):
    (tmp_path / "b").write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(FFAError, match="CIFAR-10"):
        data.read_cifar_batch(tmp_path / "b")


@pytest.mark.parametrize("blob", [b"", b"\x80\x02}q", b"garbage"])
def test_garbage_batches(tmp_path, blob):
    (tmp_path / "b").write_bytes(blob)
    with pytest.raises(OpgraphError):
        data.read_cifar_batch(tmp_path / "b")
