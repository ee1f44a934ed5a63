import inspect

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from opgraph.graph import TraceError, from_export, from_fx, from_module  # noqa: E402
from opgraph.graph.export_import import aten_op  # noqa: E402


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)) + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.block = Block()
        self.head = nn.Linear(4, 5)

    def forward(self, x):
        y = self.block(self.stem(x))
        return self.head(y.mean(dim=(2, 3)))


class ShapeBranch(nn.Module):
    """Python control flow on a size: torch.fx cannot trace it, torch.export can."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.w = nn.Parameter(torch.randn(6, 6, 1, 1))

    def forward(self, x):
        y = self.conv(x)
        if int(y.shape[-1]) > 4:  # real model code does this (HF ResNetEmbeddings checks channels)
            y = F.conv2d(y, self.w, stride=2)
        return F.scaled_dot_product_attention(y.flatten(2), y.flatten(2), y.flatten(2))


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent: neither importer can capture this
            return x * 2
        return x


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.gate = Gate()

    def forward(self, x):
        return self.gate(self.lin(x))


def _calls(g):
    return [n for n in g if n.op != "input"]


def test_from_export_matches_from_fx_on_a_model_both_capture():
    m, x = Net().eval(), torch.randn(2, 3, 16, 16)
    a, b = from_fx(m, [x]), from_export(m, [x])
    assert [n.op for n in a] == [n.op for n in b]
    assert [n.attrs.get("target") for n in a if "module_type" in n.attrs] == [
        n.attrs.get("target") for n in b if "module_type" in n.attrs
    ]
    assert [n.meta.get("shape") for n in a] == [n.meta.get("shape") for n in b]
    assert [n.inputs for n in a] == [n.inputs for n in b]
    stem = next(n for n in b if n.attrs.get("target") == "stem")
    assert stem.attrs["module_type"] == "Conv2d" and stem.attrs["stride"] == [2, 2] and stem.attrs["bias"] is True
    assert b.meta["source"] == "torch.export" and a.meta["source"] == "torch.fx"
    # every call node knows its owning module from nn_module_stack
    assert all("module_path" in n.meta and "fx_name" in n.meta for n in _calls(b))
    assert next(n for n in b if n.op == "add").meta["module_path"] == "block"
    assert next(n for n in b if n.op == "mean").meta["module_path"] == ""
    # the source line is the model's code, not torch's
    add = next(n for n in b if n.op == "add")
    assert "test_export_import.py" in add.meta["source"]


def test_from_export_functional_conv_params_and_attention():
    m, x = ShapeBranch().eval(), torch.randn(1, 3, 8, 8)
    g = from_export(m, [x])
    convs = [n for n in g if n.op == "conv2d"]
    assert len(convs) == 2
    module_conv, functional = convs
    assert module_conv.attrs["target"] == "conv" and module_conv.attrs["module_type"] == "Conv2d"
    # the functional call gets its hyper-parameters from the ATen arguments and the weight's shape
    assert "module_type" not in functional.attrs and functional.attrs["target"] == "aten.conv2d.default"
    assert functional.attrs["kernel_size"] == [1, 1] and functional.attrs["stride"] == [2, 2]
    assert functional.attrs["in_channels"] == 6 and functional.attrs["bias"] is False
    assert functional.meta["shape"] == (1, 6, 4, 4)
    assert any(n.op == "scaled_dot_product_attention" for n in g)
    assert not any(n.op == "param" for n in g)
    kept = from_export(m, [x], keep_params=True)
    params = {n.attrs["target"] for n in kept if n.op == "param"}
    assert params == {"conv.weight", "conv.bias", "w"}
    assert len(kept) == len(g) + 3


def test_from_module_prefers_fx_and_falls_back_to_export():
    assert from_module(Net().eval(), [torch.randn(1, 3, 8, 8)]).meta["source"] == "torch.fx"
    with pytest.raises(TraceError):
        from_fx(ShapeBranch().eval(), [torch.randn(1, 3, 8, 8)])
    g = from_module(ShapeBranch().eval(), [torch.randn(1, 3, 8, 8)])
    assert g.meta["source"] == "torch.export" and g.meta["strict"] is False and g.meta["capture_s"] > 0
    assert from_module(Net().eval(), [torch.randn(1, 3, 8, 8)], prefer="export").meta["source"] == "torch.export"


def test_neither_importer_one_error_naming_submodule_and_line():
    line = inspect.getsourcelines(Gate.forward)[1] + 1
    with pytest.raises(TraceError) as info:
        from_module(Gated().eval(), [torch.randn(2, 4)])
    msg = str(info.value)
    assert "\n" not in msg
    assert "'gate': Gate" in msg and f"test_export_import.py:{line}" in msg
    assert "symbolic tracing failed too" in msg


def test_dynamic_batch_and_exported_program_input():
    m, x = Net().eval(), torch.randn(3, 3, 16, 16)
    batch = torch.export.Dim("batch", min=2, max=64)
    g = from_module(m, [x], dynamic_shapes={"x": {0: batch}})
    assert g.meta["source"] == "torch.export"
    assert next(n for n in g if n.op == "linear").meta["shape"] == (3, 5)
    ep = torch.export.export(m, (x,))
    g2 = from_export(ep)
    assert [n.op for n in g2] == [n.op for n in g] and g2.meta["name"] == "ExportedProgram"


def test_aten_op_names():
    aten = torch.ops.aten
    assert aten_op(aten.addmm.default) == "linear"
    assert aten_op(aten.mm.default) == "matmul"
    assert aten_op(aten.bmm.default) == "bmm"
    assert aten_op(aten.add_.Tensor) == "add"
    assert aten_op(aten._native_batch_norm_legit_no_training.default) == "batch_norm"
    assert aten_op(aten.scaled_dot_product_attention.default) == "scaled_dot_product_attention"
    assert aten_op(aten.hardtanh.default, (None, 0.0, 6.0)) == "hardtanh"  # ReLU6 is a clamp, not a relu
    assert aten_op(aten.hardtanh.default, (None, -1.0, 1.0)) == "hardtanh"


def test_real_transformers_models_capture():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    resnet = transformers.ResNetModel(cfg).eval()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(TraceError):
        from_fx(resnet, [x])
    g = from_module(resnet, [x])
    convs = [n for n in g if n.op == "conv2d"]
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in resnet.modules())
    assert all(n.attrs.get("module_type") == "Conv2d" for n in convs)
    assert convs[0].attrs["target"] == "embedder.embedder.convolution"
    gcfg = transformers.GPT2Config(
        n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32, use_cache=False, bos_token_id=0, eos_token_id=0
    )
    gpt = transformers.GPT2Model(gcfg).eval()
    g = from_module(gpt, [torch.randint(0, 50, (1, 8))])
    ops = [n.op for n in g]
    assert ops.count("linear") == 4 and "scaled_dot_product_attention" in ops
    assert next(n for n in g if n.op == "linear").meta["module_path"].startswith("h.0.")


def test_strict_mode_gives_the_same_graph():
    from opgraph.graph import export_program

    m, x = Net().eval(), torch.randn(1, 3, 8, 8)
    ep = export_program(m, [x], strict=True)
    assert ep.opgraph_capture["strict"] is True
    a, b = from_export(ep), from_export(m, [x])
    assert [n.op for n in a] == [n.op for n in b] and b.meta["strict"] is False
    with pytest.raises(TraceError, match="nn.Module"):
        export_program(lambda t: t, [x])


def test_keyword_inputs_become_graph_inputs_in_order():
    class Masked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)

        def forward(self, x, attention_mask=None, scale=None):
            y = self.lin(x)
            if attention_mask is not None:
                y = y * attention_mask
            return y * scale if scale is not None else y

    m = Masked().eval()
    x, mask, sc = torch.randn(2, 4), torch.ones(2, 3), torch.full((2, 3), 2.0)
    g = from_module(m, (x,), example_kwargs={"attention_mask": mask, "scale": sc})
    assert g.meta["source"] == "torch.export"
    assert [g.node(i).attrs["name"] for i in g.inputs] == ["x", "attention_mask", "scale"]
    assert sum(n.op == "mul" for n in g) == 2
    g_pos = from_module(m, (x,))  # without the keywords the masked branch is not in the graph
    assert sum(n.op == "mul" for n in g_pos) == 0
