import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from opgraph.graph import from_module  # noqa: E402
from opgraph.perf.kernels import RealKernel, dedupe_kernels, extract_kernels, model_kernels  # noqa: E402


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.dw = nn.Conv2d(c, c, 3, stride=2, padding=1, groups=c)

    def forward(self, x):
        return self.dw(torch.relu(self.bn(self.conv(x))))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.b1 = Block(8)
        self.b2 = Block(8)
        self.fc = nn.Linear(8, 12)
        self.out = nn.Linear(12, 4, bias=False)

    def forward(self, x):
        y = self.b1(x)
        y = self.b2(torch.nn.functional.interpolate(y, scale_factor=2.0))
        t = y.flatten(2).transpose(1, 2)  # (1, 16, 8)
        h = nn.functional.gelu(self.fc(t))  # (1, 16, 12)
        att = h @ h.transpose(1, 2)  # (1, 16, 16): a matmul of two activations
        return self.out(att @ h)


def test_extract_and_dedupe_by_shape():
    g = from_module(Net().eval(), [torch.randn(1, 8, 8, 8)])
    ks = extract_kernels(g, "net")
    names = [k.name for k in ks]
    # conv+BN(folded bias)+ReLU twice, the depthwise stride-2 conv twice, linear+gelu, two matmuls, linear
    assert names == [
        "conv2d_1x8x8x8x8x3x3_s1p1g1_bias_relu",
        "conv2d_1x8x8x8x8x3x3_s2p1g8_bias_none",
        "conv2d_1x8x8x8x8x3x3_s1p1g1_bias_relu",
        "conv2d_1x8x8x8x8x3x3_s2p1g8_bias_none",
        "matmul_16x12x8_bias_gelu",
        "matmul_16x16x12_none",
        "matmul_16x12x16_none",
        "matmul_16x4x12_none",
    ]
    assert ks[0].sources == ("net:b1.conv",)
    assert ks[1].output_hw() == (4, 4) and ks[1].flops() == 2.0 * 8 * 4 * 4 * 1 * 9
    uniq = dedupe_kernels(ks)
    assert [k.count for k in uniq] == [2, 2, 1, 1, 1, 1]
    assert uniq[0].sources == ("net:b1.conv", "net:b2.conv")
    # what the TVM templates can measure: padding folded into the input
    spec = uniq[0].kernel_spec()
    assert spec is not None and spec.dims == (1, 8, 10, 10, 8, 3, 3) and spec.epilogue == "bias_relu"
    dw = uniq[1].kernel_spec()  # the depthwise stride-2 conv: padding folded, stride and groups kept
    assert dw.dims == (1, 8, 10, 10, 8, 3, 3) and (dw.stride, dw.groups, dw.epilogue) == (2, 8, "bias")
    assert dw.conv_output_hw() == uniq[1].output_hw() and dw.flops() == uniq[1].flops()
    assert dw.name == "conv2d_1x8x10x10x8x3x3_s2_g8_bias"
    assert uniq[2].kernel_spec().epilogue == "bias_gelu"
    assert RealKernel("matmul", (4, 4, 4), activation="hardswish").kernel_spec() is None  # no template
    assert uniq[3].kernel_spec().dims == (16, 16, 12)
    assert RealKernel("conv2d", (1, 4, 8, 8, 4, 3, 3), dilation=(2, 2)).kernel_spec() is None


def test_batched_kernels_and_dedupe_keeps_distinct_epilogues():
    a = RealKernel("matmul", (4, 4, 4), bias=True)
    b = RealKernel("matmul", (4, 4, 4), bias=True, activation="relu")
    assert len(dedupe_kernels([a, b, a])) == 2 and dedupe_kernels([a, b, a])[0].count == 2
    assert RealKernel("batch_matmul", (2, 3, 4, 5)).flops() == 2.0 * 2 * 3 * 4 * 5


def test_real_transformer_kernels():
    pytest.importorskip("transformers")
    from opgraph.perf.zoo import RealSpec

    (gpt,) = model_kernels([RealSpec("gpt2", "tiny")], progress=False)
    assert gpt.importer == "torch.export" and gpt.n_nodes > 100
    by_name = {k.name: k for k in gpt.kernels}
    # n_embd 32, 2 layers, 2 heads, 16 tokens: c_attn (addmm) and attention's two batched matmuls per layer
    assert by_name["matmul_16x96x32_bias_none"].count == 2
    assert by_name["batch_matmul_2x16x16x16_none"].count == 4
    assert sum(k.count for k in gpt.kernels) == 2 * (4 + 2)


