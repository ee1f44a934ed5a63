import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from opgraph import ffa
from opgraph.ffa.analysis import occlusion_mask
from opgraph.ffa.errors import FFAError
from opgraph.ffa.evaluation import pearson


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ds = ffa.data.load("digits").subset(600, 200)
    torch.manual_seed(0)
    pair = ffa.mirror(ffa.models.mlp(64, hidden=(64,), n_classes=10))
    run = tmp_path_factory.mktemp("run") / "ffa"
    ffa.train(pair, ds, method="ffa", epochs=8, seed=0, batch_size=32, run_dir=run)
    return pair, ds, run


def test_pearson():
    a = torch.arange(10.0)
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)


def test_robustness_shapes_and_identity_at_zero_iterations(trained):
    pair, ds, _ = trained
    rob = ffa.robustness(pair, ds, noise=[0.0, 0.5], iterations=2, fgsm_eps=[0.1], n=100)
    assert rob.noise_acc.shape == (2, 3) and rob.fgsm_acc.shape == (1, 3)
    assert rob.noise_acc[0, 0] == pytest.approx(ffa.evaluate(pair, ds, n=100)["test_acc"])
    assert rob.fgsm_acc[0, 0] < rob.noise_acc[0, 0]  # the attack hurts
    assert "noise var" in repr(rob)
    with pytest.raises(FFAError):
        ffa.robustness(pair, ds, iterations=-1)


def test_fgsm_uses_exact_gradient_and_restores_modes(trained):
    pair, ds, _ = trained
    from opgraph.ffa.evaluation import fgsm

    modes = [f.fb_mode for f, _ in pair.twin_layers()]
    x = torch.as_tensor(ds.x_test[:16])
    y = torch.as_tensor(ds.y_test[:16])
    xa = fgsm(pair, x, y, 0.1)
    assert torch.allclose((xa - x).abs(), torch.full_like(x, 0.1), atol=1e-6)
    assert [f.fb_mode for f, _ in pair.twin_layers()] == modes == ["twin"] * len(modes)


def test_sampler_inference(trained):
    pair, ds, _ = trained
    x = torch.as_tensor(ds.x_test[:16])
    noisy = x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    den = ffa.denoise(pair, noisy, max_steps=15)
    assert den.images.shape == x.shape and den.n_steps <= 15 and den.sigma.shape[1] == 16
    one = ffa.denoise(pair, noisy, iterations=2)
    assert one.trajectory.shape[0] == 2
    mask = occlusion_mask(pair.input_shape)
    inp = ffa.inpaint(pair, x, mask, max_steps=10)
    visible = mask.expand_as(x).numpy() == 1
    np.testing.assert_allclose(inp.images[visible], x.numpy()[visible], atol=1e-6)  # visible pixels are kept
    im = ffa.imagine(pair, 3, n=4, max_steps=10)
    assert im.images.shape == (4, 1, 8, 8) and im.perceived_class.shape[1] == 4
    im = ffa.imagine(pair, 3, n=4, data=ds, max_steps=30, beta=0.5, h0=0.05)
    with torch.no_grad():
        pred = pair.F(torch.tensor(im.images)).argmax(1)
    assert (pred == 3).float().mean() >= 0.5  # the prototype conditioning steers the class
    hal = ffa.hallucinate(pair, n=4, max_steps=5, seed=1)
    assert np.isfinite(hal.images).all()
    with pytest.raises(FFAError, match="class_index"):
        ffa.imagine(pair, 11, n=2)
    with pytest.raises(FFAError, match="broadcast"):
        ffa.inpaint(pair, x, torch.ones(3, 3))


def test_figures_render(trained):
    pair, ds, run = trained
    from opgraph.ffa import figures

    res = ffa.load_run(run)
    rob = ffa.robustness(pair, ds, noise=[0.0, 0.3], iterations=1, fgsm_eps=[0.1], n=64)
    for fig in (
        res.plot(),
        rob.plot(),
        figures.accuracy_vs_reconstruction([{"method": "ffa", "test_acc": 90, "recon_corr": 0.5}]),
        figures.image_grid({"a": ds.x_test[:3]}),
    ):
        assert len(fig.axes) >= 1
    assert "<table>" in res._repr_html_()


def test_cli_train_eval_compare(tmp_path):
    from opgraph.ffa.cli import group

    runner = CliRunner()
    out = tmp_path / "runs"
    r = runner.invoke(
        group,
        [
            "train",
            "--data",
            "digits",
            "--model",
            "mlp",
            "--hidden",
            "32",
            "--method",
            "ffa",
            "--method",
            "fa",
            "--epochs",
            "1",
            "--batch-size",
            "128",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert (out / "ffa-s0" / "history.json").is_file()
    r = runner.invoke(group, ["eval", str(out / "ffa-s0"), "--n", "64", "--no-inference", "--fgsm", "0.1"])
    assert r.exit_code == 0, r.output
    numbers = json.loads((out / "ffa-s0" / "eval" / "eval.json").read_text())
    assert 0 <= numbers["metrics"]["test_acc"] <= 100
    r = runner.invoke(group, ["compare", str(out / "ffa-s0"), str(out / "fa-s0"), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cmp" / "index.html").is_file()
    r = runner.invoke(group, ["train", "--data", "digits", "--method", "magic", "--out", str(out)])
    assert r.exit_code != 0 and "magic" in r.output


def test_demo_section(tmp_path):
    from opgraph.ffa.demo import report_section

    sec = report_section(tmp_path, quick=True)
    assert sec.id == "ffa" and len(sec.figures) >= 5 and sec.tables[0].rows[0][0] == "ffa"
    accs = {row[0]: row[1] for row in sec.tables[0].rows}
    assert accs["ffa"] > 50 and accs["bp"] > 50
