"""Image classification data for FFA: MNIST/Fashion-MNIST idx folders, CIFAR-10 batches, Keras npz, sklearn digits.

:func:`load` returns a :class:`Dataset` of float32 images in ``[0, 1]`` with shape ``(N, C, H, W)`` (no mean/std
normalisation, as in the authors' MNIST runs). 28x28 images are resized to 32x32 by default (the paper resizes
MNIST to 32). Nothing is downloaded unless :func:`download` is called explicitly.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import pickle
import struct
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.errors import UnsafeFileError
from opgraph.ffa.errors import DataNotFoundError, FFAError

__all__ = [
    "CIFAR10_DIR",
    "DOWNLOADS",
    "FASHION_MNIST_DEBIAN_DIR",
    "Dataset",
    "data_home",
    "download",
    "foolbox_data_dir",
    "load",
    "read_cifar_batch",
    "read_idx",
]

log = logging.getLogger(__name__)

#: Where the Debian package ``dataset-fashion-mnist`` installs the original idx .gz files.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CIFAR10_DIR = "cifar-10-batches-py"

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

#: Download sources with MD5 checksums of the files as published (the checksums torchvision uses).
DOWNLOADS: dict[str, dict[str, Any]] = {
    "mnist": {
        "base_url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "files": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion-mnist": {
        "base_url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "files": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
    "cifar10": {
        "base_url": "https://www.cs.toronto.edu/~kriz/",
        "files": {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
    },
}


@dataclass
class Dataset:
    """Train and test images with integer labels.

    Attributes:
        x_train: ``(N, C, H, W)`` float32 in ``[0, 1]``.
        y_train: ``(N,)`` int64 class indices.
        x_test: Test images, as ``x_train``.
        y_test: Test labels.
        name: Where the data came from.
        classes: Class names (``"0"``...``"9"`` for digits).
        source: The ``source`` argument of :func:`load` (reload with ``load(source, image_size=...)``).
        load_args: The other arguments of :func:`load` (``image_size``, ``n_train``, ``n_test``, ``seed``):
            ``load(source, **load_args)`` gives the same images in the same order.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "data"
    classes: list[str] = field(default_factory=list)
    source: str = ""
    load_args: dict[str, Any] = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes) or int(max(self.y_train.max(), self.y_test.max())) + 1

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Dataset:
        """A random subset (the first ``n`` of a seeded permutation of each split)."""
        rng = np.random.default_rng(seed)
        tr = rng.permutation(len(self.y_train))[:n_train] if n_train else np.arange(len(self.y_train))
        te = rng.permutation(len(self.y_test))[:n_test] if n_test else np.arange(len(self.y_test))
        return Dataset(
            self.x_train[tr],
            self.y_train[tr],
            self.x_test[te],
            self.y_test[te],
            f"{self.name}[{len(tr)}/{len(te)}]",
            list(self.classes),
        )

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"image_shape={self.image_shape}, classes={self.n_classes})"
        )


