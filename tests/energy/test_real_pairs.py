"""Real-library pairs of the suite (transformers tiny configs, torch.nn): registration, equal outputs, diagnosis.

Diagnoses use the deterministic work backend of conftest.py (bytes touched by aten ops), so no timing is asserted.
"""

import pytest

torch = pytest.importorskip("torch")

from opgraph.energy import cases_real  # noqa: E402
from opgraph.energy.cases import CASES  # noqa: E402
from opgraph.energy.suite import _hit, case_ids, evaluate_case, summarize  # noqa: E402

HF = [cid for cid, c in cases_real.real_cases().items() if c.requires == "transformers"]
TORCH_ONLY = [cid for cid, c in cases_real.real_cases().items() if c.requires is None]
#: Waste inside one fused kernel (the same bytes in and out): invisible to the work backend's byte count, so only
#: the benchmark (time and model backends) scores these; the ops test below checks the pair itself.
KERNEL_ONLY = {"nn-encoder-empty-pad-mask"}


def _outputs(case):
    a, b, inputs, inputs_b = case.build("cpu")
    return a(*inputs), b(*(inputs_b or inputs))


def test_registered_in_suite_without_overwriting():
    real = cases_real.real_cases()
    assert real and all(cid in CASES for cid in real)
    for cid, c in real.items():
        # an id cases.py already had keeps its own case; every new one is the one from cases_real
        assert CASES[cid] == c or CASES[cid].build.__module__ == "opgraph.energy.cases"
        assert c.kind == "control" or c.culprit_sites, cid
        assert c.kind != "waste" or c.category in ("api_misuse", "redundant", "misconfig")


def test_torch_cases_run_without_transformers(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "transformers" else real(name))
    ids = case_ids()
    assert all(cid in ids for cid in TORCH_ONLY)
    assert not any(cid in ids for cid in HF)


