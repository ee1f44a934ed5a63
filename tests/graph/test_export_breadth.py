"""from_export on the code real architectures have: ATen ops of the op table, grad/autocast regions, bad outputs."""

import functools
import inspect
import logging
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from opgraph.graph import OPS, TraceError, from_export, from_fx, numpy_rules  # noqa: E402
from opgraph.graph.export_import import aten_op  # noqa: E402
from opgraph.graph.ops import UNMAPPED_OPS  # noqa: E402


class MaskAndPositions(nn.Module):
    """The mask / position / indexing code of Hugging Face text models, in a few lines."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1]).unsqueeze(0).expand(ids.shape[0], -1)
        mask = (ids > 2) & ~(ids == 5)
        causal = torch.ones(ids.shape[1], ids.shape[1]).cumsum(0)[:, 1]
        h = self.emb(ids) + pos.unsqueeze(-1) + causal.unsqueeze(-1)
        h = h.masked_fill(~mask.unsqueeze(-1), 0.0).roll(1, dims=1)
        top = torch.max(h, torch.zeros_like(h))  # aten.max.other: elementwise
        return top[:, 0] + h.select(1, 1) + h[:, ids[0, :2]].sum(1) + F.hardswish(h).mean(1)


class NoGradRegion(nn.Module):
    """``with torch.no_grad()`` / ``torch.autocast`` inside forward: torch.export wraps those calls in a region."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        with torch.no_grad():
            y = torch.relu(self.lin(x)) * 2
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = self.out(y)
        return z.float().sum(-1, keepdim=True) + x


class Cache:
    """Not a tensor, tuple, list, dict or registered pytree (as a Hugging Face cache object)."""

    def __init__(self, t):
        self.t = t


def checked(fn):
    """A decorator on forward, as Hugging Face puts on theirs (the error must name forward's line, not this one)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


class ReturnsCache(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    @checked
    def forward(self, x):
        y = self.lin(x)
        return y, Cache(y)


def test_aten_ops_of_real_model_code_are_in_the_op_table():
    g = from_export(MaskAndPositions().eval(), [torch.randint(0, 10, (2, 5))])
    ops = {n.op for n in g}
    assert g.meta["unmapped_ops"] == {}
    for op in (
        "arange",
        "unsqueeze",
        "expand",
        "and",
        "not",
        "cumsum",
        "masked_fill",
        "maximum",
        "select",
        "index",
        "roll",
    ):
        assert op in ops, op
        assert op in OPS and op not in UNMAPPED_OPS
    assert "hardswish" in ops and OPS["hardswish"].elementwise
    assert OPS["unsqueeze"].hlo is not None and OPS["arange"].hlo is not None


def test_an_op_outside_the_table_is_counted_in_meta():
    class Glu(nn.Module):
        def forward(self, x):
            return F.glu(x, -1) + F.glu(x * 2, -1)

    g = from_export(Glu(), [torch.randn(2, 4)])
    assert g.meta["unmapped_ops"] == {"glu": 2}
    assert "glu" in UNMAPPED_OPS and OPS["glu"].arity is None
    assert from_fx(Glu(), [torch.randn(2, 4)]).meta["unmapped_ops"] == {"glu": 2}  # the same count on the fast path
    assert from_fx(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), [torch.randn(2, 4)]).meta["unmapped_ops"] == {}


def test_max_and_min_overloads():
    aten = torch.ops.aten
    assert aten_op(aten.max.other) == "maximum" and aten_op(aten.min.other) == "minimum"
    assert aten_op(aten.max.dim) == "max" and not OPS["max"].elementwise
    assert aten_op(aten.numpy_T.default) == "transpose" and aten_op(aten.detach.default) == "identity"
    assert aten_op(aten.bitwise_not.default) == "not" and aten_op(aten.__or__.Tensor) == "or"
    assert aten_op(aten.detach_.default) == "identity" and aten_op(aten._grouped_mm.default) == "grouped_mm"


def test_numpy_references_of_the_new_activations_match_torch():
    x = np.linspace(-5, 5, 41)
    t = torch.tensor(x)
    rules = numpy_rules()
    for op, ref in (
        ("hardswish", F.hardswish),
        ("hardsigmoid", F.hardsigmoid),
        ("softplus", F.softplus),
        ("mish", F.mish),
    ):
        np.testing.assert_allclose(rules[op](None, x), ref(t).numpy(), rtol=1e-6, atol=1e-9, err_msg=op)
    a, b = np.array([7, -7, 5]), np.array([2, 2, -3])
    np.testing.assert_array_equal(
        rules["floor_divide"](None, a, b), torch.floor_divide(torch.tensor(a), torch.tensor(b))
    )
    m = np.array([True, False, True])
    np.testing.assert_array_equal(rules["not"](None, m), ~torch.tensor(m).numpy())


def test_grad_mode_and_autocast_regions_are_imported_in_place():
    m = NoGradRegion().eval()
    g = from_export(m, [torch.randn(2, 4)])
    ops = [n.op for n in g]
    assert ops.count("linear") == 2, ops  # both module calls, not two opaque region nodes
    assert not any(op.startswith("wrap_with") for op in ops)
    lin = [n for n in g if n.op == "linear"]
    assert [n.attrs["target"] for n in lin] == ["lin", "out"]
    assert lin[0].attrs["in_features"] == 4 and lin[1].attrs["out_features"] == 3
    relu = next(n for n in g if n.op == "relu")
    assert relu.inputs == (lin[0].id,)  # the region's operand is the graph input, its result feeds the next one
    assert g.node(g.outputs[0]).op == "add" and g.meta["unmapped_ops"] == {}
    kept = from_export(m, [torch.randn(2, 4)], keep_params=True)
    assert sum(n.op == "param" for n in kept) == 4  # two weights, two biases; the regions' bodies are no params


def test_non_pytree_output_gets_one_line_naming_forward():
    with pytest.raises(TraceError) as info:
        from_export(ReturnsCache(), [torch.randn(2, 4)])
    msg = str(info.value)
    assert "\n" not in msg
    assert "forward() returns a Cache" in msg and "use_cache=False" in msg
    line = inspect.getsourcelines(inspect.unwrap(ReturnsCache.forward))[1]
    assert f"{os.path.basename(__file__)}:{line} in forward" in msg
    assert "'<root>': ReturnsCache" in msg


@pytest.mark.parametrize("family", ["distilbert", "qwen2", "swin"])
def test_tiny_transformers_architectures_have_no_op_outside_the_table(family):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    small = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    if family == "distilbert":
        cfg = transformers.DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64, vocab_size=100)
        model, x = transformers.DistilBertModel(cfg), torch.randint(1, 100, (1, 8))
    elif family == "qwen2":
        cfg = transformers.Qwen2Config(**small, num_key_value_heads=1, vocab_size=100, use_cache=False)
        model, x = transformers.Qwen2Model(cfg), torch.randint(1, 100, (1, 8))
    else:
        cfg = transformers.SwinConfig(
            image_size=16, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=2
        )
        model, x = transformers.SwinModel(cfg), torch.randn(1, 3, 16, 16)
    g = from_export(model.eval(), [x])
    assert g.meta["unmapped_ops"] == {}, g.meta["unmapped_ops"]
    assert sum(n.op in ("linear", "matmul", "bmm", "scaled_dot_product_attention") for n in g) >= 4


def test_a_failed_capture_prints_nothing_but_the_error():
    """Swin with a window larger than its last stage: strict export's fake tensors logged the whole traceback."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.SwinConfig(
        image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4
    )
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage()[:200])

    logger = logging.getLogger("torch._subclasses.fake_tensor")
    handler = Keep()
    logger.addHandler(handler)
    try:
        with pytest.raises(TraceError, match="in submodule 'encoder.layers.3.blocks.0.attention'"):
            from_export(transformers.SwinModel(cfg).eval(), [torch.randn(1, 3, 64, 64)])
    finally:
        logger.removeHandler(handler)
    assert seen == []