def test_extracted_bias_kernel_runs_in_the_tvm_template():
    pytest.importorskip("tvm")
    import numpy as np
    import tvm

    from opgraph.perf.tile import _te_func, schedule

    g = from_module(nn.Linear(16, 8).eval(), [torch.randn(4, 16)])
    (k,) = extract_kernels(g)
    assert k.name == "matmul_4x8x16_bias_none"
    spec = k.kernel_spec()
    assert spec.epilogue == "bias" and spec.dims == (4, 8, 16)
    _, shapes = _te_func(spec)
    rng = np.random.default_rng(0)
    data = [rng.random(s, dtype=np.float32) for s in shapes]
    expect = data[0] @ data[1] + data[2]
    for t in (None, (2, 4, 4)):
        fn = tvm.compile(schedule(spec, t), target=tvm.target.Target({"kind": "llvm"}))["main"]
        args = [tvm.runtime.tensor(d, tvm.cpu()) for d in data]
        fn(*args)
        np.testing.assert_allclose(args[-1].numpy(), expect, rtol=1e-4, atol=1e-4)
    module, example = spec.torch_module()
    assert module.bias is not None and module(*example).shape == (4, 8)


@pytest.mark.parametrize("stride,groups", [(2, 1), (1, 4), (2, 8)])
def test_strided_and_grouped_conv_templates_match_torch(stride, groups):
    pytest.importorskip("tvm")
    import numpy as np
    import tvm

    from opgraph.perf.tile import KernelSpec, _te_func, sample_tiles, schedule, tile_config_row

    spec = KernelSpec("conv2d", (1, 8, 9, 9, 8, 3, 3), "bias_relu", stride, groups)
    _, shapes = _te_func(spec)
    assert shapes[1] == (8, 8 // groups, 3, 3) and shapes[-1] == (1, 8, *spec.conv_output_hw())
    rng = np.random.default_rng(0)
    data = [rng.random(s, dtype=np.float32) for s in shapes]
    x, w, b = (torch.from_numpy(d) for d in data[:3])
    expect = torch.relu(torch.nn.functional.conv2d(x, w, b, stride=stride, groups=groups)).numpy()
    tiles = sample_tiles(spec, 3, np.random.default_rng(1))
    for t in tiles:
        fn = tvm.compile(schedule(spec, t), target=tvm.target.Target({"kind": "llvm"}))["main"]
        args = [tvm.runtime.tensor(d, tvm.cpu()) for d in data]
        fn(*args)
        np.testing.assert_allclose(args[-1].numpy(), expect, rtol=1e-4, atol=1e-4)
    assert spec.loop_extents() == (8, spec.conv_output_hw()[1], 8 // groups)
    assert tile_config_row(spec, (2, 2, 1))[16:20].tolist() == [1, 1, 3, (2 - 1) * stride + 3]
    module, example = spec.torch_module()
    assert module.conv.stride == (stride, stride) and module.conv.groups == groups
    assert tuple(module(*example).shape) == shapes[-1]


@pytest.mark.parametrize("epilogue", ["gelu", "bias_silu", "sigmoid", "bias_tanh"])
def test_activation_epilogues_match_torch(epilogue):
    pytest.importorskip("tvm")
    import numpy as np
    import tvm

    from opgraph.perf.tile import KernelSpec, _te_func, schedule

    spec = KernelSpec("matmul", (8, 16, 4), epilogue)
    _, shapes = _te_func(spec)
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    module, _ = spec.torch_module()
    if spec.has_bias:
        module.bias.data = torch.from_numpy(data[2])
    expect = module(torch.from_numpy(data[0]), torch.from_numpy(data[1])).detach().numpy()
    fn = tvm.compile(schedule(spec, (4, 8, 2)), target=tvm.target.Target({"kind": "llvm"}))["main"]
    args = [tvm.runtime.tensor(d, tvm.cpu()) for d in data]
    fn(*args)
    np.testing.assert_allclose(args[-1].numpy(), expect, rtol=1e-4, atol=1e-4)
