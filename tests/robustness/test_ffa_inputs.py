"""FFA: bad data, bad hyper-parameters and reused run folders give one error line; train and eval agree."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("torch")


def _npz(path, *, x_train=None, y_train=None, n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, n)
    np.savez(
        path,
        x_train=x if x_train is None else x_train,
        y_train=y if y_train is None else y_train,
        x_test=x[:8],
        y_test=y[:8],
    )
    return str(path)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"x_train": np.full((24, 8, 8), np.nan, np.float32)}, "NaN or inf"),
        ({"y_train": np.linspace(0, 2.5, 24)}, "is not an integer"),
        ({"y_train": np.r_[np.zeros(23, int), 3_000_000]}, "3000001 classes"),
        ({"y_train": -np.ones(24, int)}, "negative"),
        ({"y_train": np.zeros(23, int)}, "24 train images but 23 labels"),
        ({"x_train": np.zeros((0, 8, 8), np.float32), "y_train": np.zeros(0, int)}, "empty"),
    ],
)
def test_bad_npz_data_is_refused(tmp_path, cli_error, kwargs, needle):
    src = _npz(tmp_path / "d.npz", **kwargs)
    cli_error(
        "ffa",
        "train",
        "--data",
        src,
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "r"),
        needles=(needle,),
    )


def test_integral_float_labels_are_accepted():
    from opgraph.ffa.data import _labels

    assert _labels(np.array([0.0, 2.0, 1.0]), "y").tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--epochs", "0"], "epochs=0"),
        (["--lr-f", "nan"], "lr_f=nan"),
        (["--lr-b", "-1"], "lr_b=-1"),
        (["--momentum", "1.5"], "momentum=1.5"),
        (["--n-test", "0"], "n_test=0"),
        (["--resume", "--overwrite"], "contradict"),
    ],
)
def test_bad_hyper_parameters_are_refused(tmp_path, cli_error, args, needle):
    src = _npz(tmp_path / "d.npz")
    cli_error("ffa", "train", "--data", src, "--model", "mlp", "--out", str(tmp_path / "r"), *args, needles=(needle,))


def _accuracy(text):
    return float(re.search(r"test accuracy ([0-9.]+) %", text).group(1))


def test_train_and_eval_report_the_same_accuracy_and_out_is_not_overwritten(tmp_path, cli_run, cli_error):
    # A random test subset (--n-test) made `ffa train` and `ffa eval` disagree: eval reloaded the full test split.
    run = str(tmp_path / "run")
    args = ["ffa", "train", "--data", "digits", "--model", "mlp", "--hidden", "16", "--epochs", "1"]
    code, out, err = cli_run(*args, "--n-train", "200", "--n-test", "50", "--out", run)
    assert code == 0, err
    import json

    trained = json.loads((tmp_path / "run" / "history.json").read_text())[-1]["test_acc"]
    code, out, err = cli_run("ffa", "eval", run, "--no-inference", "--fgsm", "", "--noise", "0", "--n", "16")
    assert code == 0, err
    assert "on 50 test images" in out
    assert _accuracy(out) == pytest.approx(trained, abs=0.005)
    # Evaluating on another data set says so.
    code, out, err = cli_run(
        "ffa", "eval", run, "--data", "digits", "--no-inference", "--fgsm", "", "--noise", "0", "--n", "16"
    )
    assert code == 0 and "training evaluated on 50 test images" in out
    # A second train into the same --out is refused; --overwrite replaces it.
    before = (tmp_path / "run" / "history.json").read_text()
    cli_error(*args, "--out", run, needles=("already holds a run", "--overwrite"))
    assert (tmp_path / "run" / "history.json").read_text() == before
    code, _, err = cli_run(*args, "--n-train", "100", "--out", run, "--overwrite")
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--hidden", "0"], "--hidden '0'"),
        (["--hidden", "abc"], "--hidden 'abc'"),
        (["--width", "0", "--model", "asym_resnet10"], "--width 0"),
        (["--device", "nonsense"], "not a torch device"),
    ],
)
def test_bad_model_and_device_options_are_refused(tmp_path, cli_error, args, needle):
    import torch

    src = _npz(tmp_path / "d.npz")
    base = ["ffa", "train", "--data", src, "--model", "mlp", "--epochs", "1", "--out", str(tmp_path / "r")]
    cli_error(*base, *args, needles=(needle,))
    if not torch.cuda.is_available():
        cli_error(*base, "--device", "cuda", needles=("no CUDA device",))
