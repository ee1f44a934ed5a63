"""ReLU6 / hardtanh imports as the clamp it is (it was imported as ``relu``, which is wrong above 6)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from opgraph.graph import from_export, from_fx, interpret, numpy_rules  # noqa: E402


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.ReLU6()
        self.b = torch.nn.Hardtanh(-2.0, 3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x) * 2.0 - 4.0) + torch.nn.functional.relu6(x - 5.0)


@pytest.mark.parametrize("importer", [from_fx, from_export])
def test_relu6_and_hardtanh_are_clamps(importer) -> None:
    net = _Net().eval()
    x = torch.linspace(-10, 20, 61)
    g = importer(net, (x,))
    clamps = [n for n in g.nodes if n.op == "hardtanh"]
    assert len(clamps) == 3
    assert not [n for n in g.nodes if n.op == "relu"]
    bounds = sorted((n.attrs["min_val"], n.attrs["max_val"]) for n in clamps)
    assert bounds == [(-2.0, 3.0), (0.0, 6.0), (0.0, 6.0)]
    out = _interpret_numpy(g, x.numpy())
    np.testing.assert_allclose(out, net(x).detach().numpy(), atol=1e-6)


def _interpret_numpy(g, x):
    """Evaluate the imported graph with NumPy, reading scalar operands from the recorded call arguments."""
    rules = numpy_rules()

    def scalar_op(fn):
        def rule(node, *vals):
            args = node.attrs.get("args", [])
            if len(vals) == 2:
                return fn(*vals)
            # one tensor operand and one Python scalar in the recorded args
            other = next(a for a in args if isinstance(a, int | float))
            return fn(vals[0], other) if not isinstance(args[0], int | float) else fn(other, vals[0])

        return rule

    for op, fn in {"mul": np.multiply, "sub": np.subtract, "add": np.add}.items():
        rules[op] = scalar_op(fn)
    return interpret(g, [x], rules)[0]


def test_relu6_is_a_fused_relu6_epilogue_in_real_kernels() -> None:
    from opgraph.perf.kernels import extract_kernels

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU6(), torch.nn.Conv2d(8, 4, 1), torch.nn.Hardtanh())
    g = from_export(net.eval(), (torch.randn(1, 3, 8, 8),))
    acts = [k.activation for k in extract_kernels(g)]
    assert acts == ["relu6", "hardtanh"]
    first, second = (k.kernel_spec() for k in extract_kernels(g))
    assert first is not None and first.activation == "relu6"
    assert second is None  # a general hardtanh epilogue is not one the TVM templates express
