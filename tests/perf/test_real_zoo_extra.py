"""The opt-in real families of the zoo (MobileViT, Swin, Qwen2, T5 encoder): built, captured, kernels and layout."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from opgraph.perf import zoo  # noqa: E402
from opgraph.perf.collect import graph_of  # noqa: E402
from opgraph.perf.errors import PerfError  # noqa: E402
from opgraph.perf.kernels import dedupe_kernels, extract_kernels  # noqa: E402
from opgraph.perf.layout import configurable_nodes  # noqa: E402
from opgraph.perf.opcodes import OTHER_OPCODE, opcode_of  # noqa: E402


@pytest.mark.parametrize("family", zoo.REAL_EXTRA_FAMILIES)
def test_extra_real_family_builds_and_is_captured_cleanly(family):
    spec = zoo.RealSpec(family, "tiny")
    module, example = spec.build()
    assert not module.training and spec.name == f"hf_{family}_tiny"
    g = graph_of(module, example)
    assert g.meta["source"] == "torch.export" and len(g) > 50
    assert g.meta["unmapped_ops"] == {}
    assert [n.op for n in g if opcode_of(n.op) == OTHER_OPCODE] == []
    kernels = dedupe_kernels(extract_kernels(g, spec.name))
    assert kernels and all(k.kernel_spec() is not None for k in kernels)
    if spec.convolutional:  # MobileViT: convolutions and attention, a layout space
        assert len(configurable_nodes(g)) == sum(n.op == "conv2d" for n in g) > 10
        assert any(k.op == "batch_matmul" for k in kernels)
    else:
        assert any(k.op == "matmul" for k in kernels)


def test_extra_families_are_opt_in():
    assert not set(zoo.REAL_EXTRA_FAMILIES) & set(zoo.REAL_FAMILIES)
    assert {s.family for s in zoo.real_specs()} == set(zoo.REAL_FAMILIES)
    specs = zoo.real_specs(zoo.REAL_EXTRA_FAMILIES, ("tiny", "small"))
    assert len({s.name for s in specs}) == 8
    assert zoo.RealSpec("t5", "tiny").build()[1][0].dtype.is_floating_point is False  # token ids
    assert zoo.RealSpec("swin", "small").build()[1][0].shape == (1, 3, 64, 64)
    with pytest.raises(PerfError, match="unknown real"):
        zoo.real_specs(("whisper",))