def data_home() -> Path:
    """Folder for downloaded data: ``$OPGRAPH_DATA`` or ``~/.cache/opgraph/datasets``."""
    return Path(os.environ.get("OPGRAPH_DATA", Path.home() / ".cache" / "opgraph" / "datasets"))


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an idx file (``.gz`` or raw) as a uint8 array.

    Raises:
        FFAError: the file is not a complete unsigned-byte idx file (bad magic, truncated, corrupt gzip).
    """
    import zlib

    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rb") as fh:  # type: ignore[operator]
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise FFAError(f"{p} cannot be read as a{' gzipped' if p.suffix == '.gz' else 'n'} idx file ({exc})") from None
    if len(raw) < 4:
        raise FFAError(f"{p} is empty or truncated ({len(raw)} bytes); replace it with the original idx file")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 4:
        raise FFAError(f"{p} is not an unsigned-byte idx file (magic {raw[:4].hex()})")
    if len(raw) < 4 + 4 * ndim:
        raise FFAError(f"{p} is truncated in its header; replace it with the original idx file")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    expected = int(np.prod(dims, dtype=np.int64)) if dims else 0
    if len(raw) - 4 - 4 * ndim != expected:
        raise FFAError(
            f"{p} holds {len(raw) - 4 - 4 * ndim} bytes of data but its header {dims} needs {expected}: "
            "the file is truncated or corrupt; replace it with the original idx file"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _is_idx_folder(folder: Path) -> bool:
    return all(_find_idx(folder, stem) for stem in _IDX_FILES.values())


def _load_idx_folder(folder: Path, name: str) -> Dataset:
    arrays = {}
    for key, stem in _IDX_FILES.items():
        found = _find_idx(folder, stem)
        if found is None:
            raise DataNotFoundError(
                f"{stem}[.gz] is missing in {folder}; put the four MNIST-format idx files there "
                f"({', '.join(_IDX_FILES.values())}, optionally gzipped)"
            )
        arrays[key] = read_idx(found)
    return Dataset(
        arrays["x_train"][:, None].astype(np.float32) / 255.0,
        arrays["y_train"].astype(np.int64),
        arrays["x_test"][:, None].astype(np.float32) / 255.0,
        arrays["y_test"].astype(np.int64),
        name,
    )


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 python batch and nothing else: no class or function outside :data:`CIFAR_GLOBALS`.

    ``pickle.load`` calls whatever a file names, so a crafted "batch" could run any code. A CIFAR batch holds a
    dict of bytes keys, a list of int labels, a list of bytes file names and one uint8 NumPy array; the only
    globals it needs rebuild that array (and, in files re-pickled by Python 3 or with NumPy scalars, encode
    bytes and rebuild a scalar). Every other global raises :class:`~opgraph.errors.UnsafeFileError`.
    """

    def __init__(self, fh: Any, path: Path) -> None:
        super().__init__(fh, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in CIFAR_GLOBALS:
            raise UnsafeFileError(
                f"{self._path}: refused, a CIFAR-10 batch holds only arrays, lists, bytes and numbers but this "
                f"file names {module}.{name} (loading it could run code); use the original cifar-10-python files"
            )
        return super().find_class(module, name)


#: (module, name) pairs a CIFAR-10 python batch may reference: NumPy's array/dtype/scalar rebuilders (old and
#: new module paths, pickle protocols 2-5), ``_codecs.encode`` and ``bytes`` (how Python 3's protocol 2 writes
#: bytes).
CIFAR_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
        ("__builtin__", "bytes"),  # an empty bytes object under protocol 2
        ("builtins", "bytes"),
    }
)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch file without running code from it.

    Args:
        path: A ``data_batch_N`` or ``test_batch`` file of ``cifar-10-python.tar.gz``.

    Returns:
        ``(images, labels)``: float32 ``(N, 3, 32, 32)`` in ``[0, 1]`` and int64 ``(N,)`` in ``0..9``.

    Raises:
        UnsafeFileError: The file names a class or function a CIFAR batch does not hold.
        FFAError: The file is not a readable CIFAR-10 batch.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            d = _CifarUnpickler(fh, p).load()
    except UnsafeFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/garbage pickles raise many kinds of errors
        raise FFAError(f"{p}: not a readable CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
    data = d.get(b"data") if isinstance(d, dict) else None
    labels = d.get(b"labels") if isinstance(d, dict) else None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype.kind not in "ui"
        or data.size % 3072
        or not data.size
        or labels is None
    ):
        raise FFAError(f"{p}: not a CIFAR-10 batch (want a dict with b'data' uint8 (N, 3072) and b'labels')")
    x = data.reshape(-1, 3, 32, 32)
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise FFAError(f"{p}: CIFAR-10 labels are not integers ({exc})") from exc
    if y.shape != (len(x),) or y.min() < 0 or y.max() > 9 or data.min() < 0 or data.max() > 255:
        raise FFAError(f"{p}: not a CIFAR-10 batch ({len(x)} images, labels {y.shape} in 0..9, pixels 0..255)")
    return x.astype(np.float32) / 255.0, y


