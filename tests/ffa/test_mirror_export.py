import pytest
import torch
from torch import nn

from opgraph import ffa
from opgraph.ffa.layers import FBConv2d, FBLinear
from opgraph.graph import TraceError, from_fx


class Checked(nn.Module):
    """An encoder with a shape check (real model code): torch.fx cannot trace it, torch.export can."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        if int(x.shape[1]) != 1:
            raise ValueError("expected one channel")
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc(y.flatten(1))


def test_mirror_an_encoder_fx_cannot_trace():
    enc = Checked()
    with pytest.raises(TraceError):
        from_fx(enc, [torch.zeros(2, 1, 8, 8)])
    pair = ffa.mirror(enc, input_shape=(1, 8, 8))
    assert isinstance(pair.F.body.conv, FBConv2d) and isinstance(pair.F.body.fc, FBLinear)
    assert pair.F.training  # the capture ran in eval mode and the mode is restored
    assert pair.encoder_graph.meta["source"] == "torch.export"
    assert pair.B.layers["fc"].weight.shape == (64, 10)
    assert [n.attrs.get("key") for n in pair.B.graph.nodes if "key" in n.attrs] == ["fc", "bn", "conv"]
    x = torch.rand(5, 1, 8, 8)
    assert pair.reconstruct(x).shape == (5, 1, 8, 8)
    assert pair.F(x).shape == (5, 10)