@pytest.mark.parametrize("cid", TORCH_ONLY)
def test_torch_pair_outputs_agree(cid):
    out_a, out_b = _outputs(CASES[cid])
    assert out_a.shape == out_b.shape
    torch.testing.assert_close(out_a, out_b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cid", HF)
def test_hf_pair_outputs_agree(cid):
    pytest.importorskip("transformers")
    out_a, out_b = _outputs(CASES[cid])
    assert out_a.shape == out_b.shape
    if out_a.dtype.is_floating_point:
        torch.testing.assert_close(out_a, out_b, rtol=1e-4, atol=1e-4)
    else:  # generated token ids: greedy decoding with and without the cache picks the same tokens
        assert torch.equal(out_a, out_b)


def test_slow_path_really_taken():
    """The torch.nn waste sides run the unfused ops; the cheap sides run torch's fused kernels."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.add(func._schema.name)
            return func(*args, **(kwargs or {}))

    def ops(fn, inputs):
        with Ops() as m:
            fn(*inputs)
        return m.names

    a, b, inputs, _ = CASES["nn-encoder-train-mode"].build("cpu")
    assert "aten::_transformer_encoder_layer_fwd" in ops(b, inputs)
    assert "aten::_transformer_encoder_layer_fwd" not in ops(a, inputs)
    a, b, inputs, _ = CASES["nn-encoder-empty-pad-mask"].build("cpu")
    assert not inputs[1].any()  # the mask masks nothing
    assert "aten::masked_fill_" in ops(a, inputs) and "aten::masked_fill_" not in ops(b, inputs)
    a, b, inputs, _ = CASES["nn-mha-need-weights"].build("cpu")
    slow, fast = ops(a, inputs), ops(b, inputs)
    assert "aten::_softmax" in slow and "aten::_softmax" not in fast
    assert "aten::mean" in slow and "aten::mean" not in fast  # averaging the weights nobody asked for


def _check(cid, backend):
    case = CASES[cid]
    res = evaluate_case(case, backend, rounds=3, baselines=False)
    assert res.error is None, res.error
    if case.kind == "control":
        assert res.n_findings == 0, res.findings
    else:
        assert res.top1, res.findings
        top = res.findings[0]
        assert top["side"] == "a" and top["verdict"] == "waste" and top["ratio"] > 1.1
        assert _hit(top["callsites"] + top["lib_sites"], set(), case.culprit_sites)
    return res


def _library_dir(name):
    import importlib
    import os

    return os.path.dirname(os.path.abspath(importlib.import_module(name).__file__))


def _assert_library_line(finding, library):
    """The finding's first library line lies in ``library``'s own source and names an op or a call there."""
    import linecache
    import os

    path, line = finding["lib_file"], finding["lib_line"]
    assert finding["lib_sites"], finding
    assert path.startswith(_library_dir(library) + os.sep), (path, library)
    assert os.path.isfile(path) and line > 0
    assert finding["lib_sites"][0] == f"{os.path.basename(path)}:{line} in {finding['lib_sites'][0].split(' in ')[-1]}"
    text = linecache.getline(path, line).strip()
    assert text and ("(" in text or any(sym in text for sym in "+-*/@")), text
    assert finding["callsites"], finding  # the user's line is kept beside it
    assert not finding["callsites"][0].startswith(os.path.basename(path) + ":"), finding


@pytest.mark.parametrize("cid", [c for c in TORCH_ONLY if c not in KERNEL_ONLY])
def test_torch_pair_diagnosis(cid, work_backend):
    _check(cid, work_backend)


@pytest.mark.parametrize(
    "cid", ["hf-bert-eager-attn", "hf-vit-eager-attn", "hf-bert-layer-vs-nn", "hf-llama-logits-all"]
)
def test_hf_pair_names_library_line(cid, work_backend):
    pytest.importorskip("transformers")
    res = _check(cid, work_backend)
    top = res.findings[0]
    site = top["lib_sites"][0]
    assert any(site.split(":")[0] == s.split(":")[0] for s in CASES[cid].culprit_sites)  # the library's file
    # inside transformers, or inside torch.nn where the transformers code calls an nn module or functional
    lib = "transformers" if "/transformers/" in top["lib_file"] else "torch"
    _assert_library_line(top, lib)
    assert "cases_real.py" in top["callsites"][0]  # the user's line: where the case calls the model
    assert res.category_ok, (res.category, CASES[cid].category)


@pytest.mark.parametrize("cid", [c for c in TORCH_ONLY if c not in KERNEL_ONLY])
def test_torch_pair_names_torch_nn_line(cid, work_backend):
    """torch.nn pairs: the top finding names a line under torch/nn, with the user's line kept beside it."""
    res = _check(cid, work_backend)
    top = res.findings[0]
    _assert_library_line(top, "torch")
    assert "/nn/" in top["lib_file"], top["lib_file"]
    assert top["callsites"][0].startswith("cases_real.py:"), top["callsites"]


def test_hf_control_and_generate(work_backend):
    pytest.importorskip("transformers")
    results = [_check(cid, work_backend) for cid in ("control-hf-llama-mlp", "hf-llama-generate-nocache")]
    s = summarize(results)
    assert s["control_false_flags"] == 0 and s["top1"] == 1.0


def test_nested_tensor_encoder_records(tmp_path, work_backend):
    """nn.TransformerEncoder with a padding mask in eval converts to a nested tensor; recording it works."""
    from opgraph.energy import diff, load, record
    from opgraph.energy.fingerprint import fingerprint

    layer = torch.nn.TransformerEncoderLayer(32, 2, 64, dropout=0.0, batch_first=True)
    enc = torch.nn.TransformerEncoder(layer, 1).eval()
    pad = torch.zeros(2, 8, dtype=torch.bool)
    pad[1, 6:] = True

    def f(x):
        with torch.no_grad():
            return enc(x, src_key_padding_mask=pad)

    x = torch.randn(2, 8, 32)
    run = record(f, x)
    nested = [n for n in run.graph.nodes if n.meta.get("nested")]
    assert any(n.op == "aten::_nested_tensor_from_mask" for n in nested)
    for n in nested:  # 8 + 6 real tokens of width 32; the fingerprint covers exactly those elements
        assert n.meta["nested_sizes"] == [[8, 32], [6, 32]] and n.meta["shape"] == [14 * 32], n.meta
    src = next(n for n in nested if n.op == "aten::_nested_tensor_from_mask")
    real = torch.cat([x[0].reshape(-1), x[1, :6].reshape(-1)])
    assert fingerprint(run.values[src.id]) == fingerprint(real)
    assert load(run.save(tmp_path / "run")).graph.nodes[src.id].meta["nested_sizes"] == [[8, 32], [6, 32]]
    rep = diff(f, f, x, work_backend, rounds=3)  # the regions replay, nested values included
    assert rep.regions and not rep.findings


def test_recorder_keeps_the_fast_path():
    """Recording must not knock the fast side off torch's fast path (module hooks would: transformer.py checks)."""
    from opgraph.energy import record

    for cid in ("nn-encoder-train-mode", "nn-encoder-empty-pad-mask"):
        a, b, inputs, _ = CASES[cid].build("cpu")
        ops_b = {n.op for n in record(b, inputs).graph.nodes}
        ops_a = {n.op for n in record(a, inputs).graph.nodes}
        assert "aten::_transformer_encoder_layer_fwd" in ops_b, cid
        assert cid != "nn-encoder-train-mode" or "aten::_transformer_encoder_layer_fwd" not in ops_a
