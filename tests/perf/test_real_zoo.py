import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from opgraph.perf import zoo  # noqa: E402
from opgraph.perf.collect import graph_of  # noqa: E402
from opgraph.perf.errors import PerfError  # noqa: E402
from opgraph.perf.layout import configurable_nodes  # noqa: E402
from opgraph.perf.opcodes import OTHER_OPCODE, opcode_of  # noqa: E402


@pytest.mark.parametrize("family", zoo.REAL_FAMILIES)
def test_every_real_family_builds_and_is_captured(family):
    spec = zoo.RealSpec(family, "tiny")
    module, example = spec.build()
    assert not module.training
    g = graph_of(module, example)
    assert g.meta["source"] == "torch.export" and len(g) > 20
    assert all("shape" in n.meta or "shapes" in n.meta for n in g if n.op != "input")
    # every op has a TpuGraphs opcode (none falls into "other")
    assert [n.op for n in g if opcode_of(n.op) == OTHER_OPCODE] == []
    convs = configurable_nodes(g)
    if spec.convolutional:
        assert len(convs) == sum(n.op == "conv2d" for n in g) > 3
    else:
        assert any(n.op in ("linear", "matmul", "bmm") for n in g)


def test_specs_names_sizes_and_errors():
    specs = zoo.real_specs(("resnet", "gpt2"), ("tiny", "small"), scales=(1.0, 2.0))
    assert len({s.name for s in specs}) == 8
    many = zoo.real_specs(zoo.REAL_CNN_FAMILIES, zoo.REAL_SIZES, scales=(0.5, 0.75, 1.0, 1.5, 2.0), batches=(1, 4))
    assert len({s.name for s in many}) == len(many) == 200
    assert zoo.RealSpec("bert", "tiny", batch=4).build()[1][0].shape == (4, 16)
    assert zoo.RealSpec("resnet", "tiny", scale=2.0).input_size == 64
    assert zoo.RealSpec("gpt2", "small").name == "hf_gpt2_small"
    with pytest.raises(PerfError, match="unknown real"):
        zoo.real_specs(("alexnet",))
    with pytest.raises(PerfError, match="unknown real model"):
        zoo.RealSpec("resnet", "huge").build()
    # widths change the graph's shapes, not its op sequence (MobileNetV2 keeps its 52 convolutions)
    a = graph_of(*zoo.RealSpec("mobilenetv2", "tiny").build())
    b = graph_of(*zoo.RealSpec("mobilenetv2", "small").build())
    assert [n.op for n in a] == [n.op for n in b]
    assert [n.meta.get("shape") for n in a] != [n.meta.get("shape") for n in b]


def test_collect_layout_on_a_real_spec(tmp_path):
    pytest.importorskip("torch_geometric")
    from opgraph.perf.collect import collect_layout
    from opgraph.perf.measure import MeasureSettings
    from opgraph.perf.tpugraphs import load_graph

    spec = zoo.RealSpec("resnet", "tiny")
    res = collect_layout([spec], tmp_path, n_configs=3, settings=MeasureSettings(rounds=1, reps=1), progress=False)
    rec = load_graph(tmp_path / f"{spec.name}.npz")
    assert res[0]["name"] == spec.name and len(rec.config_runtime) == 3 and len(rec.node_config_ids) == 6
    again = collect_layout([spec], tmp_path, n_configs=3, progress=False)
    assert again[0]["skipped"]  # resumable: an existing file is kept


def test_cli_collect_real_zoo_layout_and_tile(tmp_path):
    pytest.importorskip("torch_geometric")
    from click.testing import CliRunner

    from opgraph.perf.cli import group
    from opgraph.perf.kernels import model_kernels, real_kernel_specs
    from opgraph.perf.tpugraphs import load_graph

    r = CliRunner()
    base = ["collect", "--zoo", "0", "--configs", "3", "--rounds", "1", "--reps", "1", "--real", "tiny"]
    res = r.invoke(group, [*base, "--out", str(tmp_path / "lay"), "--real-families", "resnet,regnet"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert sorted(p.name for p in (tmp_path / "lay").glob("*.npz")) == ["hf_regnet_tiny.npz", "hf_resnet_tiny.npz"]
    assert load_graph(tmp_path / "lay" / "hf_regnet_tiny.npz").measure_meta["zoo"]["family"] == "regnet"
    specs = real_kernel_specs(model_kernels([zoo.RealSpec("llama", "tiny")], progress=False))
    # llama has no biases: q, k/v (fewer kv heads), o, gate (+ SiLU), up, down projections, attention's batched matmuls
    assert {s.op for s in specs} == {"matmul", "batch_matmul"}
    assert sorted(s.epilogue for s in specs) == ["none"] * 5 + ["silu"]
    pytest.importorskip("tvm")
    args = [*base[:3], "--configs", "2", *base[5:], "--space", "tile", "--real-families", "llama"]
    res = r.invoke(group, [*args, "--out", str(tmp_path / "tile")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert len(list((tmp_path / "tile").glob("*.npz"))) == len(specs)