def _load_cifar_folder(folder: Path) -> Dataset:
    batch = read_cifar_batch
    train = sorted(folder.glob("data_batch_*"))
    test = folder / "test_batch"
    if not train or not test.is_file():
        raise DataNotFoundError(
            f"CIFAR-10 python batches not found in {folder}: put data_batch_1..5 and test_batch there "
            f"(unpack cifar-10-python.tar.gz), or call opgraph.ffa.data.download('cifar10')"
        )
    xs, ys = zip(*(batch(p) for p in train), strict=True)
    xt, yt = batch(test)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return Dataset(np.concatenate(xs), np.concatenate(ys), xt, yt, f"cifar10:{folder}", names)


def _load_npz(path: Path) -> Dataset:
    import zipfile
    import zlib

    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise FFAError(f"{path} holds a single array, not an npz archive with x_train, y_train, x_test, y_test")
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z]
            if missing:
                raise FFAError(
                    f"{path} lacks the keys {missing}; expected the Keras mnist.npz keys x_train, y_train, x_test, "
                    "y_test"
                )
            arrs = {k: np.asarray(z[k]) for k in ("x_train", "y_train", "x_test", "y_test")}
    except FFAError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, KeyError, NotImplementedError) as exc:
        raise FFAError(f"{path} is not a readable npz file ({type(exc).__name__}: {exc}); re-create it") from None
    for key, arr in arrs.items():
        if arr.dtype.kind not in "biuf":
            raise FFAError(f"{path}: {key} has dtype {arr.dtype}; images and labels must be numeric arrays")
        if arr.size == 0:
            raise FFAError(f"{path}: {key} is empty; every split needs at least one image")

    def images(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise FFAError(f"{path}: images contain NaN or inf values; clean or re-create the data")
        if x.max() > 1.0:
            x = x / 255.0
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)

    return Dataset(
        images(arrs["x_train"]),
        _labels(arrs["y_train"], f"{path}: y_train"),
        images(arrs["x_test"]),
        _labels(arrs["y_test"], f"{path}: y_test"),
        f"npz:{path.name}",
    )


# More classes than this is a labelling error (a label of 3,000,000 would build a 3,000,001-way classifier).
MAX_CLASSES = 10_000


def _labels(y: np.ndarray, what: str) -> np.ndarray:
    """Class indices as int64, refusing fractional, negative or absurdly large labels (never truncating).

    Raises:
        FFAError: naming ``what`` and the offending value.
    """
    y = np.asarray(y).ravel()
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            raise FFAError(f"{what}: label {y[bad][0]!r} is not an integer; labels must be class indices 0..K-1")
    if y.dtype.kind not in "biuf":
        raise FFAError(f"{what}: labels have dtype {y.dtype}; they must be integer class indices 0..K-1")
    if y.size and y.min() < 0:
        raise FFAError(f"{what}: label {y.min()} is negative; labels must be class indices 0..K-1")
    if y.size and y.max() >= MAX_CLASSES:
        raise FFAError(
            f"{what}: label {y.max():.0f} would make {int(y.max()) + 1} classes (limit {MAX_CLASSES}); "
            "labels must be class indices 0..K-1"
        )
    return y.astype(np.int64)


def _check_dataset(ds: Dataset, src: str) -> None:
    """Refuse data that would train silently to a wrong answer: empty or mismatched splits, NaN images, bad labels.

    Raises:
        FFAError: naming the source, the split and the fix.
    """
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        if x.ndim != 4 or x.shape[0] == 0 or min(x.shape[1:]) == 0:
            raise FFAError(f"data {src!r}: x_{split} has shape {x.shape}; expected (N>=1, C, H, W) images")
        if len(y) != len(x):
            raise FFAError(f"data {src!r}: {len(x)} {split} images but {len(y)} labels; give one label per image")
        if not np.isfinite(x).all():
            raise FFAError(f"data {src!r}: x_{split} contains NaN or inf values; clean or re-create the data")
        _labels(y, f"data {src!r}: y_{split}")
    if ds.x_train.shape[1:] != ds.x_test.shape[1:]:
        raise FFAError(
            f"data {src!r}: train images {ds.x_train.shape[1:]} and test images {ds.x_test.shape[1:]} differ in shape"
        )


def _load_digits(seed: int = 0) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = len(y) // 5
    te, tr = perm[:n_test], perm[n_test:]
    return Dataset(x[tr], y[tr], x[te], y[te], "sklearn-digits", [str(i) for i in range(10)])