class Lookup(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)

    def forward(self, ids):
        return self.emb(ids)


class DataGate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow
            return x * 2
        return x


def test_the_fix_hint_fits_the_failure():
    with pytest.raises(TraceError) as info:  # float ids: the model's own error, not control flow
        from_export(Lookup(), [torch.randn(1, 5)])
    msg = str(info.value)
    assert "in submodule 'emb': Embedding" in msg and "example_inputs" in msg and "dtype" in msg
    assert "torch.cond" not in msg
    with pytest.raises(TraceError) as info:
        from_export(DataGate(), [torch.randn(3)])
    msg = str(info.value)
    assert "torch.cond" in msg and "decoder_input_ids" not in msg


class NeedsThree(nn.Module):
    def forward(self, x):
        if x.shape[1] < 3:  # the model only takes 3 or more positions
            return x
        return x * x.shape[1]  # the size as a value: a symbolic size read under dynamic shapes


def test_dynamic_shapes_the_model_cannot_take_get_torchs_fix_in_one_line():
    from torch.export import Dim

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage()[:200])

    logger = logging.getLogger("torch._guards")
    handler = Keep()
    logger.addHandler(handler)
    try:
        with pytest.raises(TraceError) as info:
            from_export(NeedsThree(), [torch.randn(2, 8)], dynamic_shapes=({1: Dim("seq", min=2, max=60)},))
    finally:
        logger.removeHandler(handler)
    msg = str(info.value)
    assert "\n" not in msg and "dynamic_shapes allow sizes" in msg
    assert "Dim('seq', min=3, max=60)" in msg
    assert seen == []
    ok = from_export(NeedsThree(), [torch.randn(2, 8)], dynamic_shapes=({1: Dim("seq", min=3, max=60)},))
    assert ok.meta["unmapped_ops"] == {} and "size" in {n.op for n in ok}  # aten.sym_size is the core op size
