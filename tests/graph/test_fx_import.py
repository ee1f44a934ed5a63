import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from opgraph.graph import TraceError, from_fx  # noqa: E402


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


def test_from_fx_shapes_attrs_and_structure():
    g = from_fx(Net(), [torch.randn(2, 3, 16, 16)])
    ops = [n.op for n in g]
    assert ops[0] == "input" and ops.count("conv2d") == 2 and "batch_norm" in ops and "linear" in ops
    stem = next(n for n in g if n.attrs.get("target") == "stem")
    assert stem.attrs["module_type"] == "Conv2d" and stem.attrs["stride"] == [2, 2]
    assert stem.meta["shape"] == (2, 4, 8, 8) and stem.meta["dtype"] == "float32"
    conv = next(n for n in g if n.attrs.get("target") == "block.conv")
    assert conv.attrs["bias"] is False
    add = next(n for n in g if n.op == "add")
    assert len(add.inputs) == 2
    mean = next(n for n in g if n.op == "mean")
    assert mean.attrs["kwargs"] == {"dim": [2, 3]} or mean.attrs["args"][1:] == [[2, 3]]
    assert g.node(g.outputs[0]).meta["shape"] == (2, 5)
    # the residual add is where the two paths meet: it is on the dominator path of the output
    assert add.id in g.dominator_path()


class Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Branchy()

    def forward(self, x):
        return self.inner(x) + 1


def test_untraceable_module_names_submodule_and_suggests_fix():
    with pytest.raises(TraceError, match=r"submodule 'inner'.*(leaf_modules|torch.export)"):
        from_fx(Outer(), [torch.randn(3)])
    g = from_fx(Outer(), [torch.randn(3)], leaf_modules=[Branchy])
    assert any(n.attrs.get("module_type") == "Branchy" for n in g)


def test_shape_mismatch_is_clear():
    with pytest.raises(TraceError, match="example_inputs"):
        from_fx(nn.Linear(3, 2), [torch.randn(4, 7)])


def test_from_fx_accepts_graph_module_and_rejects_other_types():
    gm = torch.fx.symbolic_trace(nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2)))
    g = from_fx(gm, [torch.randn(5, 3)])
    assert [n.op for n in g] == ["input", "linear", "gelu", "linear"]
    assert g.node(1).attrs["out_features"] == 4 and g.node(3).meta["shape"] == (5, 2)
    with pytest.raises(TraceError, match="expected an nn.Module"):
        from_fx(lambda x: x, [torch.randn(2)])