def foolbox_data_dir() -> Path | None:
    """The ``data`` folder of an installed PyPI ``foolbox`` (20 real images per data set), found without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("foolbox")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if folder.is_dir() else None


def _load_samples(name: str, folder: Path | None) -> Dataset:
    """``{name}_{index}_{label}.png`` sample images (foolbox's layout); the same images form train and test."""
    from PIL import Image

    if folder is None or not folder.is_dir():
        raise DataNotFoundError(
            f"sample images for {name!r} not found: `pip install --no-deps foolbox==3.3.4` (its data folder holds "
            f"20 real {name} images), or give 'samples:{name}:/path/to/folder' with files {name}_NN_LABEL.png"
        )
    files = sorted(folder.glob(f"{name}_[0-9]*_[0-9]*.png"))
    if not files:
        raise DataNotFoundError(f"no {name}_NN_LABEL.png files in {folder}")
    xs, ys = [], []
    for f in files:
        img = np.asarray(Image.open(f), dtype=np.float32) / 255.0
        xs.append(img[None] if img.ndim == 2 else img.transpose(2, 0, 1))
        ys.append(int(f.stem.rsplit("_", 1)[1]))
    x, y = np.stack(xs), np.asarray(ys, dtype=np.int64)
    return Dataset(x, y, x.copy(), y.copy(), f"samples:{name}:{folder}", [])


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    import torch
    import torch.nn.functional as F  # noqa: N812

    out = []
    t = torch.from_numpy(x)
    for i in range(0, len(t), 4096):
        out.append(F.interpolate(t[i : i + 4096], size=(size, size), mode="bilinear", align_corners=False))
    return torch.cat(out).clamp_(0, 1).numpy()


def load(
    source: str | os.PathLike[str] = "fashion-mnist",
    *,
    image_size: int | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load a data set.

    Args:
        source: One of

            * ``"mnist"``: idx files in ``data_home()/mnist`` (see :func:`download`);
            * ``"fashion-mnist"``: idx files of the Debian package ``dataset-fashion-mnist``
              (``/usr/share/datasets/fashion-mnist``), else ``data_home()/fashion-mnist``;
            * ``"cifar10"``: python batches in ``data_home()/cifar-10-batches-py``;
            * ``"digits"``: scikit-learn's 8x8 digits (1,437 train / 360 test, fixed split);
            * ``"samples:cifar10"`` (or ``mnist``, ``fashionMNIST``, ``cifar100``): the 20 real sample images of
              the PyPI package ``foolbox`` (train = test; shape and smoke tests only), or
              ``"samples:NAME:/folder"`` with files ``NAME_NN_LABEL.png``;
            * a path to an ``.npz`` in the Keras ``mnist.npz`` convention (``x_train, y_train, x_test, y_test``);
            * a folder holding MNIST-format idx files or CIFAR-10 python batches.
        image_size: Resize images to this side (bilinear). Default: 28x28 images become 32x32 (as in the paper),
            others keep their size.
        n_train: Keep a random subset of this many training images.
        n_test: Keep a random subset of this many test images.
        seed: Seed of the subsets (and of the digits split).

    Returns:
        The :class:`Dataset`.

    Raises:
        DataNotFoundError: The files are not there; the message says where to put them.
    """
    src = str(source)
    key = src.lower().replace("_", "-")
    path = Path(src).expanduser()
    if key == "digits":
        ds = _load_digits(seed)
    elif key.startswith("samples:"):
        parts = src.split(":", 2)
        ds = _load_samples(parts[1], Path(parts[2]) if len(parts) > 2 else foolbox_data_dir())
    elif key in ("mnist", "fashion-mnist", "fashionmnist"):
        name = "fashion-mnist" if key != "mnist" else "mnist"
        candidates = [data_home() / name]
        if name == "fashion-mnist":
            candidates.insert(0, FASHION_MNIST_DEBIAN_DIR)
        folder = next((c for c in candidates if c.is_dir() and _is_idx_folder(c)), None)
        if folder is None:
            hint = " or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
            raise DataNotFoundError(
                f"{name} not found: put the four idx files ({', '.join(v + '.gz' for v in _IDX_FILES.values())}) "
                f"in {candidates[-1]} (or set OPGRAPH_DATA){hint}; with internet access, "
                f"opgraph.ffa.data.download({name!r}) fetches and checks them"
            )
        ds = _load_idx_folder(folder, f"{name}:{folder}")
        ds.classes = (
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
            if name == "fashion-mnist"
            else [str(i) for i in range(10)]
        )
    elif key in ("cifar10", "cifar-10"):
        ds = _load_cifar_folder(data_home() / CIFAR10_DIR)
    elif path.is_file() and path.suffix == ".npz":
        ds = _load_npz(path)
        ds.classes = [str(i) for i in range(ds.n_classes)]
    elif path.is_dir():
        if _is_idx_folder(path):
            ds = _load_idx_folder(path, f"idx:{path}")
        elif (path / "test_batch").is_file() or (path / CIFAR10_DIR / "test_batch").is_file():
            ds = _load_cifar_folder(path if (path / "test_batch").is_file() else path / CIFAR10_DIR)
        else:
            raise DataNotFoundError(
                f"{path} holds neither MNIST-format idx files ({', '.join(_IDX_FILES.values())}[.gz]) nor "
                "CIFAR-10 python batches (data_batch_1..5, test_batch)"
            )
    else:
        raise DataNotFoundError(
            f"data source {src!r} not found: give 'mnist', 'fashion-mnist', 'cifar10', 'digits', a path to a "
            "Keras-style .npz (x_train, y_train, x_test, y_test), or a folder of idx files / CIFAR-10 batches"
        )
    _check_dataset(ds, src)
    for arg, value in (("n_train", n_train), ("n_test", n_test), ("image_size", image_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1):
            raise FFAError(f"{arg}={value!r} must be an integer >= 1 (or None)")
    if n_train or n_test:
        ds = ds.subset(n_train, n_test, seed)
    size = image_size if image_size is not None else (32 if ds.x_train.shape[-1] == 28 else None)
    if size is not None:
        ds.x_train = _resize(ds.x_train, size)
        ds.x_test = _resize(ds.x_test, size)
    ds.source = src
    ds.load_args = {"image_size": image_size, "n_train": n_train, "n_test": n_test, "seed": seed}
    log.info("loaded %r", ds)
    return ds


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(name: str, dest: str | os.PathLike[str] | None = None, *, timeout_s: float = 60.0) -> Path:
    """Download MNIST, Fashion-MNIST or CIFAR-10 and check the MD5 of every file (needs internet access).

    Files already present with the right checksum are kept. Tests never call this.

    Args:
        name: ``mnist``, ``fashion-mnist`` or ``cifar10``.
        dest: Target folder; default ``data_home()/name`` (``data_home()`` for CIFAR-10, which unpacks into
            ``cifar-10-batches-py``).
        timeout_s: Socket timeout per request in seconds.

    Returns:
        The folder that :func:`load` reads.

    Raises:
        FFAError: Unknown name or a checksum mismatch (the bad file is removed).
    """
    from opgraph._base.fileio import atomic_open

    if name not in DOWNLOADS:
        raise FFAError(f"download: name {name!r} is unknown; use one of {', '.join(DOWNLOADS)}")
    spec = DOWNLOADS[name]
    folder = Path(dest) if dest is not None else (data_home() if name == "cifar10" else data_home() / name)
    folder.mkdir(parents=True, exist_ok=True)
    for fname, md5 in spec["files"].items():
        target = folder / fname
        if target.is_file() and _md5(target) == md5:
            continue
        url = spec["base_url"] + fname
        log.info("downloading %s", url)
        with urllib.request.urlopen(url, timeout=timeout_s) as resp, atomic_open(target, "wb") as fh:  # noqa: S310
            for block in iter(lambda: resp.read(1 << 20), b""):
                fh.write(block)
        got = _md5(target)
        if got != md5:
            target.unlink()
            raise FFAError(f"checksum mismatch for {url}: md5 {got}, expected {md5}; try again later")
    if name == "cifar10":
        with tarfile.open(folder / "cifar-10-python.tar.gz") as tar:
            tar.extractall(folder, filter="data")
        return folder / CIFAR10_DIR
    return folder
