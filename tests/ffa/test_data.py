import gzip
import pickle
import struct

import numpy as np
import pytest

from opgraph.ffa import data
from opgraph.ffa.errors import DataNotFoundError, FFAError


def _write_idx(path, arr):
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.tobytes())


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    _write_idx(d / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    _write_idx(d / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 20))
    _write_idx(d / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28)))
    _write_idx(d / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 6))
    return d


def test_idx_folder_resized_to_32(idx_dir):
    ds = data.load(idx_dir)
    assert ds.x_train.shape == (20, 1, 32, 32) and ds.x_test.shape == (6, 1, 32, 32)
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() >= 0 and ds.x_train.max() <= 1
    assert data.load(idx_dir, image_size=28).x_train.shape == (20, 1, 28, 28)


def test_read_idx_roundtrip(idx_dir):
    a = data.read_idx(idx_dir / "t10k-labels-idx1-ubyte.gz")
    assert a.shape == (6,) and a.dtype == np.uint8


def test_npz_keras_convention(tmp_path):
    rng = np.random.default_rng(1)
    p = tmp_path / "m.npz"
    np.savez(
        p,
        x_train=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        y_train=np.arange(10) % 10,
        x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        y_test=np.arange(4),
    )
    ds = data.load(p, n_train=5)
    assert ds.x_train.shape == (5, 1, 32, 32) and ds.n_classes == 10
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros(3))
    with pytest.raises(FFAError, match="x_train"):
        data.load(bad)


def test_cifar_batches(tmp_path):
    rng = np.random.default_rng(2)
    for name, n in [("data_batch_1", 8), ("data_batch_2", 8), ("test_batch", 4)]:
        with open(tmp_path / name, "wb") as fh:
            pickle.dump(
                {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}, fh
            )
    ds = data.load(tmp_path)
    assert ds.x_train.shape == (16, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert ds.classes[0] == "airplane"


def test_digits():
    ds = data.load("digits")
    assert ds.image_shape == (1, 8, 8) and len(ds.y_train) + len(ds.y_test) == 1797


def test_missing_data_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("OPGRAPH_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "mnist")):
        data.load("mnist")
    with pytest.raises(DataNotFoundError, match="data_batch_1"):
        data.load("cifar10")
    with pytest.raises(DataNotFoundError, match="npz"):
        data.load(tmp_path / "nothing-here")
    with pytest.raises(FFAError, match="unknown"):
        data.download("imagenet", tmp_path)


def test_download_checksums_are_listed():
    for spec in data.DOWNLOADS.values():
        assert all(len(md5) == 32 for md5 in spec["files"].values())


@pytest.mark.skipif(not data.FASHION_MNIST_DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_default():
    ds = data.load("fashion-mnist", n_train=100, n_test=50)
    assert ds.x_train.shape == (100, 1, 32, 32) and ds.classes[9] == "Ankle boot"


@pytest.mark.filterwarnings("ignore:TF32 acceleration")
@pytest.mark.skipif(data.foolbox_data_dir() is None, reason="PyPI foolbox (20 real CIFAR-10 images) not installed")
def test_real_cifar10_samples_train_asym_resnet18():
    import torch

    from opgraph import ffa

    ds = data.load("samples:cifar10")
    assert ds.x_train.shape == (20, 3, 32, 32) and set(ds.y_train) <= set(range(10))
    torch.manual_seed(0)
    pair = ffa.mirror(ffa.models.asym_resnet18(in_channels=3, n_classes=10, width=2))
    # torch 2.13's oneDNN CPU kernels corrupt the heap on this narrow ResNet-18 with these real images
    # (reproduced with a plain torch model, without opgraph code); the reference kernels are fine.
    with torch.backends.mkldnn.flags(enabled=False):
        res = ffa.train(pair, ds, method="ffa", epochs=1, batch_size=10)
    assert 0 <= res.final["test_acc"] <= 100 and np.isfinite(res.final["recon_corr"])


def test_sample_images_missing(tmp_path):
    with pytest.raises(DataNotFoundError, match="foolbox"):
        data.load(f"samples:cifar10:{tmp_path / 'none'}")
