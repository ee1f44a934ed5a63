import json

import numpy as np
import pytest
import torch

from opgraph import ffa
from opgraph.ffa.data import Dataset
from opgraph.ffa.errors import FFAError


@pytest.fixture(scope="module")
def digits():
    return ffa.data.load("digits").subset(400, 200)


def _pair(seed=0):
    torch.manual_seed(seed)
    return ffa.mirror(ffa.models.mlp(64, hidden=(32,), n_classes=10))


@pytest.mark.parametrize("method", list(ffa.METHODS))
def test_every_method_trains_one_epoch(digits, method):
    pair = _pair()
    res = ffa.train(pair, digits, method=method, epochs=2, seed=0, batch_size=64)
    h = res.final
    assert h["epoch"] == 2 and -1 <= h["recon_corr"] <= 1
    # The reported accuracy is the trained classifier's, recomputed here from its predictions.
    pair.eval()
    with torch.no_grad():
        pred = pair.F(torch.as_tensor(digits.x_test)).argmax(1).numpy()
    assert h["test_acc"] == pytest.approx(100.0 * float(np.mean(pred == np.asarray(digits.y_test))))
    assert np.isfinite(h["align_mean_deg"])
    if method in ("ffa", "bp", "bp-copy", "fa", "kp", "sign"):
        assert h["train_loss_f"] is not None and res.history[1]["train_loss_f"] < res.history[0]["train_loss_f"] + 0.5
    assert repr(res).startswith("TrainResult(")


def test_ffa_learns_both_pathways_and_bp_fa_decoders_stay_untrained(digits):
    ffa_res = ffa.train(_pair(), digits, method="ffa", epochs=8, seed=0, batch_size=32)
    fa_res = ffa.train(_pair(), digits, method="fa", epochs=8, seed=0, batch_size=32)
    assert ffa_res.final["test_acc"] > 60  # chance is 10 %
    assert ffa_res.final["recon_corr"] > 0.5
    assert fa_res.final["recon_corr"] < 0.3  # FA's decoder holds the fixed random feedback weights
    pair = _pair()
    bp_res = ffa.train(pair, digits, method="bp", epochs=8, seed=0, batch_size=32)
    assert bp_res.final["test_acc"] > 60
    assert abs(bp_res.final["recon_corr"]) < 0.3  # BP's decoder is an untrained random initialisation
    pair.configure("bp", seed=0)  # the same seed draws the same decoder: training did not touch it
    assert ffa.evaluate(pair, digits)["recon_corr"] == pytest.approx(bp_res.final["recon_corr"], abs=1e-6)
    # FFA: F's feedback weights are B's weights, and B learns: the angle moves away from its initial value
    assert ffa_res.history[-1]["align_mean_deg"] != ffa_res.history[0]["align_mean_deg"]


def test_seed_determinism(digits):
    a = ffa.train(_pair(1), digits, method="ffa", epochs=1, seed=3, batch_size=64)
    b = ffa.train(_pair(1), digits, method="ffa", epochs=1, seed=3, batch_size=64)
    assert a.history[0]["test_acc"] == b.history[0]["test_acc"]
    assert a.history[0]["train_loss_b"] == b.history[0]["train_loss_b"]


def test_checkpoint_resume_matches_uninterrupted(digits, tmp_path):
    full = ffa.train(_pair(2), digits, method="ffa", epochs=2, seed=5, batch_size=64)
    ffa.train(_pair(2), digits, method="ffa", epochs=1, seed=5, batch_size=64, run_dir=tmp_path / "r")
    resumed = ffa.train(
        _pair(2), digits, method="ffa", epochs=2, seed=5, batch_size=64, run_dir=tmp_path / "r", resume=True
    )
    assert len(resumed.history) == 2
    assert resumed.history[1]["test_acc"] == pytest.approx(full.history[1]["test_acc"])
    assert resumed.history[1]["train_loss_b"] == pytest.approx(full.history[1]["train_loss_b"], rel=1e-5)
    hist = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]
    loaded = ffa.load_run(tmp_path / "r")
    assert loaded.pair is not None and loaded.method == "ffa"
    assert ffa.evaluate(loaded.pair, digits)["test_acc"] == pytest.approx(resumed.final["test_acc"])
    with pytest.raises(FFAError, match="resume"):
        ffa.train(_pair(2), digits, method="bp", epochs=3, run_dir=tmp_path / "r", resume=True)


def test_bad_arguments(digits):
    with pytest.raises(FFAError, match="method"):
        ffa.train(_pair(), digits, method="hebb")
    wrong = Dataset(
        np.zeros((4, 1, 5, 5), np.float32),
        np.zeros(4, np.int64),
        np.zeros((2, 1, 5, 5), np.float32),
        np.zeros(2, np.int64),
    )
    with pytest.raises(FFAError, match="image_size"):
        ffa.train(_pair(), wrong, epochs=1)


def test_train_many_serial_matches_process(tmp_path):
    kw = dict(
        model="mlp",
        model_kwargs={"in_features": 64, "hidden": [16]},
        data="digits",
        methods=["ffa", "bp"],
        seeds=[0],
        epochs=1,
        batch_size=128,
    )
    serial = ffa.train_many(**kw, executor="serial", out_dir=tmp_path / "s")
    proc = ffa.train_many(**kw, executor="process")
    assert [r.method for r in serial] == ["ffa", "bp"]
    for a, b in zip(serial, proc, strict=True):
        assert a.history[0]["test_acc"] == b.history[0]["test_acc"]
    assert (tmp_path / "s" / "ffa-s0" / "checkpoint.pt").is_file()
