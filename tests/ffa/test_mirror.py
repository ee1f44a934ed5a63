import pytest
import torch
from torch import nn

from opgraph import ffa
from opgraph.ffa.errors import FFAError, MirrorError
from opgraph.ffa.layers import FBConv2d, FBConvTranspose2d, FBLinear


def test_asym_resnet10_paper_size_weights_and_shapes():
    pair = ffa.mirror(ffa.models.asym_resnet10(width=64))
    conv_f = sum(m.weight.numel() for m in pair.F.modules() if isinstance(m, FBConv2d))
    conv_b = sum(m.weight.numel() for m in pair.B.modules() if isinstance(m, FBConvTranspose2d))
    assert conv_f == conv_b == 650_816  # the paper's AsymResLNet10, per pathway
    for f, b in pair.twin_layers():
        assert f.weight.shape == b.weight.shape
    x = torch.rand(3, 1, 32, 32)
    z = pair.F.features(x)
    assert z.shape == (3, 10, 8, 8)
    assert pair.F(x).shape == (3, 10)
    assert pair.reconstruct(x).shape == x.shape
    # stride-2 layers get output_padding so that shapes match exactly
    assert pair.B.layers["conv1"].output_padding == (1, 1)
    assert pair.B.layers["conv31"].output_padding == (1, 1)
    assert pair.B.layers["downsample2"].output_padding == (1, 1)


def test_mirror_graph_structure_residual():
    pair = ffa.mirror(ffa.models.asym_resnet10(width=4))
    ops = [n.op for n in pair.B.graph.nodes]
    assert ops.count("conv_transpose2d") == 11
    assert ops.count("add") == 2  # the two shortcuts' fan-outs in F become sums in B
    # the decoder starts with the mirrored residual stage 2: BN(bn42) -> conv42^T (as in the authors' B)
    keys = [n.attrs.get("key") for n in pair.B.graph.nodes if "key" in n.attrs]
    assert keys.index("bn42") < keys.index("conv42")
    assert keys[-1] == "conv1"


def test_mirror_plain_sequential_with_flatten_and_linear():
    enc = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 10)
    )
    pair = ffa.mirror(enc, input_shape=(1, 8, 8))
    assert isinstance(pair.F.body[0], FBConv2d) and isinstance(pair.F.body[4], FBLinear)
    assert isinstance(enc[0], nn.Conv2d) and not isinstance(enc[0], FBConv2d)  # the given module is untouched
    assert pair.B.layers["4"].weight.shape == (64, 10)
    x = torch.rand(5, 1, 8, 8)
    assert pair.reconstruct(x).shape == (5, 1, 8, 8)
    assert pair.F(x).shape == (5, 10)
    pair.configure("ffa")
    loss = pair.F(x).sum() + pair.reconstruct(x).sum()
    loss.backward()
    assert all(p.grad is not None for p in pair.F.parameters())


def test_resnet18_mirror_and_tied_bn():
    pair = ffa.mirror(ffa.models.asym_resnet18(width=2, n_classes=10 // 5 * 5), tie_bn=True)
    x = torch.rand(2, 3, 32, 32)
    assert pair.F.features(x).shape == (2, 16, 4, 4)
    assert pair.reconstruct(x).shape == x.shape
    f_bn = {id(m) for m in pair.F.modules() if isinstance(m, nn.BatchNorm2d)}
    b_bn = {id(m) for m in pair.B.modules() if isinstance(m, nn.BatchNorm2d)}
    assert f_bn == b_bn  # tied
    untied = ffa.mirror(ffa.models.asym_resnet18(width=2))
    assert not ({id(m) for m in untied.F.modules()} & {id(m) for m in untied.B.layers.modules()})


def test_configure_methods_set_feedback():
    pair = ffa.mirror(ffa.models.mlp(16, hidden=(8,), n_classes=3))
    pair.configure("ffa")
    for f, b in pair.twin_layers():
        torch.testing.assert_close(f.feedback_weight(), b.weight.detach().t())
        torch.testing.assert_close(b.feedback_weight(), f.weight.detach().t())
    pair.configure("bp-copy")
    assert all(a == 0.0 for a in pair.alignment_deg().values())
    for f, b in pair.twin_layers():
        torch.testing.assert_close(b.weight.detach(), f.weight.detach().t())  # B holds F's weights
    pair.configure("bp")
    assert all(a == 0.0 for a in pair.alignment_deg().values())  # BP's backward uses W itself
    for f, b in pair.twin_layers():
        assert not torch.allclose(b.weight.detach(), f.weight.detach().t())  # B: its own random init
    pair.configure("fa", seed=1)
    assert all(40 < a < 140 for a in pair.alignment_deg().values())
    with pytest.raises(FFAError):
        pair.configure("nope")


def test_unsupported_op_is_named():
    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return torch.sigmoid(self.conv(x))

    with pytest.raises(MirrorError, match="sigmoid"):
        ffa.mirror(Enc(), input_shape=(1, 6, 6))
    with pytest.raises(MirrorError, match="MaxPool2d"):
        ffa.mirror(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), input_shape=(1, 6, 6))


def test_bp_decoder_is_a_fixed_random_init_with_f_batchnorm():
    """The authors' BP decoder: never trained, random weights unrelated to F's, F's BatchNorm parameters."""
    torch.manual_seed(0)
    pair = ffa.mirror(ffa.models.asym_resnet10(width=2))
    pair.configure("bp", seed=3)
    first = {k: b.weight.detach().clone() for (k, _), (_, b) in zip(pair.twins, pair.twin_layers(), strict=True)}
    for f, b in pair.twin_layers():
        # drawn like a feedback weight (bound sqrt(6 / fan_out)), not F's weights
        w = b.weight.detach()
        fan_out = w.shape[0] * w[0, 0].numel()
        assert w.abs().max() <= (6.0 / fan_out) ** 0.5 and w.std() > 0.3 * (2.0 / fan_out) ** 0.5
        assert not torch.allclose(w, f.weight.detach())
    with torch.no_grad():
        for f_bn, _ in pair.bn_twins():
            f_bn.weight.uniform_(0.5, 1.5)
            f_bn.bias.uniform_(-0.5, 0.5)
        for f, _ in pair.twin_layers():
            f.weight.mul_(2.0)  # "training" F must not change B
    pair.sync_decoder()
    assert len(pair.bn_twins()) == 10
    for f_bn, b_bn in pair.bn_twins():
        assert f_bn is not b_bn
        torch.testing.assert_close(b_bn.weight, f_bn.weight)
        torch.testing.assert_close(b_bn.bias, f_bn.bias)
    for (k, _), (_, b) in zip(pair.twins, pair.twin_layers(), strict=True):
        torch.testing.assert_close(b.weight.detach(), first[k])
    again = ffa.mirror(ffa.models.asym_resnet10(width=2))
    again.configure("bp", seed=3)
    for (_, b1), (_, b2) in zip(pair.twin_layers(), again.twin_layers(), strict=True):
        torch.testing.assert_close(b1.weight.detach(), b2.weight.detach())  # seeded
