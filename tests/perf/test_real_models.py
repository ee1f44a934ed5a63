"""`opgraph perf collect` and `tune` on real model code (Hugging Face transformers, random weights, tiny configs).

torch.fx cannot trace any of these three models; the importer falls back to torch.export.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch_geometric")
pytest.importorskip("transformers")

from opgraph.perf.cli import group  # noqa: E402

FACTORIES = """
import torch
import transformers as T


def resnet():
    torch.manual_seed(0)
    cfg = T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    return T.ResNetModel(cfg).eval(), (torch.randn(1, 3, 32, 32),)


def mobilenet():
    torch.manual_seed(0)
    cfg = T.MobileNetV2Config(depth_multiplier=0.35, image_size=32)
    return T.MobileNetV2Model(cfg).eval(), (torch.randn(1, 3, 32, 32),)


def convnext():
    torch.manual_seed(0)
    cfg = T.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2)
    return T.ConvNextModel(cfg).eval(), (torch.randn(1, 3, 32, 32),)
"""


def _ok(result):
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("real")
    (d / "hf.py").write_text(FACTORIES)
    return d


def test_fx_cannot_trace_them(workdir):
    from opgraph.graph import TraceError, from_fx
    from opgraph.perf.cli import load_factory

    for name in ("resnet", "mobilenet", "convnext"):
        module, example = load_factory(f"{workdir / 'hf.py'}:{name}")
        with pytest.raises(TraceError):
            from_fx(module, example)


def test_collect_and_tune_real_cnns(workdir):
    from opgraph.perf.tpugraphs import load_graph

    r = CliRunner()
    data = workdir / "data"
    args = ["collect", "--zoo", "2", "--configs", "4", "--out", str(data), "--rounds", "2", "--reps", "1"]
    _ok(r.invoke(group, [*args, "--module", f"{workdir / 'hf.py'}:mobilenet"]))
    rec = load_graph(data / "hf.npz")
    assert rec.measure_meta["importer"] == "torch.export"
    assert len(rec.node_config_ids) == 52  # every Conv2d of MobileNetV2 is configurable
    assert rec.config_runtime is not None and len(rec.config_runtime) == 4
    model = workdir / "m.pt"
    _ok(r.invoke(group, ["train", "--data", str(data), "--out", str(model), "--epochs", "1", "--hidden", "8"]))
    for name, n_convs in (("resnet", 6), ("mobilenet", 52), ("convnext", 4)):
        out_json = workdir / f"{name}.json"
        args = ["tune", f"{workdir / 'hf.py'}:{name}", "--model", str(model), "--candidates", "4"]
        out = _ok(r.invoke(group, [*args, "--measure-frac", "0.5", "--race-rounds", "2", "--out", str(out_json)]))
        assert "speed-up" in out
        layout = json.loads(out_json.read_text())["layout"]
        assert len(layout) == n_convs and all(v in ("NCHW", "channels_last") for v in layout.values())
