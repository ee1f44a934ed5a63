import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from opgraph.energy.errors import EnergyError  # noqa: E402
from opgraph.energy.recorder import record_fx  # noqa: E402


class ShapeBranch(nn.Module):
    """Control flow on a size: torch.fx cannot trace it, torch.export can."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv(x)
        if int(y.shape[-1]) > 4:
            y = y * 2
        return self.fc(y.mean(dim=(2, 3)))


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


def test_record_fx_falls_back_to_torch_export():
    torch.manual_seed(0)
    m, x = ShapeBranch().eval(), torch.randn(1, 3, 8, 8)
    run = record_fx(m, x)
    assert run.graph.meta["recorder"] == "export"
    conv = next(n for n in run.graph.nodes if "conv" in n.op)
    assert conv.meta["module_path"] == "conv"
    mul = next(n for n in run.graph.nodes if n.op == "aten::mul")
    assert mul.meta["callsite"].startswith("test_record_export.py:") and "forward" in mul.meta["callsite"]
    with pytest.raises(EnergyError, match="neither torch.fx nor torch.export.*'<root>': Gate.*eager"):
        record_fx(Gate(), torch.randn(3))
